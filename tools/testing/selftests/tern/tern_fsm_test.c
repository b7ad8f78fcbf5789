// SPDX-License-Identifier: GPL-2.0
/*
 * The VFIO migration state machine of tern_vfio_pci: every arc between
 * the seven states it supports returns a data fd exactly where
 * include/uapi/linux/vfio.h says, reads back, and leaves the VF really
 * in that state; invalid states are refused; VFIO_DEVICE_RESET leads back
 * to RUNNING from every state; a saving fd polls as vfio.h says and
 * outlives its device safely; the module parameters shape the migration
 * flags.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib/env_util.h"
#include "lib/mig_util.h"

#define TIMEOUT_MS	10000
#define NR_DESC		8

static const uint32_t states[] = {
	VFIO_DEVICE_STATE_RUNNING, VFIO_DEVICE_STATE_STOP,
	VFIO_DEVICE_STATE_STOP_COPY, VFIO_DEVICE_STATE_RESUMING,
	VFIO_DEVICE_STATE_RUNNING_P2P, VFIO_DEVICE_STATE_PRE_COPY,
	VFIO_DEVICE_STATE_PRE_COPY_P2P,
};

static bool saving(uint32_t s)
{
	return s == VFIO_DEVICE_STATE_STOP_COPY ||
	       s == VFIO_DEVICE_STATE_PRE_COPY ||
	       s == VFIO_DEVICE_STATE_PRE_COPY_P2P;
}

static bool precopy(uint32_t s)
{
	return s == VFIO_DEVICE_STATE_PRE_COPY ||
	       s == VFIO_DEVICE_STATE_PRE_COPY_P2P;
}

/*
 * vfio.h: PRE_COPY, PRE_COPY_P2P and STOP_COPY share one data transfer
 * session; the FSM goes from the pre-copy states to STOP_COPY without
 * leaving them, but from STOP_COPY to any other state through STOP.
 */
static bool keeps_session(uint32_t from, uint32_t to)
{
	if (from == to)
		return saving(from) || from == VFIO_DEVICE_STATE_RESUMING;
	return precopy(from) && saving(to);
}

/* vfio.h: "The following transitions are blocked". */
static bool blocked(uint32_t from, uint32_t to)
{
	return from == VFIO_DEVICE_STATE_STOP_COPY && precopy(to);
}

/* A data fd comes with every arc that opens a new session. */
static bool makes_fd(uint32_t from, uint32_t to)
{
	return (saving(to) || to == VFIO_DEVICE_STATE_RESUMING) &&
	       !keeps_session(from, to);
}

FIXTURE(fsm) {
	struct tern_env e;
	struct vfio_dev *d;
	struct work w;
	struct mig_buf stream;	/* the VF's own state, to resume from */
};

