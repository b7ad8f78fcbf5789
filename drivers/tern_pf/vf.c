// SPDX-License-Identifier: GPL-2.0
/*
 * tern PF driver: the VF migration API of <linux/tern_pf.h>.
 *
 * A handle names one VF of one PF; every command it sends carries that
 * VF's number and no other.  Handles keep the PF's memory alive, not the
 * device: once the PF is gone their calls fail with -ENODEV.
 */

#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/tern_pf.h>

#include "tern_pf.h"

/**
 * tern_vf_get - take the migration handle of a VF
 * @vf_pdev: a VF of a PF bound to tern_pf
 * @event: told of PF resets and removal (see tern_vf_event_fn)
 * @priv: passed to @event
 *
 * A VF has at most one handle at a time.  While any handle is held the
 * PF refuses to disable its VFs.
 *
 * Return: the handle, or ERR_PTR(-EINVAL) if @vf_pdev is not a tern VF,
 * -ENODEV if the PF is gone or resetting, -EBUSY if the VF already has a
 * handle or its PF is enabling or disabling VFs.
 */
struct tern_vf *tern_vf_get(struct pci_dev *vf_pdev, tern_vf_event_fn event,
			    void *priv)
{
	struct tern_vf *vf, *other;
	struct tern_pf *pf;
	int vf_id, ret = 0;

	if (!event)
		return ERR_PTR(-EINVAL);
	pf = pci_iov_get_pf_drvdata(vf_pdev, &tern_pf_driver);
	if (IS_ERR(pf))
		return ERR_CAST(pf);
	vf_id = pci_iov_vf_id(vf_pdev);
	if (vf_id < 0)
		return ERR_PTR(vf_id);

	vf = kzalloc(sizeof(*vf), GFP_KERNEL);
	if (!vf)
		return ERR_PTR(-ENOMEM);
	vf->pf = pf;
	vf->vf_id = vf_id;
	vf->event = event;
	vf->priv = priv;

	mutex_lock(&pf->lock);
	if (pf->state != TERN_PF_LIVE)
		ret = -ENODEV;
	else if (pf->sriov_busy)
		ret = -EBUSY;
	list_for_each_entry(other, &pf->handles, node)
		if (other->vf_id == vf_id)
			ret = -EBUSY;
	if (!ret) {
		kref_get(&pf->ref);
		list_add(&vf->node, &pf->handles);
	}
	mutex_unlock(&pf->lock);

	if (ret) {
		kfree(vf);
		return ERR_PTR(ret);
	}
	return vf;
}
EXPORT_SYMBOL_GPL(tern_vf_get);

/**
 * tern_vf_put - give a handle back
 * @vf: the handle; may be called after the PF is gone
 */
void tern_vf_put(struct tern_vf *vf)
{
	struct tern_pf *pf = vf->pf;

	mutex_lock(&pf->lock);
	list_del(&vf->node);
	mutex_unlock(&pf->lock);
	kfree(vf);
	tern_pf_put(pf);
}
EXPORT_SYMBOL_GPL(tern_vf_put);

static int vf_exec(struct tern_vf *vf, struct tern_aq_cmd *cmd,
		   const struct tern_aq_io *io, struct tern_aq_cpl *cpl)
{
	struct tern_pf *pf = vf->pf;
	int ret;

	cmd->vf = cpu_to_le16(vf->vf_id);
	if (down_read_killable(&pf->gate))
		return -EINTR;
	if (READ_ONCE(pf->state) != TERN_PF_LIVE) {
		ret = -ENODEV;
	} else {
		ret = tern_aq_exec(&pf->aq, cmd, io, cpl);
		/* A command aborted by a PF reset or removal. */
		if (ret == -EIO && READ_ONCE(pf->state) != TERN_PF_LIVE)
			ret = -ENODEV;
	}
	up_read(&pf->gate);
	return ret;
}

static int vf_simple(struct tern_vf *vf, u8 opcode)
{
	struct tern_aq_cmd cmd = { .opcode = opcode };

	return vf_exec(vf, &cmd, NULL, NULL);
}

