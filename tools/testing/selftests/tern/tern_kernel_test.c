// SPDX-License-Identifier: GPL-2.0
/*
 * What tern_vfio_pci must do differently from one kernel to the next
 * (drivers/vfio/pci/tern/compat.h), checked on the kernel it runs on:
 *
 * vfpf.*: a VF of a PF that vfio-pci owns (with a VF token set), bound in
 *   turn to plain vfio-pci and to tern_vfio_pci and opened through its
 *   cdev; tern_vfio_pci must answer as vfio-pci does on this kernel:
 *   VFIO_DEVICE_BIND_IOMMUFD with and without the token (6.17:
 *   match_token_uuid) and VFIO_DEVICE_GET_REGION_INFO of every region
 *   (6.19: get_region_info_caps).
 * precopy.info_v2: user space's opt-in to PRECOPY_INFOv2 (7.1) is taken
 *   and vfio_precopy_info.flags stays 0, before and after it, while the
 *   VF's configuration does not change.  Skipped, with the reason, on a
 *   kernel without the feature.
 * precopy.reinit: opted in, the guest sets up a queue anew during
 *   pre-copy; tern reports VFIO_PRECOPY_INFO_REINIT once, with the new
 *   initial_bytes, the stream carries a second full image of exactly that
 *   size, and the destination VF loaded from it has the new setup.
 *   Skipped, with the reason, on a kernel without the feature.
 * precopy.no_reinit: the same change without the opt-in (every kernel):
 *   flags stay 0, no new full image, and the final increment still
 *   brings the new setup to the destination.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "kselftest_harness.h"
#include "lib/env_util.h"
#include "lib/mig_util.h"
#include "lib/tern_util.h"
#include "lib/vfio_util.h"
#include <tern/tern_stream.h>

#define VF_TOKEN	"3f0c9a1e-7000-4000-8000-0000000c0a17"
#define DMA_SIZE	(4ul << 20)
#define TIMEOUT_MS	5000

/*
 * The uAPI of kernels newer than the headers the tests are built against
 * (the 6.12 test kernel's), spelled as upstream does.
 */
#ifndef VFIO_DEVICE_BIND_FLAG_TOKEN
#define VFIO_DEVICE_BIND_FLAG_TOKEN	(1 << 0)
#endif
#ifndef VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2
#define VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2	12
#endif
#ifndef VFIO_PRECOPY_INFO_REINIT
#define VFIO_PRECOPY_INFO_REINIT	(1 << 0)
#endif

/* struct vfio_device_bind_iommufd of 6.17 and later. */
struct bind_token {
	__u32 argsz;
	__u32 flags;
	__s32 iommufd;
	__u32 out_devid;
	__aligned_u64 token_uuid_ptr;
};

static int uuid_parse(const char *s, unsigned char u[16])
{
	int i = 0;

	for (; *s && i < 16; s++) {
		unsigned int byte;

		if (*s == '-')
			continue;
		if (sscanf(s, "%2x", &byte) != 1)
			return -EINVAL;
		u[i++] = byte;
		s++;
	}
	return i == 16 ? 0 : -EINVAL;
}

/* How one driver answered, for comparison with the other. */
struct answers {
	int bind_plain;		/* BIND_IOMMUFD without a token: 0 or -errno */
	int bind_wrong;		/* with a token that is not the PF's */
	int bind_token;		/* with the PF's token */
	int region_err[VFIO_PCI_NUM_REGIONS];
	struct vfio_region_info region[VFIO_PCI_NUM_REGIONS];
};

/* Open the VF's cdev and bind it to iommufd c; 0 or -errno. */
static int cdev_bind(struct vfio_container *c, const char *cdev,
		     const char *token, int *fd)
{
	unsigned char uuid[16];
	struct bind_token bind = {
		.argsz = sizeof(bind),
		.iommufd = c->fd,
	};
	int ret = 0;

	if (token) {
		if (uuid_parse(token, uuid))
			return -EINVAL;
		bind.flags = VFIO_DEVICE_BIND_FLAG_TOKEN;
		bind.token_uuid_ptr = (uintptr_t)uuid;
	}
	*fd = open(cdev, O_RDWR);
	if (*fd < 0)
		return -errno;
	if (ioctl(*fd, VFIO_DEVICE_BIND_IOMMUFD, &bind)) {
		ret = -errno;
		close(*fd);
		*fd = -1;
	}
	return ret;
}

