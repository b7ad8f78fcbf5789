// SPDX-License-Identifier: GPL-2.0
/*
 * Mutated migration streams on a destination VF (reliability.rst, R1).
 *
 * A valid stream is saved from VF A by pre-copy (a FULL image and two
 * increments), then mutated copies of it are fed to VF B through the
 * VFIO migration uAPI.  Structure-aware mutations change one field of
 * the stream header, of a record header, of the END totals or of a
 * device image header, or bytes of an image payload, and recompute the
 * CRCs so that the checks behind them are reached; raw mutations flip
 * bits, truncate, drop or duplicate records without fixing anything.
 *
 * A mutated stream must be refused (RESUMING -> STOP fails) unless it
 * is, by this file's reference reading of migration-stream.rst, a valid
 * stream carrying the same images in the same records: changing an
 * optional record only, say, changes nothing the destination uses, and
 * such no-ops are counted apart, not as corruptions.
 *
 * Afterwards B must still load the good stream with A's device memory.
 * Usage: tern_fuzz_test [-n STREAMS] [-s SEED]; the seed is printed and
 * a run is reproducible from it.
 */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tern/tern_stream.h>

#include "kselftest.h"
#include "lib/env_util.h"
#include "lib/mig_util.h"

#define A		0
#define B		1
#define PIECE		(256u << 10)
#define MAX_RECS	64
/* How often the good stream is loaded and checked during the run. */
#define CHECK_EVERY	1000

/*
 * The record CRC, the one place that knows what it covers: the payload
 * in version 1; from version 2 the record header with crc = 0, then the
 * payload.
 */
static uint32_t rec_crc(const struct tern_stream_rec *r, const void *payload)
{
	uint32_t crc = ~0u;

#if TERN_STREAM_VERSION >= 2
	struct tern_stream_rec h = *r;

	h.crc = 0;
	crc = tern_crc32c(crc, &h, sizeof(h));
#endif
	crc = tern_crc32c(crc, payload, le32toh(r->length));
	return ~crc;
}

static uint32_t hdr_crc(const struct tern_stream_hdr *hdr)
{
	struct tern_stream_hdr h = *hdr;

	h.crc = 0;
	return ~tern_crc32c(~0u, &h, sizeof(h));
}

static void fix_hdr_crc(uint8_t *s)
{
	struct tern_stream_hdr *h = (void *)s;

	h->crc = htole32(hdr_crc(h));
}

/* Where the records of a stream are, as far as their lengths say. */
struct layout {
	size_t off[MAX_RECS];
	unsigned int nr;
};

static void parse(const uint8_t *s, size_t len, struct layout *l)
{
	size_t off = TERN_STREAM_HDR_SIZE;

	l->nr = 0;
	while (off + TERN_STREAM_REC_SIZE <= len && l->nr < MAX_RECS) {
		const struct tern_stream_rec *r = (const void *)(s + off);

		l->off[l->nr++] = off;
		off += TERN_STREAM_REC_SIZE + (uint64_t)le32toh(r->length);
	}
}

static struct tern_stream_rec *rec(uint8_t *s, const struct layout *l,
				   unsigned int i)
{
	return (void *)(s + l->off[i]);
}

static void fix_rec_crc(uint8_t *s, size_t len, size_t off)
{
	struct tern_stream_rec *r = (void *)(s + off);

	if (off + TERN_STREAM_REC_SIZE + le32toh(r->length) <= len)
		r->crc = htole32(rec_crc(r, r + 1));
}

static bool all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len--)
		if (*b++)
			return false;
	return true;
}

/*
 * The END record of a valid stream with the images of good's: its
 * nr_records counts the records actually sent, which optional records
 * dropped or repeated change.
 */
static bool same_end(const struct tern_stream_rec *r,
		     const struct tern_stream_rec *good, uint32_t nr_records)
{
	const struct tern_stream_end *e = (const void *)(r + 1);
	const struct tern_stream_end *ge = (const void *)(good + 1);

	return le32toh(r->length) == TERN_STREAM_END_SIZE &&
	       le32toh(e->nr_records) == nr_records &&
	       e->nr_images == ge->nr_images &&
	       e->image_bytes == ge->image_bytes;
}

