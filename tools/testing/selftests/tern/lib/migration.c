// SPDX-License-Identifier: GPL-2.0
/*
 * The VFIO migration uAPI for tern's selftests.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "mig_util.h"

static int feature(struct vfio_dev *d, uint32_t flags, void *data,
		   size_t size)
{
	uint8_t buf[sizeof(struct vfio_device_feature) + 64]
		__attribute__((aligned(8)));
	struct vfio_device_feature *f = (void *)buf;

	if (size > 64)
		return -EINVAL;
	memset(buf, 0, sizeof(buf));
	f->argsz = sizeof(*f) + size;
	f->flags = flags;
	memcpy(f->data, data, size);
	if (ioctl(d->fd, VFIO_DEVICE_FEATURE, f))
		return -errno;
	memcpy(data, f->data, size);
	return 0;
}

int mig_flags(struct vfio_dev *d, uint64_t *flags)
{
	struct vfio_device_feature_migration m = {};
	int ret;

	ret = feature(d, VFIO_DEVICE_FEATURE_GET |
		      VFIO_DEVICE_FEATURE_MIGRATION, &m, sizeof(m));
	*flags = m.flags;
	return ret;
}

int mig_set_state(struct vfio_dev *d, uint32_t state, int *data_fd)
{
	struct vfio_device_feature_mig_state m = { .device_state = state };
	int ret;

	m.data_fd = -1;
	ret = feature(d, VFIO_DEVICE_FEATURE_SET |
		      VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &m, sizeof(m));
	if (data_fd)
		*data_fd = ret ? -1 : m.data_fd;
	else if (!ret && m.data_fd >= 0)
		close(m.data_fd);
	return ret;
}

int mig_get_state(struct vfio_dev *d, uint32_t *state)
{
	struct vfio_device_feature_mig_state m = {};
	int ret;

	ret = feature(d, VFIO_DEVICE_FEATURE_GET |
		      VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &m, sizeof(m));
	*state = m.device_state;
	return ret;
}

int mig_data_size(struct vfio_dev *d, uint64_t *stop_copy_length)
{
	struct vfio_device_feature_mig_data_size m = {};
	int ret;

	ret = feature(d, VFIO_DEVICE_FEATURE_GET |
		      VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &m, sizeof(m));
	*stop_copy_length = m.stop_copy_length;
	return ret;
}

int mig_precopy_info(int data_fd, uint64_t *initial, uint64_t *dirty)
{
	struct vfio_precopy_info info = { .argsz = sizeof(info) };

	if (ioctl(data_fd, VFIO_MIG_GET_PRECOPY_INFO, &info))
		return -errno;
	*initial = info.initial_bytes;
	*dirty = info.dirty_bytes;
	return 0;
}

int mig_read(int data_fd, struct mig_buf *buf)
{
	for (;;) {
		ssize_t n;

		if (buf->cap - buf->len < (1 << 20)) {
			size_t cap = buf->cap ? buf->cap * 2 : 4 << 20;
			uint8_t *p = realloc(buf->data, cap);

			if (!p)
				return -ENOMEM;
			buf->data = p;
			buf->cap = cap;
		}
		/* Odd sizes, so that reads split records. */
		n = read(data_fd, buf->data + buf->len, (1 << 20) - 3);
		if (n < 0)
			return -errno;
		if (!n)
			return 0;
		buf->len += n;
	}
}

int mig_write(int data_fd, const void *data, size_t len, size_t piece)
{
	const uint8_t *p = data;

	while (len) {
		size_t n = len < piece ? len : piece;
		ssize_t w = write(data_fd, p, n);

		if (w < 0)
			return -errno;
		if (!w)
			return -EIO;
		p += w;
		len -= w;
	}
	return 0;
}

void mig_buf_free(struct mig_buf *buf)
{
	free(buf->data);
	memset(buf, 0, sizeof(*buf));
}

int mig_save(struct vfio_dev *d, struct mig_buf *buf)
{
	int fd, ret;

	ret = mig_set_state(d, VFIO_DEVICE_STATE_STOP_COPY, &fd);
	if (ret)
		return ret;
	ret = mig_read(fd, buf);
	close(fd);
	return ret ?: mig_set_state(d, VFIO_DEVICE_STATE_STOP, NULL);
}

int mig_load(struct vfio_dev *d, const struct mig_buf *buf, size_t piece)
{
	int fd, ret;

	ret = mig_set_state(d, VFIO_DEVICE_STATE_STOP, NULL) ?:
	      mig_set_state(d, VFIO_DEVICE_STATE_RESUMING, &fd);
	if (ret)
		return ret;
	ret = mig_write(fd, buf->data, buf->len, piece);
	close(fd);
	return ret ?: mig_set_state(d, VFIO_DEVICE_STATE_STOP, NULL);
}

int mig_log_start(struct vfio_dev *d,
		  const struct vfio_device_feature_dma_logging_range *ranges,
		  uint32_t nr, uint64_t *page_size)
{
	struct vfio_device_feature_dma_logging_control ctl = {
		.page_size = *page_size,
		.num_ranges = nr,
		.ranges = (uintptr_t)ranges,
	};
	int ret;

	ret = feature(d, VFIO_DEVICE_FEATURE_SET |
		      VFIO_DEVICE_FEATURE_DMA_LOGGING_START, &ctl, sizeof(ctl));
	*page_size = ctl.page_size;
	return ret;
}

int mig_log_stop(struct vfio_dev *d)
{
	uint64_t none;

	return feature(d, VFIO_DEVICE_FEATURE_SET |
		       VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, &none, 0);
}

int mig_log_report(struct vfio_dev *d, uint64_t iova, uint64_t len,
		   uint64_t page_size, uint64_t *bitmap)
{
	struct vfio_device_feature_dma_logging_report rep = {
		.iova = iova,
		.length = len,
		.page_size = page_size,
		.bitmap = (uintptr_t)bitmap,
	};

	return feature(d, VFIO_DEVICE_FEATURE_GET |
		       VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, &rep, sizeof(rep));
}
