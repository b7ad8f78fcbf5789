// SPDX-License-Identifier: GPL-2.0
/*
 * Regression test of the tern device model: binds the PF to vfio-pci,
 * enables two VFs, and drives the admin queue and the VF engines from
 * userspace (Documentation/tern/device.rst).
 *
 * The fault injection tests need the PF property x-debug=on, e.g.
 *   scripts/vm-run --vfs 0 --device-opt x-debug=on -- tern_device_test
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "lib/tern_util.h"
#include "lib/vfio_util.h"

#define NUM_VFS		2
/* DMA memory: three full images plus rings and buffers */
#define DMA_EXTRA	(32ul << 20)
#define VF_TOKEN	"a1b2c3d4-0000-4000-8000-00000000e7e5"
#define TIMEOUT_MS	5000
#define PAGE		4096ul

_Static_assert(sizeof(struct tern_aq_cmd) == TERN_AQ_CMD_SIZE, "cmd");
_Static_assert(sizeof(struct tern_aq_cpl) == TERN_AQ_CPL_SIZE, "cpl");
_Static_assert(sizeof(struct tern_desc) == TERN_DESC_SIZE, "desc");
_Static_assert(sizeof(struct tern_desc_cpl) == TERN_DESC_CPL_SIZE, "dcpl");
_Static_assert(sizeof(struct tern_identify) == TERN_IDENTIFY_SIZE, "id");
_Static_assert(sizeof(struct tern_image_hdr) == TERN_IMAGE_HDR_SIZE, "hdr");
_Static_assert(sizeof(struct tern_image_regs) == TERN_IMAGE_REGS_SIZE, "r");

FIXTURE(dev) {
	char pf_bdf[32];
	char vf_bdf[NUM_VFS][32];
	struct vfio_container c;
	struct vfio_dev pf;
	struct vfio_dev vf[NUM_VFS];
	void *vf_regs[NUM_VFS];
	uint8_t *vf_mem[NUM_VFS];
	uint64_t devmem_size;
	struct tern_aq aq;
	volatile uint32_t *dbg;	/* PF BAR2 through sysfs, or NULL */
	size_t dbg_size;
};

static uint64_t image_size(uint64_t pages)
{
	return TERN_IMAGE_HDR_SIZE + TERN_IMAGE_REGS_SIZE +
	       ((pages * 4 + 7) & ~7ul) + pages * PAGE;
}

static void set_master(struct vfio_dev *d)
{
	uint16_t cmd;

	vfio_cfg_read(d, 4, &cmd, 2);
	cmd |= 0x6;		/* memory space, bus master */
	vfio_cfg_write(d, 4, &cmd, 2);
}

/*
 * Each VF's device memory size, from the PF's SR-IOV resource for VF BAR2
 * (TotalVFs times the VF BAR size) before any VF exists.
 */
static uint64_t vf_devmem_size(const char *pf)
{
	char buf[2048], total[16], *line = buf;
	unsigned long long start, end;
	int i;

	if (pci_sysfs_read(pf, "resource", buf, sizeof(buf)) ||
	    pci_sysfs_read(pf, "sriov_totalvfs", total, sizeof(total)))
		return TERN_DEVMEM_DEFAULT_SIZE;
	for (i = 0; i < 7 + TERN_VF_BAR_DEVMEM && line; i++) {
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	if (!line || sscanf(line, "%llx %llx", &start, &end) != 2 || !end ||
	    !atoi(total))
		return TERN_DEVMEM_DEFAULT_SIZE;
	return (end - start + 1) / atoi(total);
}

FIXTURE_SETUP(dev)
{
	uint64_t dma_size;

	char path[256], n[8];
	int i, fd;

	self->dbg = NULL;
	if (pci_find_device(TERN_PCI_VENDOR_ID, TERN_PCI_DEVICE_ID_PF,
			    self->pf_bdf, sizeof(self->pf_bdf)))
		SKIP(return, "no tern PF");
	ASSERT_EQ(0, pci_pf_to_vfio(self->pf_bdf));

	dma_size = 3 * image_size(vf_devmem_size(self->pf_bdf) / PAGE) +
		   DMA_EXTRA;
	dma_size = (dma_size + DMA_EXTRA - 1) & ~(DMA_EXTRA - 1);
	ASSERT_EQ(0, vfio_container_open(&self->c, dma_size));
	ASSERT_EQ(0, vfio_dev_open(&self->c, self->pf_bdf, NULL, &self->pf));
	ASSERT_EQ(0, vfio_set_vf_token(&self->pf, VF_TOKEN));
	set_master(&self->pf);

	snprintf(n, sizeof(n), "%d", NUM_VFS);
	ASSERT_EQ(0, pci_sysfs_write(self->pf_bdf, "sriov_numvfs", n));
	for (i = 0; i < NUM_VFS; i++) {
		ASSERT_EQ(0, pci_vf_bdf(self->pf_bdf, i, self->vf_bdf[i],
					sizeof(self->vf_bdf[i])));
		/* vfio-pci claims the VFs of a PF it owns. */
		ASSERT_EQ(0, pci_wait_driver(self->vf_bdf[i], "vfio-pci",
					     TIMEOUT_MS));
		/* Each function is isolated: its own IOMMU group. */
		ASSERT_NE(pci_iommu_group(self->pf_bdf),
			  pci_iommu_group(self->vf_bdf[i]));
		ASSERT_EQ(0, vfio_dev_open(&self->c, self->vf_bdf[i], VF_TOKEN,
					   &self->vf[i]));
		set_master(&self->vf[i]);
		self->vf_regs[i] = vfio_bar_map(&self->vf[i], TERN_VF_BAR_REGS);
		ASSERT_NE(NULL, self->vf_regs[i]);
		self->vf_mem[i] = vfio_bar_map(&self->vf[i],
					       TERN_VF_BAR_DEVMEM);
		ASSERT_NE(NULL, self->vf_mem[i]);
		ASSERT_EQ(TERN_VF_MAGIC, mmio_read32(self->vf_regs[i],
						     TERN_VF_REG_MAGIC));
	}
	self->devmem_size = mmio_read64lh(self->vf_regs[0],
					  TERN_VF_REG_DEVMEM_SIZE_LO);
	ASSERT_EQ(self->devmem_size, self->vf[0].bar_size[TERN_VF_BAR_DEVMEM]);

	void *regs = vfio_bar_map(&self->pf, TERN_PF_BAR_REGS);

	ASSERT_NE(NULL, regs);
	ASSERT_EQ(TERN_PF_MAGIC, mmio_read32(regs, TERN_PF_REG_MAGIC));
	ASSERT_EQ(0, tern_aq_init(&self->aq, &self->c, regs, 128));

	if (mmio_read32(regs, TERN_PF_REG_DEV_CAP) & TERN_DEV_CAP_DEBUG) {
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource2",
			 self->pf_bdf);
		fd = open(path, O_RDWR | O_SYNC);
		ASSERT_LE(0, fd);
		self->dbg_size = TERN_PF_DEBUG_SIZE;
		self->dbg = mmap(NULL, self->dbg_size, PROT_READ | PROT_WRITE,
				 MAP_SHARED, fd, 0);
		close(fd);
		ASSERT_NE(MAP_FAILED, self->dbg);
		ASSERT_EQ(TERN_DBG_MAGIC, self->dbg[TERN_DBG_REG_MAGIC / 4]);
	}
}

FIXTURE_TEARDOWN(dev)
{
	int i;

	if (self->dbg) {
		self->dbg[TERN_DBG_REG_FAIL_CMD / 4] = 0;
		self->dbg[TERN_DBG_REG_DELAY_CMD / 4] = 0;
		self->dbg[TERN_DBG_REG_DMA_FAIL / 4] = 0;
		self->dbg[TERN_DBG_REG_CORRUPT_SAVE / 4] = 0;
		self->dbg[TERN_DBG_REG_STUCK_CMD / 4] = 0;
		self->dbg[TERN_DBG_REG_SAVE_SHORT / 4] = 0;
		self->dbg[TERN_DBG_REG_SAVE_RESIZE / 4] = 0;
		self->dbg[TERN_DBG_REG_DIRTY_LIMIT / 4] = 0;
		munmap((void *)self->dbg, self->dbg_size);
	}
	if (self->aq.regs)
		tern_aq_disable(&self->aq);
	for (i = 0; i < NUM_VFS; i++)
		if (self->vf[i].container)
			vfio_dev_close(&self->vf[i]);
	if (self->pf_bdf[0])
		pci_sysfs_write(self->pf_bdf, "sriov_numvfs", "0");
	if (self->pf.container)
		vfio_dev_close(&self->pf);
	if (self->c.dma_va)
		vfio_container_close(&self->c);
}

/* Helpers */

static struct tern_desc desc(uint8_t op, uint64_t src, uint64_t dst,
			     uint32_t len, uint64_t pattern, uint64_t cpl,
			     uint64_t user)
{
	struct tern_desc d = {
		.opcode = op, .len = htole32(len), .src = htole64(src),
		.dst = htole64(dst), .pattern = htole64(pattern),
		.cpl_addr = htole64(cpl), .user = htole64(user),
	};
	return d;
}

#define ADD(vq, ring, ...) do {					\
		struct tern_desc _d = desc(__VA_ARGS__);		\
		tern_vfq_add(vq, &_d, ring);				\
	} while (0)

static int vf_state(struct tern_aq *aq, struct vfio_container *c, int vf,
		    uint16_t *flags)
{
	struct tern_identify id;

	if (tern_identify(aq, c, vf, &id))
		return -1;
	if (flags)
		*flags = le16toh(id.vf_flags);
	return le16toh(id.vf_state);
}


/* Everything of the VF's BAR0 that the image carries. */
struct vf_regs {
	uint32_t q[TERN_VF_NR_QUEUES][14];
	uint32_t cnt[4];
};

static void read_regs(void *regs, struct vf_regs *r)
{
	int q, i;

	for (q = 0; q < TERN_VF_NR_QUEUES; q++)
		for (i = 0; i < 14; i++)
			r->q[q][i] = mmio_read32(regs, TERN_VF_REG_Q(q) + i * 4);
	for (i = 0; i < 4; i++)
		r->cnt[i] = mmio_read32(regs, TERN_VF_REG_CNT_DESC_LO + i * 4);
}

static void fix_crc(void *img, size_t size)
{
	struct tern_image_hdr *h = img;

	h->crc = 0;
	h->crc = htole32(tern_crc32c(~0u, img, size) ^ ~0u);
}

/* A SAVE of VF vf into the one buffer [buf, buf + len). */
static void save_cmd(struct vfio_container *c, struct tern_aq_cmd *cmd,
		     uint16_t vf, uint8_t flags, uint64_t off, void *buf,
		     uint32_t len)
{
	uint64_t sg_iova;
	struct tern_sg *sg = vfio_dma_alloc(c, sizeof(*sg), 64, &sg_iova);

	*sg = (struct tern_sg){ .addr = htole64(vfio_iova(c, buf)),
				.len = htole32(len) };
	*cmd = (struct tern_aq_cmd){ .opcode = TERN_OP_SAVE, .flags = flags,
				     .vf = htole16(vf) };
	cmd->xfer.offset = htole64(off);
	cmd->xfer.sg_addr = htole64(sg_iova);
	cmd->xfer.sg_count = htole32(1);
}

static struct tern_aq_cmd abort_cmd(uint16_t vf, uint16_t tag)
{
	struct tern_aq_cmd cmd = { .opcode = TERN_OP_ABORT,
				   .vf = htole16(vf) };

	cmd.abort.tag = htole16(tag);
	return cmd;
}

static int all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
	while (len--)
		if (*p++ != v)
			return 0;
	return 1;
}

