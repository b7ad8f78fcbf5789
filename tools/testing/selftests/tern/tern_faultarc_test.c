// SPDX-License-Identifier: GPL-2.0
/*
 * Every injected device fault on every migration arc that issues a
 * device command (reliability.rst, R2).  For each pair the VF is taken
 * to the arc's first state, the fault is armed, the arc is taken and,
 * when the arc saves, the stream is read to its end and loaded into a
 * second VF.  Each pair must end in the state Documentation/tern/vfio.rst
 * documents (below, expect()), the fault must have fired, nothing may
 * hang, and after a reset the VF must run and migrate again.
 *
 * The fault injection registers are those of tern_fault_test.c
 * (device.rst, "Fault injection"); x-debug=on is needed.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tern/tern_stream.h>

#include "kselftest.h"
#include "lib/env_util.h"
#include "lib/mig_util.h"

#define A		0
#define B		1
#define NR_DESC		8
#define TIMEOUT_MS	10000
#define PIECE		(64u << 10)
#define AQ_TIMEOUT	"300"
/* Longer than AQ_TIMEOUT: a late completion; shorter: a slow one. */
#define LATE_MS		800
#define SLOW_MS		50
#define SHORT_BYTES	(4096 + 24)
#define DIRTY_PAGES	4
#define MARK		0x600dda7au
#define AQ_TIMEOUT_PARAM "/sys/module/tern_pf/parameters/aq_timeout_ms"

enum fault {
	F_FAIL,		/* FAIL_CMD, a status meaning "no effect" */
	F_INTERNAL,	/* FAIL_CMD, INTERNAL: state unknown */
	F_SLOW,		/* DELAY_CMD within the admin timeout */
	F_LATE,		/* DELAY_CMD past the admin timeout */
	F_LATE_DMA,	/* DELAY_CMD | LATE_DMA past the timeout */
	F_STUCK,	/* STUCK_CMD: never completes unless aborted */
	F_DMA_FAIL,	/* the VF engine's next DMA fails */
	F_DIRTY_LIMIT,	/* the dirty tracker overflows */
	F_CORRUPT_SAVE,	/* the next image is corrupt */
	F_SAVE_SHORT,	/* every SAVE returns few bytes */
	F_SAVE_RESIZE,	/* the image size changes under the driver */
	NR_FAULTS
};

static const char * const fault_name[NR_FAULTS] = {
	"FAIL_CMD(no effect)", "FAIL_CMD(internal)", "DELAY_CMD(in time)",
	"DELAY_CMD(late)", "DELAY_CMD|LATE_DMA", "STUCK_CMD", "DMA_FAIL",
	"DIRTY_LIMIT", "CORRUPT_SAVE", "SAVE_SHORT", "SAVE_RESIZE",
};

/* The arcs with a device command, as tern_fault_test.c lists them. */
static const struct arc {
	uint32_t from, to;
	uint8_t op;
	bool saves;	/* an image is read out after the arc */
} arcs[] = {
	{ VFIO_DEVICE_STATE_RUNNING, VFIO_DEVICE_STATE_RUNNING_P2P,
	  TERN_OP_QUIESCE, false },
	{ VFIO_DEVICE_STATE_RUNNING_P2P, VFIO_DEVICE_STATE_STOP,
	  TERN_OP_FREEZE, false },
	{ VFIO_DEVICE_STATE_RUNNING_P2P, VFIO_DEVICE_STATE_RUNNING,
	  TERN_OP_RESUME, false },
	{ VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_RUNNING_P2P,
	  TERN_OP_QUIESCE, false },
	{ VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_STOP_COPY,
	  TERN_OP_SAVE, true },
	{ VFIO_DEVICE_STATE_RUNNING, VFIO_DEVICE_STATE_PRE_COPY,
	  TERN_OP_SAVE, true },
	{ VFIO_DEVICE_STATE_RUNNING_P2P, VFIO_DEVICE_STATE_PRE_COPY_P2P,
	  TERN_OP_SAVE, true },
	{ VFIO_DEVICE_STATE_PRE_COPY, VFIO_DEVICE_STATE_PRE_COPY_P2P,
	  TERN_OP_QUIESCE, false },
	{ VFIO_DEVICE_STATE_PRE_COPY_P2P, VFIO_DEVICE_STATE_PRE_COPY,
	  TERN_OP_RESUME, false },
	{ VFIO_DEVICE_STATE_PRE_COPY_P2P, VFIO_DEVICE_STATE_STOP_COPY,
	  TERN_OP_FREEZE, true },
};

/* What vfio.rst says a fault on an arc ends in. */
struct outcome {
	int arc_ret;		/* of SET_STATE */
	int arc_ret2;		/* or this */
	bool error;		/* the VF is in ERROR, else in the arc's to */
	int read_ret;		/* reading the stream to its end */
	int load_ret;		/* loading it into B */
};

