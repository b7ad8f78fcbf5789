// SPDX-License-Identifier: GPL-2.0
/*
 * LD_PRELOAD shim for tern_qemu_test: shutdown(2) takes effect at once
 * but returns to its caller only TERN_SHUTDOWN_DELAY_MS milliseconds
 * later.  A QEMU that shuts a migration channel down and only then
 * updates the migration's state shows, reliably, what a loaded host
 * shows once in a while: the other threads acting on the shut channel
 * before the state says why it was shut.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <sys/socket.h>

int shutdown(int fd, int how)
{
	static int (*real_shutdown)(int, int);
	const char *delay = getenv("TERN_SHUTDOWN_DELAY_MS");
	struct timespec ts;
	long ms;
	int ret;

	if (!real_shutdown)
		real_shutdown = (int (*)(int, int))dlsym(RTLD_NEXT, "shutdown");
	ret = real_shutdown(fd, how);
	ms = delay ? atol(delay) : 0;
	if (ms > 0) {
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (ms % 1000) * 1000000;
		nanosleep(&ts, NULL);
	}
	return ret;
}
