// SPDX-License-Identifier: GPL-2.0
/*
 * tern_bench: the performance figures of Documentation/tern/performance.rst,
 * measured in one boot of the test VM, each against a baseline measured
 * in the same boot.  scripts/bench boots the VM once per device memory
 * size and runs this with the figures that size is for.
 *
 *   tern_bench [--quick] [FIGURE...]     FIGURE: P1 P2 P3 P4 P5 P6 LAT
 *
 * Prints one CSV row per figure, "id,figure,unit,value,baseline,ratio,
 * goal,met", and "# " lines saying how each was measured.  A figure that
 * misses its goal prints met=no; the exit status is 1 only when a
 * benchmark could not run.
 *
 * P1..P4, P6 and LAT act as a VMM on VFs bound to tern_vfio_pci (one type1
 * container, as QEMU has it).  P5 measures the device itself: the PF is
 * bound to vfio-pci and this program drives its admin queue, because a
 * VFIO dirty report over 256 TiB would need an 8 GiB bitmap; it runs
 * last.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include "lib/mig_util.h"
#include "lib/tern_util.h"
#include "lib/vfio_util.h"

#define MiB		(1ul << 20)
#define PAGE		4096ul
#define IO_SIZE		MiB		/* user buffer of every read/write */
#define MAX_VFS		8
#define DMA_SIZE	(16ul << 20)
#define TIMEOUT_MS	60000
#define TMPFILE		"/tmp/tern_bench.data"
#define VF_TOKEN	"5c1e7d2a-0000-4000-8000-0000000b3e4c"

static bool quick;
static int failures;

struct vf {
	char bdf[32];
	struct vfio_dev dev;
	void *regs;
	struct tern_vfq vq;
	bool vq_ready;
};

static struct vfio_container cont;
static struct vf vfs[MAX_VFS];
static int nr_vfs;
static char pf_bdf[32];
static uint64_t devmem;
static uint8_t *fill_src;	/* 1 MiB of random bytes, DMA memory */
static uint64_t fill_iova;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

/* A benchmark that could not run: say why, count it, go on. */
#define FAIL(fmt, ...) do {						\
		msg("FAILED: " fmt "\n", ##__VA_ARGS__);		\
		failures++;						\
	} while (0)

