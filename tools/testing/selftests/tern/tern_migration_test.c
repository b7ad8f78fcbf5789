// SPDX-License-Identifier: GPL-2.0
/*
 * Loopback migration through tern_vfio_pci: the test is the VMM of two
 * VFs, A and B, in one container or iommufd (so they share one guest
 * memory), and the guest driver of both.  A's state moves to B through
 * the VFIO migration uAPI, by STOP_COPY and by PRE_COPY, while A has DMA
 * in flight, and B must go on exactly where A stopped.
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
#define NR_DESC		32
/* QEMU writes the stream in pieces of this size. */
#define WRITE_PIECE	(32u << 10)
#define A		0
#define B		1

FIXTURE(loopback) {
	struct tern_env e;
	struct work w;
};

FIXTURE_VARIANT(loopback) {
	bool iommufd;
};

FIXTURE_VARIANT_ADD(loopback, type1) {
	.iommufd = false,
};

FIXTURE_VARIANT_ADD(loopback, iommufd) {
	.iommufd = true,
};

FIXTURE_SETUP(loopback)
{
	int ret = env_setup(&self->e, 2, variant->iommufd);

	if (ret == -ENODEV)
		SKIP(return, "no tern PF");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, work_init(&self->w, &self->e.c, self->e.regs[A], 1,
			       NR_DESC));
}

FIXTURE_TEARDOWN(loopback)
{
	env_teardown(&self->e);
}

static int go(struct vfio_dev *d, uint32_t state)
{
	return mig_set_state(d, state, NULL);
}

/* Write a recognisable page of device memory through a VF's BAR. */
static void poke_devmem(uint8_t *mem, uint64_t off, uint8_t seed)
{
	unsigned int j;

	for (j = 0; j < ENV_PAGE; j += 4)
		mmio_write32(mem, off + j, seed * 0x01010101u + j);
}

static bool page_same(struct tern_env *e, uint64_t off, unsigned int len)
{
	unsigned int j;

	for (j = 0; j < len; j += 4)
		if (mmio_read32(e->mem[A], off + j) !=
		    mmio_read32(e->mem[B], off + j))
			return false;
	return true;
}

/*
 * The two VFs' device memory is the same: the first pages (the tests
 * write there) whole, and a sample of the rest, as reading all of it
 * through the BARs takes long under TCG.
 */
static bool devmem_same(struct tern_env *e)
{
	uint64_t off;

	for (off = 0; off < 16 * ENV_PAGE; off += ENV_PAGE)
		if (!page_same(e, off, ENV_PAGE))
			return false;
	for (; off < e->devmem_size; off += 61 * ENV_PAGE)
		if (!page_same(e, off, 64))
			return false;
	return page_same(e, e->devmem_size - ENV_PAGE, ENV_PAGE);
}

/*
 * Half the work runs on A, then A quiesces and the other half is queued:
 * the doorbell moves TAIL but nothing runs.  Returns what A completed.
 */
static uint64_t start_work_and_quiesce(struct __test_metadata *_metadata,
				       FIXTURE_DATA(loopback) *self,
				       struct vfio_dev *d, uint32_t p2p)
{
	uint64_t done = work_done(&self->w);
	uint32_t tail = self->w.vq.tail;

	work_add_range(&self->w, 0, NR_DESC / 2);
	EXPECT_EQ(0, work_wait(&self->w, TIMEOUT_MS));
	EXPECT_EQ(0, go(d, p2p));
	work_add_range(&self->w, NR_DESC / 2, NR_DESC);
	usleep(100000);
	EXPECT_EQ(done + NR_DESC / 2, work_done(&self->w));
	EXPECT_EQ((tail + NR_DESC / 2) % self->w.vq.size,
		  tern_vfq_head(&self->w.vq));
	EXPECT_EQ(self->w.vq.tail, tern_q_reg(&self->w.vq, TERN_Q_TAIL));
	return done + NR_DESC / 2;
}

