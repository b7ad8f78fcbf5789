// SPDX-License-Identifier: GPL-2.0
/*
 * tern_vfio_pci: device DMA dirty tracking (vfio_log_ops).
 *
 * The VF tracks its own DMA writes over a few IOVA ranges and reports
 * runs of dirty pages, read and cleared; the runs go into the caller's
 * bitmap through iova_bitmap_set().  A tracker that overflows is
 * restarted and what it lost is reported dirty (see
 * Documentation/tern/vfio.rst, "Dirty tracking").
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

/* Pages of 2^@shift bytes that the device tracks over @list. */
static u64 tern_nr_pages(const struct tern_vf_range *list, unsigned int n,
			 unsigned int shift)
{
	u64 pages = 0;

	while (n--)
		pages += list[n].length >> shift;
	return pages;
}

/*
 * The ranges at the smallest supported page size, from the one asked
 * for up, whose pages fit the tracker's capacity, or the largest
 * supported one: a tracker that overflows reports everything dirty.
 * Returns the page shift; tvdev->ranges and nr_ranges are filled.
 */
static unsigned int tern_choose_ranges(struct tern_vfio_dev *tvdev,
				       struct rb_root_cached *ranges,
				       unsigned int max, u64 want)
{
	u64 cap = tvdev->info.dirty_max_pages ?: U64_MAX;
	unsigned int shift = tern_page_shift(tvdev, want), next;

	for (;;) {
		tvdev->nr_ranges = tern_fill_ranges(ranges, tvdev->ranges, max,
						    shift);
		if (tern_nr_pages(tvdev->ranges, tvdev->nr_ranges, shift) <= cap)
			return shift;
		for (next = shift + 1; next <= TERN_DIRTY_MAX_PAGE_SHIFT &&
		     !(tvdev->info.dirty_page_shifts & BIT(next)); next++)
			;
		if (next > TERN_DIRTY_MAX_PAGE_SHIFT)
			return shift;
		shift = next;
	}
}

/* Nothing owed: every range's cursor at its end. */
static void tern_owe_nothing(struct tern_vfio_dev *tvdev)
{
	unsigned int i;

	for (i = 0; i < tvdev->nr_ranges; i++)
		tvdev->owed[i] = tvdev->ranges[i].iova + tvdev->ranges[i].length;
}

static int tern_log_start(struct vfio_device *vdev,
			  struct rb_root_cached *ranges, u32 nnodes,
			  u64 *page_size)
{
	struct tern_vfio_dev *tvdev = to_tvdev(vdev);
	unsigned int max = min_t(u32, tvdev->info.dirty_max_ranges,
				 TERN_DIRTY_MAX_RANGES), shift;
	int ret;

	if (!nnodes || !max)
		return -EINVAL;

	tern_state_lock(tvdev);
	if (tvdev->pf_lost) {
		ret = -ENODEV;
		goto out;
	}
	if (tvdev->tracking) {
		ret = -EBUSY;
		goto out;
	}
	if (nnodes > max) {
		vfio_combine_iova_ranges(ranges, nnodes, max);
		nnodes = max;
	}
	shift = tern_choose_ranges(tvdev, ranges, max, *page_size);
	ret = tern_vf_dirty_start(tvdev->vf, tvdev->ranges, tvdev->nr_ranges,
				  shift);
	if (ret == -EBUSY) {
		/* A stop that failed may have left the device tracking. */
		ret = tern_vf_dirty_stop(tvdev->vf) ?:
		      tern_vf_dirty_start(tvdev->vf, tvdev->ranges,
					  tvdev->nr_ranges, shift);
	}
	if (!ret) {
		tvdev->tracking = true;
		tvdev->page_shift = shift;
		tern_owe_nothing(tvdev);
		*page_size = BIT_ULL(shift);
	}
out:
	tern_state_unlock(tvdev);
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

/*
 * Report what the tracker owes in [start, end) as dirty, and advance the
 * cursors past it.  A report that begins past a cursor leaves it where
 * it is: the pages before the window are still owed, and so (for want
 * of more than one cursor) is the window.
 */
static void tern_report_owed(struct tern_vfio_dev *tvdev,
			     struct tern_report *r, u64 start, u64 end)
{
	unsigned int i;

	for (i = 0; i < tvdev->nr_ranges; i++) {
		u64 last = tvdev->ranges[i].iova + tvdev->ranges[i].length;
		u64 from = max(tvdev->owed[i], start), to = min(last, end);

		if (from >= to)
			continue;
		tern_set_run(r, from, to - from);
		if (start <= tvdev->owed[i])
			tvdev->owed[i] = to;
	}
}

/*
 * The tracker overflowed and lost pages: restart it, so that it counts
 * again from now, then report the whole window dirty and owe the rest of
 * every range (from its start, unless the window covers that).
 */
static int tern_report_overflow(struct tern_vfio_dev *tvdev,
				struct tern_report *r, u64 start, u64 end)
{
	unsigned int i;
	int ret;

	ret = tern_vf_dirty_stop(tvdev->vf) ?:
	      tern_vf_dirty_start(tvdev->vf, tvdev->ranges, tvdev->nr_ranges,
				  tvdev->page_shift);
	if (ret) {
		tvdev->tracking = false;
		return ret;
	}
	tern_set_run(r, start, end - start);
	for (i = 0; i < tvdev->nr_ranges; i++) {
		u64 first = tvdev->ranges[i].iova;

		tvdev->owed[i] = start <= first && end > first ? end : first;
	}
	dev_warn_ratelimited(&tvdev->core.pdev->dev, "dirty tracker overflowed: restarted, all tracked pages reported dirty\n");
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
	u64 page, start, end;
	int ret;

	tern_state_lock(tvdev);
	if (!tvdev->tracking) {
		ret = tvdev->pf_lost ? -ENODEV : -EINVAL;
		goto out;
	}
	/* The device reports whole tracking pages. */
	page = BIT_ULL(tvdev->page_shift);
	start = ALIGN_DOWN(r.start, page);
	end = ALIGN(r.end, page);
	ret = tern_vf_dirty_report(tvdev->vf, start, end - start,
				   tern_set_run, &r);
	if (ret == -EOVERFLOW)
		ret = tern_report_overflow(tvdev, &r, start, end);
	else if (!ret)
		tern_report_owed(tvdev, &r, start, end);
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