static bool save_fault(enum fault f)
{
	return f >= F_CORRUPT_SAVE;
}

/* Settings, not armed faults: they do not count in FIRED (device.rst). */
static bool counted(enum fault f)
{
	return f != F_SAVE_SHORT && f != F_DIRTY_LIMIT;
}

/* Does the pair exist: does the arc issue what the fault acts on? */
static bool applies(enum fault f, const struct arc *a)
{
	return !save_fault(f) || a->saves;
}

/*
 * vfio.rst: the report that finds the tracker overflowed succeeds with
 * its whole window dirty, so that no lost page goes unreported.
 */
static bool all_dirty(const uint64_t *bitmap)
{
	size_t i;

	for (i = 0; i < ENV_DMA_SIZE / ENV_PAGE / 64; i++)
		if (bitmap[i] != ~0ull)
			return false;
	return true;
}

static struct outcome expect(enum fault f)
{
	struct outcome o = {};

	switch (f) {
	case F_FAIL:
		/* Fails, nothing happened: the VF stays where it was. */
		o.arc_ret = -EPERM;
		break;
	case F_INTERNAL:
		o.arc_ret = -EIO;
		o.error = true;
		break;
	case F_LATE:
	case F_LATE_DMA:
	case F_STUCK:
		/*
		 * State unknown: a timeout, or the admin queue reset that
		 * tern_pf's watchdog falls back to after a few of them.
		 */
		o.arc_ret = -ETIMEDOUT;
		o.arc_ret2 = -EIO;
		o.error = true;
		break;
	case F_CORRUPT_SAVE:
		/* The destination finds the image's CRC wrong. */
		o.load_ret = -EBADMSG;
		break;
	case F_SAVE_RESIZE:
		/* A device whose image changes size fails the stream. */
		o.read_ret = -EIO;
		break;
	default:
		break;
	}
	return o;
}

struct ctx {
	struct tern_env e;
	void *dbg;
	struct work w;
	uint64_t *bitmap;
};

static void disarm(struct ctx *c)
{
	static const unsigned int regs[] = {
		TERN_DBG_REG_FAIL_CMD, TERN_DBG_REG_DELAY_CMD,
		TERN_DBG_REG_DMA_FAIL, TERN_DBG_REG_CORRUPT_SAVE,
		TERN_DBG_REG_STUCK_CMD, TERN_DBG_REG_SAVE_SHORT,
		TERN_DBG_REG_SAVE_RESIZE, TERN_DBG_REG_DIRTY_LIMIT,
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(regs); i++)
		mmio_write32(c->dbg, regs[i], 0);
}

static void arm(struct ctx *c, enum fault f, uint8_t op)
{
	switch (f) {
	case F_FAIL:
	case F_INTERNAL:
		mmio_write32(c->dbg, TERN_DBG_REG_FAIL_VF, A);
		mmio_write32(c->dbg, TERN_DBG_REG_FAIL_STATUS,
			     f == F_FAIL ? TERN_STS_INVALID_STATE :
					   TERN_STS_INTERNAL);
		mmio_write32(c->dbg, TERN_DBG_REG_FAIL_CMD, TERN_DBG_ARM | op);
		break;
	case F_SLOW:
	case F_LATE:
	case F_LATE_DMA:
		mmio_write32(c->dbg, TERN_DBG_REG_DELAY_MS,
			     f == F_SLOW ? SLOW_MS : LATE_MS);
		mmio_write32(c->dbg, TERN_DBG_REG_DELAY_CMD, TERN_DBG_ARM |
			     (f == F_LATE_DMA ? TERN_DBG_DELAY_LATE_DMA : 0) |
			     op);
		break;
	case F_STUCK:
		mmio_write32(c->dbg, TERN_DBG_REG_STUCK_VF, A);
		mmio_write32(c->dbg, TERN_DBG_REG_STUCK_CMD, TERN_DBG_ARM | op);
		break;
	case F_CORRUPT_SAVE:
		mmio_write32(c->dbg, TERN_DBG_REG_CORRUPT_SAVE,
			     TERN_DBG_ARM | A);
		break;
	case F_SAVE_RESIZE:
		mmio_write32(c->dbg, TERN_DBG_REG_SAVE_RESIZE,
			     TERN_DBG_ARM | A);
		break;
	default:
		/* The others act before the arc: prepare(). */
		break;
	}
}

static struct vfio_device_feature_dma_logging_range dma_range(struct ctx *c)
{
	struct vfio_device_feature_dma_logging_range r = {
		.iova = c->e.c.dma_iova, .length = ENV_DMA_SIZE,
	};

	return r;
}

/*
 * The faults that act on the VF's DMA fire while it runs, before the
 * arc: a failed descriptor, or more dirty pages than the tracker holds.
 * SAVE_SHORT is set before the first SAVE, which some arcs' first
 * state already issued.
 */
