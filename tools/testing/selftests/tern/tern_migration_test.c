// SPDX-License-Identifier: GPL-2.0
/*
 * Loopback migration through tern_vfio_pci: the test is the VMM of two
 * VFs, A and B, in one container (so they share one guest memory), and
 * the guest driver of both.  A's state moves to B through the VFIO
 * migration uAPI, by STOP_COPY and by PRE_COPY, and B must go on exactly
 * where A stopped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib/mig_util.h"
#include "lib/tern_util.h"
#include "lib/vfio_util.h"

#define DMA_SIZE	(64ul << 20)
#define TIMEOUT_MS	10000
#define PAGE		4096ul
#define NR_DESC		32
#define BLOCK		8192u
/* QEMU writes the stream in pieces of this size. */
#define WRITE_PIECE	(32u << 10)

FIXTURE(loopback) {
	char pf[32];
	char vf[2][32];
	struct vfio_container c;
	struct vfio_dev dev[2];
	void *regs[2];
	uint8_t *mem[2];
	uint64_t devmem_size;
	struct tern_vfq vq;
	uint8_t *blocks;
	struct tern_desc_cpl *cpl;
	uint64_t cpl_iova;
};

static int set_master(struct vfio_dev *d)
{
	uint16_t cmd;

	if (vfio_cfg_read(d, 4, &cmd, 2))
		return -1;
	cmd |= 0x6;
	return vfio_cfg_write(d, 4, &cmd, 2);
}

FIXTURE_SETUP(loopback)
{
	int i;

	if (pci_find_device(TERN_PCI_VENDOR_ID, TERN_PCI_DEVICE_ID_PF,
			    self->pf, sizeof(self->pf)))
		SKIP(return, "no tern PF");
	ASSERT_EQ(0, system("modprobe -a tern_pf tern_vfio_pci vfio_iommu_type1"));
	ASSERT_EQ(0, pci_bind(self->pf, "tern_pf"));
	pci_sysfs_write(self->pf, "sriov_numvfs", "0");
	ASSERT_EQ(0, pci_sysfs_write(self->pf, "sriov_numvfs", "2"));
	ASSERT_EQ(0, vfio_container_open(&self->c, DMA_SIZE));

	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, pci_vf_bdf(self->pf, i, self->vf[i],
					sizeof(self->vf[i])));
		ASSERT_EQ(0, pci_bind(self->vf[i], "tern_vfio_pci"));
		ASSERT_EQ(0, vfio_dev_open(&self->c, self->vf[i], NULL,
					   &self->dev[i]));
		ASSERT_EQ(0, set_master(&self->dev[i]));
		self->regs[i] = vfio_bar_map(&self->dev[i], TERN_VF_BAR_REGS);
		self->mem[i] = vfio_bar_map(&self->dev[i], TERN_VF_BAR_DEVMEM);
		ASSERT_NE(NULL, self->regs[i]);
		ASSERT_NE(NULL, self->mem[i]);
	}
	self->devmem_size = self->dev[0].bar_size[TERN_VF_BAR_DEVMEM];
	self->blocks = vfio_dma_alloc(&self->c, NR_DESC * BLOCK, PAGE, NULL);
	self->cpl = vfio_dma_alloc(&self->c, NR_DESC * sizeof(*self->cpl), 64,
				   &self->cpl_iova);
	ASSERT_NE(NULL, self->blocks);
	ASSERT_NE(NULL, self->cpl);
	ASSERT_EQ(0, tern_vfq_init(&self->vq, &self->c, self->regs[0], 1,
				   NR_DESC * 2));
}

FIXTURE_TEARDOWN(loopback)
{
	int i;

	for (i = 0; i < 2; i++)
		if (self->dev[i].container)
			vfio_dev_close(&self->dev[i]);
	if (self->c.dma_va)
		vfio_container_close(&self->c);
	if (self->pf[0])
		pci_sysfs_write(self->pf, "sriov_numvfs", "0");
}

/* Queue descriptor i: fill block i with a pattern made from i. */
static void add_fill(struct __test_metadata *_metadata, FIXTURE_DATA(loopback) *self,
		     unsigned int i, int ring)
{
	struct tern_desc d = {
		.opcode = TERN_DESC_FILL,
		.len = htole32(BLOCK),
		.dst = htole64(vfio_iova(&self->c, self->blocks + i * BLOCK)),
		.pattern = htole64(0x0101010101010101ull * (i + 1)),
		.cpl_addr = htole64(self->cpl_iova + i * sizeof(*self->cpl)),
		.user = htole64(i),
	};

	tern_vfq_add(&self->vq, &d, ring);
}

