/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small VFIO library for tern's selftests: PCI sysfs helpers, the type1
 * container/group/device path, BAR mapping, DMA memory and MSI-X eventfds.
 * Modelled on tools/testing/selftests/vfio/lib in Linux 7.x, but kept to
 * what the tern tests need.
 */
#ifndef TERN_SELFTEST_VFIO_UTIL_H
#define TERN_SELFTEST_VFIO_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/vfio.h>

#define VFIO_MAX_BARS		6

/*
 * A type1 container, or an iommufd with one IOAS (iommufd set), with a
 * bump allocator of DMA memory mapped at the same IOVA either way.
 */
struct vfio_container {
	int fd;			/* /dev/vfio/vfio or /dev/iommu */
	bool iommufd;
	uint32_t ioas_id;	/* iommufd only */
	bool iommu_set;
	void *dma_va;		/* one mapping, IOVA dma_iova */
	uint64_t dma_iova;
	size_t dma_size;
	size_t dma_used;
};

struct vfio_dev {
	char bdf[32];
	int group_fd;
	int fd;
	struct vfio_container *container;
	uint32_t devid;		/* iommufd's ID of a cdev-bound device */
	void *bar[VFIO_MAX_BARS];
	size_t bar_size[VFIO_MAX_BARS];
	uint64_t cfg_offset;
};

/* Files (sysfs attributes, module parameters); reads lose trailing newlines. */
int file_write(const char *path, const char *val);
int file_read(const char *path, char *buf, size_t len);

/* PCI sysfs */
int pci_sysfs_write(const char *bdf, const char *attr, const char *val);
int pci_sysfs_read(const char *bdf, const char *attr, char *buf, size_t len);
int pci_find_device(uint16_t vendor, uint16_t device, char *bdf, size_t len);
int pci_bind(const char *bdf, const char *driver);
int pci_pf_to_vfio(const char *bdf);
int pci_wait_driver(const char *bdf, const char *driver, int timeout_ms);
int pci_vf_bdf(const char *pf_bdf, int vf, char *bdf, size_t len);
int pci_iommu_group(const char *bdf);

/* Containers and DMA memory */
int vfio_container_open(struct vfio_container *c, size_t dma_size);
void vfio_container_close(struct vfio_container *c);
void *vfio_dma_alloc(struct vfio_container *c, size_t size, size_t align,
		     uint64_t *iova);
uint64_t vfio_iova(struct vfio_container *c, const void *va);

/* An iommufd and an IOAS holding the DMA memory; close as a container. */
int vfio_iommufd_open(struct vfio_container *c, size_t dma_size);

/* Devices */
int vfio_dev_open(struct vfio_container *c, const char *bdf,
		  const char *vf_token, struct vfio_dev *d);
/* /dev/vfio/devices/vfioN of a device bound to a VFIO driver. */
int vfio_cdev_path(const char *bdf, char *path, size_t len);
/* The device's cdev bound to the iommufd c and attached to its IOAS. */
int vfio_dev_open_cdev(struct vfio_container *c, const char *bdf,
		       struct vfio_dev *d);
void vfio_dev_close(struct vfio_dev *d);
void *vfio_bar_map(struct vfio_dev *d, int bar);
int vfio_cfg_read(struct vfio_dev *d, unsigned int off, void *buf, size_t len);
int vfio_cfg_write(struct vfio_dev *d, unsigned int off, const void *buf,
		   size_t len);
int vfio_set_vf_token(struct vfio_dev *d, const char *uuid);
int vfio_reset(struct vfio_dev *d);
int vfio_msix_enable(struct vfio_dev *d, int nvec, int *efds);
int vfio_msix_disable(struct vfio_dev *d);

/* MMIO */
static inline uint32_t mmio_read32(const void *base, unsigned int off)
{
	return *(const volatile uint32_t *)((const char *)base + off);
}

static inline void mmio_write32(void *base, unsigned int off, uint32_t val)
{
	*(volatile uint32_t *)((char *)base + off) = val;
}

static inline uint64_t mmio_read64lh(const void *base, unsigned int off)
{
	return mmio_read32(base, off) |
	       (uint64_t)mmio_read32(base, off + 4) << 32;
}

static inline void mmio_write64lh(void *base, unsigned int off, uint64_t val)
{
	mmio_write32(base, off, (uint32_t)val);
	mmio_write32(base, off + 4, val >> 32);
}

uint64_t now_ms(void);

#endif