/* goal: ">=" or "<=" and a number; NULL: no goal (met "-"). */
static void row(const char *id, const char *figure, const char *unit,
		double value, double baseline, double ratio, const char *op,
		double goal, bool goal_on_ratio)
{
	char g[32] = "-", b[32] = "-", r[32] = "-";
	const char *met = "-";

	if (baseline >= 0)
		snprintf(b, sizeof(b), "%.4g", baseline);
	if (ratio >= 0)
		snprintf(r, sizeof(r), "%.3f", ratio);
	if (op) {
		double v = goal_on_ratio ? ratio : value;

		snprintf(g, sizeof(g), "%s%g", op, goal);
		met = (op[0] == '>' ? v >= goal : v <= goal) ? "yes" : "no";
	}
	printf("%s,%s,%s,%.4g,%s,%s,%s,%s\n", id, figure, unit, value, b, r, g,
	       met);
	fflush(stdout);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ------------------------------------------------------------------
 * Setup: the PF on tern_pf, n VFs on tern_vfio_pci, opened in one
 * type1 container, their device memory filled with random bytes.
 */

static void set_master(struct vfio_dev *d)
{
	uint16_t cmd;

	if (!vfio_cfg_read(d, 4, &cmd, 2)) {
		cmd |= 0x6;
		vfio_cfg_write(d, 4, &cmd, 2);
	}
}

/* Write the random MiB all over VF i's device memory with TO_DEV. */
static int fill_devmem(int i)
{
	struct vf *v = &vfs[i];
	uint64_t off;

	for (off = 0; off < devmem; off += MiB) {
		struct tern_desc d = {
			.opcode = TERN_DESC_TO_DEV,
			.len = htole32(devmem - off < MiB ? devmem - off : MiB),
			.src = htole64(fill_iova),
			.dst = htole64(off),
		};
		bool last = off + MiB >= devmem;

		tern_vfq_add(&v->vq, &d, last || !((off / MiB + 1) % 64));
		if (!last && (off / MiB + 1) % 64)
			continue;
		if (tern_vfq_wait_idle(&v->vq, TIMEOUT_MS))
			return -ETIMEDOUT;
	}
	return 0;
}

static int setup_vfs(int n)
{
	char cur[16], num[8];
	int i, ret;

	if (pci_find_device(TERN_PCI_VENDOR_ID, TERN_PCI_DEVICE_ID_PF, pf_bdf,
			    sizeof(pf_bdf)))
		return -ENODEV;
	if (system("modprobe -a tern_pf tern_vfio_pci vfio_iommu_type1"))
		return -ENOENT;
	ret = pci_bind(pf_bdf, "tern_pf");
	if (ret)
		return ret;
	snprintf(num, sizeof(num), "%d", n);
	if (pci_sysfs_read(pf_bdf, "sriov_numvfs", cur, sizeof(cur)) ||
	    strcmp(cur, num)) {
		pci_sysfs_write(pf_bdf, "sriov_numvfs", "0");
		ret = pci_sysfs_write(pf_bdf, "sriov_numvfs", num);
		if (ret)
			return ret;
	}
	ret = vfio_container_open(&cont, DMA_SIZE);
	if (ret)
		return ret;
	fill_src = vfio_dma_alloc(&cont, MiB, PAGE, &fill_iova);
	if (!fill_src)
		return -ENOMEM;
	srand(16);
	for (i = 0; i < (int)(MiB / sizeof(int)); i++)
		((int *)fill_src)[i] = rand();
	for (i = 0; i < n; i++) {
		struct vf *v = &vfs[i];

		ret = pci_vf_bdf(pf_bdf, i, v->bdf, sizeof(v->bdf));
		if (!ret)
			ret = pci_bind(v->bdf, "tern_vfio_pci");
		if (!ret)
			ret = vfio_dev_open(&cont, v->bdf, NULL, &v->dev);
		if (ret)
			return ret;
		nr_vfs = i + 1;
		set_master(&v->dev);
		v->regs = vfio_bar_map(&v->dev, TERN_VF_BAR_REGS);
		if (!v->regs)
			return -ENOMEM;
		devmem = mmio_read64lh(v->regs, TERN_VF_REG_DEVMEM_SIZE_LO);
		if (!devmem)
			return -ENODEV;
		ret = tern_vfq_init(&v->vq, &cont, v->regs, 0, 128);
		if (ret)
			return ret;
		v->vq_ready = true;
		ret = fill_devmem(i);
		if (ret)
			return ret;
	}
	return 0;
}

static void teardown_vfs(void)
{
	int i;

	for (i = 0; i < nr_vfs; i++)
		vfio_dev_close(&vfs[i].dev);
	nr_vfs = 0;
	if (cont.dma_va)
		vfio_container_close(&cont);
}

static int go(int i, uint32_t state, int *fd)
{
	int ret = mig_set_state(&vfs[i].dev, state, fd);

	if (ret)
		FAIL("VF %d: -> state %u: %s", i, state, strerror(-ret));
	return ret;
}

/* ------------------------------------------------------------------
 * Streams: read a data fd, write one, read and write tmpfs, with the
 * same 1 MiB user buffers.  buf is pre-faulted by the caller.
 */

/* Read fd to its end into buf (cap bytes); bytes read, or -errno. */
static ssize_t read_all(int fd, uint8_t *buf, size_t cap, bool keep)
{
	size_t len = 0;

	for (;;) {
		ssize_t n = read(fd, buf + (keep ? len : 0),
				 keep && cap - len < IO_SIZE ? cap - len :
				 IO_SIZE);

		if (n < 0)
			return -errno;
		if (!n)
			return len;
		len += n;
		if (keep && len == cap) {
			msg("a stream of more than %zu bytes\n", cap);
			return -EFBIG;
		}
	}
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		size_t n = len - done < IO_SIZE ? len - done : IO_SIZE;
		ssize_t w = write(fd, buf + done, n);

		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		done += w;
	}
	return 0;
}

struct save_time {
	double arc;	/* STOP -> STOP_COPY */
	double read;	/* the reads to the end */
	double stop;	/* STOP_COPY -> STOP */
	size_t bytes;
};

/* VF i: RUNNING -> STOP -> STOP_COPY, read to the end, -> STOP -> RUNNING. */
static int save(int i, uint8_t *buf, size_t cap, bool keep,
		struct save_time *t)
{
	double t0, t1, t2;
	ssize_t n;
	int fd;

	if (go(i, VFIO_DEVICE_STATE_STOP, NULL))
		return -1;
	t0 = now_s();
	if (go(i, VFIO_DEVICE_STATE_STOP_COPY, &fd))
		return -1;
	t1 = now_s();
	n = read_all(fd, buf, cap, keep);
	t2 = now_s();
	close(fd);
	if (n <= 0) {
		FAIL("VF %d: STOP_COPY read: %s", i, strerror(n ? -n : EIO));
		return -1;
	}
	if (go(i, VFIO_DEVICE_STATE_STOP, NULL))
		return -1;
	t->arc = t1 - t0;
	t->read = t2 - t1;
	t->stop = now_s() - t2;
	t->bytes = n;
	return go(i, VFIO_DEVICE_STATE_RUNNING, NULL);
}

