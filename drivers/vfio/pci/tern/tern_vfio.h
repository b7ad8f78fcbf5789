/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tern_vfio_pci: internal definitions.
 */
#ifndef TERN_VFIO_H
#define TERN_VFIO_H

#include <linux/completion.h>
#include <linux/mutex.h>
#include <linux/scatterlist.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/tern_pf.h>
#include <linux/vfio_pci_core.h>
#include <tern/tern_hw.h>
#include <tern/tern_stream.h>

#include "compat.h"

/* Image bytes per IMAGE record, read from the device in one command. */
#define TERN_CHUNK_SIZE		(512u << 10)
#define TERN_CHUNK_PAGES	(TERN_CHUNK_SIZE >> PAGE_SHIFT)
#define TERN_PAYLOAD_PAGES	(TERN_REC_MAX_PAYLOAD >> PAGE_SHIFT)

/* Bytes of stream that carry an image of @size bytes in @chunk-byte records. */
static inline u64 tern_image_stream_bytes(u64 size, u32 chunk)
{
	return size + DIV_ROUND_UP_ULL(size, chunk) *
		      TERN_STREAM_REC_SIZE;
}

/* A buffer of pages, mapped for the PF's DMA once, when its file is made. */
struct tern_buf {
	struct page **pages;
	unsigned int nr_pages;
	struct sg_table sgt;
	struct tern_vf_buf *map;
};

/* Buffers per data file: one for user space, one for the device. */
#define TERN_MIG_BUFS		2

/*
 * The SAVE or LOAD a data file runs in the background, on one buffer
 * while user space reads or fills the other (tern_mig_file.xfer_work).
 */
struct tern_mig_xfer {
	bool save;
	enum tern_vf_save_mode mode;	/* save */
	bool start;			/* load: the image's first chunk */
	unsigned int buf;		/* in tern_mig_file.bufs */
	u64 off;			/* image offset of the chunk */
	u32 len;			/* bytes asked for or given */
	u32 crc;			/* load: CRC32C the device checks */
	u32 seq;			/* load: the record's sequence number */
	int ret;			/* the outcome, once xfer_done */
	struct tern_vf_xfer x;
};

/*
 * A migration data file: the source's saving stream or the destination's
 * resuming stream.  Everything in it is protected by its lock.
 */
struct tern_mig_file {
	struct file *filp;
	struct tern_vfio_dev *tvdev;
	struct mutex lock;	/* everything below */
	bool disabled;		/* left its state or reset: no more I/O */
	int error;		/* the first failure, returned ever after */
	u64 pos;		/* stream bytes read or written */
	u32 seq;		/* next record's sequence number */
	struct tern_buf bufs[TERN_MIG_BUFS];
	unsigned int cur;	/* the buffer user space reads or fills */
	wait_queue_head_t poll_wait;	/* woken on arcs, errors and the end */
	/*
	 * At most one device command in flight on the other buffer: the
	 * SAVE of the next chunk, or the LOAD of the last record.  The work
	 * reads xfer's request and writes its outcome; xfer_busy (under
	 * lock) says it was queued and its outcome not collected yet.
	 */
	struct work_struct xfer_work;
	struct completion xfer_done;
	bool xfer_busy;
	struct tern_mig_xfer xfer;

	/* saving */
	bool precopy;		/* started in PRE_COPY or PRE_COPY_P2P */
	bool final;		/* frozen: the next image is the last */
	bool final_taken;	/* the last image is taken */
	bool end_queued;	/* the END record is queued */
	u64 produced;		/* stream bytes queued so far */
	u32 chunk_len;		/* image bytes asked of the device per SAVE */
	u64 initial_end;	/* produced at the last full image's end */
	bool initial_open;	/* the open image is a full one: initial data */
	bool reinit;		/* REINIT reported: a new full image is next */
	u8 queue[256];		/* stream header and record headers */
	u32 queue_len;		/* bytes in queue[] */
	u32 queue_off;		/* bytes of queue[] already read */
	u32 payload_len;	/* bytes in bufs[cur] after the queue */
	u32 payload_crc;	/* the device's CRC32C of them, if it gives it */
	u32 payload_off;	/* bytes of bufs[cur] already read */
	bool image_open;	/* an image is being read from the device */
	u64 image_size;
	u64 image_off;
	u32 nr_images;
	u64 image_bytes;

	/* resuming */
	u8 hdr[TERN_STREAM_HDR_SIZE];
	struct tern_stream_rec rec;
	u32 part_len;		/* bytes of hdr[] or rec received */
	bool have_hdr;		/* the stream header is validated */
	bool in_rec;		/* rec is valid, its payload is arriving */
	bool dev_crc;		/* the device checks rec's payload, not the CPU */
	u32 rec_got;		/* payload bytes received */
	u32 crc;		/* running CRC32C of a payload the CPU checks */
	bool ended;		/* the END record arrived and checked */
	bool applied;		/* the device applied the last image */
};

struct tern_vfio_dev {
	struct vfio_pci_core_device core;
	struct tern_vf_info info;	/* read at probe */
	bool precopy;			/* PRE_COPY offered */

	struct mutex state_mutex;	/* the fields below */
	enum vfio_device_mig_state mig_state;
	struct tern_vf *vf;		/* while the device is open */
	struct tern_mig_file *saving;
	struct tern_mig_file *resuming;
	bool tracking;
	unsigned int page_shift;	/* of dirty tracking */
	/* The tracked ranges, to restart the tracker after an overflow. */
	struct tern_vf_range ranges[TERN_DIRTY_MAX_RANGES];
	unsigned int nr_ranges;
	/*
	 * Per range: the tracker lost pages from here to the range's end;
	 * the next reports owe them as dirty.  The range's end: nothing.
	 */
	u64 owed[TERN_DIRTY_MAX_RANGES];
	bool pf_lost;			/* a PF event lost the VF's state */

	/*
	 * Set under reset_lock by a reset or a PF event and acted on by
	 * whoever holds or next takes state_mutex (deferred reset).  Each
	 * is a bool of its own: they are written under a different lock
	 * from the fields above.
	 */
	spinlock_t reset_lock;
	bool deferred_reset;
	bool pf_event;
};

static inline struct tern_vfio_dev *to_tvdev(struct vfio_device *vdev)
{
	return container_of(vdev, struct tern_vfio_dev, core.vdev);
}

void tern_state_lock(struct tern_vfio_dev *tvdev);
void tern_state_unlock(struct tern_vfio_dev *tvdev);

extern bool tern_scatter_buffers;
extern const struct vfio_migration_ops tern_mig_ops;
void tern_mig_release_files(struct tern_vfio_dev *tvdev);
int tern_mig_open(struct tern_vfio_dev *tvdev);
void tern_mig_close(struct tern_vfio_dev *tvdev);

#if IS_ENABLED(CONFIG_IOMMUFD_DRIVER)
extern const struct vfio_log_ops tern_log_ops;
#endif

int tern_stream_check_hdr(struct tern_vfio_dev *tvdev,
			  const struct tern_stream_hdr *hdr);
void tern_stream_make_hdr(struct tern_vfio_dev *tvdev,
			  struct tern_stream_hdr *hdr);
int tern_compat_string(struct tern_vfio_dev *tvdev, char *buf, size_t size);
u32 tern_crc32c_shift(u32 crc, u64 len);

#endif /* TERN_VFIO_H */