/*
 * The reference reader: is s a valid stream (migration-stream.rst,
 * reserved fields zero) whose mandatory records are those of good, in
 * order?  Such a mutation is a no-op for the destination.
 */
static bool same_valid_stream(const uint8_t *s, size_t len,
			      const uint8_t *good, const struct layout *gl)
{
	const struct tern_stream_hdr *h = (const void *)s;
	size_t off = TERN_STREAM_HDR_SIZE;
	unsigned int seq = 0, g = 0;

	if (len < TERN_STREAM_HDR_SIZE ||
	    memcmp(s, good, offsetof(struct tern_stream_hdr, rsvd0)) ||
	    !all_zero(&h->rsvd0, offsetof(struct tern_stream_hdr, crc) -
		      offsetof(struct tern_stream_hdr, rsvd0)) ||
	    le32toh(h->crc) != hdr_crc(h))
		return false;
	while (off + TERN_STREAM_REC_SIZE <= len) {
		const struct tern_stream_rec *r = (const void *)(s + off);
		size_t n = TERN_STREAM_REC_SIZE + le32toh(r->length);
		uint16_t type = le16toh(r->type);

		if (le32toh(r->seq) != seq++ || off + n > len ||
		    le32toh(r->length) > TERN_REC_MAX_PAYLOAD ||
		    le32toh(r->crc) != rec_crc(r, r + 1))
			return false;
		if (type & TERN_REC_OPTIONAL) {
			if (r->flags || r->offset)
				return false;
		} else {
			const struct tern_stream_rec *gr;

			/* Skip the good stream's optional records. */
			while (g < gl->nr &&
			       le16toh(((const struct tern_stream_rec *)
					(good + gl->off[g]))->type) &
			       TERN_REC_OPTIONAL)
				g++;
			if (g >= gl->nr)
				return false;
			gr = (const void *)(good + gl->off[g++]);
			/* seq and crc may differ with optional records. */
			if (r->type != gr->type || r->flags != gr->flags ||
			    r->length != gr->length || r->offset != gr->offset)
				return false;
			if (type == TERN_REC_END)
				return off + n == len && same_end(r, gr, seq - 1);
			if (memcmp(r + 1, gr + 1, le32toh(r->length)))
				return false;
		}
		off += n;
	}
	return false;
}

/* A small reproducible PRNG (xorshift64*), independent of libc. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

/* A new value for an n-byte field: a bit flip, +-1, 0, ~0 or random. */
static void mutate_field(uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	memcpy(&v, p, n);
	switch (rnd_below(5)) {
	case 0:
		v ^= 1ull << rnd_below(8 * n);
		break;
	case 1:
		v += rnd_below(2) ? 1 : -1;
		break;
	case 2:
		v = 0;
		break;
	case 3:
		v = ~0ull;
		break;
	default:
		v = rnd();
	}
	memcpy(p, &v, n);
}

enum kind {
	K_HDR,		/* stream header field, header CRC fixed */
	K_REC,		/* record header field, record CRC fixed */
	K_END,		/* END total, END CRC fixed */
	K_PAYLOAD,	/* image payload bytes, record CRC fixed */
	K_IMAGE_HDR,	/* device image header field, all CRCs fixed */
	K_FLIP,		/* raw bit flips, nothing fixed */
	K_TRUNC,	/* the stream cut short */
	K_DROP,		/* a record dropped, seq and CRCs fixed */
	K_DUP,		/* a record repeated, seq and CRCs fixed */
	NR_KINDS
};

static const char * const kind_name[NR_KINDS] = {
	"stream header field", "record header field", "END total",
	"image payload", "image header field", "raw bit flips",
	"truncation", "record dropped", "record repeated",
};

/*
 * The fields a mutation may pick: offset and size within the struct.
 * A device image's flags and reserved words are ignored on load
 * (device.rst, "State image"): changing them is no corruption.
 */
