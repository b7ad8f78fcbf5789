// SPDX-License-Identifier: GPL-2.0
/*
 * Bad migration streams on a destination VF: each damage of
 * Documentation/tern/migration-stream.rst is rejected by the write()
 * that completes the bad part, with the documented errno; the VF is
 * unchanged and, after a reset, takes a good stream.  No byte of a
 * stream can change unnoticed.  Also data fd operations in the wrong
 * place, writes that fault half way, fds closed in mid-stream, and the
 * kernel log that bad streams leave.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <tern/tern_stream.h>

#include "kselftest_harness.h"
#include "lib/env_util.h"
#include "lib/mig_util.h"

#define PIECE		(32u << 10)
#define A		0
#define B		1
#define MARK_A		0x1234abcdu
#define MARK_B		0x5678ef01u

FIXTURE(stream) {
	struct tern_env e;
	struct mig_buf good;	/* A's stream */
	struct mig_buf bad;
};

FIXTURE_SETUP(stream)
{
	int ret = env_setup(&self->e, 2, false);

	if (ret == -ENODEV)
		SKIP(return, "no tern PF");
	ASSERT_EQ(0, ret);
	mmio_write32(self->e.mem[A], 0, MARK_A);
	mmio_write32(self->e.mem[B], 0, MARK_B);
	ASSERT_EQ(0, mig_set_state(&self->e.dev[A], VFIO_DEVICE_STATE_STOP,
				   NULL));
	ASSERT_EQ(0, mig_save(&self->e.dev[A], &self->good));
	ASSERT_EQ(0, mig_set_state(&self->e.dev[A],
				   VFIO_DEVICE_STATE_RUNNING, NULL));
	self->bad.data = malloc(self->good.len + 4096);
	ASSERT_NE(NULL, self->bad.data);
	memcpy(self->bad.data, self->good.data, self->good.len);
	self->bad.len = self->good.len;
}

FIXTURE_TEARDOWN(stream)
{
	mig_buf_free(&self->good);
	free(self->bad.data);
	env_teardown(&self->e);
}

static uint32_t crc32c(const void *p, size_t len)
{
	return ~tern_crc32c(~0u, p, len);
}

/* A record's CRC: its header with crc = 0, then its payload. */
static void fix_rec_crc(struct tern_stream_rec *r)
{
	r->crc = 0;
	r->crc = htole32(~tern_crc32c(tern_crc32c(~0u, r, sizeof(*r)), r + 1,
				      le32toh(r->length)));
}

static struct tern_stream_hdr *hdr(FIXTURE_DATA(stream) *self)
{
	return (void *)self->bad.data;
}

static void fix_hdr_crc(FIXTURE_DATA(stream) *self)
{
	hdr(self)->crc = 0;
	hdr(self)->crc = htole32(crc32c(hdr(self), TERN_STREAM_HDR_SIZE));
}

/* Offset of record n (0: the first after the header) in the bad stream. */
static size_t rec_off(FIXTURE_DATA(stream) *self, unsigned int n)
{
	size_t off = TERN_STREAM_HDR_SIZE;

	while (n--) {
		struct tern_stream_rec *r = (void *)(self->bad.data + off);

		off += TERN_STREAM_REC_SIZE + le32toh(r->length);
	}
	return off;
}

static struct tern_stream_rec *rec(FIXTURE_DATA(stream) *self,
				   unsigned int n)
{
	return (void *)(self->bad.data + rec_off(self, n));
}

static unsigned int nr_recs(FIXTURE_DATA(stream) *self)
{
	unsigned int n = 0;

	while (rec_off(self, n) < self->bad.len)
		n++;
	return n;
}

/*
 * Write the bad stream to B: everything before byte fail_at is taken,
 * the write() that brings byte fail_at - 1 fails with err (or, for what
 * the device checks in an IMAGE record's LOAD, which runs while the
 * next record arrives, the write() that collects that LOAD) and so does
 * every later one; leaving RESUMING fails too.  B has not changed.
 */