TEST_F_TIMEOUT(dev, identify, 120)
{
	struct tern_identify id;
	struct tern_aq_cmd cmd = { .opcode = 0x7f };
	struct tern_aq_cpl cpl;
	uint64_t pages = self->devmem_size / PAGE;

	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_identify(&self->aq, &self->c, TERN_VF_NONE, &id));
	EXPECT_EQ(TERN_PF_MAGIC, le32toh(id.magic));
	EXPECT_EQ(TERN_IMAGE_VERSION, le16toh(id.image_version));
	EXPECT_EQ(NUM_VFS, le16toh(id.num_vfs));
	EXPECT_LE(NUM_VFS, le16toh(id.total_vfs));
	EXPECT_LE(64, le16toh(id.aq_max_entries));
	EXPECT_LE(32, le16toh(id.aq_max_inflight));
	EXPECT_LE(4, le16toh(id.vf_nr_queues));
	EXPECT_EQ(self->devmem_size, le64toh(id.vf_devmem_size));
	EXPECT_EQ(image_size(pages), le64toh(id.max_image_size));
	EXPECT_LE(16, le32toh(id.dirty_max_ranges));
	EXPECT_EQ(0x3ff000u, le32toh(id.dirty_page_shifts));
	EXPECT_EQ(TERN_VF_STATE_NONE, le16toh(id.vf_state));

	ASSERT_EQ(TERN_STS_SUCCESS, tern_identify(&self->aq, &self->c, 1, &id));
	EXPECT_EQ(TERN_VF_STATE_RUNNING, le16toh(id.vf_state));
	EXPECT_EQ(0, le16toh(id.vf_flags));

	EXPECT_EQ(TERN_STS_INVALID_VF,
		  tern_identify(&self->aq, &self->c, NUM_VFS, &id));
	EXPECT_EQ(TERN_STS_INVALID_OPCODE,
		  tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
	cmd = (struct tern_aq_cmd){ .opcode = TERN_OP_IDENTIFY,
				    .vf = htole16(TERN_VF_NONE) };
	cmd.identify.len = htole32(64);
	EXPECT_EQ(TERN_STS_INVALID_FIELD,
		  tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
	EXPECT_EQ(TERN_STS_INVALID_VF,
		  tern_cmd_simple(&self->aq, TERN_OP_QUIESCE, 63));
}

TEST_F_TIMEOUT(dev, engine, 120)
{
	struct tern_vfq vq;
	struct tern_desc_cpl *cpl;
	uint8_t *src, *dst, *back;
	uint64_t cpl_iova;
	int efd, i;
	uint64_t ev;
	struct pollfd pfd;

	src = vfio_dma_alloc(&self->c, 3 * 65536 + 100, 4096, NULL);
	dst = vfio_dma_alloc(&self->c, 3 * 65536 + 100, 4096, NULL);
	back = vfio_dma_alloc(&self->c, 3 * 4096, 4096, NULL);
	cpl = vfio_dma_alloc(&self->c, 8 * sizeof(*cpl), 64, &cpl_iova);
	ASSERT_NE(NULL, cpl);
	for (i = 0; i < 3 * 65536 + 100; i++)
		src[i] = i * 7 + 3;

	efd = eventfd(0, EFD_NONBLOCK);
	ASSERT_LE(0, efd);
	int efds[TERN_VF_MSIX_VECTORS] = { -1, -1, efd, -1 };
	ASSERT_EQ(0, vfio_msix_enable(&self->vf[0], TERN_VF_MSIX_VECTORS,
				      efds));
	ASSERT_EQ(0, tern_vfq_init(&vq, &self->c, self->vf_regs[0], 2, 16));

	/* memcpy over several internal chunks, fill, crc32c, dev copies */
	ADD(&vq, 0, TERN_DESC_MEMCPY,
		     vfio_iova(&self->c, src), vfio_iova(&self->c, dst),
		     3 * 65536 + 100, 0, cpl_iova, 11);
	ADD(&vq, 0, TERN_DESC_FILL, 0,
		     vfio_iova(&self->c, back), 4100, 0x0102030405060708ull,
		     cpl_iova + 32, 12);
	ADD(&vq, 0, TERN_DESC_CRC32C,
		     vfio_iova(&self->c, src), 0, 5000, 0xffffffff,
		     cpl_iova + 64, 13);
	ADD(&vq, 0, TERN_DESC_TO_DEV,
		     vfio_iova(&self->c, src), 0x10000, 6000, 0,
		     cpl_iova + 96, 14);
	ADD(&vq, 0, TERN_DESC_FROM_DEV,
		     0x10000, vfio_iova(&self->c, back) + 8192, 4096, 0,
		     cpl_iova + 128, 15);
	/* errors: bad opcode, devmem out of range, zero length */
	ADD(&vq, 0, 0x77, 0, 0, 8, 0,
		     cpl_iova + 160, 16);
	ADD(&vq, 0, TERN_DESC_TO_DEV,
		     vfio_iova(&self->c, src), self->devmem_size - 8, 16, 0,
		     cpl_iova + 192, 17);
	struct tern_desc last = desc(TERN_DESC_MEMCPY, 0, 0, 0, 0,
				     cpl_iova + 224, 18);
	last.flags = TERN_DESC_F_INTERRUPT;
	tern_vfq_add(&vq, &last, 1);
	ASSERT_EQ(0, tern_vfq_wait_idle(&vq, TIMEOUT_MS));

	for (i = 0; i < 8; i++) {
		EXPECT_EQ(11u + i, le64toh(cpl[i].user));
		EXPECT_EQ((uint32_t)i, le32toh(cpl[i].index));
	}
	EXPECT_EQ(TERN_DSTS_SUCCESS, cpl[0].status);
	EXPECT_EQ(0, memcmp(src, dst, 3 * 65536 + 100));
	EXPECT_EQ(TERN_DSTS_SUCCESS, cpl[1].status);
	for (i = 0; i < 4100; i++)
		if (back[i] != 8 - i % 8)
			break;
	EXPECT_EQ(4100, i);
	EXPECT_EQ(TERN_DSTS_SUCCESS, cpl[2].status);
	EXPECT_EQ(tern_crc32c(0xffffffff, src, 5000), le32toh(cpl[2].crc));
	/* the standard check value of CRC-32C */
	EXPECT_EQ(0xe3069283u, tern_crc32c(~0u, "123456789", 9) ^ ~0u);
	EXPECT_EQ(TERN_DSTS_SUCCESS, cpl[3].status);
	EXPECT_EQ(0, memcmp(self->vf_mem[0] + 0x10000, src, 6000));
	EXPECT_EQ(TERN_DSTS_SUCCESS, cpl[4].status);
	EXPECT_EQ(0, memcmp(back + 8192, src, 4096));
	EXPECT_EQ(TERN_DSTS_INVALID_OPCODE, cpl[5].status);
	EXPECT_EQ(TERN_DSTS_INVALID_ADDR, cpl[6].status);
	EXPECT_EQ(TERN_DSTS_INVALID_LEN, cpl[7].status);

	EXPECT_EQ(5u, tern_q_reg(&vq, TERN_Q_CNT_DESC_LO));
	EXPECT_EQ(3u, tern_q_reg(&vq, TERN_Q_CNT_ERR_LO));
	EXPECT_EQ(5u, mmio_read32(self->vf_regs[0], TERN_VF_REG_CNT_DESC_LO));

	/* Only the last descriptor asked for an interrupt, on vector 2. */
	pfd = (struct pollfd){ .fd = efd, .events = POLLIN };
	EXPECT_EQ(1, poll(&pfd, 1, TIMEOUT_MS));
	EXPECT_EQ(8, read(efd, &ev, 8));
	EXPECT_EQ(1u, ev);

	/* Bad doorbell: ignored and reported. */
	mmio_write32(self->vf_regs[0], TERN_VF_REG_Q(2) + TERN_Q_TAIL, 16);
	EXPECT_EQ(TERN_Q_ERR_DOORBELL, (tern_q_reg(&vq, TERN_Q_STATUS) &
					TERN_Q_STS_ERR_MASK) >> 8);
	EXPECT_EQ(vq.tail, tern_q_reg(&vq, TERN_Q_TAIL));

	/* Unfetchable ring: the queue halts. */
	struct tern_vfq bad;

	ASSERT_EQ(0, tern_vfq_init(&bad, &self->c, self->vf_regs[0], 3, 4));
	mmio_write32(self->vf_regs[0], TERN_VF_REG_Q(3) + TERN_Q_CTRL, 0);
	mmio_write64lh(self->vf_regs[0], TERN_VF_REG_Q(3) + TERN_Q_BASE_LO,
		       0x7000000000ull);
	mmio_write32(self->vf_regs[0], TERN_VF_REG_Q(3) + TERN_Q_CTRL,
		     TERN_Q_CTRL_ENABLE);
	mmio_write32(self->vf_regs[0], TERN_VF_REG_Q(3) + TERN_Q_TAIL, 1);
	usleep(100000);
	EXPECT_TRUE(tern_q_reg(&bad, TERN_Q_STATUS) & TERN_Q_STS_HALTED);
	EXPECT_EQ(TERN_VF_STS_ERROR,
		  mmio_read32(self->vf_regs[0], TERN_VF_REG_STATUS));
	vfio_msix_disable(&self->vf[0]);
	close(efd);
}

TEST_F_TIMEOUT(dev, suspend, 120)
{
	struct tern_vfq vq;
	struct tern_desc_cpl *cpl;
	uint8_t *dst;
	uint64_t cpl_iova;
	uint32_t v;

	dst = vfio_dma_alloc(&self->c, PAGE, PAGE, NULL);
	cpl = vfio_dma_alloc(&self->c, 4 * sizeof(*cpl), 64, &cpl_iova);
	ASSERT_EQ(0, tern_vfq_init(&vq, &self->c, self->vf_regs[0], 0, 8));

	EXPECT_EQ(TERN_STS_INVALID_STATE,
		  tern_cmd_simple(&self->aq, TERN_OP_FREEZE, 0));
	EXPECT_EQ(TERN_STS_INVALID_STATE,
		  tern_cmd_simple(&self->aq, TERN_OP_RESUME, 0));
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_QUIESCE, 0));
	EXPECT_EQ(TERN_VF_STATE_QUIESCED,
		  vf_state(&self->aq, &self->c, 0, NULL));
	/* VF 1 is not affected. */
	EXPECT_EQ(TERN_VF_STATE_RUNNING,
		  vf_state(&self->aq, &self->c, 1, NULL));

	/* Quiesced: the doorbell is accepted, but no DMA happens. */
	ADD(&vq, 1, TERN_DESC_FILL, 0,
		     vfio_iova(&self->c, dst), 64, 0x5555555555555555ull,
		     cpl_iova, 1);
	EXPECT_EQ(1u, tern_q_reg(&vq, TERN_Q_TAIL));
	usleep(200000);
	EXPECT_EQ(0u, tern_vfq_head(&vq));
	EXPECT_EQ(0, dst[0]);
	EXPECT_EQ(TERN_DSTS_PENDING, cpl[0].status);
	/* ... and MMIO still works, device memory included. */
	mmio_write32(self->vf_regs[0], TERN_VF_REG_Q(0) + TERN_Q_MSIX, 1);
	EXPECT_EQ(1u, tern_q_reg(&vq, TERN_Q_MSIX));
	self->vf_mem[0][100] = 0xab;
	EXPECT_EQ(0xab, self->vf_mem[0][100]);

	/* Frozen: nothing changes. */
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_FREEZE, 0));
	EXPECT_EQ(TERN_VF_STATE_FROZEN, vf_state(&self->aq, &self->c, 0, NULL));
	mmio_write32(self->vf_regs[0], TERN_VF_REG_Q(0) + TERN_Q_MSIX, 3);
	EXPECT_EQ(1u, tern_q_reg(&vq, TERN_Q_MSIX));
	ADD(&vq, 1, TERN_DESC_NOP, 0, 0, 0, 0,
		     cpl_iova + 32, 2);
	EXPECT_EQ(1u, tern_q_reg(&vq, TERN_Q_TAIL));
	self->vf_mem[0][100] = 0xcd;
	v = self->vf_mem[0][100];
	EXPECT_EQ(0xab, v);
	usleep(100000);
	EXPECT_EQ(0, dst[0]);

	/* Quiesce thaws it: MMIO counts again, nothing runs yet. */
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_QUIESCE, 0));
	EXPECT_EQ(TERN_VF_STATE_QUIESCED,
		  vf_state(&self->aq, &self->c, 0, NULL));
	self->vf_mem[0][100] = 0xcd;
	v = self->vf_mem[0][100];
	EXPECT_EQ(0xcd, v);
	usleep(100000);
	EXPECT_EQ(0, dst[0]);

	/* Resume: the pending descriptor runs. */
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_RESUME, 0));
	vq.tail = 1;
	ASSERT_EQ(0, tern_vfq_wait_idle(&vq, TIMEOUT_MS));
	EXPECT_EQ(TERN_DSTS_SUCCESS, cpl[0].status);
	EXPECT_EQ(0x55, dst[63]);
	self->vf_mem[0][100] = 0xcd;
	EXPECT_EQ(0xcd, self->vf_mem[0][100]);
	/* Quiesce, resume straight from quiesced. */
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_QUIESCE, 0));
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_RESUME, 0));
	EXPECT_EQ(TERN_VF_STATE_RUNNING,
		  vf_state(&self->aq, &self->c, 0, NULL));
}

/*
 * Pre-copy on VF 0 (full image while running, then increments), the
 * final increment after freeze with descriptors still pending, and
 * restore into VF 1, which must continue exactly.
 */