FIXTURE_SETUP(fsm)
{
	int ret = env_setup(&self->e, 1, false);

	if (ret == -ENODEV)
		SKIP(return, "no tern PF");
	ASSERT_EQ(0, ret);
	self->d = &self->e.dev[0];
	ASSERT_EQ(0, work_init(&self->w, &self->e.c, self->e.regs[0], 0,
			       NR_DESC));
	ASSERT_EQ(0, mig_set_state(self->d, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_save(self->d, &self->stream));
	ASSERT_EQ(0, mig_set_state(self->d, VFIO_DEVICE_STATE_RUNNING, NULL));
}

FIXTURE_TEARDOWN(fsm)
{
	mig_buf_free(&self->stream);
	env_teardown(&self->e);
}

/* Back to a freshly reset, running VF with its queue set up again. */
static int fresh(FIXTURE_DATA(fsm) *self)
{
	uint32_t state;
	int ret;

	ret = vfio_reset(self->d) ?: mig_get_state(self->d, &state);
	if (ret)
		return ret;
	if (state != VFIO_DEVICE_STATE_RUNNING)
		return -EINVAL;
	return tern_vfq_enable(&self->w.vq, self->e.regs[0]);
}

/* Go to state s; in RESUMING the stream is written, ready to leave. */
static int reach(FIXTURE_DATA(fsm) *self, uint32_t s, int *fd)
{
	int ret = mig_set_state(self->d, s, fd);

	if (ret || s != VFIO_DEVICE_STATE_RESUMING)
		return ret;
	return mig_write(*fd, self->stream.data, self->stream.len, 32 << 10);
}

static void check_running(struct __test_metadata *_metadata,
			  FIXTURE_DATA(fsm) *self)
{
	unsigned int i;

	self->w.pass++;
	work_add_range(&self->w, 0, NR_DESC);
	ASSERT_EQ(0, work_wait(&self->w, TIMEOUT_MS));
	for (i = 0; i < NR_DESC; i++)
		EXPECT_TRUE(work_block_ok(&self->w, i));
}

/* Doorbells move TAIL, nothing runs; device memory takes writes. */
static void check_quiesced(struct __test_metadata *_metadata,
			   FIXTURE_DATA(fsm) *self)
{
	uint64_t done = work_done(&self->w);
	uint32_t head = tern_vfq_head(&self->w.vq);

	work_add_range(&self->w, 0, NR_DESC);
	usleep(50000);
	EXPECT_EQ(self->w.vq.tail, tern_q_reg(&self->w.vq, TERN_Q_TAIL));
	EXPECT_EQ(head, tern_vfq_head(&self->w.vq));
	EXPECT_EQ(done, work_done(&self->w));
	EXPECT_EQ(0, self->w.cpl[0].status);
	mmio_write32(self->e.mem[0], 64, 0x5a5a0001);
	EXPECT_EQ(0x5a5a0001, mmio_read32(self->e.mem[0], 64));
}

/* Register and device memory writes are discarded, nothing runs. */
static void check_frozen(struct __test_metadata *_metadata,
			 FIXTURE_DATA(fsm) *self)
{
	uint32_t tail = tern_q_reg(&self->w.vq, TERN_Q_TAIL);
	uint32_t word = mmio_read32(self->e.mem[0], 64);
	uint64_t done = work_done(&self->w);

	work_add_range(&self->w, 0, NR_DESC);
	mmio_write32(self->e.mem[0], 64, ~word);
	usleep(50000);
	EXPECT_EQ(tail, tern_q_reg(&self->w.vq, TERN_Q_TAIL));
	EXPECT_EQ(word, mmio_read32(self->e.mem[0], 64));
	EXPECT_EQ(done, work_done(&self->w));
	EXPECT_EQ(0, self->w.cpl[0].status);
}

static void check_in_state(struct __test_metadata *_metadata,
			   FIXTURE_DATA(fsm) *self, uint32_t s)
{
	switch (s) {
	case VFIO_DEVICE_STATE_RUNNING:
	case VFIO_DEVICE_STATE_PRE_COPY:
		check_running(_metadata, self);
		break;
	case VFIO_DEVICE_STATE_RUNNING_P2P:
	case VFIO_DEVICE_STATE_PRE_COPY_P2P:
		check_quiesced(_metadata, self);
		break;
	default:
		check_frozen(_metadata, self);
	}
}

/* The data fd of `from` after the arc: alive in its session, else dead. */
static void check_old_fd(struct __test_metadata *_metadata, uint32_t from,
			 uint32_t to, int fd)
{
	char buf[64] = {};

	if (fd < 0)
		return;
	if (from == VFIO_DEVICE_STATE_RESUMING) {
		if (to != from) {
			EXPECT_EQ(-1, write(fd, buf, sizeof(buf)));
			EXPECT_EQ(ENODEV, errno);
		}
		return;
	}
	if (keeps_session(from, to)) {
		EXPECT_LT(0, read(fd, buf, sizeof(buf)));
	} else {
		EXPECT_EQ(-1, read(fd, buf, sizeof(buf)));
		EXPECT_EQ(ENODEV, errno);
	}
}

TEST_F_TIMEOUT(fsm, arcs, 300)
{
	unsigned int i, j;

	for (i = 0; i < ARRAY_SIZE(states); i++) {
		for (j = 0; j < ARRAY_SIZE(states); j++) {
			uint32_t from = states[i], to = states[j], got;
			int fd_from = -1, fd_to = -1;

			TH_LOG("arc %u -> %u", from, to);
			ASSERT_EQ(0, fresh(self));
			ASSERT_EQ(0, reach(self, from, &fd_from));
			ASSERT_EQ(makes_fd(VFIO_DEVICE_STATE_RUNNING, from),
				  fd_from >= 0);
			if (blocked(from, to)) {
				EXPECT_EQ(-EINVAL, mig_set_state(self->d, to,
								 &fd_to));
				to = from;
			} else {
				ASSERT_EQ(0, mig_set_state(self->d, to,
							   &fd_to));
			}
			EXPECT_EQ(makes_fd(from, to), fd_to >= 0);
			ASSERT_EQ(0, mig_get_state(self->d, &got));
			EXPECT_EQ(to, got);
			check_in_state(_metadata, self, to);
			check_old_fd(_metadata, from, to, fd_from);
			if (fd_from >= 0)
				close(fd_from);
			if (fd_to >= 0)
				close(fd_to);
		}
	}
}

TEST_F(fsm, invalid_states)
{
	static const uint32_t bad[] = {
		VFIO_DEVICE_STATE_ERROR, 8, 0x100, 0xffffffff,
	};
	unsigned int i;
	uint32_t got;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EINVAL, mig_set_state(self->d, bad[i], NULL));
		ASSERT_EQ(0, mig_get_state(self->d, &got));
		EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, got);
	}
	check_running(_metadata, self);
}

