// SPDX-License-Identifier: GPL-2.0
/*
 * IOMMU dirty tracking through iommufd on a tern VF: the IOMMU, not the
 * device, records the VF's DMA writes (Documentation/tern/vfio.rst,
 * "Two dirty trackers").  The VF's cdev is bound to an iommufd and
 * attached to a HWPT allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING; with
 * IOMMU_HWPT_SET_DIRTY_TRACKING on, the VF fills known pages and
 * IOMMU_HWPT_GET_DIRTY_BITMAP must report exactly those (and the page of
 * their completion records), with and without
 * IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR, nothing after a clearing read,
 * and the pages again once the VF writes them again.  Pages the VF only
 * reads (its descriptor ring, a CRC32C source) are never reported.
 *
 * small_pages: a mapping smaller than 2 MiB, so 4 KiB leaves.
 * huge_page: 2 MiB of physically contiguous, aligned memory mapped at a
 *   2 MiB aligned IOVA, so one 2 MiB leaf: a write anywhere in it reports
 *   all of it (the IOMMU has one Dirty flag for the leaf).
 *
 * Every test skips, with the reason, when the IOMMU of the VF does not
 * report IOMMU_HW_CAP_DIRTY_TRACKING (the test VM without x-ssads,
 * scripts/vm-run --iommu legacy), and fails when TERN_IOMMU=ssads says
 * that it should (scripts/vm-run's default).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/iommufd.h>

#include "kselftest_harness.h"
#include "lib/env_util.h"

#define TIMEOUT_MS	10000
#define PAGE		ENV_PAGE
#define HUGE		(2ul << 20)
#define HUGE_PAGES	(HUGE / PAGE)
/* Smaller than 2 MiB: the IOMMU can only map it with 4 KiB leaves. */
#define SMALL_PAGES	64
#define SMALL_SIZE	(SMALL_PAGES * PAGE)
#define SMALL_IOVA	(1ull << 34)
#define HUGE_IOVA	(1ull << 35)
/* The VF's completion records: the last page of the small mapping. */
#define CPL_PAGE	(SMALL_PAGES - 1)
#define CPL_SLOTS	(PAGE / sizeof(struct tern_desc_cpl))
/* Where 2 MiB of contiguous, aligned pages are looked for. */
#define SEARCH_SIZE	(96ul << 20)
#define RING_SIZE	64
/* Bits of the largest region queried: the environment's DMA memory. */
#define BITMAP_WORDS	(ENV_DMA_SIZE / PAGE / 64)

FIXTURE(iommu_dirty) {
	struct tern_env e;
	uint32_t hwpt;
	struct tern_vfq vq;
	uint8_t *small;
	struct tern_desc_cpl *cpl;
	unsigned int slot;
	void *search;
	uint8_t *huge;		/* NULL: none found, no_huge says why */
	char no_huge[160];
	uint64_t *bitmap;
	uint64_t *expect;
};

static int ioas_map(struct tern_env *e, void *va, size_t len, uint64_t iova)
{
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = e->c.ioas_id,
		.user_va = (uintptr_t)va,
		.length = len,
		.iova = iova,
	};

	return ioctl(e->c.fd, IOMMU_IOAS_MAP, &map) ? -errno : 0;
}

/* The page frame numbers of npages pages from va; 0 for one not present. */
static int pfns(const void *va, size_t npages, uint64_t *pfn)
{
	ssize_t len = npages * sizeof(*pfn);
	size_t i;
	int fd;

	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return -errno;
	if (pread(fd, pfn, len, (uintptr_t)va / PAGE * sizeof(*pfn)) != len) {
		close(fd);
		return -EIO;
	}
	close(fd);
	for (i = 0; i < npages; i++)
		pfn[i] = (pfn[i] >> 63) ? pfn[i] & ((1ull << 55) - 1) : 0;
	return 0;
}

