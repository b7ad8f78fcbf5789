/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VFIO migration uAPI for tern's selftests: state changes through
 * VFIO_DEVICE_FEATURE, the data fd, precopy info and the data size.
 */
#ifndef TERN_SELFTEST_MIG_UTIL_H
#define TERN_SELFTEST_MIG_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <linux/vfio.h>

#include "vfio_util.h"

/* VFIO_DEVICE_FEATURE_MIGRATION flags, or -errno. */
int mig_flags(struct vfio_dev *d, uint64_t *flags);
/* Set the state; *data_fd gets the data fd if the arc makes one, else -1. */
int mig_set_state(struct vfio_dev *d, uint32_t state, int *data_fd);
int mig_get_state(struct vfio_dev *d, uint32_t *state);
int mig_data_size(struct vfio_dev *d, uint64_t *stop_copy_length);
int mig_precopy_info(int data_fd, uint64_t *initial, uint64_t *dirty);

/* A growing buffer for a whole stream. */
struct mig_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

/*
 * Read from the data fd into buf until the end (0) or, in pre-copy,
 * until -ENOMSG.  Returns 0 at the end, -ENOMSG, or -errno.
 */
int mig_read(int data_fd, struct mig_buf *buf);
/* Write len bytes in pieces of piece bytes; 0 or -errno. */
int mig_write(int data_fd, const void *data, size_t len, size_t piece);
void mig_buf_free(struct mig_buf *buf);

/* A whole stream: STOP -> STOP_COPY, read to the end, -> STOP. */
int mig_save(struct vfio_dev *d, struct mig_buf *buf);
/* STOP -> RESUMING, write buf in pieces, -> STOP (the load). */
int mig_load(struct vfio_dev *d, const struct mig_buf *buf, size_t piece);

/*
 * Device DMA logging.  Start rounds *page_size to what the device
 * tracks; report sets a bit per dirty page of page_size in bitmap.
 */
int mig_log_start(struct vfio_dev *d,
		  const struct vfio_device_feature_dma_logging_range *ranges,
		  uint32_t nr, uint64_t *page_size);
int mig_log_stop(struct vfio_dev *d);
int mig_log_report(struct vfio_dev *d, uint64_t iova, uint64_t len,
		   uint64_t page_size, uint64_t *bitmap);

#endif