/**
 * tern_vf_identify - read a VF's limits
 * @vf: the handle
 * @info: receives them
 *
 * Return: 0 or a negative errno.
 */
int tern_vf_identify(struct tern_vf *vf, struct tern_vf_info *info)
{
	struct tern_aq_cmd cmd = { .opcode = TERN_OP_IDENTIFY };
	struct tern_identify id;
	struct tern_aq_io io = { .out = &id, .out_len = sizeof(id) };
	int ret;

	ret = vf_exec(vf, &cmd, &io, NULL);
	if (ret)
		return ret;
	if (le32_to_cpu(id.magic) != TERN_PF_MAGIC)
		return -EIO;

	info->image_version = le16_to_cpu(id.image_version);
	info->nr_queues = le16_to_cpu(id.vf_nr_queues);
	info->devmem_size = le64_to_cpu(id.vf_devmem_size);
	info->max_image_size = le64_to_cpu(id.max_image_size);
	info->max_xfer_segments = min_t(u32, le16_to_cpu(id.max_sg_entries),
					vf->pf->aq.max_sg);
	info->dirty_max_ranges = min_t(u32, le32_to_cpu(id.dirty_max_ranges),
				       TERN_DIRTY_MAX_RANGES);
	info->dirty_page_shifts = le32_to_cpu(id.dirty_page_shifts);
	info->dirty_max_pages = le32_to_cpu(id.dirty_max_pages);
	info->xfer_crc = vf->pf->dev_cap & TERN_DEV_CAP_XFER_CRC;
	info->new_config = vf->pf->dev_cap & TERN_DEV_CAP_NEW_CONFIG;
	return 0;
}
EXPORT_SYMBOL_GPL(tern_vf_identify);

/**
 * tern_vf_quiesce - stop the VF's DMA and interrupts; MMIO still works
 * @vf: the handle
 *
 * A running VF stops; a frozen one thaws to quiesced.
 *
 * Return: 0 or a negative errno.
 */
int tern_vf_quiesce(struct tern_vf *vf)
{
	return vf_simple(vf, TERN_OP_QUIESCE);
}
EXPORT_SYMBOL_GPL(tern_vf_quiesce);

/**
 * tern_vf_freeze - freeze a quiesced VF: nothing in it changes any more
 * @vf: the handle
 *
 * Return: 0 or a negative errno.
 */
int tern_vf_freeze(struct tern_vf *vf)
{
	return vf_simple(vf, TERN_OP_FREEZE);
}
EXPORT_SYMBOL_GPL(tern_vf_freeze);

/**
 * tern_vf_resume - let a quiesced or frozen VF run again
 * @vf: the handle
 *
 * Return: 0 or a negative errno.
 */
int tern_vf_resume(struct tern_vf *vf)
{
	return vf_simple(vf, TERN_OP_RESUME);
}
EXPORT_SYMBOL_GPL(tern_vf_resume);

/**
 * tern_vf_query - what the VF would save now
 * @vf: the handle
 * @size: receives the sizes of a full and of an incremental image (0 if
 *	there is no base image to increment: no save since the VF's last
 *	reset or load), and whether the VF's configuration changed since
 *	the last full image (&tern_vf_size.new_config, with
 *	&tern_vf_info.new_config)
 *
 * The sizes grow while the VF runs.
 *
 * Return: 0 or a negative errno.
 */
int tern_vf_query(struct tern_vf *vf, struct tern_vf_size *size)
{
	struct tern_aq_cmd cmd = { .opcode = TERN_OP_QUERY_SIZE };
	struct tern_aq_cpl cpl;
	u32 flags;
	int ret;

	ret = vf_exec(vf, &cmd, NULL, &cpl);
	if (ret)
		return ret;
	flags = le32_to_cpu(cpl.result2);
	size->full = le64_to_cpu(cpl.result0);
	size->incremental = flags & TERN_QUERY_HAS_BASE ?
			    le64_to_cpu(cpl.result1) : 0;
	size->new_config = (flags & TERN_QUERY_HAS_BASE) &&
			   (flags & TERN_QUERY_NEW_CONFIG) &&
			   (vf->pf->dev_cap & TERN_DEV_CAP_NEW_CONFIG);
	return 0;
}
EXPORT_SYMBOL_GPL(tern_vf_query);