/*
 * 2 MiB of memory at a physical 2 MiB boundary, physically contiguous:
 * what the IOMMU maps with one 2 MiB leaf at a 2 MiB aligned IOVA.  The
 * mapping asked for transparent huge pages, but a kernel may give none
 * (no THP, no free 2 MiB): look for such pages in it by their page frame
 * numbers.  NULL, with the reason in why, if there are none.
 */
static uint8_t *find_huge(void *mem, size_t size, char *why, size_t wlen)
{
	size_t n = size / PAGE, i, run = 0;
	uint64_t *pfn = calloc(n, sizeof(*pfn));
	uint8_t *found = NULL;

	if (!pfn || pfns(mem, n, pfn)) {
		snprintf(why, wlen, "cannot read /proc/self/pagemap");
		goto out;
	}
	if (!pfn[0]) {
		snprintf(why, wlen, "/proc/self/pagemap gives no page frame numbers");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (run && pfn[i] && pfn[i] == pfn[i - 1] + 1)
			run++;
		else
			run = pfn[i] && !(pfn[i] % HUGE_PAGES);
		if (run == HUGE_PAGES) {
			found = (uint8_t *)mem + (i + 1 - HUGE_PAGES) * PAGE;
			break;
		}
	}
	if (!found)
		snprintf(why, wlen,
			 "no 2 MiB of physically contiguous, aligned pages in %zu MiB of memory",
			 size >> 20);
out:
	free(pfn);
	return found;
}

/* Is the memory at va still at the page frames it was found at? */
static bool still_contiguous(const uint8_t *va)
{
	uint64_t pfn[HUGE_PAGES];
	size_t i;

	if (pfns(va, HUGE_PAGES, pfn) || !pfn[0] || pfn[0] % HUGE_PAGES)
		return false;
	for (i = 1; i < HUGE_PAGES; i++)
		if (pfn[i] != pfn[0] + i)
			return false;
	return true;
}

FIXTURE_SETUP(iommu_dirty)
{
	struct iommu_hw_info info = { .size = sizeof(info) };
	struct iommu_hwpt_alloc alloc = {
		.size = sizeof(alloc),
		.flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
	};
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
	};
	int ret;

	ret = env_setup(&self->e, 1, true);
	if (ret == -ENODEV)
		SKIP(return, "no tern PF");
	ASSERT_EQ(0, ret);

	info.dev_id = self->e.dev[0].devid;
	ASSERT_EQ(0, ioctl(self->e.c.fd, IOMMU_GET_HW_INFO, &info));
	/* The VM scripts/vm-run gives the capability must have it. */
	if (!(info.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING))
		ASSERT_TRUE(!getenv("TERN_IOMMU") ||
			    strcmp(getenv("TERN_IOMMU"), "ssads"))
			TH_LOG("TERN_IOMMU=ssads, but the IOMMU of %s does not report IOMMU_HW_CAP_DIRTY_TRACKING",
			       self->e.vf[0]);
	if (!(info.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING))
		SKIP(return,
		     "the IOMMU of %s does not track dirty pages (no IOMMU_HW_CAP_DIRTY_TRACKING; an Intel IOMMU needs scalable mode and second-stage A/D, x-ssads=on in tern's QEMU)",
		     self->e.vf[0]);

	alloc.dev_id = self->e.dev[0].devid;
	alloc.pt_id = self->e.c.ioas_id;
	ASSERT_EQ(0, ioctl(self->e.c.fd, IOMMU_HWPT_ALLOC, &alloc))
		TH_LOG("IOMMU_HWPT_ALLOC with DIRTY_TRACKING: %s",
		       strerror(errno));
	self->hwpt = alloc.out_hwpt_id;
	/* Replaces the IOAS's automatic domain. */
	attach.pt_id = self->hwpt;
	ASSERT_EQ(0, ioctl(self->e.dev[0].fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT,
			   &attach))
		TH_LOG("attach to the dirty-tracking HWPT: %s", strerror(errno));

	self->small = mmap(NULL, SMALL_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, self->small);
	ASSERT_EQ(0, ioas_map(&self->e, self->small, SMALL_SIZE, SMALL_IOVA));
	self->cpl = (void *)(self->small + CPL_PAGE * PAGE);

	self->search = mmap(NULL, SEARCH_SIZE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->search);
	/* Fails without CONFIG_TRANSPARENT_HUGEPAGE: find_huge() still may. */
	madvise(self->search, SEARCH_SIZE, MADV_HUGEPAGE);
	memset(self->search, 0, SEARCH_SIZE);
	self->huge = find_huge(self->search, SEARCH_SIZE, self->no_huge,
			       sizeof(self->no_huge));
	if (self->huge) {
		/* Pinned from now on: the frames cannot move any more. */
		ASSERT_EQ(0, ioas_map(&self->e, self->huge, HUGE, HUGE_IOVA));
		if (!still_contiguous(self->huge)) {
			snprintf(self->no_huge, sizeof(self->no_huge),
				 "the 2 MiB found moved before it was pinned");
			self->huge = NULL;
		}
	}

	ASSERT_EQ(0, tern_vfq_init(&self->vq, &self->e.c, self->e.regs[0], 0,
				   RING_SIZE));
	self->bitmap = calloc(BITMAP_WORDS, sizeof(uint64_t));
	self->expect = calloc(BITMAP_WORDS, sizeof(uint64_t));
	ASSERT_NE(NULL, self->bitmap);
	ASSERT_NE(NULL, self->expect);
}

