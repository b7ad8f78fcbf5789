// SPDX-License-Identifier: GPL-2.0
/*
 * Device DMA dirty tracking of tern_vfio_pci through
 * VFIO_DEVICE_FEATURE_DMA_LOGGING_START/REPORT/STOP: the VF tracks its
 * own DMA writes, and every page it wrote, and no other, is reported.
 * Tracking survives a VF reset; a tracker that overflows is restarted
 * and every page it may have lost is reported dirty, once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib/env_util.h"
#include "lib/mig_util.h"

#define TIMEOUT_MS	10000
#define NR_BLOCKS	64
#define PAGE		ENV_PAGE

/* A tracked IOVA range. */
#define RANGE struct vfio_device_feature_dma_logging_range

FIXTURE(dirty) {
	struct tern_env e;
	struct vfio_dev *d;
	struct work w;
	uint64_t *bitmap;
	uint64_t *expect;
	size_t bits;
};

FIXTURE_VARIANT(dirty) {
	bool iommufd;
};

FIXTURE_VARIANT_ADD(dirty, type1) {
	.iommufd = false,
};

FIXTURE_VARIANT_ADD(dirty, iommufd) {
	.iommufd = true,
};

FIXTURE_SETUP(dirty)
{
	int ret = env_setup(&self->e, 1, variant->iommufd);

	if (ret == -ENODEV)
		SKIP(return, "no tern PF");
	ASSERT_EQ(0, ret);
	self->d = &self->e.dev[0];
	ASSERT_EQ(0, work_init(&self->w, &self->e.c, self->e.regs[0], 0,
			       NR_BLOCKS));
	self->bits = ENV_DMA_SIZE / PAGE;
	self->bitmap = calloc(self->bits / 64, 8);
	self->expect = calloc(self->bits / 64, 8);
	ASSERT_NE(NULL, self->bitmap);
	ASSERT_NE(NULL, self->expect);
}

FIXTURE_TEARDOWN(dirty)
{
	void *dbg = env_debug_map(&self->e);

	/* A setting, not a one-shot fault: never leave it to the next test. */
	if (dbg) {
		mmio_write32(dbg, TERN_DBG_REG_DIRTY_LIMIT, 0);
		env_debug_unmap(dbg);
	}
	free(self->bitmap);
	free(self->expect);
	env_teardown(&self->e);
}

static uint64_t base(FIXTURE_DATA(dirty) *self)
{
	return self->e.c.dma_iova;
}

static uint64_t block_iova(FIXTURE_DATA(dirty) *self, unsigned int i)
{
	return vfio_iova(&self->e.c, self->w.blocks + i * WORK_BLOCK);
}

static void mark(uint64_t *map, uint64_t off, uint64_t len, uint64_t pgsz)
{
	uint64_t b;

	for (b = off / pgsz; b <= (off + len - 1) / pgsz; b++)
		map[b / 64] |= 1ull << (b % 64);
}

/*
 * Run FILLs of the listed blocks and note, in expect, the pages the VF
 * writes: each block and the page of its completion record.
 */
static void write_blocks(struct __test_metadata *_metadata,
			 FIXTURE_DATA(dirty) *self, const unsigned int *blk,
			 unsigned int n, uint64_t pgsz)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		work_add(&self->w, blk[i], i == n - 1);
		mark(self->expect, block_iova(self, blk[i]) - base(self),
		     WORK_BLOCK, pgsz);
		mark(self->expect, self->w.cpl_iova - base(self) +
		     blk[i] * sizeof(*self->w.cpl), sizeof(*self->w.cpl), pgsz);
	}
	ASSERT_EQ(0, work_wait(&self->w, TIMEOUT_MS));
	for (i = 0; i < n; i++)
		ASSERT_TRUE(work_block_ok(&self->w, blk[i]));
}

/* Report the whole DMA memory and compare it with expect, then clear. */
static void check_report(struct __test_metadata *_metadata,
			 FIXTURE_DATA(dirty) *self, uint64_t pgsz)
{
	size_t words = ENV_DMA_SIZE / pgsz / 64 ?: 1, i;

	memset(self->bitmap, 0, words * 8);
	ASSERT_EQ(0, mig_log_report(self->d, base(self), ENV_DMA_SIZE, pgsz,
				    self->bitmap));
	for (i = 0; i < words; i++)
		EXPECT_EQ(self->expect[i], self->bitmap[i])
			TH_LOG("bitmap word %zu (pages of %llu bytes)", i,
			       (unsigned long long)pgsz);
	memset(self->expect, 0, words * 8);
}

static void start_all(struct __test_metadata *_metadata,
		      FIXTURE_DATA(dirty) *self, uint64_t *pgsz)
{
	RANGE r = { .iova = base(self), .length = ENV_DMA_SIZE };

	ASSERT_EQ(0, mig_log_start(self->d, &r, 1, pgsz));
}

