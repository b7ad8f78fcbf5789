// SPDX-License-Identifier: GPL-2.0
/*
 * tern PF driver: the admin queue.
 *
 * Commands go into a ring in host memory and complete, possibly out of
 * order, into a completion ring with a phase bit; an MSI-X interrupt says
 * that completions arrived.  Each command in flight owns a slot of the
 * queue (see tern_pf.h): callers never lend stack memory to the device.
 */

#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>

#include "tern_pf.h"
#define CREATE_TRACE_POINTS
#include "trace.h"

unsigned int tern_aq_timeout_ms = 10000;
module_param_named(aq_timeout_ms, tern_aq_timeout_ms, uint, 0644);
MODULE_PARM_DESC(aq_timeout_ms, "admin command timeout in ms (default 10000)");

static unsigned int tern_aq_depth = 128;
module_param_named(aq_depth, tern_aq_depth, uint, 0444);
MODULE_PARM_DESC(aq_depth, "admin queue ring entries, 64..4096 (default 128)");

/* A caller waits this many timeouts for a free slot. */
#define TERN_AQ_SLOT_WAIT_TIMEOUTS	4
/* Without ABORT, an abandoned command gets this many timeouts to end. */
#define TERN_AQ_GRACE_TIMEOUTS		4
/* How often a waiter looks for a completion whose interrupt is late. */
#define TERN_AQ_POLL_MS		100
/* Most CPU segments one save or load may bring. */
#define TERN_AQ_MAX_DATA_SEGS	1024

static const char * const tern_op_names[] = {
	[TERN_OP_IDENTIFY] = "IDENTIFY",
	[TERN_OP_QUIESCE] = "QUIESCE",
	[TERN_OP_FREEZE] = "FREEZE",
	[TERN_OP_RESUME] = "RESUME",
	[TERN_OP_QUERY_SIZE] = "QUERY_SIZE",
	[TERN_OP_SAVE] = "SAVE",
	[TERN_OP_LOAD] = "LOAD",
	[TERN_OP_DIRTY_START] = "DIRTY_START",
	[TERN_OP_DIRTY_REPORT] = "DIRTY_REPORT",
	[TERN_OP_DIRTY_STOP] = "DIRTY_STOP",
	[TERN_OP_ABORT] = "ABORT",
};

const char *tern_op_name(u8 opcode)
{
	if (opcode < ARRAY_SIZE(tern_op_names) && tern_op_names[opcode])
		return tern_op_names[opcode];
	return "UNKNOWN";
}

static const struct {
	const char *name;
	int err;
} tern_statuses[] = {
	[TERN_STS_SUCCESS] = { "success", 0 },
	[TERN_STS_INVALID_OPCODE] = { "invalid opcode", -EOPNOTSUPP },
	[TERN_STS_INVALID_VF] = { "invalid VF", -ENXIO },
	[TERN_STS_INVALID_FIELD] = { "invalid field", -EINVAL },
	[TERN_STS_INVALID_STATE] = { "invalid state", -EPERM },
	[TERN_STS_DMA_ERROR] = { "DMA error", -EFAULT },
	[TERN_STS_NO_BASE] = { "no base image", -ENODATA },
	[TERN_STS_INVALID_OFFSET] = { "invalid offset", -ESPIPE },
	[TERN_STS_BUSY] = { "busy", -EBUSY },
	[TERN_STS_ABORTED] = { "aborted", -EIO },
	[TERN_STS_DATA_CRC] = { "load: chunk CRC mismatch", -EBADMSG },
	[TERN_STS_IMG_MAGIC] = { "image: bad magic", -EBADMSG },
	[TERN_STS_IMG_VERSION] = { "image: unsupported version", -EPROTONOSUPPORT },
	[TERN_STS_IMG_CONFIG] = { "image: VF configuration differs", -EINVAL },
	[TERN_STS_IMG_SIZE] = { "image: bad sizes", -EMSGSIZE },
	[TERN_STS_IMG_CHECKSUM] = { "image: checksum mismatch", -EBADMSG },
	[TERN_STS_IMG_CORRUPT] = { "image: inconsistent contents", -EBADMSG },
	[TERN_STS_IMG_SEQUENCE] = { "image: wrong session or order", -EILSEQ },
	[TERN_STS_DIRTY_OVERFLOW] = { "dirty tracker overflow", -EOVERFLOW },
	[TERN_STS_INTERNAL] = { "internal error", -EIO },
};

static const char *tern_status_name(u16 status)
{
	if (status < ARRAY_SIZE(tern_statuses) && tern_statuses[status].name)
		return tern_statuses[status].name;
	return "unknown status";
}

static int tern_status_errno(u16 status)
{
	if (status < ARRAY_SIZE(tern_statuses) && tern_statuses[status].name)
		return tern_statuses[status].err;
	return -EIO;
}

static void aq_reap(struct tern_aq *aq);