FIXTURE(vfpf) {
	char pf_bdf[32];
	char vf_bdf[32];
	struct vfio_container pc;	/* the PF's, type1 */
	struct vfio_dev pf;
	struct vfio_container c;	/* the VF's, iommufd */
};

FIXTURE_SETUP(vfpf)
{
	if (pci_find_device(TERN_PCI_VENDOR_ID, TERN_PCI_DEVICE_ID_PF,
			    self->pf_bdf, sizeof(self->pf_bdf)))
		SKIP(return, "no tern PF");
	if (access("/sys/module/tern_vfio_pci", F_OK))
		ASSERT_EQ(0, system("modprobe tern_vfio_pci"));
	ASSERT_EQ(0, pci_pf_to_vfio(self->pf_bdf));

	ASSERT_EQ(0, vfio_container_open(&self->pc, DMA_SIZE));
	ASSERT_EQ(0, vfio_dev_open(&self->pc, self->pf_bdf, NULL, &self->pf));
	ASSERT_EQ(0, vfio_set_vf_token(&self->pf, VF_TOKEN));
	ASSERT_EQ(0, pci_sysfs_write(self->pf_bdf, "sriov_numvfs", "1"));
	ASSERT_EQ(0, pci_vf_bdf(self->pf_bdf, 0, self->vf_bdf,
				sizeof(self->vf_bdf)));
	/* vfio-pci claims the VFs of a PF it owns. */
	ASSERT_EQ(0, pci_wait_driver(self->vf_bdf, "vfio-pci", TIMEOUT_MS));
	ASSERT_EQ(0, vfio_iommufd_open(&self->c, DMA_SIZE));
}

FIXTURE_TEARDOWN(vfpf)
{
	if (self->c.dma_va)
		vfio_container_close(&self->c);
	if (self->vf_bdf[0])
		pci_bind(self->vf_bdf, "vfio-pci");
	if (self->pf_bdf[0])
		pci_sysfs_write(self->pf_bdf, "sriov_numvfs", "0");
	if (self->pf.container)
		vfio_dev_close(&self->pf);
	if (self->pc.dma_va)
		vfio_container_close(&self->pc);
}

/* Bind the VF to driver and record how its cdev answers. */
static void ask(struct __test_metadata *_metadata, FIXTURE_DATA(vfpf) *self,
		const char *driver, struct answers *a)
{
	char cdev[PATH_MAX];
	unsigned int i;
	int fd;

	memset(a, 0, sizeof(*a));
	ASSERT_EQ(0, pci_bind(self->vf_bdf, driver));
	ASSERT_EQ(0, vfio_cdev_path(self->vf_bdf, cdev, sizeof(cdev)));

	a->bind_plain = cdev_bind(&self->c, cdev, NULL, &fd);
	if (fd >= 0)
		close(fd);
	a->bind_wrong = cdev_bind(&self->c, cdev,
				  "3f0c9a1e-7000-4000-8000-00000000dead", &fd);
	if (fd >= 0)
		close(fd);
	a->bind_token = cdev_bind(&self->c, cdev, VF_TOKEN, &fd);
	/* The regions through whichever bind succeeded. */
	if (fd < 0 && !a->bind_plain)
		cdev_bind(&self->c, cdev, NULL, &fd);
	ASSERT_LE(0, fd) TH_LOG("%s: no bind succeeded", driver);
	for (i = 0; i < VFIO_PCI_NUM_REGIONS; i++) {
		a->region[i].argsz = sizeof(a->region[i]);
		a->region[i].index = i;
		if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &a->region[i]))
			a->region_err[i] = -errno;
	}
	close(fd);
	TH_LOG("%s: bind without token %d, wrong token %d, token %d",
	       driver, a->bind_plain, a->bind_wrong, a->bind_token);
}

