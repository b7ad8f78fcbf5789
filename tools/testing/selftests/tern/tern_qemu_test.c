// SPDX-License-Identifier: GPL-2.0
/*
 * End to end: QEMU live-migrates an L2 VM whose tern VF keeps doing DMA.
 *
 * Two QEMU processes run inside the test VM, each with one VF bound to
 * tern_vfio_pci and assigned with -device vfio-pci.  L2 needs no
 * operating system: its firmware only halts and this program, through
 * QEMU's qtest socket, is the guest driver (PCI config, BARs, rings and
 * buffers in L2 RAM, doorbells), and through QMP the management layer.
 *
 * While the migration pre-copies, the VF keeps filling L2 RAM; after it,
 * every byte the VF wrote must be on the destination, which only holds
 * if the VF reported its dirty pages.  With --demo one migration runs
 * and a summary is printed; --ping-pong N migrates back and forth N
 * times, --cancel N cancels N migrations in mid pre-copy.  --viommu
 * gives the L2 VMs an intel-iommu, which remaps interrupts only or DMA
 * too: then this program is also the guest's IOMMU driver and remaps
 * the VF's buffers during pre-copy (qemu/patches/0003, 0004); or a
 * virtio-iommu, behind which the migration must be refused.  --iommufd
 * gives QEMU the VF through its iommufd backend and, where L1's IOMMU
 * tracks dirty pages (qemu/patches/0005), migrates with the IOMMU as
 * the only tracker, with both (QEMU uses the VF's), and with a driver
 * that offers no device tracker.
 *
 * The L2 VMM is any QEMU: --qemu PATH or $TERN_QEMU, by default the one
 * on PATH (tern's, in the test VM).  One without the qtest accelerator,
 * Debian's say, runs L2 under TCG: the -qtest socket works with it too.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "kselftest.h"
#include "lib/tern_util.h"
#include "lib/vfio_util.h"

#define DIR		"/tmp/tern-e2e"
#define QEMU		"qemu-system-x86_64"
#define FIRMWARE	"/opt/tern/qemu/halt.bin"
/* What QEMU up to 11 says for a VFIO device behind any vIOMMU. */
#define STOCK_BLOCKER	"Migration is currently not supported with vIOMMU enabled"
/* The VF's own dirty tracking off: nothing tracks its DMA. */
#define NO_TRACKING	",x-device-dirty-page-tracking=off"
#define NO_TRACKING_BLOCKER "doesn't support device and IOMMU dirty tracking"
/* tern's QEMU behind a vIOMMU that does not say how far it translates. */
#define NO_WIDTH_BLOCKER "with a vIOMMU that has no address width limit"

/* The L2 QEMU (--qemu, $TERN_QEMU) and its accelerator (qemu_choose()). */
static const char *qemu_bin = QEMU;
static const char *qemu_accel = "qtest";

/*
 * The vIOMMU of the L2 VMs (--viommu): none, an Intel IOMMU that remaps
 * interrupts only (dma-translation=off), one that also remaps DMA, or a
 * virtio-iommu, which translates without an address width vfio could
 * track the device over: QEMU must block its migration.
 */
static enum { VIOMMU_NONE, VIOMMU_INTREMAP, VIOMMU_DMAR, VIOMMU_VIRTIO } viommu;
static const char *const viommu_names[] = {
	"none", "intremap", "dmar", "virtio"
};

/* Extra vfio-pci properties of the L2 VMs' VF ("," first). */
static const char *vf_props = "";

/*
 * The L2 VMs' VF through QEMU's iommufd backend (-object iommufd) rather
 * than a type1 container: QEMU then allocates its HWPT with dirty
 * tracking when L1's IOMMU offers it (scripts/vm-run --iommu ssads).
 */
static bool use_iommufd;

/* L2's guest-physical layout: RAM below 128 MiB, the VF's BARs above. */
#define RING_GPA	0x100000ull
#define RING_SIZE	256u
#define CPL_GPA		0x200000ull
#define BUF_GPA		0x400000ull
#define NR_BUFS		128u
#define BUF_SIZE	8192u
#define BAR0_GPA	0xe0000000ull
#define BAR2_GPA	0xd0000000ull
#define BAR4_GPA	0xe0001000ull
#define VF_SLOT		5
#define DEV_SLOTS	64u
#define ROUND		8u	/* descriptors per doorbell */

/*
 * With --viommu dmar the test is also the guest's IOMMU driver: root and
 * context tables and 4-level second-level page tables in L2 RAM, the
 * VF's ring, completions and buffers mapped at IOVAs that are not their
 * guest addresses, some above 4 GiB, some near the top of the 48-bit
 * address width.  Remapped buffers move to fresh guest pages.
 */
#define VTD_GPA		0xfed90000ull	/* q35's intel-iommu registers */
#define VTD_GCMD	0x18
#define VTD_GSTS	0x1c
#define VTD_RTADDR	0x20
#define VTD_CCMD	0x28
#define VTD_IOTLB	0xf8		/* ECAP.IRO 0xf0, + 8 */
#define VTD_TE		(1u << 31)
#define VTD_SRTP	(1u << 30)
#define VTD_AW		48
#define IOVA_TOP	(1ull << VTD_AW)
#define ROOT_GPA	0x1000000ull	/* root table; bus 0's context table */
#define CTX_GPA		0x1001000ull
#define PT_GPA		0x1002000ull	/* page-table pages, up to PT_END */
#define PT_END		0x1800000ull
#define SPARE_GPA	0x800000ull	/* where remapped buffers move */
#define MAX_REMAPS	32u
#define MIN_REMAPS	16u	/* before pre-copy may converge */

/* ------------------------------------------------------------------
 * Sockets: line I/O with a deadline
 */

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (fd < 0 || bind(fd, (void *)&sa, sizeof(sa)) || listen(fd, 1))
		ksft_exit_fail_msg("listen %s: %s\n", path, strerror(errno));
	return fd;
}

static int accept_timeout(int lfd, int seconds)
{
	struct timeval tv = { .tv_sec = seconds };
	int fd;

	setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0) {
		tv.tv_sec = 120;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	close(lfd);
	return fd;
}

struct conn {
	int fd;
	char buf[1 << 20];
	size_t len;
};

/* The next line, without its newline; NULL on EOF or timeout. */
static char *conn_line(struct conn *c)
{
	static char line[sizeof(((struct conn *)0)->buf)];

	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		ssize_t n;

		if (nl) {
			size_t l = nl - c->buf;

			memcpy(line, c->buf, l);
			line[l] = 0;
			if (l && line[l - 1] == '\r')
				line[l - 1] = 0;
			memmove(c->buf, nl + 1, c->len - l - 1);
			c->len -= l + 1;
			return line;
		}
		if (c->len == sizeof(c->buf))
			return NULL;
		n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n <= 0)
			return NULL;
		c->len += n;
	}
}

static void conn_send(struct conn *c, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (write(c->fd, cmd, n) != n)
		ksft_exit_fail_msg("write: %s\n", strerror(errno));
}

/* ------------------------------------------------------------------
 * An L2 VM: QEMU with one VF, its qtest and QMP sockets
 */

static pid_t qemu_pids[2];

/* The last @lines lines of QEMU @name's log. */
static void show_log(const char *name, int lines)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "tail -n %d %s/%s.log | cut -c1-200 | "
		 "sed 's/^/# %s: /'", lines, DIR, name, name);
	if (system(cmd))
		ksft_print_msg("cannot show the %s QEMU's log\n", name);
}

/* Where each QEMU thread sleeps in the kernel, and its log's tail. */
static void dump_qemu(pid_t pid, const char *name)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd),
		 "for t in /proc/%d/task/*; do echo \"# thread $(cat $t/comm):\"; "
		 "sed 's/^/#   /' $t/stack; done", pid);
	if (system(cmd))
		ksft_print_msg("cannot inspect QEMU %d\n", pid);
	show_log(name, 30);
}

