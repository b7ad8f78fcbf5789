/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * tern hardware interface: PCI IDs, registers and command formats.
 *
 * The one source of truth shared by the QEMU device model, the drivers
 * and the selftests.  Documentation/tern/device.rst describes it.
 *
 * Rules for this header: it includes only <linux/types.h>, uses fixed
 * size little-endian types for everything that lives in memory, has
 * explicit reserved fields, and gives every structure a size define
 * (TERN_..._SIZE) that users can static-assert against.  Registers are
 * 32 bits wide, little endian, and accessed with 32-bit accesses
 * (64-bit accesses to a _LO/_HI pair are also accepted).
 */
#ifndef TERN_HW_H
#define TERN_HW_H

#include <linux/types.h>

/* ---------------------------------------------------------------------
 * PCI identity
 */

/* QEMU's range for experimental devices (docs/specs/pci-ids.rst). */
#define TERN_PCI_VENDOR_ID		0x1af4
#define TERN_PCI_DEVICE_ID_PF		0x10f0
#define TERN_PCI_DEVICE_ID_VF		0x10f1

#define TERN_DEFAULT_TOTAL_VFS		8
#define TERN_MAX_TOTAL_VFS		64

/* Interface version reported by TERN_PF_REG_VERSION and IDENTIFY. */
#define TERN_IF_VERSION_MAJOR		1
#define TERN_IF_VERSION_MINOR		2

/* ---------------------------------------------------------------------
 * PF BARs
 */
#define TERN_PF_BAR_REGS		0	/* 64-bit, 4 KiB */
#define TERN_PF_BAR_DEBUG		2	/* 64-bit, 4 KiB, only with x-debug */
#define TERN_PF_BAR_MSIX		4	/* MSI-X table and PBA */
#define TERN_PF_REGS_SIZE		0x1000
#define TERN_PF_DEBUG_SIZE		0x1000
#define TERN_PF_MSIX_VECTORS		1
#define TERN_PF_MSIX_VEC_AQ		0	/* admin completions */

/* PF BAR0 registers */
#define TERN_PF_REG_MAGIC		0x000	/* RO TERN_PF_MAGIC */
#define TERN_PF_REG_VERSION		0x004	/* RO major << 16 | minor */
#define TERN_PF_REG_AQ_CAP		0x008	/* RO admin queue limits */
#define TERN_PF_REG_DEV_CAP		0x00c	/* RO device capabilities */
#define TERN_PF_REG_CTRL		0x010	/* RW control */
#define TERN_PF_REG_STATUS		0x014	/* RO status */
#define TERN_PF_REG_AQ_CMD_BASE_LO	0x020	/* RW command ring IOVA */
#define TERN_PF_REG_AQ_CMD_BASE_HI	0x024
#define TERN_PF_REG_AQ_CMD_SIZE		0x028	/* RW command ring entries */
#define TERN_PF_REG_AQ_CMD_TAIL		0x02c	/* RW doorbell: producer index */
#define TERN_PF_REG_AQ_CPL_BASE_LO	0x030	/* RW completion ring IOVA */
#define TERN_PF_REG_AQ_CPL_BASE_HI	0x034
#define TERN_PF_REG_AQ_CPL_SIZE		0x038	/* RW completion ring entries */
#define TERN_PF_REG_AQ_CPL_HEAD		0x03c	/* RW doorbell: consumer index */
#define TERN_PF_REG_AQ_CMD_HEAD		0x040	/* RO device's fetch index */
#define TERN_PF_REG_AQ_CPL_TAIL		0x044	/* RO device's post index */
#define TERN_PF_REG_AQ_INFLIGHT		0x048	/* RO fetched, not yet posted */

#define TERN_PF_MAGIC			0x4e524554	/* "TERN" */

/* TERN_PF_REG_AQ_CAP */
#define TERN_AQ_CAP_MAX_ENTRIES_MASK	0x0000ffffu
#define TERN_AQ_CAP_MAX_INFLIGHT_SHIFT	16
#define TERN_AQ_CAP_MAX_INFLIGHT_MASK	0x00ff0000u

