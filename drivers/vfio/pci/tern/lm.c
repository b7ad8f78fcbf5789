// SPDX-License-Identifier: GPL-2.0
/*
 * tern_vfio_pci: the VFIO migration state machine and its data files.
 *
 * The source streams the VF's state chunk by chunk: each read() that
 * finds nothing buffered asks the PF for the next TERN_CHUNK_SIZE bytes
 * of the device image, so a file never holds more than one chunk whatever
 * the size of the VF's device memory.  The destination validates each
 * record as it arrives and hands its payload to the device, which stages
 * an image and applies it only when it is complete and valid.  The
 * device checksums the image chunks (SAVE returns their CRC, LOAD checks
 * it), so the CPU's one pass over a payload is the copy to or from user
 * space; a file's buffer is mapped for the device once, when it is made.
 * Documentation/tern/migration-stream.rst describes the stream.
 */

#include <linux/anon_inodes.h>
#include <linux/crc32c.h>
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uaccess.h>
#include <linux/utsname.h>

#include "tern_vfio.h"
#include "trace.h"

/* read() found the end of the stream. */
#define TERN_EOF	1

static struct device *mig_dev(struct tern_mig_file *migf)
{
	return &migf->tvdev->core.pdev->dev;
}

static void tern_buf_free(struct tern_buf *b)
{
	unsigned int i;

	if (b->sgt.sgl)
		sg_free_table(&b->sgt);
	for (i = 0; i < b->nr_pages; i++)
		__free_page(b->pages[i]);
	kfree(b->pages);
	b->pages = NULL;
	b->nr_pages = 0;
}

/* Descending physical addresses: no two neighbours are contiguous. */
static int tern_page_cmp(const void *a, const void *b)
{
	unsigned long pa = page_to_pfn(*(struct page * const *)a);
	unsigned long pb = page_to_pfn(*(struct page * const *)b);

	return pa < pb ? 1 : pa > pb ? -1 : 0;
}

static int tern_buf_alloc(struct tern_buf *b, unsigned int nr_pages)
{
	unsigned int i;
	int ret;

	b->pages = kcalloc(nr_pages, sizeof(*b->pages), GFP_KERNEL_ACCOUNT);
	if (!b->pages)
		return -ENOMEM;
	for (i = 0; i < nr_pages; i++) {
		/* Zeroed: a device that writes short must not leak old data. */
		b->pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!b->pages[i]) {
			ret = -ENOMEM;
			goto err;
		}
		b->nr_pages++;
	}
	/* A test of max_xfer_segments: one DMA segment per page. */
	if (READ_ONCE(tern_scatter_buffers))
		sort(b->pages, nr_pages, sizeof(*b->pages), tern_page_cmp,
		     NULL);
	ret = sg_alloc_table_from_pages(&b->sgt, b->pages, nr_pages, 0,
					(size_t)nr_pages << PAGE_SHIFT,
					GFP_KERNEL_ACCOUNT);
	if (!ret)
		return 0;
err:
	tern_buf_free(b);
	return ret;
}

/*
 * Bytes of @b from @off, at most @len, that one
 * command moves: the device takes max_xfer_segments segments per command
 * (an IOMMU can only merge them further).
 */
static u32 tern_buf_xfer_len(struct tern_vfio_dev *tvdev, struct tern_buf *b,
			     u32 off, u32 len)
{
	unsigned int segs = 0, i;
	struct scatterlist *sg;
	u32 pos = 0, n = 0;

	for_each_sgtable_sg(&b->sgt, sg, i) {
		u32 end = pos + sg->length;

		if (end > off) {
			if (segs++ == tvdev->info.max_xfer_segments || n >= len)
				break;
			n += end - max(pos, off);
		}
		pos = end;
	}
	return min(n, len);
}

/* The shortest chunk any buffer gives: one page per DMA segment. */
static u32 tern_min_chunk(struct tern_vfio_dev *tvdev)
{
	return min_t(u64, TERN_CHUNK_SIZE,
		     (u64)max(tvdev->info.max_xfer_segments, 1u) << PAGE_SHIFT);
}

/* CRC-32C of @len bytes of @b, continuing @crc. */
static u32 tern_buf_crc(struct tern_buf *b, u32 crc, u32 off, u32 len)
{
	while (len) {
		u32 in_page = offset_in_page(off);
		u32 n = min_t(u32, len, PAGE_SIZE - in_page);
		void *p = kmap_local_page(b->pages[off >> PAGE_SHIFT]);

		crc = crc32c(crc, p + in_page, n);
		kunmap_local(p);
		off += n;
		len -= n;
	}
	return crc;
}