/* The end of both QEMU logs, after a failed test. */
static void show_logs(void)
{
	show_log("src", 8);
	show_log("dst", 8);
}

static void __attribute__((noreturn)) die(const char *fmt, ...)
{
	va_list ap;
	int i;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	for (i = 0; i < 2; i++) {
		if (qemu_pids[i] > 0) {
			dump_qemu(qemu_pids[i], i ? "dst" : "src");
			kill(qemu_pids[i], SIGKILL);
		}
	}
	ksft_exit_fail();
}

struct vm {
	const char *name;
	char vf[32];
	pid_t pid;
	struct conn qt;
	struct conn qmp;
	char events[512];	/* VFIO_MIGRATION states, comma separated */
};

static void vm_start(struct vm *vm, const char *name, const char *vf,
		     bool incoming)
{
	char qt_path[128], qmp_path[128], dev[256], log[128];
	int qt_l, qmp_l;

	memset(vm, 0, sizeof(*vm));
	vm->name = name;
	snprintf(vm->vf, sizeof(vm->vf), "%s", vf);
	snprintf(qt_path, sizeof(qt_path), DIR "/%s.qtest", name);
	snprintf(qmp_path, sizeof(qmp_path), DIR "/%s.qmp", name);
	snprintf(log, sizeof(log), DIR "/%s.log", name);
	snprintf(dev, sizeof(dev),
		 "vfio-pci,host=%s,id=tvf,addr=%d.0,rombar=0,migration-events=on%s%s",
		 vf, VF_SLOT, vf_props,
		 use_iommufd ? ",iommufd=iommufd0" : "");
	qt_l = listen_unix(qt_path);
	qmp_l = listen_unix(qmp_path);

	vm->pid = fork();
	if (!vm->pid) {
		char qt_arg[160], qmp_arg[160], iommu[160];
		char *argv[32] = {
			(char *)qemu_bin, "-nodefaults", "-no-user-config",
			"-display", "none", "-machine", "q35", "-accel",
			(char *)qemu_accel, "-m",
			"32M", "-bios", FIRMWARE, "-qtest", qt_arg,
			"-qtest-log", "none", "-chardev",
			qmp_arg, "-mon", "chardev=qmp,mode=control"
		};
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int n = 21;

		dup2(fd, 1);
		dup2(fd, 2);
		snprintf(qt_arg, sizeof(qt_arg), "unix:%s", qt_path);
		snprintf(qmp_arg, sizeof(qmp_arg),
			 "socket,path=%s,id=qmp", qmp_path);
		/* The vIOMMU before the device it translates for. */
		if (viommu == VIOMMU_VIRTIO) {
			snprintf(iommu, sizeof(iommu), "virtio-iommu-pci");
			argv[n++] = "-device";
			argv[n++] = iommu;
		} else if (viommu != VIOMMU_NONE) {
			snprintf(iommu, sizeof(iommu),
				 "intel-iommu,intremap=on,caching-mode=on,dma-translation=%s",
				 viommu == VIOMMU_DMAR ? "on" : "off");
			argv[n++] = "-device";
			argv[n++] = iommu;
		}
		if (use_iommufd) {
			argv[n++] = "-object";
			argv[n++] = "iommufd,id=iommufd0";
		}
		argv[n++] = "-device";
		argv[n++] = dev;
		if (incoming) {
			argv[n++] = "-incoming";
			argv[n++] = "defer";
		}
		argv[n] = NULL;
		execvp(qemu_bin, argv);
		_exit(127);
	}
	qemu_pids[incoming] = vm->pid;
	vm->qt.fd = accept_timeout(qt_l, 60);
	vm->qmp.fd = accept_timeout(qmp_l, 60);
	if (vm->qt.fd < 0 || vm->qmp.fd < 0)
		die("%s: QEMU did not connect (see %s)\n", name, log);
}

static void vm_stop(struct vm *vm)
{
	if (vm->pid <= 0)
		return;
	kill(vm->pid, SIGTERM);
	waitpid(vm->pid, NULL, 0);
	if (qemu_pids[0] == vm->pid)
		qemu_pids[0] = 0;
	if (qemu_pids[1] == vm->pid)
		qemu_pids[1] = 0;
	close(vm->qt.fd);
	close(vm->qmp.fd);
	vm->pid = 0;
}

/* qtest: one command, its "OK ..." answer (IRQ notices skipped). */
static char *qt(struct vm *vm, const char *fmt, ...)
{
	char cmd[1 << 16];
	va_list ap;
	char *line;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	conn_send(&vm->qt, "%s\n", cmd);
	while ((line = conn_line(&vm->qt))) {
		if (!strncmp(line, "IRQ", 3))
			continue;
		if (strncmp(line, "OK", 2))
			die("%s: qtest '%.40s': %s\n", vm->name, cmd, line);
		return line + 2;
	}
	die("%s: qtest '%.40s': no answer\n", vm->name, cmd);
}

static uint32_t readl(struct vm *vm, uint64_t a)
{
	return strtoul(qt(vm, "readl 0x%llx", (unsigned long long)a), NULL, 0);
}

static void writel(struct vm *vm, uint64_t a, uint32_t v)
{
	qt(vm, "writel 0x%llx 0x%x", (unsigned long long)a, v);
}

static void mem_write(struct vm *vm, uint64_t a, const void *data, size_t n)
{
	static char hex[2 * 16384 + 1];
	const uint8_t *p = data;
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(hex + 2 * i, "%02x", p[i]);
	qt(vm, "write 0x%llx 0x%zx 0x%s", (unsigned long long)a, n, hex);
}

static void mem_read(struct vm *vm, uint64_t a, void *data, size_t n)
{
	const char *hex = qt(vm, "read 0x%llx 0x%zx", (unsigned long long)a, n);
	uint8_t *p = data;
	size_t i;

	hex += strspn(hex, " ");
	if (strncmp(hex, "0x", 2) || strlen(hex) < 2 + 2 * n)
		die("%s: short qtest read\n", vm->name);
	for (i = 0; i < n; i++) {
		unsigned int b;

		sscanf(hex + 2 + 2 * i, "%2x", &b);
		p[i] = b;
	}
}

static void cfg_write(struct vm *vm, unsigned int reg, uint32_t v)
{
	qt(vm, "outl 0xcf8 0x%x", 0x80000000u | VF_SLOT << 11 | reg);
	qt(vm, "outl 0xcfc 0x%x", v);
}

/* QMP: one command; its "return" line (events on the way are noted). */
static char *qmp(struct vm *vm, const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	char *line;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (*cmd)
		conn_send(&vm->qmp, "%s\n", cmd);
	while ((line = conn_line(&vm->qmp))) {
		char *st = strstr(line, "\"device-state\": \"");

		if (strstr(line, "\"VFIO_MIGRATION\"") && st) {
			st += strlen("\"device-state\": \"");
			*strchr(st, '"') = 0;
			if (*vm->events)
				strcat(vm->events, ",");
			strncat(vm->events, st, sizeof(vm->events) -
				strlen(vm->events) - 1);
			continue;
		}
		if (strstr(line, "\"event\"") || strstr(line, "\"QMP\""))
			continue;
		if (strstr(line, "\"error\""))
			ksft_print_msg("%s: QMP %s -> %s\n", vm->name, cmd, line);
		return line;
	}
	die("%s: QMP '%.60s': no answer\n", vm->name, cmd);
}

static void qmp_init(struct vm *vm)
{
	char *line = conn_line(&vm->qmp);

	if (!line || !strstr(line, "\"QMP\""))
		die("%s: no QMP greeting\n", vm->name);
	qmp(vm, "{\"execute\": \"qmp_capabilities\"}");
}

/* A number after "key": in a QMP answer, or 0. */
static unsigned long long json_num(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(line, pat);
	return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

static void json_str(const char *line, const char *key, char *out, size_t n)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": \"", key);
	p = strstr(line, pat);
	*out = 0;
	if (p)
		snprintf(out, n, "%.*s", (int)strcspn(p + strlen(pat), "\""),
			 p + strlen(pat));
}