FIXTURE_TEARDOWN(iommu_dirty)
{
	env_teardown(&self->e);
	if (self->small && self->small != MAP_FAILED)
		munmap(self->small, SMALL_SIZE);
	if (self->search && self->search != MAP_FAILED)
		munmap(self->search, SEARCH_SIZE);
	free(self->bitmap);
	free(self->expect);
}

static int set_tracking(FIXTURE_DATA(iommu_dirty) *self, bool on)
{
	struct iommu_hwpt_set_dirty_tracking set = {
		.size = sizeof(set),
		.flags = on ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
		.hwpt_id = self->hwpt,
	};

	return ioctl(self->e.c.fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &set) ?
	       -errno : 0;
}

/*
 * IOMMU_HWPT_GET_DIRTY_BITMAP of [iova, iova + len) in 4 KiB pages, with
 * flags, into self->bitmap; compare with self->expect.
 */
static void check(struct __test_metadata *_metadata,
		  FIXTURE_DATA(iommu_dirty) *self, const char *what,
		  uint64_t iova, uint64_t len, uint32_t flags)
{
	struct iommu_hwpt_get_dirty_bitmap get = {
		.size = sizeof(get),
		.hwpt_id = self->hwpt,
		.flags = flags,
		.iova = iova,
		.length = len,
		.page_size = PAGE,
		.data = (uintptr_t)self->bitmap,
	};
	size_t words = (len / PAGE + 63) / 64, i;

	memset(self->bitmap, 0, BITMAP_WORDS * sizeof(uint64_t));
	ASSERT_EQ(0, ioctl(self->e.c.fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &get))
		TH_LOG("%s: IOMMU_HWPT_GET_DIRTY_BITMAP: %s", what,
		       strerror(errno));
	for (i = 0; i < words; i++)
		EXPECT_EQ(self->expect[i], self->bitmap[i])
			TH_LOG("%s%s: bitmap word %zu (pages %zu-%zu)", what,
			       flags ? " (NO_CLEAR)" : "", i, i * 64,
			       i * 64 + 63);
}

static void expect_none(FIXTURE_DATA(iommu_dirty) *self)
{
	memset(self->expect, 0, BITMAP_WORDS * sizeof(uint64_t));
}

static void expect_page(FIXTURE_DATA(iommu_dirty) *self, unsigned int page)
{
	self->expect[page / 64] |= 1ull << (page % 64);
}

