// SPDX-License-Identifier: GPL-2.0
/*
 * Test client of the tern PF driver's VF API (<linux/tern_pf.h>).
 *
 * Reading /sys/kernel/debug/tern_pf_test/run runs the tests against the
 * tern PF and its enabled VFs and returns TAP; .../faults runs the fault
 * injection tests, which need the PF's debug BAR (x-debug=on) and
 * tern_pf.aq_timeout_ms set to this module's timeout_ms; .../stuck runs
 * the stuck command test (one VF's command never completes while other
 * VFs work); .../hang sends a command that completes only after a
 * minute, for tern_pf.sh to kill the reader, and .../hang_errno then
 * holds the call's -errno; .../unbind runs the one that unbinds the PF
 * under a held handle.
 * tern_pf.sh drives this and checks the PF driver's debugfs counters.
 */

#include <linux/crc32c.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>
#include <linux/seq_file.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/tern_pf.h>
#include <tern/tern_hw.h>

#define TEST_MAX_VFS		8
#define TEST_CHUNK_PAGES	64
#define TEST_THREADS_PER_VF	4
#define TEST_ROUNDS		100

static unsigned int timeout_ms = 2000;
module_param(timeout_ms, uint, 0444);
MODULE_PARM_DESC(timeout_ms, "tern_pf.aq_timeout_ms set for the fault tests");

struct holder {
	struct tern_vf *vf;
	atomic_t resets;
	atomic_t removes;
};

struct ctx {
	struct seq_file *m;
	unsigned int n;
	struct pci_dev *pf;
	struct pci_dev *vfs[TEST_MAX_VFS];
	unsigned int nr_vfs;
	void __iomem *dbg;
};

static void report(struct ctx *c, int ok, const char *what, int err)
{
	c->n++;
	if (ok)
		seq_printf(c->m, "ok %u %s\n", c->n, what);
	else
		seq_printf(c->m, "not ok %u %s (error %d)\n", c->n, what, err);
}

static void skip(struct ctx *c, const char *what, const char *why)
{
	c->n++;
	seq_printf(c->m, "ok %u %s # SKIP %s\n", c->n, what, why);
}

static void on_event(void *priv, enum tern_vf_event event)
{
	struct holder *h = priv;

	if (event == TERN_VF_EVENT_PF_REMOVE)
		atomic_inc(&h->removes);
	else
		atomic_inc(&h->resets);
}

static int hold(struct holder *h, struct pci_dev *vf_pdev)
{
	atomic_set(&h->resets, 0);
	atomic_set(&h->removes, 0);
	h->vf = tern_vf_get(vf_pdev, on_event, h);
	return PTR_ERR_OR_ZERO(h->vf);
}

/* A buffer of pages and a table describing it. */
struct buf {
	struct page *pages[TEST_CHUNK_PAGES];
	struct sg_table sgt;
};

static int buf_alloc(struct buf *b)
{
	unsigned int i;
	int ret;

	for (i = 0; i < TEST_CHUNK_PAGES; i++) {
		b->pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!b->pages[i])
			goto err;
	}
	ret = sg_alloc_table_from_pages(&b->sgt, b->pages, TEST_CHUNK_PAGES, 0,
					TEST_CHUNK_PAGES * PAGE_SIZE, GFP_KERNEL);
	if (!ret)
		return 0;
err:
	while (i--)
		__free_page(b->pages[i]);
	return -ENOMEM;
}

static void buf_free(struct buf *b)
{
	unsigned int i;

	sg_free_table(&b->sgt);
	for (i = 0; i < TEST_CHUNK_PAGES; i++)
		__free_page(b->pages[i]);
}

/* VF 0 and VF 1 held, and a buffer for the chunks between them. */
struct pair {
	struct holder a, b;
	struct buf *buf;
};

static int pair_setup(struct ctx *c, struct pair *p)
{
	int ret;

	p->buf = kzalloc(sizeof(*p->buf), GFP_KERNEL);
	if (!p->buf)
		return -ENOMEM;
	ret = buf_alloc(p->buf);
	if (ret)
		goto err_free;
	ret = hold(&p->a, c->vfs[0]);
	if (ret)
		goto err_buf;
	ret = hold(&p->b, c->vfs[1]);
	if (!ret)
		return 0;
	tern_vf_put(p->a.vf);
err_buf:
	buf_free(p->buf);
err_free:
	kfree(p->buf);
	return ret;
}

static void pair_teardown(struct pair *p)
{
	tern_vf_put(p->b.vf);
	tern_vf_put(p->a.vf);
	buf_free(p->buf);
	kfree(p->buf);
}

static void test_handles(struct ctx *c)
{
	struct holder a, b;
	int ret;

	ret = hold(&a, c->vfs[0]);
	report(c, !ret, "a VF handle can be taken", ret);
	if (ret)
		return;
	ret = hold(&b, c->vfs[0]);
	report(c, ret == -EBUSY, "a second handle for one VF is refused", ret);
	if (!ret)
		tern_vf_put(b.vf);
	ret = hold(&b, c->pf);
	report(c, ret == -EINVAL, "the PF itself has no handle", ret);
	if (!ret)
		tern_vf_put(b.vf);
	tern_vf_put(a.vf);
	ret = hold(&a, c->vfs[0]);
	report(c, !ret, "a handle given back can be taken again", ret);
	if (!ret)
		tern_vf_put(a.vf);
}