static int block_ok(FIXTURE_DATA(loopback) *self, unsigned int i)
{
	unsigned int j;

	for (j = 0; j < BLOCK; j++)
		if (self->blocks[i * BLOCK + j] != (uint8_t)(i + 1))
			return 0;
	return self->cpl[i].status == TERN_DSTS_SUCCESS &&
	       le64toh(self->cpl[i].user) == i;
}

/* Write a recognisable page of device memory through A's BAR. */
static void poke_devmem(FIXTURE_DATA(loopback) *self, uint64_t off, uint8_t seed)
{
	unsigned int j;

	for (j = 0; j < PAGE; j += 4)
		mmio_write32(self->mem[0], off + j, seed * 0x01010101u + j);
}

static int devmem_same(FIXTURE_DATA(loopback) *self, uint64_t off)
{
	unsigned int j;

	for (j = 0; j < PAGE; j += 4)
		if (mmio_read32(self->mem[0], off + j) !=
		    mmio_read32(self->mem[1], off + j))
			return 0;
	return 1;
}

static int go(struct vfio_dev *d, uint32_t state)
{
	return mig_set_state(d, state, NULL);
}

/* Load a whole stream into B and let B run. */
static void resume_b(struct __test_metadata *_metadata, FIXTURE_DATA(loopback) *self,
		     struct mig_buf *s)
{
	int fd;

	ASSERT_EQ(0, go(&self->dev[1], VFIO_DEVICE_STATE_STOP));
	ASSERT_EQ(0, mig_set_state(&self->dev[1], VFIO_DEVICE_STATE_RESUMING,
				   &fd));
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mig_write(fd, s->data, s->len, WRITE_PIECE));
	ASSERT_EQ(0, go(&self->dev[1], VFIO_DEVICE_STATE_STOP));
	close(fd);
	ASSERT_EQ(0, go(&self->dev[1], VFIO_DEVICE_STATE_RUNNING));
}

/* B now owns the queue: same ring, same memory, B's registers. */
static void check_b_continues(struct __test_metadata *_metadata,
			      FIXTURE_DATA(loopback) *self, uint64_t done_on_a)
{
	unsigned int i;

	self->vq.regs = self->regs[1];
	ASSERT_EQ(0, tern_vfq_wait_idle(&self->vq, TIMEOUT_MS));
	EXPECT_EQ(self->vq.tail, tern_vfq_head(&self->vq));
	for (i = 0; i < NR_DESC; i++)
		EXPECT_TRUE(block_ok(self, i)) TH_LOG("block %u", i);
	/* Counters continue from A's. */
	EXPECT_EQ(NR_DESC, tern_q_reg(&self->vq, TERN_Q_CNT_DESC_LO));
	EXPECT_LT(done_on_a, (uint64_t)NR_DESC);
	/* And B takes new work. */
	memset(self->blocks, 0, BLOCK);
	memset(&self->cpl[0], 0, sizeof(self->cpl[0]));
	add_fill(_metadata, self, 0, 1);
	ASSERT_EQ(0, tern_vfq_wait_idle(&self->vq, TIMEOUT_MS));
	EXPECT_TRUE(block_ok(self, 0));
	EXPECT_EQ(NR_DESC + 1, tern_q_reg(&self->vq, TERN_Q_CNT_DESC_LO));
}

TEST_F(loopback, flags)
{
	uint64_t flags;

	ASSERT_EQ(0, mig_flags(&self->dev[0], &flags));
	EXPECT_EQ(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
		  VFIO_MIGRATION_PRE_COPY, flags);
}