static void expect_reject(struct __test_metadata *_metadata,
			  FIXTURE_DATA(stream) *self, size_t fail_at, int err)
{
	struct vfio_dev *b = &self->e.dev[B];
	int fd;

	ASSERT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_RESUMING, &fd));
	ASSERT_EQ(0, mig_write(fd, self->bad.data, fail_at - 1, PIECE));
	EXPECT_EQ(-err, mig_write(fd, self->bad.data + fail_at - 1,
				  self->bad.len - fail_at + 1, PIECE));
	EXPECT_EQ(-err, mig_write(fd, self->bad.data, 1, 1));
	EXPECT_EQ(-err, mig_set_state(b, VFIO_DEVICE_STATE_STOP, NULL));
	close(fd);
	EXPECT_EQ(MARK_B, mmio_read32(self->e.mem[B], 0));
}

/* After a reset B takes A's good stream and runs with A's state. */
static void expect_usable(struct __test_metadata *_metadata,
			  FIXTURE_DATA(stream) *self)
{
	struct vfio_dev *b = &self->e.dev[B];

	ASSERT_EQ(0, vfio_reset(b));
	ASSERT_EQ(0, mig_load(b, &self->good, PIECE));
	ASSERT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_RUNNING, NULL));
	EXPECT_EQ(MARK_A, mmio_read32(self->e.mem[B], 0));
}

TEST_F(stream, good_stream_loads)
{
	expect_usable(_metadata, self);
}

TEST_F(stream, truncated)
{
	struct vfio_dev *b = &self->e.dev[B];
	size_t cut[] = { 10, self->good.len - 10,
			 rec_off(self, nr_recs(self) - 1) };
	unsigned int i;
	int fd;

	for (i = 0; i < ARRAY_SIZE(cut); i++) {
		TH_LOG("cut at %zu", cut[i]);
		ASSERT_EQ(0, vfio_reset(b));
		ASSERT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_STOP, NULL));
		ASSERT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_RESUMING,
					   &fd));
		ASSERT_EQ(0, mig_write(fd, self->good.data, cut[i], PIECE));
		EXPECT_EQ(-ENODATA, mig_set_state(b, VFIO_DEVICE_STATE_STOP,
						  NULL));
		close(fd);
	}
	expect_usable(_metadata, self);
}

TEST_F(stream, header_magic)
{
	hdr(self)->magic ^= htole32(1);
	expect_reject(_metadata, self, TERN_STREAM_HDR_SIZE, EPROTO);
	expect_usable(_metadata, self);
}

TEST_F(stream, header_bit_flip)
{
	self->bad.data[20] ^= 0x10;
	expect_reject(_metadata, self, TERN_STREAM_HDR_SIZE, EBADMSG);
	expect_usable(_metadata, self);
}

TEST_F(stream, header_version)
{
	hdr(self)->version = htole16(TERN_STREAM_VERSION + 1);
	fix_hdr_crc(self);
	expect_reject(_metadata, self, TERN_STREAM_HDR_SIZE, EPROTONOSUPPORT);
	expect_usable(_metadata, self);
}

TEST_F(stream, header_size)
{
	hdr(self)->hdr_size = htole16(TERN_STREAM_HDR_SIZE + 8);
	fix_hdr_crc(self);
	expect_reject(_metadata, self, TERN_STREAM_HDR_SIZE, EMSGSIZE);
	expect_usable(_metadata, self);
}

/* A stream from a differently configured VF. */
TEST_F(stream, header_config)
{
	struct {
		size_t off;
		unsigned int xor;
		int err;
	} cases[] = {
		{ offsetof(struct tern_stream_hdr, device), 1, EINVAL },
		{ offsetof(struct tern_stream_hdr, image_version), 2,
		  EPROTONOSUPPORT },
		{ offsetof(struct tern_stream_hdr, nr_queues), 1, EINVAL },
		{ offsetof(struct tern_stream_hdr, devmem_size) + 3, 1,
		  EINVAL },
		{ offsetof(struct tern_stream_hdr, flags), 4, EINVAL },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		TH_LOG("header byte %zu", cases[i].off);
		memcpy(self->bad.data, self->good.data, TERN_STREAM_HDR_SIZE);
		self->bad.data[cases[i].off] ^= cases[i].xor;
		fix_hdr_crc(self);
		ASSERT_EQ(0, vfio_reset(&self->e.dev[B]));
		mmio_write32(self->e.mem[B], 0, MARK_B);
		expect_reject(_metadata, self, TERN_STREAM_HDR_SIZE,
			      cases[i].err);
	}
	expect_usable(_metadata, self);
}