/* ------------------------------------------------------------------
 * The guest driver: one queue of FILL and TO_DEV descriptors
 */

struct guest {
	uint32_t tail;
	uint64_t seq;
	uint64_t ring_iova, cpl_iova;	/* the VF's addresses (DMA) */
	uint64_t buf_iova[NR_BUFS];
	uint64_t buf_gpa[NR_BUFS];	/* where the buffers are in L2 RAM */
	unsigned int buf_gen[NR_BUFS];	/* times a buffer was remapped */
	struct {
		uint64_t gpa, pat;
	} gone[MAX_REMAPS];		/* buffers unmapped, what they hold */
	unsigned int remaps;
	uint64_t pt_root, pt_next;	/* the VF's page tables (dmar) */
	uint64_t buf_pat[NR_BUFS];	/* what each buffer must hold */
	uint64_t dev_pat[DEV_SLOTS];	/* what each devmem slot must hold */
	uint64_t submitted;
	uint32_t lost_doorbells;
	uint64_t bytes_wrong;		/* found by guest_verify(), ever */
};

static uint64_t pattern(uint64_t seq)
{
	return (seq << 32) | (uint32_t)~seq;
}

static uint64_t readq(struct vm *vm, uint64_t a)
{
	return strtoull(qt(vm, "readq 0x%llx", (unsigned long long)a), NULL, 0);
}

static void writeq(struct vm *vm, uint64_t a, uint64_t v)
{
	qt(vm, "writeq 0x%llx 0x%llx", (unsigned long long)a,
	   (unsigned long long)v);
}

/*
 * Register-based invalidation of every IOTLB entry; in caching mode QEMU
 * then syncs its shadow of the tables: the VFIO container's mappings.
 */
static void iotlb_flush(struct vm *vm)
{
	writeq(vm, VTD_GPA + VTD_IOTLB, 1ull << 63 | 1ull << 60);
	if (readq(vm, VTD_GPA + VTD_IOTLB) >> 63)
		die("%s: IOTLB invalidation pending\n", vm->name);
}

static uint64_t pt_alloc(struct vm *vm, struct guest *g)
{
	uint64_t p = g->pt_next;

	if (p >= PT_END)
		die("%s: out of page-table pages\n", vm->name);
	g->pt_next += 4096;
	qt(vm, "memset 0x%llx 0x1000 0", (unsigned long long)p);
	return p;
}

/* Where the last-level entry of @iova is, tables allocated on the way. */
static uint64_t pte_addr(struct vm *vm, struct guest *g, uint64_t iova)
{
	uint64_t table = g->pt_root, e, v;
	int level;

	for (level = 4; level > 1; level--) {
		e = table + ((iova >> (12 + 9 * (level - 1))) & 511) * 8;
		v = readq(vm, e);
		if (!(v & 3)) {
			v = pt_alloc(vm, g) | 3;	/* read, write */
			writeq(vm, e, v);
		}
		table = v & 0xffffffffff000ull;
	}
	return table + ((iova >> 12) & 511) * 8;
}

/* Map (or with @gpa ~0, unmap) [iova, iova + len) and invalidate. */
static void iommu_map(struct vm *vm, struct guest *g, uint64_t iova,
		      uint64_t gpa, uint64_t len)
{
	uint64_t off;

	for (off = 0; off < len; off += 4096)
		writeq(vm, pte_addr(vm, g, iova + off),
		       gpa == ~0ull ? 0 : (gpa + off) | 3);
	iotlb_flush(vm);
}

/* The IOVA of buffer @b in its @gen-th mapping: four kinds of place. */
static uint64_t buf_iova(unsigned int b, unsigned int gen)
{
	uint64_t n = (uint64_t)gen * NR_BUFS + b;

	switch (b % 4) {
	case 0:
		return 0x200000000ull + n * 0x10000;	/* above 4 GiB, apart */
	case 1:
		return 0x40000000ull + n * 0x4000;	/* below 4 GiB */
	case 2:
		return IOVA_TOP - 0x10000000ull + n * BUF_SIZE; /* the top */
	default:
		return 0x8000000000ull + n * 0x3000;	/* another PML4 slot */
	}
}

/*
 * The guest's IOMMU driver: the VF's context entry (domain 1, 4-level
 * tables), its ring, completions and buffers mapped, DMA remapping on.
 */
static void iommu_setup(struct vm *vm, struct guest *g)
{
	uint64_t ctx = CTX_GPA + (VF_SLOT << 3) * 16;
	unsigned int b;

	g->pt_next = PT_GPA;
	g->pt_root = pt_alloc(vm, g);
	qt(vm, "memset 0x%llx 0x2000 0", ROOT_GPA);
	writeq(vm, ROOT_GPA, CTX_GPA | 1);		/* bus 0, present */
	writeq(vm, ctx + 8, 2 | 1 << 8);		/* 48-bit, domain 1 */
	writeq(vm, ctx, g->pt_root | 1);		/* present */
	writeq(vm, VTD_GPA + VTD_RTADDR, ROOT_GPA);
	writel(vm, VTD_GPA + VTD_GCMD, VTD_SRTP);
	if (!(readl(vm, VTD_GPA + VTD_GSTS) & VTD_SRTP))
		die("%s: the IOMMU did not take the root table\n", vm->name);
	writeq(vm, VTD_GPA + VTD_CCMD, 1ull << 63 | 1ull << 61);
	iotlb_flush(vm);

	g->ring_iova = IOVA_TOP - 0x10000;
	g->cpl_iova = 0x123450000ull;
	iommu_map(vm, g, g->ring_iova, RING_GPA,
		  RING_SIZE * sizeof(struct tern_desc));
	iommu_map(vm, g, g->cpl_iova, CPL_GPA, RING_SIZE * 32);
	for (b = 0; b < NR_BUFS; b++) {
		g->buf_iova[b] = buf_iova(b, 0);
		iommu_map(vm, g, g->buf_iova[b], g->buf_gpa[b], BUF_SIZE);
	}
	writel(vm, VTD_GPA + VTD_GCMD, VTD_TE);
	if (!(readl(vm, VTD_GPA + VTD_GSTS) & VTD_TE))
		die("%s: DMA remapping did not turn on\n", vm->name);
}

static void guest_setup(struct vm *vm, struct guest *g)
{
	unsigned int q = TERN_VF_REG_Q(0), b;

	memset(g, 0, sizeof(*g));
	g->ring_iova = RING_GPA;
	g->cpl_iova = CPL_GPA;
	for (b = 0; b < NR_BUFS; b++)
		g->buf_iova[b] = g->buf_gpa[b] = BUF_GPA + b * BUF_SIZE;
	if (viommu == VIOMMU_DMAR)
		iommu_setup(vm, g);
	cfg_write(vm, 0x10, (uint32_t)BAR0_GPA);
	cfg_write(vm, 0x14, BAR0_GPA >> 32);
	cfg_write(vm, 0x18, (uint32_t)BAR2_GPA);
	cfg_write(vm, 0x1c, BAR2_GPA >> 32);
	cfg_write(vm, 0x20, (uint32_t)BAR4_GPA);
	cfg_write(vm, 0x24, BAR4_GPA >> 32);
	cfg_write(vm, 0x04, 0x6);	/* memory space, bus master */
	if (readl(vm, BAR0_GPA + TERN_VF_REG_MAGIC) != TERN_VF_MAGIC)
		die("%s: the VF's BAR does not answer\n", vm->name);
	qt(vm, "memset 0x%llx 0x%x 0", RING_GPA,
	   RING_SIZE * (unsigned int)sizeof(struct tern_desc));
	writel(vm, BAR0_GPA + q + TERN_Q_BASE_LO, (uint32_t)g->ring_iova);
	writel(vm, BAR0_GPA + q + TERN_Q_BASE_HI, g->ring_iova >> 32);
	writel(vm, BAR0_GPA + q + TERN_Q_SIZE, RING_SIZE);
	writel(vm, BAR0_GPA + q + TERN_Q_CTRL, TERN_Q_CTRL_ENABLE);
}

