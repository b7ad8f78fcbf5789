// SPDX-License-Identifier: GPL-2.0
/*
 * A small VFIO library for tern's selftests (see vfio_util.h).
 * Functions return 0 or a negative errno; they print nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "vfio_util.h"

#define SYSFS_PCI "/sys/bus/pci"
/* Where DMA memory sits in every device's IOVA space. */
#define DMA_IOVA_BASE (1ull << 32)

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

int file_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	n = n < 0 ? -errno : 0;
	close(fd);
	return n;
}

int file_read(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	while (n && (buf[n - 1] == '\n'))
		buf[--n] = 0;
	return 0;
}

int pci_sysfs_write(const char *bdf, const char *attr, const char *val)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), SYSFS_PCI "/devices/%s/%s", bdf, attr);
	return file_write(path, val);
}

int pci_sysfs_read(const char *bdf, const char *attr, char *buf, size_t len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), SYSFS_PCI "/devices/%s/%s", bdf, attr);
	return file_read(path, buf, len);
}

static long sysfs_hex(const char *bdf, const char *attr)
{
	char buf[32];

	if (pci_sysfs_read(bdf, attr, buf, sizeof(buf)))
		return -1;
	return strtol(buf, NULL, 16);
}

int pci_find_device(uint16_t vendor, uint16_t device, char *bdf, size_t len)
{
	DIR *dir = opendir(SYSFS_PCI "/devices");
	struct dirent *e;
	int ret = -ENODEV;

	if (!dir)
		return -errno;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		if (sysfs_hex(e->d_name, "vendor") == vendor &&
		    sysfs_hex(e->d_name, "device") == device) {
			snprintf(bdf, len, "%s", e->d_name);
			ret = 0;
			break;
		}
	}
	closedir(dir);
	return ret;
}

static int pci_driver(const char *bdf, char *drv, size_t len)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), SYSFS_PCI "/devices/%s/driver", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		drv[0] = 0;
		return -errno;
	}
	link[n] = 0;
	snprintf(drv, len, "%s", strrchr(link, '/') + 1);
	return 0;
}

int pci_wait_driver(const char *bdf, const char *driver, int timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	char drv[64];

	do {
		if (!pci_driver(bdf, drv, sizeof(drv)) && !strcmp(drv, driver))
			return 0;
		usleep(10000);
	} while (now_ms() < end);
	return -ETIMEDOUT;
}

int pci_bind(const char *bdf, const char *driver)
{
	char drv[64];
	int ret;

	if (!pci_driver(bdf, drv, sizeof(drv))) {
		if (!strcmp(drv, driver))
			return 0;
		ret = pci_sysfs_write(bdf, "driver/unbind", bdf);
		if (ret)
			return ret;
	}
	ret = pci_sysfs_write(bdf, "driver_override", driver);
	if (ret)
		return ret;
	ret = file_write(SYSFS_PCI "/drivers_probe", bdf);
	if (ret)
		return ret;
	return pci_wait_driver(bdf, driver, 1000);
}

/*
 * Give the PF at bdf to vfio-pci, SR-IOV allowed, without VFs, whatever
 * driver had it.  Loads vfio-pci, and the type1 backend of /dev/vfio/vfio,
 * which is not loaded on demand.
 */
int pci_pf_to_vfio(const char *bdf)
{
	int ret;

	if (access("/sys/module/vfio_pci", F_OK) &&
	    system("modprobe vfio-pci enable_sriov=1"))
		return -ENOENT;
	if (access("/sys/module/vfio_iommu_type1", F_OK) &&
	    system("modprobe vfio_iommu_type1"))
		return -ENOENT;
	ret = file_write("/sys/module/vfio_pci/parameters/enable_sriov", "Y");
	if (ret)
		return ret;
	/* No VFs while the PF changes drivers. */
	pci_sysfs_write(bdf, "sriov_numvfs", "0");
	ret = pci_bind(bdf, "vfio-pci");
	if (ret)
		return ret;
	return pci_sysfs_write(bdf, "sriov_numvfs", "0");
}

int pci_vf_bdf(const char *pf_bdf, int vf, char *bdf, size_t len)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), SYSFS_PCI "/devices/%s/virtfn%d", pf_bdf,
		 vf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = 0;
	snprintf(bdf, len, "%s", strrchr(link, '/') + 1);
	return 0;
}

int pci_iommu_group(const char *bdf)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), SYSFS_PCI "/devices/%s/iommu_group", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = 0;
	return atoi(strrchr(link, '/') + 1);
}

static int dma_mem_alloc(struct vfio_container *c, size_t dma_size)
{
	c->dma_va = mmap(NULL, dma_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c->dma_va == MAP_FAILED) {
		c->dma_va = NULL;
		return -ENOMEM;
	}
	memset(c->dma_va, 0, dma_size);
	c->dma_iova = DMA_IOVA_BASE;
	c->dma_size = dma_size;
	return 0;
}

