// SPDX-License-Identifier: GPL-2.0
/*
 * Device faults during migration, injected through the PF's debug block
 * (QEMU -device tern,x-debug=on): a command that fails without effect
 * fails its arc and leaves the VF where it was; a command that fails
 * with the VF's state unknown (an internal error, a timeout) puts it in
 * ERROR, which only VFIO_DEVICE_RESET leaves (Documentation/tern/vfio.rst,
 * "Failures").  A corrupt image, a failed VF DMA, a reader killed in a
 * long read and the PF reset or going away in mid-migration end in the
 * documented states too, never in a hang.
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tern/tern_stream.h>

#include "kselftest_harness.h"
#include "lib/env_util.h"
#include "lib/mig_util.h"

#define TIMEOUT_MS	10000
#define NR_DESC		8
#define AQ_TIMEOUT_MS	"200"
#define DELAY_MS	600
#define PIECE		(32u << 10)
#define A		0
#define B		1
#define AQ_TIMEOUT_PARAM "/sys/module/tern_pf/parameters/aq_timeout_ms"

FIXTURE(fault) {
	struct tern_env e;
	void *dbg;
	struct work w;
	struct mig_buf s;
	char aq_timeout[16];	/* tern_pf's, restored at the end */
};

FIXTURE_SETUP(fault)
{
	int ret = env_setup(&self->e, 2, false);

	if (ret == -ENODEV)
		SKIP(return, "no tern PF");
	ASSERT_EQ(0, ret);
	self->dbg = env_debug_map(&self->e);
	if (!self->dbg)
		SKIP(return, "no fault injection (x-debug=off)");
	ASSERT_EQ(0, file_read(AQ_TIMEOUT_PARAM, self->aq_timeout,
			       sizeof(self->aq_timeout)));
	ASSERT_EQ(0, file_write(AQ_TIMEOUT_PARAM, AQ_TIMEOUT_MS));
	ASSERT_EQ(0, work_init(&self->w, &self->e.c, self->e.regs[A], 0,
			       NR_DESC));
}

FIXTURE_TEARDOWN(fault)
{
	if (self->dbg) {
		mmio_write32(self->dbg, TERN_DBG_REG_FAIL_CMD, 0);
		mmio_write32(self->dbg, TERN_DBG_REG_DELAY_CMD, 0);
		mmio_write32(self->dbg, TERN_DBG_REG_DMA_FAIL, 0);
		mmio_write32(self->dbg, TERN_DBG_REG_CORRUPT_SAVE, 0);
		mmio_write32(self->dbg, TERN_DBG_REG_SAVE_SHORT, 0);
		mmio_write32(self->dbg, TERN_DBG_REG_SAVE_RESIZE, 0);
		env_debug_unmap(self->dbg);
	}
	if (self->aq_timeout[0])
		file_write(AQ_TIMEOUT_PARAM, self->aq_timeout);
	mig_buf_free(&self->s);
	env_teardown(&self->e);
}

enum fault_kind {
	FAIL_NO_EFFECT,		/* a status that says nothing happened */
	FAIL_INTERNAL,		/* the device's state is unknown */
	FAIL_TIMEOUT,		/* no answer within aq_timeout_ms */
};

static void arm(FIXTURE_DATA(fault) *self, enum fault_kind kind, uint8_t op)
{
	if (kind == FAIL_TIMEOUT) {
		mmio_write32(self->dbg, TERN_DBG_REG_DELAY_MS, DELAY_MS);
		mmio_write32(self->dbg, TERN_DBG_REG_DELAY_CMD,
			     TERN_DBG_ARM | op);
		return;
	}
	mmio_write32(self->dbg, TERN_DBG_REG_FAIL_VF, A);
	mmio_write32(self->dbg, TERN_DBG_REG_FAIL_STATUS,
		     kind == FAIL_INTERNAL ? TERN_STS_INTERNAL :
					     TERN_STS_INVALID_STATE);
	mmio_write32(self->dbg, TERN_DBG_REG_FAIL_CMD, TERN_DBG_ARM | op);
}

static bool frozen_state(uint32_t s)
{
	return s == VFIO_DEVICE_STATE_STOP || s == VFIO_DEVICE_STATE_STOP_COPY;
}

static bool running_state(uint32_t s)
{
	return s == VFIO_DEVICE_STATE_RUNNING || s == VFIO_DEVICE_STATE_PRE_COPY;
}

