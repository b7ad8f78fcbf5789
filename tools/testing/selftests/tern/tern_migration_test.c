// SPDX-License-Identifier: GPL-2.0
/*
 * Loopback migration through tern_vfio_pci: the test is the VMM of two
 * VFs, A and B, in one container or iommufd (so they share one guest
 * memory), and the guest driver of both.  A's state moves to B through
 * the VFIO migration uAPI, by STOP_COPY and by PRE_COPY, while A has DMA
 * in flight, and B must go on exactly where A stopped.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib/env_util.h"
#include "lib/mig_util.h"
#include <tern/tern_stream.h>

#define TIMEOUT_MS	10000
#define NR_DESC		32
/* QEMU writes the stream in pieces of this size. */
#define WRITE_PIECE	(32u << 10)
#define A		0
#define B		1

FIXTURE(loopback) {
	struct tern_env e;
	struct work w;
};

FIXTURE_VARIANT(loopback) {
	bool iommufd;
};

FIXTURE_VARIANT_ADD(loopback, type1) {
	.iommufd = false,
};

FIXTURE_VARIANT_ADD(loopback, iommufd) {
	.iommufd = true,
};

FIXTURE_SETUP(loopback)
{
	int ret = env_setup(&self->e, 2, variant->iommufd);

	if (ret == -ENODEV)
		SKIP(return, "no tern PF");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, work_init(&self->w, &self->e.c, self->e.regs[A], 1,
			       NR_DESC));
}

FIXTURE_TEARDOWN(loopback)
{
	env_teardown(&self->e);
}

static int go(struct vfio_dev *d, uint32_t state)
{
	return mig_set_state(d, state, NULL);
}

/* Write a recognisable page of device memory through a VF's BAR. */
static void poke_devmem(uint8_t *mem, uint64_t off, uint8_t seed)
{
	unsigned int j;

	for (j = 0; j < ENV_PAGE; j += 4)
		mmio_write32(mem, off + j, seed * 0x01010101u + j);
}

static bool page_same(struct tern_env *e, uint64_t off, unsigned int len)
{
	unsigned int j;

	for (j = 0; j < len; j += 4)
		if (mmio_read32(e->mem[A], off + j) !=
		    mmio_read32(e->mem[B], off + j))
			return false;
	return true;
}

/*
 * The two VFs' device memory is the same: the first pages (the tests
 * write there) whole, and a sample of the rest, as reading all of it
 * through the BARs takes long under TCG.
 */
static bool devmem_same(struct tern_env *e)
{
	uint64_t off;

	for (off = 0; off < 16 * ENV_PAGE; off += ENV_PAGE)
		if (!page_same(e, off, ENV_PAGE))
			return false;
	for (; off < e->devmem_size; off += 61 * ENV_PAGE)
		if (!page_same(e, off, 64))
			return false;
	return page_same(e, e->devmem_size - ENV_PAGE, ENV_PAGE);
}

/*
 * Half the work runs on A, then A quiesces and the other half is queued:
 * the doorbell moves TAIL but nothing runs.  Returns what A completed.
 */
static uint64_t start_work_and_quiesce(struct __test_metadata *_metadata,
				       FIXTURE_DATA(loopback) *self,
				       struct vfio_dev *d, uint32_t p2p)
{
	uint64_t done = work_done(&self->w);
	uint32_t tail = self->w.vq.tail;

	work_add_range(&self->w, 0, NR_DESC / 2);
	EXPECT_EQ(0, work_wait(&self->w, TIMEOUT_MS));
	EXPECT_EQ(0, go(d, p2p));
	work_add_range(&self->w, NR_DESC / 2, NR_DESC);
	usleep(100000);
	EXPECT_EQ(done + NR_DESC / 2, work_done(&self->w));
	EXPECT_EQ((tail + NR_DESC / 2) % self->w.vq.size,
		  tern_vfq_head(&self->w.vq));
	EXPECT_EQ(self->w.vq.tail, tern_q_reg(&self->w.vq, TERN_Q_TAIL));
	return done + NR_DESC / 2;
}