struct load_time {
	double write;	/* STOP -> RESUMING and the writes */
	double load;	/* RESUMING -> STOP */
};

static int load(int i, const uint8_t *buf, size_t len, struct load_time *t)
{
	double t0, t1;
	int fd, ret;

	if (go(i, VFIO_DEVICE_STATE_STOP, NULL))
		return -1;
	t0 = now_s();
	if (go(i, VFIO_DEVICE_STATE_RESUMING, &fd))
		return -1;
	ret = write_all(fd, buf, len);
	t1 = now_s();
	close(fd);
	if (ret) {
		FAIL("VF %d: RESUMING write: %s", i, strerror(-ret));
		return -1;
	}
	if (go(i, VFIO_DEVICE_STATE_STOP, NULL))
		return -1;
	t->write = t1 - t0;
	t->load = now_s() - t1;
	return go(i, VFIO_DEVICE_STATE_RUNNING, NULL);
}

/* tmpfs write of buf to a new file, then its read; seconds each. */
static int tmpfs_rw(uint8_t *buf, size_t len, double *wr, double *rd)
{
	double t0, t1;
	ssize_t n;
	int fd;

	unlink(TMPFILE);
	fd = open(TMPFILE, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -errno;
	t0 = now_s();
	n = write_all(fd, buf, len);
	t1 = now_s();
	if (!n && lseek(fd, 0, SEEK_SET))
		n = -errno;
	if (!n) {
		*wr = t1 - t0;
		t0 = now_s();
		n = read_all(fd, buf, len + 1, true);
		*rd = now_s() - t0;
		n = n == (ssize_t)len ? 0 : n < 0 ? n : -EIO;
	}
	close(fd);
	unlink(TMPFILE);
	return n;
}

static uint8_t *big_buffer(size_t len)
{
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0x5a, len);	/* faulted in, not zero pages */
	return p;
}

static double mbs(size_t bytes, double s)
{
	return s > 0 ? bytes / s / 1e6 : 0;
}

/* ------------------------------------------------------------------
 * Where the time goes: the tern_pf_cmd tracepoint gives each admin
 * command's latency, the time the driver waited for the device.
 */

#define TRACING "/sys/kernel/tracing"

#define XFER_WAIT_EVENT	TRACING "/events/tern_vfio_pci/tern_vfio_xfer_wait/enable"

static void trace_start(void)
{
	file_write(TRACING "/events/tern_pf/enable", "1");
	file_write(XFER_WAIT_EVENT, "1");
	close(open(TRACING "/trace", O_WRONLY | O_TRUNC));
}

static void trace_stop(void)
{
	file_write(TRACING "/events/tern_pf/enable", "0");
	file_write(XFER_WAIT_EVENT, "0");
}

/*
 * How long read() or write() waited for the data fd's background SAVEs
 * or LOADs (op) traced since trace_start, in seconds; how many it
 * collected in *n, and how many of them it did not wait for at all
 * (the device was done first) in *idle.
 */
static double trace_waited(const char *op, int *n, int *idle)
{
	char line[512], pat[32];
	FILE *f = fopen(TRACING "/trace", "r");
	double s = 0;

	*n = 0;
	*idle = 0;
	if (!f)
		return 0;
	snprintf(pat, sizeof(pat), " %s waited_us=", op);
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, pat);
		double us;

		if (!strstr(line, "tern_vfio_xfer_wait:") || !p)
			continue;
		us = strtod(p + strlen(pat), NULL);
		s += us / 1e6;
		*idle += us < 1;
		(*n)++;
	}
	fclose(f);
	return s;
}

/* Commands of opcode name op traced since trace_start, and their time. */
static int trace_sum(const char *op, double *s)
{
	char line[512], pat[32];
	FILE *f = fopen(TRACING "/trace", "r");
	int n = 0;

	*s = 0;
	if (!f)
		return 0;
	snprintf(pat, sizeof(pat), " op=%s ", op);
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "latency=");

		if (!strstr(line, pat) || !p)
			continue;
		*s += strtod(p + 8, NULL) / 1e6;
		n++;
	}
	fclose(f);
	return n;
}

/* ------------------------------------------------------------------
 * P1, P2: STOP_COPY read and RESUMING write against tmpfs.
 */