static struct device *aq_dev(struct tern_aq *aq)
{
	return &aq->pf->pdev->dev;
}

static void aq_writel(struct tern_aq *aq, u32 val, unsigned int reg)
{
	writel(val, aq->pf->regs + reg);
}

static u32 aq_readl(struct tern_aq *aq, unsigned int reg)
{
	return readl(aq->pf->regs + reg);
}

static u16 slot_tag(struct tern_aq *aq, struct tern_aq_slot *slot)
{
	return (slot->gen << TERN_AQ_SLOT_BITS) | (slot - aq->slots);
}

/* Give back a slot's DMA resources; the device is done with them. */
static void slot_release_data(struct tern_aq *aq, struct tern_aq_slot *slot)
{
	struct sg_page_iter piter;

	if (slot->vbuf) {
		tern_vf_buf_put(slot->vbuf);
		slot->vbuf = NULL;
	}
	if (!slot->data)
		return;
	if (slot->data_mapped)
		dma_unmap_sgtable(aq_dev(aq), slot->data, slot->dir, 0);
	if (slot->pages_held)
		for_each_sgtable_page(slot->data, &piter, 0)
			put_page(sg_page_iter_page(&piter));
	sg_free_table(slot->data);
	kfree(slot->data);
	slot->data = NULL;
	slot->data_mapped = false;
	slot->pages_held = false;
}

/* Called with aq->lock held. */
static void slot_free(struct tern_aq *aq, struct tern_aq_slot *slot)
{
	slot_release_data(aq, slot);
	slot->state = TERN_SLOT_FREE;
	slot->gen = (slot->gen + 1) & (U16_MAX >> TERN_AQ_SLOT_BITS);
	aq->stats.inflight--;
	if (slot != aq->abort_slot)
		wake_up(&aq->slot_wait);
}

/* Called with aq->lock held. */
static void slot_take(struct tern_aq *aq, struct tern_aq_slot *slot)
{
	slot->state = TERN_SLOT_BUSY;
	aq->stats.inflight++;
	aq->stats.max_inflight = max(aq->stats.max_inflight,
				     aq->stats.inflight);
}

/* Take a free slot other than the watchdog's; false if there is none. */
static bool slot_try_get(struct tern_aq *aq, struct tern_aq_slot **slotp)
{
	unsigned int i;

	spin_lock_irq(&aq->lock);
	for (i = 0; i < aq->nr_slots; i++) {
		struct tern_aq_slot *slot = &aq->slots[i];

		if (slot != aq->abort_slot && slot->state == TERN_SLOT_FREE) {
			slot_take(aq, slot);
			*slotp = slot;
			break;
		}
	}
	spin_unlock_irq(&aq->lock);
	return *slotp;
}

/*
 * Wait for a free slot; a fatal signal ends the wait.  No command has
 * been sent then, but the caller cannot tell -EINTR apart.
 */
static struct tern_aq_slot *slot_get(struct tern_aq *aq)
{
	unsigned long wait = msecs_to_jiffies(TERN_AQ_SLOT_WAIT_TIMEOUTS *
					      tern_aq_timeout_ms);
	struct tern_aq_slot *slot = NULL;
	long ret;

	ret = wait_event_killable_timeout(aq->slot_wait,
					  slot_try_get(aq, &slot), wait);
	if (ret < 0)
		return ERR_PTR(-EINTR);
	if (!ret)
		return ERR_PTR(-ETIMEDOUT);
	return slot;
}

/*
 * Copy the first @len bytes of the caller's table into one the slot
 * owns, so that an abandoned command never depends on caller memory.
 * The pages must be ones a reference can be taken on (slot_abandon()).
 */
static int slot_copy_data(struct tern_aq_slot *slot, struct sg_table *src,
			  u32 len)
{
	struct scatterlist *sg, *dst;
	unsigned int i, n = 0;
	u32 left = len;
	int ret;

	for_each_sgtable_sg(src, sg, i) {
		if (!left)
			break;
		left -= min(left, sg->length);
		n++;
	}
	if (left || !n)
		return -EINVAL;
	if (n > TERN_AQ_MAX_DATA_SEGS)
		return -E2BIG;

	slot->data = kzalloc(sizeof(*slot->data), GFP_KERNEL);
	if (!slot->data)
		return -ENOMEM;
	ret = sg_alloc_table(slot->data, n, GFP_KERNEL);
	if (ret) {
		kfree(slot->data);
		slot->data = NULL;
		return ret;
	}

	left = len;
	dst = slot->data->sgl;
	for_each_sgtable_sg(src, sg, i) {
		u32 chunk = min(left, sg->length);

		if (!chunk)
			break;
		sg_set_page(dst, sg_page(sg), chunk, sg->offset);
		dst = sg_next(dst);
		left -= chunk;
	}
	return 0;
}