static void test_identify(struct ctx *c)
{
	struct tern_vf_info info = {};
	struct holder h;
	int ret;

	ret = hold(&h, c->vfs[0]);
	if (!ret) {
		ret = tern_vf_identify(h.vf, &info);
		tern_vf_put(h.vf);
	}
	report(c, !ret && info.nr_queues == TERN_VF_NR_QUEUES &&
	       info.image_version == TERN_IMAGE_VERSION &&
	       is_power_of_2(info.devmem_size) &&
	       info.max_image_size > info.devmem_size &&
	       info.dirty_max_ranges >= 16 &&
	       (info.dirty_page_shifts & 0x3ff000) == 0x3ff000 &&
	       info.max_xfer_segments >= 1,
	       "IDENTIFY reports the VF's limits", ret);
}

static void test_suspend(struct ctx *c)
{
	struct holder h;
	int ret;

	ret = hold(&h, c->vfs[0]);
	if (ret) {
		report(c, 0, "suspend steps", ret);
		return;
	}
	ret = tern_vf_freeze(h.vf);
	report(c, ret == -EPERM, "FREEZE of a running VF is refused", ret);
	ret = tern_vf_quiesce(h.vf);
	report(c, !ret, "QUIESCE", ret);
	ret = tern_vf_freeze(h.vf);
	report(c, !ret, "FREEZE of a quiesced VF", ret);
	ret = tern_vf_resume(h.vf);
	report(c, !ret, "RESUME of a frozen VF", ret);
	tern_vf_put(h.vf);
}

/* Stream VF a's full image into VF b, one chunk at a time. */
static void test_save_load(struct ctx *c)
{
	const char *what = "a full image streams from one VF into another";
	struct tern_vf_xfer sx = {}, lx = {};
	struct tern_vf_size size;
	u64 off = 0;
	struct pair p;
	int ret;

	if (c->nr_vfs < 2) {
		skip(c, what, "needs 2 VFs");
		return;
	}
	ret = pair_setup(c, &p);
	if (ret) {
		report(c, 0, what, ret);
		return;
	}

	ret = tern_vf_query(p.a.vf, &size);
	if (ret)
		goto out;
	ret = tern_vf_quiesce(p.b.vf) ?: tern_vf_freeze(p.b.vf);
	if (ret)
		goto out;

	do {
		ret = tern_vf_save(p.a.vf, off ? TERN_VF_SAVE_CONTINUE :
				   TERN_VF_SAVE_FULL, off, &p.buf->sgt,
				   TEST_CHUNK_PAGES * PAGE_SIZE, &sx);
		if (ret || !sx.bytes)
			break;
		if (!off && le32_to_cpup(page_address(p.buf->pages[0])) !=
			    TERN_IMAGE_MAGIC) {
			ret = -EBADMSG;
			break;
		}
		ret = tern_vf_load(p.b.vf, !off, off, &p.buf->sgt, sx.bytes,
				   &lx);
		off += sx.bytes;
	} while (!ret && sx.more);

	report(c, !ret && off == size.full && sx.image_size == size.full &&
	       lx.applied && !lx.more, what, ret);

	ret = tern_vf_query(p.a.vf, &size);
	report(c, !ret && size.incremental > 0 && size.incremental < size.full,
	       "after a save an incremental image is smaller than a full one",
	       ret);

	/* A base is a save since the last reset or load (device.rst). */
	ret = tern_vf_save(p.b.vf, TERN_VF_SAVE_INCREMENTAL, 0, &p.buf->sgt,
			   PAGE_SIZE, &sx);
	report(c, ret == -ENODATA,
	       "a loaded VF has no base for an incremental image", ret);

	ret = tern_vf_resume(p.b.vf);
	report(c, !ret, "the loaded VF resumes", ret);
out:
	pair_teardown(&p);
	if (ret)
		report(c, 0, "save and load", ret);
}

static u32 buf_crc(struct buf *b, u32 len)
{
	u32 crc = ~0, i;

	for (i = 0; len; i++) {
		u32 n = min_t(u32, len, PAGE_SIZE);

		crc = crc32c(crc, page_address(b->pages[i]), n);
		len -= n;
	}
	return ~crc;
}

/*
 * Interface 1.1 through the API: a save returns the device's CRC32C of
 * the bytes it wrote; tern_vf_load_crc() takes a chunk whose CRC matches
 * and refuses (-EBADMSG) one whose bytes or CRC differ, taking nothing.
 * The image streams through buffers mapped once (tern_vf_buf_map()).
 */