/* Run a SAVE or LOAD of @len bytes and read its result into @xfer. */
static int vf_xfer(struct tern_vf *vf, struct tern_aq_cmd *cmd,
		   const struct tern_aq_io *io, struct tern_vf_xfer *xfer)
{
	struct tern_aq_cpl cpl;
	u32 flags;
	int ret;

	ret = vf_exec(vf, cmd, io, &cpl);
	if (ret)
		return ret;
	flags = le32_to_cpu(cpl.result2);
	xfer->bytes = TERN_XFER_BYTES(le64_to_cpu(cpl.result0));
	xfer->crc = cmd->opcode == TERN_OP_SAVE &&
		    (vf->pf->dev_cap & TERN_DEV_CAP_XFER_CRC) ?
		    TERN_XFER_CRC(le64_to_cpu(cpl.result0)) : 0;
	xfer->image_size = le64_to_cpu(cpl.result1);
	xfer->more = flags & TERN_XFER_MORE;
	xfer->applied = cmd->opcode == TERN_OP_LOAD &&
			(flags & TERN_LOAD_APPLIED);
	return xfer->bytes > io->data_len ? -EIO : 0;
}

static int vf_save(struct tern_vf *vf, enum tern_vf_save_mode mode,
		   u64 offset, const struct tern_aq_io *io,
		   struct tern_vf_xfer *xfer)
{
	struct tern_aq_cmd cmd = { .opcode = TERN_OP_SAVE };

	switch (mode) {
	case TERN_VF_SAVE_CONTINUE:
		break;
	case TERN_VF_SAVE_FULL:
		cmd.flags = TERN_SAVE_F_START;
		break;
	case TERN_VF_SAVE_INCREMENTAL:
		cmd.flags = TERN_SAVE_F_START | TERN_SAVE_F_INCREMENTAL;
		break;
	default:
		return -EINVAL;
	}
	if ((cmd.flags & TERN_SAVE_F_START) && offset)
		return -EINVAL;
	cmd.xfer.offset = cpu_to_le64(offset);
	return vf_xfer(vf, &cmd, io, xfer);
}

/**
 * tern_vf_save - read a chunk of a state image
 * @vf: the handle
 * @mode: take a new full or incremental image, or continue the open one
 * @offset: byte offset in the image; 0 when taking a new image
 * @sgt: pages to write into; the PF maps them for its own DMA
 * @len: bytes of @sgt to fill
 * @xfer: receives bytes written, the image size, whether more follows
 *	and, if the device computes it (&tern_vf_info.xfer_crc), the CRC32C
 *	of the bytes written
 *
 * Taking an image snapshots the VF at that moment; the device keeps the
 * image until the next one is taken, so it can be read in any number of
 * chunks.  @sgt may have at most &tern_vf_info.max_xfer_segments DMA
 * segments.
 *
 * Return: 0 or a negative errno.
 */
int tern_vf_save(struct tern_vf *vf, enum tern_vf_save_mode mode, u64 offset,
		 struct sg_table *sgt, u32 len, struct tern_vf_xfer *xfer)
{
	struct tern_aq_io io = {
		.data = sgt, .data_len = len, .dir = DMA_FROM_DEVICE,
	};

	return vf_save(vf, mode, offset, &io, xfer);
}
EXPORT_SYMBOL_GPL(tern_vf_save);

static int vf_load(struct tern_vf *vf, bool start, u64 offset, const u32 *crc,
		   const struct tern_aq_io *io, struct tern_vf_xfer *xfer)
{
	struct tern_aq_cmd cmd = {
		.opcode = TERN_OP_LOAD,
		.flags = start ? TERN_LOAD_F_START : 0,
	};

	if (start && offset)
		return -EINVAL;
	if (crc) {
		if (!(vf->pf->dev_cap & TERN_DEV_CAP_XFER_CRC))
			return -EOPNOTSUPP;
		cmd.flags |= TERN_LOAD_F_CRC;
		cmd.xfer.crc = cpu_to_le32(*crc);
	}
	cmd.xfer.offset = cpu_to_le64(offset);
	return vf_xfer(vf, &cmd, io, xfer);
}