/* Pages of slab memory or tails of non-compound allocations cannot be held. */
static bool slot_pages_refcounted(struct tern_aq_slot *slot)
{
	struct sg_page_iter piter;

	for_each_sgtable_page(slot->data, &piter, 0) {
		struct page *page = sg_page_iter_page(&piter);

		if (PageSlab(page) || !folio_ref_count(page_folio(page)))
			return false;
	}
	return true;
}

/* Map the slot's data and list its DMA segments in the slot buffer. */
static int slot_map_data(struct tern_aq *aq, struct tern_aq_slot *slot,
			 const struct tern_aq_io *io, u32 *nr_segs)
{
	struct tern_sg *list = slot->buf;
	struct scatterlist *sg;
	unsigned int i, n = 0;
	int ret;

	ret = slot_copy_data(slot, io->data, io->data_len);
	if (ret)
		return ret;
	if (WARN_ON_ONCE(!slot_pages_refcounted(slot)))
		return -EINVAL;
	slot->dir = io->dir;
	ret = dma_map_sgtable(aq_dev(aq), slot->data, io->dir, 0);
	if (ret)
		return ret;
	slot->data_mapped = true;

	/* The device's limit counts DMA segments: after IOMMU merging. */
	for_each_sgtable_dma_sg(slot->data, sg, i) {
		if (n == aq->max_sg)
			return -E2BIG;
		list[n].addr = cpu_to_le64(sg_dma_address(sg));
		list[n].len = cpu_to_le32(sg_dma_len(sg));
		list[n].rsvd = 0;
		n++;
	}
	*nr_segs = n;
	return 0;
}

/*
 * List @io->data_len bytes of a buffer mapped once, from @io->vbuf_off,
 * in the slot buffer; the slot holds the buffer until the device is done.
 */
static int slot_use_vbuf(struct tern_aq *aq, struct tern_aq_slot *slot,
			 const struct tern_aq_io *io, u32 *nr_segs)
{
	u32 left = io->data_len, off = io->vbuf_off, pos = 0;
	struct tern_sg *list = slot->buf;
	struct scatterlist *sg;
	unsigned int i, n = 0;

	if (!left)
		return -EINVAL;
	for_each_sgtable_dma_sg(&io->vbuf->sgt, sg, i) {
		u32 len = sg_dma_len(sg), skip, take;

		if (pos + len > off) {
			if (n == aq->max_sg)
				return -E2BIG;
			skip = off > pos ? off - pos : 0;
			take = min(len - skip, left);
			list[n].addr = cpu_to_le64(sg_dma_address(sg) + skip);
			list[n].len = cpu_to_le32(take);
			list[n].rsvd = 0;
			n++;
			left -= take;
			if (!left)
				break;
		}
		pos += len;
	}
	if (left)
		return -EINVAL;
	kref_get(&io->vbuf->ref);
	slot->vbuf = io->vbuf;
	*nr_segs = n;
	return 0;
}

/* Point the command at the slot buffer. */
static void cmd_set_buf(struct tern_aq_cmd *cmd, dma_addr_t addr, u32 count)
{
	switch (cmd->opcode) {
	case TERN_OP_IDENTIFY:
		cmd->identify.addr = cpu_to_le64(addr);
		cmd->identify.len = cpu_to_le32(TERN_AQ_BUF_SIZE);
		break;
	case TERN_OP_SAVE:
	case TERN_OP_LOAD:
		cmd->xfer.sg_addr = cpu_to_le64(addr);
		cmd->xfer.sg_count = cpu_to_le32(count);
		break;
	case TERN_OP_DIRTY_START:
		cmd->dirty_start.ranges_addr = cpu_to_le64(addr);
		break;
	case TERN_OP_DIRTY_REPORT:
		cmd->dirty_report.buf_addr = cpu_to_le64(addr);
		cmd->dirty_report.buf_entries =
			cpu_to_le32(TERN_AQ_BUF_SIZE / TERN_RANGE_SIZE);
		break;
	}
}

static int slot_prepare(struct tern_aq *aq, struct tern_aq_slot *slot,
			struct tern_aq_cmd *cmd, const struct tern_aq_io *io)
{
	u32 nr_segs = 0;
	int ret;

	if (io && io->in_len > TERN_AQ_BUF_SIZE)
		return -EINVAL;
	if (io && io->out_len > TERN_AQ_BUF_SIZE)
		return -EINVAL;

	memset(slot->buf, 0, TERN_AQ_BUF_SIZE);
	if (io && io->in)
		memcpy(slot->buf, io->in, io->in_len);
	if (io && io->vbuf) {
		ret = slot_use_vbuf(aq, slot, io, &nr_segs);
		if (ret)
			return ret;
	} else if (io && io->data) {
		ret = slot_map_data(aq, slot, io, &nr_segs);
		if (ret)
			return ret;
	}
	cmd_set_buf(cmd, slot->buf_dma, nr_segs);
	slot->opcode = cmd->opcode;
	slot->vf = le16_to_cpu(cmd->vf);
	reinit_completion(&slot->done);
	return 0;
}