TEST_F(stream, record_header_seq)
{
	rec(self, 1)->seq = htole32(5);
	expect_reject(_metadata, self, rec_off(self, 2) -
		      le32toh(rec(self, 1)->length), EILSEQ);
	expect_usable(_metadata, self);
}

TEST_F(stream, record_oversized)
{
	size_t at = rec_off(self, 1) + TERN_STREAM_REC_SIZE;

	rec(self, 1)->length = htole32(TERN_REC_MAX_PAYLOAD + 1);
	expect_reject(_metadata, self, at, EMSGSIZE);
	expect_usable(_metadata, self);
}

TEST_F(stream, record_bad_image_flags)
{
	rec(self, 1)->flags |= htole16(2);
	expect_reject(_metadata, self, rec_off(self, 1) + TERN_STREAM_REC_SIZE,
		      EINVAL);
	expect_usable(_metadata, self);
}

TEST_F(stream, payload_bit_flip)
{
	self->bad.data[rec_off(self, 2) - 100] ^= 0x80;
	expect_reject(_metadata, self, rec_off(self, 2), EBADMSG);
	expect_usable(_metadata, self);
}

/* Records 2 and 1 swapped, sequence numbers kept in order. */
TEST_F(stream, records_reordered)
{
	size_t r1 = rec_off(self, 1), r2 = rec_off(self, 2);
	size_t r3 = rec_off(self, 3);

	memcpy(self->bad.data + r1, self->good.data + r2, r3 - r2);
	memcpy(self->bad.data + r1 + (r3 - r2), self->good.data + r1, r2 - r1);
	rec(self, 1)->seq = htole32(1);
	rec(self, 2)->seq = htole32(2);
	expect_reject(_metadata, self, r1 + TERN_STREAM_REC_SIZE, EILSEQ);
	expect_usable(_metadata, self);
}

/* Insert a record of type before record n; renumber what follows. */
static void insert_rec(FIXTURE_DATA(stream) *self, unsigned int n,
		       uint16_t type)
{
	size_t at = rec_off(self, n), len = 100;
	struct tern_stream_rec r = {
		.type = htole16(type),
		.length = htole32(len),
		.seq = htole32(n),
	};
	struct tern_stream_end *end;
	struct tern_stream_rec *e;
	uint8_t payload[100];
	unsigned int i, nr;

	memset(payload, 0xa5, len);
	memmove(self->bad.data + at + sizeof(r) + len, self->bad.data + at,
		self->bad.len - at);
	memcpy(self->bad.data + at, &r, sizeof(r));
	memcpy(self->bad.data + at + sizeof(r), payload, len);
	self->bad.len += sizeof(r) + len;
	nr = nr_recs(self);
	for (i = n + 1; i < nr; i++)
		rec(self, i)->seq = htole32(i);
	e = rec(self, nr - 1);
	end = (void *)(e + 1);
	end->nr_records = htole32(nr - 1);
	for (i = n; i < nr; i++)
		fix_rec_crc(rec(self, i));
}

TEST_F(stream, unknown_optional_record_skipped)
{
	insert_rec(self, 1, 0x8123);
	ASSERT_EQ(0, mig_load(&self->e.dev[B], &self->bad, PIECE));
	ASSERT_EQ(0, mig_set_state(&self->e.dev[B], VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	EXPECT_EQ(MARK_A, mmio_read32(self->e.mem[B], 0));
}

TEST_F(stream, unknown_mandatory_record)
{
	insert_rec(self, 1, 0x0123);
	expect_reject(_metadata, self, rec_off(self, 1) + TERN_STREAM_REC_SIZE,
		      EPROTO);
	expect_usable(_metadata, self);
}

/* The END record must match what arrived; the image is applied by then. */
TEST_F(stream, end_mismatch)
{
	unsigned int last = nr_recs(self) - 1;
	struct tern_stream_rec *e = rec(self, last);
	struct tern_stream_end *end = (void *)(e + 1);
	struct vfio_dev *b = &self->e.dev[B];
	int fd;

	end->nr_images = htole32(le32toh(end->nr_images) + 1);
	fix_rec_crc(e);
	ASSERT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_RESUMING, &fd));
	EXPECT_EQ(-EBADMSG, mig_write(fd, self->bad.data, self->bad.len,
				      PIECE));
	EXPECT_EQ(-EBADMSG, mig_set_state(b, VFIO_DEVICE_STATE_STOP, NULL));
	close(fd);
	expect_usable(_metadata, self);
}