static uint32_t guest_head(struct vm *vm)
{
	return readl(vm, BAR0_GPA + TERN_VF_REG_Q(0) + TERN_Q_HEAD);
}

static void guest_add(struct vm *vm, struct guest *g, uint8_t op,
		      uint64_t src, uint64_t dst, uint64_t pat)
{
	struct tern_desc d = {
		.opcode = op,
		.len = htole32(BUF_SIZE),
		.src = htole64(src),
		.dst = htole64(dst),
		.pattern = htole64(pat),
		.cpl_addr = htole64(g->cpl_iova + g->tail * 32ull),
		.user = htole64(g->seq),
	};

	mem_write(vm, RING_GPA + g->tail * sizeof(d), &d, sizeof(d));
	g->tail = (g->tail + 1) % RING_SIZE;
	g->submitted++;
}

/*
 * One round: ROUND descriptors and a doorbell.  Returns false when the
 * ring is full (the VF is stopped, or slow).
 */
static bool guest_round(struct vm *vm, struct guest *g)
{
	uint32_t head = guest_head(vm);
	uint32_t used = (g->tail - head + RING_SIZE) % RING_SIZE;
	unsigned int i;

	if (used + ROUND >= RING_SIZE - 1)
		return false;
	for (i = 0; i < ROUND; i++, g->seq++) {
		unsigned int b = g->seq % NR_BUFS;

		if (g->seq % 4 == 3) {
			unsigned int s = (g->seq / 4) % DEV_SLOTS;

			guest_add(vm, g, TERN_DESC_TO_DEV, g->buf_iova[b],
				  s * BUF_SIZE, 0);
			g->dev_pat[s] = g->buf_pat[b];
		} else {
			guest_add(vm, g, TERN_DESC_FILL, 0, g->buf_iova[b],
				  pattern(g->seq));
			g->buf_pat[b] = pattern(g->seq);
		}
	}
	writel(vm, BAR0_GPA + TERN_VF_REG_Q(0) + TERN_Q_TAIL, g->tail);
	return true;
}

static bool wait_idle(struct vm *vm, struct guest *g)
{
	int i;

	for (i = 0; i < 3000; i++) {
		if (guest_head(vm) == g->tail)
			return true;
		usleep(10000);
	}
	return false;
}

/*
 * Move a buffer, during pre-copy: the VF fills it through its mapping,
 * the guest unmaps it (what the VF wrote there must still reach the
 * destination), and maps the buffer at a new IOVA, in fresh pages.
 */
static void guest_remap(struct vm *vm, struct guest *g)
{
	unsigned int b = (g->remaps * 37 + 5) % NR_BUFS;

	if (g->remaps == MAX_REMAPS)
		return;
	guest_add(vm, g, TERN_DESC_FILL, 0, g->buf_iova[b], pattern(g->seq));
	g->buf_pat[b] = pattern(g->seq++);
	writel(vm, BAR0_GPA + TERN_VF_REG_Q(0) + TERN_Q_TAIL, g->tail);
	if (!wait_idle(vm, g))
		die("%s: the VF does not run\n", vm->name);
	iommu_map(vm, g, g->buf_iova[b], ~0ull, BUF_SIZE);
	g->gone[g->remaps].gpa = g->buf_gpa[b];
	g->gone[g->remaps].pat = g->buf_pat[b];
	g->buf_gpa[b] = SPARE_GPA + g->remaps * BUF_SIZE;
	g->buf_iova[b] = buf_iova(b, ++g->buf_gen[b]);
	iommu_map(vm, g, g->buf_iova[b], g->buf_gpa[b], BUF_SIZE);
	/* Fresh pages hold zeros: the pattern 0, until the VF fills them. */
	g->buf_pat[b] = 0;
	g->remaps++;
}

/* Bytes of a block that differ from the pattern it must hold. */
static unsigned int bytes_wrong(const uint8_t *p, uint64_t pat)
{
	uint64_t le = htole64(pat);
	const uint8_t *want = (const uint8_t *)&le;
	unsigned int i, n = 0;

	for (i = 0; i < BUF_SIZE; i++)
		n += p[i] != want[i % 8];
	return n;
}

/*
 * After a migration, on the destination: a doorbell the test rang after
 * the source VM stopped never reached the VF (a real guest's vCPU would
 * ring it on the destination), so ring it there; then every buffer and
 * every device memory slot must hold what the guest last put there.
 */
static bool guest_verify(struct vm *vm, struct guest *g)
{
	static uint8_t blk[BUF_SIZE];
	unsigned int i, n, bad = 0;
	uint32_t tail;

	tail = readl(vm, BAR0_GPA + TERN_VF_REG_Q(0) + TERN_Q_TAIL);
	if (tail != g->tail) {
		g->lost_doorbells++;
		writel(vm, BAR0_GPA + TERN_VF_REG_Q(0) + TERN_Q_TAIL, g->tail);
	}
	if (!wait_idle(vm, g)) {
		ksft_print_msg("%s: queue not idle: head %u tail %u\n",
			       vm->name, guest_head(vm), g->tail);
		return false;
	}
	for (i = 0; i < NR_BUFS && i < g->seq; i++) {
		mem_read(vm, g->buf_gpa[i], blk, BUF_SIZE);
		n = bytes_wrong(blk, g->buf_pat[i]);
		g->bytes_wrong += n;
		if (n && bad++ < 5)
			ksft_print_msg("%s: buffer %u is wrong\n", vm->name, i);
	}
	for (i = 0; i < g->remaps; i++) {
		mem_read(vm, g->gone[i].gpa, blk, BUF_SIZE);
		n = bytes_wrong(blk, g->gone[i].pat);
		g->bytes_wrong += n;
		if (n && bad++ < 5)
			ksft_print_msg("%s: the buffer unmapped by remap %u is wrong\n",
				       vm->name, i);
	}
	for (i = 0; i < DEV_SLOTS && i * 4 + 3 < g->seq; i++) {
		mem_read(vm, BAR2_GPA + i * BUF_SIZE, blk, BUF_SIZE);
		n = bytes_wrong(blk, g->dev_pat[i]);
		g->bytes_wrong += n;
		if (n && bad++ < 5)
			ksft_print_msg("%s: device memory slot %u is wrong\n",
				       vm->name, i);
	}
	return !bad;
}

/* ------------------------------------------------------------------
 * Migrations
 */

struct opts {
	bool multifd;
	bool cancel;		/* cancel it in mid pre-copy */
	bool fail_load;		/* the destination VF refuses the image */
};

struct result {
	char status[32];
	unsigned long long downtime_ms;
	unsigned long long total_ms;
	unsigned long long iterations;
	unsigned long long vfio_bytes;
	unsigned long long ram_bytes;
	unsigned long long rounds;
};

static void set_caps(struct vm *vm, const struct opts *o, bool source)
{
	qmp(vm, "{\"execute\": \"migrate-set-capabilities\", \"arguments\": "
	    "{\"capabilities\": [{\"capability\": \"return-path\", \"state\": true}, "
	    "{\"capability\": \"switchover-ack\", \"state\": true}, "
	    "{\"capability\": \"pause-before-switchover\", \"state\": %s}, "
	    "{\"capability\": \"multifd\", \"state\": %s}]}}",
	    source ? "true" : "false", o->multifd ? "true" : "false");
}