/* The queue moves to VF `to`: it finishes A's work and takes more. */
static void check_continues(struct __test_metadata *_metadata,
			    FIXTURE_DATA(loopback) *self, int to,
			    uint64_t cnt_before)
{
	unsigned int i;

	self->w.vq.regs = self->e.regs[to];
	ASSERT_EQ(0, work_wait(&self->w, TIMEOUT_MS));
	for (i = 0; i < NR_DESC; i++)
		EXPECT_TRUE(work_block_ok(&self->w, i)) TH_LOG("block %u", i);
	/* Counters continue. */
	EXPECT_EQ(cnt_before + NR_DESC / 2, work_done(&self->w));
	self->w.pass++;
	work_add_range(&self->w, 0, NR_DESC / 2);
	ASSERT_EQ(0, work_wait(&self->w, TIMEOUT_MS));
	for (i = 0; i < NR_DESC / 2; i++)
		EXPECT_TRUE(work_block_ok(&self->w, i)) TH_LOG("block %u", i);
	EXPECT_EQ(cnt_before + NR_DESC, work_done(&self->w));
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void load_and_run(struct __test_metadata *_metadata,
			 struct vfio_dev *d, struct mig_buf *s)
{
	ASSERT_EQ(0, mig_load(d, s, WRITE_PIECE));
	ASSERT_EQ(0, go(d, VFIO_DEVICE_STATE_RUNNING));
}

TEST_F(loopback, stop_copy)
{
	struct mig_buf s = {};
	double t0, t1, t2, t3, t4, t5;
	uint64_t size, done;
	uint32_t state;
	int fd;

	poke_devmem(self->e.mem[A], 0, 0x11);
	poke_devmem(self->e.mem[A], self->e.devmem_size - ENV_PAGE, 0x22);
	done = start_work_and_quiesce(_metadata, self, &self->e.dev[A],
				      VFIO_DEVICE_STATE_RUNNING_P2P);

	ASSERT_EQ(0, go(&self->e.dev[A], VFIO_DEVICE_STATE_STOP));
	ASSERT_EQ(0, mig_data_size(&self->e.dev[A], &size));
	t0 = now_s();
	ASSERT_EQ(0, mig_set_state(&self->e.dev[A],
				   VFIO_DEVICE_STATE_STOP_COPY, &fd));
	t1 = now_s();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mig_get_state(&self->e.dev[A], &state));
	EXPECT_EQ(VFIO_DEVICE_STATE_STOP_COPY, state);
	t2 = now_s();
	ASSERT_EQ(0, mig_read(fd, &s));
	t3 = now_s();
	/* MIG_DATA_SIZE is non-zero and bounds what STOP_COPY produced. */
	EXPECT_GT(s.len, self->e.devmem_size);
	EXPECT_LE(s.len, size);
	ASSERT_EQ(0, go(&self->e.dev[A], VFIO_DEVICE_STATE_STOP));
	/* The data fd ended with its state. */
	EXPECT_EQ(-1, read(fd, s.data, 1));
	EXPECT_EQ(ENODEV, errno);
	close(fd);

	t4 = now_s();
	load_and_run(_metadata, &self->e.dev[B], &s);
	t5 = now_s();
	/* Rough figures, for comparisons in one boot (make bench measures). */
	TH_LOG("%zu stream bytes: STOP_COPY arc %.3f s, read %.3f s (%.1f MiB/s); resume %.3f s (%.1f MiB/s)",
	       s.len, t1 - t0, t3 - t2, s.len / (t3 - t2) / (1 << 20),
	       t5 - t4, s.len / (t5 - t4) / (1 << 20));
	EXPECT_TRUE(devmem_same(&self->e));
	check_continues(_metadata, self, B, done);
	mig_buf_free(&s);
}