/* TERN_PF_REG_DEV_CAP */
#define TERN_DEV_CAP_DEBUG		(1u << 0)	/* BAR2 debug block */
/* SAVE returns its chunk's CRC32C, LOAD takes TERN_LOAD_F_CRC (1.1) */
#define TERN_DEV_CAP_XFER_CRC		(1u << 1)
/* QUERY_SIZE reports TERN_QUERY_NEW_CONFIG (1.2) */
#define TERN_DEV_CAP_NEW_CONFIG		(1u << 2)

/* TERN_PF_REG_CTRL */
#define TERN_PF_CTRL_ENABLE		(1u << 0)	/* admin queue enable */
#define TERN_PF_CTRL_RESET		(1u << 1)	/* function reset, self-clearing */

/* TERN_PF_REG_STATUS */
#define TERN_PF_STS_READY		(1u << 0)	/* admin queue running */
#define TERN_PF_STS_HALTED		(1u << 1)	/* admin queue stopped on error */
#define TERN_PF_STS_DB_ERROR		(1u << 2)	/* sticky: bad doorbell value */
#define TERN_PF_STS_ERR_SHIFT		8
#define TERN_PF_STS_ERR_MASK		0x0000ff00u	/* TERN_AQ_ERR_* when HALTED */

/* Why the admin queue halted (TERN_PF_REG_STATUS bits 15:8). */
#define TERN_AQ_ERR_NONE		0x00
#define TERN_AQ_ERR_CONFIG		0x01	/* bad base or size at enable */
#define TERN_AQ_ERR_CMD_DMA		0x02	/* command fetch failed */
#define TERN_AQ_ERR_CPL_DMA		0x03	/* completion write failed */

/* Admin queue limits. */
#define TERN_AQ_MIN_ENTRIES		2
#define TERN_AQ_MAX_ENTRIES		4096
#define TERN_AQ_MAX_INFLIGHT		64
#define TERN_AQ_CMD_ALIGN		64	/* ring base alignment */
#define TERN_AQ_CPL_ALIGN		32

/* ---------------------------------------------------------------------
 * Admin commands (64 bytes) and completions (32 bytes)
 */
#define TERN_OP_IDENTIFY		0x01
#define TERN_OP_QUIESCE			0x02
#define TERN_OP_FREEZE			0x03
#define TERN_OP_RESUME			0x04
#define TERN_OP_QUERY_SIZE		0x05
#define TERN_OP_SAVE			0x06
#define TERN_OP_LOAD			0x07
#define TERN_OP_DIRTY_START		0x08
#define TERN_OP_DIRTY_REPORT		0x09
#define TERN_OP_DIRTY_STOP		0x0a
#define TERN_OP_ABORT			0x0b

/* Completion status codes. */
#define TERN_STS_SUCCESS		0x00
#define TERN_STS_INVALID_OPCODE		0x01
#define TERN_STS_INVALID_VF		0x02	/* no such VF, or VF not enabled */
#define TERN_STS_INVALID_FIELD		0x03	/* a command field is out of range */
#define TERN_STS_INVALID_STATE		0x04	/* not allowed in the VF's state */
#define TERN_STS_DMA_ERROR		0x05	/* host buffer access failed */
#define TERN_STS_NO_BASE		0x06	/* incremental save without a base */
#define TERN_STS_INVALID_OFFSET		0x07	/* save/load chunk offset */
#define TERN_STS_BUSY			0x08	/* already started */
#define TERN_STS_ABORTED		0x09	/* ended by ABORT: outcome unknown */
#define TERN_STS_DATA_CRC		0x0a	/* load: chunk CRC32C mismatch */
#define TERN_STS_IMG_MAGIC		0x10	/* load: not a tern image */
#define TERN_STS_IMG_VERSION		0x11	/* load: unsupported version */
#define TERN_STS_IMG_CONFIG		0x12	/* load: VF configuration differs */
#define TERN_STS_IMG_SIZE		0x13	/* load: sizes or offsets wrong */
#define TERN_STS_IMG_CHECKSUM		0x14	/* load: CRC32C mismatch */
#define TERN_STS_IMG_CORRUPT		0x15	/* load: contents inconsistent */
#define TERN_STS_IMG_SEQUENCE		0x16	/* load: wrong session or order */
#define TERN_STS_DIRTY_OVERFLOW		0x20	/* tracker lost pages */
#define TERN_STS_INTERNAL		0xff