/* Arm or clear a failure of the next LOAD on VF @vf (PF debug BAR). */
static void fail_next_load(const char *pf, int vf, bool arm)
{
	char path[128];
	volatile uint32_t *dbg;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource2", pf);
	fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0)
		ksft_exit_skip("fault injection needs x-debug=on\n");
	dbg = mmap(NULL, TERN_PF_DEBUG_SIZE, PROT_READ | PROT_WRITE,
		   MAP_SHARED, fd, 0);
	close(fd);
	if (dbg == MAP_FAILED)
		ksft_exit_fail_msg("mmap %s\n", path);
	dbg[TERN_DBG_REG_FAIL_VF / 4] = vf;
	dbg[TERN_DBG_REG_FAIL_STATUS / 4] = TERN_STS_IMG_CORRUPT;
	dbg[TERN_DBG_REG_FAIL_CMD / 4] = arm ? TERN_DBG_ARM | TERN_OP_LOAD : 0;
	munmap((void *)dbg, TERN_PF_DEBUG_SIZE);
}

/*
 * What a user cancels: a migration whose destination stopped taking
 * data.  @dst stops for a second while the guest keeps dirtying memory,
 * so that the source's migration thread is busy on a full socket when
 * the cancel shuts it down.
 */
static void stall(struct vm *dst, struct vm *src, struct guest *g)
{
	uint64_t end = now_ms() + 1000;

	kill(dst->pid, SIGSTOP);
	while (now_ms() < end)
		if (!guest_round(src, g))
			usleep(20000);
}

/*
 * Migrate @src's VM into @dst (started here with @dst_vf), the guest
 * working all along.  Pre-copy is held back until a few iterations
 * passed, then allowed to converge.
 */
static void migrate(struct vm *src, struct vm *dst, const char *dst_vf,
		    struct guest *g, const struct opts *o, struct result *r)
{
	const char *uri = "unix:" DIR "/migrate.sock";
	unsigned long long iter = 0;
	bool cancelled = false, released = false;
	char st[32] = "";
	char *line;
	int i;

	memset(r, 0, sizeof(*r));
	vm_start(dst, "dst", dst_vf, true);
	qmp_init(dst);
	set_caps(dst, o, false);
	if (o->multifd)
		qmp(dst, "{\"execute\": \"migrate-set-parameters\", \"arguments\": "
		    "{\"multifd-channels\": 2}}");
	qmp(dst, "{\"execute\": \"migrate-incoming\", \"arguments\": {\"uri\": \"%s\"}}",
	    uri);

	set_caps(src, o, true);
	/*
	 * QEMU switches over when what is left fits in the downtime limit
	 * at the switchover bandwidth.  Claiming 100 kB/s for a 1 ms limit
	 * leaves 100 bytes, less than a VF's smallest stop-copy image, so
	 * pre-copy iterates, each pass ending in a dirty sync, until the
	 * test lets it converge.
	 */
	qmp(src, "{\"execute\": \"migrate-set-parameters\", \"arguments\": "
	    "{\"downtime-limit\": 1, \"avail-switchover-bandwidth\": 100000, "
	    "\"max-bandwidth\": 67108864%s}}",
	    o->multifd ? ", \"multifd-channels\": 2" : "");
	qmp(src, "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"%s\"}}",
	    uri);

	for (i = 0; i < 20000; i++) {
		if (!(i % 8)) {
			line = qmp(src, "{\"execute\": \"query-migrate\"}");
			json_str(line, "status", st, sizeof(st));
			iter = json_num(line, "dirty-sync-count");
			if (strcmp(st, "active") && strcmp(st, "setup") &&
			    strcmp(st, "device") && strcmp(st, "wait-unplug"))
				break;
			/*
			 * Enough pre-copy passes (and, behind a DMA
			 * remapping vIOMMU, buffers moved): let it converge.
			 */
			if (iter >= 4 && !o->cancel && !released &&
			    (viommu != VIOMMU_DMAR || g->remaps >= MIN_REMAPS)) {
				qmp(src, "{\"execute\": \"migrate-set-parameters\", "
				    "\"arguments\": {\"downtime-limit\": 5000, "
				    "\"avail-switchover-bandwidth\": 0}}");
				released = true;
			}
			if (iter >= 3 && o->cancel && !cancelled) {
				stall(dst, src, g);
				qmp(src, "{\"execute\": \"migrate_cancel\"}");
				kill(dst->pid, SIGCONT);
				cancelled = true;
			}
		}
		/*
		 * Unmaps and new mappings in mid pre-copy, one a round, once
		 * the first pass over RAM is over: only the VF's dirty
		 * tracking brings the pages it writes then to the destination.
		 */
		if (viommu == VIOMMU_DMAR && iter >= 2 && !released &&
		    !o->cancel)
			guest_remap(src, g);
		if (guest_round(src, g))
			r->rounds++;
		else
			usleep(20000);
	}
	if (!strcmp(st, "pre-switchover"))
		qmp(src, "{\"execute\": \"migrate-continue\", \"arguments\": "
		    "{\"state\": \"pre-switchover\"}}");
	for (i = 0; i < 6000; i++) {
		line = qmp(src, "{\"execute\": \"query-migrate\"}");
		json_str(line, "status", st, sizeof(st));
		if (strcmp(st, "active") && strcmp(st, "device") &&
		    strcmp(st, "pre-switchover") && strcmp(st, "cancelling"))
			break;
		usleep(20000);
	}
	snprintf(r->status, sizeof(r->status), "%s", st);
	r->downtime_ms = json_num(line, "downtime");
	r->total_ms = json_num(line, "total-time");
	r->iterations = json_num(line, "dirty-sync-count");
	r->vfio_bytes = json_num(strstr(line, "\"vfio\"") ?: "", "transferred");
	r->ram_bytes = json_num(strstr(line, "\"ram\"") ?: "", "transferred");
}

/* Wait for the destination to run, then check what it has. */
static bool dst_ready(struct vm *dst)
{
	char st[32] = "";
	int i;

	for (i = 0; i < 3000; i++) {
		json_str(qmp(dst, "{\"execute\": \"query-status\"}"), "status",
			 st, sizeof(st));
		if (!strcmp(st, "running"))
			return true;
		usleep(10000);
	}
	ksft_print_msg("dst: status %s\n", st);
	return false;
}

/* ------------------------------------------------------------------
 * Setup of the VFs in this (L1) machine
 */

static char pf[32], vf_bdf[2][32];

static void setup_vfs(void)
{
	int i;

	if (pci_find_device(TERN_PCI_VENDOR_ID, TERN_PCI_DEVICE_ID_PF, pf,
			    sizeof(pf)))
		ksft_exit_skip("no tern PF\n");
	if (system("modprobe -a tern_pf tern_vfio_pci vfio_iommu_type1") ||
	    pci_bind(pf, "tern_pf"))
		ksft_exit_fail_msg("cannot bind the PF to tern_pf\n");
	pci_sysfs_write(pf, "sriov_numvfs", "0");
	if (pci_sysfs_write(pf, "sriov_numvfs", "2"))
		ksft_exit_fail_msg("cannot enable VFs\n");
	for (i = 0; i < 2; i++)
		if (pci_vf_bdf(pf, i, vf_bdf[i], sizeof(vf_bdf[i])) ||
		    pci_bind(vf_bdf[i], "tern_vfio_pci"))
			ksft_exit_fail_msg("cannot bind VF %d\n", i);
	mkdir(DIR, 0755);
}

/* Pages the PF's VFs reported dirty so far (tern_pf debugfs). */
static unsigned long long dirty_pages_reported(void)
{
	char path[128], line[128];
	unsigned long long n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/debug/tern_pf/%s/aq", pf);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "dirty_pages_reported: %llu", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* Stream bytes of the last STOP_COPY (tern_vfio_pci tracepoint). */
static unsigned long long stop_copy_bytes(void)
{
	unsigned long long at_start = 0, at_end = 0, b;
	char line[512];
	FILE *f = fopen("/sys/kernel/tracing/trace", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "stream_bytes=");

		if (!p)
			continue;
		b = strtoull(p + 13, NULL, 10);
		if (strstr(line, " 7 -> 3 "))
			at_start = b;	/* PRE_COPY_P2P -> STOP_COPY */
		if (strstr(line, " 3 -> 1 "))
			at_end = b;	/* STOP_COPY -> STOP */
	}
	fclose(f);
	return at_end > at_start ? at_end - at_start : 0;
}