struct field {
	unsigned int off, size;
};

#define F(type, m) { offsetof(type, m), sizeof(((type *)0)->m) }

static const struct field hdr_fields[] = {
	F(struct tern_stream_hdr, magic), F(struct tern_stream_hdr, version),
	F(struct tern_stream_hdr, hdr_size), F(struct tern_stream_hdr, vendor),
	F(struct tern_stream_hdr, device),
	F(struct tern_stream_hdr, image_version),
	F(struct tern_stream_hdr, nr_queues),
	F(struct tern_stream_hdr, devmem_size),
	F(struct tern_stream_hdr, flags), F(struct tern_stream_hdr, rsvd0),
	{ offsetof(struct tern_stream_hdr, rsvd1), 8 },
	{ offsetof(struct tern_stream_hdr, rsvd1) + 24, 8 },
	F(struct tern_stream_hdr, rsvd2),
};

static const struct field rec_fields[] = {
	F(struct tern_stream_rec, type), F(struct tern_stream_rec, flags),
	F(struct tern_stream_rec, length), F(struct tern_stream_rec, offset),
	F(struct tern_stream_rec, seq),
};

static const struct field end_fields[] = {
	F(struct tern_stream_end, nr_records),
	F(struct tern_stream_end, nr_images),
	F(struct tern_stream_end, image_bytes),
};

static const struct field image_fields[] = {
	F(struct tern_image_hdr, magic), F(struct tern_image_hdr, version),
	F(struct tern_image_hdr, type), F(struct tern_image_hdr, hdr_size),
	F(struct tern_image_hdr, total_size),
	F(struct tern_image_hdr, session), F(struct tern_image_hdr, seq),
	F(struct tern_image_hdr, devmem_size),
	F(struct tern_image_hdr, nr_queues),
	F(struct tern_image_hdr, page_shift),
	F(struct tern_image_hdr, nr_pages),
	F(struct tern_image_hdr, regs_offset),
	F(struct tern_image_hdr, regs_size),
	F(struct tern_image_hdr, index_offset),
	F(struct tern_image_hdr, data_offset),
};

static const struct field *pick(const struct field *f, size_t nr)
{
	return &f[rnd_below(nr)];
}

/* The stream being mutated; the good one and its layout. */
struct fuzz {
	const uint8_t *good;
	size_t good_len;
	struct layout gl;
	uint8_t *s;
	size_t len;
	size_t cap;
};

static unsigned int rec_of_type(struct fuzz *f, uint16_t type)
{
	unsigned int i, n = 0, pickn;

	for (i = 0; i < f->gl.nr; i++)
		n += le16toh(rec(f->s, &f->gl, i)->type) == type;
	pickn = rnd_below(n);
	for (i = 0; i < f->gl.nr; i++)
		if (le16toh(rec(f->s, &f->gl, i)->type) == type && !pickn--)
			return i;
	return 0;
}

/* Recompute the CRC of the image that starts at record first. */
static void fix_image_crc(struct fuzz *f, unsigned int first)
{
	struct tern_image_hdr *ih = (void *)(rec(f->s, &f->gl, first) + 1);
	uint32_t crc = ~0u;
	unsigned int i;

	ih->crc = 0;
	for (i = first; i < f->gl.nr; i++) {
		struct tern_stream_rec *r = rec(f->s, &f->gl, i);

		if (i > first && (le16toh(r->type) != TERN_REC_IMAGE ||
				  le16toh(r->flags) & TERN_REC_F_FIRST))
			break;
		crc = tern_crc32c(crc, r + 1, le32toh(r->length));
	}
	ih->crc = htole32(~crc);
	for (i = first; i < f->gl.nr; i++) {
		struct tern_stream_rec *r = rec(f->s, &f->gl, i);

		if (i > first && (le16toh(r->type) != TERN_REC_IMAGE ||
				  le16toh(r->flags) & TERN_REC_F_FIRST))
			break;
		fix_rec_crc(f->s, f->len, f->gl.off[i]);
	}
}

