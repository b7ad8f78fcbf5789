// SPDX-License-Identifier: GPL-2.0
/*
 * Churn of the test VM's memory map under a vCPU that keeps doing MMIO.
 *
 * Enabling and disabling the PF's VFs, and resetting the PF (FLR through
 * sysfs, with tern_pf and with vfio-pci bound to it), remove the VF BARs
 * from QEMU's memory map and put them back; the PF reset also turns the
 * PF's own BARs off and on.  Stopping a VF through tern_vfio_pci and
 * resetting it (FLR) maps its device memory read-only and back.
 * Meanwhile a thread on the other vCPU reads the magic register of the
 * PF and of every VF, through their sysfs resource0 mappings (through
 * VFIO in the last phase), and checks each value.
 *
 * Under TCG, this kind of churn made QEMU 10.0 abort with
 * "iotlb_to_section: Assertion `section_index < d->map.sections_nb'
 * failed", or could read another region than the one mapped
 * (qemu/patches/0001-*.patch has the cause).  The race is narrow: this
 * test exercises it but has not been seen to lose it.  The test passes if
 * the VM survives and every read returned a magic value or what an
 * unmapped BAR reads as.
 *
 * usage: tern_churn [ROUNDS]	(default 20; each phase runs ROUNDS times)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "kselftest.h"
#include "lib/env_util.h"
#include "lib/mig_util.h"
#include "tern/tern_hw.h"

/*
 * All the VFs the PF has, up to the device's limit: the more BARs go
 * away at once, the likelier a stale index falls outside the new map.
 */
#define MAX_VFS		64
#define MAX_MAPS	(MAX_VFS + 1)
#define MAX_ROUNDS	100000
/* Iterations of the reader's spin between two passes. */
#define SPIN		2000
/* Both register BARs are one 4 KiB page. */
#define REGS_SIZE	4096

/*
 * What the reader thread reads: slot 0 is the PF, 1.. the VFs, and a slot
 * without a VF reads the PF again.
 */
struct reader {
	pthread_t thread;
	atomic_uintptr_t regs[MAX_MAPS];
	atomic_uint gen;	/* bumped by the reader after each pass */
	atomic_bool stop;
	unsigned long reads;
	unsigned long bad;
	uint32_t bad_val;
};

static char pf[32];
static int nr_vfs;

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/*
 * One read of every slot, unrolled so that the pass is dense in MMIO.
 * (QEMU 10.0 still ends a translation block at each MMIO access, so a
 * pass does not run under one TLB state.)  TERN_PF_REG_MAGIC and
 * TERN_VF_REG_MAGIC are both at 0.
 */
static void read_pass(void *const p[MAX_MAPS], uint32_t v[MAX_MAPS])
{
	int i;

#pragma GCC unroll 65
	for (i = 0; i < MAX_MAPS; i++)
		v[i] = mmio_read32(p[i], 0);
}

/* A good read is a magic register or an unmapped BAR (0 or ~0). */
static bool good(uint32_t v)
{
	return v == TERN_PF_MAGIC || v == TERN_VF_MAGIC || v == 0 ||
	       v == 0xffffffff;
}

/*
 * Each read takes QEMU's big lock, which is not fair: without a pause
 * between passes the other vCPU would never get it.  The pause is a spin
 * in userspace, not a sleep: a vCPU that sleeps is halted in QEMU and
 * takes its TLB flush before it runs again, while the race to provoke
 * needs a vCPU that is running, with TLB entries of the old map, when the
 * other one switches the map under QEMU's lock.
 */
static void spin(void)
{
	int i;

	for (i = 0; i < SPIN; i++)
		__asm__ volatile("" ::: "memory");
}

static void *reader_fn(void *arg)
{
	struct reader *r = arg;
	uint32_t v[MAX_MAPS];
	void *p[MAX_MAPS];
	int i;

	pin(1);
	while (!atomic_load(&r->stop)) {
		for (i = 0; i < MAX_MAPS; i++)
			p[i] = (void *)atomic_load(&r->regs[i]);
		read_pass(p, v);
		for (i = 0; i < MAX_MAPS; i++) {
			if (!good(v[i])) {
				r->bad++;
				r->bad_val = v[i];
			}
		}
		r->reads += MAX_MAPS;
		atomic_fetch_add(&r->gen, 1);
		spin();
	}
	return NULL;
}