/**
 * tern_vf_load - give the device a chunk of a state image
 * @vf: the handle; the VF must be frozen
 * @start: this chunk begins a new image at offset 0
 * @offset: byte offset of the chunk: the bytes given so far
 * @sgt: pages to read from; the PF maps them for its own DMA
 * @len: bytes of @sgt to use
 * @xfer: receives bytes consumed, the image size once known, whether more
 *	is expected and whether the image was applied
 *
 * The device stages the image and applies it only when it is complete
 * and valid; a rejected image leaves the VF unchanged.
 *
 * Return: 0 or a negative errno.
 */
int tern_vf_load(struct tern_vf *vf, bool start, u64 offset,
		 struct sg_table *sgt, u32 len, struct tern_vf_xfer *xfer)
{
	struct tern_aq_io io = {
		.data = sgt, .data_len = len, .dir = DMA_TO_DEVICE,
	};

	return vf_load(vf, start, offset, NULL, &io, xfer);
}
EXPORT_SYMBOL_GPL(tern_vf_load);

/**
 * tern_vf_load_crc - give the device a chunk of a state image it checks
 * @vf: the handle; the VF must be frozen
 * @start: this chunk begins a new image at offset 0
 * @offset: byte offset of the chunk: the bytes given so far
 * @sgt: pages to read from; the PF maps them for its own DMA
 * @len: bytes of @sgt to use
 * @crc: the standard CRC32C of those @len bytes
 * @xfer: as for tern_vf_load()
 *
 * As tern_vf_load(), but the device first checks the @len bytes against
 * @crc and takes none of them if they differ: then the VF and the load
 * staged so far are unchanged.  Needs &tern_vf_info.xfer_crc.
 *
 * Return: 0, -EBADMSG if the bytes do not match @crc, -EOPNOTSUPP if the
 * device does not check chunks, or a negative errno as tern_vf_load().
 */
int tern_vf_load_crc(struct tern_vf *vf, bool start, u64 offset,
		     struct sg_table *sgt, u32 len, u32 crc,
		     struct tern_vf_xfer *xfer)
{
	struct tern_aq_io io = {
		.data = sgt, .data_len = len, .dir = DMA_TO_DEVICE,
	};

	return vf_load(vf, start, offset, &crc, &io, xfer);
}
EXPORT_SYMBOL_GPL(tern_vf_load_crc);

static void vf_buf_release(struct kref *ref)
{
	struct tern_vf_buf *buf = container_of(ref, struct tern_vf_buf, ref);
	struct tern_pf *pf = buf->pf;
	struct sg_page_iter piter;
	unsigned long flags;
	bool mapped;

	spin_lock_irqsave(&pf->buf_lock, flags);
	mapped = buf->mapped;
	buf->mapped = false;
	list_del_init(&buf->node);
	spin_unlock_irqrestore(&pf->buf_lock, flags);
	if (mapped)
		dma_unmap_sgtable(&pf->pdev->dev, &buf->sgt, buf->dir, 0);
	for_each_sgtable_page(&buf->sgt, &piter, 0)
		put_page(sg_page_iter_page(&piter));
	sg_free_table(&buf->sgt);
	kfree(buf);
	/* Not the last reference while a command can hold the buffer. */
	tern_pf_put(pf);
}

void tern_vf_buf_put(struct tern_vf_buf *buf)
{
	kref_put(&buf->ref, vf_buf_release);
}

/*
 * The PF is going: unmap every buffer now, as no mapping may outlive the
 * binding; their owners free them later.  No command is in flight.
 */