/* Renumber the records and fix every CRC and the END record count. */
static void renumber(struct fuzz *f)
{
	struct layout l;
	unsigned int i;

	parse(f->s, f->len, &l);
	for (i = 0; i < l.nr; i++) {
		struct tern_stream_rec *r = rec(f->s, &l, i);

		r->seq = htole32(i);
		if (le16toh(r->type) == TERN_REC_END &&
		    le32toh(r->length) == TERN_STREAM_END_SIZE)
			((struct tern_stream_end *)(r + 1))->nr_records =
				htole32(i);
		fix_rec_crc(f->s, f->len, l.off[i]);
	}
}

static void cut_record(struct fuzz *f, unsigned int i, bool dup)
{
	size_t at = f->gl.off[i];
	size_t end = i + 1 < f->gl.nr ? f->gl.off[i + 1] : f->len;
	size_t n = end - at;

	if (dup) {
		memmove(f->s + end + n, f->s + end, f->len - end);
		memcpy(f->s + end, f->s + at, n);
		f->len += n;
	} else {
		memmove(f->s + at, f->s + end, f->len - end);
		f->len -= n;
	}
	renumber(f);
}

/* Half of the flips land in the headers, which are small. */
static size_t flip_at(struct fuzz *f)
{
	unsigned int i = rnd_below(f->gl.nr + 1);

	if (rnd_below(2))
		return rnd_below(f->len);
	if (!i)
		return rnd_below(TERN_STREAM_HDR_SIZE);
	return f->gl.off[i - 1] + rnd_below(TERN_STREAM_REC_SIZE);
}

static void mutate(struct fuzz *f, enum kind k)
{
	unsigned int i = rnd_below(f->gl.nr), j;
	const struct field *fl;
	struct tern_stream_rec *r = rec(f->s, &f->gl, i);

	switch (k) {
	case K_HDR:
		fl = pick(hdr_fields, ARRAY_SIZE(hdr_fields));
		mutate_field(f->s + fl->off, fl->size);
		fix_hdr_crc(f->s);
		break;
	case K_REC:
		fl = pick(rec_fields, ARRAY_SIZE(rec_fields));
		mutate_field((uint8_t *)r + fl->off, fl->size);
		fix_rec_crc(f->s, f->len, f->gl.off[i]);
		break;
	case K_END:
		r = rec(f->s, &f->gl, rec_of_type(f, TERN_REC_END));
		fl = pick(end_fields, ARRAY_SIZE(end_fields));
		mutate_field((uint8_t *)(r + 1) + fl->off, fl->size);
		fix_rec_crc(f->s, f->len, (uint8_t *)r - f->s);
		break;
	case K_PAYLOAD:
		i = rec_of_type(f, TERN_REC_IMAGE);
		r = rec(f->s, &f->gl, i);
		for (j = rnd_below(4); j < 4; j++)
			((uint8_t *)(r + 1))[rnd_below(le32toh(r->length))] ^=
				1u << rnd_below(8);
		fix_rec_crc(f->s, f->len, f->gl.off[i]);
		break;
	case K_IMAGE_HDR:
		do
			i = rec_of_type(f, TERN_REC_IMAGE);
		while (!(le16toh(rec(f->s, &f->gl, i)->flags) &
			 TERN_REC_F_FIRST));
		fl = pick(image_fields, ARRAY_SIZE(image_fields));
		mutate_field((uint8_t *)(rec(f->s, &f->gl, i) + 1) + fl->off,
			     fl->size);
		fix_image_crc(f, i);
		break;
	case K_FLIP:
		for (j = rnd_below(8); j < 8; j++)
			f->s[flip_at(f)] ^= 1u << rnd_below(8);
		break;
	case K_TRUNC:
		/* Near a record boundary half of the time. */
		f->len = rnd_below(2) ? rnd_below(f->len) :
			 f->gl.off[i] + rnd_below(TERN_STREAM_REC_SIZE + 8);
		if (f->len > f->good_len)
			f->len = f->good_len - 1;
		break;
	case K_DROP:
	case K_DUP:
		cut_record(f, i, k == K_DUP);
		break;
	default:
		break;
	}
}