/* The queue moves to VF `to`: it finishes A's work and takes more. */
static void check_continues(struct __test_metadata *_metadata,
			    FIXTURE_DATA(loopback) *self, int to,
			    uint64_t cnt_before)
{
	unsigned int i;

	self->w.vq.regs = self->e.regs[to];
	ASSERT_EQ(0, work_wait(&self->w, TIMEOUT_MS));
	for (i = 0; i < NR_DESC; i++)
		EXPECT_TRUE(work_block_ok(&self->w, i)) TH_LOG("block %u", i);
	/* Counters continue. */
	EXPECT_EQ(cnt_before + NR_DESC / 2, work_done(&self->w));
	self->w.pass++;
	work_add_range(&self->w, 0, NR_DESC / 2);
	ASSERT_EQ(0, work_wait(&self->w, TIMEOUT_MS));
	for (i = 0; i < NR_DESC / 2; i++)
		EXPECT_TRUE(work_block_ok(&self->w, i)) TH_LOG("block %u", i);
	EXPECT_EQ(cnt_before + NR_DESC, work_done(&self->w));
}

static void load_and_run(struct __test_metadata *_metadata,
			 struct vfio_dev *d, struct mig_buf *s)
{
	ASSERT_EQ(0, mig_load(d, s, WRITE_PIECE));
	ASSERT_EQ(0, go(d, VFIO_DEVICE_STATE_RUNNING));
}

TEST_F(loopback, stop_copy)
{
	struct mig_buf s = {};
	uint64_t size, done;
	uint32_t state;
	int fd;

	poke_devmem(self->e.mem[A], 0, 0x11);
	poke_devmem(self->e.mem[A], self->e.devmem_size - ENV_PAGE, 0x22);
	done = start_work_and_quiesce(_metadata, self, &self->e.dev[A],
				      VFIO_DEVICE_STATE_RUNNING_P2P);

	ASSERT_EQ(0, go(&self->e.dev[A], VFIO_DEVICE_STATE_STOP));
	ASSERT_EQ(0, mig_data_size(&self->e.dev[A], &size));
	ASSERT_EQ(0, mig_set_state(&self->e.dev[A],
				   VFIO_DEVICE_STATE_STOP_COPY, &fd));
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mig_get_state(&self->e.dev[A], &state));
	EXPECT_EQ(VFIO_DEVICE_STATE_STOP_COPY, state);
	ASSERT_EQ(0, mig_read(fd, &s));
	/* MIG_DATA_SIZE is non-zero and bounds what STOP_COPY produced. */
	EXPECT_GT(s.len, self->e.devmem_size);
	EXPECT_LE(s.len, size);
	ASSERT_EQ(0, go(&self->e.dev[A], VFIO_DEVICE_STATE_STOP));
	/* The data fd ended with its state. */
	EXPECT_EQ(-1, read(fd, s.data, 1));
	EXPECT_EQ(ENODEV, errno);
	close(fd);

	load_and_run(_metadata, &self->e.dev[B], &s);
	EXPECT_TRUE(devmem_same(&self->e));
	check_continues(_metadata, self, B, done);
	mig_buf_free(&s);
}