TEST_F_TIMEOUT(dev, save_load, 600)
{
	size_t max = image_size(self->devmem_size / PAGE), sz0, sz1, sz2;
	uint8_t *img0, *img1, *img2, *src, *out;
	struct tern_image_hdr *h;
	struct tern_vfq vq;
	struct tern_desc_cpl *cpl;
	uint64_t cpl_iova, full, incr;
	struct vf_regs r0, r1;
	int has_base, applied, i;
	uint32_t *index;

	img0 = vfio_dma_alloc(&self->c, max, PAGE, NULL);
	img1 = vfio_dma_alloc(&self->c, max, PAGE, NULL);
	img2 = vfio_dma_alloc(&self->c, max, PAGE, NULL);
	src = vfio_dma_alloc(&self->c, 4 * PAGE, PAGE, NULL);
	out = vfio_dma_alloc(&self->c, 4 * PAGE, PAGE, NULL);
	cpl = vfio_dma_alloc(&self->c, 16 * sizeof(*cpl), 64, &cpl_iova);
	ASSERT_NE(NULL, cpl);
	memset(src, 0x3c, 4 * PAGE);

	ASSERT_EQ(0, tern_vfq_init(&vq, &self->c, self->vf_regs[0], 1, 16));
	for (i = 0; i < 3; i++)
		ADD(&vq, 1, TERN_DESC_TO_DEV,
			     vfio_iova(&self->c, src), i * 8 * PAGE, 100,
			     0, cpl_iova + i * 32, i);
	ASSERT_EQ(0, tern_vfq_wait_idle(&vq, TIMEOUT_MS));

	/* No increment without a base. */
	ASSERT_EQ(0, tern_query_size(&self->aq, 0, &full, &incr, &has_base));
	EXPECT_EQ(max, full);
	EXPECT_EQ(0, has_base);
	EXPECT_EQ(TERN_STS_NO_BASE, tern_save(&self->aq, &self->c, 0, 1, img1,
					      max, max, &sz1));

	/* Full image while running, read in uneven chunks. */
	ASSERT_EQ(0, tern_save(&self->aq, &self->c, 0, 0, img0, max,
			       1000 * 1000, &sz0));
	EXPECT_EQ(max, sz0);
	h = (void *)img0;
	EXPECT_EQ(TERN_IMAGE_MAGIC, le32toh(h->magic));
	EXPECT_EQ(TERN_IMAGE_FULL, le16toh(h->type));
	EXPECT_EQ(self->devmem_size / PAGE, le32toh(h->nr_pages));

	/* Nothing written since: an empty increment is pending. */
	ASSERT_EQ(0, tern_query_size(&self->aq, 0, &full, &incr, &has_base));
	EXPECT_EQ(1, has_base);
	EXPECT_EQ(image_size(0), incr);

	/* Dirty pages 5 (engine), 9 and 4095 (CPU through the BAR). */
	ADD(&vq, 1, TERN_DESC_TO_DEV,
		     vfio_iova(&self->c, src), 5 * PAGE + 10, 20, 0,
		     cpl_iova + 3 * 32, 3);
	ASSERT_EQ(0, tern_vfq_wait_idle(&vq, TIMEOUT_MS));
	self->vf_mem[0][9 * PAGE + 1] = 0x99;
	self->vf_mem[0][self->devmem_size - 1] = 0x77;
	ASSERT_EQ(0, tern_query_size(&self->aq, 0, &full, &incr, &has_base));
	EXPECT_EQ(image_size(3), incr);

	ASSERT_EQ(0, tern_save(&self->aq, &self->c, 0, 1, img1, max, 5000,
			       &sz1));
	EXPECT_EQ(image_size(3), sz1);
	h = (void *)img1;
	EXPECT_EQ(TERN_IMAGE_INCREMENTAL, le16toh(h->type));
	EXPECT_EQ(1u, le32toh(h->seq));
	EXPECT_EQ(((struct tern_image_hdr *)img0)->session, h->session);
	ASSERT_EQ(3u, le32toh(h->nr_pages));
	index = (uint32_t *)(img1 + le64toh(h->index_offset));
	EXPECT_EQ(5u, le32toh(index[0]));
	EXPECT_EQ(9u, le32toh(index[1]));
	EXPECT_EQ(self->devmem_size / PAGE - 1, le32toh(index[2]));
	EXPECT_EQ(0x99, img1[le64toh(h->data_offset) + PAGE + 1]);

	/* Stop: quiesce with work pending, freeze, final increment. */
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_QUIESCE, 0));
	ADD(&vq, 0, TERN_DESC_FROM_DEV,
		     5 * PAGE, vfio_iova(&self->c, out), 64, 0,
		     cpl_iova + 4 * 32, 4);
	ADD(&vq, 1, TERN_DESC_TO_DEV,
		     vfio_iova(&self->c, src), 2 * PAGE, 64, 0,
		     cpl_iova + 5 * 32, 5);
	self->vf_mem[0][12 * PAGE] = 0x12;
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_FREEZE, 0));
	ASSERT_EQ(0, tern_save(&self->aq, &self->c, 0, 1, img2, max, max,
			       &sz2));
	h = (void *)img2;
	EXPECT_EQ(2u, le32toh(h->seq));
	EXPECT_EQ(1u, le32toh(h->nr_pages));
	read_regs(self->vf_regs[0], &r0);
	EXPECT_EQ(4u, r0.q[1][TERN_Q_HEAD / 4]);
	EXPECT_EQ(6u, r0.q[1][TERN_Q_TAIL / 4]);

	/* Restore into VF 1. */
	ASSERT_EQ(TERN_STS_INVALID_STATE, tern_load(&self->aq, &self->c, 1,
						    img0, sz0, sz0, &applied));
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_QUIESCE, 1));
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_FREEZE, 1));
	ASSERT_EQ(0, tern_load(&self->aq, &self->c, 1, img0, sz0, 777777,
			       &applied));
	EXPECT_EQ(1, applied);
	ASSERT_EQ(0, tern_load(&self->aq, &self->c, 1, img1, sz1, 3000,
			       &applied));
	EXPECT_EQ(1, applied);
	ASSERT_EQ(0, tern_load(&self->aq, &self->c, 1, img2, sz2, sz2,
			       &applied));
	EXPECT_EQ(1, applied);

	read_regs(self->vf_regs[1], &r1);
	EXPECT_EQ(0, memcmp(&r0, &r1, sizeof(r0)));
	EXPECT_EQ(0, memcmp(self->vf_mem[0], self->vf_mem[1],
			    self->devmem_size));

	/* VF 1 continues where VF 0 stopped: the two pending descriptors. */
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_RESUME, 1));
	vq.regs = self->vf_regs[1];
	ASSERT_EQ(0, tern_vfq_wait_idle(&vq, TIMEOUT_MS));
	EXPECT_EQ(TERN_DSTS_SUCCESS, cpl[4].status);
	EXPECT_EQ(TERN_DSTS_SUCCESS, cpl[5].status);
	EXPECT_EQ(0, memcmp(out, self->vf_mem[1] + 5 * PAGE, 64));
	EXPECT_EQ(0x3c, out[10]);
	EXPECT_EQ(0x3c, self->vf_mem[1][2 * PAGE]);
	EXPECT_EQ(6u, mmio_read32(self->vf_regs[1], TERN_VF_REG_CNT_DESC_LO));
	EXPECT_EQ(6u, tern_q_reg(&vq, TERN_Q_CNT_DESC_LO));
	/* VF 0 stays frozen and did not run them. */
	EXPECT_EQ(4u, mmio_read32(self->vf_regs[0],
				  TERN_VF_REG_Q(1) + TERN_Q_HEAD));
	/* A loaded VF has no save base. */
	EXPECT_EQ(TERN_STS_NO_BASE, tern_save(&self->aq, &self->c, 1, 1, img1,
					      max, max, &sz1));
}

/*
 * VF 1 as the target of LOADs that must be refused: quiesced and frozen,
 * its device memory copied into @mem (devmem_size bytes) and its
 * registers into @regs, for the checks that a refused LOAD changed
 * nothing.
 */
static void freeze_target(struct __test_metadata *_metadata,
			  FIXTURE_DATA(dev) *self, uint8_t *mem,
			  struct vf_regs *regs)
{
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_QUIESCE, 1));
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_FREEZE, 1));
	memcpy(mem, self->vf_mem[1], self->devmem_size);
	read_regs(self->vf_regs[1], regs);
}