void tern_pf_unmap_bufs(struct tern_pf *pf)
{
	struct tern_vf_buf *buf;

	spin_lock_irq(&pf->buf_lock);
	while ((buf = list_first_entry_or_null(&pf->bufs, struct tern_vf_buf,
					       node))) {
		list_del_init(&buf->node);
		/* A buffer being released is unmapped by its release. */
		if (!buf->mapped || !kref_get_unless_zero(&buf->ref))
			continue;
		buf->mapped = false;
		spin_unlock_irq(&pf->buf_lock);
		dma_unmap_sgtable(&pf->pdev->dev, &buf->sgt, buf->dir, 0);
		tern_vf_buf_put(buf);
		spin_lock_irq(&pf->buf_lock);
	}
	spin_unlock_irq(&pf->buf_lock);
}

/**
 * tern_vf_buf_map - map a data buffer for the PF's DMA, once for many
 *	save or load calls
 * @vf: the handle
 * @sgt: the buffer's pages: pages a reference can be taken on, as for
 *	tern_vf_save(); the buffer holds a reference on each
 * @dir: %DMA_FROM_DEVICE for saves, %DMA_TO_DEVICE for loads
 *
 * The buffer stays valid until tern_vf_buf_unmap(), even after the handle
 * is given back or the PF is gone (its calls fail then).  Commands in
 * flight on it keep it mapped until the device is done with them.
 *
 * Return: the buffer, or ERR_PTR(-EINVAL) for pages that cannot be held,
 * -ENODEV if the PF is gone or resetting, -ENOMEM.
 */
struct tern_vf_buf *tern_vf_buf_map(struct tern_vf *vf, struct sg_table *sgt,
				    enum dma_data_direction dir)
{
	struct tern_pf *pf = vf->pf;
	struct scatterlist *sg, *dst;
	struct sg_page_iter piter;
	struct tern_vf_buf *buf;
	unsigned int i;
	int ret;

	if (dir != DMA_FROM_DEVICE && dir != DMA_TO_DEVICE)
		return ERR_PTR(-EINVAL);
	for_each_sgtable_page(sgt, &piter, 0) {
		struct page *page = sg_page_iter_page(&piter);

		if (PageSlab(page) || !folio_ref_count(page_folio(page)))
			return ERR_PTR(-EINVAL);
	}
	buf = kzalloc(sizeof(*buf), GFP_KERNEL_ACCOUNT);
	if (!buf)
		return ERR_PTR(-ENOMEM);
	kref_init(&buf->ref);
	INIT_LIST_HEAD(&buf->node);
	buf->pf = pf;
	buf->dir = dir;
	ret = sg_alloc_table(&buf->sgt, sgt->orig_nents, GFP_KERNEL_ACCOUNT);
	if (ret)
		goto err_free;
	dst = buf->sgt.sgl;
	for_each_sgtable_sg(sgt, sg, i) {
		sg_set_page(dst, sg_page(sg), sg->length, sg->offset);
		dst = sg_next(dst);
	}
	for_each_sgtable_page(&buf->sgt, &piter, 0)
		get_page(sg_page_iter_page(&piter));
	ret = dma_map_sgtable(&pf->pdev->dev, &buf->sgt, dir, 0);
	if (ret)
		goto err_pages;

	mutex_lock(&pf->lock);
	if (pf->state != TERN_PF_LIVE) {
		ret = -ENODEV;
	} else {
		kref_get(&pf->ref);
		spin_lock_irq(&pf->buf_lock);
		buf->mapped = true;
		list_add(&buf->node, &pf->bufs);
		spin_unlock_irq(&pf->buf_lock);
	}
	mutex_unlock(&pf->lock);
	if (!ret)
		return buf;

	dma_unmap_sgtable(&pf->pdev->dev, &buf->sgt, dir, 0);
err_pages:
	for_each_sgtable_page(&buf->sgt, &piter, 0)
		put_page(sg_page_iter_page(&piter));
	sg_free_table(&buf->sgt);
err_free:
	kfree(buf);
	return ERR_PTR(ret);
}
EXPORT_SYMBOL_GPL(tern_vf_buf_map);

/**
 * tern_vf_buf_unmap - give a mapped buffer back
 * @buf: from tern_vf_buf_map(); may be called after the PF is gone
 *
 * The caller's pages may be freed afterwards: the device is done with
 * them, or the buffer keeps them until it is.
 */