static void test_xfer_crc(struct ctx *c)
{
	const char *what = "a save's CRC is the data's; a load checks it; mapped buffers";
	struct tern_vf_buf *sbuf = NULL, *lbuf = NULL;
	struct tern_vf_xfer sx = {}, lx = {};
	struct tern_vf_info info;
	struct pair p;
	u64 off = 0;
	u32 crc;
	int ret;

	if (c->nr_vfs < 2) {
		skip(c, what, "needs 2 VFs");
		return;
	}
	ret = pair_setup(c, &p);
	if (ret) {
		report(c, 0, what, ret);
		return;
	}
	ret = tern_vf_identify(p.a.vf, &info);
	if (ret || !info.xfer_crc) {
		report(c, 0, "the device checksums chunks", ret);
		goto out;
	}
	ret = tern_vf_quiesce(p.b.vf) ?: tern_vf_freeze(p.b.vf);
	if (ret) {
		report(c, 0, what, ret);
		goto out;
	}
	sbuf = tern_vf_buf_map(p.a.vf, &p.buf->sgt, DMA_FROM_DEVICE);
	lbuf = tern_vf_buf_map(p.b.vf, &p.buf->sgt, DMA_TO_DEVICE);
	if (IS_ERR(sbuf) || IS_ERR(lbuf)) {
		ret = IS_ERR(sbuf) ? PTR_ERR(sbuf) : PTR_ERR(lbuf);
		report(c, 0, what, ret);
		goto out_map;
	}

	do {
		ret = tern_vf_save_buf(p.a.vf, off ? TERN_VF_SAVE_CONTINUE :
				       TERN_VF_SAVE_FULL, off, sbuf,
				       TEST_CHUNK_PAGES * PAGE_SIZE, &sx);
		if (ret || !sx.bytes)
			break;
		crc = buf_crc(p.buf, sx.bytes);
		if (sx.crc != crc) {
			ret = -EBADMSG;
			break;
		}
		if (!off) {
			/* A wrong CRC, then a flipped byte: nothing taken. */
			ret = tern_vf_load_crc(p.b.vf, true, 0, &p.buf->sgt,
					       sx.bytes, crc ^ 1, &lx);
			if (ret != -EBADMSG) {
				ret = ret ?: -EINVAL;
				break;
			}
			((u8 *)page_address(p.buf->pages[1]))[7] ^= 0x10;
			ret = tern_vf_load_crc(p.b.vf, true, 0, &p.buf->sgt,
					       sx.bytes, crc, &lx);
			((u8 *)page_address(p.buf->pages[1]))[7] ^= 0x10;
			if (ret != -EBADMSG) {
				ret = ret ?: -EINVAL;
				break;
			}
		}
		ret = tern_vf_load_buf(p.b.vf, !off, off, lbuf, 0, sx.bytes,
				       &crc, &lx);
		off += sx.bytes;
	} while (!ret && sx.more);
	report(c, !ret && lx.applied, what, ret);
out_map:
	if (!IS_ERR_OR_NULL(sbuf))
		tern_vf_buf_unmap(sbuf);
	if (!IS_ERR_OR_NULL(lbuf))
		tern_vf_buf_unmap(lbuf);
	tern_vf_resume(p.b.vf);
out:
	pair_teardown(&p);
}

/*
 * A SAVE into as many DMA segments as the device takes works, one more is
 * refused.  Segments of half a page at the start of their own page, so
 * that no IOMMU merges them.
 */
static void test_max_segments(struct ctx *c)
{
	const unsigned int seg = PAGE_SIZE / 2;
	struct tern_vf_info info = {};
	struct page **pages = NULL;
	struct tern_vf_xfer x = {};
	struct scatterlist *sg;
	struct sg_table sgt;
	unsigned int i, n = 0;
	struct holder h;
	int ret;

	ret = hold(&h, c->vfs[0]);
	if (ret) {
		report(c, 0, "DMA segment limit", ret);
		return;
	}
	ret = tern_vf_identify(h.vf, &info);
	if (ret || !info.max_xfer_segments || info.max_xfer_segments > 1000) {
		report(c, 0, "DMA segment limit", ret ?: -EINVAL);
		goto out;
	}
	n = info.max_xfer_segments + 1;
	pages = kcalloc(n, sizeof(*pages), GFP_KERNEL);
	if (!pages || sg_alloc_table(&sgt, n, GFP_KERNEL)) {
		kfree(pages);
		report(c, 0, "DMA segment limit", -ENOMEM);
		goto out;
	}
	for_each_sgtable_sg(&sgt, sg, i) {
		pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!pages[i]) {
			ret = -ENOMEM;
			break;
		}
		sg_set_page(sg, pages[i], seg, 0);
	}
	if (!ret) {
		ret = tern_vf_save(h.vf, TERN_VF_SAVE_FULL, 0, &sgt,
				   (n - 1) * seg, &x);
		report(c, !ret && x.bytes == (n - 1) * seg,
		       "a SAVE into max_xfer_segments DMA segments works", ret);
		ret = tern_vf_save(h.vf, TERN_VF_SAVE_CONTINUE, 0, &sgt,
				   n * seg, &x);
		report(c, ret == -E2BIG,
		       "a SAVE into one segment more fails with -E2BIG", ret);
	} else {
		report(c, 0, "DMA segment limit", ret);
	}
	for (i = 0; i < n && pages[i]; i++)
		__free_page(pages[i]);
	sg_free_table(&sgt);
	kfree(pages);
out:
	tern_vf_put(h.vf);
}

static int count_run(void *arg, u64 iova, u64 length)
{
	*(u64 *)arg += length;
	return 0;
}

static void test_dirty(struct ctx *c)
{
	struct tern_vf_range r = { .iova = 0, .length = 1ULL << 40 };
	struct holder h;
	u64 dirty = 0;
	int ret;

	ret = hold(&h, c->vfs[0]);
	if (ret) {
		report(c, 0, "dirty tracking", ret);
		return;
	}
	ret = tern_vf_dirty_stop(h.vf);
	report(c, ret == -EPERM, "DIRTY_STOP without tracking is refused", ret);
	ret = tern_vf_dirty_start(h.vf, &r, 1, 12);
	report(c, !ret, "DIRTY_START over 1 TiB", ret);
	ret = tern_vf_dirty_start(h.vf, &r, 1, 12);
	report(c, ret == -EBUSY, "a second DIRTY_START is refused", ret);
	ret = tern_vf_dirty_report(h.vf, 0, r.length, count_run, &dirty);
	report(c, !ret && !dirty, "an idle VF reports no dirty page", ret);
	ret = tern_vf_dirty_stop(h.vf);
	report(c, !ret, "DIRTY_STOP", ret);
	tern_vf_put(h.vf);
}

/* The VF's DMA engine, queue 0, driven here to dirty host pages. */
#define VQ_ENTRIES	512
#define DC_PAGES	600	/* every other one dirty: 300 runs */

struct vfdma {
	struct pci_dev *pdev;
	void __iomem *q;
	struct tern_desc *ring;
	dma_addr_t ring_dma;
	void *buf;
	dma_addr_t buf_dma;
	u32 tail;
};