static void trace_arcs(void)
{
	int fd = open("/sys/kernel/tracing/events/tern_vfio_pci/enable",
		      O_WRONLY);

	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			ksft_print_msg("cannot enable tern_vfio_pci events\n");
		close(fd);
	}
	fd = open("/sys/kernel/tracing/trace", O_WRONLY | O_TRUNC);
	if (fd >= 0)
		close(fd);
}

/* ------------------------------------------------------------------
 * The tests
 */

static void warm_up(struct vm *vm, struct guest *g)
{
	int i;

	for (i = 0; i < 16; i++)
		guest_round(vm, g);
	if (!wait_idle(vm, g))
		die("%s: the VF does not run\n", vm->name);
}

/* One hop with the guest working; src's VF runs on in dst. */
static bool hop(struct vm *src, struct vm *dst, const char *dst_vf,
		struct guest *g, const struct opts *o, struct result *r)
{
	bool ok;

	migrate(src, dst, dst_vf, g, o, r);
	ok = !strcmp(r->status, "completed") && dst_ready(dst) &&
	     guest_verify(dst, g);
	ksft_print_msg("%s -> %s: %s, %llu pre-copy iterations, %llu guest rounds, vfio %llu bytes, downtime %llu ms\n",
		       src->vf, dst_vf, r->status, r->iterations, r->rounds,
		       r->vfio_bytes, r->downtime_ms);
	return ok;
}

/*
 * One migration with DMA running, verified; whether it all held, and
 * QEMU's figures in *r.
 */
static bool run_migration(bool multifd, struct result *res)
{
	struct opts o = { .multifd = multifd };
	struct vm a, b;
	struct result r;
	struct guest g;
	bool ok;

	vm_start(&a, "src", vf_bdf[0], false);
	qmp_init(&a);
	guest_setup(&a, &g);
	warm_up(&a, &g);
	ok = hop(&a, &b, vf_bdf[1], &g, &o, &r);
	/* The destination's VF goes on translating through its vIOMMU. */
	if (ok && viommu) {
		warm_up(&b, &g);
		ok = guest_verify(&b, &g) &&
		     (viommu != VIOMMU_DMAR || g.remaps >= MIN_REMAPS);
		ksft_print_msg("destination: %llu descriptors in all, %u buffers remapped, %s\n",
			       (unsigned long long)g.submitted, g.remaps,
			       ok ? "all verified" : "WRONG");
	}
	ksft_print_msg("source VFIO events: %s\n", a.events);
	ksft_print_msg("destination VFIO events: %s\n", b.events);
	vm_stop(&a);
	vm_stop(&b);
	ok = ok && r.iterations >= 3 && r.vfio_bytes > 0 &&
	     strstr(a.events, "pre-copy,pre-copy-p2p") &&
	     strstr(a.events, "stop-copy") && strstr(b.events, "resuming") &&
	     strstr(b.events, "running");
	if (!ok)
		show_logs();
	if (res)
		*res = r;
	return ok;
}

static void test_migration(bool multifd)
{
	bool ok = run_migration(multifd, NULL);

	ksft_test_result(ok, "migration with DMA running%s%s%s\n",
			 multifd ? ", multifd" : "",
			 viommu ? ", vIOMMU " : "",
			 viommu ? viommu_names[viommu] : "");
}

/* Bind the VFs to tern_vfio_pci loaded anew with @params. */
static bool reload_vfio(const char *params)
{
	char cmd[128];
	int i;

	snprintf(cmd, sizeof(cmd),
		 "rmmod tern_vfio_pci && modprobe tern_vfio_pci %s", params);
	if (system(cmd))
		return false;
	for (i = 0; i < 2; i++)
		if (pci_bind(vf_bdf[i], "tern_vfio_pci"))
			return false;
	return true;
}

/*
 * Which dirty tracker the iommufd tests give QEMU: the IOMMU's only
 * (x-device-dirty-page-tracking=off, or a VF whose driver offers none),
 * or both, of which QEMU must pick the device's.
 */
enum tracker { IOMMU_ONLY, BOTH, NO_DEVICE_TRACKER };

/*
 * A migration with QEMU's iommufd backend, L1's IOMMU tracking dirty
 * pages (qemu/patches/0005; --iommufd only, as make check's full run is
 * on the legacy IOMMU): with the IOMMU as the only tracker the VF
 * reports no dirty page, and every byte it wrote must still be on the
 * destination; with both, QEMU uses the VF's.
 */
static void test_iommufd(enum tracker t)
{
	static const char *const what[] = {
		[IOMMU_ONLY] = "IOMMU dirty tracking only (x-device-dirty-page-tracking=off)",
		[BOTH] = "both trackers available, QEMU uses the device's",
		[NO_DEVICE_TRACKER] = "VF without a device tracker (dirty_tracking=0), IOMMU dirty tracking",
	};
	const char *l1_iommu = getenv("TERN_IOMMU");
	unsigned long long before, dev;
	struct result r;
	bool ok;

	if (!l1_iommu || strcmp(l1_iommu, "ssads")) {
		ksft_test_result_skip("iommufd backend, %s: L1's IOMMU does not track dirty pages (TERN_IOMMU=%s)\n",
				      what[t], l1_iommu ?: "");
		return;
	}
	if (t == NO_DEVICE_TRACKER && !reload_vfio("dirty_tracking=0")) {
		ksft_test_result_fail("iommufd backend, %s: cannot reload tern_vfio_pci\n",
				      what[t]);
		return;
	}
	use_iommufd = true;
	vf_props = t == IOMMU_ONLY ? NO_TRACKING : "";
	before = dirty_pages_reported();
	ok = run_migration(false, &r);
	dev = dirty_pages_reported() - before;
	use_iommufd = false;
	vf_props = "";
	ksft_print_msg("pages the VF's own tracker reported: %llu: QEMU used %s\n",
		       dev, dev ? "the device's tracker" : "the IOMMU's");
	ksft_print_msg("tracker %s: %llu dirty syncs, RAM %llu bytes, vfio %llu bytes, downtime %llu ms, total %llu ms\n",
		       dev ? "device" : "IOMMU", r.iterations, r.ram_bytes,
		       r.vfio_bytes, r.downtime_ms, r.total_ms);
	ok = ok && (t == BOTH ? dev > 0 : dev == 0);
	if (t == NO_DEVICE_TRACKER && !reload_vfio(""))
		ok = false;
	ksft_test_result(ok, "iommufd backend, %s\n", what[t]);
}

/*
 * Where QEMU refuses to migrate behind the vIOMMU (stock QEMU for every
 * vIOMMU, tern's where DMA is translated): "migrate" fails at once with
 * vfio's blocker, and the source VM and its VF run on.
 */
static void test_viommu_blocked(const char *blocker)
{
	struct guest g;
	char st[32];
	bool blocked;
	struct vm a;
	char *line;
	bool ok;

	vm_start(&a, "src", vf_bdf[0], false);
	qmp_init(&a);
	guest_setup(&a, &g);
	warm_up(&a, &g);
	line = qmp(&a, "{\"execute\": \"migrate\", \"arguments\": "
		   "{\"uri\": \"unix:" DIR "/blocked.sock\"}}");
	blocked = strstr(line, "\"error\"") && strstr(line, blocker);
	json_str(qmp(&a, "{\"execute\": \"query-status\"}"), "status", st,
		 sizeof(st));
	warm_up(&a, &g);
	ok = blocked && !strcmp(st, "running") && guest_verify(&a, &g);
	ksft_print_msg("vIOMMU %s%s: migrate %s; source %s\n",
		       viommu_names[viommu], vf_props,
		       blocked ? "refused with vfio's blocker" : "not refused",
		       st);
	vm_stop(&a);
	if (!ok)
		show_logs();
	ksft_test_result(ok, "vIOMMU %s%s: QEMU blocks the migration, the source runs on\n",
			 viommu_names[viommu], vf_props);
}