void tern_vf_buf_unmap(struct tern_vf_buf *buf)
{
	tern_vf_buf_put(buf);
}
EXPORT_SYMBOL_GPL(tern_vf_buf_unmap);

/**
 * tern_vf_save_buf - tern_vf_save() into a buffer mapped once
 * @vf: the handle
 * @mode: as for tern_vf_save()
 * @offset: as for tern_vf_save()
 * @buf: from tern_vf_buf_map() with %DMA_FROM_DEVICE
 * @len: bytes of @buf to fill, from its start; at most
 *	&tern_vf_info.max_xfer_segments DMA segments of it
 * @xfer: as for tern_vf_save()
 *
 * No mapping, page reference or SG table is made per call.  The bytes
 * written are the CPU's to read when it returns 0.
 *
 * Return: 0 or a negative errno.
 */
int tern_vf_save_buf(struct tern_vf *vf, enum tern_vf_save_mode mode,
		     u64 offset, struct tern_vf_buf *buf, u32 len,
		     struct tern_vf_xfer *xfer)
{
	struct device *dev = &vf->pf->pdev->dev;
	struct tern_aq_io io = {
		.vbuf = buf, .data_len = len, .dir = DMA_FROM_DEVICE,
	};
	int ret;

	if (buf->dir != DMA_FROM_DEVICE)
		return -EINVAL;
	dma_sync_sgtable_for_device(dev, &buf->sgt, buf->dir);
	ret = vf_save(vf, mode, offset, &io, xfer);
	if (!ret)
		dma_sync_sgtable_for_cpu(dev, &buf->sgt, buf->dir);
	return ret;
}
EXPORT_SYMBOL_GPL(tern_vf_save_buf);

/**
 * tern_vf_load_buf - tern_vf_load() or tern_vf_load_crc() from a buffer
 *	mapped once
 * @vf: the handle; the VF must be frozen
 * @start: as for tern_vf_load()
 * @offset: as for tern_vf_load()
 * @buf: from tern_vf_buf_map() with %DMA_TO_DEVICE
 * @boff: where in @buf the chunk starts
 * @len: bytes of the chunk; at most &tern_vf_info.max_xfer_segments DMA
 *	segments of @buf
 * @crc: NULL, or the standard CRC32C of the chunk for the device to check
 *	first (as tern_vf_load_crc())
 * @xfer: as for tern_vf_load()
 *
 * Return: 0 or a negative errno, as tern_vf_load_crc().
 */
int tern_vf_load_buf(struct tern_vf *vf, bool start, u64 offset,
		     struct tern_vf_buf *buf, u32 boff, u32 len, const u32 *crc,
		     struct tern_vf_xfer *xfer)
{
	struct tern_aq_io io = {
		.vbuf = buf, .vbuf_off = boff, .data_len = len,
		.dir = DMA_TO_DEVICE,
	};

	if (buf->dir != DMA_TO_DEVICE)
		return -EINVAL;
	dma_sync_sgtable_for_device(&vf->pf->pdev->dev, &buf->sgt, buf->dir);
	return vf_load(vf, start, offset, crc, &io, xfer);
}
EXPORT_SYMBOL_GPL(tern_vf_load_buf);

/**
 * tern_vf_dirty_start - track the VF's DMA writes
 * @vf: the handle
 * @ranges: IOVA ranges, aligned to the page size, not overlapping
 * @nr_ranges: 1..&tern_vf_info.dirty_max_ranges
 * @page_shift: log2 of the tracking page size, a bit of
 *	&tern_vf_info.dirty_page_shifts
 *
 * Return: 0, -EBUSY if tracking is on already, or a negative errno.
 */