static void bench_p1_p2(bool p1, bool p2)
{
	int reps = quick ? 1 : 3, r, dst = nr_vfs > 1 ? 1 : 0;
	double rd[3], rd_arc[3], wr[3], wr_load[3], tr[3], tw[3];
	size_t cap = devmem + 8 * MiB, len = 0;
	uint8_t *buf = big_buffer(cap);
	char fig[96];
	struct save_time s;
	struct load_time l;

	if (!buf) {
		FAIL("P1/P2: no memory for %zu bytes", cap);
		return;
	}
	for (r = 0; r < reps; r++) {
		double dev, waited;
		int cmds, nw, idle;

		trace_start();
		if (save(0, buf, cap, true, &s))
			goto out;
		len = s.bytes;
		rd[r] = mbs(len, s.read);
		rd_arc[r] = mbs(len, s.arc + s.read);
		cmds = trace_sum("SAVE", &dev);
		waited = trace_waited("SAVE", &nw, &idle);
		msg("save %zu bytes: STOP_COPY arc %.3f s, reads %.3f s (%d SAVE commands, %.3f s in the device; %d ran while user space read, read() waited %.3f s for them, %d not at all), -> STOP %.3f s\n",
		    len, s.arc, s.read, cmds, dev, nw, waited, idle, s.stop);
		trace_start();
		if (load(dst, buf, len, &l))
			goto out;
		wr[r] = mbs(len, l.write);
		wr_load[r] = mbs(len, l.write + l.load);
		cmds = trace_sum("LOAD", &dev);
		waited = trace_waited("LOAD", &nw, &idle);
		msg("load %zu bytes into VF %d: RESUMING and writes %.3f s (%d LOAD commands, %.3f s in the device; %d ran while user space wrote, write() and the arc waited %.3f s for them, %d not at all), RESUMING -> STOP %.3f s\n",
		    len, dst, l.write, cmds, dev, nw, waited, idle, l.load);
		if (tmpfs_rw(buf, len, &tw[r], &tr[r])) {
			FAIL("tmpfs %s", TMPFILE);
			goto out;
		}
		msg("tmpfs: write %.3f s, read %.3f s\n", tw[r], tr[r]);
		tw[r] = mbs(len, tw[r]);
		tr[r] = mbs(len, tr[r]);
	}
	double mtr = median(tr, reps), mtw = median(tw, reps), v;

	if (p1) {
		v = median(rd, reps);
		snprintf(fig, sizeof(fig), "STOP_COPY read / tmpfs read (%lu MiB)",
			 (unsigned long)(devmem / MiB));
		row("P1", fig, "MB/s", v, mtr, v / mtr, ">=", 0.8, true);
		v = median(rd_arc, reps);
		snprintf(fig, sizeof(fig), "STOP_COPY arc+read / tmpfs read (%lu MiB)",
			 (unsigned long)(devmem / MiB));
		row("P1", fig, "MB/s", v, mtr, v / mtr, ">=", 0.8, true);
	}
	if (p2) {
		v = median(wr, reps);
		snprintf(fig, sizeof(fig), "RESUMING write / tmpfs write (%lu MiB)",
			 (unsigned long)(devmem / MiB));
		row("P2", fig, "MB/s", v, mtw, v / mtw, ">=", 0.8, true);
		v = median(wr_load, reps);
		snprintf(fig, sizeof(fig), "RESUMING write+load / tmpfs write (%lu MiB)",
			 (unsigned long)(devmem / MiB));
		row("P2", fig, "MB/s", v, mtw, v / mtw, ">=", 0.8, true);
	}
out:
	trace_stop();
	munmap(buf, cap);
}

/* ------------------------------------------------------------------
 * P3: stop-copy after pre-copy, 1 MiB of device memory dirtied.
 */