TEST_F(stream, bytes_after_end)
{
	struct vfio_dev *b = &self->e.dev[B];
	int fd;

	ASSERT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_RESUMING, &fd));
	ASSERT_EQ(0, mig_write(fd, self->good.data, self->good.len, PIECE));
	EXPECT_EQ(-EINVAL, mig_write(fd, self->good.data, 8, 8));
	close(fd);
	expect_usable(_metadata, self);
}

/* Reads of a resuming fd, writes of a saving fd, info on either. */
TEST_F(stream, wrong_fd_ops)
{
	uint64_t initial, dirty;
	char buf[64] = {};
	int sfd, rfd;

	ASSERT_EQ(0, mig_set_state(&self->e.dev[A],
				   VFIO_DEVICE_STATE_PRE_COPY, &sfd));
	EXPECT_EQ(-1, write(sfd, buf, sizeof(buf)));
	EXPECT_EQ(EBADF, errno);
	ASSERT_EQ(0, mig_set_state(&self->e.dev[B], VFIO_DEVICE_STATE_STOP,
				   NULL));
	ASSERT_EQ(0, mig_set_state(&self->e.dev[B],
				   VFIO_DEVICE_STATE_RESUMING, &rfd));
	EXPECT_EQ(-1, read(rfd, buf, sizeof(buf)));
	EXPECT_EQ(EBADF, errno);
	EXPECT_EQ(-ENOTTY, mig_precopy_info(rfd, &initial, &dirty));
	/* And the precopy info outside the pre-copy states. */
	ASSERT_EQ(0, mig_set_state(&self->e.dev[A],
				   VFIO_DEVICE_STATE_STOP_COPY, NULL));
	EXPECT_EQ(-EINVAL, mig_precopy_info(sfd, &initial, &dirty));
	close(sfd);
	close(rfd);
	EXPECT_EQ(0, vfio_reset(&self->e.dev[B]));
}

/* Load the bad stream into B; 0 if B took it, leaving RESUMING. */
static int try_load(FIXTURE_DATA(stream) *self)
{
	struct vfio_dev *b = &self->e.dev[B];
	int fd, ret;

	ret = vfio_reset(b) ?:
	      mig_set_state(b, VFIO_DEVICE_STATE_STOP, NULL) ?:
	      mig_set_state(b, VFIO_DEVICE_STATE_RESUMING, &fd);
	if (ret)
		return ret;
	ret = mig_write(fd, self->bad.data, self->bad.len, 64u << 10);
	close(fd);
	return ret ?: mig_set_state(b, VFIO_DEVICE_STATE_STOP, NULL);
}

/*
 * Does this byte need a load of its own?  Every byte outside the image
 * payloads does (headers, record headers, small payloads); inside them
 * the record CRC works the same at every offset, so their first and last
 * bytes stand for the rest.  Each load costs a VF reset, and QEMU 10.0
 * under TCG may abort on the memory map churn of a few hundred of them
 * (iotlb_to_section): keep the count near 250.
 */
static bool scan_byte(FIXTURE_DATA(stream) *self, size_t at)
{
	size_t off = TERN_STREAM_HDR_SIZE, in;

	while (off < self->good.len) {
		struct tern_stream_rec *r = (void *)(self->good.data + off);
		size_t len = le32toh(r->length);

		if (at < off + TERN_STREAM_REC_SIZE + len) {
			in = at - off - TERN_STREAM_REC_SIZE;
			return at < off + TERN_STREAM_REC_SIZE ||
			       le16toh(r->type) != TERN_REC_IMAGE ||
			       !in || in == len - 1;
		}
		off += TERN_STREAM_REC_SIZE + len;
	}
	return true;
}

/*
 * Every byte of a stream is covered by a check: flip each byte (image
 * payloads by their edges, see scan_byte()) and no stream is accepted.
 * Runs with small device memory (vm-run --device-opt
 * devmem-size=1M), where a stream is a few records.
 */
