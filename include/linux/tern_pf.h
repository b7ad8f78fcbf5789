/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The tern PF driver's API for VF migration.
 *
 * tern_pf.ko owns the PF of the tern accelerator and its admin queue.
 * This header is everything a VF migration driver (tern_vfio_pci.ko) may
 * ask of it: a handle reaches exactly one VF, and through it the VF's
 * suspend, save, load and dirty tracking commands.  Documentation/tern/pf.rst
 * describes the commands' semantics; the device's own description is in
 * Documentation/tern/device.rst.
 *
 * Every function may sleep.  They return 0 or a negative errno:
 *
 * -ENODEV     the PF is being reset or is gone (see enum tern_vf_event)
 * -ETIMEDOUT  the device did not complete the command in time; it was
 *             aborted (outcome unknown: it may or may not have taken
 *             effect).  Only this caller's command is affected.
 * -EINTR      a fatal signal ended the wait; the command may have been
 *             sent, and was then aborted as on a timeout: outcome unknown
 * -EIO        the admin queue failed or was reset under the command
 * -E2BIG      a data buffer has more DMA segments than the device takes
 *             (&tern_vf_info.max_xfer_segments)
 * -EBADMSG    a load's data does not match its CRC (tern_vf_load_crc()),
 *             or the device rejected the image's contents
 * others      the device's status, mapped as pf.rst lists
 *
 * Waits are killable.  The data pages given to tern_vf_save() and
 * tern_vf_load() may be freed as soon as the call returns, whatever it
 * returns: a command the caller stopped waiting for keeps a reference on
 * every page until the device is done with it.  They must therefore be
 * pages a reference can be taken on (alloc_page(), folios, pinned user
 * pages), not slab memory or parts of a non-compound high-order
 * allocation; -EINVAL otherwise.
 */
#ifndef _LINUX_TERN_PF_H
#define _LINUX_TERN_PF_H

#include <linux/types.h>

#include <linux/dma-direction.h>

struct pci_dev;
struct sg_table;
struct tern_vf;
struct tern_vf_buf;

/**
 * enum tern_vf_event - what the PF tells a handle's owner
 * @TERN_VF_EVENT_PF_RESET: the PF is being reset.  The VF's migration
 *	state (suspension, open saves, staged loads, dirty tracking) is
 *	lost.  Calls fail with -ENODEV until the reset is done.
 * @TERN_VF_EVENT_PF_REMOVE: the PF driver is unbinding.  Every later call
 *	fails with -ENODEV; only tern_vf_put() remains to be called.
 */
enum tern_vf_event {
	TERN_VF_EVENT_PF_RESET,
	TERN_VF_EVENT_PF_REMOVE,
};

/**
 * typedef tern_vf_event_fn - the callback that receives PF events
 * @priv: the pointer given to tern_vf_get()
 * @event: what happened
 *
 * Called in process context, before the event takes effect, with the
 * PF's locks held: it must not call tern_vf_*() and must not wait for a
 * thread that might be inside one.  Record the event and act on it later
 * (the deferred-reset pattern of vfio-pci variant drivers).
 */
typedef void (*tern_vf_event_fn)(void *priv, enum tern_vf_event event);

/**
 * struct tern_vf_info - what IDENTIFY reports about a VF
 * @image_version: version of the device's state image format
 * @nr_queues: descriptor queues of the VF
 * @devmem_size: bytes of device memory of the VF
 * @max_image_size: largest state image the VF produces (a full image)
 * @max_xfer_segments: most DMA segments one save or load call takes
 * @dirty_max_ranges: most IOVA ranges dirty tracking takes
 * @dirty_page_shifts: bit n set: pages of 2^n bytes can be tracked
 * @dirty_max_pages: dirty pages the tracker holds before it overflows
 * @xfer_crc: the device checksums chunks: a save returns the CRC32C of
 *	the bytes it wrote (&tern_vf_xfer.crc) and tern_vf_load_crc() works
 * @new_config: the device says when the VF's configuration changed since
 *	its last full image (&tern_vf_size.new_config)
 */
struct tern_vf_info {
	u16 image_version;
	u16 nr_queues;
	u64 devmem_size;
	u64 max_image_size;
	u32 max_xfer_segments;
	u32 dirty_max_ranges;
	u32 dirty_page_shifts;
	u32 dirty_max_pages;
	bool xfer_crc;
	bool new_config;
};