static void bench_p3(void)
{
	size_t cap = devmem + 8 * MiB, full, initial, stop;
	uint8_t *buf = big_buffer(cap);
	struct tern_desc d = {
		.opcode = TERN_DESC_TO_DEV, .len = htole32(MiB),
		.src = htole64(fill_iova),
	};
	struct save_time s;
	ssize_t n;
	int fd;

	if (!buf) {
		FAIL("P3: no memory");
		return;
	}
	if (save(0, buf, cap, false, &s))
		goto out;
	full = s.bytes;
	if (go(0, VFIO_DEVICE_STATE_PRE_COPY, &fd))
		goto out;
	n = read_all(fd, buf, cap, false);
	if (n != -ENOMSG) {
		FAIL("P3: pre-copy read ended with %zd, not ENOMSG", n);
		close(fd);
		goto out;
	}
	/* Bytes of the initial image: the precopy info says none are left. */
	initial = full;
	/*
	 * 1 MiB of device memory written by the device's own DMA, in the
	 * middle of it: 256 pages dirtied after the initial image.
	 */
	d.dst = htole64(devmem / 2);
	fill_src[0]++;
	tern_vfq_add(&vfs[0].vq, &d, 1);
	if (tern_vfq_wait_idle(&vfs[0].vq, TIMEOUT_MS)) {
		FAIL("P3: TO_DEV did not complete");
		close(fd);
		goto out;
	}
	if (go(0, VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL) ||
	    go(0, VFIO_DEVICE_STATE_STOP_COPY, NULL)) {
		close(fd);
		goto out;
	}
	n = read_all(fd, buf, cap, false);
	close(fd);
	if (n <= 0) {
		FAIL("P3: stop-copy read: %zd", n);
		goto out;
	}
	stop = n;
	go(0, VFIO_DEVICE_STATE_STOP, NULL);
	go(0, VFIO_DEVICE_STATE_RUNNING, NULL);
	msg("P3: full image %zu bytes (STOP_COPY alone), stop-copy after pre-copy %zu bytes (initial %zu)\n",
	    full, stop, initial);
	row("P3", "stop-copy after pre-copy with 1 MiB dirtied (ratio: to STOP_COPY alone)",
	    "MiB", (double)stop / MiB, (double)full / MiB,
	    (double)stop / full, "<=", 1.1, false);
out:
	munmap(buf, cap);
}

/* ------------------------------------------------------------------
 * P4: kernel memory while a migration file streams.  A thread samples
 * /proc/meminfo; kernel memory is what is neither free nor user pages
 * nor page cache.  kmemleak's own objects (debug kernel) are taken out
 * with their slab cache from /proc/slabinfo.
 */

struct sampler {
	pthread_t thread;
	volatile bool stop;
	long base_kb, base_slab_kb;
	long peak_kb, peak_slab_kb;
	int samples;
};

static long meminfo(const char *key, const char *text)
{
	const char *p = strstr(text, key);

	return p ? strtol(p + strlen(key), NULL, 10) : 0;
}

static long kmemleak_kb(void)
{
	char line[512];
	long kb = 0;
	FILE *f = fopen("/proc/slabinfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long act, num, size, per, pages, aslabs, nslabs;

		if (strncmp(line, "kmemleak_object ", 16))
			continue;
		if (sscanf(line + 16, "%lu %lu %lu %lu %lu : tunables %*u %*u %*u : slabdata %lu %lu",
			   &act, &num, &size, &per, &pages, &aslabs,
			   &nslabs) == 7)
			kb = nslabs * pages * (PAGE / 1024);
	}
	fclose(f);
	return kb;
}

/* Kernel memory in kB, and the slab part, kmemleak's objects out. */
static void kernel_kb(long *kb, long *slab)
{
	char text[4096];
	long leak = kmemleak_kb();
	int fd = open("/proc/meminfo", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, text, sizeof(text) - 1);

	if (fd >= 0)
		close(fd);
	text[n > 0 ? n : 0] = 0;
	*kb = meminfo("MemTotal:", text) - meminfo("MemFree:", text) -
	      meminfo("AnonPages:", text) - meminfo("\nCached:", text) -
	      meminfo("Buffers:", text) - leak;
	*slab = meminfo("Slab:", text) - leak;
}

static void *sample(void *arg)
{
	struct sampler *s = arg;
	long kb, slab;

	while (!s->stop) {
		kernel_kb(&kb, &slab);
		if (kb - s->base_kb > s->peak_kb)
			s->peak_kb = kb - s->base_kb;
		if (slab - s->base_slab_kb > s->peak_slab_kb)
			s->peak_slab_kb = slab - s->base_slab_kb;
		s->samples++;
		usleep(2000);
	}
	return NULL;
}

static void sampler_start(struct sampler *s)
{
	memset(s, 0, sizeof(*s));
	kernel_kb(&s->base_kb, &s->base_slab_kb);
	pthread_create(&s->thread, NULL, sample, s);
}

static void sampler_stop(struct sampler *s)
{
	s->stop = true;
	pthread_join(s->thread, NULL);
}

/* What one P4 row streams: a save of VF 0, or a load of its stream. */
struct p4_run {
	uint8_t *buf;
	size_t cap;
	int dst;
	struct save_time st;	/* of the last save: the stream to load */
};

static int p4_save(struct p4_run *r)
{
	return save(0, r->buf, r->cap, true, &r->st);
}

static int p4_load(struct p4_run *r)
{
	struct load_time lt;

	return load(r->dst, r->buf, r->st.bytes, &lt);
}