/* The VF is really in s: frozen, quiesced or running. */
static void check_really(struct __test_metadata *_metadata,
			 FIXTURE_DATA(fault) *self, uint32_t s)
{
	uint32_t word = mmio_read32(self->e.mem[A], 128);
	uint64_t done = work_done(&self->w);

	mmio_write32(self->e.mem[A], 128, ~word);
	EXPECT_EQ(frozen_state(s) ? word : ~word,
		  mmio_read32(self->e.mem[A], 128));
	self->w.pass++;
	work_add_range(&self->w, 0, NR_DESC);
	if (running_state(s)) {
		EXPECT_EQ(0, work_wait(&self->w, TIMEOUT_MS));
	} else {
		usleep(50000);
		EXPECT_EQ(done, work_done(&self->w));
	}
}

/* A reset VF runs. */
static void check_reset(struct __test_metadata *_metadata,
			FIXTURE_DATA(fault) *self)
{
	uint32_t state;

	ASSERT_EQ(0, vfio_reset(&self->e.dev[A]));
	ASSERT_EQ(0, mig_get_state(&self->e.dev[A], &state));
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, state);
	ASSERT_EQ(0, tern_vfq_enable(&self->w.vq, self->e.regs[A]));
	check_really(_metadata, self, VFIO_DEVICE_STATE_RUNNING);
}

/* A reset VF runs and migrates again. */
static void check_recovers(struct __test_metadata *_metadata,
			   FIXTURE_DATA(fault) *self)
{
	struct mig_buf s = {};

	check_reset(_metadata, self);
	ASSERT_EQ(0, mig_set_state(&self->e.dev[A], VFIO_DEVICE_STATE_STOP,
				   NULL));
	ASSERT_EQ(0, mig_save(&self->e.dev[A], &s));
	ASSERT_EQ(0, mig_load(&self->e.dev[B], &s, PIECE));
	ASSERT_EQ(0, mig_set_state(&self->e.dev[B],
				   VFIO_DEVICE_STATE_RUNNING, NULL));
	ASSERT_EQ(0, mig_set_state(&self->e.dev[A],
				   VFIO_DEVICE_STATE_RUNNING, NULL));
	mig_buf_free(&s);
}

/* The arcs and the device command of each that fails. */
static const struct {
	uint32_t from, to;
	uint8_t op;
} arcs[] = {
	{ VFIO_DEVICE_STATE_RUNNING, VFIO_DEVICE_STATE_RUNNING_P2P,
	  TERN_OP_QUIESCE },
	{ VFIO_DEVICE_STATE_RUNNING_P2P, VFIO_DEVICE_STATE_STOP,
	  TERN_OP_FREEZE },
	{ VFIO_DEVICE_STATE_RUNNING_P2P, VFIO_DEVICE_STATE_RUNNING,
	  TERN_OP_RESUME },
	{ VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_RUNNING_P2P,
	  TERN_OP_QUIESCE },
	{ VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_STOP_COPY,
	  TERN_OP_SAVE },
	{ VFIO_DEVICE_STATE_RUNNING, VFIO_DEVICE_STATE_PRE_COPY,
	  TERN_OP_SAVE },
	{ VFIO_DEVICE_STATE_RUNNING_P2P, VFIO_DEVICE_STATE_PRE_COPY_P2P,
	  TERN_OP_SAVE },
	{ VFIO_DEVICE_STATE_PRE_COPY, VFIO_DEVICE_STATE_PRE_COPY_P2P,
	  TERN_OP_QUIESCE },
	{ VFIO_DEVICE_STATE_PRE_COPY_P2P, VFIO_DEVICE_STATE_PRE_COPY,
	  TERN_OP_RESUME },
	{ VFIO_DEVICE_STATE_PRE_COPY_P2P, VFIO_DEVICE_STATE_STOP_COPY,
	  TERN_OP_FREEZE },
};