TEST_F(dirty, written_pages_read_and_clear)
{
	static const unsigned int first[] = { 0, 3, 17, 63 };
	static const unsigned int second[] = { 5, 6 };
	uint64_t pgsz = PAGE;

	start_all(_metadata, self, &pgsz);
	ASSERT_EQ(PAGE, pgsz);
	write_blocks(_metadata, self, first, ARRAY_SIZE(first), pgsz);
	check_report(_metadata, self, pgsz);
	/* Read and cleared: nothing new, nothing reported. */
	check_report(_metadata, self, pgsz);
	write_blocks(_metadata, self, second, ARRAY_SIZE(second), pgsz);
	check_report(_metadata, self, pgsz);
	EXPECT_EQ(0, mig_log_stop(self->d));
}

/* Writes outside the tracked ranges are not reported. */
TEST_F(dirty, several_ranges)
{
	static const unsigned int blk[] = { 2, 20, 40, 41 };
	uint64_t b0 = block_iova(self, 0), pgsz = PAGE;
	RANGE r[] = {
		{ b0, 16 * WORK_BLOCK },
		{ b0 + 32 * WORK_BLOCK, 16 * WORK_BLOCK },
		{ self->w.cpl_iova, PAGE },
	};

	ASSERT_EQ(0, mig_log_start(self->d, r, ARRAY_SIZE(r), &pgsz));
	write_blocks(_metadata, self, blk, ARRAY_SIZE(blk), pgsz);
	/* Block 20 is in no range. */
	memset(self->expect, 0, self->bits / 8);
	mark(self->expect, b0 - base(self) + 2 * WORK_BLOCK, WORK_BLOCK, pgsz);
	mark(self->expect, b0 - base(self) + 40 * WORK_BLOCK, 2 * WORK_BLOCK,
	     pgsz);
	mark(self->expect, self->w.cpl_iova - base(self), 1, pgsz);
	check_report(_metadata, self, pgsz);
	EXPECT_EQ(0, mig_log_stop(self->d));
}

/*
 * More ranges than the VF tracks (32): the driver combines them, which
 * may track gaps too, but the VF wrote nothing there.
 */
TEST_F(dirty, more_ranges_than_device)
{
	static const unsigned int blk[] = { 0, 10, 30, 62 };
	uint64_t b0 = block_iova(self, 0), pgsz = PAGE;
	RANGE r[NR_BLOCKS / 2 + 1];
	unsigned int i;

	/* Every other block, and the completion records. */
	for (i = 0; i < NR_BLOCKS / 2; i++) {
		r[i].iova = b0 + 2 * i * WORK_BLOCK;
		r[i].length = WORK_BLOCK;
	}
	r[i].iova = self->w.cpl_iova;
	r[i].length = PAGE;
	ASSERT_EQ(0, mig_log_start(self->d, r, ARRAY_SIZE(r), &pgsz));
	write_blocks(_metadata, self, blk, ARRAY_SIZE(blk), pgsz);
	check_report(_metadata, self, pgsz);
	EXPECT_EQ(0, mig_log_stop(self->d));
}

TEST_F(dirty, page_sizes)
{
	static const uint64_t sizes[] = { 8192, 64 << 10, 2 << 20 };
	static const unsigned int blk[] = { 1, 33 };
	uint64_t pgsz = 1ull << 30;
	RANGE r = { .iova = base(self) };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		uint64_t pgsz = sizes[i];

		start_all(_metadata, self, &pgsz);
		EXPECT_EQ(sizes[i], pgsz);
		write_blocks(_metadata, self, blk, ARRAY_SIZE(blk), pgsz);
		check_report(_metadata, self, pgsz);
		ASSERT_EQ(0, mig_log_stop(self->d));
	}
	/*
	 * Larger than the VF tracks: the nearest it does, 2 MiB.  vfio
	 * wants the ranges aligned to the page size asked for.
	 */
	r.length = pgsz;
	ASSERT_EQ(0, mig_log_start(self->d, &r, 1, &pgsz));
	EXPECT_EQ(2ull << 20, pgsz);
	ASSERT_EQ(0, mig_log_stop(self->d));
}

TEST_F(dirty, double_start_and_stop)
{
	static const unsigned int blk[] = { 7 };
	uint64_t pgsz = PAGE;
	RANGE r = { base(self), ENV_DMA_SIZE };

	/* No tracking yet: no report. */
	EXPECT_NE(0, mig_log_report(self->d, base(self), ENV_DMA_SIZE, PAGE,
				    self->bitmap));
	start_all(_metadata, self, &pgsz);
	EXPECT_EQ(-EBUSY, mig_log_start(self->d, &r, 1, &pgsz));
	write_blocks(_metadata, self, blk, 1, pgsz);
	/* Stop forgets the dirty pages; a new start begins clean. */
	ASSERT_EQ(0, mig_log_stop(self->d));
	EXPECT_NE(0, mig_log_report(self->d, base(self), ENV_DMA_SIZE, PAGE,
				    self->bitmap));
	start_all(_metadata, self, &pgsz);
	memset(self->expect, 0, self->bits / 8);
	check_report(_metadata, self, pgsz);
	write_blocks(_metadata, self, blk, 1, pgsz);
	check_report(_metadata, self, pgsz);
	ASSERT_EQ(0, mig_log_stop(self->d));
}

