// SPDX-License-Identifier: GPL-2.0
/*
 * Mutated migration streams on a destination VF (reliability.rst, R1).
 *
 * A valid stream is saved from VF A by pre-copy (a FULL image and two
 * increments), then mutated copies of it are fed to three destination
 * VFs, a thread each, through the VFIO migration uAPI.  Structure-aware mutations change one field of
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
 * Afterwards each destination must still load the good stream with A's
 * device memory.
 * Usage: tern_fuzz_test [-n STREAMS] [-s SEED]; the seed is printed and
 * a run is reproducible from it.
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
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
/* A and three destinations, ENV_MAX_VFS of the shared library. */
#define NR_VFS		ENV_MAX_VFS
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
 * Flags and offset of an optional record: version 1 left them to the
 * record's type (SOURCE has neither); from version 2 every record but
 * IMAGE has them 0.
 */
static bool optional_ok(const struct tern_stream_rec *r)
{
#if TERN_STREAM_VERSION >= 2
	return !r->flags && !r->offset;
#else
	return le16toh(r->type) != TERN_REC_SOURCE || (!r->flags && !r->offset);
#endif
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
			if (!optional_ok(r))
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
static __thread uint64_t rng_state;

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

/* What every destination shares: the good stream and A's memory. */
struct ref {
	struct tern_env e;
	struct mig_buf good;
	struct layout gl;
	uint8_t *devmem;
};

/*
 * A thread feeding one destination VF: an FLR after each refused
 * stream sleeps 100 ms, so destinations in parallel go faster.  Each
 * draws from its own PRNG, seeded from the run's seed and its VF.
 */
struct worker {
	struct ref *ref;
	int vf;
	uint64_t seed;
	unsigned long n;
	struct fuzz f;
	struct stats st;
	pthread_t t;
};

/*
 * Feed s to VF vf, which is in STOP and is in STOP again afterwards.
 * Returns 0 if the stream was accepted, else the errno that refused it.
 */
static int feed(struct tern_env *e, int vf, const uint8_t *s, size_t len)
{
	struct vfio_dev *b = &e->dev[vf];
	int fd, ret;

	ret = mig_set_state(b, VFIO_DEVICE_STATE_RESUMING, &fd);
	if (ret)
		ksft_exit_fail_msg("VF %d does not enter RESUMING: %s\n", vf,
				   strerror(-ret));
	/* A failed write() kills the stream: stop at the first. */
	mig_write(fd, s, len, PIECE);
	close(fd);
	ret = mig_set_state(b, VFIO_DEVICE_STATE_STOP, NULL);
	if (ret && (vfio_reset(b) ||
		    mig_set_state(b, VFIO_DEVICE_STATE_STOP, NULL)))
		ksft_exit_fail_msg("VF %d does not come back to STOP: %s\n",
				   vf, strerror(errno));
	return -ret;
}

/* Does VF vf take the good stream and hold A's device memory? */
static bool good_loads(struct ref *r, int vf)
{
	size_t i;

	if (feed(&r->e, vf, r->good.data, r->good.len))
		return false;
	for (i = 0; i < r->e.devmem_size; i += 4)
		if (mmio_read32(r->e.mem[vf], i) !=
		    *(uint32_t *)(r->devmem + i))
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

static void report(const struct worker *w, unsigned int nr, uint64_t seed)
{
	unsigned long tried = 0, acc = 0, noop = 0, v;
	unsigned int k, i, j;

	for (k = 0; k < NR_KINDS; k++) {
		unsigned long t = 0, a = 0, o = 0;

		for (j = 0; j < nr; j++) {
			t += w[j].st.tried[k];
			a += w[j].st.accepted[k];
			o += w[j].st.noop[k];
		}
		ksft_print_msg("%-20s %7lu mutated, %5lu no-op, %lu accepted\n",
			       kind_name[k], t, o, a);
		tried += t;
		acc += a;
		noop += o;
	}
	for (i = 1; i < ARRAY_SIZE(w->st.errnos); i++) {
		for (v = 0, j = 0; j < nr; j++)
			v += w[j].st.errnos[i];
		if (v)
			ksft_print_msg("refused with %s: %lu\n", strerror(i), v);
	}
	/* The figure scripts/soak reads. */
	ksft_print_msg("R1: %lu streams, %lu corrupted ones accepted (%lu no-op mutations not counted), seed %llu\n",
		       tried, acc, noop, (unsigned long long)seed);
}

/* The first byte where s differs from good, to name an accepted stream. */
static size_t first_diff(const struct fuzz *f)
{
	size_t i;

	for (i = 0; i < f->len && i < f->good_len; i++)
		if (f->s[i] != f->good[i])
			return i;
	return i;
}

static void *fuzz(void *arg)
{
	struct worker *w = arg;
	struct fuzz *f = &w->f;
	unsigned long done = 0;
	uint64_t t0 = now_ms();

	rng_state = w->seed;
	while (done < w->n) {
		enum kind k = rnd_below(NR_KINDS);
		int err;

		memcpy(f->s, f->good, f->good_len);
		f->len = f->good_len;
		mutate(f, k);
		if (f->len == f->good_len && !memcmp(f->s, f->good, f->len))
			continue;	/* no change at all: draw again */
		w->st.tried[k]++;
		done++;
		err = feed(&w->ref->e, w->vf, f->s, f->len);
		if (same_valid_stream(f->s, f->len, f->good, &f->gl)) {
			w->st.noop[k]++;
		} else if (!err) {
			w->st.accepted[k]++;
			ksft_print_msg("VF %d accepted corrupted stream #%lu (%s, first change at byte %zu of %zu)\n",
				       w->vf, done, kind_name[k], first_diff(f),
				       f->len);
		} else {
			w->st.errnos[err < 256 ? err : 0]++;
		}
		if (done % CHECK_EVERY == 0) {
			if (!good_loads(w->ref, w->vf))
				ksft_exit_fail_msg("VF %d: the good stream fails after %lu\n",
						   w->vf, done);
			ksft_print_msg("VF %d: %lu streams, %llu s\n", w->vf,
				       done,
				       (unsigned long long)(now_ms() - t0) / 1000);
		}
	}
	return NULL;
}

static void setup(struct ref *r)
{
	int ret = env_setup(&r->e, NR_VFS, false), i;

	if (ret == -ENODEV)
		ksft_exit_skip("no tern PF\n");
	if (ret)
		ksft_exit_fail_msg("env_setup: %s\n", strerror(-ret));
	r->devmem = malloc(r->e.devmem_size);
	if (!r->devmem || save_good(&r->e, &r->good, r->devmem))
		ksft_exit_fail_msg("saving A's stream failed\n");
	parse(r->good.data, r->good.len, &r->gl);
	ksft_print_msg("good stream: %zu bytes, %u records\n", r->good.len,
		       r->gl.nr);
	for (i = 1; i < NR_VFS; i++)
		if (mig_set_state(&r->e.dev[i], VFIO_DEVICE_STATE_STOP, NULL) ||
		    !good_loads(r, i))
			ksft_exit_fail_msg("VF %d does not load the good stream\n",
					   i);
}

/* After the fuzzing: every destination loads the good stream and runs. */
static bool all_good(struct ref *r)
{
	bool ok = true;
	int i;

	for (i = 1; i < NR_VFS; i++)
		ok &= good_loads(r, i) &&
		      !mig_set_state(&r->e.dev[i], VFIO_DEVICE_STATE_RUNNING,
				     NULL);
	return ok;
}

int main(int argc, char **argv)
{
	uint64_t seed = (uint64_t)time(NULL) ^ getpid();
	struct worker w[NR_VFS - 1] = {};
	unsigned long n = 1000, acc = 0;
	unsigned int i, k;
	struct ref r;
	int opt;

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
	setup(&r);
	for (i = 0; i < ARRAY_SIZE(w); i++) {
		w[i].ref = &r;
		w[i].vf = i + 1;
		w[i].seed = (seed ^ (0x9e3779b97f4a7c15ull * (i + 1))) ?: 1;
		w[i].n = n / ARRAY_SIZE(w) + (i < n % ARRAY_SIZE(w));
		w[i].f.good = r.good.data;
		w[i].f.good_len = r.good.len;
		w[i].f.gl = r.gl;
		w[i].f.cap = 2 * r.good.len;
		w[i].f.s = malloc(w[i].f.cap);
		if (!w[i].f.s ||
		    pthread_create(&w[i].t, NULL, fuzz, &w[i]))
			ksft_exit_fail_msg("cannot start the workers\n");
	}
	for (i = 0; i < ARRAY_SIZE(w); i++) {
		pthread_join(w[i].t, NULL);
		for (k = 0; k < NR_KINDS; k++)
			acc += w[i].st.accepted[k];
		free(w[i].f.s);
	}
	report(w, ARRAY_SIZE(w), seed);
	ksft_test_result(!acc, "%lu corrupted streams of %lu accepted\n", acc,
			 n);
	ksft_test_result(all_good(&r),
			 "every destination migrates A's state after the fuzzing\n");
	free(r.devmem);
	mig_buf_free(&r.good);
	env_teardown(&r.e);
	ksft_finished();
}