static void vfdma_fini(struct vfdma *v)
{
	if (v->q)
		writel(0, v->q + TERN_Q_CTRL);
	if (v->buf)
		dma_free_coherent(&v->pdev->dev, DC_PAGES * PAGE_SIZE, v->buf,
				  v->buf_dma);
	if (v->ring)
		dma_free_coherent(&v->pdev->dev, VQ_ENTRIES * TERN_DESC_SIZE,
				  v->ring, v->ring_dma);
	if (v->q) {
		pci_iounmap(v->pdev, v->q - TERN_VF_REG_Q(0));
		pci_clear_master(v->pdev);
		pci_disable_device(v->pdev);
	}
}

static int vfdma_init(struct vfdma *v, struct pci_dev *pdev)
{
	void __iomem *regs;
	int ret;

	memset(v, 0, sizeof(*v));
	v->pdev = pdev;
	ret = pci_enable_device_mem(pdev);
	if (ret)
		return ret;
	regs = pci_iomap(pdev, TERN_VF_BAR_REGS, 0);
	if (!regs) {
		pci_disable_device(pdev);
		return -ENOMEM;
	}
	pci_set_master(pdev);
	v->q = regs + TERN_VF_REG_Q(0);
	v->ring = dma_alloc_coherent(&pdev->dev, VQ_ENTRIES * TERN_DESC_SIZE,
				     &v->ring_dma, GFP_KERNEL);
	v->buf = dma_alloc_coherent(&pdev->dev, DC_PAGES * PAGE_SIZE,
				    &v->buf_dma, GFP_KERNEL);
	if (!v->ring || !v->buf) {
		vfdma_fini(v);
		return -ENOMEM;
	}
	writel(0, v->q + TERN_Q_CTRL);
	writel(lower_32_bits(v->ring_dma), v->q + TERN_Q_BASE_LO);
	writel(upper_32_bits(v->ring_dma), v->q + TERN_Q_BASE_HI);
	writel(VQ_ENTRIES, v->q + TERN_Q_SIZE);
	writel(TERN_Q_CTRL_ENABLE, v->q + TERN_Q_CTRL);
	if (!(readl(v->q + TERN_Q_STATUS) & TERN_Q_STS_ENABLED)) {
		vfdma_fini(v);
		return -EIO;
	}
	return 0;
}

/* Queue a FILL of 8 bytes at page @page of the buffer. */
static void vfdma_fill(struct vfdma *v, unsigned int page)
{
	struct tern_desc *d = &v->ring[v->tail];

	memset(d, 0, sizeof(*d));
	d->opcode = TERN_DESC_FILL;
	d->len = cpu_to_le32(8);
	d->dst = cpu_to_le64(v->buf_dma + (u64)page * PAGE_SIZE);
	d->pattern = cpu_to_le64(0x7465726e7465726eULL);
	v->tail = (v->tail + 1) % VQ_ENTRIES;
}

/* Ring the doorbell and wait until the engine ran everything queued. */
static int vfdma_run(struct vfdma *v)
{
	unsigned int i;

	dma_wmb();
	writel(v->tail, v->q + TERN_Q_TAIL);
	for (i = 0; i < 10000; i++) {
		if (readl(v->q + TERN_Q_HEAD) == v->tail)
			return 0;
		usleep_range(1000, 2000);
	}
	return -ETIMEDOUT;
}

struct cursor {
	struct vfdma *v;
	u64 first;		/* IOVA of the buffer's first page */
	u64 last_end;
	unsigned int runs;
	unsigned int bad;	/* runs not after the previous one */
	bool rewrite;		/* write the first page after the first run */
	int err;
};

/*
 * Collect runs; after the first, write the first page again: had the
 * report started over at the range's start, it would see that page again.
 */
static int cursor_run(void *arg, u64 iova, u64 length)
{
	struct cursor *cur = arg;

	if (cur->runs && iova < cur->last_end)
		cur->bad++;
	cur->last_end = iova + length;
	if (!cur->runs++ && cur->rewrite) {
		vfdma_fill(cur->v, 0);
		cur->err = vfdma_run(cur->v);
	}
	return 0;
}

/*
 * More dirty runs than one DIRTY_REPORT returns (256), and the VF keeps
 * writing during the report: every run is reported once, in ascending
 * order; the page written again is reported by the next report.
 */
static void test_dirty_cursor(struct ctx *c)
{
	struct tern_vf_range r = { .iova = 0, .length = 1ULL << 40 };
	struct cursor cur = {};
	struct holder h;
	struct vfdma v;
	unsigned int i;
	char what[160];
	int ret;

	ret = hold(&h, c->vfs[0]);
	if (ret) {
		report(c, 0, "dirty report cursor", ret);
		return;
	}
	ret = vfdma_init(&v, c->vfs[0]);
	if (ret) {
		report(c, 0, "dirty report cursor: VF DMA engine", ret);
		tern_vf_put(h.vf);
		return;
	}
	ret = tern_vf_dirty_start(h.vf, &r, 1, PAGE_SHIFT);
	if (ret)
		goto out;
	for (i = 0; i < DC_PAGES; i += 2)
		vfdma_fill(&v, i);
	ret = vfdma_run(&v);
	if (ret)
		goto stop;

	cur.v = &v;
	cur.first = v.buf_dma;
	cur.rewrite = true;
	ret = tern_vf_dirty_report(h.vf, 0, r.length, cursor_run, &cur);
	snprintf(what, sizeof(what),
		 "a report longer than one DIRTY_REPORT goes on from its cursor (%u runs, %u out of order)",
		 cur.runs, cur.bad);
	report(c, !ret && !cur.err && cur.runs == DC_PAGES / 2 && !cur.bad,
	       what, ret ?: cur.err);

	memset(&cur, 0, sizeof(cur));
	cur.v = &v;
	ret = tern_vf_dirty_report(h.vf, 0, r.length, cursor_run, &cur);
	report(c, !ret && cur.runs == 1 && cur.last_end == v.buf_dma + PAGE_SIZE,
	       "the page written during the report is in the next one", ret);
stop:
	tern_vf_dirty_stop(h.vf);
out:
	if (ret)
		report(c, 0, "dirty report cursor", ret);
	vfdma_fini(&v);
	tern_vf_put(h.vf);
}