/* VF number meaning "no VF" (IDENTIFY of the device only). */
#define TERN_VF_NONE			0xffff

/* TERN_OP_IDENTIFY: write struct tern_identify to addr. */
struct tern_cmd_identify {
	__le64	addr;		/* host buffer IOVA */
	__le32	len;		/* buffer length, >= TERN_IDENTIFY_SIZE */
	__le32	rsvd0;
	__le64	rsvd1[5];
};

/*
 * TERN_OP_SAVE / TERN_OP_LOAD: transfer image bytes at image offset
 * 'offset' to (save) or from (load) the scatter-gather list at sg_addr.
 * The device checksums every chunk it moves, so that software never
 * makes a CPU pass over the data: a SAVE returns the CRC32C of the bytes
 * it wrote (TERN_XFER_CRC of result0), a LOAD with TERN_LOAD_F_CRC
 * checks the bytes of its buffers against 'crc' before it takes any.
 */
struct tern_cmd_xfer {
	__le64	offset;		/* byte offset in the image */
	__le64	sg_addr;	/* IOVA of sg_count struct tern_sg entries */
	__le32	sg_count;	/* 1..tern_identify.max_sg_entries */
	__le32	crc;		/* LOAD with F_CRC: CRC32C of the buffers */
	__le64	rsvd1[4];
};

/* cmd.flags for TERN_OP_SAVE */
#define TERN_SAVE_F_START		(1u << 0)	/* take a new image, offset 0 */
#define TERN_SAVE_F_INCREMENTAL		(1u << 1)	/* with START: incremental */
/* cmd.flags for TERN_OP_LOAD */
#define TERN_LOAD_F_START		(1u << 0)	/* first chunk, offset 0 */
#define TERN_LOAD_F_CRC			(1u << 1)	/* check xfer.crc first */

/* TERN_OP_DIRTY_START: track the ranges listed at ranges_addr. */
struct tern_cmd_dirty_start {
	__le64	ranges_addr;	/* IOVA of nr_ranges struct tern_range */
	__le32	nr_ranges;	/* 1..TERN_DIRTY_MAX_RANGES */
	__u8	page_shift;	/* TERN_DIRTY_MIN..MAX_PAGE_SHIFT */
	__u8	rsvd0[3];
	__le64	rsvd1[5];
};

/* TERN_OP_DIRTY_REPORT: report and clear dirty pages in [iova, iova+len). */
struct tern_cmd_dirty_report {
	__le64	iova;		/* page aligned */
	__le64	len;		/* page aligned, non-zero */
	__le64	buf_addr;	/* IOVA of buf_entries struct tern_range */
	__le32	buf_entries;	/* >= 1 */
	__le32	rsvd0;
	__le64	rsvd1[3];
};

/*
 * TERN_OP_ABORT: end the command of cmd.vf whose tag is 'tag'.  If it is
 * still in the device, the device does no more DMA for it and posts its
 * completion with TERN_STS_ABORTED before ABORT's own completion;
 * result0 is 1 then, 0 if no such command was in the device.
 */
struct tern_cmd_abort {
	__le16	tag;		/* tag of the command to end */
	__le16	rsvd0;
	__le32	rsvd1;
	__le64	rsvd2[6];
};

struct tern_aq_cmd {
	__u8	opcode;		/* TERN_OP_* */
	__u8	flags;		/* per opcode */
	__le16	tag;		/* echoed in the completion */
	__le16	vf;		/* VF number, 0-based */
	__le16	rsvd;
	union {
		struct tern_cmd_identify	identify;
		struct tern_cmd_xfer		xfer;
		struct tern_cmd_dirty_start	dirty_start;
		struct tern_cmd_dirty_report	dirty_report;
		struct tern_cmd_abort		abort;
		__le64				dw[7];
	};
};

