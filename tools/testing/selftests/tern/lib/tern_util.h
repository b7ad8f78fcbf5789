/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace drivers for the tern PF admin queue and VF engine queues,
 * on top of vfio_util.h.  The device is Documentation/tern/device.rst.
 */
#ifndef TERN_SELFTEST_TERN_UTIL_H
#define TERN_SELFTEST_TERN_UTIL_H

#include <tern/tern_hw.h>
#include "vfio_util.h"

struct tern_aq {
	void *regs;			/* PF BAR0 */
	struct tern_aq_cmd *cmd;
	struct tern_aq_cpl *cpl;
	uint32_t entries;
	uint32_t tail;			/* next command slot */
	uint32_t cpl_head;		/* next completion slot */
	unsigned int phase;
	uint16_t next_tag;
};

int tern_aq_init(struct tern_aq *aq, struct vfio_container *c, void *regs,
		 uint32_t entries);
void tern_aq_disable(struct tern_aq *aq);
/* Queue a command (tag assigned unless keep_tag) without ringing. */
uint16_t tern_aq_post(struct tern_aq *aq, struct tern_aq_cmd *cmd);
void tern_aq_ring(struct tern_aq *aq);
/* Wait for the next completion; 0, or -ETIMEDOUT. */
int tern_aq_reap(struct tern_aq *aq, struct tern_aq_cpl *cpl, int timeout_ms);
/* Submit one command and wait for it; returns its status or -errno. */
int tern_aq_exec(struct tern_aq *aq, struct tern_aq_cmd *cmd,
		 struct tern_aq_cpl *cpl, int timeout_ms);

/* Convenience wrappers: return a TERN_STS_* or -errno. */
int tern_cmd_simple(struct tern_aq *aq, uint8_t op, uint16_t vf);
int tern_identify(struct tern_aq *aq, struct vfio_container *c, uint16_t vf,
		  struct tern_identify *id);
int tern_query_size(struct tern_aq *aq, uint16_t vf, uint64_t *full,
		    uint64_t *incr, int *has_base);
/* QUERY_SIZE's result2 (TERN_QUERY_*). */
int tern_query_flags(struct tern_aq *aq, uint16_t vf, uint32_t *flags);
/* Save a whole image into buf (size len) in chunks of chunk bytes. */
int tern_save(struct tern_aq *aq, struct vfio_container *c, uint16_t vf,
	      int incremental, void *buf, size_t len, size_t chunk,
	      size_t *size);
/* Load an image from buf in chunks; *applied tells if it was applied. */
int tern_load(struct tern_aq *aq, struct vfio_container *c, uint16_t vf,
	      const void *buf, size_t len, size_t chunk, int *applied);
int tern_dirty_start(struct tern_aq *aq, struct vfio_container *c,
		     uint16_t vf, const struct tern_range *ranges, uint32_t nr,
		     uint8_t page_shift);
/* Report and clear; runs[] gets up to max runs, *more if truncated. */
int tern_dirty_report(struct tern_aq *aq, struct vfio_container *c,
		      uint16_t vf, uint64_t iova, uint64_t len,
		      struct tern_range *runs, uint32_t max, uint32_t *nr,
		      uint64_t *pages, int *more);

/* One VF descriptor queue */
struct tern_vfq {
	void *regs;			/* VF BAR0 */
	unsigned int q;
	struct tern_desc *ring;
	uint64_t ring_iova;
	uint32_t size;
	uint32_t tail;
};

int tern_vfq_init(struct tern_vfq *vq, struct vfio_container *c, void *regs,
		  unsigned int q, uint32_t size);
/* (Re)program an allocated ring into a VF's queue; TAIL starts at 0. */
int tern_vfq_enable(struct tern_vfq *vq, void *regs);
/* Write a descriptor at the tail; ring the doorbell if ring is set. */
void tern_vfq_add(struct tern_vfq *vq, const struct tern_desc *d, int ring);
void tern_vfq_ring(struct tern_vfq *vq);
uint32_t tern_vfq_head(struct tern_vfq *vq);
/* Wait until HEAD reaches TAIL; 0 or -ETIMEDOUT. */
int tern_vfq_wait_idle(struct tern_vfq *vq, int timeout_ms);

static inline uint32_t tern_q_reg(struct tern_vfq *vq, unsigned int reg)
{
	return mmio_read32(vq->regs, TERN_VF_REG_Q(vq->q) + reg);
}

/* Reference CRC32C (raw register, as the device computes it). */
uint32_t tern_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