TEST_F_TIMEOUT(dev, bad_images, 600)
{
	size_t max = image_size(self->devmem_size / PAGE), sz0, sz1;
	uint8_t *img, *bad, *incr, *before;
	struct tern_image_hdr *h;
	struct vf_regs r_before, r_after;
	struct tern_aq_cmd cmd = { .opcode = TERN_OP_LOAD, .vf = htole16(1) };
	struct tern_aq_cpl cpl;
	struct tern_sg *sg;
	int applied;

	img = vfio_dma_alloc(&self->c, max, PAGE, NULL);
	bad = vfio_dma_alloc(&self->c, max, PAGE, NULL);
	incr = vfio_dma_alloc(&self->c, max, PAGE, NULL);
	before = malloc(self->devmem_size);
	ASSERT_NE(NULL, before);

	memset(self->vf_mem[0], 0x42, 3 * PAGE);
	ASSERT_EQ(0, tern_save(&self->aq, &self->c, 0, 0, img, max, max, &sz0));
	self->vf_mem[0][PAGE] = 1;
	ASSERT_EQ(0, tern_save(&self->aq, &self->c, 0, 1, incr, max, max,
			       &sz1));

	memset(self->vf_mem[1], 0xee, 2 * PAGE);
	freeze_target(_metadata, self, before, &r_before);

#define TRY(expect, mutate, fix) do {					\
		memcpy(bad, img, sz0);					\
		h = (void *)bad;					\
		mutate;							\
		if (fix)						\
			fix_crc(bad, sz0);				\
		EXPECT_EQ(expect, tern_load(&self->aq, &self->c, 1, bad, \
					    sz0, 100000, &applied));	\
		EXPECT_EQ(0, applied);					\
	} while (0)

	(void)h;
	/* An increment before any full image: out of sequence. */
	EXPECT_EQ(TERN_STS_IMG_SEQUENCE, tern_load(&self->aq, &self->c, 1,
						   incr, sz1, sz1, &applied));
	TRY(TERN_STS_IMG_MAGIC, h->magic ^= 1, 1);
	TRY(TERN_STS_IMG_VERSION, h->version = htole16(2), 1);
	TRY(TERN_STS_IMG_CONFIG, h->devmem_size = htole64(self->devmem_size * 2),
	    1);
	TRY(TERN_STS_IMG_CONFIG, h->nr_queues = htole16(8), 1);
	TRY(TERN_STS_IMG_SIZE, h->total_size = htole64(sz0 - PAGE), 1);
	TRY(TERN_STS_IMG_SIZE, h->data_offset = htole64(8), 1);
	TRY(TERN_STS_IMG_CHECKSUM, bad[sz0 - 5] ^= 0x10, 0);
	TRY(TERN_STS_IMG_CHECKSUM, bad[TERN_IMAGE_HDR_SIZE + 8] ^= 1, 0);
	/* Consistent CRC, inconsistent contents: */
	TRY(TERN_STS_IMG_CORRUPT,
	    ((uint32_t *)(bad + le64toh(h->index_offset)))[3] = htole32(2), 1);
	TRY(TERN_STS_IMG_CORRUPT,
	    ((struct tern_image_regs *)(bad + TERN_IMAGE_HDR_SIZE))->q[0].msix =
		htole32(9), 1);
	TRY(TERN_STS_IMG_CORRUPT, h->type = htole16(7), 1);
	TRY(TERN_STS_IMG_SEQUENCE, h->seq = htole32(3), 1);

	/* Chunks out of order: */
	sg = vfio_dma_alloc(&self->c, sizeof(*sg), 64, NULL);
	ASSERT_NE(NULL, sg);
	sg->addr = htole64(vfio_iova(&self->c, img));
	sg->len = htole32(1000);
	cmd.flags = TERN_LOAD_F_START;
	cmd.xfer.sg_addr = htole64(vfio_iova(&self->c, sg));
	cmd.xfer.sg_count = htole32(1);
	EXPECT_EQ(0, tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
	EXPECT_EQ(1000u, le64toh(cpl.result0));
	EXPECT_EQ(sz0, le64toh(cpl.result1));
	cmd.flags = 0;
	cmd.xfer.offset = htole64(2000);
	EXPECT_EQ(TERN_STS_INVALID_OFFSET,
		  tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
	cmd.xfer.sg_count = htole32(0);
	cmd.xfer.offset = htole64(1000);
	EXPECT_EQ(TERN_STS_INVALID_FIELD,
		  tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
	cmd.xfer.sg_count = htole32(TERN_MAX_SG_ENTRIES + 1);
	EXPECT_EQ(TERN_STS_INVALID_FIELD,
		  tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));

	/* The VF is unchanged by all of it. */
	read_regs(self->vf_regs[1], &r_after);
	EXPECT_EQ(0, memcmp(&r_before, &r_after, sizeof(r_before)));
	EXPECT_EQ(0, memcmp(before, self->vf_mem[1], self->devmem_size));

	/* The genuine images still load, in order, but not twice. */
	ASSERT_EQ(0, tern_load(&self->aq, &self->c, 1, img, sz0, sz0,
			       &applied));
	ASSERT_EQ(0, tern_load(&self->aq, &self->c, 1, incr, sz1, sz1,
			       &applied));
	EXPECT_EQ(1, applied);
	EXPECT_EQ(TERN_STS_IMG_SEQUENCE, tern_load(&self->aq, &self->c, 1,
						   incr, sz1, sz1, &applied));
	EXPECT_EQ(1, self->vf_mem[1][PAGE]);
	EXPECT_EQ(0x42, self->vf_mem[1][2 * PAGE]);
	EXPECT_EQ(0, self->vf_mem[1][3 * PAGE]);
	free(before);
#undef TRY
}

static int dirty_has(struct tern_range *runs, uint32_t nr, uint64_t iova,
		     uint64_t len)
{
	uint32_t i;

	for (i = 0; i < nr; i++)
		if (runs[i].iova == iova && runs[i].len == len)
			return 1;
	return 0;
}

/*
 * A SAVE or LOAD of VF vf over [buf, buf + len) in three SG entries, so
 * that a chunk's CRC spans entries.  len >= 3.
 */
static void xfer_cmd3(struct vfio_container *c, struct tern_aq_cmd *cmd,
		      struct tern_sg *sg, uint8_t op, uint16_t vf,
		      uint8_t flags, uint64_t off, const void *buf,
		      uint32_t len)
{
	uint32_t a = len / 3, b = len / 2;
	const uint8_t *p = buf;

	sg[0] = (struct tern_sg){ .addr = htole64(vfio_iova(c, p)),
				  .len = htole32(a) };
	sg[1] = (struct tern_sg){ .addr = htole64(vfio_iova(c, p + a)),
				  .len = htole32(b - a) };
	sg[2] = (struct tern_sg){ .addr = htole64(vfio_iova(c, p + b)),
				  .len = htole32(len - b) };
	*cmd = (struct tern_aq_cmd){ .opcode = op, .flags = flags,
				     .vf = htole16(vf) };
	cmd->xfer.offset = htole64(off);
	cmd->xfer.sg_addr = htole64(vfio_iova(c, sg));
	cmd->xfer.sg_count = htole32(3);
}

static uint32_t std_crc32c(const void *buf, size_t len)
{
	return tern_crc32c(~0u, buf, len) ^ ~0u;
}

/* Interface 1.1: every SAVE returns the CRC32C of the bytes it wrote. */
TEST_F_TIMEOUT(dev, save_crc, 600)
{
	size_t max = image_size(self->devmem_size / PAGE), off = 0;
	struct tern_sg *sg = vfio_dma_alloc(&self->c, 4 * sizeof(*sg), 64,
					    NULL);
	uint8_t *img = vfio_dma_alloc(&self->c, max, PAGE, NULL);
	struct tern_aq_cmd cmd;
	struct tern_aq_cpl cpl;
	uint64_t i;
	int chunks = 0;

	ASSERT_NE(NULL, sg);
	ASSERT_NE(NULL, img);
	ASSERT_TRUE(mmio_read32(self->aq.regs, TERN_PF_REG_DEV_CAP) &
		    TERN_DEV_CAP_XFER_CRC);
	for (i = 0; i < self->devmem_size; i += PAGE)
		self->vf_mem[0][i + (i / PAGE) % 97] = i / PAGE * 7 + 1;

	/* Uneven chunks, the last one short. */
	for (;;) {
		uint32_t len = max - off < 100003 ? max - off : 100003;
		uint32_t bytes;

		memset(img + off, 0xa5, len);
		xfer_cmd3(&self->c, &cmd, sg, TERN_OP_SAVE, 0,
			  off ? 0 : TERN_SAVE_F_START, off, img + off, len);
		ASSERT_EQ(0, tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
		bytes = TERN_XFER_BYTES(le64toh(cpl.result0));
		ASSERT_LT(0u, bytes);
		ASSERT_GE(len, bytes);
		EXPECT_EQ(std_crc32c(img + off, bytes),
			  TERN_XFER_CRC(le64toh(cpl.result0)));
		off += bytes;
		chunks++;
		if (!(le32toh(cpl.result2) & TERN_XFER_MORE))
			break;
	}
	EXPECT_EQ(max, off);
	EXPECT_LT(1, chunks);
	/* The image the CRCs describe is the VF's. */
	EXPECT_EQ(0, memcmp(self->vf_mem[0], img + off - self->devmem_size,
			    self->devmem_size));
	/* A wrong CRC would be noticed: it is not a constant. */
	xfer_cmd3(&self->c, &cmd, sg, TERN_OP_SAVE, 0, 0, 0, img, 4096);
	ASSERT_EQ(0, tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
	EXPECT_EQ(std_crc32c(img, 4096), TERN_XFER_CRC(le64toh(cpl.result0)));
	EXPECT_NE(TERN_XFER_CRC(le64toh(cpl.result0)),
		  std_crc32c(img + 4096, 4096));
}

static uint16_t vf_flags(struct __test_metadata *_metadata,
			 FIXTURE_DATA(dev) *self, uint16_t vf)
{
	struct tern_identify id;

	EXPECT_EQ(TERN_STS_SUCCESS,
		  tern_identify(&self->aq, &self->c, vf, &id));
	return le16toh(id.vf_flags);
}

/*
 * LOAD with TERN_LOAD_F_CRC: a chunk whose bytes or CRC are wrong is
 * refused with DATA_CRC before the device takes any of it; the VF and
 * the load staged so far are as they were.
 */
TEST_F_TIMEOUT(dev, load_crc, 600)
{
	size_t max = image_size(self->devmem_size / PAGE), sz, off;
	struct tern_sg *sg = vfio_dma_alloc(&self->c, 4 * sizeof(*sg), 64,
					    NULL);
	uint8_t *img = vfio_dma_alloc(&self->c, max, PAGE, NULL);
	uint8_t *before = malloc(self->devmem_size);
	struct vf_regs r_before, r_after;
	const uint32_t chunk = 300007;
	struct tern_aq_cmd cmd;
	struct tern_aq_cpl cpl;
	uint32_t crc;
	uint64_t i;

	ASSERT_NE(NULL, sg);
	ASSERT_NE(NULL, img);
	ASSERT_NE(NULL, before);
	for (i = 0; i < self->devmem_size; i += PAGE)
		self->vf_mem[0][i + 13] = i / PAGE * 3 + 5;
	ASSERT_EQ(0, tern_save(&self->aq, &self->c, 0, 0, img, max, max, &sz));
	ASSERT_EQ(max, sz);
	ASSERT_LT(2 * chunk, sz);

	memset(self->vf_mem[1], 0x77, self->devmem_size);
	freeze_target(_metadata, self, before, &r_before);

	/* A first chunk with a flipped byte, then with a wrong CRC. */
	crc = std_crc32c(img, chunk);
	img[chunk / 2] ^= 0x01;
	xfer_cmd3(&self->c, &cmd, sg, TERN_OP_LOAD,
		  1, TERN_LOAD_F_START | TERN_LOAD_F_CRC, 0, img, chunk);
	cmd.xfer.crc = htole32(crc);
	EXPECT_EQ(TERN_STS_DATA_CRC,
		  tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
	img[chunk / 2] ^= 0x01;
	cmd.xfer.crc = htole32(crc ^ 0x80000000u);
	EXPECT_EQ(TERN_STS_DATA_CRC,
		  tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
	EXPECT_EQ(0, vf_flags(_metadata, self, 1) & TERN_VF_F_LOADING);

	/* The right CRC: the chunk is taken. */
	cmd.xfer.crc = htole32(crc);
	ASSERT_EQ(0, tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
	EXPECT_EQ(chunk, TERN_XFER_BYTES(le64toh(cpl.result0)));
	EXPECT_TRUE(le32toh(cpl.result2) & TERN_XFER_MORE);
	off = chunk;

	/* Bad next chunks, even a bad new START, leave the staged load. */
	crc = std_crc32c(img + off, chunk);
	xfer_cmd3(&self->c, &cmd, sg, TERN_OP_LOAD, 1, TERN_LOAD_F_CRC, off,
		  img + off, chunk);
	cmd.xfer.crc = htole32(crc ^ 1);
	EXPECT_EQ(TERN_STS_DATA_CRC,
		  tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
	img[off + chunk - 1] ^= 0x40;
	cmd.xfer.crc = htole32(crc);
	EXPECT_EQ(TERN_STS_DATA_CRC,
		  tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
	img[off + chunk - 1] ^= 0x40;
	xfer_cmd3(&self->c, &cmd, sg, TERN_OP_LOAD, 1,
		  TERN_LOAD_F_START | TERN_LOAD_F_CRC, 0, img + off, chunk);
	cmd.xfer.crc = htole32(crc ^ 1);
	EXPECT_EQ(TERN_STS_DATA_CRC,
		  tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
	EXPECT_TRUE(vf_flags(_metadata, self, 1) & TERN_VF_F_LOADING);
	read_regs(self->vf_regs[1], &r_after);
	EXPECT_EQ(0, memcmp(&r_before, &r_after, sizeof(r_before)));
	EXPECT_EQ(0, memcmp(before, self->vf_mem[1], self->devmem_size));

	/* The rest, each chunk with its CRC: the image applies. */
	while (off < sz) {
		uint32_t len = sz - off < chunk ? sz - off : chunk;

		xfer_cmd3(&self->c, &cmd, sg, TERN_OP_LOAD, 1, TERN_LOAD_F_CRC,
			  off, img + off, len);
		cmd.xfer.crc = htole32(std_crc32c(img + off, len));
		ASSERT_EQ(0, tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
		ASSERT_EQ(len, TERN_XFER_BYTES(le64toh(cpl.result0)));
		off += len;
	}
	EXPECT_TRUE(le32toh(cpl.result2) & TERN_LOAD_APPLIED);
	EXPECT_EQ(0, memcmp(self->vf_mem[0], self->vf_mem[1],
			    self->devmem_size));
	free(before);
}

/* The device takes as many SG entries per command as it advertises. */
TEST_F_TIMEOUT(dev, max_sg, 120)
{
	struct tern_sg *sg = vfio_dma_alloc(&self->c, (TERN_MAX_SG_ENTRIES + 1) *
					    sizeof(*sg), 64, NULL);
	uint8_t *buf = vfio_dma_alloc(&self->c, 2 * (TERN_MAX_SG_ENTRIES + 1),
				      PAGE, NULL);
	struct tern_identify id;
	struct tern_aq_cmd cmd;
	struct tern_aq_cpl cpl;
	uint32_t i, max;

	ASSERT_NE(NULL, sg);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_identify(&self->aq, &self->c, TERN_VF_NONE, &id));
	max = le16toh(id.max_sg_entries);
	ASSERT_LE(1u, max);
	ASSERT_GE(TERN_MAX_SG_ENTRIES, max);
	TH_LOG("max_sg_entries %u", max);
	/* Entries of 2 bytes, every other one skipped: none merge. */
	for (i = 0; i <= max; i++)
		sg[i] = (struct tern_sg){
			.addr = htole64(vfio_iova(&self->c, buf + 2 * i)),
			.len = htole32(1) };
	cmd = (struct tern_aq_cmd){ .opcode = TERN_OP_SAVE,
				    .flags = TERN_SAVE_F_START };
	cmd.xfer.sg_addr = htole64(vfio_iova(&self->c, sg));
	cmd.xfer.sg_count = htole32(max + 1);
	EXPECT_EQ(TERN_STS_INVALID_FIELD,
		  tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
	/* LOAD checks the VF's state first: freeze it. */
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_QUIESCE, 0));
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_FREEZE, 0));
	cmd.opcode = TERN_OP_LOAD;
	cmd.flags = TERN_LOAD_F_START;
	EXPECT_EQ(TERN_STS_INVALID_FIELD,
		  tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
	cmd.opcode = TERN_OP_SAVE;
	cmd.flags = TERN_SAVE_F_START;
	cmd.xfer.sg_count = htole32(max);
	ASSERT_EQ(0, tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
	EXPECT_EQ(max, TERN_XFER_BYTES(le64toh(cpl.result0)));
}

TEST_F_TIMEOUT(dev, dirty, 120)
{
	struct tern_vfq vq;
	struct tern_range ranges[2], runs[64];
	uint8_t *a, *b, *untracked, *src;
	uint64_t a_iova, b_iova, u_iova, pages;
	uint32_t nr, total_runs = 0, rounds = 0;
	uint64_t total_pages = 0;
	uint16_t flags;
	int more, i;

	/* untracked < a < b: b's 1 TiB range covers what follows it */
	untracked = vfio_dma_alloc(&self->c, 16 * PAGE, PAGE, &u_iova);
	a = vfio_dma_alloc(&self->c, 64 * PAGE, 2 << 20, &a_iova);
	b = vfio_dma_alloc(&self->c, 256 * PAGE, PAGE, &b_iova);
	src = vfio_dma_alloc(&self->c, 2 * PAGE, PAGE, NULL);
	ASSERT_NE(NULL, src);
	(void)a; (void)b; (void)untracked;
	ASSERT_EQ(0, tern_vfq_init(&vq, &self->c, self->vf_regs[0], 0, 256));

	/* Bad arguments. */
	ranges[0] = (struct tern_range){ a_iova, 64 * PAGE };
	ranges[1] = (struct tern_range){ a_iova + PAGE, PAGE };
	EXPECT_EQ(TERN_STS_INVALID_FIELD, tern_dirty_start(&self->aq, &self->c,
				0, ranges, 2, 12));	/* overlap */
	EXPECT_EQ(TERN_STS_INVALID_FIELD, tern_dirty_start(&self->aq, &self->c,
				0, ranges, 1, 11));
	EXPECT_EQ(TERN_STS_INVALID_FIELD, tern_dirty_start(&self->aq, &self->c,
				0, ranges, 1, 22));
	EXPECT_EQ(TERN_STS_INVALID_FIELD, tern_dirty_start(&self->aq, &self->c,
				0, ranges, 0, 12));
	EXPECT_EQ(TERN_STS_INVALID_FIELD, tern_dirty_start(&self->aq, &self->c,
				0, ranges, TERN_DIRTY_MAX_RANGES + 1, 12));
	EXPECT_EQ(TERN_STS_INVALID_STATE, tern_dirty_report(&self->aq,
				&self->c, 0, a_iova, PAGE, runs, 1, &nr,
				&pages, &more));
	EXPECT_EQ(TERN_STS_INVALID_STATE,
		  tern_cmd_simple(&self->aq, TERN_OP_DIRTY_STOP, 0));

	/* Range a, and a 1 TiB range that starts at b. */
	ranges[1] = (struct tern_range){ b_iova, 1ull << 40 };
	ranges[0] = (struct tern_range){ a_iova, 64 * PAGE };
	ASSERT_EQ(TERN_STS_SUCCESS, tern_dirty_start(&self->aq, &self->c, 0,
						     ranges, 2, 12));
	EXPECT_EQ(TERN_STS_BUSY, tern_dirty_start(&self->aq, &self->c, 0,
						  ranges, 2, 12));
	vf_state(&self->aq, &self->c, 0, &flags);
	EXPECT_TRUE(flags & TERN_VF_F_TRACKING);

	/* Pages 3..5 of a (fill), 1 of b (memcpy, 2 bytes crossing into
	 * 2), nothing for reads (crc of a) or devmem writes. */
	ADD(&vq, 0, TERN_DESC_FILL, 0,
		     a_iova + 3 * PAGE + 100, 3 * PAGE - 200, 1, 0, 0);
	ADD(&vq, 0, TERN_DESC_MEMCPY,
		     vfio_iova(&self->c, src), b_iova + 2 * PAGE - 1, 2,
		     0, 0, 0);
	ADD(&vq, 0, TERN_DESC_CRC32C, a_iova,
		     0, 64 * PAGE, 0, 0, 0);
	ADD(&vq, 0, TERN_DESC_TO_DEV, a_iova,
		     0, PAGE, 0, 0, 0);
	/* completion records count as DMA writes: page 9 of b */
	ADD(&vq, 0, TERN_DESC_NOP, 0, 0, 0, 0,
		     b_iova + 9 * PAGE + 64, 0);
	/* untracked memory: never reported */
	ADD(&vq, 1, TERN_DESC_FILL, 0, u_iova,
		     PAGE, 0, u_iova + PAGE, 0);
	ASSERT_EQ(0, tern_vfq_wait_idle(&vq, TIMEOUT_MS));

	ASSERT_EQ(0, tern_dirty_report(&self->aq, &self->c, 0, a_iova,
				       64 * PAGE, runs, 64, &nr, &pages,
				       &more));
	EXPECT_EQ(1u, nr);
	EXPECT_EQ(3u, pages);
	EXPECT_EQ(0, more);
	EXPECT_TRUE(dirty_has(runs, nr, a_iova + 3 * PAGE, 3 * PAGE));
	/* Read and clear: nothing left there. */
	ASSERT_EQ(0, tern_dirty_report(&self->aq, &self->c, 0, a_iova,
				       64 * PAGE, runs, 64, &nr, &pages,
				       &more));
	EXPECT_EQ(0u, nr);

	/* The 1 TiB range reports two runs: 32 bytes of output. */
	ASSERT_EQ(0, tern_dirty_report(&self->aq, &self->c, 0, b_iova,
				       1ull << 40, runs, 64, &nr, &pages,
				       &more));
	EXPECT_EQ(2u, nr);
	EXPECT_EQ(3u, pages);
	EXPECT_TRUE(dirty_has(runs, nr, b_iova + PAGE, 2 * PAGE));
	EXPECT_TRUE(dirty_has(runs, nr, b_iova + 9 * PAGE, PAGE));
	/* Untracked memory was never recorded. */
	ASSERT_EQ(0, tern_dirty_report(&self->aq, &self->c, 0, u_iova,
				       16 * PAGE, runs, 64, &nr, &pages,
				       &more));
	EXPECT_EQ(0u, nr);

	/* 100 scattered pages; a 16-entry buffer is enough, in turns. */
	for (i = 0; i < 100; i++) {
		ADD(&vq, i == 99, TERN_DESC_FILL, 0,
		    b_iova + (16 + 2 * i) * PAGE, 8, 0, 0, 0);
	}
	ASSERT_EQ(0, tern_vfq_wait_idle(&vq, TIMEOUT_MS));
	do {
		ASSERT_EQ(0, tern_dirty_report(&self->aq, &self->c, 0, b_iova,
					       1ull << 40, runs, 16, &nr,
					       &pages, &more));
		ASSERT_LE(nr, 16u);
		for (i = 0; i < (int)nr; i++) {
			EXPECT_EQ(b_iova + (16 + 2 * (total_runs + i)) * PAGE,
				  runs[i].iova);
		}
		total_runs += nr;
		total_pages += pages;
		rounds++;
	} while (more && rounds < 20);
	EXPECT_EQ(100u, total_runs);
	EXPECT_EQ(100u, total_pages);
	EXPECT_EQ(7u, rounds);
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_DIRTY_STOP, 0));

	/* 2 MiB pages: one byte dirties its whole 2 MiB page. */
	ranges[0] = (struct tern_range){ a_iova, 2 << 20 };
	ASSERT_EQ(TERN_STS_SUCCESS, tern_dirty_start(&self->aq, &self->c, 0,
						     ranges, 1, 21));
	ADD(&vq, 1, TERN_DESC_FILL, 0,
		     a_iova + 5 * PAGE, 1, 0, 0, 0);
	ASSERT_EQ(0, tern_vfq_wait_idle(&vq, TIMEOUT_MS));
	EXPECT_EQ(TERN_STS_INVALID_FIELD, tern_dirty_report(&self->aq,
			&self->c, 0, a_iova, PAGE, runs, 64, &nr, &pages,
			&more));
	ASSERT_EQ(0, tern_dirty_report(&self->aq, &self->c, 0, a_iova,
				       2 << 20, runs, 64, &nr, &pages, &more));
	EXPECT_EQ(1u, nr);
	EXPECT_TRUE(dirty_has(runs, nr, a_iova, 2 << 20));
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_DIRTY_STOP, 0));
	EXPECT_EQ(TERN_STS_INVALID_STATE, tern_dirty_report(&self->aq,
			&self->c, 0, a_iova, 2 << 20, runs, 64, &nr, &pages,
			&more));
}

/* 48 commands in flight at once; completions come back out of order. */
TEST_F_TIMEOUT(dev, inflight, 120)
{
	struct tern_aq_cmd cmd;
	struct tern_aq_cpl cpl;
	uint64_t iova;
	void *buf = vfio_dma_alloc(&self->c, PAGE, PAGE, &iova);
	int seen[48] = { 0 };
	int i, first = -1, ooo = 0, prev = -1;
	uint16_t base = self->aq.next_tag;

	for (i = 0; i < 48; i++) {
		memset(&cmd, 0, sizeof(cmd));
		if (i < 8) {
			/* slow and failing: LOAD into a running VF */
			cmd.opcode = TERN_OP_LOAD;
			cmd.vf = htole16(i % NUM_VFS);
		} else {
			cmd.opcode = TERN_OP_IDENTIFY;
			cmd.vf = htole16(TERN_VF_NONE);
			cmd.identify.addr = htole64(iova);
			cmd.identify.len = htole32(PAGE);
		}
		ASSERT_EQ((uint16_t)(base + i), tern_aq_post(&self->aq, &cmd));
	}
	tern_aq_ring(&self->aq);
	for (i = 0; i < 48; i++) {
		int t;

		ASSERT_EQ(0, tern_aq_reap(&self->aq, &cpl, TIMEOUT_MS));
		t = (uint16_t)(le16toh(cpl.tag) - base);
		ASSERT_LT(t, 48);
		EXPECT_EQ(0, seen[t]);
		seen[t] = 1;
		if (first < 0) {
			first = t;
			/* everything was fetched before the first completion */
			EXPECT_EQ(self->aq.tail, le16toh(cpl.cmd_head));
		}
		if (t < prev)
			ooo++;
		prev = t;
		EXPECT_EQ(t < 8 ? TERN_STS_INVALID_STATE : TERN_STS_SUCCESS,
			  le16toh(cpl.status));
	}
	EXPECT_LE(8, first);
	EXPECT_LT(0, ooo);
	EXPECT_EQ(0u, mmio_read32(self->aq.regs, TERN_PF_REG_AQ_INFLIGHT));
	(void)buf;
}

TEST_F_TIMEOUT(dev, aq_errors, 120)
{
	void *r = self->aq.regs;

	/* Bad doorbell: ignored, sticky error. */
	mmio_write32(r, TERN_PF_REG_AQ_CMD_TAIL, 4096);
	EXPECT_TRUE(mmio_read32(r, TERN_PF_REG_STATUS) & TERN_PF_STS_DB_ERROR);
	EXPECT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_QUERY_SIZE, 0));
	/* Bad ring size: the queue does not start. */
	mmio_write32(r, TERN_PF_REG_CTRL, 0);
	mmio_write32(r, TERN_PF_REG_AQ_CMD_SIZE, 1);
	mmio_write32(r, TERN_PF_REG_CTRL, TERN_PF_CTRL_ENABLE);
	EXPECT_EQ(TERN_PF_STS_HALTED | TERN_AQ_ERR_CONFIG << 8,
		  mmio_read32(r, TERN_PF_REG_STATUS));
	/* Unreachable command ring: halts on fetch. */
	mmio_write32(r, TERN_PF_REG_CTRL, 0);
	mmio_write32(r, TERN_PF_REG_AQ_CMD_SIZE, 8);
	mmio_write64lh(r, TERN_PF_REG_AQ_CMD_BASE_LO, 0x7000000000ull);
	mmio_write32(r, TERN_PF_REG_CTRL, TERN_PF_CTRL_ENABLE);
	EXPECT_EQ(TERN_PF_STS_READY, mmio_read32(r, TERN_PF_REG_STATUS));
	mmio_write32(r, TERN_PF_REG_AQ_CMD_TAIL, 1);
	usleep(100000);
	EXPECT_EQ(TERN_PF_STS_HALTED | TERN_AQ_ERR_CMD_DMA << 8,
		  mmio_read32(r, TERN_PF_REG_STATUS));
	/* A fresh queue works again. */
	ASSERT_EQ(0, tern_aq_init(&self->aq, &self->c, r, 64));
	EXPECT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_QUERY_SIZE, 1));
}