int tern_vf_dirty_start(struct tern_vf *vf, const struct tern_vf_range *ranges,
			unsigned int nr_ranges, unsigned int page_shift)
{
	struct tern_aq_cmd cmd = { .opcode = TERN_OP_DIRTY_START };
	struct tern_aq_io io = {};
	struct tern_range *list;
	unsigned int i;
	int ret;

	if (!nr_ranges || nr_ranges > TERN_DIRTY_MAX_RANGES ||
	    page_shift < TERN_DIRTY_MIN_PAGE_SHIFT ||
	    page_shift > TERN_DIRTY_MAX_PAGE_SHIFT)
		return -EINVAL;

	list = kcalloc(nr_ranges, sizeof(*list), GFP_KERNEL);
	if (!list)
		return -ENOMEM;
	for (i = 0; i < nr_ranges; i++) {
		list[i].iova = cpu_to_le64(ranges[i].iova);
		list[i].len = cpu_to_le64(ranges[i].length);
	}
	io.in = list;
	io.in_len = nr_ranges * sizeof(*list);
	cmd.dirty_start.nr_ranges = cpu_to_le32(nr_ranges);
	cmd.dirty_start.page_shift = page_shift;

	ret = vf_exec(vf, &cmd, &io, NULL);
	kfree(list);
	return ret;
}
EXPORT_SYMBOL_GPL(tern_vf_dirty_start);

/**
 * tern_vf_dirty_report - report and clear the dirty pages of a range
 * @vf: the handle
 * @iova: start of the range, page aligned
 * @length: bytes, page aligned
 * @fn: called for each run of dirty pages, in ascending order
 * @arg: passed to @fn
 *
 * The device clears the pages it reports.  If @fn fails, the pages
 * reported so far are cleared all the same.  When the device's answer
 * is full, the next command continues after the last run reported, so
 * every page of the range is reported at most once per call, even while
 * the VF keeps writing.
 *
 * Return: 0, -EOVERFLOW if the tracker lost pages (treat everything as
 * dirty), @fn's error, or a negative errno.
 */
int tern_vf_dirty_report(struct tern_vf *vf, u64 iova, u64 length,
			 tern_vf_dirty_fn fn, void *arg)
{
	const u32 max_runs = TERN_AQ_BUF_SIZE / sizeof(struct tern_range);
	struct tern_aq_io io = { .out_len = TERN_AQ_BUF_SIZE };
	u64 end = iova + length;
	struct tern_range *runs;
	struct tern_aq_cpl cpl;
	bool more;
	int ret;

	if (!length || end < iova)
		return -EINVAL;
	runs = kmalloc(TERN_AQ_BUF_SIZE, GFP_KERNEL);
	if (!runs)
		return -ENOMEM;
	io.out = runs;

	do {
		struct tern_aq_cmd cmd = { .opcode = TERN_OP_DIRTY_REPORT };
		u64 i, n, next = iova;

		cmd.dirty_report.iova = cpu_to_le64(iova);
		cmd.dirty_report.len = cpu_to_le64(end - iova);
		ret = vf_exec(vf, &cmd, &io, &cpl);
		if (ret)
			break;
		spin_lock_irq(&vf->pf->aq.lock);
		vf->pf->aq.stats.dirty_pages += le64_to_cpu(cpl.result1);
		spin_unlock_irq(&vf->pf->aq.lock);
		n = le64_to_cpu(cpl.result0);
		if (n > max_runs) {
			ret = -EIO;
			break;
		}
		for (i = 0; i < n && !ret; i++) {
			u64 run = le64_to_cpu(runs[i].iova);
			u64 len = le64_to_cpu(runs[i].len);

			/* Runs are in the range, ascending, apart. */
			if (run < next || !len || len > end - run) {
				ret = -EIO;
				break;
			}
			next = run + len;
			ret = fn(arg, run, len);
		}
		more = le32_to_cpu(cpl.result2) & TERN_REPORT_MORE;
		/* A full buffer that holds nothing would never end. */
		if (more && !n)
			ret = -EIO;
		/* Continue after the last run reported. */
		iova = next;
	} while (!ret && more && iova < end);

	kfree(runs);
	return ret;
}
EXPORT_SYMBOL_GPL(tern_vf_dirty_report);

/**
 * tern_vf_dirty_stop - stop tracking and forget all dirty pages
 * @vf: the handle
 *
 * Return: 0 or a negative errno.
 */
int tern_vf_dirty_stop(struct tern_vf *vf)
{
	return vf_simple(vf, TERN_OP_DIRTY_STOP);
}
EXPORT_SYMBOL_GPL(tern_vf_dirty_stop);