#define TERN_AQ_CMD_SIZE		64

struct tern_aq_cpl {
	__le64	result0;	/* per opcode */
	__le64	result1;
	__le32	result2;
	__le16	cmd_head;	/* device's command ring fetch index */
	__le16	rsvd0;
	__le16	tag;		/* the command's tag */
	__le16	status;		/* TERN_STS_* */
	__le16	rsvd1;
	__le16	flags;		/* TERN_CPL_F_*, written last */
};

#define TERN_AQ_CPL_SIZE		32
#define TERN_CPL_F_PHASE		(1u << 0)

/*
 * result0 of SAVE and LOAD: bytes moved (bits 31:0; an image is smaller
 * than 4 GiB) and, for SAVE, the standard CRC32C of those bytes (bits
 * 63:32).
 */
#define TERN_XFER_BYTES(result0)	((__u32)(result0))
#define TERN_XFER_CRC(result0)		((__u32)((result0) >> 32))

/* result2 bits */
/* save: more bytes follow; load: more bytes expected */
#define TERN_XFER_MORE			(1u << 0)
#define TERN_LOAD_APPLIED		(1u << 1)	/* load: image applied */
#define TERN_QUERY_HAS_BASE		(1u << 0)	/* query: result1 valid */
/* query: a queue's setup changed since the last FULL image */
#define TERN_QUERY_NEW_CONFIG		(1u << 1)
#define TERN_REPORT_MORE		(1u << 0)	/* report: buffer full */

/* A scatter-gather entry for SAVE and LOAD. */
struct tern_sg {
	__le64	addr;
	__le32	len;		/* > 0 */
	__le32	rsvd;
};

#define TERN_SG_SIZE			16
#define TERN_MAX_SG_ENTRIES		256	/* max_sg_entries is at most this */

/* An IOVA range: dirty tracking ranges and dirty report runs. */
struct tern_range {
	__le64	iova;
	__le64	len;
};

#define TERN_RANGE_SIZE			16

/* Data returned by TERN_OP_IDENTIFY. */
struct tern_identify {
	__le32	magic;			/* TERN_PF_MAGIC */
	__le16	if_version;		/* major << 8 | minor */
	__le16	image_version;		/* TERN_IMAGE_VERSION */
	__le16	total_vfs;
	__le16	num_vfs;		/* VFs currently enabled */
	__le16	aq_max_entries;
	__le16	aq_max_inflight;
	__le16	vf_nr_queues;
	__le16	vf_msix_vectors;
	__le16	vf_max_queue_entries;
	__le16	max_sg_entries;
	__le32	vf_max_desc_len;
	__le32	rsvd0;
	__le64	vf_devmem_size;		/* bytes, same for every VF */
	__le64	max_image_size;		/* largest image a VF can produce */
	__le32	dirty_max_ranges;
	__le32	dirty_page_shifts;	/* bit n set: 2^n byte pages */
	__le32	dirty_max_pages;	/* tracker capacity per VF */
	__le32	devmem_page_size;	/* granule of incremental images */
	__le16	vf_state;		/* TERN_VF_STATE_* of cmd.vf */
	__le16	vf_flags;		/* TERN_VF_F_* of cmd.vf */
	__le32	rsvd1;
	__le64	rsvd2[7];
};

#define TERN_IDENTIFY_SIZE		128

#define TERN_VF_STATE_RUNNING		0
#define TERN_VF_STATE_QUIESCED		1
#define TERN_VF_STATE_FROZEN		2
#define TERN_VF_STATE_NONE		0xffff	/* IDENTIFY with TERN_VF_NONE */

