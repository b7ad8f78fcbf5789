// SPDX-License-Identifier: GPL-2.0
/*
 * tern_vfio_pci: device DMA dirty tracking (vfio_log_ops).
 *
 * The VF tracks its own DMA writes over a few IOVA ranges and reports
 * runs of dirty pages, read and cleared; the runs go into the caller's
 * bitmap through iova_bitmap_set().
 */

#include <linux/interval_tree.h>
#include <linux/iova_bitmap.h>
#include <linux/slab.h>

#include "tern_vfio.h"

#if IS_ENABLED(CONFIG_IOMMUFD_DRIVER)

/* The supported page size nearest to @want: 4 KiB .. 2 MiB. */
static unsigned int tern_page_shift(struct tern_vfio_dev *tvdev, u64 want)
{
	unsigned int shift = want ? ilog2(want) : TERN_DIRTY_MIN_PAGE_SHIFT;

	shift = clamp_t(unsigned int, shift, TERN_DIRTY_MIN_PAGE_SHIFT,
			TERN_DIRTY_MAX_PAGE_SHIFT);
	while (shift > TERN_DIRTY_MIN_PAGE_SHIFT &&
	       !(tvdev->info.dirty_page_shifts & BIT(shift)))
		shift--;
	return shift;
}

/*
 * The ranges as the device takes them: aligned to the page, and merged
 * where alignment makes neighbours touch.  Returns how many there are.
 */
static unsigned int tern_fill_ranges(struct rb_root_cached *ranges,
				     struct tern_vf_range *out,
				     unsigned int max, unsigned int shift)
{
	struct interval_tree_node *node;
	u64 page = BIT_ULL(shift);
	unsigned int n = 0;

	for (node = interval_tree_iter_first(ranges, 0, ULONG_MAX);
	     node && n < max; node = interval_tree_iter_next(node, 0, ULONG_MAX)) {
		u64 start = ALIGN_DOWN(node->start, page);
		u64 end = ALIGN((u64)node->last + 1, page);

		if (n && start <= out[n - 1].iova + out[n - 1].length) {
			out[n - 1].length = max(out[n - 1].iova +
						out[n - 1].length, end) -
					    out[n - 1].iova;
			continue;
		}
		out[n].iova = start;
		out[n].length = end - start;
		n++;
	}
	return n;
}

static int tern_log_start(struct vfio_device *vdev,
			  struct rb_root_cached *ranges, u32 nnodes,
			  u64 *page_size)
{
	struct tern_vfio_dev *tvdev = to_tvdev(vdev);
	unsigned int max = tvdev->info.dirty_max_ranges, shift, n;
	struct tern_vf_range *list;
	int ret;

	if (!nnodes || !max)
		return -EINVAL;
	list = kcalloc(max, sizeof(*list), GFP_KERNEL);
	if (!list)
		return -ENOMEM;

	tern_state_lock(tvdev);
	if (tvdev->tracking) {
		ret = -EBUSY;
		goto out;
	}
	if (nnodes > max) {
		vfio_combine_iova_ranges(ranges, nnodes, max);
		nnodes = max;
	}
	shift = tern_page_shift(tvdev, *page_size);
	n = tern_fill_ranges(ranges, list, max, shift);
	ret = tern_vf_dirty_start(tvdev->vf, list, n, shift);
	if (ret == -EBUSY) {
		/* A stop that failed may have left the device tracking. */
		ret = tern_vf_dirty_stop(tvdev->vf) ?:
		      tern_vf_dirty_start(tvdev->vf, list, n, shift);
	}
	if (!ret) {
		tvdev->tracking = true;
		tvdev->page_shift = shift;
		*page_size = BIT_ULL(shift);
	}
out:
	tern_state_unlock(tvdev);
	kfree(list);
	return ret;
}

static int tern_log_stop(struct vfio_device *vdev)
{
	struct tern_vfio_dev *tvdev = to_tvdev(vdev);
	int ret = 0;

	tern_state_lock(tvdev);
	if (tvdev->tracking) {
		ret = tern_vf_dirty_stop(tvdev->vf);
		tvdev->tracking = false;
	}
	tern_state_unlock(tvdev);
	return ret;
}

struct tern_report {
	struct iova_bitmap *dirty;
	u64 start;
	u64 end;
};

/* A run may begin or end in a tracking page the window only touches. */
static int tern_set_run(void *arg, u64 iova, u64 length)
{
	struct tern_report *r = arg;
	u64 start = max(iova, r->start), end = min(iova + length, r->end);

	if (start < end)
		iova_bitmap_set(r->dirty, start, end - start);
	return 0;
}

static int tern_log_read_and_clear(struct vfio_device *vdev,
				   unsigned long iova, unsigned long length,
				   struct iova_bitmap *dirty)
{
	struct tern_vfio_dev *tvdev = to_tvdev(vdev);
	struct tern_report r = {
		.dirty = dirty, .start = iova, .end = (u64)iova + length,
	};
	u64 page;
	int ret;

	tern_state_lock(tvdev);
	if (!tvdev->tracking) {
		ret = -EINVAL;
		goto out;
	}
	/* The device reports whole tracking pages. */
	page = BIT_ULL(tvdev->page_shift);
	ret = tern_vf_dirty_report(tvdev->vf, ALIGN_DOWN(r.start, page),
				   ALIGN(r.end, page) - ALIGN_DOWN(r.start, page),
				   tern_set_run, &r);
out:
	tern_state_unlock(tvdev);
	return ret;
}

const struct vfio_log_ops tern_log_ops = {
	.log_start = tern_log_start,
	.log_stop = tern_log_stop,
	.log_read_and_clear = tern_log_read_and_clear,
};

#endif /* CONFIG_IOMMUFD_DRIVER */
