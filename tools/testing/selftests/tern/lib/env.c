// SPDX-License-Identifier: GPL-2.0
/*
 * The VMM and guest driver side of tern's selftests (env_util.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "env_util.h"

static int set_master(struct vfio_dev *d)
{
	uint16_t cmd;

	if (vfio_cfg_read(d, 4, &cmd, 2))
		return -EIO;
	cmd |= 0x6;	/* memory space, bus master */
	return vfio_cfg_write(d, 4, &cmd, 2);
}

int env_open_vf(struct tern_env *e, int i)
{
	struct vfio_dev *d = &e->dev[i];
	int ret;

	if (e->iommufd)
		ret = vfio_dev_open_cdev(&e->c, e->vf[i], d);
	else
		ret = vfio_dev_open(&e->c, e->vf[i], NULL, d);
	if (ret)
		return ret;
	ret = set_master(d);
	e->regs[i] = vfio_bar_map(d, TERN_VF_BAR_REGS);
	e->mem[i] = vfio_bar_map(d, TERN_VF_BAR_DEVMEM);
	if (!ret && (!e->regs[i] || !e->mem[i]))
		ret = -ENOMEM;
	if (ret) {
		env_close_vf(e, i);
		return ret;
	}
	e->devmem_size = d->bar_size[TERN_VF_BAR_DEVMEM];
	return 0;
}

void env_close_vf(struct tern_env *e, int i)
{
	if (e->dev[i].container)
		vfio_dev_close(&e->dev[i]);
	e->dev[i].container = NULL;
	e->regs[i] = NULL;
	e->mem[i] = NULL;
}

static int bind_vfs(struct tern_env *e)
{
	int i, ret;

	for (i = 0; i < e->nr; i++) {
		ret = pci_vf_bdf(e->pf, i, e->vf[i], sizeof(e->vf[i]));
		if (!ret)
			ret = pci_bind(e->vf[i], "tern_vfio_pci");
		if (ret)
			return ret;
	}
	return 0;
}

static int open_vfs(struct tern_env *e)
{
	int i, ret;

	for (i = 0; i < e->nr; i++) {
		ret = env_open_vf(e, i);
		if (ret)
			return ret;
	}
	return 0;
}

static int open_container(struct tern_env *e)
{
	return e->iommufd ? vfio_iommufd_open(&e->c, ENV_DMA_SIZE) :
			    vfio_container_open(&e->c, ENV_DMA_SIZE);
}

int env_setup(struct tern_env *e, int nr, bool iommufd)
{
	char n[8];
	int ret;

	memset(e, 0, sizeof(*e));
	e->c.fd = -1;
	e->nr = nr;
	e->iommufd = iommufd;
	if (pci_find_device(TERN_PCI_VENDOR_ID, TERN_PCI_DEVICE_ID_PF, e->pf,
			    sizeof(e->pf)))
		return -ENODEV;
	/* Opening /dev/vfio/vfio does not load the type1 module. */
	if (system("modprobe tern_pf && modprobe tern_vfio_pci && modprobe vfio_iommu_type1"))
		return -ENOENT;
	ret = pci_bind(e->pf, "tern_pf");
	if (ret)
		return ret;
	pci_sysfs_write(e->pf, "sriov_numvfs", "0");
	snprintf(n, sizeof(n), "%d", nr);
	ret = pci_sysfs_write(e->pf, "sriov_numvfs", n);
	if (!ret)
		ret = bind_vfs(e);
	if (ret)
		return ret;
	return open_container(e) ?: open_vfs(e);
}

void env_teardown(struct tern_env *e)
{
	int i;

	for (i = 0; i < e->nr; i++)
		env_close_vf(e, i);
	if (e->c.dma_va)
		vfio_container_close(&e->c);
	if (e->pf[0])
		pci_sysfs_write(e->pf, "sriov_numvfs", "0");
}