static void fault_arcs(struct __test_metadata *_metadata,
		       FIXTURE_DATA(fault) *self, enum fault_kind kind)
{
	struct vfio_dev *a = &self->e.dev[A];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(arcs); i++) {
		uint32_t fired = mmio_read32(self->dbg, TERN_DBG_REG_FIRED);
		int fd = -1, fd2 = -1, ret;
		uint32_t state;

		TH_LOG("arc %u -> %u, opcode %u", arcs[i].from, arcs[i].to,
		       arcs[i].op);
		ASSERT_EQ(0, vfio_reset(a));
		ASSERT_EQ(0, tern_vfq_enable(&self->w.vq, self->e.regs[A]));
		ASSERT_EQ(0, mig_set_state(a, arcs[i].from, &fd));
		arm(self, kind, arcs[i].op);
		ret = mig_set_state(a, arcs[i].to, &fd2);
		EXPECT_EQ(fired + 1, mmio_read32(self->dbg,
						 TERN_DBG_REG_FIRED));
		ASSERT_EQ(0, mig_get_state(a, &state));
		if (kind == FAIL_NO_EFFECT) {
			EXPECT_EQ(-EPERM, ret);
			EXPECT_EQ(arcs[i].from, state);
			check_really(_metadata, self, arcs[i].from);
		} else {
			EXPECT_EQ(kind == FAIL_TIMEOUT ? -ETIMEDOUT : -EIO,
				  ret);
			EXPECT_EQ(VFIO_DEVICE_STATE_ERROR, state);
			/* Only a reset leads out of ERROR. */
			EXPECT_EQ(-EINVAL, mig_set_state(a, arcs[i].to, NULL));
			EXPECT_EQ(-EINVAL,
				  mig_set_state(a, VFIO_DEVICE_STATE_RUNNING,
						NULL));
		}
		if (fd >= 0)
			close(fd);
		if (fd2 >= 0)
			close(fd2);
		if (kind == FAIL_TIMEOUT)	/* let the late completion land */
			usleep((DELAY_MS + 400) * 1000);
		check_reset(_metadata, self);
	}
	check_recovers(_metadata, self);
}

TEST_F_TIMEOUT(fault, arc_command_fails_without_effect, 300)
{
	fault_arcs(_metadata, self, FAIL_NO_EFFECT);
}

TEST_F_TIMEOUT(fault, arc_command_internal_error, 300)
{
	fault_arcs(_metadata, self, FAIL_INTERNAL);
}

TEST_F_TIMEOUT(fault, arc_command_timeout, 300)
{
	fault_arcs(_metadata, self, FAIL_TIMEOUT);
}

/* A save chunk fails: the stream is dead, the state stays. */
TEST_F(fault, save_read_fails)
{
	struct mig_buf s = {};
	uint32_t state;
	int fd;

	ASSERT_EQ(0, mig_set_state(&self->e.dev[A],
				   VFIO_DEVICE_STATE_STOP_COPY, &fd));
	arm(self, FAIL_INTERNAL, TERN_OP_SAVE);
	EXPECT_EQ(-EIO, mig_read(fd, &s));
	EXPECT_EQ(-EIO, mig_read(fd, &s));
	ASSERT_EQ(0, mig_get_state(&self->e.dev[A], &state));
	EXPECT_EQ(VFIO_DEVICE_STATE_STOP_COPY, state);
	close(fd);
	mig_buf_free(&s);
	check_recovers(_metadata, self);
}

/* A load the device refuses: the write fails, B stays RESUMING. */
TEST_F(fault, load_fails)
{
	struct vfio_dev *b = &self->e.dev[B];
	uint32_t state;

	mmio_write32(self->e.mem[B], 0, 0xb0b0b0b0);
	ASSERT_EQ(0, mig_set_state(&self->e.dev[A], VFIO_DEVICE_STATE_STOP,
				   NULL));
	ASSERT_EQ(0, mig_save(&self->e.dev[A], &self->s));
	mmio_write32(self->dbg, TERN_DBG_REG_FAIL_VF, B);
	mmio_write32(self->dbg, TERN_DBG_REG_FAIL_STATUS,
		     TERN_STS_INVALID_STATE);
	mmio_write32(self->dbg, TERN_DBG_REG_FAIL_CMD,
		     TERN_DBG_ARM | TERN_OP_LOAD);
	EXPECT_EQ(-EPERM, mig_load(b, &self->s, PIECE));
	ASSERT_EQ(0, mig_get_state(b, &state));
	EXPECT_EQ(VFIO_DEVICE_STATE_RESUMING, state);
	EXPECT_EQ(0xb0b0b0b0, mmio_read32(self->e.mem[B], 0));
	ASSERT_EQ(0, vfio_reset(b));
	ASSERT_EQ(0, mig_load(b, &self->s, PIECE));
}

/*
 * Dirty tracking commands that fail: each DMA_LOGGING ioctl fails with
 * the device's error, a failed report clears nothing, and tracking
 * starts again even after a failed stop left the device tracking.
 */