static int prepare(struct ctx *c, enum fault f)
{
	struct vfio_device_feature_dma_logging_range r = dma_range(c);
	uint64_t pgsz = ENV_PAGE;
	int ret;

	if (f == F_SAVE_SHORT) {
		mmio_write32(c->dbg, TERN_DBG_REG_SAVE_SHORT, SHORT_BYTES);
		return 0;
	}
	if (f == F_DIRTY_LIMIT) {
		ret = mig_log_start(&c->e.dev[A], &r, 1, &pgsz);
		if (ret)
			return ret;
		mmio_write32(c->dbg, TERN_DBG_REG_DIRTY_LIMIT, DIRTY_PAGES);
	} else if (f == F_DMA_FAIL) {
		mmio_write32(c->dbg, TERN_DBG_REG_DMA_FAIL, TERN_DBG_ARM | A);
	} else {
		return 0;
	}
	c->w.pass++;
	work_add_range(&c->w, 0, NR_DESC);
	return work_wait(&c->w, TIMEOUT_MS);
}

/* From a pre-copy state to the end of the stream; A ends in STOP. */
static int read_stream(struct vfio_dev *a, int fd, uint32_t state,
		       struct mig_buf *s)
{
	int ret = mig_read(fd, s);

	if (ret && ret != -ENOMSG)
		return ret;
	if (state == VFIO_DEVICE_STATE_PRE_COPY ||
	    state == VFIO_DEVICE_STATE_PRE_COPY_P2P) {
		ret = mig_set_state(a, VFIO_DEVICE_STATE_STOP_COPY, NULL);
		if (ret)
			return ret;
		ret = mig_read(fd, s);
		if (ret)
			return ret;
	}
	return mig_set_state(a, VFIO_DEVICE_STATE_STOP, NULL);
}

/* Did SAVE_SHORT act: no IMAGE record longer than what a SAVE gave? */
static bool records_short(const struct mig_buf *s)
{
	size_t off = TERN_STREAM_HDR_SIZE;
	struct tern_stream_rec r;

	while (off + sizeof(r) <= s->len) {
		memcpy(&r, s->data + off, sizeof(r));
		if (le16toh(r.type) == TERN_REC_IMAGE &&
		    le32toh(r.length) > SHORT_BYTES)
			return false;
		off += sizeof(r) + le32toh(r.length);
	}
	return true;
}

/* Load into B (reset first); does B hold A's mark afterwards? */
static int load_b(struct ctx *c, const struct mig_buf *s, bool *same)
{
	struct vfio_dev *b = &c->e.dev[B];
	int ret;

	*same = false;
	ret = vfio_reset(b) ?: mig_load(b, s, PIECE);
	if (!ret) {
		ret = mig_set_state(b, VFIO_DEVICE_STATE_RUNNING, NULL);
		*same = mmio_read32(c->e.mem[B], 0) == MARK;
	}
	return ret;
}

/* Does A run and migrate after a reset, the faults disarmed? */
static bool recovers(struct ctx *c)
{
	struct vfio_dev *a = &c->e.dev[A];
	struct mig_buf s = {};
	bool same = false;

	disarm(c);
	mig_log_stop(a);
	if (vfio_reset(a) || tern_vfq_enable(&c->w.vq, c->e.regs[A]))
		return false;
	c->w.pass++;
	work_add_range(&c->w, 0, NR_DESC);
	if (work_wait(&c->w, TIMEOUT_MS) || !work_block_ok(&c->w, 0))
		return false;
	mmio_write32(c->e.mem[A], 0, MARK);
	if (mig_set_state(a, VFIO_DEVICE_STATE_STOP, NULL) ||
	    mig_save(a, &s) || load_b(c, &s, &same) ||
	    mig_set_state(a, VFIO_DEVICE_STATE_RUNNING, NULL))
		same = false;
	mig_buf_free(&s);
	return same;
}

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		ksft_print_msg("%s on %u -> %u: ", fault_name[f],	\
			       a->from, a->to);				\
		printf(__VA_ARGS__);					\
		ok = false;						\
	}								\
} while (0)