int env_reload_vfio(struct tern_env *e, const char *params)
{
	char cmd[128];
	int i;

	for (i = 0; i < e->nr; i++)
		env_close_vf(e, i);
	/* A type1 container loses its IOMMU with its last group. */
	vfio_container_close(&e->c);
	snprintf(cmd, sizeof(cmd),
		 "rmmod tern_vfio_pci && modprobe tern_vfio_pci %s",
		 params);
	if (system(cmd))
		return -EIO;
	/* The VFs lost their driver with the module. */
	return bind_vfs(e) ?: open_container(e) ?: open_vfs(e);
}

void *env_debug_map(struct tern_env *e)
{
	char path[128];
	void *dbg;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource%d",
		 e->pf, TERN_PF_BAR_DEBUG);
	fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0)
		return NULL;
	dbg = mmap(NULL, TERN_PF_DEBUG_SIZE, PROT_READ | PROT_WRITE,
		   MAP_SHARED, fd, 0);
	close(fd);
	if (dbg == MAP_FAILED)
		return NULL;
	if (mmio_read32(dbg, TERN_DBG_REG_MAGIC) != TERN_DBG_MAGIC) {
		munmap(dbg, TERN_PF_DEBUG_SIZE);
		return NULL;
	}
	return dbg;
}

void env_debug_unmap(void *dbg)
{
	if (dbg)
		munmap(dbg, TERN_PF_DEBUG_SIZE);
}

int work_init(struct work *w, struct vfio_container *c, void *regs,
	      unsigned int q, unsigned int nr)
{
	memset(w, 0, sizeof(*w));
	w->c = c;
	w->nr = nr;
	w->blocks = vfio_dma_alloc(c, nr * WORK_BLOCK, ENV_PAGE, NULL);
	w->cpl = vfio_dma_alloc(c, nr * sizeof(*w->cpl), 64, &w->cpl_iova);
	if (!w->blocks || !w->cpl)
		return -ENOMEM;
	/* Twice the blocks, so that one pass never fills the ring. */
	return tern_vfq_init(&w->vq, c, regs, q, nr * 2);
}

static uint8_t work_pattern(struct work *w, unsigned int i)
{
	return (uint8_t)(i + 1 + w->pass * 37);
}

void work_add(struct work *w, unsigned int i, bool ring)
{
	struct tern_desc d = {
		.opcode = TERN_DESC_FILL,
		.len = htole32(WORK_BLOCK),
		.dst = htole64(vfio_iova(w->c, w->blocks + i * WORK_BLOCK)),
		.pattern = htole64(0x0101010101010101ull * work_pattern(w, i)),
		.cpl_addr = htole64(w->cpl_iova + i * sizeof(*w->cpl)),
		.user = htole64(i),
	};

	memset(w->blocks + i * WORK_BLOCK, 0, WORK_BLOCK);
	memset(&w->cpl[i], 0, sizeof(w->cpl[i]));
	tern_vfq_add(&w->vq, &d, ring);
}

void work_add_range(struct work *w, unsigned int from, unsigned int to)
{
	unsigned int i;

	for (i = from; i < to; i++)
		work_add(w, i, i == to - 1);
}

bool work_block_ok(struct work *w, unsigned int i)
{
	const uint8_t *b = w->blocks + i * WORK_BLOCK;
	uint8_t p = work_pattern(w, i);
	unsigned int j;

	for (j = 0; j < WORK_BLOCK; j++)
		if (b[j] != p)
			return false;
	return w->cpl[i].status == TERN_DSTS_SUCCESS &&
	       le64toh(w->cpl[i].user) == i;
}

uint64_t work_done(struct work *w)
{
	return mmio_read64lh(w->vq.regs,
			     TERN_VF_REG_Q(w->vq.q) + TERN_Q_CNT_DESC_LO);
}

int work_wait(struct work *w, int timeout_ms)
{
	return tern_vfq_wait_idle(&w->vq, timeout_ms);
}