/*
 * The caller leaves; the device may still read or write the command's
 * memory.  The slot buffer and the DMA mapping are the slot's already.
 * The data pages are the caller's, who frees them when we return: hold
 * every one of them (an entry of the table may span many pages, as
 * sg_alloc_table_from_pages() merges contiguous ones) until the device
 * is done.  Called with aq->lock held, while the caller still holds its
 * pages.
 */
static void slot_abandon(struct tern_aq *aq, struct tern_aq_slot *slot,
			 int why)
{
	struct sg_page_iter piter;

	if (slot->data && !slot->pages_held) {
		for_each_sgtable_page(slot->data, &piter, 0)
			get_page(sg_page_iter_page(&piter));
		slot->pages_held = true;
	}
	slot->state = TERN_SLOT_ABANDONED;
	slot->abandoned_at = jiffies;
	slot->no_abort = false;
	if (why == -EINTR)
		aq->stats.interrupted++;
	else
		aq->stats.timeouts++;
}

static void aq_log_result(struct tern_aq *aq, const struct tern_aq_cmd *cmd,
			  u16 status, int ret)
{
	struct device *dev = aq_dev(aq);
	const char *op = tern_op_name(cmd->opcode);
	u16 vf = le16_to_cpu(cmd->vf);

	if (ret == -ETIMEDOUT)
		dev_err_ratelimited(dev, "%s for VF %u timed out after %u ms\n",
				    op, vf, tern_aq_timeout_ms);
	else if (ret == -EINTR)
		dev_warn_ratelimited(dev, "%s for VF %u abandoned: caller killed\n",
				     op, vf);
	else if (ret == -EIO && !status)
		dev_err_ratelimited(dev, "%s for VF %u failed: admin queue reset\n",
				    op, vf);
	else if (ret)
		dev_err_ratelimited(dev, "%s for VF %u failed: status 0x%02x (%s)\n",
				    op, vf, status, tern_status_name(status));
}

/*
 * Wait for the slot's completion.  Like NVMe's timeout handler, look at
 * the completion ring ourselves now and then: a completion whose
 * interrupt went missing must not pass for a dead device.
 *
 * Return: 0 when the slot completed or the time is up, -EINTR on a
 * fatal signal (if @killable).
 */
static int tern_aq_wait(struct tern_aq *aq, struct tern_aq_slot *slot,
			unsigned long timeout, bool killable)
{
	unsigned long end = jiffies + timeout;
	unsigned long poll = msecs_to_jiffies(TERN_AQ_POLL_MS);
	bool done;
	long ret;

	for (;;) {
		if (killable)
			ret = wait_for_completion_killable_timeout(&slot->done,
								   poll);
		else
			ret = wait_for_completion_timeout(&slot->done, poll);
		if (ret > 0)
			return 0;
		if (ret < 0)
			return -EINTR;
		spin_lock_irq(&aq->lock);
		aq_reap(aq);
		done = slot->state != TERN_SLOT_BUSY;
		if (slot->state == TERN_SLOT_DONE)
			aq->stats.polled++;
		spin_unlock_irq(&aq->lock);
		if (done || time_after(jiffies, end))
			return 0;
	}
}

/*
 * Send a prepared command in @slot, wait for it and collect its result.
 * A command that does not complete in time, or whose caller is killed
 * (@killable), is abandoned in its slot; the watchdog ends it.
 */
static int aq_run(struct tern_aq *aq, struct tern_aq_slot *slot,
		  struct tern_aq_cmd *cmd, const struct tern_aq_io *io,
		  struct tern_aq_cpl *cpl, bool killable)
{
	unsigned long timeout = msecs_to_jiffies(tern_aq_timeout_ms);
	u16 status = 0;
	ktime_t start;
	int ret, wret;

	ret = slot_prepare(aq, slot, cmd, io);

	spin_lock_irq(&aq->lock);
	if (!ret && !aq->up)
		ret = -EIO;
	if (ret) {
		slot_free(aq, slot);
		spin_unlock_irq(&aq->lock);
		return ret;
	}
	cmd->tag = cpu_to_le16(slot_tag(aq, slot));
	start = ktime_get();
	aq->cmds[aq->cmd_tail] = *cmd;
	/* The command must be in memory before the doorbell. */
	dma_wmb();
	aq->cmd_tail = (aq->cmd_tail + 1) % aq->depth;
	aq_writel(aq, aq->cmd_tail, TERN_PF_REG_AQ_CMD_TAIL);
	aq->stats.submitted[cmd->opcode]++;
	spin_unlock_irq(&aq->lock);

	wret = tern_aq_wait(aq, slot, timeout, killable);