/*
 * VF FLR resets functional state and suspension, but not dirty tracking,
 * which is the PF's migration state; a PF function reset ends it.
 */
TEST_F_TIMEOUT(dev, vf_flr, 120)
{
	struct tern_vfq vq;
	struct tern_range r, runs[4];
	uint64_t iova, pages;
	uint32_t nr;
	uint16_t flags;
	int more;

	ASSERT_NE(NULL, vfio_dma_alloc(&self->c, 16 * PAGE, PAGE, &iova));
	r = (struct tern_range){ iova, 16 * PAGE };
	ASSERT_EQ(0, tern_vfq_init(&vq, &self->c, self->vf_regs[1], 0, 8));
	self->vf_mem[1][0] = 5;
	ASSERT_EQ(TERN_STS_SUCCESS, tern_dirty_start(&self->aq, &self->c, 1,
						     &r, 1, 12));
	ADD(&vq, 1, TERN_DESC_FILL, 0, iova + 2 * PAGE, 8, 0, 0, 0);
	ASSERT_EQ(0, tern_vfq_wait_idle(&vq, TIMEOUT_MS));
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_QUIESCE, 1));
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_FREEZE, 1));
	ASSERT_EQ(0, vfio_reset(&self->vf[1]));
	EXPECT_EQ(TERN_VF_STATE_RUNNING,
		  vf_state(&self->aq, &self->c, 1, &flags));
	EXPECT_EQ(TERN_VF_F_TRACKING, flags);
	EXPECT_EQ(0u, tern_q_reg(&vq, TERN_Q_STATUS));
	EXPECT_EQ(0u, tern_q_reg(&vq, TERN_Q_SIZE));
	EXPECT_EQ(0, self->vf_mem[1][0]);
	set_master(&self->vf[1]);

	/* The page written before the FLR is still there ... */
	ASSERT_EQ(0, tern_dirty_report(&self->aq, &self->c, 1, iova, 16 * PAGE,
				       runs, 4, &nr, &pages, &more));
	ASSERT_EQ(1u, nr);
	EXPECT_TRUE(dirty_has(runs, nr, iova + 2 * PAGE, PAGE));
	/* ... and tracking goes on. */
	ASSERT_EQ(0, tern_vfq_enable(&vq, self->vf_regs[1]));
	ADD(&vq, 1, TERN_DESC_FILL, 0, iova + 5 * PAGE, 8, 0, 0, 0);
	ASSERT_EQ(0, tern_vfq_wait_idle(&vq, TIMEOUT_MS));
	ASSERT_EQ(0, tern_dirty_report(&self->aq, &self->c, 1, iova, 16 * PAGE,
				       runs, 4, &nr, &pages, &more));
	ASSERT_EQ(1u, nr);
	EXPECT_TRUE(dirty_has(runs, nr, iova + 5 * PAGE, PAGE));

	/* A PF function reset ends it. */
	mmio_write32(self->aq.regs, TERN_PF_REG_CTRL, TERN_PF_CTRL_RESET);
	ASSERT_EQ(0, tern_aq_init(&self->aq, &self->c, self->aq.regs, 64));
	vf_state(&self->aq, &self->c, 1, &flags);
	EXPECT_EQ(0, flags);
}