TEST_F(fault, dirty_tracking_fails)
{
	struct vfio_device_feature_dma_logging_range r = {
		.iova = self->e.c.dma_iova,
		.length = ENV_DMA_SIZE,
	};
	size_t words = ENV_DMA_SIZE / ENV_PAGE / 64, i;
	uint64_t *bitmap = calloc(words, 8);
	struct vfio_dev *a = &self->e.dev[A];
	uint64_t pgsz = ENV_PAGE;
	unsigned int dirty = 0;

	ASSERT_NE(NULL, bitmap);
	arm(self, FAIL_INTERNAL, TERN_OP_DIRTY_START);
	EXPECT_EQ(-EIO, mig_log_start(a, &r, 1, &pgsz));
	EXPECT_EQ(-EINVAL, mig_log_report(a, r.iova, r.length, pgsz, bitmap));
	ASSERT_EQ(0, mig_log_start(a, &r, 1, &pgsz));

	self->w.pass++;
	work_add_range(&self->w, 0, NR_DESC);
	ASSERT_EQ(0, work_wait(&self->w, TIMEOUT_MS));
	arm(self, FAIL_INTERNAL, TERN_OP_DIRTY_REPORT);
	EXPECT_EQ(-EIO, mig_log_report(a, r.iova, r.length, pgsz, bitmap));
	EXPECT_EQ(0, mig_log_report(a, r.iova, r.length, pgsz, bitmap));
	for (i = 0; i < words; i++)
		dirty += __builtin_popcountll(bitmap[i]);
	EXPECT_LE(NR_DESC, dirty);

	arm(self, FAIL_INTERNAL, TERN_OP_DIRTY_STOP);
	EXPECT_EQ(-EIO, mig_log_stop(a));
	ASSERT_EQ(0, mig_log_start(a, &r, 1, &pgsz));
	EXPECT_EQ(0, mig_log_stop(a));
	free(bitmap);
	check_recovers(_metadata, self);
}

/* A corrupt image is refused when complete; B unchanged. */
TEST_F(fault, corrupt_image)
{
	struct vfio_dev *a = &self->e.dev[A], *b = &self->e.dev[B];
	struct mig_buf good = {};
	uint32_t state;

	mmio_write32(self->e.mem[A], 0, 0xa0a0a0a0);
	mmio_write32(self->e.mem[B], 0, 0xb0b0b0b0);
	mmio_write32(self->dbg, TERN_DBG_REG_CORRUPT_SAVE, TERN_DBG_ARM | A);
	ASSERT_EQ(0, mig_set_state(a, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_save(a, &self->s));
	EXPECT_EQ(-EBADMSG, mig_load(b, &self->s, PIECE));
	ASSERT_EQ(0, mig_get_state(b, &state));
	EXPECT_EQ(VFIO_DEVICE_STATE_RESUMING, state);
	EXPECT_EQ(0xb0b0b0b0, mmio_read32(self->e.mem[B], 0));
	/* A new save of A is good. */
	ASSERT_EQ(0, vfio_reset(b));
	ASSERT_EQ(0, mig_save(a, &good));
	ASSERT_EQ(0, mig_load(b, &good, PIECE));
	ASSERT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_RUNNING, NULL));
	EXPECT_EQ(0xa0a0a0a0, mmio_read32(self->e.mem[B], 0));
	mig_buf_free(&good);
}

/* A VF DMA that fails is the guest's business: it migrates with it. */
TEST_F(fault, vf_dma_fails)
{
	struct tern_vfq *vq = &self->w.vq;
	uint64_t errs;

	mmio_write32(self->dbg, TERN_DBG_REG_DMA_FAIL, TERN_DBG_ARM | A);
	work_add_range(&self->w, 0, NR_DESC);
	ASSERT_EQ(0, work_wait(&self->w, TIMEOUT_MS));
	EXPECT_EQ(TERN_DSTS_DMA_WRITE, self->w.cpl[0].status);
	errs = tern_q_reg(vq, TERN_Q_CNT_ERR_LO);
	EXPECT_EQ(1, errs);
	ASSERT_EQ(0, mig_set_state(&self->e.dev[A], VFIO_DEVICE_STATE_STOP,
				   NULL));
	ASSERT_EQ(0, mig_save(&self->e.dev[A], &self->s));
	ASSERT_EQ(0, mig_load(&self->e.dev[B], &self->s, PIECE));
	ASSERT_EQ(0, mig_set_state(&self->e.dev[B],
				   VFIO_DEVICE_STATE_RUNNING, NULL));
	vq->regs = self->e.regs[B];
	EXPECT_EQ(errs, tern_q_reg(vq, TERN_Q_CNT_ERR_LO));
	self->w.pass++;
	work_add_range(&self->w, 0, NR_DESC);
	ASSERT_EQ(0, work_wait(&self->w, TIMEOUT_MS));
	EXPECT_TRUE(work_block_ok(&self->w, 0));
}