	spin_lock_irq(&aq->lock);
	switch (slot->state) {
	case TERN_SLOT_DONE:
		status = le16_to_cpu(slot->cpl.status);
		ret = tern_status_errno(status);
		if (ret)
			aq->stats.errors++;
		if (cpl)
			*cpl = slot->cpl;
		if (!ret && io && io->out)
			memcpy(io->out, slot->buf, io->out_len);
		slot_free(aq, slot);
		break;
	case TERN_SLOT_RESET:
		ret = -EIO;
		slot_free(aq, slot);
		break;
	default:
		ret = wret ?: -ETIMEDOUT;
		slot_abandon(aq, slot, ret);
		break;
	}
	spin_unlock_irq(&aq->lock);

	/* Have the watchdog end the command now; it waits for ABORT. */
	if (ret == -ETIMEDOUT || ret == -EINTR)
		mod_delayed_work(system_long_wq, &aq->watchdog, 0);

	trace_tern_pf_cmd(aq->pf->pdev, cmd->opcode, le16_to_cpu(cmd->vf),
			  le16_to_cpu(cmd->tag), status, ret,
			  ktime_us_delta(ktime_get(), start));
	aq_log_result(aq, cmd, status, ret);
	return ret;
}

/**
 * tern_aq_exec - run one admin command and wait for it
 * @aq: the queue
 * @cmd: the command; opcode, flags, vf and fields set, tag and buffer
 *	addresses are filled in here
 * @io: the memory the command uses, or NULL
 * @cpl: receives the completion, or NULL
 *
 * The wait ends early on a fatal signal: the command is then abandoned
 * as on a timeout.
 *
 * Return: 0, or a negative errno (the device's status mapped, -ETIMEDOUT,
 * -EINTR on a fatal signal, -E2BIG if the data has more DMA segments
 * than the device takes, -EIO when the queue is down or was reset under
 * the command).
 */
int tern_aq_exec(struct tern_aq *aq, struct tern_aq_cmd *cmd,
		 const struct tern_aq_io *io, struct tern_aq_cpl *cpl)
{
	struct tern_aq_slot *slot;

	/* ABORT is the watchdog's. */
	if (cmd->opcode > TERN_OP_DIRTY_STOP)
		return -EINVAL;
	slot = slot_get(aq);
	if (IS_ERR(slot))
		return PTR_ERR(slot);
	return aq_run(aq, slot, cmd, io, cpl, true);
}

/**
 * tern_aq_identify_device - read the device's limits into the queue
 * @aq: the queue, enabled
 *
 * IDENTIFY with no VF: the SG entries a command takes.
 *
 * Return: 0 or a negative errno.
 */
int tern_aq_identify_device(struct tern_aq *aq)
{
	struct tern_aq_cmd cmd = {
		.opcode = TERN_OP_IDENTIFY,
		.vf = cpu_to_le16(TERN_VF_NONE),
	};
	struct tern_identify *id;
	struct tern_aq_io io = { .out_len = sizeof(*id) };
	unsigned int max_sg;
	int ret;

	id = kzalloc(sizeof(*id), GFP_KERNEL);
	if (!id)
		return -ENOMEM;
	io.out = id;
	ret = tern_aq_exec(aq, &cmd, &io, NULL);
	if (!ret && le32_to_cpu(id->magic) != TERN_PF_MAGIC)
		ret = -EIO;
	max_sg = le16_to_cpu(id->max_sg_entries);
	kfree(id);
	if (ret)
		return ret;
	if (!max_sg) {
		dev_err(aq_dev(aq), "device takes no SG entries\n");
		return -ENODEV;
	}
	/* The slot buffer holds the list. */
	aq->max_sg = min3(max_sg, (unsigned int)TERN_MAX_SG_ENTRIES,
			  (unsigned int)(TERN_AQ_BUF_SIZE / TERN_SG_SIZE));
	return 0;
}