/*
 * Interface 1.2: QUERY_SIZE (and IDENTIFY's vf_flags) report NEW_CONFIG
 * from the moment a queue's BASE, SIZE or MSIX takes a new value while
 * the VF has a save base until the next FULL image, a load or a reset.
 */
TEST_F_TIMEOUT(dev, new_config, 600)
{
	size_t max = image_size(self->devmem_size / PAGE), sz;
	unsigned int q = TERN_VF_REG_Q(3);
	void *regs = self->vf_regs[0];
	uint64_t ring;
	uint16_t vflags = 0;
	uint32_t flags;
	uint8_t *img;

	ASSERT_TRUE(mmio_read32(self->aq.regs, TERN_PF_REG_DEV_CAP) &
		    TERN_DEV_CAP_NEW_CONFIG);
	img = vfio_dma_alloc(&self->c, max, PAGE, NULL);
	ASSERT_NE(NULL, img);
	ASSERT_NE(NULL, vfio_dma_alloc(&self->c, PAGE, PAGE, &ring));

	/* Without a save base a change is no news. */
	mmio_write64lh(regs, q + TERN_Q_BASE_LO, ring);
	mmio_write32(regs, q + TERN_Q_SIZE, 32);
	ASSERT_EQ(0, tern_query_flags(&self->aq, 0, &flags));
	EXPECT_EQ(0u, flags);

	ASSERT_EQ(0, tern_save(&self->aq, &self->c, 0, 0, img, max, max, &sz));
	ASSERT_EQ(0, tern_query_flags(&self->aq, 0, &flags));
	EXPECT_EQ(TERN_QUERY_HAS_BASE, flags);
	/* The same values, a doorbell, CTRL and device memory: no change. */
	mmio_write64lh(regs, q + TERN_Q_BASE_LO, ring);
	mmio_write32(regs, q + TERN_Q_SIZE, 32);
	mmio_write32(regs, q + TERN_Q_CTRL, TERN_Q_CTRL_ENABLE);
	mmio_write32(regs, q + TERN_Q_TAIL, 0);
	/* Ignored: the queue is enabled. */
	mmio_write32(regs, q + TERN_Q_SIZE, 64);
	mmio_write32(regs, q + TERN_Q_CTRL, 0);
	self->vf_mem[0][PAGE] = 0x42;
	ASSERT_EQ(0, tern_query_flags(&self->aq, 0, &flags));
	EXPECT_EQ(TERN_QUERY_HAS_BASE, flags);
	EXPECT_EQ(32u, mmio_read32(regs, q + TERN_Q_SIZE));

	/* A new size: news until the next FULL image, not an increment. */
	mmio_write32(regs, q + TERN_Q_SIZE, 64);
	ASSERT_EQ(0, tern_query_flags(&self->aq, 0, &flags));
	EXPECT_EQ(TERN_QUERY_HAS_BASE | TERN_QUERY_NEW_CONFIG, flags);
	vf_state(&self->aq, &self->c, 0, &vflags);
	EXPECT_TRUE(vflags & TERN_VF_F_NEW_CONFIG);
	ASSERT_EQ(0, tern_save(&self->aq, &self->c, 0, 1, img, max, max, &sz));
	ASSERT_EQ(0, tern_query_flags(&self->aq, 0, &flags));
	EXPECT_EQ(TERN_QUERY_HAS_BASE | TERN_QUERY_NEW_CONFIG, flags);
	ASSERT_EQ(0, tern_save(&self->aq, &self->c, 0, 0, img, max, max, &sz));
	ASSERT_EQ(0, tern_query_flags(&self->aq, 0, &flags));
	EXPECT_EQ(TERN_QUERY_HAS_BASE, flags);
	vf_state(&self->aq, &self->c, 0, &vflags);
	EXPECT_FALSE(vflags & TERN_VF_F_NEW_CONFIG);

	/* The base address and the vector too; a VF reset clears. */
	mmio_write32(regs, q + TERN_Q_BASE_HI,
		     mmio_read32(regs, q + TERN_Q_BASE_HI) ^ 1);
	ASSERT_EQ(0, tern_query_flags(&self->aq, 0, &flags));
	EXPECT_TRUE(flags & TERN_QUERY_NEW_CONFIG);
	ASSERT_EQ(0, tern_save(&self->aq, &self->c, 0, 0, img, max, max, &sz));
	mmio_write32(regs, q + TERN_Q_MSIX, 2);
	ASSERT_EQ(0, tern_query_flags(&self->aq, 0, &flags));
	EXPECT_TRUE(flags & TERN_QUERY_NEW_CONFIG);
	ASSERT_EQ(0, vfio_reset(&self->vf[0]));
	set_master(&self->vf[0]);
	ASSERT_EQ(0, tern_query_flags(&self->aq, 0, &flags));
	EXPECT_EQ(0u, flags);
}

/*
 * A report starts where its range starts, also inside a run, and clears
 * only what it returned; a report that filled its buffer can be
 * continued from the end of the last run it returned.
 */
TEST_F_TIMEOUT(dev, dirty_seek, 120)
{
	struct tern_vfq vq;
	struct tern_range r, runs[16];
	uint64_t iova, pages, from, total_pages = 0;
	uint32_t nr, total_runs = 0, rounds = 0;
	int more, i;

	ASSERT_NE(NULL, vfio_dma_alloc(&self->c, 256 * PAGE, PAGE, &iova));
	r = (struct tern_range){ iova, 256 * PAGE };
	ASSERT_EQ(0, tern_vfq_init(&vq, &self->c, self->vf_regs[0], 0, 256));
	ASSERT_EQ(TERN_STS_SUCCESS, tern_dirty_start(&self->aq, &self->c, 0,
						     &r, 1, 12));

	/* Pages 10..19; report 15.., then 12..13, then the rest. */
	ADD(&vq, 1, TERN_DESC_FILL, 0, iova + 10 * PAGE, 10 * PAGE, 0, 0, 0);
	ASSERT_EQ(0, tern_vfq_wait_idle(&vq, TIMEOUT_MS));
	ASSERT_EQ(0, tern_dirty_report(&self->aq, &self->c, 0,
				       iova + 15 * PAGE, 241 * PAGE, runs, 16,
				       &nr, &pages, &more));
	ASSERT_EQ(1u, nr);
	EXPECT_EQ(5u, pages);
	EXPECT_TRUE(dirty_has(runs, nr, iova + 15 * PAGE, 5 * PAGE));
	ASSERT_EQ(0, tern_dirty_report(&self->aq, &self->c, 0,
				       iova + 12 * PAGE, 2 * PAGE, runs, 16,
				       &nr, &pages, &more));
	ASSERT_EQ(1u, nr);
	EXPECT_TRUE(dirty_has(runs, nr, iova + 12 * PAGE, 2 * PAGE));
	ASSERT_EQ(0, tern_dirty_report(&self->aq, &self->c, 0, iova,
				       256 * PAGE, runs, 16, &nr, &pages,
				       &more));
	ASSERT_EQ(2u, nr);
	EXPECT_EQ(3u, pages);
	EXPECT_EQ(0, more);
	EXPECT_TRUE(dirty_has(runs, nr, iova + 10 * PAGE, 2 * PAGE));
	EXPECT_TRUE(dirty_has(runs, nr, iova + 14 * PAGE, PAGE));

	/* 100 scattered pages, each round starting after the last run. */
	for (i = 0; i < 100; i++)
		ADD(&vq, i == 99, TERN_DESC_FILL, 0,
		    iova + (2 * i + 1) * PAGE, 8, 0, 0, 0);
	ASSERT_EQ(0, tern_vfq_wait_idle(&vq, TIMEOUT_MS));
	from = iova;
	do {
		ASSERT_EQ(0, tern_dirty_report(&self->aq, &self->c, 0, from,
					       iova + 256 * PAGE - from, runs,
					       16, &nr, &pages, &more));
		ASSERT_LT(0u, nr);
		for (i = 0; i < (int)nr; i++)
			EXPECT_EQ(iova + (2 * (total_runs + i) + 1) * PAGE,
				  runs[i].iova);
		from = runs[nr - 1].iova + runs[nr - 1].len;
		total_runs += nr;
		total_pages += pages;
		rounds++;
	} while (more && rounds < 20);
	EXPECT_EQ(100u, total_runs);
	EXPECT_EQ(100u, total_pages);
	EXPECT_EQ(7u, rounds);
}

/* Fault injection: needs x-debug=on. */
#define NEED_DEBUG() do {						\
		if (!self->dbg)						\
			SKIP(return, "no debug BAR (x-debug=off)");	\
	} while (0)

TEST_F_TIMEOUT(dev, fault_fail_cmd, 120)
{
	uint32_t fired;

	NEED_DEBUG();
	fired = self->dbg[TERN_DBG_REG_FIRED / 4];
	self->dbg[TERN_DBG_REG_FAIL_VF / 4] = 1;
	self->dbg[TERN_DBG_REG_FAIL_STATUS / 4] = TERN_STS_INTERNAL;
	self->dbg[TERN_DBG_REG_FAIL_CMD / 4] = TERN_DBG_ARM | TERN_OP_QUIESCE;
	/* Other VF, other opcode: not affected. */
	EXPECT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_QUIESCE, 0));
	EXPECT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_QUERY_SIZE, 1));
	EXPECT_EQ(TERN_STS_INTERNAL,
		  tern_cmd_simple(&self->aq, TERN_OP_QUIESCE, 1));
	/* The failed command had no effect, and the fault fired once. */
	EXPECT_EQ(TERN_VF_STATE_RUNNING,
		  vf_state(&self->aq, &self->c, 1, NULL));
	EXPECT_EQ(fired + 1, self->dbg[TERN_DBG_REG_FIRED / 4]);
	EXPECT_EQ(0u, self->dbg[TERN_DBG_REG_FAIL_CMD / 4] & TERN_DBG_ARM);
	EXPECT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_QUIESCE, 1));
}