struct stress {
	struct tern_vf *vf;
	atomic_t *failures;
	struct completion done;
};

static int stress_fn(void *data)
{
	struct stress *s = data;
	struct tern_vf_info info;
	unsigned int i;
	struct tern_vf_size size;

	for (i = 0; i < TEST_ROUNDS; i++) {
		if (tern_vf_identify(s->vf, &info) ||
		    tern_vf_query(s->vf, &size))
			atomic_inc(s->failures);
	}
	complete(&s->done);
	return 0;
}

static void test_concurrency(struct ctx *c)
{
	unsigned int i, nr_threads = 0;
	atomic_t failures = ATOMIC_INIT(0);
	struct holder *h;
	struct stress *s;
	int ret = 0;

	h = kcalloc(c->nr_vfs, sizeof(*h), GFP_KERNEL);
	s = kcalloc(c->nr_vfs * TEST_THREADS_PER_VF, sizeof(*s), GFP_KERNEL);
	if (!h || !s) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < c->nr_vfs; i++) {
		ret = hold(&h[i], c->vfs[i]);
		if (ret)
			break;
	}
	if (ret) {
		while (i--)
			tern_vf_put(h[i].vf);
		goto out;
	}

	for (i = 0; i < c->nr_vfs * TEST_THREADS_PER_VF; i++) {
		struct task_struct *t;

		s[i].vf = h[i / TEST_THREADS_PER_VF].vf;
		s[i].failures = &failures;
		init_completion(&s[i].done);
		t = kthread_run(stress_fn, &s[i], "tern_pf_test/%u", i);
		if (IS_ERR(t)) {
			ret = PTR_ERR(t);
			break;
		}
		nr_threads++;
	}
	for (i = 0; i < nr_threads; i++)
		wait_for_completion(&s[i].done);
	for (i = 0; i < c->nr_vfs; i++)
		tern_vf_put(h[i].vf);

out:
	report(c, !ret && !atomic_read(&failures) && nr_threads > 1,
	       "commands from many VFs and threads at once", ret);
	kfree(s);
	kfree(h);
}

static void dbg_arm(struct ctx *c, unsigned int reg, u32 val)
{
	writel(val | TERN_DBG_ARM, c->dbg + reg);
}

/* The next @opcode of VF @vf completes with @status, unexecuted. */
static void dbg_fail(struct ctx *c, u16 vf, u8 opcode, u16 status)
{
	writel(vf, c->dbg + TERN_DBG_REG_FAIL_VF);
	writel(status, c->dbg + TERN_DBG_REG_FAIL_STATUS);
	dbg_arm(c, TERN_DBG_REG_FAIL_CMD, opcode);
}

static void test_faults(struct ctx *c)
{
	struct tern_vf_info info;
	struct holder h;
	struct tern_vf_size size;
	int ret;

	if (!c->dbg) {
		skip(c, "injected error status", "no debug BAR (x-debug=on)");
		skip(c, "late completion", "no debug BAR (x-debug=on)");
		skip(c, "unanswered command", "no debug BAR (x-debug=on)");
		return;
	}
	ret = hold(&h, c->vfs[0]);
	if (ret) {
		report(c, 0, "fault injection", ret);
		return;
	}

	writel(pci_iov_vf_id(c->vfs[0]), c->dbg + TERN_DBG_REG_FAIL_VF);
	writel(TERN_STS_INTERNAL, c->dbg + TERN_DBG_REG_FAIL_STATUS);
	dbg_arm(c, TERN_DBG_REG_FAIL_CMD, TERN_OP_QUERY_SIZE);
	ret = tern_vf_query(h.vf, &size);
	report(c, ret == -EIO, "an injected INTERNAL status gives -EIO", ret);
	ret = tern_vf_query(h.vf, &size);
	report(c, !ret, "the next command succeeds", ret);

	/* tern_pf.aq_timeout_ms is timeout_ms: complete 1.5 times later. */
	writel(timeout_ms * 5 / 2, c->dbg + TERN_DBG_REG_DELAY_MS);
	dbg_arm(c, TERN_DBG_REG_DELAY_CMD, TERN_OP_IDENTIFY);
	ret = tern_vf_identify(h.vf, &info);
	report(c, ret == -ETIMEDOUT, "a late command times out", ret);
	msleep(timeout_ms * 2);
	ret = tern_vf_identify(h.vf, &info);
	report(c, !ret, "after its late completion the queue works", ret);

	writel(TERN_DBG_MAX_DELAY_MS, c->dbg + TERN_DBG_REG_DELAY_MS);
	dbg_arm(c, TERN_DBG_REG_DELAY_CMD, TERN_OP_IDENTIFY);
	ret = tern_vf_identify(h.vf, &info);
	report(c, ret == -ETIMEDOUT, "an unanswered command times out", ret);
	ret = tern_vf_query(h.vf, &size);
	report(c, !ret, "other commands go on meanwhile", ret);
	/* ABORT ends it; a device without ABORT gets a reset after 4. */
	msleep(timeout_ms * 7);
	ret = tern_vf_identify(h.vf, &info);
	report(c, !ret, "once it is ended commands work", ret);

	/* The last resort: an ABORT that fails resets the queue. */
	dbg_fail(c, pci_iov_vf_id(c->vfs[0]), TERN_OP_ABORT,
		 TERN_STS_INTERNAL);
	writel(TERN_DBG_MAX_DELAY_MS, c->dbg + TERN_DBG_REG_DELAY_MS);
	dbg_arm(c, TERN_DBG_REG_DELAY_CMD, TERN_OP_IDENTIFY);
	ret = tern_vf_identify(h.vf, &info);
	report(c, ret == -ETIMEDOUT, "a command whose ABORT fails times out",
	       ret);
	msleep(timeout_ms * 7);
	writel(0, c->dbg + TERN_DBG_REG_FAIL_CMD);
	ret = tern_vf_identify(h.vf, &info);
	report(c, !ret, "after the queue reset commands work", ret);

	tern_vf_put(h.vf);
}