#define TERN_VF_F_TRACKING		(1u << 0)	/* dirty tracking on */
#define TERN_VF_F_SAVE_BASE		(1u << 1)	/* incremental save possible */
#define TERN_VF_F_SAVING		(1u << 2)	/* a saved image is open */
#define TERN_VF_F_LOADING		(1u << 3)	/* a load is staged */
#define TERN_VF_F_NEW_CONFIG		(1u << 4)	/* TERN_QUERY_NEW_CONFIG */

/* Dirty tracking limits. */
#define TERN_DIRTY_MAX_RANGES		32
#define TERN_DIRTY_MIN_PAGE_SHIFT	12	/* 4 KiB */
#define TERN_DIRTY_MAX_PAGE_SHIFT	21	/* 2 MiB */
#define TERN_DIRTY_MAX_PAGES		(1u << 20)

/* ---------------------------------------------------------------------
 * VF BARs
 */
#define TERN_VF_BAR_REGS		0	/* 64-bit, 4 KiB */
#define TERN_VF_BAR_DEVMEM		2	/* 64-bit prefetchable, devmem-size */
#define TERN_VF_BAR_MSIX		4	/* 64-bit, 4 KiB: MSI-X */
#define TERN_VF_REGS_SIZE		0x1000
#define TERN_VF_MSIX_SIZE		0x1000
#define TERN_VF_MSIX_TABLE_OFFSET	0x000
#define TERN_VF_MSIX_PBA_OFFSET		0x800

#define TERN_VF_NR_QUEUES		4
#define TERN_VF_MSIX_VECTORS		4

#define TERN_DEVMEM_DEFAULT_SIZE	(16ull << 20)
#define TERN_DEVMEM_MIN_SIZE		(1ull << 20)
#define TERN_DEVMEM_MAX_SIZE		(256ull << 20)
#define TERN_DEVMEM_PAGE_SHIFT		12
#define TERN_DEVMEM_PAGE_SIZE		(1u << TERN_DEVMEM_PAGE_SHIFT)

/* VF BAR0 registers */
#define TERN_VF_REG_MAGIC		0x000	/* RO TERN_VF_MAGIC */
#define TERN_VF_REG_CAP			0x004	/* RO queues, vectors */
#define TERN_VF_REG_DEVMEM_SIZE_LO	0x008	/* RO device memory bytes */
#define TERN_VF_REG_DEVMEM_SIZE_HI	0x00c
#define TERN_VF_REG_STATUS		0x010	/* RO */
#define TERN_VF_REG_CNT_DESC_LO		0x018	/* RO descriptors completed */
#define TERN_VF_REG_CNT_DESC_HI		0x01c
#define TERN_VF_REG_CNT_BYTES_LO	0x020	/* RO bytes processed */
#define TERN_VF_REG_CNT_BYTES_HI	0x024

#define TERN_VF_MAGIC			0x30465654	/* "TVF0" */

#define TERN_VF_CAP_QUEUES_MASK		0x000000ffu
#define TERN_VF_CAP_VECTORS_SHIFT	8
#define TERN_VF_CAP_VECTORS_MASK	0x0000ff00u

#define TERN_VF_STS_ERROR		(1u << 0)	/* some queue halted */

/* Queue q's registers are at TERN_VF_REG_Q(q) + TERN_Q_*. */
#define TERN_VF_REG_Q(q)		(0x100 + (q) * 0x40)
#define TERN_Q_BASE_LO			0x00	/* RW ring IOVA, 64-byte aligned */
#define TERN_Q_BASE_HI			0x04
#define TERN_Q_SIZE			0x08	/* RW ring entries */
#define TERN_Q_CTRL			0x0c	/* RW */
#define TERN_Q_HEAD			0x10	/* RO next descriptor to run */
#define TERN_Q_TAIL			0x14	/* RW doorbell: producer index */
#define TERN_Q_MSIX			0x18	/* RW MSI-X vector */
#define TERN_Q_STATUS			0x1c	/* RO */
#define TERN_Q_CNT_DESC_LO		0x20	/* RO descriptors completed */
#define TERN_Q_CNT_DESC_HI		0x24
#define TERN_Q_CNT_ERR_LO		0x28	/* RO descriptors failed */
#define TERN_Q_CNT_ERR_HI		0x2c
#define TERN_Q_CNT_BYTES_LO		0x30	/* RO bytes processed */
#define TERN_Q_CNT_BYTES_HI		0x34