TEST_F(loopback, precopy)
{
	uint64_t initial, dirty, size, done;
	struct mig_buf s = {};
	size_t before, full_len;
	int fd;

	work_add_range(&self->w, 0, NR_DESC / 4);
	ASSERT_EQ(0, mig_set_state(&self->e.dev[A],
				   VFIO_DEVICE_STATE_PRE_COPY, &fd));
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	EXPECT_GT(initial, self->e.devmem_size);

	/* The full image, while A runs DMA; then nothing for now. */
	work_add_range(&self->w, NR_DESC / 4, NR_DESC / 2);
	EXPECT_EQ(-ENOMSG, mig_read(fd, &s));
	EXPECT_EQ(initial, s.len);
	full_len = s.len;
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	EXPECT_EQ(0u, initial);
	EXPECT_EQ(0u, dirty);

	/* Two pages dirtied through the BAR: an increment of about that. */
	poke_devmem(self->e.mem[A], 5 * ENV_PAGE, 0x33);
	poke_devmem(self->e.mem[A], 9 * ENV_PAGE, 0x44);
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	EXPECT_EQ(0u, initial);
	EXPECT_GE(dirty, 2 * ENV_PAGE);
	EXPECT_LT(dirty, 3 * ENV_PAGE);
	before = s.len;
	EXPECT_EQ(-ENOMSG, mig_read(fd, &s));
	EXPECT_EQ(dirty, s.len - before);
	/* Three more pages: the next increment follows. */
	poke_devmem(self->e.mem[A], 1 * ENV_PAGE, 0x45);
	poke_devmem(self->e.mem[A], 2 * ENV_PAGE, 0x46);
	poke_devmem(self->e.mem[A], 3 * ENV_PAGE, 0x47);
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	EXPECT_GE(dirty, 3 * ENV_PAGE);
	EXPECT_LT(dirty, 4 * ENV_PAGE);
	before = s.len;
	EXPECT_EQ(-ENOMSG, mig_read(fd, &s));
	EXPECT_EQ(dirty, s.len - before);

	EXPECT_EQ(0, work_wait(&self->w, TIMEOUT_MS));
	done = start_work_and_quiesce(_metadata, self, &self->e.dev[A],
				      VFIO_DEVICE_STATE_PRE_COPY_P2P);
	poke_devmem(self->e.mem[A], 11 * ENV_PAGE, 0x55);
	ASSERT_EQ(0, mig_data_size(&self->e.dev[A], &size));
	ASSERT_EQ(0, mig_set_state(&self->e.dev[A],
				   VFIO_DEVICE_STATE_STOP_COPY, NULL));
	/* Stop: only the final delta (registers and one page) follows. */
	before = s.len;
	ASSERT_EQ(0, mig_read(fd, &s));
	EXPECT_GT(s.len - before, ENV_PAGE);
	EXPECT_LT(s.len - before, 2 * ENV_PAGE);
	EXPECT_LE(s.len - before, size);
	/* Info belongs to the pre-copy states only. */
	EXPECT_EQ(-EINVAL, mig_precopy_info(fd, &initial, &dirty));
	ASSERT_EQ(0, go(&self->e.dev[A], VFIO_DEVICE_STATE_STOP));
	close(fd);
	EXPECT_GT(full_len, self->e.devmem_size);

	load_and_run(_metadata, &self->e.dev[B], &s);
	EXPECT_TRUE(devmem_same(&self->e));
	check_continues(_metadata, self, B, done);
	mig_buf_free(&s);
}

/* A -> B -> A, each leg with work pending at the switch. */
TEST_F(loopback, ping_pong)
{
	struct mig_buf s = {};
	uint64_t done;
	int leg;

	for (leg = 0; leg < 2; leg++) {
		int from = leg ? B : A, to = leg ? A : B;

		self->w.pass++;
		poke_devmem(self->e.mem[from], leg * ENV_PAGE, 0x60 + leg);
		done = start_work_and_quiesce(_metadata, self,
					      &self->e.dev[from],
					      VFIO_DEVICE_STATE_RUNNING_P2P);
		ASSERT_EQ(0, go(&self->e.dev[from], VFIO_DEVICE_STATE_STOP));
		ASSERT_EQ(0, mig_save(&self->e.dev[from], &s));
		load_and_run(_metadata, &self->e.dev[to], &s);
		EXPECT_TRUE(devmem_same(&self->e));
		check_continues(_metadata, self, to, done);
		mig_buf_free(&s);
	}
}