int vfio_container_open(struct vfio_container *c, size_t dma_size)
{
	memset(c, 0, sizeof(*c));
	c->fd = open("/dev/vfio/vfio", O_RDWR);
	if (c->fd < 0)
		return -errno;
	if (ioctl(c->fd, VFIO_GET_API_VERSION) != VFIO_API_VERSION ||
	    !ioctl(c->fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU)) {
		close(c->fd);
		return -EOPNOTSUPP;
	}
	if (dma_mem_alloc(c, dma_size)) {
		close(c->fd);
		return -ENOMEM;
	}
	return 0;
}

int vfio_iommufd_open(struct vfio_container *c, size_t dma_size)
{
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
	};
	int ret;

	memset(c, 0, sizeof(*c));
	c->iommufd = true;
	c->fd = open("/dev/iommu", O_RDWR);
	if (c->fd < 0)
		return -errno;
	ret = dma_mem_alloc(c, dma_size);
	if (ret)
		goto err;
	if (ioctl(c->fd, IOMMU_IOAS_ALLOC, &alloc)) {
		ret = -errno;
		goto err;
	}
	c->ioas_id = alloc.out_ioas_id;
	map.ioas_id = c->ioas_id;
	map.user_va = (uintptr_t)c->dma_va;
	map.length = c->dma_size;
	map.iova = c->dma_iova;
	if (ioctl(c->fd, IOMMU_IOAS_MAP, &map)) {
		ret = -errno;
		goto err;
	}
	c->iommu_set = true;
	return 0;
err:
	vfio_container_close(c);
	return ret;
}

/* The DMA memory is mapped once the first group has set the IOMMU. */
static int vfio_container_setup(struct vfio_container *c)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)c->dma_va,
		.iova = c->dma_iova,
		.size = c->dma_size,
	};

	if (c->iommu_set)
		return 0;
	if (ioctl(c->fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		return -errno;
	c->iommu_set = true;
	if (ioctl(c->fd, VFIO_IOMMU_MAP_DMA, &map))
		return -errno;
	return 0;
}

void vfio_container_close(struct vfio_container *c)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->dma_va)
		munmap(c->dma_va, c->dma_size);
	c->fd = -1;
	c->dma_va = NULL;
}

void *vfio_dma_alloc(struct vfio_container *c, size_t size, size_t align,
		     uint64_t *iova)
{
	size_t off = (c->dma_used + align - 1) & ~(align - 1);
	void *va;

	if (off + size > c->dma_size)
		return NULL;
	c->dma_used = off + size;
	va = (char *)c->dma_va + off;
	memset(va, 0, size);
	if (iova)
		*iova = c->dma_iova + off;
	return va;
}

uint64_t vfio_iova(struct vfio_container *c, const void *va)
{
	return c->dma_iova + ((const char *)va - (const char *)c->dma_va);
}

int vfio_dev_open(struct vfio_container *c, const char *bdf,
		  const char *vf_token, struct vfio_dev *d)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct vfio_region_info cfg = {
		.argsz = sizeof(cfg),
		.index = VFIO_PCI_CONFIG_REGION_INDEX,
	};
	char path[64], name[128];
	int group, ret;

	memset(d, 0, sizeof(*d));
	d->fd = d->group_fd = -1;
	snprintf(d->bdf, sizeof(d->bdf), "%s", bdf);
	d->container = c;
	group = pci_iommu_group(bdf);
	if (group < 0)
		return group;
	snprintf(path, sizeof(path), "/dev/vfio/%d", group);
	d->group_fd = open(path, O_RDWR);
	if (d->group_fd < 0)
		return -errno;
	ret = -errno;
	if (ioctl(d->group_fd, VFIO_GROUP_GET_STATUS, &status))
		goto err;
	ret = -EBUSY;
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		goto err;
	if (ioctl(d->group_fd, VFIO_GROUP_SET_CONTAINER, &c->fd)) {
		ret = -errno;
		goto err;
	}
	ret = vfio_container_setup(c);
	if (ret)
		goto err;
	if (vf_token)
		snprintf(name, sizeof(name), "%s vf_token=%s", bdf, vf_token);
	else
		snprintf(name, sizeof(name), "%s", bdf);
	d->fd = ioctl(d->group_fd, VFIO_GROUP_GET_DEVICE_FD, name);
	if (d->fd < 0) {
		ret = -errno;
		goto err;
	}
	if (ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &cfg)) {
		ret = -errno;
		goto err;
	}
	d->cfg_offset = cfg.offset;
	return 0;
err:
	vfio_dev_close(d);
	return ret;
}

/* The config space offset, which every open path needs. */
static int vfio_dev_cfg_offset(struct vfio_dev *d)
{
	struct vfio_region_info cfg = {
		.argsz = sizeof(cfg),
		.index = VFIO_PCI_CONFIG_REGION_INDEX,
	};

	if (ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &cfg))
		return -errno;
	d->cfg_offset = cfg.offset;
	return 0;
}