TEST_F_TIMEOUT(dev, fault_late_completion, 120)
{
	struct tern_aq_cmd a = { .opcode = TERN_OP_RESUME, .vf = 0 };
	struct tern_aq_cmd b = { .opcode = TERN_OP_QUERY_SIZE, .vf = 0 };
	struct tern_aq_cpl cpl;
	uint16_t ta, tb;
	uint64_t t0;

	NEED_DEBUG();
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_QUIESCE, 0));
	self->dbg[TERN_DBG_REG_DELAY_MS / 4] = 1500;
	self->dbg[TERN_DBG_REG_DELAY_CMD / 4] = TERN_DBG_ARM | TERN_OP_RESUME;
	t0 = now_ms();
	ta = tern_aq_post(&self->aq, &a);
	tb = tern_aq_post(&self->aq, &b);
	tern_aq_ring(&self->aq);
	ASSERT_EQ(0, tern_aq_reap(&self->aq, &cpl, TIMEOUT_MS));
	EXPECT_EQ(tb, le16toh(cpl.tag));
	/* A driver with a 500 ms timeout gives up on the first one ... */
	EXPECT_EQ(-ETIMEDOUT, tern_aq_reap(&self->aq, &cpl, 500));
	/* ... which took effect, and completes late. */
	ASSERT_EQ(0, tern_aq_reap(&self->aq, &cpl, TIMEOUT_MS));
	EXPECT_EQ(ta, le16toh(cpl.tag));
	EXPECT_EQ(TERN_STS_SUCCESS, le16toh(cpl.status));
	EXPECT_LE(1400u, now_ms() - t0);
	EXPECT_EQ(TERN_VF_STATE_RUNNING,
		  vf_state(&self->aq, &self->c, 0, NULL));
}

TEST_F_TIMEOUT(dev, fault_dma, 120)
{
	struct tern_vfq vq;
	struct tern_desc_cpl *cpl;
	uint64_t cpl_iova;
	uint8_t *buf = vfio_dma_alloc(&self->c, 2 * PAGE, PAGE, NULL);

	NEED_DEBUG();
	cpl = vfio_dma_alloc(&self->c, 4 * sizeof(*cpl), 64, &cpl_iova);
	ASSERT_EQ(0, tern_vfq_init(&vq, &self->c, self->vf_regs[1], 0, 8));
	self->dbg[TERN_DBG_REG_DMA_FAIL / 4] = TERN_DBG_ARM | 1;
	ADD(&vq, 0, TERN_DESC_MEMCPY,
		     vfio_iova(&self->c, buf), vfio_iova(&self->c, buf) + PAGE,
		     16, 0, cpl_iova, 1);
	ADD(&vq, 1, TERN_DESC_FILL, 0,
		     vfio_iova(&self->c, buf), 16, 0x1111111111111111ull,
		     cpl_iova + 32, 2);
	ASSERT_EQ(0, tern_vfq_wait_idle(&vq, TIMEOUT_MS));
	EXPECT_EQ(TERN_DSTS_DMA_READ, cpl[0].status);
	EXPECT_EQ(TERN_DSTS_SUCCESS, cpl[1].status);
	EXPECT_EQ(0x11, buf[15]);
	EXPECT_EQ(1u, tern_q_reg(&vq, TERN_Q_CNT_ERR_LO));
	EXPECT_EQ(1u, tern_q_reg(&vq, TERN_Q_CNT_DESC_LO));
}

TEST_F_TIMEOUT(dev, fault_corrupt_save, 600)
{
	size_t max = image_size(self->devmem_size / PAGE), sz;
	uint8_t *img = vfio_dma_alloc(&self->c, max, PAGE, NULL);
	int applied;

	NEED_DEBUG();
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_QUIESCE, 1));
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_FREEZE, 1));
	self->vf_mem[0][0] = 0x31;
	self->dbg[TERN_DBG_REG_CORRUPT_SAVE / 4] = TERN_DBG_ARM | TERN_VF_NONE;
	ASSERT_EQ(0, tern_save(&self->aq, &self->c, 0, 0, img, max, max, &sz));
	EXPECT_EQ(TERN_STS_IMG_CHECKSUM,
		  tern_load(&self->aq, &self->c, 1, img, sz, sz, &applied));
	EXPECT_EQ(0, self->vf_mem[1][0]);
	ASSERT_EQ(0, tern_save(&self->aq, &self->c, 0, 0, img, max, max, &sz));
	EXPECT_EQ(0, tern_load(&self->aq, &self->c, 1, img, sz, sz, &applied));
	EXPECT_EQ(1, applied);
	EXPECT_EQ(0x31, self->vf_mem[1][0]);
}

/*
 * Late DMA: the SAVE is fetched, but the image is taken and written into
 * its buffer only when its completion is posted.
 */
TEST_F_TIMEOUT(dev, fault_late_dma, 120)
{
	size_t max = image_size(self->devmem_size / PAGE);
	size_t data_off = max - self->devmem_size;
	uint32_t len = data_off + PAGE;
	uint8_t *buf = vfio_dma_alloc(&self->c, len, PAGE, NULL);
	struct tern_aq_cmd save, query = { .opcode = TERN_OP_QUERY_SIZE };
	struct tern_aq_cpl cpl;
	uint32_t fired;
	uint16_t tag;

	NEED_DEBUG();
	ASSERT_NE(NULL, buf);
	memset(buf, 0xee, len);
	self->vf_mem[0][0] = 0x11;
	fired = self->dbg[TERN_DBG_REG_FIRED / 4];
	self->dbg[TERN_DBG_REG_DELAY_MS / 4] = 1500;
	self->dbg[TERN_DBG_REG_DELAY_CMD / 4] =
		TERN_DBG_ARM | TERN_DBG_DELAY_LATE_DMA | TERN_OP_SAVE;
	save_cmd(&self->c, &save, 0, TERN_SAVE_F_START, 0, buf, len);
	tag = tern_aq_post(&self->aq, &save);
	tern_aq_post(&self->aq, &query);
	tern_aq_ring(&self->aq);

	/* The query, fetched after the SAVE, completes first. */
	ASSERT_EQ(0, tern_aq_reap(&self->aq, &cpl, TIMEOUT_MS));
	EXPECT_EQ((uint16_t)(tag + 1), le16toh(cpl.tag));
	EXPECT_EQ(self->aq.tail, le16toh(cpl.cmd_head));
	usleep(300000);
	EXPECT_EQ(1u, mmio_read32(self->aq.regs, TERN_PF_REG_AQ_INFLIGHT));
	/* Fetched, but its buffer is untouched ... */
	EXPECT_TRUE(all_bytes(buf, len, 0xee));
	/* ... and the image is not taken yet. */
	self->vf_mem[0][0] = 0x22;

	ASSERT_EQ(0, tern_aq_reap(&self->aq, &cpl, TIMEOUT_MS));
	EXPECT_EQ(tag, le16toh(cpl.tag));
	EXPECT_EQ(TERN_STS_SUCCESS, le16toh(cpl.status));
	EXPECT_EQ(len, TERN_XFER_BYTES(le64toh(cpl.result0)));
	EXPECT_EQ(max, le64toh(cpl.result1));
	EXPECT_EQ(TERN_IMAGE_MAGIC,
		  le32toh(((struct tern_image_hdr *)buf)->magic));
	EXPECT_EQ(0x22, buf[data_off]);
	EXPECT_EQ(fired + 1, self->dbg[TERN_DBG_REG_FIRED / 4]);
	EXPECT_EQ(TERN_DBG_DELAY_LATE_DMA | TERN_OP_SAVE,
		  self->dbg[TERN_DBG_REG_DELAY_CMD / 4]);
}

/* ABORT of a command whose DMA is late: that DMA never happens. */
TEST_F_TIMEOUT(dev, abort, 120)
{
	uint32_t len = 2 * PAGE;
	uint8_t *buf = vfio_dma_alloc(&self->c, len, PAGE, NULL);
	struct tern_aq_cmd save, ab = abort_cmd(0, 0x7777);
	struct tern_aq_cpl cpl;
	uint16_t tag, atag, flags;

	ASSERT_NE(NULL, buf);
	/* Nothing to abort; flags are reserved. */
	EXPECT_EQ(TERN_STS_SUCCESS,
		  tern_aq_exec(&self->aq, &ab, &cpl, TIMEOUT_MS));
	EXPECT_EQ(0u, le64toh(cpl.result0));
	ab.flags = 1;
	EXPECT_EQ(TERN_STS_INVALID_FIELD,
		  tern_aq_exec(&self->aq, &ab, &cpl, TIMEOUT_MS));

	NEED_DEBUG();
	memset(buf, 0xee, len);
	self->dbg[TERN_DBG_REG_DELAY_MS / 4] = 1000;
	self->dbg[TERN_DBG_REG_DELAY_CMD / 4] =
		TERN_DBG_ARM | TERN_DBG_DELAY_LATE_DMA | TERN_OP_SAVE;
	save_cmd(&self->c, &save, 1, TERN_SAVE_F_START, 0, buf, len);
	tag = tern_aq_post(&self->aq, &save);
	ab = abort_cmd(1, tag);
	atag = tern_aq_post(&self->aq, &ab);
	tern_aq_ring(&self->aq);

	/* The aborted command completes first, then the ABORT. */
	ASSERT_EQ(0, tern_aq_reap(&self->aq, &cpl, TIMEOUT_MS));
	EXPECT_EQ(tag, le16toh(cpl.tag));
	EXPECT_EQ(TERN_STS_ABORTED, le16toh(cpl.status));
	ASSERT_EQ(0, tern_aq_reap(&self->aq, &cpl, TIMEOUT_MS));
	EXPECT_EQ(atag, le16toh(cpl.tag));
	EXPECT_EQ(TERN_STS_SUCCESS, le16toh(cpl.status));
	EXPECT_EQ(1u, le64toh(cpl.result0));
	EXPECT_EQ(0u, mmio_read32(self->aq.regs, TERN_PF_REG_AQ_INFLIGHT));

	/* Past the deadline: no DMA, no image taken. */
	usleep(1500000);
	EXPECT_TRUE(all_bytes(buf, len, 0xee));
	vf_state(&self->aq, &self->c, 1, &flags);
	EXPECT_EQ(0, flags & TERN_VF_F_SAVING);
}

/*
 * An ABORT fetched in one burst behind a command that executes at fetch
 * and takes the device long (a SAVE of a whole image, far longer than
 * the ABORT's latency) still completes after the command it aborted.
 */
TEST_F_TIMEOUT(dev, abort_behind_slow_command, 120)
{
	uint32_t len = 2 * PAGE;
	uint32_t big = image_size(self->devmem_size / PAGE);
	uint8_t *buf = vfio_dma_alloc(&self->c, len, PAGE, NULL);
	uint8_t *image = vfio_dma_alloc(&self->c, big, PAGE, NULL);
	struct tern_aq_cmd stuck, slow, ab;
	uint16_t tags[3], order[3];
	struct tern_aq_cpl cpl;
	int i;

	NEED_DEBUG();
	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, image);
	self->dbg[TERN_DBG_REG_STUCK_VF / 4] = 1;
	self->dbg[TERN_DBG_REG_STUCK_CMD / 4] = TERN_DBG_ARM | TERN_OP_SAVE;
	save_cmd(&self->c, &stuck, 1, TERN_SAVE_F_START, 0, buf, len);
	save_cmd(&self->c, &slow, 0, TERN_SAVE_F_START, 0, image, big);
	tags[0] = tern_aq_post(&self->aq, &stuck);
	tags[1] = tern_aq_post(&self->aq, &slow);
	ab = abort_cmd(1, tags[0]);
	tags[2] = tern_aq_post(&self->aq, &ab);
	tern_aq_ring(&self->aq);

	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, tern_aq_reap(&self->aq, &cpl, TIMEOUT_MS));
		order[i] = le16toh(cpl.tag);
		EXPECT_EQ(order[i] == tags[0] ? TERN_STS_ABORTED :
						TERN_STS_SUCCESS,
			  le16toh(cpl.status));
		if (order[i] == tags[2]) {
			/* It found the command it named. */
			EXPECT_EQ(1u, le64toh(cpl.result0));
		}
	}
	/* The SAVE's latency is the longest: it completes last. */
	EXPECT_EQ(tags[0], order[0]);
	EXPECT_EQ(tags[2], order[1]);
	EXPECT_EQ(tags[1], order[2]);
	EXPECT_EQ(0u, mmio_read32(self->aq.regs, TERN_PF_REG_AQ_INFLIGHT));
	self->dbg[TERN_DBG_REG_STUCK_VF / 4] = TERN_VF_NONE;
}

/*
 * A stuck command holds its slot and never completes, while the others
 * of its VF and of other VFs do, until ABORT, queue disable or reset.
 */
