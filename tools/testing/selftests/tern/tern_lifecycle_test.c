// SPDX-License-Identifier: GPL-2.0
/*
 * The PF and the drivers go away while VFs migrate (reliability.rst,
 * R4): a thread per VF migrates it into itself over and over while the
 * PF is unbound from tern_pf, its VFs are disabled (sriov_numvfs N -> 0)
 * or the modules are removed.  What must hold: the unbind completes
 * within a minute (no hang) and every user sees its VF in ERROR or gone
 * (ENODEV) and closes it; disabling the VFs (EBUSY, pf.rst) and rmmod
 * (EWOULDBLOCK) are refused at once while the VFs are open, without
 * harm to the migrations, and succeed once the users are gone; and
 * afterwards the stack comes back (N VFs, modules loaded) and migrates.  vm-run checks the kernel
 * log (lockdep, KASAN, kmemleak, hung tasks).
 *
 * TERN_LIFECYCLE_ROUNDS (default 3) sets how often the three run.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "kselftest_harness.h"
#include "lib/env_util.h"
#include "lib/mig_util.h"

#define NR_VFS		ENV_MAX_VFS
#define PIECE		(256u << 10)
/* An event or a user that takes longer than this has hung. */
#define HANG_MS		60000
/* Migrations run this long before the event. */
#define LEAD_MS		1500

/* One VF's user: it migrates the VF into itself until told or failed. */
struct user {
	struct tern_env *e;
	int i;
	pthread_t t;
	bool stop;
	bool done;
	unsigned long migrations;
	bool saw_error;		/* the VF went to ERROR */
	int err;		/* the first errno of a failed operation */
};

static int migrate_once(struct vfio_dev *d)
{
	struct mig_buf s = {};
	int ret;

	ret = mig_set_state(d, VFIO_DEVICE_STATE_STOP, NULL) ?:
	      mig_save(d, &s) ?: mig_load(d, &s, PIECE) ?:
	      mig_set_state(d, VFIO_DEVICE_STATE_RUNNING, NULL);
	mig_buf_free(&s);
	return ret;
}

static void *user_run(void *arg)
{
	struct user *u = arg;
	struct vfio_dev *d = &u->e->dev[u->i];
	uint32_t state;
	int ret;

	while (!__atomic_load_n(&u->stop, __ATOMIC_RELAXED)) {
		ret = migrate_once(d);
		if (!ret) {
			u->migrations++;
			continue;
		}
		if (!u->err)
			u->err = -ret;
		/* The device's own word on what happened. */
		ret = mig_get_state(d, &state);
		if (ret || state == VFIO_DEVICE_STATE_ERROR) {
			u->saw_error = !ret;
			if (ret && u->err != ENODEV)
				u->err = -ret;
			break;
		}
	}
	/* A VF that is going away waits for its users: be one that goes. */
	env_close_vf(u->e, u->i);
	__atomic_store_n(&u->done, true, __ATOMIC_RELEASE);
	return NULL;
}

FIXTURE(lifecycle) {
	struct tern_env e;
	struct user u[NR_VFS];
};

FIXTURE_SETUP(lifecycle)
{
	int ret = env_setup(&self->e, NR_VFS, false);

	if (ret == -ENODEV)
		SKIP(return, "no tern PF");
	ASSERT_EQ(0, ret);
}

FIXTURE_TEARDOWN(lifecycle)
{
	env_teardown(&self->e);
}

static void start_users(struct __test_metadata *_metadata,
			FIXTURE_DATA(lifecycle) *self)
{
	int i;

	for (i = 0; i < NR_VFS; i++) {
		memset(&self->u[i], 0, sizeof(self->u[i]));
		self->u[i].e = &self->e;
		self->u[i].i = i;
		ASSERT_EQ(0, pthread_create(&self->u[i].t, NULL, user_run,
					    &self->u[i]));
	}
	usleep(LEAD_MS * 1000);
}

/* Wait for the users to finish; false if one hangs. */
static bool users_done(FIXTURE_DATA(lifecycle) *self, uint64_t deadline)
{
	int i;

	for (i = 0; i < NR_VFS; i++) {
		while (!__atomic_load_n(&self->u[i].done, __ATOMIC_ACQUIRE)) {
			if (now_ms() > deadline)
				return false;
			usleep(20000);
		}
		pthread_join(self->u[i].t, NULL);
	}
	return true;
}

/* The unbind runs in a thread: it waits for the VFs' users. */
struct event {
	const char *pf;
	int ret;
	bool done;
};