/* 64 pages, physically contiguous but each with its own refcount. */
static int buf_alloc_contig(struct buf *b)
{
	unsigned int i;
	struct page *p;
	int ret;

	BUILD_BUG_ON(TEST_CHUNK_PAGES != 64);
	p = alloc_pages(GFP_KERNEL | __GFP_ZERO, 6);
	if (!p)
		return -ENOMEM;
	split_page(p, 6);
	for (i = 0; i < TEST_CHUNK_PAGES; i++)
		b->pages[i] = p + i;
	ret = sg_alloc_table_from_pages(&b->sgt, b->pages, TEST_CHUNK_PAGES, 0,
					TEST_CHUNK_PAGES * PAGE_SIZE, GFP_KERNEL);
	if (ret)
		for (i = 0; i < TEST_CHUNK_PAGES; i++)
			__free_page(b->pages[i]);
	return ret;
}

#define TEST_REUSE_PAGES	1024
#define TEST_PATTERN		0x5a

/*
 * A SAVE or LOAD that times out and whose data DMA happens late, when
 * the device completes it.  ABORT is made to fail as on a device without
 * it (INVALID_OPCODE), so the command does complete late.  Its buffer is
 * one table entry over 64 pages (sg_alloc_table_from_pages() merges
 * contiguous pages).  The caller frees the buffer at once and the memory
 * is allocated again and filled with a pattern: the late DMA must not
 * reach it (nor read it) because the abandoned command holds every page.
 */
static void test_late_dma(struct ctx *c, u8 opcode)
{
	const char *op = opcode == TERN_OP_SAVE ? "SAVE" : "LOAD";
	u16 vf_id = pci_iov_vf_id(c->vfs[0]);
	struct page **reuse = NULL;
	unsigned long pfn0 = 0;
	struct tern_vf_xfer x;
	unsigned int i, held = 0, reused = 0, hit = 0;
	bool late_dma;
	struct holder h;
	struct buf *b;
	char what[192];
	int ret;

	b = kzalloc(sizeof(*b), GFP_KERNEL);
	ret = b ? buf_alloc_contig(b) : -ENOMEM;
	if (ret) {
		kfree(b);
		report(c, 0, "late DMA: buffer", ret);
		return;
	}
	pfn0 = page_to_pfn(b->pages[0]);
	ret = hold(&h, c->vfs[0]);
	if (ret) {
		buf_free(b);
		kfree(b);
		report(c, 0, "late DMA: handle", ret);
		return;
	}
	if (opcode == TERN_OP_LOAD) {
		ret = tern_vf_quiesce(h.vf) ?: tern_vf_freeze(h.vf);
		if (ret) {
			report(c, 0, "late DMA: freeze", ret);
			goto out;
		}
		memset(page_address(b->pages[0]), 0xff, PAGE_SIZE);
	}

	dbg_fail(c, vf_id, TERN_OP_ABORT, TERN_STS_INVALID_OPCODE);
	writel(timeout_ms * 5 / 2, c->dbg + TERN_DBG_REG_DELAY_MS);
	dbg_arm(c, TERN_DBG_REG_DELAY_CMD, TERN_DBG_DELAY_LATE_DMA | opcode);
	late_dma = readl(c->dbg + TERN_DBG_REG_DELAY_CMD) &
		   TERN_DBG_DELAY_LATE_DMA;
	if (opcode == TERN_OP_SAVE)
		ret = tern_vf_save(h.vf, TERN_VF_SAVE_FULL, 0, &b->sgt,
				   TEST_CHUNK_PAGES * PAGE_SIZE, &x);
	else
		ret = tern_vf_load(h.vf, true, 0, &b->sgt,
				   TEST_CHUNK_PAGES * PAGE_SIZE, &x);
	snprintf(what, sizeof(what), "a late %s times out", op);
	report(c, ret == -ETIMEDOUT, what, ret);

	for (i = 0; i < TEST_CHUNK_PAGES; i++)
		held += page_count(b->pages[i]) > 1;
	snprintf(what, sizeof(what),
		 "the abandoned %s holds all %u pages of its one SG entry (%u held)",
		 op, TEST_CHUNK_PAGES, held);
	report(c, b->sgt.orig_nents == 1 && held == TEST_CHUNK_PAGES, what,
	       b->sgt.orig_nents);

	/* The caller frees its buffer; someone else gets the memory. */
	buf_free(b);
	reuse = kcalloc(TEST_REUSE_PAGES, sizeof(*reuse), GFP_KERNEL);
	for (i = 0; reuse && i < TEST_REUSE_PAGES; i++) {
		reuse[i] = alloc_page(GFP_KERNEL);
		if (!reuse[i])
			break;
		memset(page_address(reuse[i]), TEST_PATTERN, PAGE_SIZE);
		if (page_to_pfn(reuse[i]) - pfn0 < TEST_CHUNK_PAGES)
			reused++;
	}
	/* The late completion, and its DMA, come now. */
	msleep(timeout_ms * 3);
	for (i = 0; reuse && i < TEST_REUSE_PAGES && reuse[i]; i++) {
		if (memchr_inv(page_address(reuse[i]), TEST_PATTERN, PAGE_SIZE))
			hit++;
		__free_page(reuse[i]);
	}
	kfree(reuse);
	snprintf(what, sizeof(what),
		 "memory reused after the %s's buffer was freed stays intact (%u of %u pages reused, %u hit)%s",
		 op, reused, TEST_CHUNK_PAGES, hit,
		 late_dma ? "" : " # SKIP the device has no LATE_DMA fault");
	report(c, !hit, what, hit);
	writel(0, c->dbg + TERN_DBG_REG_FAIL_CMD);
	if (opcode == TERN_OP_LOAD)
		tern_vf_resume(h.vf);
out:
	tern_vf_put(h.vf);
	kfree(b);
}