/* n migrations in a row, A -> B -> A ..., the guest working all along. */
static void test_ping_pong(int n)
{
	struct opts o = {};
	struct vm vms[2];
	struct result r;
	struct guest g;
	int hops, cur = 0;
	bool ok = true;

	vm_start(&vms[0], "src", vf_bdf[0], false);
	qmp_init(&vms[0]);
	guest_setup(&vms[0], &g);
	warm_up(&vms[0], &g);
	for (hops = 0; hops < n && ok; hops++) {
		ok = hop(&vms[cur], &vms[!cur], vf_bdf[!cur], &g, &o, &r);
		vm_stop(&vms[cur]);
		cur = !cur;
	}
	vm_stop(&vms[cur]);
	if (!ok)
		show_logs();
	/* The figure scripts/soak reads (reliability.rst, R5). */
	ksft_print_msg("R5: %d of %d migrations in a row completed and verified, %llu bytes wrong\n",
		       ok ? hops : hops - 1, n,
		       (unsigned long long)g.bytes_wrong);
	ksft_test_result(ok, "ping-pong: %d migrations with DMA running\n", n);
}

/*
 * QEMUs started while @on return from shutdown(2) only SHUTDOWN_DELAY_MS
 * (or $TERN_SHUTDOWN_DELAY_MS) after it took effect
 * (tern_shutdown_delay.so, installed beside this program).  Cancelling
 * a migration shuts its channels down: a QEMU that does so before the
 * state says CANCELLING lets the migration thread fail on the shut
 * channel first and end the migration as FAILED (the race of
 * qemu/patches/0002), which this makes likely instead of rare.
 */
#define SHUTDOWN_DELAY_MS	"3000"

static void slow_shutdown(bool on)
{
	static char delay[16];
	char path[PATH_MAX], *slash;
	ssize_t n;

	if (!delay[0])
		snprintf(delay, sizeof(delay), "%s",
			 getenv("TERN_SHUTDOWN_DELAY_MS") ?: SHUTDOWN_DELAY_MS);
	if (!on) {
		unsetenv("LD_PRELOAD");
		unsetenv("TERN_SHUTDOWN_DELAY_MS");
		return;
	}
	n = readlink("/proc/self/exe", path, sizeof(path) - 32);
	slash = n > 0 ? memrchr(path, '/', n) : NULL;
	if (!slash)
		ksft_exit_fail_msg("cannot find my own directory\n");
	strcpy(slash + 1, "tern_shutdown_delay.so");
	if (access(path, R_OK))
		ksft_exit_fail_msg("%s: %s\n", path, strerror(errno));
	setenv("LD_PRELOAD", path, 1);
	setenv("TERN_SHUTDOWN_DELAY_MS", delay, 1);
}

/*
 * Whether @vm's QEMU has tern_shutdown_delay.so mapped: a QEMU that could
 * not preload it (the dynamic loader only warns) would make the cancel
 * test as weak as an unloaded host.
 */
static bool has_shim(struct vm *vm)
{
	char path[64], line[512];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", vm->pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, "/tern_shutdown_delay.so");
	fclose(f);
	return found;
}

/* A cancelled migration, or one the destination fails: the source runs on. */
static void test_source_survives(bool fail_load)
{
	struct opts o = { .cancel = !fail_load, .fail_load = fail_load };
	struct vm a, b;
	struct result r;
	struct guest g;
	char st[32];
	bool ok;

	/* vf_bdf[1] is VF 1 of the PF. */
	if (fail_load)
		fail_next_load(pf, 1, true);
	slow_shutdown(!fail_load);
	vm_start(&a, "src", vf_bdf[0], false);
	slow_shutdown(false);
	qmp_init(&a);
	if (!fail_load && !has_shim(&a))
		die("src: QEMU runs without tern_shutdown_delay.so\n");
	guest_setup(&a, &g);
	warm_up(&a, &g);
	migrate(&a, &b, vf_bdf[1], &g, &o, &r);
	vm_stop(&b);
	if (fail_load)
		fail_next_load(pf, 1, false);
	json_str(qmp(&a, "{\"execute\": \"query-status\"}"), "status", st,
		 sizeof(st));
	/* The source VF works on: more rounds, all results right. */
	warm_up(&a, &g);
	ok = !strcmp(r.status, fail_load ? "failed" : "cancelled") &&
	     !strcmp(st, "running") && guest_verify(&a, &g) &&
	     strstr(a.events, "running");
	ksft_print_msg("status %s, source %s, source VFIO events: %s\n",
		       r.status, st, a.events);
	vm_stop(&a);
	if (!ok)
		show_logs();
	ksft_test_result(ok, "%s: the source keeps running and its VF works\n",
			 fail_load ? "destination fails to load" :
			 "cancelled migration");
}

/* make demo: one migration, and what it did. */
static int demo(void)
{
	unsigned long long dirty_before = dirty_pages_reported();
	struct opts o = {};
	struct vm a, b;
	struct result r;
	struct guest g;
	bool ok;

	trace_arcs();
	printf("demo: L2 source VM with VF %s, destination VM with VF %s\n",
	       vf_bdf[0], vf_bdf[1]);
	vm_start(&a, "src", vf_bdf[0], false);
	qmp_init(&a);
	guest_setup(&a, &g);
	warm_up(&a, &g);
	printf("demo: the guest driver keeps the VF filling L2 RAM; migrating...\n");
	ok = hop(&a, &b, vf_bdf[1], &g, &o, &r);
	vm_stop(&a);
	vm_stop(&b);

	printf("\n");
	printf("migration status:           %s\n", r.status);
	printf("device state bytes (vfio):  %llu\n", r.vfio_bytes);
	printf("pre-copy iterations:        %llu\n", r.iterations);
	printf("stop-copy bytes:            %llu\n", stop_copy_bytes());
	printf("downtime (QEMU):            %llu ms\n", r.downtime_ms);
	printf("total time (QEMU):          %llu ms\n", r.total_ms);
	printf("dirty pages (VF reported):  %llu\n",
	       dirty_pages_reported() - dirty_before);
	printf("DMA descriptors by guest:   %llu\n",
	       (unsigned long long)g.submitted);
	printf("source VFIO states:         %s\n", a.events);
	printf("destination VFIO states:    %s\n", b.events);
	if (!ok)
		show_logs();
	printf("verification: %s\n", ok ? "OK" :
	       "FAILED (see the messages above)");
	return ok ? 0 : 1;
}

/* ------------------------------------------------------------------
 * The L2 QEMU and the command line
 */

/*
 * Run QEMU (@argv, argv[0] the binary) without a shell, as @argv[0] comes
 * from the user, with @input on its stdin; its output, at most @n - 1
 * bytes, NUL-terminated, in @out.  False if it could not run or did not
 * exit with 0.
 */