TEST_F(loopback, stop_copy)
{
	struct mig_buf s = {};
	uint64_t size, done;
	uint32_t state;
	unsigned int i;
	int fd;

	/* Half the work runs on A, the rest is pending when A stops. */
	for (i = 0; i < NR_DESC / 2; i++)
		add_fill(_metadata, self, i, i == NR_DESC / 2 - 1);
	ASSERT_EQ(0, tern_vfq_wait_idle(&self->vq, TIMEOUT_MS));
	poke_devmem(self, 0, 0x11);
	poke_devmem(self, self->devmem_size - PAGE, 0x22);

	ASSERT_EQ(0, go(&self->dev[0], VFIO_DEVICE_STATE_RUNNING_P2P));
	for (; i < NR_DESC; i++)
		add_fill(_metadata, self, i, i == NR_DESC - 1);
	usleep(200000);
	/* Quiesced: the doorbell moved the tail, nothing ran. */
	done = tern_q_reg(&self->vq, TERN_Q_CNT_DESC_LO);
	EXPECT_EQ(NR_DESC / 2, done);
	EXPECT_EQ(NR_DESC / 2, tern_vfq_head(&self->vq));

	ASSERT_EQ(0, go(&self->dev[0], VFIO_DEVICE_STATE_STOP));
	ASSERT_EQ(0, mig_data_size(&self->dev[0], &size));
	ASSERT_EQ(0, mig_set_state(&self->dev[0], VFIO_DEVICE_STATE_STOP_COPY,
				   &fd));
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mig_get_state(&self->dev[0], &state));
	EXPECT_EQ(VFIO_DEVICE_STATE_STOP_COPY, state);
	ASSERT_EQ(0, mig_read(fd, &s));
	EXPECT_GT(s.len, self->devmem_size);
	EXPECT_LE(s.len, size);
	ASSERT_EQ(0, go(&self->dev[0], VFIO_DEVICE_STATE_STOP));
	/* The data fd ended with its state. */
	EXPECT_EQ(-1, read(fd, s.data, 1));
	EXPECT_EQ(ENODEV, errno);
	close(fd);

	resume_b(_metadata, self, &s);
	EXPECT_TRUE(devmem_same(self, 0));
	EXPECT_TRUE(devmem_same(self, self->devmem_size - PAGE));
	check_b_continues(_metadata, self, done);

	/* A goes back to running too. */
	EXPECT_EQ(0, go(&self->dev[0], VFIO_DEVICE_STATE_RUNNING));
	mig_buf_free(&s);
}

TEST_F(loopback, precopy)
{
	uint64_t initial, dirty, full_len, done;
	struct mig_buf s = {};
	unsigned int i;
	size_t before;
	int fd;

	for (i = 0; i < NR_DESC / 2; i++)
		add_fill(_metadata, self, i, i == NR_DESC / 2 - 1);
	ASSERT_EQ(0, tern_vfq_wait_idle(&self->vq, TIMEOUT_MS));

	ASSERT_EQ(0, mig_set_state(&self->dev[0], VFIO_DEVICE_STATE_PRE_COPY,
				   &fd));
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	EXPECT_GT(initial, self->devmem_size);

	/* The full image, while A runs; then nothing for now. */
	EXPECT_EQ(-ENOMSG, mig_read(fd, &s));
	EXPECT_EQ(initial, s.len);
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	EXPECT_EQ(0u, initial);
	EXPECT_EQ(0u, dirty);
	full_len = s.len;

	/* Two pages dirtied through the BAR: an increment of about that. */
	poke_devmem(self, 5 * PAGE, 0x33);
	poke_devmem(self, 9 * PAGE, 0x44);
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	EXPECT_EQ(0u, initial);
	EXPECT_GE(dirty, 2 * PAGE);
	EXPECT_LT(dirty, 4 * PAGE);
	before = s.len;
	EXPECT_EQ(-ENOMSG, mig_read(fd, &s));
	EXPECT_EQ(dirty, s.len - before);

	/* Stop: only the final delta follows. */
	ASSERT_EQ(0, go(&self->dev[0], VFIO_DEVICE_STATE_PRE_COPY_P2P));
	for (; i < NR_DESC; i++)
		add_fill(_metadata, self, i, i == NR_DESC - 1);
	done = tern_q_reg(&self->vq, TERN_Q_CNT_DESC_LO);
	poke_devmem(self, 11 * PAGE, 0x55);
	ASSERT_EQ(0, go(&self->dev[0], VFIO_DEVICE_STATE_STOP_COPY));
	before = s.len;
	ASSERT_EQ(0, mig_read(fd, &s));
	EXPECT_GT(s.len - before, PAGE);
	EXPECT_LT(s.len - before, 4 * PAGE);
	/* Info belongs to the pre-copy states only. */
	EXPECT_EQ(-EINVAL, mig_precopy_info(fd, &initial, &dirty));
	ASSERT_EQ(0, go(&self->dev[0], VFIO_DEVICE_STATE_STOP));
	close(fd);
	EXPECT_GT(full_len, self->devmem_size);

	resume_b(_metadata, self, &s);
	EXPECT_TRUE(devmem_same(self, 5 * PAGE));
	EXPECT_TRUE(devmem_same(self, 9 * PAGE));
	EXPECT_TRUE(devmem_same(self, 11 * PAGE));
	check_b_continues(_metadata, self, done);
	mig_buf_free(&s);
}

TEST_HARNESS_MAIN