/* The small mapping as the VF wrote it: the pages given and the records. */
static void expect_small(FIXTURE_DATA(iommu_dirty) *self,
			 const unsigned int *pages, unsigned int n)
{
	unsigned int i;

	expect_none(self);
	for (i = 0; i < n; i++)
		expect_page(self, pages[i]);
	expect_page(self, CPL_PAGE);
}

/* The other regions the VF can reach: nothing of them is ever written. */
static void check_untouched(struct __test_metadata *_metadata,
			    FIXTURE_DATA(iommu_dirty) *self, bool huge)
{
	expect_none(self);
	check(_metadata, self, "ring and environment memory",
	      self->e.c.dma_iova, ENV_DMA_SIZE,
	      IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
	if (huge && self->huge)
		check(_metadata, self, "2 MiB mapping", HUGE_IOVA, HUGE,
		      IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
}

/* Run one descriptor to completion; the record in the small mapping. */
static void run(struct __test_metadata *_metadata,
		FIXTURE_DATA(iommu_dirty) *self, uint8_t opcode, uint64_t src,
		uint64_t dst, uint64_t pattern)
{
	unsigned int slot = self->slot++ % CPL_SLOTS;
	struct tern_desc d = {
		.opcode = opcode,
		.len = htole32(PAGE),
		.src = htole64(src),
		.dst = htole64(dst),
		.pattern = htole64(pattern),
		.cpl_addr = htole64(SMALL_IOVA + CPL_PAGE * PAGE +
				    slot * sizeof(*self->cpl)),
		.user = htole64(slot + 1),
	};

	memset(&self->cpl[slot], 0, sizeof(self->cpl[slot]));
	tern_vfq_add(&self->vq, &d, 1);
	ASSERT_EQ(0, tern_vfq_wait_idle(&self->vq, TIMEOUT_MS));
	ASSERT_EQ(TERN_DSTS_SUCCESS, self->cpl[slot].status);
	ASSERT_EQ(slot + 1, le64toh(self->cpl[slot].user));
	ASSERT_EQ(PAGE, le32toh(self->cpl[slot].bytes));
}

/* The VF fills the page at iova (va here) with byte p. */
static void fill(struct __test_metadata *_metadata,
		 FIXTURE_DATA(iommu_dirty) *self, uint64_t iova, uint8_t *va,
		 uint8_t p)
{
	size_t i;

	memset(va, 0, PAGE);
	run(_metadata, self, TERN_DESC_FILL, 0, iova,
	    0x0101010101010101ull * p);
	for (i = 0; i < PAGE; i++)
		ASSERT_EQ(p, va[i]) TH_LOG("byte %zu of the page filled", i);
}

/* The VF reads the page at iova (CRC32C): a read, no write. */
static void crc(struct __test_metadata *_metadata,
		FIXTURE_DATA(iommu_dirty) *self, uint64_t iova)
{
	run(_metadata, self, TERN_DESC_CRC32C, iova, 0, 0);
}

static void fill_small(struct __test_metadata *_metadata,
		       FIXTURE_DATA(iommu_dirty) *self, unsigned int page)
{
	fill(_metadata, self, SMALL_IOVA + page * PAGE,
	     self->small + page * PAGE, page + 1);
}

TEST_F(iommu_dirty, small_pages)
{
	static const unsigned int first[] = { 0, 3, 17, 40 };
	static const unsigned int again[] = { 3, 20 };
	unsigned int i;

	ASSERT_EQ(0, set_tracking(self, true));
	/* Enabling clears: the VF has not written anything since. */
	expect_none(self);
	check(_metadata, self, "after enabling", SMALL_IOVA, SMALL_SIZE, 0);

	for (i = 0; i < ARRAY_SIZE(first); i++)
		fill_small(_metadata, self, first[i]);
	expect_small(self, first, ARRAY_SIZE(first));
	check(_metadata, self, "written", SMALL_IOVA, SMALL_SIZE,
	      IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
	/* NO_CLEAR left the bits for the next read. */
	check(_metadata, self, "written, read again", SMALL_IOVA, SMALL_SIZE,
	      IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
	check(_metadata, self, "written, read and cleared", SMALL_IOVA,
	      SMALL_SIZE, 0);
	expect_none(self);
	check(_metadata, self, "after the clearing read", SMALL_IOVA,
	      SMALL_SIZE, 0);

	/*
	 * A read only sets Accessed.  The VF read page 20 through a
	 * translation that the IOMMU may now cache with a clean leaf; its
	 * write must still be reported, and so must a write to page 3,
	 * whose Dirty flag the clearing read took away.
	 */
	crc(_metadata, self, SMALL_IOVA + 20 * PAGE);
	expect_small(self, NULL, 0);
	check(_metadata, self, "after a read", SMALL_IOVA, SMALL_SIZE, 0);
	for (i = 0; i < ARRAY_SIZE(again); i++)
		fill_small(_metadata, self, again[i]);
	expect_small(self, again, ARRAY_SIZE(again));
	check(_metadata, self, "written again", SMALL_IOVA, SMALL_SIZE, 0);

	check_untouched(_metadata, self, true);
	ASSERT_EQ(0, set_tracking(self, false));
}

/* Writes while tracking is off are not reported once it is on again. */
TEST_F(iommu_dirty, off_then_on)
{
	static const unsigned int on[] = { 9 };

	fill_small(_metadata, self, 7);
	ASSERT_EQ(0, set_tracking(self, true));
	expect_none(self);
	check(_metadata, self, "written before enabling", SMALL_IOVA,
	      SMALL_SIZE, 0);
	fill_small(_metadata, self, 9);
	expect_small(self, on, ARRAY_SIZE(on));
	check(_metadata, self, "written after enabling", SMALL_IOVA,
	      SMALL_SIZE, 0);
	ASSERT_EQ(0, set_tracking(self, false));
	fill_small(_metadata, self, 11);
	ASSERT_EQ(0, set_tracking(self, true));
	expect_none(self);
	check(_metadata, self, "written while disabled", SMALL_IOVA,
	      SMALL_SIZE, 0);
	ASSERT_EQ(0, set_tracking(self, false));
}

TEST_F(iommu_dirty, huge_page)
{
	unsigned int i;

	if (!self->huge)
		SKIP(return, "%s", self->no_huge);
	ASSERT_EQ(0, set_tracking(self, true));
	memset(self->expect, 0, BITMAP_WORDS * sizeof(uint64_t));
	check(_metadata, self, "2 MiB after enabling", HUGE_IOVA, HUGE, 0);

	/* One 4 KiB write dirties the 2 MiB leaf: all of it is reported. */
	fill(_metadata, self, HUGE_IOVA + 5 * PAGE, self->huge + 5 * PAGE,
	     0x5a);
	for (i = 0; i < HUGE_PAGES; i++)
		expect_page(self, i);
	check(_metadata, self, "2 MiB written", HUGE_IOVA, HUGE,
	      IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
	check(_metadata, self, "2 MiB written, read again", HUGE_IOVA, HUGE,
	      0);
	expect_none(self);
	check(_metadata, self, "2 MiB after the clearing read", HUGE_IOVA, HUGE,
	      0);

	crc(_metadata, self, HUGE_IOVA + 300 * PAGE);
	check(_metadata, self, "2 MiB after a read", HUGE_IOVA, HUGE, 0);

	fill(_metadata, self, HUGE_IOVA + 300 * PAGE, self->huge + 300 * PAGE,
	     0xa5);
	for (i = 0; i < HUGE_PAGES; i++)
		expect_page(self, i);
	check(_metadata, self, "2 MiB written again", HUGE_IOVA, HUGE, 0);

	/* Only the completion records in the small mapping. */
	expect_small(self, NULL, 0);
	check(_metadata, self, "small mapping", SMALL_IOVA, SMALL_SIZE, 0);
	check_untouched(_metadata, self, false);
	ASSERT_EQ(0, set_tracking(self, false));
}

TEST_HARNESS_MAIN