struct hammer {
	struct tern_vf *vf;
	bool identify_only;
	atomic_t *failures;
	atomic_t *commands;
	bool *stop;
	struct completion done;
};

static int hammer_fn(void *data)
{
	struct hammer *s = data;
	struct tern_vf_info info;
	struct tern_vf_size size;
	int ret;

	while (!READ_ONCE(*s->stop)) {
		ret = tern_vf_identify(s->vf, &info);
		if (!ret && !s->identify_only)
			ret = tern_vf_query(s->vf, &size);
		if (ret)
			atomic_inc(s->failures);
		atomic_inc(s->commands);
	}
	complete(&s->done);
	return 0;
}

#define TEST_HAMMERS	4

/*
 * A command of VF a never completes, while VF b (three threads) and VF a
 * itself (one thread) keep sending commands: only the stuck command's
 * caller sees an error, -ETIMEDOUT; ABORT ends it, and nothing resets the
 * queue (tern_pf.sh checks the counters).  The hammers run for longer
 * than a queue reset used to take to come.
 */
static void test_stuck(struct ctx *c)
{
	u16 vf_a = pci_iov_vf_id(c->vfs[0]);
	atomic_t failures = ATOMIC_INIT(0), commands = ATOMIC_INIT(0);
	struct hammer s[TEST_HAMMERS];
	unsigned int i, nr = 0;
	struct holder a, b;
	bool stop = false;
	struct tern_vf_size size;
	char what[192];
	int ret;

	if (!c->dbg || c->nr_vfs < 2) {
		skip(c, "a stuck command fails only its caller",
		     c->dbg ? "needs 2 VFs" : "no debug BAR (x-debug=on)");
		return;
	}
	writel(TERN_VF_NONE, c->dbg + TERN_DBG_REG_STUCK_VF);
	if (readl(c->dbg + TERN_DBG_REG_STUCK_VF) != TERN_VF_NONE) {
		skip(c, "a stuck command fails only its caller",
		     "the device has no STUCK_CMD fault");
		return;
	}
	writel(vf_a, c->dbg + TERN_DBG_REG_STUCK_VF);
	ret = hold(&a, c->vfs[0]);
	if (ret) {
		report(c, 0, "stuck: handle", ret);
		return;
	}
	ret = hold(&b, c->vfs[1]);
	if (ret) {
		tern_vf_put(a.vf);
		report(c, 0, "stuck: handle", ret);
		return;
	}
	for (i = 0; i < TEST_HAMMERS; i++) {
		struct task_struct *t;

		s[i].vf = i ? b.vf : a.vf;
		s[i].identify_only = !i;
		s[i].failures = &failures;
		s[i].commands = &commands;
		s[i].stop = &stop;
		init_completion(&s[i].done);
		t = kthread_run(hammer_fn, &s[i], "tern_pf_test/h%u", i);
		if (IS_ERR(t))
			break;
		nr++;
	}
	msleep(200);

	dbg_arm(c, TERN_DBG_REG_STUCK_CMD, TERN_OP_QUERY_SIZE);
	ret = tern_vf_query(a.vf, &size);
	report(c, ret == -ETIMEDOUT,
	       "the stuck command's caller gets -ETIMEDOUT", ret);
	/* A queue reset came after 4 more timeouts. */
	msleep(timeout_ms * 6);
	WRITE_ONCE(stop, true);
	for (i = 0; i < nr; i++)
		wait_for_completion(&s[i].done);
	snprintf(what, sizeof(what),
		 "meanwhile other commands of VF a and VF b all succeed (%d of %d failed)",
		 atomic_read(&failures), atomic_read(&commands));
	report(c, nr == TEST_HAMMERS && !atomic_read(&failures) &&
	       atomic_read(&commands) > 0, what, atomic_read(&failures));
	ret = tern_vf_query(a.vf, &size);
	report(c, !ret, "the stuck command's VF works again", ret);
	writel(0, c->dbg + TERN_DBG_REG_STUCK_CMD);
	tern_vf_put(b.vf);
	tern_vf_put(a.vf);
}

/* -errno of the last hang call. */
static u32 hang_errno;

/*
 * A command that completes only after a minute; tern_pf.sh kills the
 * reader, whose call must end at once with -EINTR.
 */
static void test_hang(struct ctx *c)
{
	struct holder h;
	struct tern_vf_size size;
	int ret;

	hang_errno = 0;
	if (!c->dbg) {
		skip(c, "a command that hangs", "no debug BAR (x-debug=on)");
		return;
	}
	ret = hold(&h, c->vfs[0]);
	if (ret) {
		report(c, 0, "hang: handle", ret);
		return;
	}
	writel(TERN_DBG_MAX_DELAY_MS, c->dbg + TERN_DBG_REG_DELAY_MS);
	dbg_arm(c, TERN_DBG_REG_DELAY_CMD, TERN_OP_QUERY_SIZE);
	ret = tern_vf_query(h.vf, &size);
	hang_errno = -ret;
	report(c, ret == -EINTR || ret == -ETIMEDOUT, "the hanging command ends",
	       ret);
	tern_vf_put(h.vf);
}

