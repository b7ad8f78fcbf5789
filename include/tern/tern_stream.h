/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * tern migration stream: what tern_vfio_pci writes to a VFIO migration
 * data fd on the source and accepts on the destination.
 * Documentation/tern/migration-stream.rst describes it.
 *
 * A stream is a header, then records, the last of which is an END record.
 * Every field is little endian.  Like tern_hw.h this header includes only
 * <linux/types.h>, so the driver and the selftests share it.
 */
#ifndef TERN_STREAM_H
#define TERN_STREAM_H

#include <linux/types.h>

#define TERN_STREAM_MAGIC		0x4d4e5254	/* "TRNM" */
#define TERN_STREAM_VERSION		2

/*
 * The stream header: the identity and configuration of the source VF,
 * everything the destination VF must match.
 */
struct tern_stream_hdr {
	__le32	magic;		/* TERN_STREAM_MAGIC */
	__le16	version;	/* TERN_STREAM_VERSION */
	__le16	hdr_size;	/* TERN_STREAM_HDR_SIZE */
	__le16	vendor;		/* PCI vendor ID of the VF */
	__le16	device;		/* PCI device ID of the VF */
	__le16	image_version;	/* the device's state image version */
	__le16	nr_queues;	/* VF descriptor queues */
	__le64	devmem_size;	/* bytes of VF device memory */
	__le32	flags;		/* 0 */
	__le32	rsvd0;		/* 0, as are rsvd1 and rsvd2 */
	__le64	rsvd1[4];
	__le32	rsvd2;
	__le32	crc;		/* CRC32C of the header with crc = 0 */
};

#define TERN_STREAM_HDR_SIZE		72

/* Record types; bit 15 of the type set means "optional". */
#define TERN_REC_IMAGE			0x0001	/* a piece of a device image */
#define TERN_REC_END			0x0002	/* the end of the stream */
#define TERN_REC_SOURCE			0x8001	/* optional: source description */
#define TERN_REC_OPTIONAL		0x8000

/* Record flags */
#define TERN_REC_F_FIRST		(1u << 0)	/* IMAGE: begins an image */

/* Most payload bytes of one record: bounds the destination's buffer. */
#define TERN_REC_MAX_PAYLOAD		(1u << 20)

struct tern_stream_rec {
	__le16	type;		/* TERN_REC_* */
	__le16	flags;		/* TERN_REC_F_*; 0 but in IMAGE records */
	__le32	length;		/* payload bytes, <= TERN_REC_MAX_PAYLOAD */
	__le64	offset;		/* IMAGE: payload offset in its image; else 0 */
	__le32	seq;		/* 0 for the first record, then +1 */
	__le32	crc;		/* CRC32C of this header, crc = 0, and payload */
};

#define TERN_STREAM_REC_SIZE		24

/* Payload of the END record. */
struct tern_stream_end {
	__le32	nr_records;	/* records before this one */
	__le32	nr_images;	/* device images carried */
	__le64	image_bytes;	/* bytes of those images */
};

#define TERN_STREAM_END_SIZE		16

#endif /* TERN_STREAM_H */