/* VFIO_DEVICE_RESET from every state: RUNNING, data fds dead. */
TEST_F_TIMEOUT(fsm, reset_every_state, 300)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(states); i++) {
		char buf[64] = {};
		int fd = -1;

		TH_LOG("state %u", states[i]);
		ASSERT_EQ(0, fresh(self));
		ASSERT_EQ(0, reach(self, states[i], &fd));
		ASSERT_EQ(0, fresh(self));
		if (fd >= 0) {
			ssize_t n = states[i] == VFIO_DEVICE_STATE_RESUMING ?
				    write(fd, buf, sizeof(buf)) :
				    read(fd, buf, sizeof(buf));

			EXPECT_EQ(-1, n);
			EXPECT_EQ(ENODEV, errno);
			close(fd);
		}
		check_running(_metadata, self);
		/* And a migration works again. */
		ASSERT_EQ(0, mig_set_state(self->d, VFIO_DEVICE_STATE_STOP,
					   NULL));
		ASSERT_EQ(0, mig_load(self->d, &self->stream, 4096));
	}
}

/* poll() of a data fd right now: its revents, 0 if not ready. */
static short poll_now(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

struct poller {
	int fd;
	short revents;
	uint64_t ms;	/* how long poll() waited */
};

static void *poll_wait_thread(void *arg)
{
	struct poller *w = arg;
	struct pollfd p = { .fd = w->fd, .events = POLLIN };
	uint64_t t0 = now_ms();

	if (poll(&p, 1, 5000) == 1)
		w->revents = p.revents;
	w->ms = now_ms() - t0;
	return NULL;
}

/*
 * A saving fd is readable while it has data buffered, not at the
 * temporary end of pre-copy data; a waiter there wakes when the VF
 * stops; in STOP_COPY it is always readable, at the end too; a reset
 * makes it an error.
 */
TEST_F(fsm, poll_saving_fd)
{
	struct poller w = { .fd = -1 };
	struct mig_buf s = {};
	pthread_t thread;
	int fd;

	ASSERT_EQ(0, mig_set_state(self->d, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	EXPECT_EQ(POLLIN, poll_now(fd));
	ASSERT_EQ(-ENOMSG, mig_read(fd, &s));
	EXPECT_EQ(0, poll_now(fd));

	w.fd = fd;
	ASSERT_EQ(0, pthread_create(&thread, NULL, poll_wait_thread, &w));
	usleep(300000);
	ASSERT_EQ(0, mig_set_state(self->d, VFIO_DEVICE_STATE_STOP_COPY,
				   NULL));
	pthread_join(thread, NULL);
	EXPECT_EQ(POLLIN, w.revents);
	EXPECT_GT(4000, w.ms);

	EXPECT_EQ(POLLIN, poll_now(fd));
	ASSERT_EQ(0, mig_read(fd, &s));
	EXPECT_EQ(POLLIN, poll_now(fd));
	close(fd);
	mig_buf_free(&s);

	ASSERT_EQ(0, fresh(self));
	ASSERT_EQ(0, mig_set_state(self->d, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	ASSERT_EQ(0, fresh(self));
	EXPECT_EQ(POLLERR, poll_now(fd) & (POLLERR | POLLIN));
	close(fd);
}

/*
 * A saving fd outlives the device fd and the driver's binding: its
 * ioctl and read fail, without touching freed memory (KASAN watches).
 */
TEST_F(fsm, data_fd_after_unbind)
{
	const char *vf = self->e.vf[0];
	uint64_t initial, dirty;
	char buf[64];
	int fd;

	ASSERT_EQ(0, mig_set_state(self->d, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	env_close_vf(&self->e, 0);
	ASSERT_EQ(0, pci_sysfs_write(vf, "driver/unbind", vf));
	EXPECT_EQ(-ENODEV, mig_precopy_info(fd, &initial, &dirty));
	EXPECT_EQ(-1, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(ENODEV, errno);
	close(fd);
	/* The teardown disables the VFs; the next setup makes new ones. */
}

FIXTURE(params) {
	struct tern_env e;
};

FIXTURE_SETUP(params)
{
	int ret = env_setup(&self->e, 1, false);

	if (ret == -ENODEV)
		SKIP(return, "no tern PF");
	ASSERT_EQ(0, ret);
}

FIXTURE_TEARDOWN(params)
{
	env_teardown(&self->e);
	/* The next test gets the driver with its defaults. */
	if (system("rmmod tern_vfio_pci && modprobe tern_vfio_pci"))
		TH_LOG("reloading tern_vfio_pci failed");
}

TEST_F(params, flags)
{
	char compat[128], want[128];
	uint64_t flags;

	ASSERT_EQ(0, mig_flags(&self->e.dev[0], &flags));
	EXPECT_EQ(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
		  VFIO_MIGRATION_PRE_COPY, flags);
	ASSERT_EQ(0, pci_sysfs_read(self->e.vf[0], "migration_compat", compat,
				    sizeof(compat)));
	snprintf(want, sizeof(want),
		 "tern stream=1 vf=1af4:10f1 image=1 queues=4 devmem=%llu",
		 (unsigned long long)self->e.devmem_size);
	EXPECT_STREQ(want, compat);
}

TEST_F(params, precopy_off)
{
	struct mig_buf s = {};
	uint64_t flags;
	uint32_t got;

	ASSERT_EQ(0, env_reload_vfio(&self->e, "precopy=0"));
	ASSERT_EQ(0, mig_flags(&self->e.dev[0], &flags));
	EXPECT_EQ(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P, flags);
	EXPECT_EQ(-EINVAL, mig_set_state(&self->e.dev[0],
					 VFIO_DEVICE_STATE_PRE_COPY, NULL));
	EXPECT_EQ(-EINVAL, mig_set_state(&self->e.dev[0],
					 VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL));
	ASSERT_EQ(0, mig_get_state(&self->e.dev[0], &got));
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, got);
	/* STOP_COPY still works. */
	ASSERT_EQ(0, mig_set_state(&self->e.dev[0], VFIO_DEVICE_STATE_STOP,
				   NULL));
	ASSERT_EQ(0, mig_save(&self->e.dev[0], &s));
	ASSERT_EQ(0, mig_load(&self->e.dev[0], &s, 32 << 10));
	EXPECT_EQ(0, mig_set_state(&self->e.dev[0],
				   VFIO_DEVICE_STATE_RUNNING, NULL));
	mig_buf_free(&s);
}

TEST_F(params, migration_off)
{
	char compat[128];
	uint64_t flags;
	uint32_t got;

	ASSERT_EQ(0, env_reload_vfio(&self->e, "migration=0"));
	EXPECT_EQ(-ENOTTY, mig_flags(&self->e.dev[0], &flags));
	EXPECT_EQ(-ENOTTY, mig_get_state(&self->e.dev[0], &got));
	EXPECT_EQ(-ENOTTY, mig_set_state(&self->e.dev[0],
					 VFIO_DEVICE_STATE_STOP, NULL));
	EXPECT_NE(0, pci_sysfs_read(self->e.vf[0], "migration_compat",
				    compat, sizeof(compat)));
}

TEST_HARNESS_MAIN