static int tern_buf_to_user(struct tern_buf *b, char __user *ubuf, u32 off,
			    u32 len)
{
	while (len) {
		u32 in_page = offset_in_page(off);
		u32 n = min_t(u32, len, PAGE_SIZE - in_page);
		void *p = kmap_local_page(b->pages[off >> PAGE_SHIFT]);
		unsigned long left = copy_to_user(ubuf, p + in_page, n);

		kunmap_local(p);
		if (left)
			return -EFAULT;
		ubuf += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int tern_buf_from_user(struct tern_buf *b, const char __user *ubuf,
			      u32 off, u32 len)
{
	while (len) {
		u32 in_page = offset_in_page(off);
		u32 n = min_t(u32, len, PAGE_SIZE - in_page);
		void *p = kmap_local_page(b->pages[off >> PAGE_SHIFT]);
		unsigned long left = copy_from_user(p + in_page, ubuf, n);

		kunmap_local(p);
		if (left)
			return -EFAULT;
		ubuf += n;
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * The background command of a file: a SAVE into, or a LOAD from, one of
 * its buffers, while user space reads or fills the other.  A kworker
 * gets no signals, so its wait ends with the command or the PF's
 * timeout; a late completion after a timeout finds the buffer still
 * mapped (the PF's slot holds it).  It takes none of the driver's locks.
 */
static void mig_xfer_work(struct work_struct *work)
{
	struct tern_mig_file *migf = container_of(work, struct tern_mig_file,
						  xfer_work);
	struct tern_mig_xfer *r = &migf->xfer;
	struct tern_vf_buf *map = migf->bufs[r->buf].map;
	struct tern_vf *vf = migf->tvdev->vf;

	if (r->save)
		r->ret = tern_vf_save_buf(vf, r->mode, r->off, map, r->len,
					  &r->x);
	else
		r->ret = tern_vf_load_buf(vf, r->start, r->off, map, 0, r->len,
					  &r->crc, &r->x);
	trace_tern_vfio_xfer(migf->tvdev->core.pdev, r->save, r->off, r->len,
			     r->ret);
	complete(&migf->xfer_done);
}

/* Start migf->xfer, filled in by the caller; called with the lock held. */
static void mig_xfer_submit(struct tern_mig_file *migf)
{
	lockdep_assert_held(&migf->lock);
	if (WARN_ON_ONCE(migf->xfer_busy))
		return;
	reinit_completion(&migf->xfer_done);
	migf->xfer_busy = true;
	queue_work(system_unbound_wq, &migf->xfer_work);
}

/*
 * Wait for the background command; its outcome is then in migf->xfer.
 * Killable: a fatal signal leaves it in flight, to be collected by the
 * next caller (-ERESTARTSYS).
 */
static int mig_xfer_collect(struct tern_mig_file *migf)
{
	ktime_t start = ktime_get();

	lockdep_assert_held(&migf->lock);
	if (wait_for_completion_killable(&migf->xfer_done))
		return -ERESTARTSYS;
	migf->xfer_busy = false;
	trace_tern_vfio_xfer_wait(migf->tvdev->core.pdev, migf->xfer.save,
				  ktime_us_delta(ktime_get(), start));
	return 0;
}

/* Wait for a read() or write() in progress, and end the file's I/O. */
static void mig_file_disable(struct tern_mig_file *migf)
{
	mutex_lock(&migf->lock);
	WRITE_ONCE(migf->disabled, true);
	mutex_unlock(&migf->lock);
	/*
	 * Nothing submits any more: wait for the command in flight, which
	 * uses the device's handle (tern_vfio_close_device() puts it next).
	 */
	flush_work(&migf->xfer_work);
	wake_up_interruptible(&migf->poll_wait);
}

/* 0 if I/O on the file may go on; called with migf->lock held. */
static int mig_file_usable(struct tern_mig_file *migf)
{
	if (READ_ONCE(migf->disabled))
		return -ENODEV;
	return migf->error;
}

static void mig_file_free_bufs(struct tern_mig_file *migf)
{
	unsigned int i;

	for (i = 0; i < TERN_MIG_BUFS; i++) {
		if (!IS_ERR_OR_NULL(migf->bufs[i].map))
			tern_vf_buf_unmap(migf->bufs[i].map);
		tern_buf_free(&migf->bufs[i]);
	}
}

static int mig_file_release(struct inode *inode, struct file *filp)
{
	struct tern_mig_file *migf = filp->private_data;
	struct vfio_device *vdev = &migf->tvdev->core.vdev;

	/* mig_file_disable() waited for it already. */
	cancel_work_sync(&migf->xfer_work);
	mig_file_free_bufs(migf);
	mutex_destroy(&migf->lock);
	kfree(migf);
	/* May free the device, if it was unregistered meanwhile. */
	put_device(&vdev->device);
	return 0;
}

static struct tern_mig_file *
mig_file_new(struct tern_vfio_dev *tvdev, const struct file_operations *fops,
	     int flags, unsigned int nr_pages)
{
	struct tern_mig_file *migf;
	unsigned int i;
	int ret;

	migf = kzalloc(sizeof(*migf), GFP_KERNEL_ACCOUNT);
	if (!migf)
		return ERR_PTR(-ENOMEM);
	mutex_init(&migf->lock);
	init_waitqueue_head(&migf->poll_wait);
	INIT_WORK(&migf->xfer_work, mig_xfer_work);
	init_completion(&migf->xfer_done);
	migf->tvdev = tvdev;

	for (i = 0; i < TERN_MIG_BUFS; i++) {
		struct tern_buf *b = &migf->bufs[i];

		ret = tern_buf_alloc(b, nr_pages);
		if (ret)
			goto err_bufs;
		/* Mapped once: no chunk pays for a mapping. */
		b->map = tern_vf_buf_map(tvdev->vf, &b->sgt,
					 flags == O_RDONLY ? DMA_FROM_DEVICE :
							     DMA_TO_DEVICE);
		if (IS_ERR(b->map)) {
			ret = PTR_ERR(b->map);
			goto err_bufs;
		}
	}
	migf->filp = anon_inode_getfile("tern_vfio_mig", fops, migf, flags);
	if (IS_ERR(migf->filp)) {
		ret = PTR_ERR(migf->filp);
		goto err_bufs;
	}
	stream_open(migf->filp->f_inode, migf->filp);
	/*
	 * The file may outlive the device's registration (the user closes
	 * the device fd and the VF is unbound): keep its memory, and so
	 * tvdev, until release(); a reference on the struct device does not
	 * hold up vfio_unregister_group_dev().
	 */
	get_device(&tvdev->core.vdev.device);
	return migf;

err_bufs:
	mig_file_free_bufs(migf);
	mutex_destroy(&migf->lock);
	kfree(migf);
	return ERR_PTR(ret);
}

/* Drop the device's reference; the user's fd may keep the file open. */
static void mig_file_put(struct tern_mig_file *migf)
{
	mig_file_disable(migf);
	fput(migf->filp);
}

void tern_mig_release_files(struct tern_vfio_dev *tvdev)
{
	if (tvdev->saving) {
		mig_file_put(tvdev->saving);
		tvdev->saving = NULL;
	}
	if (tvdev->resuming) {
		mig_file_put(tvdev->resuming);
		tvdev->resuming = NULL;
	}
}

/*
 * A reset runs with vdev->memory_lock held, which a read() or write()
 * holding migf->lock may wait for in copy_to_user() (a fault on a BAR
 * mmap).  So a reset only marks the files dead, without their locks;
 * tern_mig_reap_files() drops them at the next tern_state_lock().
 */
static void tern_mig_kill_files(struct tern_vfio_dev *tvdev)
{
	if (tvdev->saving) {
		WRITE_ONCE(tvdev->saving->disabled, true);
		wake_up_interruptible(&tvdev->saving->poll_wait);
	}
	if (tvdev->resuming)
		WRITE_ONCE(tvdev->resuming->disabled, true);
}

static void tern_mig_reap_files(struct tern_vfio_dev *tvdev)
{
	if ((tvdev->saving && READ_ONCE(tvdev->saving->disabled)) ||
	    (tvdev->resuming && READ_ONCE(tvdev->resuming->disabled)))
		tern_mig_release_files(tvdev);
}

/* ------------------------------------------------------------------
 * Saving
 */

static void save_queue(struct tern_mig_file *migf, const void *data, u32 len)
{
	if (WARN_ON(migf->queue_len + len > sizeof(migf->queue)))
		return;
	memcpy(migf->queue + migf->queue_len, data, len);
	migf->queue_len += len;
}

/*
 * The running CRC-32C of a record header with its crc field zeroed: a
 * record's CRC covers its header and its payload, so that no byte of the
 * stream goes unchecked.
 */
static u32 rec_hdr_crc(const struct tern_stream_rec *rec)
{
	struct tern_stream_rec r = *rec;

	r.crc = 0;
	return crc32c(~0, &r, sizeof(r));
}

/*
 * Queue a record header; its payload is @payload, queued after it, or
 * (@payload NULL) the first @len bytes of bufs[cur], whose CRC32C the
 * device computed (migf->payload_crc) if it does: the record's CRC then
 * follows from it and the header's, and the CPU never reads the payload.
 */
static void save_queue_rec(struct tern_mig_file *migf, u16 type, u16 flags,
			   u64 offset, u32 len, const void *payload)
{
	struct tern_stream_rec rec = {
		.type = cpu_to_le16(type),
		.flags = cpu_to_le16(flags),
		.length = cpu_to_le32(len),
		.offset = cpu_to_le64(offset),
		.seq = cpu_to_le32(migf->seq++),
	};
	u32 crc = rec_hdr_crc(&rec);

	if (payload)
		crc = ~crc32c(crc, payload, len);
	else if (migf->tvdev->info.xfer_crc)
		crc = tern_crc32c_shift(~crc, len) ^ migf->payload_crc;
	else
		crc = ~tern_buf_crc(&migf->bufs[migf->cur], crc, 0, len);
	rec.crc = cpu_to_le32(crc);
	save_queue(migf, &rec, sizeof(rec));
	if (payload)
		save_queue(migf, payload, len);
	migf->produced += sizeof(rec) + len;
}

/* The stream header and a SOURCE record naming the source. */
static void save_queue_start(struct tern_mig_file *migf)
{
	struct tern_stream_hdr hdr;
	char src[64] = {};
	u32 len;

	tern_stream_make_hdr(migf->tvdev, &hdr);
	save_queue(migf, &hdr, sizeof(hdr));
	migf->produced += sizeof(hdr);
	len = snprintf(src, sizeof(src), "tern_vfio_pci on Linux %s",
		       init_utsname()->release);
	len = min_t(u32, len + 1, sizeof(src));
	save_queue_rec(migf, TERN_REC_SOURCE, 0, 0, len, src);
}

/*
 * The device's answer to a save of the chunk at @off must describe the
 * image it began: a device that lies would corrupt the stream and the
 * byte accounting.
 */
static int save_check_xfer(struct tern_mig_file *migf, u64 off,
			   const struct tern_vf_xfer *x)
{
	bool size_ok = !migf->image_open || x->image_size == migf->image_size;

	if (x->bytes && x->bytes <= TERN_CHUNK_SIZE && size_ok &&
	    x->image_size >= off + x->bytes &&
	    x->more == (off + x->bytes < x->image_size))
		return 0;
	dev_err_ratelimited(mig_dev(migf), "device returned %u bytes at %llu of a %llu-byte image (was %llu), more=%d\n",
			    x->bytes, off, x->image_size,
			    migf->image_open ? migf->image_size : 0, x->more);
	return -EIO;
}

/*
 * A chunk the device wrote into bufs[@buf]: check it and queue its
 * record; user space reads it next.  If the image goes on, the SAVE of
 * its next chunk starts now, into the other buffer, and runs while user
 * space reads this one.
 */
static int save_take_chunk(struct tern_mig_file *migf, u64 off,
			   const struct tern_vf_xfer *x, unsigned int buf)
{
	struct tern_mig_xfer *r = &migf->xfer;
	int ret;

	ret = save_check_xfer(migf, off, x);
	if (ret)
		return ret;
	migf->cur = buf;
	migf->payload_crc = x->crc;
	if (!migf->image_open) {
		migf->image_open = true;
		migf->image_size = x->image_size;
		migf->nr_images++;
		migf->image_bytes += x->image_size;
	}
	save_queue_rec(migf, TERN_REC_IMAGE, off ? 0 : TERN_REC_F_FIRST, off,
		       x->bytes, NULL);
	migf->payload_len = x->bytes;
	migf->payload_off = 0;
	migf->image_off = off + x->bytes;
	if (!x->more) {
		migf->image_open = false;
		/* The initial data ends with the full image. */
		if (migf->initial_open) {
			migf->initial_open = false;
			migf->initial_end = migf->produced;
		}
		return 0;
	}
	/* A reset or an arc that ends the file submits nothing more. */
	if (READ_ONCE(migf->disabled))
		return 0;
	*r = (struct tern_mig_xfer){
		.save = true,
		.mode = TERN_VF_SAVE_CONTINUE,
		.buf = buf ^ 1,
		.off = migf->image_off,
		.len = migf->chunk_len,
	};
	mig_xfer_submit(migf);
	return 0;
}

/*
 * Read the next chunk of the open image, or take a new image.  The next
 * chunk of an open image is usually in flight already: then only its
 * outcome is collected.
 */
static int save_next_chunk(struct tern_mig_file *migf)
{
	struct tern_vfio_dev *tvdev = migf->tvdev;
	enum tern_vf_save_mode mode = TERN_VF_SAVE_CONTINUE;
	unsigned int buf = migf->cur ^ 1;
	struct tern_vf_xfer x;
	u64 off = migf->image_off;
	int ret;

	if (migf->xfer_busy) {
		ret = mig_xfer_collect(migf);
		if (ret)
			return ret;
		if (migf->xfer.ret)
			return migf->xfer.ret;
		/* Submitted by save_take_chunk(): the open image's next. */
		if (WARN_ON(!migf->image_open || migf->xfer.off != off))
			return -EIO;
		x = migf->xfer.x;
		return save_take_chunk(migf, off, &x, migf->xfer.buf);
	}
	if (!migf->image_open) {
		/* A full image first, and again after a REINIT. */
		mode = migf->nr_images && !migf->reinit ?
		       TERN_VF_SAVE_INCREMENTAL : TERN_VF_SAVE_FULL;
		off = 0;
	}
	ret = tern_vf_save_buf(tvdev->vf, mode, off, migf->bufs[buf].map,
			       migf->chunk_len, &x);
	if (ret)
		return ret;
	if (mode == TERN_VF_SAVE_FULL) {
		migf->reinit = false;
		migf->initial_open = true;
	}
	return save_take_chunk(migf, off, &x, buf);
}

static void save_queue_end(struct tern_mig_file *migf)
{
	struct tern_stream_end end = {
		.nr_records = cpu_to_le32(migf->seq),
		.nr_images = cpu_to_le32(migf->nr_images),
		.image_bytes = cpu_to_le64(migf->image_bytes),
	};

	save_queue_rec(migf, TERN_REC_END, 0, 0, sizeof(end), &end);
	migf->end_queued = true;
}

/* Incremental image bytes the device has pending; 0 if nothing changed. */
static int save_pending(struct tern_mig_file *migf, u64 *bytes)
{
	struct tern_vf_size size;
	int ret;

	*bytes = 0;
	ret = tern_vf_query(migf->tvdev->vf, &size);
	if (ret)
		return ret;
	/* An increment without device memory pages only has registers. */
	if (size.incremental > TERN_IMAGE_HDR_SIZE + TERN_IMAGE_REGS_SIZE)
		*bytes = size.incremental;
	return 0;
}

/*
 * Stream bytes produced and not yet read, plus an estimate of what the
 * rest of the open image will add (whole chunks; a device may send
 * shorter ones, which the count then catches up with).
 */
static u64 save_ahead(struct tern_mig_file *migf)
{
	u64 rest = migf->image_open ? migf->image_size - migf->image_off : 0;

	return migf->produced - migf->pos +
	       tern_image_stream_bytes(rest, migf->chunk_len);
}

/*
 * Buffer the next piece of the stream.  Returns 0, TERN_EOF at the end,
 * -ENOMSG when a pre-copy stream has nothing more for now.
 */
static int save_produce(struct tern_mig_file *migf)
{
	u64 pending;
	int ret;

	migf->queue_len = 0;
	migf->queue_off = 0;
	migf->payload_len = 0;
	migf->payload_off = 0;

	if (migf->image_open)
		return save_next_chunk(migf);
	if (migf->end_queued)
		return TERN_EOF;
	if (migf->final) {
		if (!migf->final_taken) {
			migf->final_taken = true;
			return save_next_chunk(migf);
		}
		save_queue_end(migf);
		return 0;
	}
	/* The new initial data a REINIT announced. */
	if (migf->reinit)
		return save_next_chunk(migf);
	ret = save_pending(migf, &pending);
	if (ret)
		return ret;
	return pending ? save_next_chunk(migf) : -ENOMSG;
}

/* Copy buffered stream bytes out; returns bytes copied or -EFAULT. */
static ssize_t save_copy_out(struct tern_mig_file *migf, char __user *ubuf,
			     size_t len)
{
	size_t done = 0;
	u32 n;

	n = min_t(size_t, len, migf->queue_len - migf->queue_off);
	if (n) {
		if (copy_to_user(ubuf, migf->queue + migf->queue_off, n))
			return -EFAULT;
		migf->queue_off += n;
		done += n;
		len -= n;
	}
	n = min_t(size_t, len, migf->payload_len - migf->payload_off);
	if (n) {
		if (tern_buf_to_user(&migf->bufs[migf->cur], ubuf + done,
				     migf->payload_off, n))
			return done ? done : -EFAULT;
		migf->payload_off += n;
		done += n;
	}
	return done;
}

/* Bytes of the stream are buffered in the file. */
static bool save_buffered(struct tern_mig_file *migf)
{
	return migf->queue_off < migf->queue_len ||
	       migf->payload_off < migf->payload_len;
}

/*
 * Fill the user's buffer, one device command at a time.  A fatal signal
 * ends the loop between commands (-EINTR, the stream intact); an -EINTR
 * of the PF's (a command abandoned, its outcome unknown) is an error.
 */
static int save_fill(struct tern_mig_file *migf, char __user *ubuf,
		     size_t len, size_t *done)
{
	ssize_t n;
	int ret;

	while (len) {
		n = save_copy_out(migf, ubuf + *done, len);
		if (n < 0)
			return n;
		if (n) {
			*done += n;
			len -= n;
			continue;
		}
		if (fatal_signal_pending(current))
			return -ERESTARTSYS;
		/* A reset may have ended the file meanwhile. */
		ret = READ_ONCE(migf->disabled) ? -ENODEV : save_produce(migf);
		if (ret)
			return ret;
	}
	return 0;
}

static ssize_t save_read(struct file *filp, char __user *ubuf, size_t len,
			 loff_t *pos)
{
	struct tern_mig_file *migf = filp->private_data;
	size_t done = 0;
	int ret;

	if (pos)
		return -ESPIPE;

	mutex_lock(&migf->lock);
	ret = mig_file_usable(migf);
	if (ret)
		goto out;
	ret = save_fill(migf, ubuf, len, &done);
	migf->pos += done;
	if (ret == TERN_EOF || (ret == -ENOMSG && done))
		ret = 0;
	if (ret == -ERESTARTSYS)
		ret = -EINTR;
	else if (ret == -EINTR)
		/* The PF abandoned a SAVE: where the stream stands is unknown. */
		migf->error = -EIO;
	else if (ret && ret != -ENOMSG && ret != -EFAULT)
		migf->error = ret;
	if (migf->error) {
		dev_err_ratelimited(mig_dev(migf), "saving failed at stream byte %llu: %d\n",
				    migf->pos, ret);
		wake_up_interruptible(&migf->poll_wait);
	}
out:
	mutex_unlock(&migf->lock);
	return done ? (ssize_t)done : ret;
}

/*
 * Readable while stream bytes are buffered, an image is half read or a
 * REINIT announced a new one, and always once the VF is frozen
 * (STOP_COPY: read() returns data or 0 at the end).  In PRE_COPY nothing
 * tells the driver when the VF changes its state, so a waiter at the
 * temporary end of data is woken only by an arc or the end of the file.
 */
static __poll_t save_poll(struct file *filp, struct poll_table_struct *wait)
{
	struct tern_mig_file *migf = filp->private_data;
	__poll_t mask = 0;

	poll_wait(filp, &migf->poll_wait, wait);
	mutex_lock(&migf->lock);
	if (mig_file_usable(migf))
		mask = EPOLLERR;
	else if (migf->final || migf->image_open || migf->reinit ||
		 save_buffered(migf))
		mask = EPOLLIN | EPOLLRDNORM;
	mutex_unlock(&migf->lock);
	return mask;
}

/*
 * @v2: user space opted in to PRECOPY_INFOv2.  Then, when the VF's
 * configuration changed since the last full image (device.rst, "New
 * initial data"), this reports VFIO_PRECOPY_INFO_REINIT once, and the
 * stream goes on with a new full image: initial_bytes counts it and what
 * is queued before it, dirty_bytes starts again from 0.  Without the
 * opt-in the change travels in the increments, which carry the
 * registers, and flags stay 0.
 */
static long save_precopy_info(struct tern_mig_file *migf, bool v2,
			      struct vfio_precopy_info *info)
{
	struct tern_vf_size size = {};
	u64 ahead;
	int ret;

	if (!migf->image_open && !migf->final) {
		ret = tern_vf_query(migf->tvdev->vf, &size);
		if (ret)
			return ret;
	}
	if (v2 && size.new_config && !migf->reinit) {
		migf->reinit = true;
		info->flags |= TERN_PRECOPY_INFO_REINIT;
	}

	ahead = save_ahead(migf);
	if (migf->reinit) {
		/* No image is open: the full image is taken at the next read. */
		info->initial_bytes = ahead +
				      tern_image_stream_bytes(size.full,
							      migf->chunk_len);
		info->dirty_bytes = 0;
		return 0;
	}
	/* Until a full image is complete, everything is initial data. */
	if (migf->initial_open)
		info->initial_bytes = ahead;
	else
		info->initial_bytes = migf->initial_end > migf->pos ?
				      migf->initial_end - migf->pos : 0;
	/* produced >= initial_end, so this never wraps. */
	info->dirty_bytes = ahead - info->initial_bytes;
	/* An increment without device memory pages only has registers. */
	if (size.incremental > TERN_IMAGE_HDR_SIZE + TERN_IMAGE_REGS_SIZE)
		info->dirty_bytes += tern_image_stream_bytes(size.incremental,
							     migf->chunk_len);
	return 0;
}

static long save_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	const size_t minsz = offsetofend(struct vfio_precopy_info, dirty_bytes);
	struct tern_mig_file *migf = filp->private_data;
	struct tern_vfio_dev *tvdev = migf->tvdev;
	struct vfio_precopy_info info;
	long ret;

	ret = tern_check_precopy_ioctl(&tvdev->core.vdev, cmd, arg, &info);
	if (ret)
		return ret;
	/* An output only: 0 unless a REINIT is reported, opted in or not. */
	info.flags = 0;

	/*
	 * tvdev lives as long as the file, but once the file is disabled
	 * the device may be closed, unregistered or in another session.
	 */
	tern_state_lock(tvdev);
	mutex_lock(&migf->lock);
	ret = mig_file_usable(migf);
	if (!ret && tvdev->mig_state != VFIO_DEVICE_STATE_PRE_COPY &&
	    tvdev->mig_state != VFIO_DEVICE_STATE_PRE_COPY_P2P)
		ret = -EINVAL;
	if (!ret)
		ret = save_precopy_info(migf,
					tern_precopy_info_v2(&tvdev->core.vdev),
					&info);
	mutex_unlock(&migf->lock);
	tern_state_unlock(tvdev);
	if (ret)
		return ret;
	return copy_to_user((void __user *)arg, &info, minsz) ? -EFAULT : 0;
}

static const struct file_operations tern_save_fops = {
	.owner = THIS_MODULE,
	.read = save_read,
	.poll = save_poll,
	.unlocked_ioctl = save_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = mig_file_release,
};

/*
 * A saving file.  In pre-copy the full image is taken now, while the VF
 * runs, and increments follow; otherwise the VF is frozen and the full
 * image is the last.
 */
static struct tern_mig_file *save_file_new(struct tern_vfio_dev *tvdev,
					   bool precopy)
{
	struct tern_mig_file *migf;
	int ret;

	migf = mig_file_new(tvdev, &tern_save_fops, O_RDONLY, TERN_CHUNK_PAGES);
	if (IS_ERR(migf))
		return migf;
	/* As much as the device takes in one command of either buffer. */
	migf->chunk_len = min(tern_buf_xfer_len(tvdev, &migf->bufs[0], 0,
						TERN_CHUNK_SIZE),
			      tern_buf_xfer_len(tvdev, &migf->bufs[1], 0,
						TERN_CHUNK_SIZE));

	mutex_lock(&migf->lock);
	migf->precopy = precopy;
	migf->final = !precopy;
	migf->final_taken = !precopy;
	save_queue_start(migf);
	ret = save_next_chunk(migf);
	mutex_unlock(&migf->lock);
	if (ret) {
		fput(migf->filp);
		return ERR_PTR(ret);
	}
	return migf;
}

/* ------------------------------------------------------------------
 * Resuming
 */

static int resume_check_rec(struct tern_mig_file *migf)
{
	const struct tern_stream_rec *rec = &migf->rec;
	u16 type = le16_to_cpu(rec->type), flags = le16_to_cpu(rec->flags);
	u32 len = le32_to_cpu(rec->length), seq = le32_to_cpu(rec->seq);
	u64 off = le64_to_cpu(rec->offset);
	struct device *dev = mig_dev(migf);

	if (seq != migf->seq) {
		dev_err_ratelimited(dev, "stream: record %u arrived where %u was due\n",
				    seq, migf->seq);
		return -EILSEQ;
	}
	if (len > TERN_REC_MAX_PAYLOAD) {
		dev_err_ratelimited(dev, "stream: record %u has %u bytes, more than %u\n",
				    seq, len, TERN_REC_MAX_PAYLOAD);
		return -EMSGSIZE;
	}

	switch (type) {
	case TERN_REC_IMAGE:
		if (!len || flags & ~TERN_REC_F_FIRST) {
			dev_err_ratelimited(dev, "stream: image record %u: bad length %u or flags 0x%x\n",
					    seq, len, flags);
			return -EINVAL;
		}
		if ((flags & TERN_REC_F_FIRST) ?
		    off || migf->image_open :
		    !migf->image_open || off != migf->image_off) {
			dev_err_ratelimited(dev, "stream: image record %u at offset %llu is out of order\n",
					    seq, off);
			return -EILSEQ;
		}
		return 0;
	case TERN_REC_END:
		if (len != TERN_STREAM_END_SIZE || flags || off) {
			dev_err_ratelimited(dev, "stream: malformed END record\n");
			return -EINVAL;
		}
		if (migf->image_open) {
			dev_err_ratelimited(dev, "stream: END inside an image\n");
			return -EILSEQ;
		}
		return 0;
	default:
		/* Only IMAGE records use the flags and the offset. */
		if (flags || off) {
			dev_err_ratelimited(dev, "stream: record %u of type 0x%04x: flags 0x%x, offset %llu\n",
					    seq, type, flags, off);
			return -EINVAL;
		}
		if (!(type & TERN_REC_OPTIONAL)) {
			dev_err_ratelimited(dev, "stream: unknown mandatory record type 0x%04x\n",
					    type);
			return -EPROTO;
		}
		return 0;	/* skipped */
	}
}

/*
 * A payload that does not fit in the device's SG entries at once, checked
 * by the CPU already: in as many loads as it takes.
 */
static int resume_load_pieces(struct tern_mig_file *migf, bool first, u64 off,
			      u32 len, struct tern_vf_xfer *x)
{
	struct tern_vfio_dev *tvdev = migf->tvdev;
	struct tern_buf *b = &migf->bufs[migf->cur];
	u32 done = 0;
	int ret = 0;

	while (done < len) {
		u32 n = tern_buf_xfer_len(tvdev, b, done, len - done);

		ret = tern_vf_load_buf(tvdev->vf, first && !done, off + done,
				       b->map, done, n, NULL, x);
		if (ret)
			return ret;
		done += x->bytes;
		if (x->bytes != n || x->applied)
			break;
	}
	x->bytes = done;
	return 0;
}

/* The device's answer to the LOAD of IMAGE record @seq, @len bytes. */
static int resume_loaded(struct tern_mig_file *migf, int ret,
			 const struct tern_vf_xfer *x, u32 seq, u32 len)
{
	if (ret) {
		/* -EBADMSG: its CRC (if the device checks it) or the image's. */
		dev_err_ratelimited(mig_dev(migf), "stream: the device rejected image record %u: %d\n",
				    seq, ret);
		return ret;
	}
	if (x->bytes != len || (!x->more && !x->applied)) {
		dev_err_ratelimited(mig_dev(migf), "stream: image record %u runs past its image\n",
				    seq);
		return -EMSGSIZE;
	}
	migf->image_open = !x->applied;
	if (x->applied) {
		migf->applied = true;
		migf->nr_images++;
		migf->image_bytes += x->image_size;
	} else {
		migf->applied = false;
	}
	return 0;
}

/*
 * Collect the LOAD in flight, if any, and take its outcome.  A fatal
 * signal ends the wait with the LOAD's outcome unknown to the stream,
 * as when the PF abandons a command: -EINTR, and the stream fails.
 */
static int resume_collect(struct tern_mig_file *migf)
{
	struct tern_mig_xfer *r = &migf->xfer;
	int ret;

	if (!migf->xfer_busy)
		return 0;
	ret = mig_xfer_collect(migf);
	if (ret)
		return -EINTR;
	return resume_loaded(migf, r->ret, &r->x, r->seq, r->len);
}

/*
 * A complete IMAGE record in bufs[cur].  Once the device has said how the
 * previous record's LOAD went, this one's starts and runs while the next
 * record arrives in the other buffer; its outcome is collected before the
 * next LOAD, the next record other than its image's next chunk, or the
 * RESUMING -> STOP arc, and a failure fails that write() or arc.
 */
static int resume_load_image(struct tern_mig_file *migf, u32 len)
{
	const struct tern_stream_rec *rec = &migf->rec;
	bool first = le16_to_cpu(rec->flags) & TERN_REC_F_FIRST;
	u64 off = le64_to_cpu(rec->offset);
	u32 seq = le32_to_cpu(rec->seq);
	struct tern_vf_xfer x;
	int ret;

	ret = resume_collect(migf);
	if (ret)
		return ret;
	/* resume_check_rec() took the image to go on; it ended instead. */
	if (!first && !migf->image_open) {
		dev_err_ratelimited(mig_dev(migf), "stream: image record %u at offset %llu is out of order\n",
				    seq, off);
		return -EILSEQ;
	}
	migf->image_off = off + len;
	if (!migf->dev_crc) {
		ret = resume_load_pieces(migf, first, off, len, &x);
		return resume_loaded(migf, ret, &x, seq, len);
	}
	migf->xfer = (struct tern_mig_xfer){
		.start = first,
		.buf = migf->cur,
		.off = off,
		.len = len,
		/* The payload's CRC, from the record's and its header's. */
		.crc = le32_to_cpu(rec->crc) ^
		       tern_crc32c_shift(~rec_hdr_crc(rec), len),
		.seq = seq,
	};
	mig_xfer_submit(migf);
	/* Until the device answers, the image is taken to go on. */
	migf->image_open = true;
	migf->applied = false;
	migf->cur ^= 1;
	return 0;
}

static int resume_end(struct tern_mig_file *migf)
{
	struct tern_stream_end end;
	void *p = kmap_local_page(migf->bufs[migf->cur].pages[0]);

	memcpy(&end, p, sizeof(end));
	kunmap_local(p);
	if (le32_to_cpu(end.nr_records) != migf->seq ||
	    le32_to_cpu(end.nr_images) != migf->nr_images ||
	    le64_to_cpu(end.image_bytes) != migf->image_bytes) {
		dev_err_ratelimited(mig_dev(migf), "stream: END record does not match the stream (%u records, %u images)\n",
				    migf->seq, migf->nr_images);
		return -EBADMSG;
	}
	migf->ended = true;
	return 0;
}

/* A record's payload is complete: check it and act on it. */
static int resume_rec_done(struct tern_mig_file *migf)
{
	const struct tern_stream_rec *rec = &migf->rec;
	u32 len = le32_to_cpu(rec->length);
	int ret = 0;

	if (!migf->dev_crc && ~migf->crc != le32_to_cpu(rec->crc)) {
		dev_err_ratelimited(mig_dev(migf), "stream: record %u fails its CRC\n",
				    le32_to_cpu(rec->seq));
		return -EBADMSG;
	}
	switch (le16_to_cpu(rec->type)) {
	case TERN_REC_IMAGE:
		ret = resume_load_image(migf, len);
		break;
	case TERN_REC_END:
		ret = resume_end(migf);
		break;
	}
	if (ret)
		return ret;
	migf->in_rec = false;
	migf->part_len = 0;
	migf->seq++;
	return 0;
}

/* Payload bytes: kept in buf for IMAGE and END, only summed otherwise. */
static ssize_t resume_payload(struct tern_mig_file *migf,
			      const char __user *ubuf, size_t len)
{
	u16 type = le16_to_cpu(migf->rec.type);
	u32 n = min_t(size_t, len, le32_to_cpu(migf->rec.length) -
				   migf->rec_got);
	u8 skip[64];

	if (type != TERN_REC_IMAGE && type != TERN_REC_END) {
		n = min_t(u32, n, sizeof(skip));
		if (copy_from_user(skip, ubuf, n))
			return -EFAULT;
		migf->crc = crc32c(migf->crc, skip, n);
	} else {
		struct tern_buf *b = &migf->bufs[migf->cur];

		if (tern_buf_from_user(b, ubuf, migf->rec_got, n))
			return -EFAULT;
		if (!migf->dev_crc)
			migf->crc = tern_buf_crc(b, migf->crc, migf->rec_got,
						 n);
	}
	migf->rec_got += n;
	return n;
}

/* Take bytes of the stream: header, record header, or payload. */
static ssize_t resume_consume(struct tern_mig_file *migf,
			      const char __user *ubuf, size_t len)
{
	u8 *part = migf->have_hdr ? (u8 *)&migf->rec : migf->hdr;
	u32 want = migf->have_hdr ? sizeof(migf->rec) : sizeof(migf->hdr);
	u32 n, plen;
	int ret;

	if (migf->ended) {
		dev_err_ratelimited(mig_dev(migf), "stream: data after the END record\n");
		return -EINVAL;
	}
	if (migf->in_rec) {
		ssize_t got = resume_payload(migf, ubuf, len);

		if (got < 0)
			return got;
		n = got;
		goto check_done;
	}

	n = min_t(size_t, len, want - migf->part_len);
	if (copy_from_user(part + migf->part_len, ubuf, n))
		return -EFAULT;
	migf->part_len += n;
	if (migf->part_len < want)
		return n;

	if (!migf->have_hdr) {
		ret = tern_stream_check_hdr(migf->tvdev, (void *)migf->hdr);
		if (ret)
			return ret;
		migf->have_hdr = true;
		migf->part_len = 0;
		return n;
	}
	/* Only an image's next chunk may be checked before the last LOAD ends. */
	if (le16_to_cpu(migf->rec.type) != TERN_REC_IMAGE ||
	    le16_to_cpu(migf->rec.flags) & TERN_REC_F_FIRST) {
		ret = resume_collect(migf);
		if (ret)
			return ret;
	}
	ret = resume_check_rec(migf);
	if (ret)
		return ret;
	migf->in_rec = true;
	migf->rec_got = 0;
	migf->crc = rec_hdr_crc(&migf->rec);
	/* One LOAD the device checks, if the payload fits in one. */
	plen = le32_to_cpu(migf->rec.length);
	migf->dev_crc = le16_to_cpu(migf->rec.type) == TERN_REC_IMAGE &&
			migf->tvdev->info.xfer_crc &&
			tern_buf_xfer_len(migf->tvdev, &migf->bufs[migf->cur], 0,
					  plen) ==
			plen;
check_done:
	if (migf->rec_got == le32_to_cpu(migf->rec.length)) {
		ret = resume_rec_done(migf);
		if (ret)
			return ret;
	}
	return n;
}

static ssize_t resume_write(struct file *filp, const char __user *ubuf,
			    size_t len, loff_t *pos)
{
	struct tern_mig_file *migf = filp->private_data;
	ssize_t done = 0, n;
	int ret = 0;

	if (pos)
		return -ESPIPE;

	mutex_lock(&migf->lock);
	ret = mig_file_usable(migf);
	if (ret)
		goto out;
	while (done < len) {
		/* A reset may have ended the file meanwhile. */
		n = READ_ONCE(migf->disabled) ? -ENODEV :
			resume_consume(migf, ubuf + done, len - done);
		if (n < 0) {
			ret = n;
			break;
		}
		done += n;
	}
	migf->pos += done;
	/* A stream that failed validation stays failed. */
	if (ret && ret != -EFAULT)
		migf->error = ret;
	/* The bytes before a fault were taken: the writer must not resend. */
	if (ret == -EFAULT && done)
		ret = 0;
out:
	mutex_unlock(&migf->lock);
	return ret ? ret : done;
}

static const struct file_operations tern_resume_fops = {
	.owner = THIS_MODULE,
	.write = resume_write,
	.release = mig_file_release,
};

/* RESUMING -> STOP: the stream must have ended with its image applied. */
static int resume_finish(struct tern_mig_file *migf)
{
	int ret = 0;

	mutex_lock(&migf->lock);
	/* The last LOAD, if the stream stopped before its END record. */
	if (!migf->error)
		migf->error = resume_collect(migf);
	if (migf->error) {
		ret = migf->error;
	} else if (!migf->ended || !migf->applied) {
		dev_err_ratelimited(mig_dev(migf), "stream: ended after %llu bytes, before its END record\n",
				    migf->pos);
		ret = -ENODATA;
	}
	mutex_unlock(&migf->lock);
	return ret;
}

/* ------------------------------------------------------------------
 * The state machine
 */

/* Device errors that leave the VF in an unknown state. */
static bool tern_err_fatal(int err)
{
	/* -EINTR: a killed waiter abandoned its command, outcome unknown. */
	return err == -ETIMEDOUT || err == -EIO || err == -ENODEV ||
	       err == -EINTR;
}

static struct file *tern_save_start(struct tern_vfio_dev *tvdev, bool precopy)
{
	struct tern_mig_file *migf = save_file_new(tvdev, precopy);

	if (IS_ERR(migf))
		return ERR_CAST(migf);
	tvdev->saving = migf;
	get_file(migf->filp);
	return migf->filp;
}

/* PRE_COPY_P2P -> STOP_COPY: freeze; the next image is the last. */
static int tern_precopy_stop(struct tern_vfio_dev *tvdev)
{
	struct tern_mig_file *migf = tvdev->saving;
	int ret;

	ret = tern_vf_freeze(tvdev->vf);
	if (ret)
		return ret;
	mutex_lock(&migf->lock);
	migf->final = true;
	/* The last increment carries a new configuration as well. */
	migf->reinit = false;
	mutex_unlock(&migf->lock);
	/* Frozen: the rest of the stream can be read now. */
	wake_up_interruptible(&migf->poll_wait);
	return 0;
}

static struct file *tern_step(struct tern_vfio_dev *tvdev,
			      enum vfio_device_mig_state next)
{
	enum vfio_device_mig_state cur = tvdev->mig_state;
	struct tern_mig_file *migf;
	int ret;

	/* QUIESCE stops a running VF and thaws a frozen one. */
	if ((cur == VFIO_DEVICE_STATE_RUNNING &&
	     next == VFIO_DEVICE_STATE_RUNNING_P2P) ||
	    (cur == VFIO_DEVICE_STATE_STOP &&
	     next == VFIO_DEVICE_STATE_RUNNING_P2P) ||
	    (cur == VFIO_DEVICE_STATE_PRE_COPY &&
	     next == VFIO_DEVICE_STATE_PRE_COPY_P2P))
		return ERR_PTR(tern_vf_quiesce(tvdev->vf));

	if ((cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	     next == VFIO_DEVICE_STATE_RUNNING) ||
	    (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P &&
	     next == VFIO_DEVICE_STATE_PRE_COPY))
		return ERR_PTR(tern_vf_resume(tvdev->vf));

	if (cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	    next == VFIO_DEVICE_STATE_STOP)
		return ERR_PTR(tern_vf_freeze(tvdev->vf));

	if (cur == VFIO_DEVICE_STATE_STOP &&
	    next == VFIO_DEVICE_STATE_STOP_COPY)
		return tern_save_start(tvdev, false);

	if ((cur == VFIO_DEVICE_STATE_RUNNING &&
	     next == VFIO_DEVICE_STATE_PRE_COPY) ||
	    (cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	     next == VFIO_DEVICE_STATE_PRE_COPY_P2P))
		return tern_save_start(tvdev, true);

	if (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P &&
	    next == VFIO_DEVICE_STATE_STOP_COPY)
		return ERR_PTR(tern_precopy_stop(tvdev));

	if ((cur == VFIO_DEVICE_STATE_STOP_COPY &&
	     next == VFIO_DEVICE_STATE_STOP) ||
	    (cur == VFIO_DEVICE_STATE_PRE_COPY &&
	     next == VFIO_DEVICE_STATE_RUNNING) ||
	    (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P &&
	     next == VFIO_DEVICE_STATE_RUNNING_P2P)) {
		tern_mig_release_files(tvdev);
		return NULL;
	}

	if (cur == VFIO_DEVICE_STATE_STOP &&
	    next == VFIO_DEVICE_STATE_RESUMING) {
		migf = mig_file_new(tvdev, &tern_resume_fops, O_WRONLY,
				    TERN_PAYLOAD_PAGES);
		if (IS_ERR(migf))
			return ERR_CAST(migf);
		tvdev->resuming = migf;
		get_file(migf->filp);
		return migf->filp;
	}

	if (cur == VFIO_DEVICE_STATE_RESUMING &&
	    next == VFIO_DEVICE_STATE_STOP) {
		ret = resume_finish(tvdev->resuming);
		if (ret)
			return ERR_PTR(ret);
		tern_mig_release_files(tvdev);
		return NULL;
	}

	WARN(1, "tern_vfio_pci: no arc from %d to %d\n", cur, next);
	return ERR_PTR(-EINVAL);
}

/*
 * Bytes moved so far through the open data fd, for the tracepoint: only
 * when it is on, as it waits for a read() or write() in progress.
 */
static u64 tern_stream_pos(struct tern_vfio_dev *tvdev)
{
	struct tern_mig_file *migf = tvdev->saving ?: tvdev->resuming;
	u64 pos;

	if (!migf || !trace_tern_vfio_arc_enabled())
		return 0;
	mutex_lock(&migf->lock);
	pos = migf->pos;
	mutex_unlock(&migf->lock);
	return pos;
}

/* An arc failed; a VF in an unknown state is in ERROR.  Returns @err. */
static int tern_arc_failed(struct tern_vfio_dev *tvdev,
			   enum vfio_device_mig_state cur,
			   enum vfio_device_mig_state next, int err)
{
	if (tern_err_fatal(err)) {
		tern_mig_release_files(tvdev);
		tvdev->mig_state = VFIO_DEVICE_STATE_ERROR;
	}
	dev_err_ratelimited(&tvdev->core.pdev->dev, "migration arc %d -> %d failed: %d\n",
			    cur, next, err);
	return err;
}

static struct file *tern_set_state(struct vfio_device *vdev,
				   enum vfio_device_mig_state new)
{
	struct tern_vfio_dev *tvdev = to_tvdev(vdev);
	enum vfio_device_mig_state next;
	struct file *res = NULL;
	int ret;

	tern_state_lock(tvdev);
	/*
	 * vfio.h blocks STOP_COPY -> PRE_COPY and -> PRE_COPY_P2P, but
	 * vfio_mig_get_next_state() of Linux 6.12 loops forever on them
	 * instead of failing: refuse them before asking it.
	 */
	if (tvdev->mig_state == VFIO_DEVICE_STATE_STOP_COPY &&
	    (new == VFIO_DEVICE_STATE_PRE_COPY ||
	     new == VFIO_DEVICE_STATE_PRE_COPY_P2P))
		res = ERR_PTR(-EINVAL);
	/* Only a reset leaves ERROR; vfio core WARNs if asked the way. */
	if (tvdev->mig_state == VFIO_DEVICE_STATE_ERROR)
		res = ERR_PTR(-EINVAL);
	/* A PF event lost the VF's migration state: the next arc fails. */
	else if (tvdev->pf_lost)
		res = ERR_PTR(tern_arc_failed(tvdev, tvdev->mig_state, new,
					      -ENODEV));
	while (!res && tvdev->mig_state != new) {
		enum vfio_device_mig_state cur = tvdev->mig_state;
		u64 bytes = tern_stream_pos(tvdev);

		ret = vfio_mig_get_next_state(vdev, cur, new, &next);
		if (ret) {
			res = ERR_PTR(ret);
			break;
		}
		res = tern_step(tvdev, next);
		ret = PTR_ERR_OR_ZERO(res);
		trace_tern_vfio_arc(tvdev->core.pdev, cur, next, ret, bytes);
		if (ret) {
			tern_arc_failed(tvdev, cur, next, ret);
			break;
		}
		tvdev->mig_state = next;
		if (tvdev->saving)
			wake_up_interruptible(&tvdev->saving->poll_wait);
		if (WARN_ON(res && new != next)) {
			fput(res);
			res = ERR_PTR(-EINVAL);
			break;
		}
	}
	tern_state_unlock(tvdev);
	return res;
}

static int tern_get_state(struct vfio_device *vdev,
			  enum vfio_device_mig_state *state)
{
	struct tern_vfio_dev *tvdev = to_tvdev(vdev);

	tern_state_lock(tvdev);
	*state = tvdev->mig_state;
	tern_state_unlock(tvdev);
	return 0;
}

/*
 * What STOP_COPY would produce now: in pre-copy what is outstanding plus
 * the last increment; otherwise a full image.  Never 0: QEMU refuses it.
 */
static int tern_get_data_size(struct vfio_device *vdev,
			      unsigned long *stop_copy_length)
{
	struct tern_vfio_dev *tvdev = to_tvdev(vdev);
	const u64 fixed = TERN_STREAM_HDR_SIZE + TERN_STREAM_REC_SIZE * 2 + 64 +
			  TERN_STREAM_END_SIZE;
	struct tern_mig_file *migf;
	struct tern_vf_size now;
	u64 size;
	int ret;

	tern_state_lock(tvdev);
	ret = tvdev->pf_lost ? -ENODEV : tern_vf_query(tvdev->vf, &now);
	if (ret)
		goto out;
	migf = tvdev->saving;
	if (migf && migf->precopy) {
		mutex_lock(&migf->lock);
		size = save_ahead(migf) +
		       tern_image_stream_bytes(now.incremental ?: now.full,
					       migf->chunk_len) +
		       TERN_STREAM_REC_SIZE + TERN_STREAM_END_SIZE;
		mutex_unlock(&migf->lock);
	} else {
		/*
		 * The file's buffer is not made yet: records no shorter than
		 * max_xfer_segments single pages bound the record count.
		 */
		size = fixed +
		       tern_image_stream_bytes(now.full, tern_min_chunk(tvdev));
	}
	*stop_copy_length = size;
out:
	tern_state_unlock(tvdev);
	return ret;
}

const struct vfio_migration_ops tern_mig_ops = {
	.migration_set_state = tern_set_state,
	.migration_get_state = tern_get_state,
	.migration_get_data_size = tern_get_data_size,
};

/* ------------------------------------------------------------------
 * Resets and PF events (the deferred-reset pattern)
 */

/* Take state_mutex; drop the data files a reset or PF event ended. */
void tern_state_lock(struct tern_vfio_dev *tvdev)
{
	mutex_lock(&tvdev->state_mutex);
	tern_mig_reap_files(tvdev);
}

/*
 * A PF event: the VF's suspension, open save or load and dirty tracking
 * are gone.  vfio.h lets no device change state on its own, so mig_state
 * stays until the user's next SET_STATE fails into ERROR; the data files
 * end now and every other command fails until a reset or close.
 */
static void tern_pf_lost(struct tern_vfio_dev *tvdev)
{
	if (!tvdev->pf_lost)
		dev_warn_ratelimited(&tvdev->core.pdev->dev, "the PF was reset or removed: migration state lost\n");
	tern_mig_kill_files(tvdev);
	tvdev->tracking = false;
	tvdev->pf_lost = true;
}

/*
 * Release state_mutex, first carrying out a PF event or a reset that
 * arrived meanwhile (a PF event first: a reset that follows undoes it).
 */
void tern_state_unlock(struct tern_vfio_dev *tvdev)
{
again:
	spin_lock(&tvdev->reset_lock);
	if (tvdev->pf_event) {
		tvdev->pf_event = false;
		spin_unlock(&tvdev->reset_lock);
		tern_pf_lost(tvdev);
		goto again;
	}
	if (tvdev->deferred_reset) {
		tvdev->deferred_reset = false;
		spin_unlock(&tvdev->reset_lock);
		tern_mig_kill_files(tvdev);
		tvdev->pf_lost = false;
		/*
		 * Dirty tracking outlives a VF reset (the device keeps it
		 * across an FLR): a guest's FLR must not end the VMM's log.
		 */
		tvdev->mig_state = VFIO_DEVICE_STATE_RUNNING;
		goto again;
	}
	mutex_unlock(&tvdev->state_mutex);
	spin_unlock(&tvdev->reset_lock);
}