/* /dev/vfio/devices/vfioN of a device bound to a VFIO driver. */
int vfio_cdev_path(const char *bdf, char *path, size_t len)
{
	char dir[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int ret = -ENODEV;

	snprintf(dir, sizeof(dir), SYSFS_PCI "/devices/%s/vfio-dev", bdf);
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "vfio", 4))
			continue;
		snprintf(path, len, "/dev/vfio/devices/%s", e->d_name);
		ret = 0;
		break;
	}
	closedir(d);
	return ret;
}

int vfio_dev_open_cdev(struct vfio_container *c, const char *bdf,
		       struct vfio_dev *d)
{
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.iommufd = c->fd,
	};
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
		.pt_id = c->ioas_id,
	};
	char path[PATH_MAX];
	int ret;

	memset(d, 0, sizeof(*d));
	d->fd = d->group_fd = -1;
	snprintf(d->bdf, sizeof(d->bdf), "%s", bdf);
	d->container = c;
	ret = vfio_cdev_path(bdf, path, sizeof(path));
	if (ret)
		return ret;
	d->fd = open(path, O_RDWR);
	if (d->fd < 0)
		return -errno;
	if (ioctl(d->fd, VFIO_DEVICE_BIND_IOMMUFD, &bind) ||
	    ioctl(d->fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach)) {
		ret = -errno;
		goto err;
	}
	d->devid = bind.out_devid;
	ret = vfio_dev_cfg_offset(d);
	if (ret)
		goto err;
	return 0;
err:
	vfio_dev_close(d);
	return ret;
}

void vfio_dev_close(struct vfio_dev *d)
{
	int i;

	for (i = 0; i < VFIO_MAX_BARS; i++) {
		if (d->bar[i])
			munmap(d->bar[i], d->bar_size[i]);
		d->bar[i] = NULL;
	}
	if (d->fd >= 0)
		close(d->fd);
	if (d->group_fd >= 0) {
		ioctl(d->group_fd, VFIO_GROUP_UNSET_CONTAINER);
		close(d->group_fd);
	}
	d->fd = d->group_fd = -1;
}

void *vfio_bar_map(struct vfio_dev *d, int bar)
{
	struct vfio_region_info info = {
		.argsz = sizeof(info),
		.index = VFIO_PCI_BAR0_REGION_INDEX + bar,
	};
	void *va;

	if (d->bar[bar])
		return d->bar[bar];
	if (ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &info) ||
	    !(info.flags & VFIO_REGION_INFO_FLAG_MMAP) || !info.size)
		return NULL;
	va = mmap(NULL, info.size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd,
		  info.offset);
	if (va == MAP_FAILED)
		return NULL;
	d->bar[bar] = va;
	d->bar_size[bar] = info.size;
	return va;
}

int vfio_cfg_read(struct vfio_dev *d, unsigned int off, void *buf, size_t len)
{
	return pread(d->fd, buf, len, d->cfg_offset + off) == (ssize_t)len ?
	       0 : -EIO;
}

int vfio_cfg_write(struct vfio_dev *d, unsigned int off, const void *buf,
		   size_t len)
{
	return pwrite(d->fd, buf, len, d->cfg_offset + off) == (ssize_t)len ?
	       0 : -EIO;
}

/* uuid: "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" */
int vfio_set_vf_token(struct vfio_dev *d, const char *uuid)
{
	char buf[sizeof(struct vfio_device_feature) + 16]
		__attribute__((aligned(8)));
	struct vfio_device_feature *f = (void *)buf;
	unsigned char *u = f->data;
	int i = 0;

	memset(buf, 0, sizeof(buf));
	f->argsz = sizeof(buf);
	f->flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PCI_VF_TOKEN;
	for (; *uuid && i < 16; uuid++) {
		unsigned int byte;

		if (*uuid == '-')
			continue;
		if (sscanf(uuid, "%2x", &byte) != 1)
			return -EINVAL;
		u[i++] = byte;
		uuid++;
	}
	if (i != 16)
		return -EINVAL;
	return ioctl(d->fd, VFIO_DEVICE_FEATURE, f) ? -errno : 0;
}

int vfio_reset(struct vfio_dev *d)
{
	return ioctl(d->fd, VFIO_DEVICE_RESET) ? -errno : 0;
}

int vfio_msix_enable(struct vfio_dev *d, int nvec, int *efds)
{
	size_t sz = sizeof(struct vfio_irq_set) + nvec * sizeof(int);
	struct vfio_irq_set *set = calloc(1, sz);
	int ret;

	if (!set)
		return -ENOMEM;
	set->argsz = sz;
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = VFIO_PCI_MSIX_IRQ_INDEX;
	set->start = 0;
	set->count = nvec;
	memcpy(set->data, efds, nvec * sizeof(int));
	ret = ioctl(d->fd, VFIO_DEVICE_SET_IRQS, set) ? -errno : 0;
	free(set);
	return ret;
}

int vfio_msix_disable(struct vfio_dev *d)
{
	struct vfio_irq_set set = {
		.argsz = sizeof(set),
		.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
		.index = VFIO_PCI_MSIX_IRQ_INDEX,
	};

	return ioctl(d->fd, VFIO_DEVICE_SET_IRQS, &set) ? -errno : 0;
}