#define TERN_Q_CTRL_ENABLE		(1u << 0)
#define TERN_Q_CTRL_INT_EN		(1u << 1)

#define TERN_Q_STS_ENABLED		(1u << 0)
#define TERN_Q_STS_HALTED		(1u << 1)
#define TERN_Q_STS_ERR_SHIFT		8
#define TERN_Q_STS_ERR_MASK		0x0000ff00u	/* TERN_Q_ERR_* */

#define TERN_Q_ERR_NONE			0x00
#define TERN_Q_ERR_CONFIG		0x01	/* bad base or size at enable */
#define TERN_Q_ERR_DOORBELL		0x02	/* tail >= size written */
#define TERN_Q_ERR_FETCH		0x03	/* descriptor fetch DMA failed */

#define TERN_Q_MIN_ENTRIES		2
#define TERN_Q_MAX_ENTRIES		4096
#define TERN_Q_ALIGN			64

/* ---------------------------------------------------------------------
 * VF descriptors (64 bytes) and completion records (32 bytes)
 */
#define TERN_DESC_NOP			0x00
#define TERN_DESC_MEMCPY		0x01	/* host src -> host dst */
#define TERN_DESC_FILL			0x02	/* pattern -> host dst */
#define TERN_DESC_CRC32C		0x03	/* CRC32C of host src */
#define TERN_DESC_TO_DEV		0x04	/* host src -> devmem offset dst */
#define TERN_DESC_FROM_DEV		0x05	/* devmem offset src -> host dst */

#define TERN_DESC_F_INTERRUPT		(1u << 0)	/* MSI-X on completion */

#define TERN_DESC_MAX_LEN		(1u << 20)

struct tern_desc {
	__u8	opcode;		/* TERN_DESC_* */
	__u8	flags;		/* TERN_DESC_F_* */
	__le16	rsvd0;
	__le32	len;		/* bytes, 1..TERN_DESC_MAX_LEN (0 for NOP) */
	__le64	src;		/* host IOVA or devmem offset */
	__le64	dst;		/* host IOVA or devmem offset */
	__le64	pattern;	/* FILL: 8-byte pattern; CRC32C: seed (low 32) */
	__le64	cpl_addr;	/* IOVA of the completion record, 0: none */
	__le64	user;		/* copied into the completion record */
	__le64	rsvd1[2];
};

#define TERN_DESC_SIZE			64

/* Descriptor completion status (tern_desc_cpl.status). */
#define TERN_DSTS_PENDING		0x00	/* never written by the device */
#define TERN_DSTS_SUCCESS		0x01
#define TERN_DSTS_INVALID_OPCODE	0x02
#define TERN_DSTS_INVALID_LEN		0x03
#define TERN_DSTS_INVALID_ADDR		0x04	/* devmem range outside the BAR */
#define TERN_DSTS_DMA_READ		0x05
#define TERN_DSTS_DMA_WRITE		0x06

struct tern_desc_cpl {
	__u8	status;		/* TERN_DSTS_* */
	__u8	rsvd0[3];
	__le32	crc;		/* CRC32C result */
	__le32	bytes;		/* bytes processed */
	__le32	index;		/* ring index of the descriptor */
	__le64	user;		/* tern_desc.user */
	__le64	rsvd1;
};

#define TERN_DESC_CPL_SIZE		32
#define TERN_DESC_CPL_ALIGN		32

/* ---------------------------------------------------------------------
 * VF state image
 *
 * header | VF registers | page index (nr_pages __le32, padded to 8) |
 * page data (nr_pages * TERN_DEVMEM_PAGE_SIZE)
 */
#define TERN_IMAGE_MAGIC		0x494e5254	/* "TRNI" */
#define TERN_IMAGE_VERSION		1
#define TERN_IMAGE_FULL			1
#define TERN_IMAGE_INCREMENTAL		2