#define SCATTER_PARAM	"/sys/module/tern_vfio_pci/parameters/scatter_buffers"

/* SG entries per command of the PF's device, from tern_pf's debugfs. */
static unsigned int pf_max_sg(struct tern_env *e)
{
	char path[128], buf[1024], *p;

	snprintf(path, sizeof(path), "/sys/kernel/debug/tern_pf/%s/aq", e->pf);
	if (file_read(path, buf, sizeof(buf)))
		return 0;
	p = strstr(buf, "max_sg: ");
	return p ? atoi(p + 8) : 0;
}

/* The largest IMAGE payload of a stream, and how many IMAGE records. */
static uint32_t max_image_rec(const struct mig_buf *s, unsigned int *nr)
{
	size_t off = TERN_STREAM_HDR_SIZE;
	uint32_t max = 0;

	*nr = 0;
	while (off + TERN_STREAM_REC_SIZE <= s->len) {
		const struct tern_stream_rec *r = (const void *)(s->data + off);
		uint32_t len = le32toh(r->length);

		if (le16toh(r->type) == TERN_REC_IMAGE) {
			max = len > max ? len : max;
			(*nr)++;
		}
		off += TERN_STREAM_REC_SIZE + len;
	}
	return max;
}

static void put_rec(struct mig_buf *o, uint16_t type, uint16_t flags,
		    uint64_t offset, uint32_t seq, const void *payload,
		    uint32_t len)
{
	struct tern_stream_rec r = {
		.type = htole16(type), .flags = htole16(flags),
		.length = htole32(len), .offset = htole64(offset),
		.seq = htole32(seq),
	};
	uint32_t crc = tern_crc32c(~0u, &r, sizeof(r));

	r.crc = htole32(tern_crc32c(crc, payload, len) ^ ~0u);
	memcpy(o->data + o->len, &r, sizeof(r));
	memcpy(o->data + o->len + sizeof(r), payload, len);
	o->len += sizeof(r) + len;
}

/*
 * The same stream with its IMAGE payloads in records of rec_len bytes
 * (the last of each image shorter): what another source could send.
 */
static int restream(const struct mig_buf *s, struct mig_buf *o,
		    uint32_t rec_len)
{
	size_t off = TERN_STREAM_HDR_SIZE, img = 0, img_len = 0;
	uint8_t *image = malloc(s->len);
	struct tern_stream_end end;
	uint32_t seq = 0;

	o->cap = s->len * 2 + (1 << 20);
	o->data = malloc(o->cap);
	if (!image || !o->data)
		return -ENOMEM;
	memcpy(o->data, s->data, TERN_STREAM_HDR_SIZE);
	o->len = TERN_STREAM_HDR_SIZE;
	while (off + TERN_STREAM_REC_SIZE <= s->len) {
		const struct tern_stream_rec *r = (const void *)(s->data + off);
		const uint8_t *payload = s->data + off + sizeof(*r);
		uint32_t len = le32toh(r->length);
		uint16_t type = le16toh(r->type);

		off += sizeof(*r) + len;
		if (type == TERN_REC_IMAGE) {
			memcpy(image + img_len, payload, len);
			img_len += len;
			/* The image ends where the next record is no IMAGE
			 * continuation. */
			if (off + sizeof(*r) <= s->len &&
			    le16toh(((const struct tern_stream_rec *)
				     (s->data + off))->type) ==
			    TERN_REC_IMAGE &&
			    !(le16toh(((const struct tern_stream_rec *)
				       (s->data + off))->flags) &
			      TERN_REC_F_FIRST))
				continue;
			for (img = 0; img < img_len; img += rec_len) {
				uint32_t n = img_len - img < rec_len ?
					     img_len - img : rec_len;

				put_rec(o, TERN_REC_IMAGE,
					img ? 0 : TERN_REC_F_FIRST, img, seq++,
					image + img, n);
			}
			img_len = 0;
		} else if (type == TERN_REC_END) {
			memcpy(&end, payload, sizeof(end));
			end.nr_records = htole32(seq);
			put_rec(o, type, 0, 0, seq++, &end, sizeof(end));
		} else {
			put_rec(o, type, le16toh(r->flags), le64toh(r->offset),
				seq++, payload, len);
		}
	}
	free(image);
	return 0;
}