/**
 * struct tern_vf_size - what a save would produce now
 * @full: bytes of a full image
 * @incremental: bytes of an incremental image; 0 without a base image
 *	(no save since the VF's last reset or load)
 * @new_config: the VF's configuration (a queue's ring or vector) changed
 *	since the last full image: a full image taken now is new initial
 *	data for the destination; increments stay valid.  Cleared by the
 *	next full image, a load or a reset
 */
struct tern_vf_size {
	u64 full;
	u64 incremental;
	bool new_config;
};

/**
 * enum tern_vf_save_mode - which image a save call reads
 * @TERN_VF_SAVE_CONTINUE: continue the image that is open
 * @TERN_VF_SAVE_FULL: take a new full image (starts a new session)
 * @TERN_VF_SAVE_INCREMENTAL: take a new incremental image: what changed
 *	since the previous image
 */
enum tern_vf_save_mode {
	TERN_VF_SAVE_CONTINUE,
	TERN_VF_SAVE_FULL,
	TERN_VF_SAVE_INCREMENTAL,
};

/**
 * struct tern_vf_xfer - the result of a save or load call
 * @bytes: bytes written into (save) or consumed from (load) the buffer
 * @image_size: total size of the image; 0 while a load has not seen the
 *	image's header
 * @more: save: bytes remain after this chunk; load: more bytes expected
 * @applied: load: the image was complete, valid, and is now the VF's state
 * @crc: save, with &tern_vf_info.xfer_crc: the standard CRC32C of the
 *	@bytes written, computed by the device; 0 otherwise
 */
struct tern_vf_xfer {
	u32 bytes;
	u32 crc;
	u64 image_size;
	bool more;
	bool applied;
};

/**
 * struct tern_vf_range - an IOVA range
 * @iova: first byte
 * @length: bytes
 */
struct tern_vf_range {
	u64 iova;
	u64 length;
};

/**
 * typedef tern_vf_dirty_fn - receives one run of dirty pages
 * @arg: the pointer given to tern_vf_dirty_report()
 * @iova: first byte of the run
 * @length: bytes of the run, a multiple of the tracking page size
 *
 * Return: 0 to go on, or a negative errno that ends the report.
 */
typedef int (*tern_vf_dirty_fn)(void *arg, u64 iova, u64 length);

struct tern_vf *tern_vf_get(struct pci_dev *vf_pdev, tern_vf_event_fn event,
			    void *priv);
void tern_vf_put(struct tern_vf *vf);

int tern_vf_identify(struct tern_vf *vf, struct tern_vf_info *info);

int tern_vf_quiesce(struct tern_vf *vf);
int tern_vf_freeze(struct tern_vf *vf);
int tern_vf_resume(struct tern_vf *vf);

int tern_vf_query(struct tern_vf *vf, struct tern_vf_size *size);
int tern_vf_save(struct tern_vf *vf, enum tern_vf_save_mode mode, u64 offset,
		 struct sg_table *sgt, u32 len, struct tern_vf_xfer *xfer);
int tern_vf_load(struct tern_vf *vf, bool start, u64 offset,
		 struct sg_table *sgt, u32 len, struct tern_vf_xfer *xfer);
int tern_vf_load_crc(struct tern_vf *vf, bool start, u64 offset,
		     struct sg_table *sgt, u32 len, u32 crc,
		     struct tern_vf_xfer *xfer);

struct tern_vf_buf *tern_vf_buf_map(struct tern_vf *vf, struct sg_table *sgt,
				    enum dma_data_direction dir);
void tern_vf_buf_unmap(struct tern_vf_buf *buf);
int tern_vf_save_buf(struct tern_vf *vf, enum tern_vf_save_mode mode,
		     u64 offset, struct tern_vf_buf *buf, u32 len,
		     struct tern_vf_xfer *xfer);
int tern_vf_load_buf(struct tern_vf *vf, bool start, u64 offset,
		     struct tern_vf_buf *buf, u32 boff, u32 len, const u32 *crc,
		     struct tern_vf_xfer *xfer);

int tern_vf_dirty_start(struct tern_vf *vf, const struct tern_vf_range *ranges,
			unsigned int nr_ranges, unsigned int page_shift);
int tern_vf_dirty_report(struct tern_vf *vf, u64 iova, u64 length,
			 tern_vf_dirty_fn fn, void *arg);
int tern_vf_dirty_stop(struct tern_vf *vf);

#endif /* _LINUX_TERN_PF_H */
