// SPDX-License-Identifier: GPL-2.0
/*
 * On each of four VFs, one thread migrates the VF into itself in a loop
 * while another races migration state changes, data fd reads, writes
 * and closes, precopy and size queries, DMA logging, whole migrations,
 * VFIO resets and FLRs, for a minute (reliability.rst, R3;
 * TERN_STRESS_MS shortens it).  Errors are expected; what must hold is
 * that no operation hangs (a watchdog names one stuck for a minute),
 * every VF comes back with a reset and migrates afterwards, and the
 * kernel (lockdep, KASAN, kmemleak, hung tasks: vm-run) stays quiet.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/pci_regs.h>

#include "kselftest_harness.h"
#include "lib/env_util.h"
#include "lib/mig_util.h"

#define NR_VFS		4
#define THREADS_PER_VF	2
#define RUN_MS		60000
/* An operation that takes longer than this is reported as a hang. */
#define STUCK_MS	60000
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
	bool migrator;			/* only migrates its VF, in a loop */
	unsigned long migrations;	/* completed save + load pairs */
	uint64_t op_start;		/* now_ms() when the current op began */
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

/* Function level reset through the PCIe capability in config space. */
static void flr(struct vfio_dev *d)
{
	uint8_t pos = 0, id = 0;
	uint16_t ctl;
	int n;

	vfio_cfg_read(d, PCI_CAPABILITY_LIST, &pos, 1);
	for (n = 0; pos && n < 48; n++) {
		vfio_cfg_read(d, pos, &id, 1);
		if (id == PCI_CAP_ID_EXP)
			break;
		vfio_cfg_read(d, pos + 1, &pos, 1);
	}
	if (!pos || id != PCI_CAP_ID_EXP ||
	    vfio_cfg_read(d, pos + PCI_EXP_DEVCTL, &ctl, 2))
		return;
	ctl |= PCI_EXP_DEVCTL_BCR_FLR;
	vfio_cfg_write(d, pos + PCI_EXP_DEVCTL, &ctl, 2);
}

/* Start, report or stop DMA logging over the VF's DMA memory. */
static void dma_log(struct racer *r)
{
	struct vfio_container *c = r->vf->d->container;
	struct vfio_device_feature_dma_logging_range range = {
		.iova = c->dma_iova, .length = c->dma_size,
	};
	static uint64_t bitmap[ENV_DMA_SIZE / ENV_PAGE / 64];
	uint64_t pgsz = ENV_PAGE;

	switch (rand_r(&r->seed) % 3) {
	case 0:
		mig_log_start(r->vf->d, &range, 1, &pgsz);
		break;
	case 1:
		/* The bitmap is scratch: threads may share it. */
		mig_log_report(r->vf->d, c->dma_iova, ENV_DMA_SIZE, ENV_PAGE,
			       bitmap);
		break;
	default:
		mig_log_stop(r->vf->d);
	}
}

/* A whole migration of the VF into itself: save, then load. */
static void migrate(struct racer *r)
{
	struct mig_buf s = {};

	if (!mig_set_state(r->vf->d, VFIO_DEVICE_STATE_STOP, NULL) &&
	    !mig_save(r->vf->d, &s) && !mig_load(r->vf->d, &s, PIECE))
		r->migrations++;
	mig_buf_free(&s);
}

static void race_once(struct racer *r, char *buf, size_t len)
{
	struct racer_vf *v = r->vf;
	uint64_t a, b;
	uint32_t s;
	int fd;

	switch (rand_r(&r->seed) % 12) {
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
	case 7:
		dma_log(r);
		break;
	case 8:
		migrate(r);
		break;
	case 9:
		if (rand_r(&r->seed) % 4 == 0)
			flr(v->d);
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
		__atomic_store_n(&r->op_start, now_ms(), __ATOMIC_RELAXED);
		if (r->migrator)
			migrate(r);
		else
			race_once(r, buf, (rand_r(&r->seed) % 16 + 1) << 12);
		__atomic_store_n(&r->op_start, 0, __ATOMIC_RELAXED);
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

/* The run's length: RUN_MS, or TERN_STRESS_MS for a short run. */
static uint64_t run_ms(void)
{
	const char *ms = getenv("TERN_STRESS_MS");

	return ms ? strtoull(ms, NULL, 0) : RUN_MS;
}

/* Wait for the racers; false if one is stuck in an operation. */
static bool watch(struct racer *r, unsigned int nr, uint64_t end)
{
	unsigned int i;
	uint64_t t;

	while (now_ms() < end + STUCK_MS) {
		bool busy = false;

		for (i = 0; i < nr; i++) {
			t = __atomic_load_n(&r[i].op_start, __ATOMIC_RELAXED);
			if (t && now_ms() - t > STUCK_MS) {
				ksft_print_msg("R3: thread %u stuck in an operation for %llu ms\n",
					       i, (unsigned long long)(now_ms() - t));
				return false;
			}
			busy |= t || now_ms() < end;
		}
		if (!busy)
			return true;
		usleep(100000);
	}
	return false;
}

TEST_F_TIMEOUT(stress, race, 300)
{
	struct racer r[NR_VFS * THREADS_PER_VF];
	pthread_t t[NR_VFS * THREADS_PER_VF];
	unsigned long ops = 0, migrations = 0;
	uint64_t ms = run_ms(), end = now_ms() + ms;
	unsigned int i;
	uint32_t s;

	for (i = 0; i < ARRAY_SIZE(r); i++) {
		r[i].vf = &self->vf[i % NR_VFS];
		r[i].seed = i + 1;
		r[i].end = end;
		r[i].ops = 0;
		r[i].migrations = 0;
		/* Per VF one thread races, one migrates. */
		r[i].migrator = i >= NR_VFS;
		r[i].op_start = 0;
		ASSERT_EQ(0, pthread_create(&t[i], NULL, race, &r[i]));
	}
	/* A stuck thread fails the test; the harness ends the process. */
	ASSERT_TRUE(watch(r, ARRAY_SIZE(r), end));
	for (i = 0; i < ARRAY_SIZE(r); i++) {
		pthread_join(t[i], NULL);
		ops += r[i].ops;
		migrations += r[i].migrations;
	}
	ksft_print_msg("R3: %zu threads on %d VFs for %llu s: %lu operations, %lu migrations completed, no operation stuck\n",
		       ARRAY_SIZE(r), NR_VFS, (unsigned long long)ms / 1000,
		       ops, migrations);
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