/* One fault on one arc; true if it ended as documented. */
static bool run_case(struct ctx *c, enum fault f, const struct arc *a)
{
	struct outcome o = expect(f);
	struct vfio_dev *dev = &c->e.dev[A];
	struct vfio_device_feature_dma_logging_range r = dma_range(c);
	uint32_t fired, state = 0;
	struct mig_buf s = {};
	int fd = -1, fd2 = -1, ret;
	bool ok = true, same;

	if (vfio_reset(dev) || tern_vfq_enable(&c->w.vq, c->e.regs[A]))
		return false;
	mmio_write32(c->e.mem[A], 0, MARK);
	fired = mmio_read32(c->dbg, TERN_DBG_REG_FIRED);
	CHECK(!prepare(c, f), "the VF's work did not complete\n");
	CHECK(!mig_set_state(dev, a->from, &fd), "cannot reach %u\n",
	      a->from);
	arm(c, f, a->op);
	ret = mig_set_state(dev, a->to, &fd2);
	if (fd2 >= 0) {
		if (fd >= 0)
			close(fd);
		fd = fd2;
	}
	CHECK(ret == o.arc_ret || (o.arc_ret2 && ret == o.arc_ret2),
	      "arc returned %d, expected %d\n", ret, o.arc_ret);
	mig_get_state(dev, &state);
	CHECK(state == (o.error ? VFIO_DEVICE_STATE_ERROR :
			o.arc_ret ? a->from : a->to),
	      "VF in state %u\n", state);
	if (o.error)
		CHECK(mig_set_state(dev, VFIO_DEVICE_STATE_RUNNING, NULL) ==
		      -EINVAL, "SET_STATE in ERROR did not fail\n");
	if (f == F_DIRTY_LIMIT) {
		memset(c->bitmap, 0, ENV_DMA_SIZE / ENV_PAGE / 8);
		ret = mig_log_report(dev, r.iova, r.length, ENV_PAGE,
				     c->bitmap);
		CHECK(!ret, "report returned %d\n", ret);
		CHECK(all_dirty(c->bitmap), "lost pages not reported dirty\n");
	}
	if (!ret && !o.arc_ret && a->saves) {
		ret = read_stream(dev, fd, a->to, &s);
		CHECK(ret == o.read_ret, "reading returned %d, expected %d\n",
		      ret, o.read_ret);
		if (!ret) {
			ret = load_b(c, &s, &same);
			CHECK(ret == o.load_ret,
			      "loading returned %d, expected %d\n", ret,
			      o.load_ret);
			CHECK(ret || same, "B does not hold A's memory\n");
		}
		if (f == F_SAVE_SHORT)
			CHECK(records_short(&s), "an image record is longer than %u bytes\n",
			      SHORT_BYTES);
	}
	if (counted(f))
		CHECK(mmio_read32(c->dbg, TERN_DBG_REG_FIRED) > fired,
		      "the fault did not fire\n");
	if (fd >= 0)
		close(fd);
	mig_buf_free(&s);
	/* Let a late completion land before the next case. */
	if (f == F_LATE || f == F_LATE_DMA)
		usleep((LATE_MS + 300) * 1000);
	CHECK(recovers(c), "the VF does not run and migrate after a reset\n");
	return ok;
}

static void setup(struct ctx *c, char *aq_timeout, size_t len)
{
	int ret = env_setup(&c->e, 2, false);

	if (ret == -ENODEV)
		ksft_exit_skip("no tern PF\n");
	if (ret)
		ksft_exit_fail_msg("env_setup: %s\n", strerror(-ret));
	c->dbg = env_debug_map(&c->e);
	if (!c->dbg)
		ksft_exit_skip("no fault injection (x-debug=off)\n");
	c->bitmap = calloc(ENV_DMA_SIZE / ENV_PAGE / 64, 8);
	if (!c->bitmap || file_read(AQ_TIMEOUT_PARAM, aq_timeout, len) ||
	    file_write(AQ_TIMEOUT_PARAM, AQ_TIMEOUT) ||
	    work_init(&c->w, &c->e.c, c->e.regs[A], 0, NR_DESC))
		ksft_exit_fail_msg("cannot prepare the VFs and the admin timeout\n");
}

int main(void)
{
	unsigned int f, i, n = 0, good = 0;
	char aq_timeout[16] = "";
	struct ctx c;

	ksft_print_header();
	setup(&c, aq_timeout, sizeof(aq_timeout));
	for (f = 0; f < NR_FAULTS; f++)
		for (i = 0; i < ARRAY_SIZE(arcs); i++)
			n += applies(f, &arcs[i]);
	ksft_set_plan(NR_FAULTS);
	for (f = 0; f < NR_FAULTS; f++) {
		unsigned int pairs = 0, passed = 0;

		for (i = 0; i < ARRAY_SIZE(arcs); i++) {
			if (!applies(f, &arcs[i]))
				continue;
			pairs++;
			passed += run_case(&c, f, &arcs[i]);
		}
		good += passed;
		ksft_test_result(passed == pairs, "%s: %u of %u arcs as documented\n",
				 fault_name[f], passed, pairs);
	}
	ksft_print_msg("R2: %u of %u fault x arc pairs ended in the documented state, none hung\n",
		       good, n);
	disarm(&c);
	file_write(AQ_TIMEOUT_PARAM, aq_timeout);
	env_debug_unmap(c.dbg);
	free(c.bitmap);
	env_teardown(&c.e);
	ksft_finished();
}
