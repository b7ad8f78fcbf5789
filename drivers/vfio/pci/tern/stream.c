// SPDX-License-Identifier: GPL-2.0
/*
 * tern_vfio_pci: the stream header, and the compatibility string that
 * management compares before choosing a destination.
 */

#include <linux/crc32c.h>
#include <linux/pci.h>

#include "tern_vfio.h"

/* a(x) * b(x) modulo the CRC32C polynomial, bit-reflected as CRCs are. */
static u32 crc32c_mulmod(u32 a, u32 b)
{
	u32 p = 0;
	int i;

	for (i = 31; i >= 0; i--) {
		if (a & BIT(i))
			p ^= b;
		b = b & 1 ? (b >> 1) ^ 0x82f63b78 : b >> 1;
	}
	return p;
}

/**
 * tern_crc32c_shift - @crc times x^(8 * @len) modulo the CRC32C polynomial
 * @crc: a standard CRC32C value
 * @len: bytes
 *
 * CRCs are linear: for standard CRC32C values (initial value and final
 * XOR ~0), crc(A || B) == tern_crc32c_shift(crc(A), len(B)) ^ crc(B).  So
 * the CRC of a record (header and payload) follows from the CRC of its
 * header and the device's CRC of its payload, and back, without a pass
 * over the payload.  O(log @len) steps.
 *
 * Return: the product.
 */
u32 tern_crc32c_shift(u32 crc, u64 len)
{
	u32 sq = BIT(31 - 8);	/* x^8: bit 31 - n holds x^n */

	for (; len; len >>= 1) {
		if (len & 1)
			crc = crc32c_mulmod(sq, crc);
		sq = crc32c_mulmod(sq, sq);
	}
	return crc;
}

static u32 hdr_crc(const struct tern_stream_hdr *hdr)
{
	struct tern_stream_hdr h = *hdr;

	h.crc = 0;
	return ~crc32c(~0, &h, sizeof(h));
}

void tern_stream_make_hdr(struct tern_vfio_dev *tvdev,
			  struct tern_stream_hdr *hdr)
{
	struct pci_dev *pdev = tvdev->core.pdev;

	memset(hdr, 0, sizeof(*hdr));
	hdr->magic = cpu_to_le32(TERN_STREAM_MAGIC);
	hdr->version = cpu_to_le16(TERN_STREAM_VERSION);
	hdr->hdr_size = cpu_to_le16(TERN_STREAM_HDR_SIZE);
	hdr->vendor = cpu_to_le16(pdev->vendor);
	hdr->device = cpu_to_le16(pdev->device);
	hdr->image_version = cpu_to_le16(tvdev->info.image_version);
	hdr->nr_queues = cpu_to_le16(tvdev->info.nr_queues);
	hdr->devmem_size = cpu_to_le64(tvdev->info.devmem_size);
	hdr->crc = cpu_to_le32(hdr_crc(hdr));
}

/**
 * tern_stream_check_hdr - may this stream be loaded into this VF?
 * @tvdev: the destination
 * @hdr: the stream's header, as received
 *
 * Return: 0, or an errno naming the first problem, which is logged.
 */
int tern_stream_check_hdr(struct tern_vfio_dev *tvdev,
			  const struct tern_stream_hdr *hdr)
{
	struct device *dev = &tvdev->core.pdev->dev;
	struct tern_stream_hdr mine;

	if (le32_to_cpu(hdr->magic) != TERN_STREAM_MAGIC) {
		dev_err_ratelimited(dev, "stream: not a tern migration stream (magic 0x%08x)\n",
				    le32_to_cpu(hdr->magic));
		return -EPROTO;
	}
	if (le32_to_cpu(hdr->crc) != hdr_crc(hdr)) {
		dev_err_ratelimited(dev, "stream: header fails its CRC\n");
		return -EBADMSG;
	}
	if (le16_to_cpu(hdr->version) != TERN_STREAM_VERSION) {
		dev_err_ratelimited(dev, "stream: version %u, this driver reads %u\n",
				    le16_to_cpu(hdr->version), TERN_STREAM_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (le16_to_cpu(hdr->hdr_size) != TERN_STREAM_HDR_SIZE) {
		dev_err_ratelimited(dev, "stream: header size %u, expected %u\n",
				    le16_to_cpu(hdr->hdr_size), TERN_STREAM_HDR_SIZE);
		return -EMSGSIZE;
	}

	tern_stream_make_hdr(tvdev, &mine);
	if (hdr->vendor != mine.vendor || hdr->device != mine.device) {
		dev_err_ratelimited(dev, "stream: from a %04x:%04x, this is a %04x:%04x\n",
				    le16_to_cpu(hdr->vendor), le16_to_cpu(hdr->device),
				    le16_to_cpu(mine.vendor), le16_to_cpu(mine.device));
		return -EINVAL;
	}
	if (hdr->image_version != mine.image_version) {
		dev_err_ratelimited(dev, "stream: device image version %u, this VF takes %u\n",
				    le16_to_cpu(hdr->image_version),
				    le16_to_cpu(mine.image_version));
		return -EPROTONOSUPPORT;
	}
	if (hdr->nr_queues != mine.nr_queues) {
		dev_err_ratelimited(dev, "stream: source VF has %u queues, this one %u\n",
				    le16_to_cpu(hdr->nr_queues), le16_to_cpu(mine.nr_queues));
		return -EINVAL;
	}
	if (hdr->devmem_size != mine.devmem_size) {
		dev_err_ratelimited(dev, "stream: source VF has %llu bytes of device memory, this one %llu\n",
				    le64_to_cpu(hdr->devmem_size),
				    le64_to_cpu(mine.devmem_size));
		return -EINVAL;
	}
	if (hdr->flags || hdr->rsvd0 || memchr_inv(hdr->rsvd1, 0, sizeof(hdr->rsvd1)) ||
	    hdr->rsvd2) {
		dev_err_ratelimited(dev, "stream: unknown header flags 0x%x or reserved bits set\n",
				    le32_to_cpu(hdr->flags));
		return -EINVAL;
	}
	return 0;
}

/**
 * tern_compat_string - what a destination VF must match
 * @tvdev: the VF
 * @buf: receives the string
 * @size: bytes of @buf
 *
 * Two VFs can migrate into each other when their strings are equal.
 *
 * Return: the length of the string.
 */
int tern_compat_string(struct tern_vfio_dev *tvdev, char *buf, size_t size)
{
	struct pci_dev *pdev = tvdev->core.pdev;

	return scnprintf(buf, size,
			 "tern stream=%u vf=%04x:%04x image=%u queues=%u devmem=%llu\n",
			 TERN_STREAM_VERSION, pdev->vendor, pdev->device,
			 tvdev->info.image_version, tvdev->info.nr_queues,
			 tvdev->info.devmem_size);
}