/* Wait until the reader has started a pass after this call. */
static void reader_sync(struct reader *r)
{
	unsigned int gen = atomic_load(&r->gen);

	while (atomic_load(&r->gen) - gen < 2)
		sched_yield();
}

static void *map_regs(const char *bdf)
{
	char path[128];
	void *p;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", bdf);
	fd = open(path, O_RDONLY | O_SYNC);
	if (fd < 0)
		return NULL;
	p = mmap(NULL, REGS_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

static void unmap_regs(void *p)
{
	munmap(p, REGS_SIZE);
}

/* Enable the VFs and hand their registers to the reader. */
static int vfs_on(struct reader *r)
{
	char vf[32], n[8];
	void *p;
	int i;

	snprintf(n, sizeof(n), "%d", nr_vfs);
	if (pci_sysfs_write(pf, "sriov_numvfs", n))
		return -EIO;
	for (i = 0; i < nr_vfs; i++) {
		if (pci_vf_bdf(pf, i, vf, sizeof(vf)))
			return -ENODEV;
		p = map_regs(vf);
		if (!p)
			return -ENOMEM;
		atomic_store(&r->regs[1 + i], (uintptr_t)p);
	}
	return 0;
}

/* Take the VF registers from the reader, unmap them, disable the VFs. */
static int vfs_off(struct reader *r)
{
	uintptr_t pf_regs = atomic_load(&r->regs[0]), p[MAX_MAPS];
	int i;

	for (i = 1; i < MAX_MAPS; i++)
		p[i] = atomic_exchange(&r->regs[i], pf_regs);
	reader_sync(r);
	for (i = 1; i < MAX_MAPS; i++)
		if (p[i] != pf_regs)
			unmap_regs((void *)p[i]);
	return pci_sysfs_write(pf, "sriov_numvfs", "0");
}

static int reader_start(struct reader *r)
{
	void *p = map_regs(pf);
	int i;

	memset(r, 0, sizeof(*r));
	if (!p)
		return -ENOMEM;
	for (i = 0; i < MAX_MAPS; i++)
		atomic_store(&r->regs[i], (uintptr_t)p);
	return pthread_create(&r->thread, NULL, reader_fn, r) ? -EAGAIN : 0;
}

/* Stop the reader; true if it saw only good values. */
static bool reader_stop(struct reader *r, const char *phase)
{
	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
	unmap_regs((void *)atomic_load(&r->regs[0]));
	ksft_print_msg("%s: %lu reads, %lu bad\n", phase, r->reads, r->bad);
	if (r->bad)
		ksft_print_msg("%s: last bad value 0x%08x\n", phase, r->bad_val);
	return r->reads && !r->bad;
}

/* Bind the PF to @drv (vfio-pci with SR-IOV allowed) with no VFs. */
static int take_pf(const char *drv)
{
	pci_sysfs_write(pf, "sriov_numvfs", "0");
	if (!strcmp(drv, "vfio-pci") &&
	    (system("modprobe vfio-pci enable_sriov=1") ||
	     file_write("/sys/module/vfio_pci/parameters/enable_sriov", "Y")))
		return -ENOENT;
	if (!strcmp(drv, "tern_pf") && system("modprobe tern_pf"))
		return -ENOENT;
	if (pci_bind(pf, drv))
		return -EIO;
	return pci_sysfs_write(pf, "sriov_numvfs", "0");
}

static bool churn_sriov(int rounds)
{
	struct reader r;
	int i, ret;

	ret = take_pf("tern_pf") ?: reader_start(&r);
	if (ret) {
		ksft_print_msg("sriov: setup failed: %s\n", strerror(-ret));
		return false;
	}
	pin(0);
	for (i = 0; i < rounds && !ret; i++) {
		ret = vfs_on(&r);
		ret = vfs_off(&r) ?: ret;
	}
	if (ret)
		ksft_print_msg("sriov: round %d failed: %s\n", i, strerror(-ret));
	return reader_stop(&r, "sriov") && !ret;
}

static bool churn_flr(const char *drv, int rounds)
{
	struct reader r;
	int i, ret;

	ret = take_pf(drv) ?: reader_start(&r);
	if (ret) {
		ksft_print_msg("flr %s: setup failed: %s\n", drv, strerror(-ret));
		return false;
	}
	pin(0);
	ret = vfs_on(&r);
	for (i = 0; i < rounds && !ret; i++)
		ret = pci_sysfs_write(pf, "reset", "1");
	if (ret)
		ksft_print_msg("flr %s: round %d failed: %s\n", drv, i,
			       strerror(-ret));
	ret = vfs_off(&r) ?: ret;
	return reader_stop(&r, drv) && !ret;
}

/*
 * The arcs of a migration test: STOP freezes the VF, whose device memory
 * the model then maps read-only, and a VF reset (FLR) thaws it; each
 * changes QEMU's memory map while the reader reads the VFs' registers
 * through VFIO.  A stream test that rejects bad streams does this once
 * per stream.
 */
static bool churn_vf_arcs(int rounds)
{
	struct tern_env e;
	struct reader r;
	int i, j, ret;

	ret = env_setup(&e, ENV_MAX_VFS, false);
	if (!ret)
		ret = reader_start(&r);
	if (ret) {
		ksft_print_msg("vf arcs: setup failed: %s\n", strerror(-ret));
		env_teardown(&e);
		return false;
	}
	for (j = 0; j < e.nr; j++)
		atomic_store(&r.regs[1 + j], (uintptr_t)e.regs[j]);
	pin(0);
	for (i = 0; i < rounds && !ret; i++)
		for (j = 0; j < e.nr && !ret; j++)
			ret = mig_set_state(&e.dev[j], VFIO_DEVICE_STATE_STOP,
					    NULL) ?: vfio_reset(&e.dev[j]);
	if (ret)
		ksft_print_msg("vf arcs: round %d failed: %s\n", i,
			       strerror(-ret));
	for (j = 0; j < e.nr; j++)
		atomic_store(&r.regs[1 + j], atomic_load(&r.regs[0]));
	reader_sync(&r);
	env_teardown(&e);
	return reader_stop(&r, "vf arcs") && !ret;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 20;
	char n[16];

	ksft_print_header();
	if (rounds < 1 || rounds > MAX_ROUNDS)
		ksft_exit_fail_msg("usage: tern_churn [ROUNDS (1-%d)]\n",
				   MAX_ROUNDS);
	if (pci_find_device(TERN_PCI_VENDOR_ID, TERN_PCI_DEVICE_ID_PF, pf,
			    sizeof(pf)))
		ksft_exit_skip("no tern PF\n");
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		ksft_exit_skip("needs 2 CPUs\n");
	if (pci_sysfs_read(pf, "sriov_totalvfs", n, sizeof(n)))
		ksft_exit_fail_msg("no sriov_totalvfs\n");
	nr_vfs = atoi(n);
	if (nr_vfs < 1)
		ksft_exit_skip("the PF has no VFs\n");
	nr_vfs = nr_vfs < MAX_VFS ? nr_vfs : MAX_VFS;
	ksft_set_plan(4);
	ksft_test_result(churn_sriov(rounds),
			 "SR-IOV enable/disable of %d VFs x%d under MMIO\n",
			 nr_vfs, rounds);
	ksft_test_result(churn_flr("tern_pf", rounds),
			 "PF FLR with tern_pf x%d under MMIO\n", rounds);
	ksft_test_result(churn_flr("vfio-pci", rounds),
			 "PF FLR with vfio-pci x%d under MMIO\n", rounds);
	ksft_test_result(churn_vf_arcs(rounds),
			 "VF STOP and FLR of %d VFs x%d under MMIO\n",
			 ENV_MAX_VFS, rounds);
	take_pf("tern_pf");
	ksft_finished();
}