TEST_F(vfpf, as_vfio_pci)
{
	struct answers plain, tern;
	unsigned int i;

	ask(_metadata, self, "vfio-pci", &plain);
	ask(_metadata, self, "tern_vfio_pci", &tern);

	EXPECT_EQ(plain.bind_plain, tern.bind_plain);
	EXPECT_EQ(plain.bind_wrong, tern.bind_wrong);
	EXPECT_EQ(plain.bind_token, tern.bind_token);
	for (i = 0; i < VFIO_PCI_NUM_REGIONS; i++) {
		EXPECT_EQ(plain.region_err[i], tern.region_err[i])
			TH_LOG("region %u", i);
		EXPECT_EQ(plain.region[i].flags, tern.region[i].flags)
			TH_LOG("region %u", i);
		EXPECT_EQ(plain.region[i].size, tern.region[i].size)
			TH_LOG("region %u", i);
		EXPECT_EQ(plain.region[i].offset, tern.region[i].offset)
			TH_LOG("region %u", i);
	}
	/* The VF's BARs are there to map (the device's two BARs). */
	EXPECT_EQ(0, tern.region_err[TERN_VF_BAR_REGS]);
	EXPECT_NE(0u, tern.region[TERN_VF_BAR_REGS].size);
	EXPECT_NE(0u, tern.region[TERN_VF_BAR_DEVMEM].size);

	if (plain.bind_token == -EINVAL) {
		/* Before 6.17 the cdev path takes no token at all. */
		TH_LOG("kernel without VF tokens on the cdev path");
	} else {
		/* The PF's token is required and must be the right one. */
		EXPECT_EQ(0, tern.bind_token);
		EXPECT_NE(0, tern.bind_plain);
		EXPECT_NE(0, tern.bind_wrong);
	}
}

FIXTURE(precopy) {
	struct tern_env e;
};

FIXTURE_SETUP(precopy)
{
	/* VF 0 the source, VF 1 the destination. */
	int ret = env_setup(&self->e, 2, true);

	if (ret == -ENODEV)
		SKIP(return, "no tern PF");
	ASSERT_EQ(0, ret);
}

FIXTURE_TEARDOWN(precopy)
{
	env_teardown(&self->e);
}

static int precopy_info(int fd, __u32 flags_in, struct vfio_precopy_info *i)
{
	memset(i, 0, sizeof(*i));
	i->argsz = sizeof(*i);
	i->flags = flags_in;
	return ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, i) ? -errno : 0;
}