/* One P4 row: the peak kernel memory while @op streams through a file. */
static int p4_row(const char *kind, int (*op)(struct p4_run *),
		  struct p4_run *r)
{
	struct sampler s;
	char fig[96];
	int ret;

	sampler_start(&s);
	ret = op(r);
	sampler_stop(&s);
	if (ret)
		return ret;
	msg("P4 %s: %d samples, peak %ld kB kernel memory, %ld kB of it slab (kmemleak objects out)\n",
	    kind, s.samples, s.peak_kb, s.peak_slab_kb);
	snprintf(fig, sizeof(fig), "peak kernel memory of a %s file (%lu MiB)",
		 kind, (unsigned long)(devmem / MiB));
	row("P4", fig, "MiB", s.peak_kb / 1024.0, (double)r->st.bytes / MiB,
	    -1, "<=", 4, false);
	return 0;
}

static void bench_p4(void)
{
	struct p4_run r = {
		.cap = devmem + 8 * MiB,
		.dst = nr_vfs > 1 ? 1 : 0,
	};

	r.buf = big_buffer(r.cap);
	if (!r.buf) {
		FAIL("P4: no memory");
		return;
	}
	/* A first save: the stream to load, and warm caches. */
	if (!p4_save(&r) && !p4_row("save", p4_save, &r))
		p4_row("resume", p4_load, &r);
	munmap(r.buf, r.cap);
}

/* ------------------------------------------------------------------
 * P6: 8 VFs saved at once against one alone.
 */

struct saver {
	pthread_t thread;
	pthread_barrier_t *start;
	int vf;
	double done;
	size_t bytes;
	int ret;
	uint8_t *buf;
};

static void *saver_run(void *arg)
{
	struct saver *s = arg;
	struct save_time t;

	pthread_barrier_wait(s->start);
	s->ret = save(s->vf, s->buf, IO_SIZE, false, &t);
	s->bytes = t.bytes;
	s->done = now_s();
	return NULL;
}

static void bench_p6(void)
{
	int reps = quick ? 1 : 3, r, i, n = nr_vfs;
	double one[3], all[3];
	struct saver sv[MAX_VFS];
	pthread_barrier_t start;
	struct save_time t;
	uint8_t *bufs;

	if (n < 2) {
		FAIL("P6 needs several VFs (%d)", n);
		return;
	}
	bufs = big_buffer(n * IO_SIZE);
	if (!bufs) {
		FAIL("P6: no memory");
		return;
	}
	for (r = 0; r < reps; r++) {
		double t0, end = 0;
		size_t total = 0;

		t0 = now_s();
		if (save(0, bufs, IO_SIZE, false, &t))
			goto out;
		one[r] = mbs(t.bytes, now_s() - t0);

		pthread_barrier_init(&start, NULL, n + 1);
		for (i = 0; i < n; i++) {
			sv[i] = (struct saver){ .start = &start, .vf = i,
						.buf = bufs + i * IO_SIZE };
			pthread_create(&sv[i].thread, NULL, saver_run, &sv[i]);
		}
		pthread_barrier_wait(&start);
		t0 = now_s();
		for (i = 0; i < n; i++) {
			pthread_join(sv[i].thread, NULL);
			if (sv[i].ret)
				goto out;
			total += sv[i].bytes;
			end = sv[i].done > end ? sv[i].done : end;
		}
		pthread_barrier_destroy(&start);
		all[r] = mbs(total, end - t0);
		msg("P6: one VF %.1f MB/s, %d VFs at once %.1f MB/s (%zu bytes in %.3f s)\n",
		    one[r], n, all[r], total, end - t0);
	}
	double m1 = median(one, reps), ma = median(all, reps);
	char fig[64];

	snprintf(fig, sizeof(fig), "%d VFs saved at once / one alone", n);
	row("P6", fig, "MB/s", ma, m1, ma / m1, ">=", 0.9, true);
out:
	munmap(bufs, n * IO_SIZE);
}

/* ------------------------------------------------------------------
 * LAT: RUNNING -> STOP -> RUNNING.
 */

static void bench_lat(void)
{
	int n = quick ? 20 : 100, i;
	double v[100], t0;

	for (i = 0; i < n; i++) {
		t0 = now_s();
		if (go(0, VFIO_DEVICE_STATE_STOP, NULL) ||
		    go(0, VFIO_DEVICE_STATE_RUNNING, NULL))
			return;
		v[i] = (now_s() - t0) * 1e3;
	}
	double m = median(v, n);

	msg("LAT: %d round trips, fastest %.3f ms, slowest %.3f ms\n", n, v[0],
	    v[n - 1]);
	row("LAT", "RUNNING -> STOP -> RUNNING (median)", "ms", m, -1, -1,
	    NULL, 0, false);
}