static void *unbind_pf(void *pf)
{
	pci_sysfs_write(pf, "driver/unbind", pf);
	return NULL;
}

/*
 * After a PF event: the state A was in reads back unchanged (vfio.h lets
 * no device change state on its own), the data fd is dead, and the next
 * SET_STATE fails into ERROR.
 */
static void check_state_lost(struct __test_metadata *_metadata,
			     FIXTURE_DATA(fault) *self, uint32_t was, int fd)
{
	struct vfio_dev *a = &self->e.dev[A];
	uint64_t end, size;
	uint32_t state = 0;
	char buf[4096];
	ssize_t n = 0;

	/* The event takes effect at the VF's next use. */
	for (end = now_ms() + 5000; now_ms() < end; usleep(50000)) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0)
			break;
	}
	EXPECT_EQ(-1, n);
	EXPECT_EQ(ENODEV, errno);
	ASSERT_EQ(0, mig_get_state(a, &state));
	EXPECT_EQ(was, state);
	EXPECT_EQ(-ENODEV, mig_data_size(a, &size));
	EXPECT_EQ(-ENODEV, mig_set_state(a, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_get_state(a, &state));
	EXPECT_EQ(VFIO_DEVICE_STATE_ERROR, state);
	close(fd);
}

/*
 * The PF driver goes away while A is in STOP_COPY.  The unbind waits for
 * the VFs' users to close them, so it runs in a thread.
 */
