// SPDX-License-Identifier: GPL-2.0
/*
 * Threads race migration state changes, data fd reads, writes and
 * closes, precopy and size queries, and resets on several VFs for a
 * bounded time.  Errors are expected; what must hold is that nothing
 * hangs, every VF comes back with a reset and migrates afterwards, and
 * the kernel (lockdep, KASAN, kmemleak, checked by vm-run) stays quiet.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "kselftest_harness.h"
#include "lib/env_util.h"
#include "lib/mig_util.h"

#define NR_VFS		2
#define THREADS_PER_VF	3
#define RUN_MS		15000
#define PIECE		(32u << 10)
/* Enough stream for a header and records, quick to write under TCG. */
#define WRITE_MAX	(256u << 10)

static const uint32_t states[] = {
	VFIO_DEVICE_STATE_RUNNING, VFIO_DEVICE_STATE_STOP,
	VFIO_DEVICE_STATE_STOP_COPY, VFIO_DEVICE_STATE_RESUMING,
	VFIO_DEVICE_STATE_RUNNING_P2P, VFIO_DEVICE_STATE_PRE_COPY,
	VFIO_DEVICE_STATE_PRE_COPY_P2P,
};

/* One VF and its current data fd, shared by the threads racing on it. */
struct racer_vf {
	struct vfio_dev *d;
	pthread_mutex_t lock;	/* fd: threads use a dup, never fd itself */
	int fd;
	const struct mig_buf *stream;
};

struct racer {
	struct racer_vf *vf;
	unsigned int seed;
	uint64_t end;
	unsigned long ops;
};

static void set_fd(struct racer_vf *v, int fd)
{
	pthread_mutex_lock(&v->lock);
	if (v->fd >= 0)
		close(v->fd);
	v->fd = fd;
	pthread_mutex_unlock(&v->lock);
}

static int get_fd(struct racer_vf *v)
{
	int fd;

	pthread_mutex_lock(&v->lock);
	fd = v->fd >= 0 ? dup(v->fd) : -1;
	pthread_mutex_unlock(&v->lock);
	return fd;
}

static void race_once(struct racer *r, char *buf, size_t len)
{
	struct racer_vf *v = r->vf;
	uint64_t a, b;
	uint32_t s;
	int fd;

	switch (rand_r(&r->seed) % 8) {
	case 0:
	case 1:
		if (!mig_set_state(v->d, states[rand_r(&r->seed) %
				   ARRAY_SIZE(states)], &fd) && fd >= 0)
			set_fd(v, fd);
		break;
	case 2:
		fd = get_fd(v);
		if (fd >= 0) {
			if (read(fd, buf, len) < 0 && errno == EBADF)
				mig_write(fd, v->stream->data, WRITE_MAX,
					  PIECE);
			close(fd);
		}
		break;
	case 3:
		fd = get_fd(v);
		if (fd >= 0) {
			mig_precopy_info(fd, &a, &b);
			close(fd);
		}
		break;
	case 4:
		set_fd(v, -1);
		break;
	case 5:
		if (rand_r(&r->seed) % 4 == 0)
			vfio_reset(v->d);
		break;
	case 6:
		mig_data_size(v->d, &a);
		break;
	default:
		mig_get_state(v->d, &s);
	}
}

static void *race(void *arg)
{
	struct racer *r = arg;
	char *buf = malloc(64 << 10);

	while (buf && now_ms() < r->end) {
		race_once(r, buf, (rand_r(&r->seed) % 16 + 1) << 12);
		r->ops++;
	}
	free(buf);
	return NULL;
}

FIXTURE(stress) {
	struct tern_env e;
	struct mig_buf stream;
	struct racer_vf vf[NR_VFS];
};

FIXTURE_SETUP(stress)
{
	int i, ret = env_setup(&self->e, NR_VFS, false);

	if (ret == -ENODEV)
		SKIP(return, "no tern PF");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, mig_set_state(&self->e.dev[0], VFIO_DEVICE_STATE_STOP,
				   NULL));
	ASSERT_EQ(0, mig_save(&self->e.dev[0], &self->stream));
	for (i = 0; i < NR_VFS; i++) {
		self->vf[i].d = &self->e.dev[i];
		self->vf[i].fd = -1;
		self->vf[i].stream = &self->stream;
		pthread_mutex_init(&self->vf[i].lock, NULL);
	}
}

FIXTURE_TEARDOWN(stress)
{
	mig_buf_free(&self->stream);
	env_teardown(&self->e);
}

TEST_F_TIMEOUT(stress, race, 120)
{
	struct racer r[NR_VFS * THREADS_PER_VF];
	pthread_t t[NR_VFS * THREADS_PER_VF];
	unsigned long ops = 0;
	unsigned int i;
	uint32_t s;

	for (i = 0; i < ARRAY_SIZE(r); i++) {
		r[i].vf = &self->vf[i % NR_VFS];
		r[i].seed = i + 1;
		r[i].end = now_ms() + RUN_MS;
		r[i].ops = 0;
		ASSERT_EQ(0, pthread_create(&t[i], NULL, race, &r[i]));
	}
	for (i = 0; i < ARRAY_SIZE(r); i++) {
		pthread_join(t[i], NULL);
		ops += r[i].ops;
	}
	TH_LOG("%lu operations", ops);
	for (i = 0; i < NR_VFS; i++) {
		set_fd(&self->vf[i], -1);
		ASSERT_EQ(0, vfio_reset(&self->e.dev[i]));
		ASSERT_EQ(0, mig_get_state(&self->e.dev[i], &s));
		EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, s);
		EXPECT_EQ(0, mig_load(&self->e.dev[i], &self->stream, PIECE));
		EXPECT_EQ(0, mig_set_state(&self->e.dev[i],
					   VFIO_DEVICE_STATE_RUNNING, NULL));
	}
}

TEST_HARNESS_MAIN