TEST_F_TIMEOUT(stream, every_byte_checked, 1800)
{
	unsigned int tried = 0, accepted = 0;
	size_t at;

	if (self->e.devmem_size > (1u << 20))
		SKIP(return, "needs devmem-size=1M (device memory %llu)",
		     (unsigned long long)self->e.devmem_size);
	for (at = 0; at < self->good.len; at++) {
		if (!scan_byte(self, at))
			continue;
		self->bad.data[at] ^= 0x01;
		tried++;
		if (!try_load(self)) {
			TH_LOG("flip of byte %zu accepted", at);
			accepted++;
		}
		self->bad.data[at] = self->good.data[at];
	}
	TH_LOG("%u of %zu bytes flipped", tried, self->good.len);
	EXPECT_EQ(0, accepted);
	expect_usable(_metadata, self);
}

/*
 * A write() whose buffer faults half way takes the bytes before the
 * fault and says so; the writer goes on from there.
 */
TEST_F(stream, write_faults_half_way)
{
	struct vfio_dev *b = &self->e.dev[B];
	long page = sysconf(_SC_PAGESIZE);
	uint8_t *buf;
	ssize_t n;
	int fd;

	buf = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	memcpy(buf, self->good.data, page);
	ASSERT_EQ(0, munmap(buf + page, page));
	ASSERT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_RESUMING, &fd));
	n = write(fd, buf, 2 * page);
	EXPECT_LT(0, n);
	EXPECT_GE(page, n);
	if (n > 0)
		EXPECT_EQ(0, mig_write(fd, self->good.data + n,
				       self->good.len - n, PIECE));
	close(fd);
	munmap(buf, page);
	EXPECT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_RUNNING, NULL));
	EXPECT_EQ(MARK_A, mmio_read32(self->e.mem[B], 0));
}

/*
 * Any VFIO user can send bad streams: the kernel log takes a few lines
 * (printk's ratelimit burst is 10), not one per stream.
 */
TEST_F(stream, bad_streams_log_ratelimited)
{
	unsigned int i, lines = 0;
	char line[1024];
	int kmsg;

	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, kmsg);
	ASSERT_LE(0, lseek(kmsg, 0, SEEK_END));
	hdr(self)->magic ^= htole32(1);
	for (i = 0; i < 40; i++)
		ASSERT_EQ(-EPROTO, try_load(self));
	for (;;) {
		ssize_t n = read(kmsg, line, sizeof(line) - 1);

		if (n < 0 && errno == EPIPE)
			continue;
		if (n <= 0)
			break;
		line[n] = 0;
		if (strstr(line, "not a tern migration stream"))
			lines++;
	}
	close(kmsg);
	TH_LOG("%u lines for 40 bad streams", lines);
	EXPECT_GE(20, lines);
	expect_usable(_metadata, self);
}

TEST_F(stream, close_in_mid_stream)
{
	struct vfio_dev *a = &self->e.dev[A], *b = &self->e.dev[B];
	char buf[4096];
	int fd;

	/* The source's reader goes away half way. */
	ASSERT_EQ(0, mig_set_state(a, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	ASSERT_EQ(sizeof(buf), read(fd, buf, sizeof(buf)));
	close(fd);
	ASSERT_EQ(0, mig_set_state(a, VFIO_DEVICE_STATE_STOP, NULL));
	/* The destination's writer too. */
	ASSERT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_RESUMING, &fd));
	ASSERT_EQ(0, mig_write(fd, self->good.data, self->good.len / 2,
			       PIECE));
	close(fd);
	EXPECT_EQ(-ENODATA, mig_set_state(b, VFIO_DEVICE_STATE_STOP, NULL));
	/* The device closed with data fds open in mid-stream. */
	ASSERT_EQ(0, mig_set_state(a, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	ASSERT_EQ(sizeof(buf), read(fd, buf, sizeof(buf)));
	env_close_vf(&self->e, A);
	EXPECT_EQ(-1, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(ENODEV, errno);
	close(fd);
	ASSERT_EQ(0, env_open_vf(&self->e, A));
	/* Opening the VF reset it. */
	mmio_write32(self->e.mem[A], 0, MARK_A);
	/* A fresh session: RUNNING, and both migrate again. */
	mig_buf_free(&self->good);
	ASSERT_EQ(0, mig_set_state(a, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_save(a, &self->good));
	expect_usable(_metadata, self);
}

TEST_HARNESS_MAIN