TEST_F(fault, pf_unbind_mid_migration)
{
	pthread_t thread;
	char buf[4096];
	int fd;

	ASSERT_EQ(0, mig_set_state(&self->e.dev[A],
				   VFIO_DEVICE_STATE_STOP_COPY, &fd));
	ASSERT_EQ(sizeof(buf), read(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, pthread_create(&thread, NULL, unbind_pf, self->e.pf));
	check_state_lost(_metadata, self, VFIO_DEVICE_STATE_STOP_COPY, fd);
	env_close_vf(&self->e, A);
	env_close_vf(&self->e, B);
	pthread_join(thread, NULL);
	/* For the teardown: the PF back with its driver. */
	EXPECT_EQ(0, pci_bind(self->e.pf, "tern_pf"));
	env_debug_unmap(self->dbg);
	self->dbg = NULL;
}

/*
 * The PF's reset reset the VFs' config space too: as a VMM would, write
 * the Command register again (memory space, bus master) through VFIO.
 */
static int restore_command(struct vfio_dev *d)
{
	uint16_t cmd;

	if (vfio_cfg_read(d, 4, &cmd, 2))
		return -EIO;
	cmd &= ~0x6;
	if (vfio_cfg_write(d, 4, &cmd, 2))
		return -EIO;
	cmd |= 0x6;
	return vfio_cfg_write(d, 4, &cmd, 2);
}

/* The PF is reset in pre-copy; a VFIO reset of A brings it back. */
TEST_F(fault, pf_reset_mid_migration)
{
	char buf[4096];
	int fd;

	ASSERT_EQ(0, mig_set_state(&self->e.dev[A],
				   VFIO_DEVICE_STATE_PRE_COPY, &fd));
	ASSERT_EQ(sizeof(buf), read(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, pci_sysfs_write(self->e.pf, "reset", "1"));
	check_state_lost(_metadata, self, VFIO_DEVICE_STATE_PRE_COPY, fd);
	/* B lost its state as well. */
	ASSERT_EQ(0, vfio_reset(&self->e.dev[A]));
	ASSERT_EQ(0, vfio_reset(&self->e.dev[B]));
	ASSERT_EQ(0, restore_command(&self->e.dev[A]));
	ASSERT_EQ(0, restore_command(&self->e.dev[B]));
	check_recovers(_metadata, self);
}

/* Wait until the device has fired @n faults in all; false after 5 s. */
static bool fired_reach(FIXTURE_DATA(fault) *self, uint32_t n)
{
	uint64_t end = now_ms() + 5000;

	while (mmio_read32(self->dbg, TERN_DBG_REG_FIRED) < n &&
	       now_ms() < end)
		usleep(1000);
	return mmio_read32(self->dbg, TERN_DBG_REG_FIRED) == n;
}

/*
 * A reader killed in a read() that needs many device commands leaves at
 * once, without waiting for the device command it is in.  Short chunks
 * make the read need many SAVEs, so the delayed one is among them even
 * if the one in flight since the arc escaped it; the kill comes only once
 * the device holds the delayed SAVE, whatever the machine's speed.
 */
TEST_F(fault, killed_reader_stops)
{
	const uint32_t delay_ms = 3000;
	int status, fd, ret;
	uint32_t fired;
	uint64_t start;
	pid_t pid;

	ASSERT_EQ(0, file_write(AQ_TIMEOUT_PARAM, "10000"));
	mmio_write32(self->dbg, TERN_DBG_REG_SAVE_SHORT, 64 << 10);
	ASSERT_EQ(0, mig_set_state(&self->e.dev[A],
				   VFIO_DEVICE_STATE_STOP_COPY, &fd));
	fired = mmio_read32(self->dbg, TERN_DBG_REG_FIRED);
	mmio_write32(self->dbg, TERN_DBG_REG_DELAY_MS, delay_ms);
	mmio_write32(self->dbg, TERN_DBG_REG_DELAY_CMD,
		     TERN_DBG_ARM | TERN_OP_SAVE);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		size_t len = self->e.devmem_size * 2;
		char *buf = malloc(len);

		_exit(buf && read(fd, buf, len) > 0 ? 0 : 1);
	}
	ret = fired_reach(self, fired + 1);
	start = now_ms();
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(ret);
	EXPECT_TRUE(WIFSIGNALED(status));
	/* Killed while the device held a SAVE, it did not wait for it. */
	EXPECT_GT(delay_ms / 2, now_ms() - start);
	/*
	 * Killed waiting for the SAVE in flight in the background, the
	 * child left the stream intact: the parent collects that SAVE and
	 * reads the rest.  Killed in a SAVE it sent itself, it abandoned
	 * the command: the fd is dead (EIO).
	 */
	ret = mig_read(fd, &self->s);
	if (ret != -EIO) {
		ASSERT_EQ(0, ret);
		EXPECT_LT(0, self->s.len);
	}
	close(fd);
	mmio_write32(self->dbg, TERN_DBG_REG_SAVE_SHORT, 0);
	check_recovers(_metadata, self);
}

/* SAVEs tern_pf has sent for all VFs so far (its debugfs). */
static long pf_saves_sent(struct tern_env *e)
{
	char path[128], buf[2048], *p;

	snprintf(path, sizeof(path), "/sys/kernel/debug/tern_pf/%s/aq", e->pf);
	if (file_read(path, buf, sizeof(buf)))
		return -1;
	p = strstr(buf, "cmd_SAVE: ");
	return p ? atol(p + 10) : -1;
}

/* Wait up to 2 s for tern_pf to have sent @n SAVEs. */
static bool saves_reach(struct tern_env *e, long n)
{
	uint64_t end = now_ms() + 2000;

	while (pf_saves_sent(e) < n && now_ms() < end)
		usleep(1000);
	return pf_saves_sent(e) == n;
}

/*
 * Two chunks in flight: the SAVE of the next chunk goes out as soon as a
 * chunk is handed over, before the reader asks for it, and runs while
 * the reader drains the chunk it has.  When that SAVE fails, the reader
 * still gets the whole chunk it has, and the next read() fails with the
 * device's error (EIO), as does every later one; nothing stays in
 * flight.
 */
TEST_F(fault, next_save_in_flight_fails)
{
	struct vfio_dev *a = &self->e.dev[A];
	uint8_t hdr[TERN_STREAM_HDR_SIZE];
	struct tern_stream_rec r;
	long saves = pf_saves_sent(&self->e);
	char aq[2048];
	uint32_t fired, len, state;
	uint8_t *buf;
	int fd;

	ASSERT_LE(0, saves);
	buf = malloc(TERN_REC_MAX_PAYLOAD);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, mig_set_state(a, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	/* The arc's SAVE, then the next chunk's, with no read() yet. */
	ASSERT_TRUE(saves_reach(&self->e, saves + 2));
	usleep(100000);		/* it completed: 0.5 ms in the device */
	fired = mmio_read32(self->dbg, TERN_DBG_REG_FIRED);
	arm(self, FAIL_INTERNAL, TERN_OP_SAVE);

	/* Up to the end of the first IMAGE record: no SAVE needed. */
	ASSERT_EQ(sizeof(hdr), read(fd, hdr, sizeof(hdr)));
	do {
		ASSERT_EQ(sizeof(r), read(fd, &r, sizeof(r)));
		len = le32toh(r.length);
		ASSERT_GE(TERN_REC_MAX_PAYLOAD, len);
		ASSERT_EQ(len, read(fd, buf, len));
	} while (le16toh(r.type) != TERN_REC_IMAGE);
	EXPECT_EQ(saves + 2, pf_saves_sent(&self->e));
	EXPECT_EQ(fired, mmio_read32(self->dbg, TERN_DBG_REG_FIRED));

	/*
	 * The second chunk's record: the SAVE made meanwhile is taken, and
	 * the third chunk's goes out, into the armed fault.
	 */
	ASSERT_EQ(sizeof(r), read(fd, &r, sizeof(r)));
	ASSERT_EQ(TERN_REC_IMAGE, le16toh(r.type));
	EXPECT_EQ(0, le16toh(r.flags));
	EXPECT_TRUE(saves_reach(&self->e, saves + 3));
	EXPECT_TRUE(fired_reach(self, fired + 1));
	/* The chunk at hand is whole. */
	len = le32toh(r.length);
	ASSERT_EQ(len, read(fd, buf, len));
	/* The failed SAVE's error comes with the next read(), and stays. */
	EXPECT_EQ(-1, read(fd, buf, 1));
	EXPECT_EQ(EIO, errno);
	EXPECT_EQ(-1, read(fd, buf, 1));
	EXPECT_EQ(EIO, errno);
	EXPECT_EQ(saves + 3, pf_saves_sent(&self->e));
	ASSERT_EQ(0, mig_get_state(a, &state));
	EXPECT_EQ(VFIO_DEVICE_STATE_STOP_COPY, state);
	close(fd);
	snprintf((char *)buf, 128, "/sys/kernel/debug/tern_pf/%s/aq",
		 self->e.pf);
	ASSERT_EQ(0, file_read((char *)buf, aq, sizeof(aq)));
	EXPECT_NE(NULL, strstr(aq, "\ninflight: 0\n"));
	free(buf);
	check_recovers(_metadata, self);
}

/*
 * Two chunks in flight on the destination: a write() that completes an
 * IMAGE record returns with the record's LOAD still running (here held
 * for a second by the device), and the next records arrive meanwhile.
 * The LOAD's outcome is collected before the next LOAD: a LOAD that
 * fails in the background fails the write() that collects it, and then
 * every write() and the RESUMING -> STOP arc, with its errno (EPERM);
 * the VF is unchanged.
 */
TEST_F(fault, load_in_flight_overlaps_write)
{
	struct vfio_dev *a = &self->e.dev[A], *b = &self->e.dev[B];
	size_t off = TERN_STREAM_HDR_SIZE, end1 = 0, end2 = 0;
	unsigned int images = 0;
	uint64_t start, took;
	uint32_t fired, state;
	int fd;

	ASSERT_EQ(0, file_write(AQ_TIMEOUT_PARAM, "5000"));
	mmio_write32(self->e.mem[B], 0, 0xb0b0b0b0);
	ASSERT_EQ(0, mig_set_state(a, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_save(a, &self->s));
	/* The ends of the first two IMAGE records. */
	while (off + TERN_STREAM_REC_SIZE <= self->s.len && images < 2) {
		const struct tern_stream_rec *r = (void *)(self->s.data + off);

		off += TERN_STREAM_REC_SIZE + le32toh(r->length);
		if (le16toh(r->type) == TERN_REC_IMAGE) {
			images++;
			*(images == 1 ? &end1 : &end2) = off;
		}
	}
	ASSERT_NE(0, end2);
	ASSERT_LT(end2, self->s.len);

	ASSERT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_RESUMING, &fd));
	fired = mmio_read32(self->dbg, TERN_DBG_REG_FIRED);
	mmio_write32(self->dbg, TERN_DBG_REG_DELAY_MS, 1000);
	mmio_write32(self->dbg, TERN_DBG_REG_DELAY_CMD,
		     TERN_DBG_ARM | TERN_OP_LOAD);
	start = now_ms();
	ASSERT_EQ(0, mig_write(fd, self->s.data, end1, PIECE));
	took = now_ms() - start;
	/* Not held up by the first LOAD, which takes a second. */
	EXPECT_GT(500, took);
	TH_LOG("first IMAGE record written in %llu ms",
	       (unsigned long long)took);
	/* The device fetches the LOAD (and holds it). */
	EXPECT_TRUE(fired_reach(self, fired + 1));

	/* The second record's LOAD fails in the device. */
	mmio_write32(self->dbg, TERN_DBG_REG_FAIL_VF, B);
	mmio_write32(self->dbg, TERN_DBG_REG_FAIL_STATUS,
		     TERN_STS_INVALID_STATE);
	mmio_write32(self->dbg, TERN_DBG_REG_FAIL_CMD,
		     TERN_DBG_ARM | TERN_OP_LOAD);
	/* It waits for the first LOAD, then starts the second. */
	start = now_ms();
	ASSERT_EQ(0, mig_write(fd, self->s.data + end1, end2 - end1, PIECE));
	EXPECT_LE(500, now_ms() - start);
	/* The next write() that needs its outcome fails, and stays failed. */
	EXPECT_EQ(-EPERM, mig_write(fd, self->s.data + end2,
				    self->s.len - end2, PIECE));
	EXPECT_EQ(-EPERM, mig_write(fd, self->s.data, 1, 1));
	EXPECT_EQ(-EPERM, mig_set_state(b, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_get_state(b, &state));
	EXPECT_EQ(VFIO_DEVICE_STATE_RESUMING, state);
	EXPECT_EQ(0xb0b0b0b0, mmio_read32(self->e.mem[B], 0));
	close(fd);
	ASSERT_EQ(0, vfio_reset(b));
	ASSERT_EQ(0, mig_load(b, &self->s, PIECE));
}

/*
 * A device that returns short chunks: the stream carries them, the
 * pre-copy byte counts stay sane all along, and the stream loads.
 */
TEST_F(fault, save_short_chunks)
{
	struct vfio_dev *a = &self->e.dev[A], *b = &self->e.dev[B];
	uint64_t initial, dirty, size;
	int fd;

	mmio_write32(self->e.mem[A], 0, 0xa5a5a5a5);
	mmio_write32(self->dbg, TERN_DBG_REG_SAVE_SHORT, 100000);
	ASSERT_EQ(0, mig_set_state(a, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	EXPECT_LT(self->e.devmem_size, initial);
	EXPECT_GT(self->e.devmem_size, dirty);
	ASSERT_EQ(-ENOMSG, mig_read(fd, &self->s));
	ASSERT_EQ(0, mig_precopy_info(fd, &initial, &dirty));
	EXPECT_EQ(0, initial);
	EXPECT_GT(self->e.devmem_size, dirty);
	ASSERT_EQ(0, mig_data_size(a, &size));
	EXPECT_GT(2 * self->e.devmem_size, size);
	ASSERT_EQ(0, mig_set_state(a, VFIO_DEVICE_STATE_STOP_COPY, NULL));
	ASSERT_EQ(0, mig_read(fd, &self->s));
	close(fd);
	ASSERT_EQ(0, mig_set_state(a, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_load(b, &self->s, PIECE));
	ASSERT_EQ(0, mig_set_state(b, VFIO_DEVICE_STATE_RUNNING, NULL));
	EXPECT_EQ(0xa5a5a5a5, mmio_read32(self->e.mem[B], 0));
}

/* A device whose image changes size half way: the read fails, -EIO. */
TEST_F(fault, save_image_resized)
{
	uint32_t state;
	int fd;

	mmio_write32(self->dbg, TERN_DBG_REG_SAVE_RESIZE, TERN_DBG_ARM | A);
	ASSERT_EQ(0, mig_set_state(&self->e.dev[A],
				   VFIO_DEVICE_STATE_STOP_COPY, &fd));
	EXPECT_EQ(-EIO, mig_read(fd, &self->s));
	ASSERT_EQ(0, mig_get_state(&self->e.dev[A], &state));
	EXPECT_EQ(VFIO_DEVICE_STATE_STOP_COPY, state);
	close(fd);
	check_recovers(_metadata, self);
}

TEST_HARNESS_MAIN