/* A report of IOVA outside the tracked ranges is empty. */
TEST_F(dirty, report_outside_ranges)
{
	static const unsigned int blk[] = { 4 };
	uint64_t b0 = block_iova(self, 0), pgsz = PAGE;
	RANGE r = { b0, 16 * WORK_BLOCK };
	uint64_t far = base(self) + ENV_DMA_SIZE - (1 << 20);
	unsigned int i;

	ASSERT_EQ(0, mig_log_start(self->d, &r, 1, &pgsz));
	write_blocks(_metadata, self, blk, 1, pgsz);
	memset(self->bitmap, 0, 1 << 20 >> 12 >> 3);
	ASSERT_EQ(0, mig_log_report(self->d, far, 1 << 20, PAGE,
				    self->bitmap));
	for (i = 0; i < (1 << 20 >> 12) / 64; i++)
		EXPECT_EQ(0, self->bitmap[i]);
	/* The page written is still there for a report that covers it. */
	memset(self->expect, 0, self->bits / 8);
	mark(self->expect, b0 - base(self) + 4 * WORK_BLOCK, WORK_BLOCK, PAGE);
	check_report(_metadata, self, PAGE);
	ASSERT_EQ(0, mig_log_stop(self->d));
}

/* A guest's FLR of the VF does not end the VMM's dirty log. */
TEST_F(dirty, tracking_survives_vf_reset)
{
	static const unsigned int blk[] = { 2, 40 };
	uint64_t pgsz = PAGE;

	start_all(_metadata, self, &pgsz);
	ASSERT_EQ(0, vfio_reset(self->d));
	ASSERT_EQ(0, tern_vfq_enable(&self->w.vq, self->e.regs[0]));
	write_blocks(_metadata, self, blk, ARRAY_SIZE(blk), pgsz);
	check_report(_metadata, self, pgsz);
	EXPECT_EQ(0, mig_log_stop(self->d));
}

/* Bits set in the first words of bitmap (a report of len bytes). */
static unsigned int count_bits(const uint64_t *bitmap, uint64_t len)
{
	unsigned int n = 0;
	size_t i;

	for (i = 0; i < len / PAGE / 64; i++)
		n += __builtin_popcountll(bitmap[i]);
	return n;
}

/*
 * The tracker overflows (the device fault DIRTY_LIMIT makes it hold only
 * a few pages): the report that finds it succeeds with its whole window
 * dirty, the rest of the range is reported dirty when next read, and the
 * restarted tracker then reports exactly what the VF writes.
 */
TEST_F(dirty, overflow_reports_all)
{
	static const unsigned int blk[] = { 1, 9, 20, 33, 50 };
	const uint64_t half = ENV_DMA_SIZE / 2, all = ENV_DMA_SIZE / PAGE;
	uint64_t pgsz = PAGE;
	void *dbg = env_debug_map(&self->e);

	if (!dbg)
		SKIP(return, "no fault injection (x-debug=off)");
	mmio_write32(dbg, TERN_DBG_REG_DIRTY_LIMIT, 4);
	start_all(_metadata, self, &pgsz);
	write_blocks(_metadata, self, blk, ARRAY_SIZE(blk), pgsz);
	memset(self->bitmap, 0, self->bits / 8);
	ASSERT_EQ(0, mig_log_report(self->d, base(self), half, PAGE,
				    self->bitmap));
	EXPECT_EQ(half / PAGE, count_bits(self->bitmap, half));
	/* The second half lost its pages too: all dirty, once. */
	memset(self->bitmap, 0, self->bits / 8);
	ASSERT_EQ(0, mig_log_report(self->d, base(self) + half, half, PAGE,
				    self->bitmap));
	EXPECT_EQ(half / PAGE, count_bits(self->bitmap, half));
	memset(self->expect, 0, self->bits / 8);
	check_report(_metadata, self, PAGE);
	/* Restarted: it tracks again, within its limit. */
	write_blocks(_metadata, self, blk, 1, pgsz);
	check_report(_metadata, self, PAGE);
	EXPECT_GT(all, count_bits(self->bitmap, ENV_DMA_SIZE));
	EXPECT_EQ(0, mig_log_stop(self->d));
	env_debug_unmap(dbg);
}

/* The page size grows until the ranges fit the tracker's capacity. */
TEST_F(dirty, page_size_fits_capacity)
{
	RANGE r = { .iova = 0, .length = 1ull << 45 };
	uint64_t pgsz = PAGE;

	ASSERT_EQ(0, mig_log_start(self->d, &r, 1, &pgsz));
	/* 32 TiB in at most 2^20 pages: 2 MiB, the largest it has. */
	EXPECT_EQ(2ull << 20, pgsz);
	ASSERT_EQ(0, mig_log_stop(self->d));
	r.length = 1ull << 33;
	pgsz = PAGE;
	ASSERT_EQ(0, mig_log_start(self->d, &r, 1, &pgsz));
	/* 8 GiB: 2^21 pages of 4 KiB, 2^20 of 8 KiB. */
	EXPECT_GE(8192, pgsz);
	EXPECT_LT(PAGE, pgsz);
	ASSERT_EQ(0, mig_log_stop(self->d));
}

TEST_HARNESS_MAIN