struct stats {
	unsigned long tried[NR_KINDS];
	unsigned long noop[NR_KINDS];
	unsigned long accepted[NR_KINDS];
	unsigned long errnos[256];
};

/*
 * Feed s to B, which is in STOP; B is in STOP again afterwards.
 * Returns 0 if the stream was accepted, else the errno that refused it.
 */
static int feed(struct tern_env *e, const uint8_t *s, size_t len)
{
	struct vfio_dev *b = &e->dev[B];
	int fd, ret;

	ret = mig_set_state(b, VFIO_DEVICE_STATE_RESUMING, &fd);
	if (ret)
		ksft_exit_fail_msg("B does not enter RESUMING: %s\n",
				   strerror(-ret));
	/* A failed write() kills the stream: stop at the first. */
	mig_write(fd, s, len, PIECE);
	close(fd);
	ret = mig_set_state(b, VFIO_DEVICE_STATE_STOP, NULL);
	if (ret && (vfio_reset(b) ||
		    mig_set_state(b, VFIO_DEVICE_STATE_STOP, NULL)))
		ksft_exit_fail_msg("B does not come back to STOP: %s\n",
				   strerror(errno));
	return -ret;
}

/* Does B take the good stream and hold A's device memory? */
static bool good_loads(struct tern_env *e, const struct mig_buf *good,
		       const uint8_t *devmem)
{
	size_t i;

	if (feed(e, good->data, good->len))
		return false;
	for (i = 0; i < e->devmem_size; i += 4)
		if (mmio_read32(e->mem[B], i) != *(uint32_t *)(devmem + i))
			return false;
	return true;
}

static void poke(uint8_t *mem, size_t off, uint32_t v)
{
	mmio_write32(mem, off, v);
}

/*
 * A's stream by pre-copy: a FULL image and an increment while it runs,
 * the final increment after it stopped.  devmem gets A's final memory.
 */
static int save_good(struct tern_env *e, struct mig_buf *s, uint8_t *devmem)
{
	struct vfio_dev *a = &e->dev[A];
	size_t i;
	int fd, ret;

	for (i = 0; i < e->devmem_size; i += 4)
		poke(e->mem[A], i, (uint32_t)(i * 2654435761u));
	ret = mig_set_state(a, VFIO_DEVICE_STATE_PRE_COPY, &fd);
	if (ret)
		return ret;
	ret = mig_read(fd, s);
	poke(e->mem[A], 3 * ENV_PAGE, 0x33);
	poke(e->mem[A], 7 * ENV_PAGE + 8, 0x77);
	if (ret == -ENOMSG)
		ret = mig_read(fd, s);
	poke(e->mem[A], 5 * ENV_PAGE + 4, 0x55);
	if (ret == -ENOMSG)
		ret = mig_set_state(a, VFIO_DEVICE_STATE_STOP_COPY, NULL) ?:
		      mig_read(fd, s);
	close(fd);
	if (!ret)
		ret = mig_set_state(a, VFIO_DEVICE_STATE_STOP, NULL);
	for (i = 0; i < e->devmem_size; i += 4)
		*(uint32_t *)(devmem + i) = mmio_read32(e->mem[A], i);
	return ret;
}

static void report(const struct stats *st, unsigned long n, uint64_t seed)
{
	unsigned long acc = 0, noop = 0;
	unsigned int k, i;

	for (k = 0; k < NR_KINDS; k++) {
		ksft_print_msg("%-20s %7lu mutated, %5lu no-op, %lu accepted\n",
			       kind_name[k], st->tried[k], st->noop[k],
			       st->accepted[k]);
		acc += st->accepted[k];
		noop += st->noop[k];
	}
	for (i = 1; i < ARRAY_SIZE(st->errnos); i++)
		if (st->errnos[i])
			ksft_print_msg("refused with %s: %lu\n", strerror(i),
				       st->errnos[i]);
	/* The figure scripts/soak reads. */
	ksft_print_msg("R1: %lu of %lu corrupted streams accepted (%lu no-op mutations not counted), seed %llu\n",
		       acc, n - noop, noop, (unsigned long long)seed);
}