/* Hand completions to their slots.  Called with aq->lock held. */
static void aq_reap(struct tern_aq *aq)
{
	bool reaped = false;

	while (aq->up) {
		struct tern_aq_cpl *c = &aq->cpls[aq->cpl_head];
		struct tern_aq_slot *slot;
		u16 tag, idx;

		if ((le16_to_cpu(READ_ONCE(c->flags)) & TERN_CPL_F_PHASE) !=
		    aq->phase)
			break;
		/* Read the entry only after seeing its phase. */
		dma_rmb();
		tag = le16_to_cpu(c->tag);
		idx = tag & (TERN_AQ_SLOTS - 1);
		slot = idx < aq->nr_slots ? &aq->slots[idx] : NULL;

		if (!slot || slot->gen != tag >> TERN_AQ_SLOT_BITS ||
		    (slot->state != TERN_SLOT_BUSY &&
		     slot->state != TERN_SLOT_ABANDONED)) {
			aq->stats.stray++;
			dev_warn_ratelimited(aq_dev(aq),
					     "completion with unknown tag 0x%04x dropped\n",
					     tag);
		} else if (slot->state == TERN_SLOT_ABANDONED) {
			u16 status = le16_to_cpu(c->status);

			/* The device is done with the command's memory. */
			if (status == TERN_STS_ABORTED) {
				aq->stats.aborted++;
			} else {
				aq->stats.late++;
				dev_warn_ratelimited(aq_dev(aq),
						     "late completion of %s for VF %u dropped (status 0x%02x)\n",
						     tern_op_name(slot->opcode),
						     slot->vf, status);
			}
			slot_free(aq, slot);
		} else {
			slot->cpl = *c;
			slot->state = TERN_SLOT_DONE;
			complete(&slot->done);
		}

		if (++aq->cpl_head == aq->depth) {
			aq->cpl_head = 0;
			aq->phase ^= TERN_CPL_F_PHASE;
		}
		reaped = true;
	}
	if (reaped)
		aq_writel(aq, aq->cpl_head, TERN_PF_REG_AQ_CPL_HEAD);
}

static irqreturn_t tern_aq_irq(int irq, void *data)
{
	struct tern_aq *aq = data;

	spin_lock(&aq->lock);
	aq_reap(aq);
	spin_unlock(&aq->lock);
	return IRQ_HANDLED;
}

/**
 * tern_aq_enable - start the queue on zeroed rings
 * @aq: the queue, disabled
 *
 * Return: 0, or -EIO if the device refuses the configuration.
 */
int tern_aq_enable(struct tern_aq *aq)
{
	u32 sts;

	memset(aq->cmds, 0, aq->depth * sizeof(*aq->cmds));
	memset(aq->cpls, 0, aq->depth * sizeof(*aq->cpls));
	aq->cmd_tail = 0;
	aq->cpl_head = 0;
	aq->phase = TERN_CPL_F_PHASE;

	aq_writel(aq, lower_32_bits(aq->cmds_dma), TERN_PF_REG_AQ_CMD_BASE_LO);
	aq_writel(aq, upper_32_bits(aq->cmds_dma), TERN_PF_REG_AQ_CMD_BASE_HI);
	aq_writel(aq, aq->depth, TERN_PF_REG_AQ_CMD_SIZE);
	aq_writel(aq, lower_32_bits(aq->cpls_dma), TERN_PF_REG_AQ_CPL_BASE_LO);
	aq_writel(aq, upper_32_bits(aq->cpls_dma), TERN_PF_REG_AQ_CPL_BASE_HI);
	aq_writel(aq, aq->depth, TERN_PF_REG_AQ_CPL_SIZE);
	aq_writel(aq, TERN_PF_CTRL_ENABLE, TERN_PF_REG_CTRL);

	sts = aq_readl(aq, TERN_PF_REG_STATUS);
	if (!(sts & TERN_PF_STS_READY)) {
		dev_err_ratelimited(aq_dev(aq),
				    "admin queue did not start: status 0x%08x\n",
				    sts);
		aq_writel(aq, 0, TERN_PF_REG_CTRL);
		return -EIO;
	}

	spin_lock_irq(&aq->lock);
	aq->up = true;
	spin_unlock_irq(&aq->lock);
	return 0;
}

/**
 * tern_aq_disable - stop the queue and fail what is in flight
 * @aq: the queue
 *
 * Once the device's queue is disabled it writes nothing more for the
 * commands it had fetched, so their memory can be given back.  Waiting
 * callers get -EIO.
 */
void tern_aq_disable(struct tern_aq *aq)
{
	unsigned int i;

	spin_lock_irq(&aq->lock);
	aq->up = false;
	spin_unlock_irq(&aq->lock);

	aq_writel(aq, 0, TERN_PF_REG_CTRL);
	/* Flush the write: from here on the device is done with the rings. */
	aq_readl(aq, TERN_PF_REG_STATUS);

	spin_lock_irq(&aq->lock);
	for (i = 0; i < aq->nr_slots; i++) {
		struct tern_aq_slot *slot = &aq->slots[i];

		if (slot->state == TERN_SLOT_BUSY) {
			slot->state = TERN_SLOT_RESET;
			complete(&slot->done);
		} else if (slot->state == TERN_SLOT_ABANDONED) {
			slot_free(aq, slot);
		}
	}
	spin_unlock_irq(&aq->lock);
}

/* Reset the queue: the device forgets every command it had fetched. */
static void aq_reset(struct tern_aq *aq, const char *why)
{
	dev_err_ratelimited(aq_dev(aq), "admin queue reset: %s\n", why);
	tern_aq_disable(aq);
	aq->stats.resets++;
	if (tern_aq_enable(aq))
		dev_err_ratelimited(aq_dev(aq), "admin queue did not recover\n");
}