TEST_F_TIMEOUT(dev, fault_stuck, 120)
{
	uint32_t len = 2 * PAGE, fired;
	uint8_t *buf = vfio_dma_alloc(&self->c, len, PAGE, NULL);
	struct tern_aq_cmd save, ab, q0 = { .opcode = TERN_OP_QUERY_SIZE },
			   q1 = { .opcode = TERN_OP_QUERY_SIZE,
				  .vf = htole16(1) };
	struct tern_aq_cpl cpl;
	void *regs = self->aq.regs;
	uint16_t tag;
	int i;

	NEED_DEBUG();
	ASSERT_NE(NULL, buf);
	memset(buf, 0xee, len);
	fired = self->dbg[TERN_DBG_REG_FIRED / 4];
	self->dbg[TERN_DBG_REG_STUCK_VF / 4] = 0;
	self->dbg[TERN_DBG_REG_STUCK_CMD / 4] = TERN_DBG_ARM | TERN_OP_SAVE;
	save_cmd(&self->c, &save, 0, TERN_SAVE_F_START, 0, buf, len);
	tag = tern_aq_post(&self->aq, &save);
	tern_aq_post(&self->aq, &q0);
	tern_aq_post(&self->aq, &q1);
	tern_aq_ring(&self->aq);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, tern_aq_reap(&self->aq, &cpl, TIMEOUT_MS));
		EXPECT_NE(tag, le16toh(cpl.tag));
		EXPECT_EQ(TERN_STS_SUCCESS, le16toh(cpl.status));
	}
	EXPECT_EQ(-ETIMEDOUT, tern_aq_reap(&self->aq, &cpl, 500));
	EXPECT_EQ(1u, mmio_read32(regs, TERN_PF_REG_AQ_INFLIGHT));
	EXPECT_EQ(fired + 1, self->dbg[TERN_DBG_REG_FIRED / 4]);
	EXPECT_EQ(0u, self->dbg[TERN_DBG_REG_STUCK_CMD / 4] & TERN_DBG_ARM);

	/* The tag of another VF's command does not match. */
	ab = abort_cmd(1, tag);
	EXPECT_EQ(TERN_STS_SUCCESS,
		  tern_aq_exec(&self->aq, &ab, &cpl, TIMEOUT_MS));
	EXPECT_EQ(0u, le64toh(cpl.result0));
	ab = abort_cmd(0, tag);
	tern_aq_post(&self->aq, &ab);
	tern_aq_ring(&self->aq);
	ASSERT_EQ(0, tern_aq_reap(&self->aq, &cpl, TIMEOUT_MS));
	EXPECT_EQ(tag, le16toh(cpl.tag));
	EXPECT_EQ(TERN_STS_ABORTED, le16toh(cpl.status));
	ASSERT_EQ(0, tern_aq_reap(&self->aq, &cpl, TIMEOUT_MS));
	EXPECT_EQ(1u, le64toh(cpl.result0));
	EXPECT_EQ(0u, mmio_read32(regs, TERN_PF_REG_AQ_INFLIGHT));
	EXPECT_TRUE(all_bytes(buf, len, 0xee));

	/* Queue disable drops a stuck command ... */
	self->dbg[TERN_DBG_REG_STUCK_VF / 4] = TERN_VF_NONE;
	self->dbg[TERN_DBG_REG_STUCK_CMD / 4] =
		TERN_DBG_ARM | TERN_OP_QUERY_SIZE;
	tern_aq_post(&self->aq, &q1);
	tern_aq_ring(&self->aq);
	usleep(100000);
	EXPECT_EQ(1u, mmio_read32(regs, TERN_PF_REG_AQ_INFLIGHT));
	tern_aq_disable(&self->aq);
	EXPECT_EQ(0u, mmio_read32(regs, TERN_PF_REG_AQ_INFLIGHT));
	ASSERT_EQ(0, tern_aq_init(&self->aq, &self->c, regs, 64));
	EXPECT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_QUERY_SIZE, 1));

	/* ... and so does a function reset. */
	self->dbg[TERN_DBG_REG_STUCK_CMD / 4] =
		TERN_DBG_ARM | TERN_OP_QUERY_SIZE;
	tern_aq_post(&self->aq, &q1);
	tern_aq_ring(&self->aq);
	usleep(100000);
	EXPECT_EQ(1u, mmio_read32(regs, TERN_PF_REG_AQ_INFLIGHT));
	mmio_write32(regs, TERN_PF_REG_CTRL, TERN_PF_CTRL_RESET);
	EXPECT_EQ(0u, mmio_read32(regs, TERN_PF_REG_AQ_INFLIGHT));
	ASSERT_EQ(0, tern_aq_init(&self->aq, &self->c, regs, 64));
	EXPECT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_QUERY_SIZE, 1));
}

/* Every chunk short, not only the last: the image still adds up. */
TEST_F_TIMEOUT(dev, fault_save_short, 600)
{
	size_t max = image_size(self->devmem_size / PAGE), off = 0;
	const uint32_t most = 300001;
	uint8_t *img = vfio_dma_alloc(&self->c, max, PAGE, NULL);
	struct tern_aq_cmd cmd;
	struct tern_aq_cpl cpl;
	int more, n = 0, applied;

	NEED_DEBUG();
	ASSERT_NE(NULL, img);
	self->vf_mem[0][5 * PAGE] = 0x5e;
	self->dbg[TERN_DBG_REG_SAVE_SHORT / 4] = most;
	EXPECT_EQ(most, self->dbg[TERN_DBG_REG_SAVE_SHORT / 4]);
	do {
		save_cmd(&self->c, &cmd, 0, off ? 0 : TERN_SAVE_F_START, off,
			 img + off, max - off);
		ASSERT_EQ(TERN_STS_SUCCESS,
			  tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
		EXPECT_EQ(max - off < most ? max - off : most,
			  TERN_XFER_BYTES(le64toh(cpl.result0)));
		EXPECT_EQ(max, le64toh(cpl.result1));
		off += TERN_XFER_BYTES(le64toh(cpl.result0));
		more = !!(le32toh(cpl.result2) & TERN_XFER_MORE);
		EXPECT_EQ(off < max, more);
	} while (more && ++n < 100);
	EXPECT_EQ(max, off);
	self->dbg[TERN_DBG_REG_SAVE_SHORT / 4] = 0;

	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_QUIESCE, 1));
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_FREEZE, 1));
	ASSERT_EQ(0, tern_load(&self->aq, &self->c, 1, img, max, max,
			       &applied));
	EXPECT_EQ(1, applied);
	EXPECT_EQ(0x5e, self->vf_mem[1][5 * PAGE]);
}

/* SAVE_RESIZE: one continuation of an open image reports another size. */
TEST_F_TIMEOUT(dev, fault_save_resize, 120)
{
	size_t max = image_size(self->devmem_size / PAGE);
	uint8_t *buf = vfio_dma_alloc(&self->c, 3 * PAGE, PAGE, NULL);
	struct tern_aq_cmd cmd;
	struct tern_aq_cpl cpl;
	uint32_t fired;
	int i;

	NEED_DEBUG();
	ASSERT_NE(NULL, buf);
	fired = self->dbg[TERN_DBG_REG_FIRED / 4];
	/* Armed for VF 1: VF 0 is not affected. */
	self->dbg[TERN_DBG_REG_SAVE_RESIZE / 4] = TERN_DBG_ARM | 1;
	for (i = 0; i < 2; i++) {
		save_cmd(&self->c, &cmd, 0, i ? 0 : TERN_SAVE_F_START,
			 i * PAGE, buf, PAGE);
		ASSERT_EQ(TERN_STS_SUCCESS,
			  tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
		EXPECT_EQ(max, le64toh(cpl.result1));
	}
	/* A START is no continuation; the next SAVE is, once. */
	self->dbg[TERN_DBG_REG_SAVE_RESIZE / 4] = TERN_DBG_ARM | 0;
	for (i = 0; i < 3; i++) {
		save_cmd(&self->c, &cmd, 0, i ? 0 : TERN_SAVE_F_START,
			 i * PAGE, buf + i * PAGE, PAGE);
		ASSERT_EQ(TERN_STS_SUCCESS,
			  tern_aq_exec(&self->aq, &cmd, &cpl, TIMEOUT_MS));
		EXPECT_EQ(PAGE, TERN_XFER_BYTES(le64toh(cpl.result0)));
		EXPECT_EQ(i == 1, max != le64toh(cpl.result1));
	}
	EXPECT_EQ(fired + 1, self->dbg[TERN_DBG_REG_FIRED / 4]);
	EXPECT_EQ(0u, self->dbg[TERN_DBG_REG_SAVE_RESIZE / 4] & TERN_DBG_ARM);
}

/* DIRTY_LIMIT: the tracker holds that many pages; one more overflows. */
TEST_F_TIMEOUT(dev, fault_dirty_limit, 120)
{
	struct tern_vfq vq;
	struct tern_range r, runs[4];
	struct tern_identify id;
	uint64_t iova, pages;
	uint32_t nr;
	int more;

	NEED_DEBUG();
	ASSERT_NE(NULL, vfio_dma_alloc(&self->c, 64 * PAGE, PAGE, &iova));
	r = (struct tern_range){ iova, 64 * PAGE };
	ASSERT_EQ(0, tern_vfq_init(&vq, &self->c, self->vf_regs[0], 0, 16));
	self->dbg[TERN_DBG_REG_DIRTY_LIMIT / 4] = 8;
	/* IDENTIFY reports the capacity, not the injected limit. */
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_identify(&self->aq, &self->c, TERN_VF_NONE, &id));
	EXPECT_EQ(TERN_DIRTY_MAX_PAGES, le32toh(id.dirty_max_pages));
	ASSERT_EQ(TERN_STS_SUCCESS, tern_dirty_start(&self->aq, &self->c, 0,
						     &r, 1, 12));

	/* 8 pages fit, twice (a report frees what it returns). */
	ADD(&vq, 1, TERN_DESC_FILL, 0, iova, 8 * PAGE, 0, 0, 0);
	ASSERT_EQ(0, tern_vfq_wait_idle(&vq, TIMEOUT_MS));
	ASSERT_EQ(0, tern_dirty_report(&self->aq, &self->c, 0, iova,
				       64 * PAGE, runs, 4, &nr, &pages, &more));
	EXPECT_EQ(8u, pages);
	ADD(&vq, 1, TERN_DESC_FILL, 0, iova + 16 * PAGE, 4 * PAGE, 0, 0, 0);
	ADD(&vq, 1, TERN_DESC_FILL, 0, iova + 24 * PAGE, 4 * PAGE, 0, 0, 0);
	ASSERT_EQ(0, tern_vfq_wait_idle(&vq, TIMEOUT_MS));
	ASSERT_EQ(0, tern_dirty_report(&self->aq, &self->c, 0, iova,
				       64 * PAGE, runs, 4, &nr, &pages, &more));
	EXPECT_EQ(2u, nr);
	EXPECT_EQ(8u, pages);

	/* 9 do not: the tracker overflows. */
	ADD(&vq, 1, TERN_DESC_FILL, 0, iova + 32 * PAGE, 9 * PAGE, 0, 0, 0);
	ASSERT_EQ(0, tern_vfq_wait_idle(&vq, TIMEOUT_MS));
	EXPECT_EQ(TERN_STS_DIRTY_OVERFLOW, tern_dirty_report(&self->aq,
			&self->c, 0, iova, 64 * PAGE, runs, 4, &nr, &pages,
			&more));
	EXPECT_EQ(TERN_STS_DIRTY_OVERFLOW, tern_dirty_report(&self->aq,
			&self->c, 0, iova, 64 * PAGE, runs, 4, &nr, &pages,
			&more));

	/* Recovery: DIRTY_STOP and DIRTY_START re-arm an empty tracker. */
	ASSERT_EQ(TERN_STS_SUCCESS,
		  tern_cmd_simple(&self->aq, TERN_OP_DIRTY_STOP, 0));
	ASSERT_EQ(TERN_STS_SUCCESS, tern_dirty_start(&self->aq, &self->c, 0,
						     &r, 1, 12));
	ASSERT_EQ(0, tern_dirty_report(&self->aq, &self->c, 0, iova,
				       64 * PAGE, runs, 4, &nr, &pages, &more));
	EXPECT_EQ(0u, nr);
	ADD(&vq, 1, TERN_DESC_FILL, 0, iova + 40 * PAGE, 8, 0, 0, 0);
	ASSERT_EQ(0, tern_vfq_wait_idle(&vq, TIMEOUT_MS));
	ASSERT_EQ(0, tern_dirty_report(&self->aq, &self->c, 0, iova,
				       64 * PAGE, runs, 4, &nr, &pages, &more));
	ASSERT_EQ(1u, nr);
	EXPECT_TRUE(dirty_has(runs, nr, iova + 40 * PAGE, PAGE));
}

TEST_HARNESS_MAIN