/*
 * max_xfer_segments is honoured.  With data buffers of pages none of
 * which are contiguous (scatter_buffers), every page is a DMA segment:
 * the source then asks the device for no more than max_sg pages per
 * SAVE, so its records are that small, and the destination loads a
 * record bigger than that in several LOADs (checking its CRC on the
 * CPU).  Run with the device property x-max-sg=4 to make it bite; the
 * device refuses a command with more entries than it takes, so a driver
 * that ignored the limit would fail here.
 */
TEST_F(loopback, scattered_buffers)
{
	unsigned int max_sg = pf_max_sg(&self->e), nr;
	struct mig_buf s = {}, big = {};
	uint32_t max, limit;
	char old[8] = "N";

	ASSERT_LT(0, max_sg);
	limit = max_sg * ENV_PAGE < (512u << 10) ? max_sg * ENV_PAGE :
						   512u << 10;
	file_read(SCATTER_PARAM, old, sizeof(old));
	ASSERT_EQ(0, file_write(SCATTER_PARAM, "Y"));

	poke_devmem(self->e.mem[A], 0, 0x31);
	poke_devmem(self->e.mem[A], self->e.devmem_size - ENV_PAGE, 0x32);
	ASSERT_EQ(0, go(&self->e.dev[A], VFIO_DEVICE_STATE_STOP));
	ASSERT_EQ(0, mig_save(&self->e.dev[A], &s));
	max = max_image_rec(&s, &nr);
	TH_LOG("max_sg %u: %u IMAGE records, the largest %u bytes", max_sg,
	       nr, max);
	EXPECT_LE(max, limit);
	EXPECT_LE((s.len - 4096) / limit, nr);
	ASSERT_EQ(0, mig_load(&self->e.dev[B], &s, WRITE_PIECE));
	EXPECT_TRUE(devmem_same(&self->e));

	/* Records of 1 MiB, more than a command of the destination takes. */
	ASSERT_EQ(0, restream(&s, &big, TERN_REC_MAX_PAYLOAD));
	EXPECT_EQ(TERN_REC_MAX_PAYLOAD, max_image_rec(&big, &nr));
	poke_devmem(self->e.mem[B], 0, 0x99);
	ASSERT_EQ(0, mig_load(&self->e.dev[B], &big, WRITE_PIECE));
	EXPECT_TRUE(devmem_same(&self->e));
	/* A flipped payload byte is still refused. */
	big.data[big.len / 2] ^= 0x04;
	EXPECT_EQ(-EBADMSG, mig_load(&self->e.dev[B], &big, WRITE_PIECE));

	file_write(SCATTER_PARAM, old[0] == 'Y' ? "Y" : "N");
	mig_buf_free(&s);
	mig_buf_free(&big);
}

/* MIG_DATA_SIZE is non-zero in every state and bounds STOP_COPY. */
TEST_F(loopback, data_size)
{
	static const uint32_t states[] = {
		VFIO_DEVICE_STATE_RUNNING, VFIO_DEVICE_STATE_RUNNING_P2P,
		VFIO_DEVICE_STATE_STOP,
	};
	struct mig_buf s = {};
	uint64_t size;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(states); i++) {
		ASSERT_EQ(0, go(&self->e.dev[A], states[i]));
		ASSERT_EQ(0, mig_data_size(&self->e.dev[A], &size));
		EXPECT_GT(size, self->e.devmem_size);
	}
	ASSERT_EQ(0, mig_save(&self->e.dev[A], &s));
	EXPECT_LE(s.len, size);
	mig_buf_free(&s);
}

TEST_HARNESS_MAIN