static void *unbind_run(void *arg)
{
	struct event *ev = arg;

	ev->ret = pci_sysfs_write(ev->pf, "driver/unbind", ev->pf);
	__atomic_store_n(&ev->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static void report_users(struct __test_metadata *_metadata,
			 FIXTURE_DATA(lifecycle) *self, const char *what)
{
	int i;

	for (i = 0; i < NR_VFS; i++) {
		struct user *u = &self->u[i];

		TH_LOG("%s: VF %d: %lu migrations, then %s (%s)", what, i,
		       u->migrations, u->saw_error ? "ERROR" : "gone",
		       strerror(u->err));
		/* A user learns of the loss by ERROR or ENODEV. */
		EXPECT_TRUE(u->saw_error || u->err == ENODEV);
	}
}

/* The PF driver goes away mid-migration: users see ERROR or ENODEV. */
static void unbind_event(struct __test_metadata *_metadata,
			 FIXTURE_DATA(lifecycle) *self)
{
	struct event ev = { .pf = self->e.pf };
	uint64_t deadline;
	pthread_t t;

	start_users(_metadata, self);
	ASSERT_EQ(0, pthread_create(&t, NULL, unbind_run, &ev));
	deadline = now_ms() + HANG_MS;
	ASSERT_TRUE(users_done(self, deadline)) TH_LOG("a VF user hangs");
	while (!__atomic_load_n(&ev.done, __ATOMIC_ACQUIRE) &&
	       now_ms() < deadline)
		usleep(20000);
	ASSERT_TRUE(ev.done) TH_LOG("the unbind hangs");
	pthread_join(t, NULL);
	EXPECT_EQ(0, ev.ret);
	report_users(_metadata, self, "unbind");
}

static int delete_module(const char *name)
{
	return syscall(SYS_delete_module, name, O_NONBLOCK) ? -errno : 0;
}

static int disable_vfs(const char *pf)
{
	return pci_sysfs_write(pf, "sriov_numvfs", "0");
}

static int rmmod_both(const char *pf)
{
	int ret = delete_module("tern_vfio_pci");

	return ret ?: delete_module("tern_pf");
}

/*
 * What pf.rst and the module loader refuse while the VFs are open:
 * sriov_numvfs 0 (EBUSY) and rmmod (EWOULDBLOCK, O_NONBLOCK).  The
 * refusal comes at once and the migrations go on unharmed; once the
 * users are gone the same request succeeds.
 */
static void refused_in_use(struct __test_metadata *_metadata,
			   FIXTURE_DATA(lifecycle) *self,
			   int (*event)(const char *pf), int err)
{
	unsigned long before[NR_VFS];
	int i;

	start_users(_metadata, self);
	EXPECT_EQ(-err, event(self->e.pf));
	for (i = 0; i < NR_VFS; i++)
		before[i] = __atomic_load_n(&self->u[i].migrations,
					    __ATOMIC_RELAXED);
	usleep(2 * LEAD_MS * 1000);
	for (i = 0; i < NR_VFS; i++)
		__atomic_store_n(&self->u[i].stop, true, __ATOMIC_RELAXED);
	ASSERT_TRUE(users_done(self, now_ms() + HANG_MS));
	for (i = 0; i < NR_VFS; i++) {
		/* Still migrating after the refusal. */
		EXPECT_LT(before[i], self->u[i].migrations);
		EXPECT_EQ(0, self->u[i].err);
	}
	vfio_container_close(&self->e.c);
	EXPECT_EQ(0, event(self->e.pf));
}

static int rounds(void)
{
	const char *r = getenv("TERN_LIFECYCLE_ROUNDS");

	return r ? atoi(r) : 3;
}

/* Everything back: the drivers, N VFs, and a migration of each. */
static void back(struct __test_metadata *_metadata,
		 FIXTURE_DATA(lifecycle) *self)
{
	int i;

	env_teardown(&self->e);
	ASSERT_EQ(0, env_setup(&self->e, NR_VFS, false));
	for (i = 0; i < NR_VFS; i++)
		ASSERT_EQ(0, migrate_once(&self->e.dev[i]));
}

TEST_F_TIMEOUT(lifecycle, events_mid_migration, 1500)
{
	int r, n = rounds();

	for (r = 0; r < n; r++) {
		unbind_event(_metadata, self);
		back(_metadata, self);
		refused_in_use(_metadata, self, disable_vfs, EBUSY);
		back(_metadata, self);
		refused_in_use(_metadata, self, rmmod_both, EWOULDBLOCK);
		back(_metadata, self);
	}
	/* Whether every user saw ERROR or ENODEV is the test's result. */
	ksft_print_msg("R4: %d rounds of PF unbind, sriov_numvfs %d -> 0 -> %d and rmmod/modprobe with %d VFs migrating, no hang\n",
		       n, NR_VFS, NR_VFS, NR_VFS);
}

TEST_HARNESS_MAIN