TEST_F(loopback, precopy)
{
	uint64_t initial, dirty, size, done;
	struct mig_buf s = {};
	size_t before, full_len;
	int fd;

	work_add_range(&self->w, 0, NR_DESC / 4);
	ASSERT_EQ(0, mig_set_state(&self->e.dev[A],
				   VFIO_DEVICE_STATE_PRE_COPY, &fd));
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	EXPECT_GT(initial, self->e.devmem_size);

	/* The full image, while A runs DMA; then nothing for now. */
	work_add_range(&self->w, NR_DESC / 4, NR_DESC / 2);
	EXPECT_EQ(-ENOMSG, mig_read(fd, &s));
	EXPECT_EQ(initial, s.len);
	full_len = s.len;
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	EXPECT_EQ(0u, initial);
	EXPECT_EQ(0u, dirty);

	/* Two pages dirtied through the BAR: an increment of about that. */
	poke_devmem(self->e.mem[A], 5 * ENV_PAGE, 0x33);
	poke_devmem(self->e.mem[A], 9 * ENV_PAGE, 0x44);
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	EXPECT_EQ(0u, initial);
	EXPECT_GE(dirty, 2 * ENV_PAGE);
	EXPECT_LT(dirty, 3 * ENV_PAGE);
	before = s.len;
	EXPECT_EQ(-ENOMSG, mig_read(fd, &s));
	EXPECT_EQ(dirty, s.len - before);
	/* Three more pages: the next increment follows. */
	poke_devmem(self->e.mem[A], 1 * ENV_PAGE, 0x45);
	poke_devmem(self->e.mem[A], 2 * ENV_PAGE, 0x46);
	poke_devmem(self->e.mem[A], 3 * ENV_PAGE, 0x47);
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	EXPECT_GE(dirty, 3 * ENV_PAGE);
	EXPECT_LT(dirty, 4 * ENV_PAGE);
	before = s.len;
	EXPECT_EQ(-ENOMSG, mig_read(fd, &s));
	EXPECT_EQ(dirty, s.len - before);

	EXPECT_EQ(0, work_wait(&self->w, TIMEOUT_MS));
	done = start_work_and_quiesce(_metadata, self, &self->e.dev[A],
				      VFIO_DEVICE_STATE_PRE_COPY_P2P);
	poke_devmem(self->e.mem[A], 11 * ENV_PAGE, 0x55);
	ASSERT_EQ(0, mig_data_size(&self->e.dev[A], &size));
	ASSERT_EQ(0, mig_set_state(&self->e.dev[A],
				   VFIO_DEVICE_STATE_STOP_COPY, NULL));
	/* Stop: only the final delta (registers and one page) follows. */
	before = s.len;
	ASSERT_EQ(0, mig_read(fd, &s));
	EXPECT_GT(s.len - before, ENV_PAGE);
	EXPECT_LT(s.len - before, 2 * ENV_PAGE);
	EXPECT_LE(s.len - before, size);
	/* Info belongs to the pre-copy states only. */
	EXPECT_EQ(-EINVAL, mig_precopy_info(fd, &initial, &dirty));
	ASSERT_EQ(0, go(&self->e.dev[A], VFIO_DEVICE_STATE_STOP));
	close(fd);
	EXPECT_GT(full_len, self->e.devmem_size);

	load_and_run(_metadata, &self->e.dev[B], &s);
	EXPECT_TRUE(devmem_same(&self->e));
	check_continues(_metadata, self, B, done);
	mig_buf_free(&s);
}

/* A -> B -> A, each leg with work pending at the switch. */
TEST_F(loopback, ping_pong)
{
	struct mig_buf s = {};
	uint64_t done;
	int leg;

	for (leg = 0; leg < 2; leg++) {
		int from = leg ? B : A, to = leg ? A : B;

		self->w.pass++;
		poke_devmem(self->e.mem[from], leg * ENV_PAGE, 0x60 + leg);
		done = start_work_and_quiesce(_metadata, self,
					      &self->e.dev[from],
					      VFIO_DEVICE_STATE_RUNNING_P2P);
		ASSERT_EQ(0, go(&self->e.dev[from], VFIO_DEVICE_STATE_STOP));
		ASSERT_EQ(0, mig_save(&self->e.dev[from], &s));
		load_and_run(_metadata, &self->e.dev[to], &s);
		EXPECT_TRUE(devmem_same(&self->e));
		check_continues(_metadata, self, to, done);
		mig_buf_free(&s);
	}
}

/* MIG_DATA_SIZE is non-zero in every state and bounds STOP_COPY. */
TEST_F(loopback, data_size)
{
	static const uint32_t states[] = {
		VFIO_DEVICE_STATE_RUNNING, VFIO_DEVICE_STATE_RUNNING_P2P,
		VFIO_DEVICE_STATE_STOP,
	};
	struct mig_buf s = {};
	uint64_t size;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(states); i++) {
		ASSERT_EQ(0, go(&self->e.dev[A], states[i]));
		ASSERT_EQ(0, mig_data_size(&self->e.dev[A], &size));
		EXPECT_GT(size, self->e.devmem_size);
	}
	ASSERT_EQ(0, mig_save(&self->e.dev[A], &s));
	EXPECT_LE(s.len, size);
	mig_buf_free(&s);
}

TEST_HARNESS_MAIN