static void fuzz(struct tern_env *e, struct fuzz *f, struct stats *st,
		 unsigned long n, const struct mig_buf *good,
		 const uint8_t *devmem)
{
	unsigned long done = 0;
	uint64_t t0 = now_ms();

	while (done < n) {
		enum kind k = rnd_below(NR_KINDS);
		int err;

		memcpy(f->s, f->good, f->good_len);
		f->len = f->good_len;
		mutate(f, k);
		if (f->len == f->good_len && !memcmp(f->s, f->good, f->len))
			continue;	/* no change at all: draw again */
		st->tried[k]++;
		done++;
		err = feed(e, f->s, f->len);
		if (same_valid_stream(f->s, f->len, f->good, &f->gl)) {
			st->noop[k]++;
		} else if (!err) {
			st->accepted[k]++;
			ksft_print_msg("accepted corrupted stream #%lu (%s)\n",
				       done, kind_name[k]);
		} else {
			st->errnos[err < 256 ? err : 0]++;
		}
		if (done % CHECK_EVERY == 0) {
			if (!good_loads(e, good, devmem))
				ksft_exit_fail_msg("good stream fails after %lu\n",
						   done);
			ksft_print_msg("%lu streams, %llu s\n", done,
				       (unsigned long long)(now_ms() - t0) / 1000);
		}
	}
}

int main(int argc, char **argv)
{
	unsigned long n = 1000;
	uint64_t seed = (uint64_t)time(NULL) ^ getpid();
	struct stats st = {};
	struct mig_buf good = {};
	struct tern_env e;
	struct fuzz f = {};
	unsigned long acc = 0;
	uint8_t *devmem;
	unsigned int k;
	int opt, ret;

	while ((opt = getopt(argc, argv, "n:s:")) != -1) {
		if (opt == 'n')
			n = strtoul(optarg, NULL, 0);
		else if (opt == 's')
			seed = strtoull(optarg, NULL, 0);
		else
			ksft_exit_fail_msg("usage: %s [-n STREAMS] [-s SEED]\n",
					   argv[0]);
	}
	ksft_print_header();
	ksft_set_plan(2);
	ksft_print_msg("seed %llu (-s %llu reproduces this run)\n",
		       (unsigned long long)seed, (unsigned long long)seed);
	rng_state = seed ?: 1;
	ret = env_setup(&e, 2, false);
	if (ret == -ENODEV)
		ksft_exit_skip("no tern PF\n");
	if (ret)
		ksft_exit_fail_msg("env_setup: %s\n", strerror(-ret));
	devmem = malloc(e.devmem_size);
	if (!devmem || save_good(&e, &good, devmem) ||
	    mig_set_state(&e.dev[B], VFIO_DEVICE_STATE_STOP, NULL))
		ksft_exit_fail_msg("saving A's stream failed\n");
	f.good = good.data;
	f.good_len = good.len;
	parse(good.data, good.len, &f.gl);
	ksft_print_msg("good stream: %zu bytes, %u records\n", good.len,
		       f.gl.nr);
	f.cap = 2 * good.len;
	f.s = malloc(f.cap);
	if (!f.s || !good_loads(&e, &good, devmem))
		ksft_exit_fail_msg("the good stream does not load\n");

	fuzz(&e, &f, &st, n, &good, devmem);
	report(&st, n, seed);
	for (k = 0; k < NR_KINDS; k++)
		acc += st.accepted[k];
	ksft_test_result(!acc, "%lu corrupted streams of %lu accepted\n", acc,
			 n);
	ksft_test_result(good_loads(&e, &good, devmem) &&
			 !mig_set_state(&e.dev[B], VFIO_DEVICE_STATE_RUNNING,
					NULL),
			 "B migrates A's state after the fuzzing\n");
	free(f.s);
	free(devmem);
	mig_buf_free(&good);
	env_teardown(&e);
	ksft_finished();
}