TEST_F(precopy, info_v2)
{
	struct vfio_device_feature f = {
		.argsz = sizeof(f),
		.flags = VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET |
			 VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2,
	};
	struct vfio_dev *d = &self->e.dev[0];
	struct vfio_precopy_info before, after;
	struct mig_buf s = {};
	int fd;

	ASSERT_EQ(0, mig_set_state(d, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	ASSERT_LE(0, fd);
	/* Before the opt-in, on every kernel: flags is 0 whatever came in. */
	ASSERT_EQ(0, precopy_info(fd, ~0u, &before));
	EXPECT_EQ(0u, before.flags);
	EXPECT_GT(before.initial_bytes, self->e.devmem_size);

	if (ioctl(d->fd, VFIO_DEVICE_FEATURE, &f)) {
		int err = errno;

		close(fd);
		ASSERT_EQ(ENOTTY, err);
		SKIP(return,
		     "kernel without VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 (7.1)");
	}
	f.flags = VFIO_DEVICE_FEATURE_SET |
		  VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2;
	ASSERT_EQ(0, ioctl(d->fd, VFIO_DEVICE_FEATURE, &f));

	/* Opted in: flags is an output, and tern announces no REINIT. */
	ASSERT_EQ(0, precopy_info(fd, ~0u, &after));
	EXPECT_EQ(0u, after.flags);
	EXPECT_EQ(before.initial_bytes, after.initial_bytes);
	EXPECT_EQ(-ENOMSG, mig_read(fd, &s));
	EXPECT_EQ(before.initial_bytes, s.len);
	ASSERT_EQ(0, precopy_info(fd, VFIO_PRECOPY_INFO_REINIT, &after));
	EXPECT_EQ(0u, after.flags);
	EXPECT_EQ(0u, after.initial_bytes);
	mig_buf_free(&s);
	close(fd);
	EXPECT_EQ(0, mig_set_state(d, VFIO_DEVICE_STATE_RUNNING, NULL));
}

/* Opt in to PRECOPY_INFOv2; -ENOTTY on a kernel without it. */
static int opt_in_v2(struct vfio_dev *d)
{
	struct vfio_device_feature f = {
		.argsz = sizeof(f),
		.flags = VFIO_DEVICE_FEATURE_SET |
			 VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2,
	};

	return ioctl(d->fd, VFIO_DEVICE_FEATURE, &f) ? -errno : 0;
}

#define REINIT_Q	2
#define RING_OLD	64
#define RING_NEW	128

struct ring_setup {
	uint64_t base;
	uint32_t size;
	uint32_t msix;
};

/* The guest driver programs queue REINIT_Q of the VF at regs. */
static void queue_setup(void *regs, const struct ring_setup *r)
{
	unsigned int q = TERN_VF_REG_Q(REINIT_Q);

	mmio_write32(regs, q + TERN_Q_CTRL, 0);
	mmio_write64lh(regs, q + TERN_Q_BASE_LO, r->base);
	mmio_write32(regs, q + TERN_Q_SIZE, r->size);
	mmio_write32(regs, q + TERN_Q_MSIX, r->msix);
	mmio_write32(regs, q + TERN_Q_CTRL, TERN_Q_CTRL_ENABLE);
}

static void queue_get(void *regs, struct ring_setup *r)
{
	unsigned int q = TERN_VF_REG_Q(REINIT_Q);

	r->base = mmio_read64lh(regs, q + TERN_Q_BASE_LO);
	r->size = mmio_read32(regs, q + TERN_Q_SIZE);
	r->msix = mmio_read32(regs, q + TERN_Q_MSIX);
}

/* Two rings in guest memory: the old setup and the new one. */
static void rings(struct __test_metadata *_metadata, struct tern_env *e,
		  struct ring_setup *old, struct ring_setup *new)
{
	ASSERT_NE(NULL, vfio_dma_alloc(&e->c, RING_OLD * TERN_DESC_SIZE, 4096,
				       &old->base));
	ASSERT_NE(NULL, vfio_dma_alloc(&e->c, RING_NEW * TERN_DESC_SIZE, 4096,
				       &new->base));
	old->size = RING_OLD;
	old->msix = 0;
	new->size = RING_NEW;
	new->msix = 1;
}

/*
 * The images of a stream from its offset @from (a record boundary):
 * how many begin there, how many of them are full, and the stream bytes
 * from @from to the end of the last image.
 */
static void stream_images(const struct mig_buf *s, size_t from,
			  unsigned int *images, unsigned int *full)
{
	size_t pos = from;

	*images = *full = 0;
	if (!pos)
		pos = TERN_STREAM_HDR_SIZE;
	while (pos + TERN_STREAM_REC_SIZE <= s->len) {
		const struct tern_stream_rec *r = (const void *)(s->data + pos);
		const struct tern_image_hdr *h = (const void *)(r + 1);
		uint32_t len = le32toh(r->length);

		if (le16toh(r->type) == TERN_REC_IMAGE &&
		    le16toh(r->flags) & TERN_REC_F_FIRST) {
			(*images)++;
			if (len >= TERN_IMAGE_HDR_SIZE &&
			    le16toh(h->type) == TERN_IMAGE_FULL)
				(*full)++;
		}
		pos += TERN_STREAM_REC_SIZE + len;
	}
}

/* Finish the source's stream (stop-copy) and load it into VF 1. */
static void finish_and_load(struct __test_metadata *_metadata,
			    struct tern_env *e, int fd, struct mig_buf *s)
{
	EXPECT_EQ(0, mig_set_state(&e->dev[0], VFIO_DEVICE_STATE_PRE_COPY_P2P,
				   NULL));
	ASSERT_EQ(0, mig_set_state(&e->dev[0], VFIO_DEVICE_STATE_STOP_COPY,
				   NULL));
	ASSERT_EQ(0, mig_read(fd, s));
	ASSERT_EQ(0, mig_set_state(&e->dev[0], VFIO_DEVICE_STATE_STOP, NULL));
	close(fd);
	ASSERT_EQ(0, mig_load(&e->dev[1], s, 32u << 10));
	ASSERT_EQ(0, mig_set_state(&e->dev[1], VFIO_DEVICE_STATE_RUNNING,
				   NULL));
}

TEST_F(precopy, reinit)
{
	struct vfio_dev *d = &self->e.dev[0];
	struct ring_setup old, new, got;
	struct vfio_precopy_info i, again;
	unsigned int images, full;
	struct mig_buf s = {};
	size_t before;
	int fd, ret;

	rings(_metadata, &self->e, &old, &new);
	queue_setup(self->e.regs[0], &old);
	ret = opt_in_v2(d);
	if (ret == -ENOTTY)
		SKIP(return,
		     "kernel without VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 (7.1)");
	ASSERT_EQ(0, ret);

	ASSERT_EQ(0, mig_set_state(d, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, precopy_info(fd, 0, &i));
	EXPECT_EQ(0u, i.flags);
	EXPECT_EQ(-ENOMSG, mig_read(fd, &s));
	EXPECT_EQ(i.initial_bytes, s.len);
	ASSERT_EQ(0, precopy_info(fd, 0, &i));
	EXPECT_EQ(0u, i.flags);
	EXPECT_EQ(0u, i.initial_bytes);
	EXPECT_EQ(0u, i.dirty_bytes);

	/* The guest sets the queue up anew: new initial data. */
	queue_setup(self->e.regs[0], &new);
	ASSERT_EQ(0, precopy_info(fd, 0, &i));
	EXPECT_EQ(VFIO_PRECOPY_INFO_REINIT, i.flags);
	EXPECT_GT(i.initial_bytes, self->e.devmem_size);
	EXPECT_LT(i.initial_bytes, s.len);
	EXPECT_EQ(0u, i.dirty_bytes);
	/* Reported once; the new initial data stays to be read. */
	ASSERT_EQ(0, precopy_info(fd, VFIO_PRECOPY_INFO_REINIT, &again));
	EXPECT_EQ(0u, again.flags);
	EXPECT_EQ(i.initial_bytes, again.initial_bytes);
	EXPECT_EQ(0u, again.dirty_bytes);

	/* It is a full image, exactly initial_bytes long. */
	before = s.len;
	EXPECT_EQ(-ENOMSG, mig_read(fd, &s));
	EXPECT_EQ(i.initial_bytes, s.len - before);
	stream_images(&s, before, &images, &full);
	EXPECT_EQ(1u, images);
	EXPECT_EQ(1u, full);
	ASSERT_EQ(0, precopy_info(fd, 0, &i));
	EXPECT_EQ(0u, i.flags);
	EXPECT_EQ(0u, i.initial_bytes);
	EXPECT_EQ(0u, i.dirty_bytes);

	finish_and_load(_metadata, &self->e, fd, &s);
	stream_images(&s, 0, &images, &full);
	EXPECT_EQ(3u, images);	/* full, full, the final increment */
	EXPECT_EQ(2u, full);
	queue_get(self->e.regs[1], &got);
	EXPECT_EQ(new.base, got.base);
	EXPECT_EQ(new.size, got.size);
	EXPECT_EQ(new.msix, got.msix);
	EXPECT_TRUE(mmio_read32(self->e.regs[1], TERN_VF_REG_Q(REINIT_Q) +
				TERN_Q_STATUS) & TERN_Q_STS_ENABLED);
	mig_buf_free(&s);
}

TEST_F(precopy, no_reinit)
{
	struct vfio_dev *d = &self->e.dev[0];
	struct ring_setup old, new, got;
	unsigned int images, full;
	struct vfio_precopy_info i;
	struct mig_buf s = {};
	size_t before;
	int fd;

	rings(_metadata, &self->e, &old, &new);
	queue_setup(self->e.regs[0], &old);
	ASSERT_EQ(0, mig_set_state(d, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	ASSERT_LE(0, fd);
	EXPECT_EQ(-ENOMSG, mig_read(fd, &s));

	queue_setup(self->e.regs[0], &new);
	ASSERT_EQ(0, precopy_info(fd, ~0u, &i));
	EXPECT_EQ(0u, i.flags);
	EXPECT_EQ(0u, i.initial_bytes);
	/* Only registers changed: no increment worth sending yet. */
	EXPECT_EQ(0u, i.dirty_bytes);
	before = s.len;
	EXPECT_EQ(-ENOMSG, mig_read(fd, &s));
	EXPECT_EQ(before, s.len);

	finish_and_load(_metadata, &self->e, fd, &s);
	stream_images(&s, 0, &images, &full);
	EXPECT_EQ(2u, images);	/* the full image, the final increment */
	EXPECT_EQ(1u, full);
	queue_get(self->e.regs[1], &got);
	EXPECT_EQ(new.base, got.base);
	EXPECT_EQ(new.size, got.size);
	EXPECT_EQ(new.msix, got.msix);
	mig_buf_free(&s);
}

TEST_HARNESS_MAIN
