/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The test as a VMM: a PF bound to tern_pf, a few VFs bound to
 * tern_vfio_pci and opened in one container or iommufd (one "guest
 * memory" for all of them), their BARs mapped; and as a guest driver: a
 * queue of FILL descriptors whose results can be checked.
 */
#ifndef TERN_SELFTEST_ENV_UTIL_H
#define TERN_SELFTEST_ENV_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "tern_util.h"
#include "vfio_util.h"

#define ENV_MAX_VFS	4
#define ENV_DMA_SIZE	(64ul << 20)
#define ENV_PAGE	4096ul

struct tern_env {
	char pf[32];
	int nr;
	bool iommufd;
	char vf[ENV_MAX_VFS][32];
	struct vfio_container c;
	struct vfio_dev dev[ENV_MAX_VFS];
	void *regs[ENV_MAX_VFS];
	uint8_t *mem[ENV_MAX_VFS];
	uint64_t devmem_size;
};

/*
 * Load the drivers, enable nr VFs and open them.  -ENODEV: no tern PF
 * (skip the test).
 */
int env_setup(struct tern_env *e, int nr, bool iommufd);
void env_teardown(struct tern_env *e);
int env_open_vf(struct tern_env *e, int i);
void env_close_vf(struct tern_env *e, int i);
/*
 * Close the VFs, reload tern_vfio_pci with params, rebind and reopen
 * them in a new container (DMA memory allocated before is gone).
 */
int env_reload_vfio(struct tern_env *e, const char *params);

/* The PF's fault injection block (x-debug=on), or NULL. */
void *env_debug_map(struct tern_env *e);
void env_debug_unmap(void *dbg);

/* A queue of FILL descriptors, one block of guest memory each. */
#define WORK_BLOCK	8192u

struct work {
	struct vfio_container *c;
	struct tern_vfq vq;
	uint8_t *blocks;
	struct tern_desc_cpl *cpl;
	uint64_t cpl_iova;
	unsigned int nr;	/* blocks, and descriptors per pass */
	unsigned int pass;	/* changes the pattern of each pass */
};

int work_init(struct work *w, struct vfio_container *c, void *regs,
	      unsigned int q, unsigned int nr);
/* Clear block i and queue its FILL; ring the doorbell if ring is set. */
void work_add(struct work *w, unsigned int i, bool ring);
/* Queue descriptors for blocks [from, to) and ring once. */
void work_add_range(struct work *w, unsigned int from, unsigned int to);
/* Did block i's FILL of this pass complete correctly? */
bool work_block_ok(struct work *w, unsigned int i);
uint64_t work_done(struct work *w);	/* the queue's CNT_DESC */
int work_wait(struct work *w, int timeout_ms);

#endif