/* ------------------------------------------------------------------
 * P5: a dirty report of 100 scattered pages over 1 GiB, 1 TiB and
 * 256 TiB, on the device: the PF on vfio-pci, its admin queue driven
 * from here.  The bytes the device wrote are counted in the report
 * buffer (poisoned before each report), plus its 32-byte completion.
 */

#define P5_REPS		11
#define P5_PAGES	100
#define P5_ENTRIES	512

static int p5_setup(struct vfio_dev *pf, struct vfio_dev *vf,
		    struct tern_aq *aq, struct tern_vfq *vq)
{
	char vf_bdf[32];
	void *regs;
	int ret;

	teardown_vfs();
	ret = pci_pf_to_vfio(pf_bdf);
	if (ret)
		return ret;
	ret = vfio_container_open(&cont, DMA_SIZE);
	if (!ret)
		ret = vfio_dev_open(&cont, pf_bdf, NULL, pf);
	if (!ret)
		ret = vfio_set_vf_token(pf, VF_TOKEN);
	if (ret)
		return ret;
	set_master(pf);
	ret = pci_sysfs_write(pf_bdf, "sriov_numvfs", "1");
	if (!ret)
		ret = pci_vf_bdf(pf_bdf, 0, vf_bdf, sizeof(vf_bdf));
	if (!ret)
		ret = pci_wait_driver(vf_bdf, "vfio-pci", 5000);
	if (!ret)
		ret = vfio_dev_open(&cont, vf_bdf, VF_TOKEN, vf);
	if (ret)
		return ret;
	set_master(vf);
	regs = vfio_bar_map(pf, TERN_PF_BAR_REGS);
	if (!regs)
		return -ENOMEM;
	ret = tern_aq_init(aq, &cont, regs, 128);
	if (ret)
		return ret;
	regs = vfio_bar_map(vf, TERN_VF_BAR_REGS);
	if (!regs)
		return -ENOMEM;
	return tern_vfq_init(vq, &cont, regs, 0, 256);
}

/*
 * Submit cmd and spin for its completion: tern_aq_exec() sleeps between
 * polls, and without high-resolution timers (the test kernels have none)
 * a sleep lasts a 10 ms tick, which would be all the figure measured.
 */
static int p5_exec(struct tern_aq *aq, struct tern_aq_cmd *cmd,
		   struct tern_aq_cpl *cpl, double *ms)
{
	volatile struct tern_aq_cpl *e = &aq->cpl[aq->cpl_head];
	double t0 = now_s();

	tern_aq_post(aq, cmd);
	tern_aq_ring(aq);
	while ((le16toh(e->flags) & TERN_CPL_F_PHASE) != aq->phase)
		if (now_s() - t0 > TIMEOUT_MS / 1e3)
			return -ETIMEDOUT;
	*ms = (now_s() - t0) * 1e3;
	return tern_aq_reap(aq, cpl, TIMEOUT_MS) ?: le16toh(cpl->status);
}