static bool qemu_run(char *const argv[], const char *input, char *out,
		     size_t n)
{
	int ofd[2], ifd[2], st;
	size_t len = 0;
	ssize_t r;
	pid_t pid;

	if (pipe(ofd))
		return false;
	if (pipe(ifd)) {
		close(ofd[0]);
		close(ofd[1]);
		return false;
	}
	pid = fork();
	if (pid < 0)
		return false;
	if (!pid) {
		dup2(ifd[0], 0);
		dup2(ofd[1], 1);
		dup2(ofd[1], 2);
		close(ifd[1]);
		close(ofd[0]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(ifd[0]);
	close(ofd[1]);
	/* A few bytes: the pipe takes them before QEMU reads. */
	if (write(ifd[1], input, strlen(input)) < 0)
		ksft_print_msg("cannot write to %s: %s\n", argv[0],
			       strerror(errno));
	close(ifd[1]);
	while (len < n - 1 && (r = read(ofd[0], out + len, n - 1 - len)) > 0)
		len += r;
	out[len] = 0;
	close(ofd[0]);
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	       !WEXITSTATUS(st);
}

/* Whether QEMU starts with -accel @accel: its monitor on stdin quits it. */
static bool qemu_has_accel(const char *accel)
{
	char *argv[] = {
		(char *)qemu_bin, "-nodefaults", "-no-user-config", "-display",
		"none", "-machine", "none", "-accel", (char *)accel,
		"-monitor", "stdio", NULL
	};
	char out[4096];

	return qemu_run(argv, "quit\n", out, sizeof(out));
}

/*
 * The accelerator for L2: qtest (no guest CPU runs) where the binary has
 * it, else TCG; L2's CPU then runs its firmware, which only halts.
 * QEMU's "-accel help" never lists qtest: the binary is asked to start
 * with each instead.
 */
static void qemu_choose(char *version, size_t n)
{
	char *argv[] = { (char *)qemu_bin, "-version", NULL };
	char *nl;

	if (!qemu_run(argv, "", version, n))
		ksft_exit_fail_msg("%s -version failed: %.200s\n", qemu_bin,
				   version);
	nl = strchr(version, '\n');
	if (nl)
		*nl = 0;
	if (qemu_has_accel("qtest"))
		qemu_accel = "qtest";
	else if (qemu_has_accel("tcg"))
		qemu_accel = "tcg";
	else
		ksft_exit_fail_msg("%s starts with neither -accel qtest nor -accel tcg\n",
				   qemu_bin);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tern_qemu_test [--qemu PATH]\n"
		"                      [--basic | --iommufd | --demo | --ping-pong N | --cancel N |\n"
		"                       --viommu intremap|dmar|virtio [--expect-blocked]\n"
		"                       [--no-dirty-tracking]]\n"
		"\n"
		"QEMU live-migrates an L2 VM whose tern VF keeps doing DMA, and every\n"
		"byte the VF wrote is verified on the destination.  Needs a tern PF\n"
		"with 2 VFs free (the test VM of scripts/vm-run).\n"
		"\n"
		"  --qemu PATH    the L2 QEMU (default: $TERN_QEMU, else %s on PATH);\n"
		"                 without the qtest accelerator, L2 runs under TCG\n"
		"  --basic        only the two migrations with DMA running (pre-copy,\n"
		"                 stop-copy; plain and multifd)\n"
		"  --iommufd      only the three migrations through QEMU's iommufd\n"
		"                 backend with L1's IOMMU dirty tracking\n"
		"                 ($TERN_IOMMU=ssads): IOMMU tracking only, both\n"
		"                 trackers (QEMU uses the VF's), and a VF whose driver\n"
		"                 offers no tracker (skipped on another L1 IOMMU)\n"
		"  --demo         one migration and a summary (make demo)\n"
		"  --ping-pong N  N migrations in a row, A -> B -> A ...\n"
		"  --cancel N     N migrations cancelled in mid pre-copy\n"
		"  --viommu MODE  only the migration with DMA running, the L2 VMs with\n"
		"                 an intel-iommu: intremap (dma-translation=off) or\n"
		"                 dmar (dma-translation=on); or a virtio-iommu, behind\n"
		"                 which QEMU must refuse the migration\n"
		"  --expect-blocked  with --viommu: QEMU must refuse the migration\n"
		"                 with vfio's vIOMMU blocker, stock QEMU's\n"
		"                 \"%s\"\n"
		"  --no-dirty-tracking  with --viommu: the VF's device dirty tracking\n"
		"                 off (with --expect-blocked: QEMU's blocker for that)\n"
		"  -h, --help     this text\n", QEMU, STOCK_BLOCKER);
}

int main(int argc, char **argv)
{
	enum { ALL, BASIC, DEMO, PING_PONG, CANCEL, VIOMMU, IOMMUFD } mode = ALL;
	bool expect_blocked = false;
	char version[256];
	int i, n = 0;

	if (getenv("TERN_QEMU") && *getenv("TERN_QEMU"))
		qemu_bin = getenv("TERN_QEMU");
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--qemu") && i + 1 < argc && *argv[i + 1]) {
			qemu_bin = argv[++i];
		} else if (!strcmp(argv[i], "--basic")) {
			mode = BASIC;
		} else if (!strcmp(argv[i], "--iommufd")) {
			mode = IOMMUFD;
		} else if (!strcmp(argv[i], "--demo")) {
			mode = DEMO;
		} else if ((!strcmp(argv[i], "--ping-pong") ||
			    !strcmp(argv[i], "--cancel")) && i + 1 < argc) {
			mode = !strcmp(argv[i], "--cancel") ? CANCEL : PING_PONG;
			n = atoi(argv[++i]);
			if (n < 1 || n > 100000) {
				usage(stderr);
				return KSFT_FAIL;
			}
		} else if (!strcmp(argv[i], "--viommu") && i + 1 < argc &&
			   (!strcmp(argv[i + 1], "intremap") ||
			    !strcmp(argv[i + 1], "dmar") ||
			    !strcmp(argv[i + 1], "virtio"))) {
			mode = VIOMMU;
			i++;
			viommu = !strcmp(argv[i], "dmar") ? VIOMMU_DMAR :
				 !strcmp(argv[i], "virtio") ? VIOMMU_VIRTIO :
				 VIOMMU_INTREMAP;
		} else if (!strcmp(argv[i], "--expect-blocked")) {
			expect_blocked = true;
		} else if (!strcmp(argv[i], "--no-dirty-tracking")) {
			vf_props = NO_TRACKING;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return KSFT_FAIL;
		}
	}
	if ((expect_blocked || *vf_props) && mode != VIOMMU) {
		usage(stderr);
		return KSFT_FAIL;
	}

	signal(SIGPIPE, SIG_IGN);
	qemu_choose(version, sizeof(version));
	setup_vfs();
	if (mode == DEMO) {
		printf("demo: L2 QEMU %s (%s), -accel %s\n", qemu_bin, version,
		       qemu_accel);
		return demo();
	}

	ksft_print_header();
	ksft_print_msg("L2 QEMU: %s (%s), -accel %s\n", qemu_bin, version,
		       qemu_accel);
	if (mode == PING_PONG) {
		ksft_set_plan(1);
		test_ping_pong(n);
		ksft_finished();
	}
	/* Cancel N times in a row (qemu/patches/0002's race). */
	if (mode == CANCEL) {
		ksft_set_plan(n);
		for (i = 0; i < n; i++)
			test_source_survives(false);
		ksft_finished();
	}
	if (mode == IOMMUFD) {
		ksft_set_plan(3);
		test_iommufd(IOMMU_ONLY);
		test_iommufd(BOTH);
		test_iommufd(NO_DEVICE_TRACKER);
		ksft_finished();
	}
	if (mode == BASIC) {
		ksft_set_plan(2);
		test_migration(false);
		test_migration(true);
		ksft_finished();
	}
	if (mode == VIOMMU) {
		ksft_set_plan(1);
		if (expect_blocked && *vf_props)
			test_viommu_blocked(NO_TRACKING_BLOCKER);
		else if (expect_blocked)
			test_viommu_blocked(STOCK_BLOCKER);
		else if (viommu == VIOMMU_VIRTIO)
			test_viommu_blocked(NO_WIDTH_BLOCKER);
		else
			test_migration(false);
		ksft_finished();
	}

	ksft_set_plan(9);
	test_migration(false);
	test_migration(true);
	test_source_survives(false);
	test_source_survives(true);
	test_ping_pong(3);
	/* Behind an intel-iommu that remaps interrupts only (patch 0003). */
	viommu = VIOMMU_INTREMAP;
	test_migration(false);
	/* One that translates DMA (patch 0004). */
	viommu = VIOMMU_DMAR;
	test_migration(false);
	/* Without device dirty tracking nothing tracks the VF: blocked. */
	vf_props = NO_TRACKING;
	test_viommu_blocked(NO_TRACKING_BLOCKER);
	/* A vIOMMU without an address width: nothing to track over. */
	vf_props = "";
	viommu = VIOMMU_VIRTIO;
	test_viommu_blocked(NO_WIDTH_BLOCKER);
	ksft_finished();
}