enum tern_abort_result {
	TERN_ABORT_DONE,	/* the command's slot is free */
	TERN_ABORT_UNKNOWN,	/* the device has no ABORT */
	TERN_ABORT_FAILED,
};

/*
 * End an abandoned command with ABORT, sent in the watchdog's own slot.
 * The device posts the command's completion (ABORTED, or its real one if
 * it had just finished) before ABORT's, so once ABORT completes the
 * command's slot is free, unless the device lost the command.  Called
 * with reset_lock held.
 */
static enum tern_abort_result aq_abort(struct tern_aq *aq,
				       struct tern_aq_slot *victim)
{
	struct tern_aq_slot *slot = aq->abort_slot;
	struct tern_aq_cmd cmd = { .opcode = TERN_OP_ABORT };
	enum tern_abort_result res;
	bool freed;
	u16 gen;
	int ret;

	spin_lock_irq(&aq->lock);
	if (victim->state != TERN_SLOT_ABANDONED) {
		spin_unlock_irq(&aq->lock);
		return TERN_ABORT_DONE;
	}
	if (slot->state != TERN_SLOT_FREE) {
		spin_unlock_irq(&aq->lock);
		return TERN_ABORT_FAILED;
	}
	gen = victim->gen;
	cmd.vf = cpu_to_le16(victim->vf);
	cmd.abort.tag = cpu_to_le16(slot_tag(aq, victim));
	slot_take(aq, slot);
	aq->stats.aborts++;
	spin_unlock_irq(&aq->lock);

	ret = aq_run(aq, slot, &cmd, NULL, NULL, false);

	spin_lock_irq(&aq->lock);
	freed = victim->state != TERN_SLOT_ABANDONED || victim->gen != gen;
	if (slot->state != TERN_SLOT_FREE)
		res = TERN_ABORT_FAILED;	/* ABORT is stuck too */
	else if (freed)
		res = TERN_ABORT_DONE;
	else if (ret == -EOPNOTSUPP)
		res = TERN_ABORT_UNKNOWN;
	else
		res = TERN_ABORT_FAILED;
	if (res == TERN_ABORT_UNKNOWN)
		victim->no_abort = true;
	if (res != TERN_ABORT_DONE)
		aq->stats.abort_failures++;
	spin_unlock_irq(&aq->lock);
	if (res == TERN_ABORT_FAILED && !ret)
		dev_err_ratelimited(aq_dev(aq),
				    "ABORT of %s for VF %u: the device does not know it\n",
				    tern_op_name(victim->opcode), victim->vf);
	return res;
}

/*
 * The first abandoned command to ABORT, not the watchdog's own; *@waiting
 * tells whether commands that cannot be aborted wait for a late
 * completion, *@overdue whether one of them waited too long.
 */
static struct tern_aq_slot *aq_next_abandoned(struct tern_aq *aq,
					      bool *waiting, bool *overdue)
{
	unsigned long grace = msecs_to_jiffies(TERN_AQ_GRACE_TIMEOUTS *
					       tern_aq_timeout_ms);
	struct tern_aq_slot *found = NULL;
	unsigned int i;

	*waiting = false;
	*overdue = false;
	spin_lock_irq(&aq->lock);
	for (i = 0; i < aq->nr_slots; i++) {
		struct tern_aq_slot *slot = &aq->slots[i];

		if (slot == aq->abort_slot ||
		    slot->state != TERN_SLOT_ABANDONED)
			continue;
		if (!slot->no_abort) {
			found = slot;
			break;
		}
		*waiting = true;
		if (time_after(jiffies, slot->abandoned_at + grace))
			*overdue = true;
	}
	spin_unlock_irq(&aq->lock);
	return found;
}

/*
 * Runs as soon as a caller abandons a command.  Each abandoned command is
 * ended with ABORT, which touches that command only: other commands, of
 * this VF or others, go on.  Only when ABORT itself fails (it times out,
 * the device rejects it, or the command stays unaccounted for), or the
 * device halted the queue, is the queue reset as the last resort:
 * disabling it guarantees the device no longer touches the memory of any
 * command, but every command in flight fails with -EIO.  A device that
 * does not know ABORT gets four timeouts to complete the command late
 * before the reset.
 */
static void tern_aq_watchdog(struct work_struct *work)
{
	struct tern_aq *aq = container_of(to_delayed_work(work),
					  struct tern_aq, watchdog);
	struct tern_aq_slot *victim;
	bool waiting = false, overdue = false;

	mutex_lock(&aq->reset_lock);
	if (!aq->up)
		goto out;
	if (aq_readl(aq, TERN_PF_REG_STATUS) & TERN_PF_STS_HALTED) {
		aq_reset(aq, "halted");
		goto out;
	}
	while (aq->up &&
	       (victim = aq_next_abandoned(aq, &waiting, &overdue))) {
		if (aq_abort(aq, victim) == TERN_ABORT_FAILED) {
			aq_reset(aq, "ABORT failed");
			goto out;
		}
	}
	if (overdue)
		aq_reset(aq, "commands unanswered");
	else if (waiting)
		mod_delayed_work(system_long_wq, &aq->watchdog,
				 msecs_to_jiffies(tern_aq_timeout_ms));
out:
	mutex_unlock(&aq->reset_lock);
}