static void test_pf_unbind(struct ctx *c)
{
	struct tern_vf_info info;
	struct holder h;
	int ret;

	ret = hold(&h, c->vfs[0]);
	if (ret) {
		report(c, 0, "PF unbind", ret);
		return;
	}
	ret = c->pf->driver->sriov_configure(c->pf, 0);
	report(c, ret == -EBUSY,
	       "VFs cannot be disabled while a handle is held", ret);

	device_release_driver(&c->pf->dev);
	report(c, atomic_read(&h.removes) == 1,
	       "unbinding the PF tells the handle's holder", 0);
	ret = tern_vf_identify(h.vf, &info);
	report(c, ret == -ENODEV, "a handle of a removed PF fails cleanly",
	       ret);
	tern_vf_put(h.vf);
}

/* Find the VFs and their PF; false if there are none. */
static bool ctx_init(struct ctx *c, struct seq_file *m)
{
	struct pci_dev *pdev = NULL;

	memset(c, 0, sizeof(*c));
	c->m = m;
	while ((pdev = pci_get_device(TERN_PCI_VENDOR_ID, TERN_PCI_DEVICE_ID_VF,
				      pdev))) {
		if (c->nr_vfs < TEST_MAX_VFS)
			c->vfs[c->nr_vfs++] = pci_dev_get(pdev);
	}
	if (!c->nr_vfs) {
		seq_puts(m, "1..0 # SKIP no tern VF\n");
		return false;
	}
	c->pf = pci_dev_get(pci_physfn(c->vfs[0]));
	seq_puts(m, "TAP version 13\n");
	return true;
}

static void ctx_fini(struct ctx *c)
{
	unsigned int i;

	seq_printf(c->m, "1..%u\n", c->n);
	for (i = 0; i < c->nr_vfs; i++)
		pci_dev_put(c->vfs[i]);
	pci_dev_put(c->pf);
}

static int run_show(struct seq_file *m, void *unused)
{
	struct ctx c;

	if (!ctx_init(&c, m))
		return 0;
	test_handles(&c);
	test_identify(&c);
	test_suspend(&c);
	test_save_load(&c);
	test_xfer_crc(&c);
	test_max_segments(&c);
	test_dirty(&c);
	test_dirty_cursor(&c);
	test_concurrency(&c);
	ctx_fini(&c);
	return 0;
}

static int faults_show(struct seq_file *m, void *unused)
{
	struct ctx c;

	if (!ctx_init(&c, m))
		return 0;
	if (pci_resource_len(c.pf, TERN_PF_BAR_DEBUG))
		c.dbg = pci_iomap(c.pf, TERN_PF_BAR_DEBUG, 0);
	test_faults(&c);
	if (c.dbg) {
		test_late_dma(&c, TERN_OP_SAVE);
		test_late_dma(&c, TERN_OP_LOAD);
		pci_iounmap(c.pf, c.dbg);
	}
	ctx_fini(&c);
	return 0;
}

static int stuck_show(struct seq_file *m, void *unused)
{
	struct ctx c;

	if (!ctx_init(&c, m))
		return 0;
	if (pci_resource_len(c.pf, TERN_PF_BAR_DEBUG))
		c.dbg = pci_iomap(c.pf, TERN_PF_BAR_DEBUG, 0);
	test_stuck(&c);
	if (c.dbg)
		pci_iounmap(c.pf, c.dbg);
	ctx_fini(&c);
	return 0;
}

static int hang_show(struct seq_file *m, void *unused)
{
	struct ctx c;

	if (!ctx_init(&c, m))
		return 0;
	if (pci_resource_len(c.pf, TERN_PF_BAR_DEBUG))
		c.dbg = pci_iomap(c.pf, TERN_PF_BAR_DEBUG, 0);
	test_hang(&c);
	if (c.dbg)
		pci_iounmap(c.pf, c.dbg);
	ctx_fini(&c);
	return 0;
}

static int unbind_show(struct seq_file *m, void *unused)
{
	struct ctx c;

	if (!ctx_init(&c, m))
		return 0;
	test_pf_unbind(&c);
	ctx_fini(&c);
	return 0;
}

/* Room for all the output: a seq_file overflow would run the tests twice. */
/* The debugfs files: reading one runs its tests and reports them. */
static const struct test_file {
	const char *name;
	int (*show)(struct seq_file *m, void *unused);
} test_files[] = {
	{ "run", run_show },
	{ "faults", faults_show },
	{ "unbind", unbind_show },
	{ "stuck", stuck_show },
	{ "hang", hang_show },
};

static int test_open(struct inode *inode, struct file *file)
{
	const struct test_file *t = inode->i_private;

	return single_open_size(file, t->show, NULL, SZ_64K);
}

static const struct file_operations test_fops = {
	.owner = THIS_MODULE,
	.open = test_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = single_release,
};

static struct dentry *tern_pf_test_dir;

static int __init tern_pf_test_init(void)
{
	size_t i;

	tern_pf_test_dir = debugfs_create_dir("tern_pf_test", NULL);
	for (i = 0; i < ARRAY_SIZE(test_files); i++)
		debugfs_create_file(test_files[i].name, 0400, tern_pf_test_dir,
				    (void *)&test_files[i], &test_fops);
	debugfs_create_u32("hang_errno", 0400, tern_pf_test_dir, &hang_errno);
	return 0;
}

static void __exit tern_pf_test_exit(void)
{
	debugfs_remove_recursive(tern_pf_test_dir);
}

module_init(tern_pf_test_init);
module_exit(tern_pf_test_exit);

MODULE_DESCRIPTION("Test client of the tern PF driver's VF API");
MODULE_LICENSE("GPL");