static void bench_p5(void)
{
	static const struct { const char *name; uint64_t len; } sizes[] = {
		{ "1 GiB", 1ull << 30 },
		{ "1 TiB", 1ull << 40 },
		{ "256 TiB", 1ull << 48 },
	};
	double base_t = -1, base_b = -1;
	struct vfio_dev pf = {}, vf = {};
	struct tern_aq aq;
	struct tern_vfq vq;
	struct tern_range *rep;
	uint64_t pages_iova, rep_iova;
	uint8_t *pages;
	unsigned int s, k, i;
	int ret;

	ret = p5_setup(&pf, &vf, &aq, &vq);
	if (ret) {
		FAIL("P5: the PF on vfio-pci: %s", strerror(-ret));
		return;
	}
	/* 100 pages, every other one of 200: 100 runs of one page. */
	pages = vfio_dma_alloc(&cont, 2 * P5_PAGES * PAGE, 2 * MiB, &pages_iova);
	rep = vfio_dma_alloc(&cont, P5_ENTRIES * TERN_RANGE_SIZE, 64,
			     &rep_iova);
	if (!pages || !rep) {
		FAIL("P5: no DMA memory");
		return;
	}
	(void)pages;
	for (s = 0; s < 3; s++) {
		uint64_t len = sizes[s].len;
		uint64_t start = pages_iova & ~(len - 1);
		struct tern_range r = { start, len };
		double t[P5_REPS], bytes[P5_REPS];

		ret = tern_dirty_start(&aq, &cont, 0, &r, 1, 12);
		if (ret) {
			FAIL("P5: DIRTY_START over %s: %d", sizes[s].name, ret);
			return;
		}
		for (k = 0; k < P5_REPS; k++) {
			struct tern_aq_cmd cmd = {
				.opcode = TERN_OP_DIRTY_REPORT,
				.dirty_report = {
					.iova = htole64(start),
					.len = htole64(len),
					.buf_addr = htole64(rep_iova),
					.buf_entries = htole32(P5_ENTRIES),
				},
			};
			struct tern_aq_cpl cpl;
			size_t last = 0;

			for (i = 0; i < P5_PAGES; i++) {
				struct tern_desc d = {
					.opcode = TERN_DESC_FILL,
					.len = htole32(8),
					.dst = htole64(pages_iova + 2 * i * PAGE),
					.pattern = htole64(k + 1),
				};
				tern_vfq_add(&vq, &d, i == P5_PAGES - 1);
			}
			if (tern_vfq_wait_idle(&vq, TIMEOUT_MS)) {
				FAIL("P5: the VF's FILLs did not complete");
				return;
			}
			memset(rep, 0xa5, P5_ENTRIES * TERN_RANGE_SIZE);
			ret = p5_exec(&aq, &cmd, &cpl, &t[k]);
			if (ret || le64toh(cpl.result0) != P5_PAGES) {
				FAIL("P5: report over %s: status %d, %llu runs",
				     sizes[s].name, ret,
				     (unsigned long long)le64toh(cpl.result0));
				return;
			}
			for (i = 0; i < P5_ENTRIES * TERN_RANGE_SIZE; i++)
				if (((uint8_t *)rep)[i] != 0xa5)
					last = i + 1;
			/* Whole entries written, and the completion. */
			bytes[k] = (last + TERN_RANGE_SIZE - 1) /
				   TERN_RANGE_SIZE * TERN_RANGE_SIZE +
				   TERN_AQ_CPL_SIZE;
		}
		tern_cmd_simple(&aq, TERN_OP_DIRTY_STOP, 0);
		double mt = median(t, P5_REPS), mb = median(bytes, P5_REPS);
		char fig[80];

		msg("P5 %s: report of %d pages: %.0f bytes written, %.3f ms (fastest %.3f, slowest %.3f)\n",
		    sizes[s].name, P5_PAGES, mb, mt, t[0], t[P5_REPS - 1]);
		if (base_t < 0) {
			base_t = mt;
			base_b = mb;
		}
		snprintf(fig, sizeof(fig), "dirty report bytes written by the device (%s)",
			 sizes[s].name);
		row("P5", fig, "B", mb, base_b, mb / base_b, "<=", 65536, false);
		snprintf(fig, sizeof(fig), "dirty report time (%s; ratio to 1 GiB)",
			 sizes[s].name);
		row("P5", fig, "ms", mt, base_t, mt / base_t, "<=", 2, true);
	}
	vfio_dev_close(&vf);
	vfio_dev_close(&pf);
	vfio_container_close(&cont);
}

/* ------------------------------------------------------------------ */

static bool want(int argc, char **argv, const char *id)
{
	int i, any = 0;

	for (i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		any = 1;
		if (!strcmp(argv[i], id))
			return true;
	}
	return !any;
}

int main(int argc, char **argv)
{
	int i, ret, n;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--quick"))
			quick = true;
	setvbuf(stdout, NULL, _IOLBF, 0);
	n = want(argc, argv, "P6") ? MAX_VFS : 2;
	ret = setup_vfs(n);
	if (ret) {
		msg("setup of %d VFs failed: %s\n", n, strerror(-ret));
		return 1;
	}
	msg("PF %s, %d VFs, device memory %lu MiB, %s\n", pf_bdf, nr_vfs,
	    (unsigned long)(devmem / MiB), quick ? "quick" : "full");
	printf("id,figure,unit,value,baseline,ratio,goal,met\n");
	if (want(argc, argv, "P1") || want(argc, argv, "P2"))
		bench_p1_p2(want(argc, argv, "P1"), want(argc, argv, "P2"));
	if (want(argc, argv, "P3"))
		bench_p3();
	if (want(argc, argv, "P4"))
		bench_p4();
	if (want(argc, argv, "P6"))
		bench_p6();
	if (want(argc, argv, "LAT"))
		bench_lat();
	if (want(argc, argv, "P5"))
		bench_p5();
	teardown_vfs();
	msg("%d benchmark(s) could not run\n", failures);
	return failures ? 1 : 0;
}