static void tern_aq_free_mem(struct tern_aq *aq)
{
	struct device *dev = aq_dev(aq);
	unsigned int i;

	for (i = 0; i < aq->nr_slots; i++)
		if (aq->slots[i].buf)
			dma_free_coherent(dev, TERN_AQ_BUF_SIZE,
					  aq->slots[i].buf,
					  aq->slots[i].buf_dma);
	if (aq->cpls)
		dma_free_coherent(dev, aq->depth * sizeof(*aq->cpls),
				  aq->cpls, aq->cpls_dma);
	if (aq->cmds)
		dma_free_coherent(dev, aq->depth * sizeof(*aq->cmds),
				  aq->cmds, aq->cmds_dma);
}

static int tern_aq_alloc_mem(struct tern_aq *aq)
{
	struct device *dev = aq_dev(aq);
	unsigned int i;

	aq->cmds = dma_alloc_coherent(dev, aq->depth * sizeof(*aq->cmds),
				      &aq->cmds_dma, GFP_KERNEL);
	aq->cpls = dma_alloc_coherent(dev, aq->depth * sizeof(*aq->cpls),
				      &aq->cpls_dma, GFP_KERNEL);
	if (!aq->cmds || !aq->cpls)
		return -ENOMEM;
	for (i = 0; i < aq->nr_slots; i++) {
		struct tern_aq_slot *slot = &aq->slots[i];

		slot->buf = dma_alloc_coherent(dev, TERN_AQ_BUF_SIZE,
					       &slot->buf_dma, GFP_KERNEL);
		if (!slot->buf)
			return -ENOMEM;
		init_completion(&slot->done);
	}
	return 0;
}

/**
 * tern_aq_init - set up the admin queue of a PF and start it
 * @pf: the PF, its registers mapped and MSI-X vector 0 allocated
 *
 * Return: 0 or a negative errno.
 */
int tern_aq_init(struct tern_pf *pf)
{
	struct tern_aq *aq = &pf->aq;
	u32 cap = readl(pf->regs + TERN_PF_REG_AQ_CAP);
	unsigned int dev_max = cap & TERN_AQ_CAP_MAX_ENTRIES_MASK;
	unsigned int dev_inflight = (cap & TERN_AQ_CAP_MAX_INFLIGHT_MASK) >>
				    TERN_AQ_CAP_MAX_INFLIGHT_SHIFT;
	int ret;

	aq->pf = pf;
	spin_lock_init(&aq->lock);
	init_waitqueue_head(&aq->slot_wait);
	mutex_init(&aq->reset_lock);
	INIT_DELAYED_WORK(&aq->watchdog, tern_aq_watchdog);

	aq->depth = clamp(tern_aq_depth, 64U, (unsigned int)TERN_AQ_MAX_ENTRIES);
	if (dev_max < aq->depth || dev_inflight < 2) {
		dev_err(&pf->pdev->dev, "admin queue limits too small: cap 0x%08x\n",
			cap);
		return -ENODEV;
	}
	/* Never more in flight than the rings can hold. */
	aq->nr_slots = min3(dev_inflight, (unsigned int)TERN_AQ_SLOTS,
			    aq->depth - 1U);
	aq->abort_slot = &aq->slots[aq->nr_slots - 1];

	ret = tern_aq_alloc_mem(aq);
	if (ret)
		goto err_free;

	ret = request_irq(pci_irq_vector(pf->pdev, TERN_PF_MSIX_VEC_AQ),
			  tern_aq_irq, 0, "tern_pf-aq", aq);
	if (ret)
		goto err_free;

	ret = tern_aq_enable(aq);
	if (ret)
		goto err_irq;
	return 0;

err_irq:
	free_irq(pci_irq_vector(pf->pdev, TERN_PF_MSIX_VEC_AQ), aq);
err_free:
	tern_aq_free_mem(aq);
	return ret;
}

/**
 * tern_aq_fini - stop the admin queue and free it
 * @pf: the PF
 *
 * No caller may be inside tern_aq_exec().
 */
void tern_aq_fini(struct tern_pf *pf)
{
	struct tern_aq *aq = &pf->aq;

	mutex_lock(&aq->reset_lock);
	tern_aq_disable(aq);
	mutex_unlock(&aq->reset_lock);
	cancel_delayed_work_sync(&aq->watchdog);
	free_irq(pci_irq_vector(pf->pdev, TERN_PF_MSIX_VEC_AQ), aq);
	tern_aq_free_mem(aq);
}