struct tern_image_hdr {
	__le32	magic;		/* TERN_IMAGE_MAGIC */
	__le16	version;	/* TERN_IMAGE_VERSION */
	__le16	type;		/* TERN_IMAGE_FULL or _INCREMENTAL */
	__le32	hdr_size;	/* TERN_IMAGE_HDR_SIZE */
	__le32	crc;		/* CRC32C of the image with crc = 0 */
	__le64	total_size;	/* bytes, header included */
	__le64	session;	/* identifies a FULL image and its increments */
	__le32	seq;		/* 0 for FULL, +1 per INCREMENTAL */
	__le32	flags;		/* 0 */
	__le64	devmem_size;	/* source VF's device memory size */
	__le16	nr_queues;	/* source VF's queue count */
	__le16	page_shift;	/* TERN_DEVMEM_PAGE_SHIFT */
	__le32	nr_pages;	/* pages carried */
	__le32	regs_offset;	/* == hdr_size */
	__le32	regs_size;	/* TERN_IMAGE_REGS_SIZE */
	__le64	index_offset;
	__le64	data_offset;
	__le64	rsvd[6];
};

#define TERN_IMAGE_HDR_SIZE		128

struct tern_image_queue {
	__le64	base;
	__le32	size;
	__le32	ctrl;
	__le32	head;
	__le32	tail;
	__le32	msix;
	__le32	status;
	__le64	cnt_desc;
	__le64	cnt_err;
	__le64	cnt_bytes;
	__le64	rsvd;
};

#define TERN_IMAGE_QUEUE_SIZE		64

struct tern_image_regs {
	struct tern_image_queue	q[TERN_VF_NR_QUEUES];
	__le64	cnt_desc;
	__le64	cnt_bytes;
	__le64	rsvd[6];
};

#define TERN_IMAGE_REGS_SIZE		320

/* ---------------------------------------------------------------------
 * PF BAR2: fault injection (only with the x-debug=on property).
 * Not part of production hardware.
 */
#define TERN_DBG_REG_MAGIC		0x000	/* RO TERN_DBG_MAGIC */
#define TERN_DBG_REG_FAIL_CMD		0x010	/* RW ARM | opcode */
#define TERN_DBG_REG_FAIL_VF		0x014	/* RW VF or TERN_VF_NONE: any */
#define TERN_DBG_REG_FAIL_STATUS	0x018	/* RW status to complete with */
#define TERN_DBG_REG_DELAY_CMD		0x020	/* RW ARM | LATE_DMA | opcode */
#define TERN_DBG_REG_DELAY_MS		0x024	/* RW completion delay */
#define TERN_DBG_REG_DMA_FAIL		0x030	/* RW ARM | VF */
#define TERN_DBG_REG_CORRUPT_SAVE	0x038	/* RW ARM | VF (0xffff: any) */
#define TERN_DBG_REG_FIRED		0x040	/* RO faults fired so far */
#define TERN_DBG_REG_STUCK_CMD		0x050	/* RW ARM | opcode: never completes */
#define TERN_DBG_REG_STUCK_VF		0x054	/* RW VF or TERN_VF_NONE: any */
#define TERN_DBG_REG_SAVE_SHORT		0x058	/* RW most bytes per SAVE, 0: off */
#define TERN_DBG_REG_SAVE_RESIZE	0x05c	/* RW ARM | VF: image size changes */
#define TERN_DBG_REG_DIRTY_LIMIT	0x060	/* RW tracker overflows past this */

#define TERN_DBG_MAGIC			0x47424454	/* "TDBG" */
#define TERN_DBG_ARM			(1u << 31)
/* DELAY_CMD: the command's data DMA also happens at completion time. */
#define TERN_DBG_DELAY_LATE_DMA		(1u << 30)
#define TERN_DBG_OPCODE_MASK		0x000000ffu
#define TERN_DBG_VF_MASK		0x0000ffffu
#define TERN_DBG_MAX_DELAY_MS		60000

#endif /* TERN_HW_H */
