// SPDX-License-Identifier: GPL-2.0
/*
 * Userspace drivers for the tern admin queue and VF queues (tern_util.h).
 */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "tern_util.h"

#define cpu_to_le16 htole16
#define cpu_to_le32 htole32
#define cpu_to_le64 htole64
#define le16_to_cpu le16toh
#define le32_to_cpu le32toh
#define le64_to_cpu le64toh

#define TERN_XFER_MAX_SG	64

int tern_aq_init(struct tern_aq *aq, struct vfio_container *c, void *regs,
		 uint32_t entries)
{
	uint64_t cmd_iova, cpl_iova;

	memset(aq, 0, sizeof(*aq));
	aq->regs = regs;
	aq->entries = entries;
	aq->phase = 1;
	aq->cmd = vfio_dma_alloc(c, entries * sizeof(*aq->cmd), 4096,
				 &cmd_iova);
	aq->cpl = vfio_dma_alloc(c, entries * sizeof(*aq->cpl), 4096,
				 &cpl_iova);
	if (!aq->cmd || !aq->cpl)
		return -ENOMEM;
	mmio_write32(regs, TERN_PF_REG_CTRL, 0);
	mmio_write64lh(regs, TERN_PF_REG_AQ_CMD_BASE_LO, cmd_iova);
	mmio_write32(regs, TERN_PF_REG_AQ_CMD_SIZE, entries);
	mmio_write64lh(regs, TERN_PF_REG_AQ_CPL_BASE_LO, cpl_iova);
	mmio_write32(regs, TERN_PF_REG_AQ_CPL_SIZE, entries);
	mmio_write32(regs, TERN_PF_REG_CTRL, TERN_PF_CTRL_ENABLE);
	if (!(mmio_read32(regs, TERN_PF_REG_STATUS) & TERN_PF_STS_READY))
		return -EIO;
	return 0;
}

void tern_aq_disable(struct tern_aq *aq)
{
	mmio_write32(aq->regs, TERN_PF_REG_CTRL, 0);
}

uint16_t tern_aq_post(struct tern_aq *aq, struct tern_aq_cmd *cmd)
{
	cmd->tag = cpu_to_le16(aq->next_tag++);
	aq->cmd[aq->tail] = *cmd;
	aq->tail = (aq->tail + 1) % aq->entries;
	return le16_to_cpu(cmd->tag);
}

void tern_aq_ring(struct tern_aq *aq)
{
	__sync_synchronize();
	mmio_write32(aq->regs, TERN_PF_REG_AQ_CMD_TAIL, aq->tail);
}

int tern_aq_reap(struct tern_aq *aq, struct tern_aq_cpl *cpl, int timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	volatile struct tern_aq_cpl *e = &aq->cpl[aq->cpl_head];

	while ((le16_to_cpu(e->flags) & TERN_CPL_F_PHASE) != aq->phase) {
		if (now_ms() > end)
			return -ETIMEDOUT;
		usleep(50);
	}
	__sync_synchronize();
	*cpl = *(struct tern_aq_cpl *)e;
	if (++aq->cpl_head == aq->entries) {
		aq->cpl_head = 0;
		aq->phase = !aq->phase;
	}
	mmio_write32(aq->regs, TERN_PF_REG_AQ_CPL_HEAD, aq->cpl_head);
	return 0;
}

int tern_aq_exec(struct tern_aq *aq, struct tern_aq_cmd *cmd,
		 struct tern_aq_cpl *cpl, int timeout_ms)
{
	uint16_t tag = tern_aq_post(aq, cmd);
	int ret;

	tern_aq_ring(aq);
	ret = tern_aq_reap(aq, cpl, timeout_ms);
	if (ret)
		return ret;
	if (le16_to_cpu(cpl->tag) != tag)
		return -EPROTO;
	return le16_to_cpu(cpl->status);
}

static int exec(struct tern_aq *aq, struct tern_aq_cmd *cmd,
		struct tern_aq_cpl *cpl)
{
	struct tern_aq_cpl dummy;

	return tern_aq_exec(aq, cmd, cpl ? cpl : &dummy, 5000);
}

int tern_cmd_simple(struct tern_aq *aq, uint8_t op, uint16_t vf)
{
	struct tern_aq_cmd cmd = { .opcode = op, .vf = cpu_to_le16(vf) };

	return exec(aq, &cmd, NULL);
}

int tern_identify(struct tern_aq *aq, struct vfio_container *c, uint16_t vf,
		  struct tern_identify *id)
{
	struct tern_aq_cmd cmd = { .opcode = TERN_OP_IDENTIFY,
				   .vf = cpu_to_le16(vf) };
	uint64_t iova;
	void *buf = vfio_dma_alloc(c, 4096, 4096, &iova);
	int ret;

	if (!buf)
		return -ENOMEM;
	cmd.identify.addr = cpu_to_le64(iova);
	cmd.identify.len = cpu_to_le32(4096);
	ret = exec(aq, &cmd, NULL);
	memcpy(id, buf, sizeof(*id));
	return ret;
}

/* One QUERY_SIZE of @vf; its answer in @cpl. */
static int query_size(struct tern_aq *aq, uint16_t vf, struct tern_aq_cpl *cpl)
{
	struct tern_aq_cmd cmd = { .opcode = TERN_OP_QUERY_SIZE,
				   .vf = cpu_to_le16(vf) };

	return exec(aq, &cmd, cpl);
}

int tern_query_size(struct tern_aq *aq, uint16_t vf, uint64_t *full,
		    uint64_t *incr, int *has_base)
{
	struct tern_aq_cpl cpl;
	int ret = query_size(aq, vf, &cpl);

	if (ret)
		return ret;
	*full = le64_to_cpu(cpl.result0);
	*incr = le64_to_cpu(cpl.result1);
	*has_base = !!(le32_to_cpu(cpl.result2) & TERN_QUERY_HAS_BASE);
	return 0;
}

int tern_query_flags(struct tern_aq *aq, uint16_t vf, uint32_t *flags)
{
	struct tern_aq_cpl cpl;
	int ret = query_size(aq, vf, &cpl);

	if (ret)
		return ret;
	*flags = le32_to_cpu(cpl.result2);
	return 0;
}

/* Describe [buf, buf+len) as SG entries of at most 4 KiB + remainder. */
static uint32_t build_sg(struct vfio_container *c, struct tern_sg *sg,
			 const void *buf, size_t len)
{
	uint32_t n = 0;
	size_t step = len / 3 + 1;	/* a few uneven entries */

	while (len && n < TERN_XFER_MAX_SG) {
		size_t l = len < step ? len : step;

		sg[n].addr = cpu_to_le64(vfio_iova(c, buf));
		sg[n].len = cpu_to_le32(l);
		sg[n].rsvd = 0;
		buf = (const char *)buf + l;
		len -= l;
		n++;
	}
	return n;
}

int tern_save(struct tern_aq *aq, struct vfio_container *c, uint16_t vf,
	      int incremental, void *buf, size_t len, size_t chunk,
	      size_t *size)
{
	struct tern_sg *sg;
	uint64_t sg_iova, off = 0;
	int ret;

	sg = vfio_dma_alloc(c, TERN_XFER_MAX_SG * sizeof(*sg), 64, &sg_iova);
	if (!sg)
		return -ENOMEM;
	for (;;) {
		struct tern_aq_cmd cmd = { .opcode = TERN_OP_SAVE,
					   .vf = cpu_to_le16(vf) };
		struct tern_aq_cpl cpl;
		size_t l = len - off < chunk ? len - off : chunk;

		if (!l)
			return -ENOSPC;
		if (!off)
			cmd.flags = TERN_SAVE_F_START |
				    (incremental ? TERN_SAVE_F_INCREMENTAL : 0);
		cmd.xfer.offset = cpu_to_le64(off);
		cmd.xfer.sg_addr = cpu_to_le64(sg_iova);
		cmd.xfer.sg_count = cpu_to_le32(build_sg(c, sg,
						(char *)buf + off, l));
		ret = exec(aq, &cmd, &cpl);
		if (ret)
			return ret;
		off += TERN_XFER_BYTES(le64_to_cpu(cpl.result0));
		if (!(le32_to_cpu(cpl.result2) & TERN_XFER_MORE))
			break;
	}
	*size = off;
	return 0;
}

int tern_load(struct tern_aq *aq, struct vfio_container *c, uint16_t vf,
	      const void *buf, size_t len, size_t chunk, int *applied)
{
	struct tern_sg *sg;
	uint64_t sg_iova, off = 0;
	int ret;

	*applied = 0;
	sg = vfio_dma_alloc(c, TERN_XFER_MAX_SG * sizeof(*sg), 64, &sg_iova);
	if (!sg)
		return -ENOMEM;
	while (off < len) {
		struct tern_aq_cmd cmd = { .opcode = TERN_OP_LOAD,
					   .vf = cpu_to_le16(vf) };
		struct tern_aq_cpl cpl;
		size_t l = len - off < chunk ? len - off : chunk;

		if (!off)
			cmd.flags = TERN_LOAD_F_START;
		cmd.xfer.offset = cpu_to_le64(off);
		cmd.xfer.sg_addr = cpu_to_le64(sg_iova);
		cmd.xfer.sg_count = cpu_to_le32(build_sg(c, sg,
						(const char *)buf + off, l));
		ret = exec(aq, &cmd, &cpl);
		if (ret)
			return ret;
		off += TERN_XFER_BYTES(le64_to_cpu(cpl.result0));
		if (le32_to_cpu(cpl.result2) & TERN_LOAD_APPLIED) {
			*applied = 1;
			return 0;
		}
		if (!TERN_XFER_BYTES(le64_to_cpu(cpl.result0)))
			return -EPROTO;
	}
	return 0;
}

int tern_dirty_start(struct tern_aq *aq, struct vfio_container *c,
		     uint16_t vf, const struct tern_range *ranges, uint32_t nr,
		     uint8_t page_shift)
{
	struct tern_aq_cmd cmd = { .opcode = TERN_OP_DIRTY_START,
				   .vf = cpu_to_le16(vf) };
	uint64_t iova;
	struct tern_range *r = vfio_dma_alloc(c, nr * sizeof(*r) + 1, 64,
					      &iova);
	uint32_t i;

	if (!r)
		return -ENOMEM;
	for (i = 0; i < nr; i++) {
		r[i].iova = cpu_to_le64(ranges[i].iova);
		r[i].len = cpu_to_le64(ranges[i].len);
	}
	cmd.dirty_start.ranges_addr = cpu_to_le64(iova);
	cmd.dirty_start.nr_ranges = cpu_to_le32(nr);
	cmd.dirty_start.page_shift = page_shift;
	return exec(aq, &cmd, NULL);
}

int tern_dirty_report(struct tern_aq *aq, struct vfio_container *c,
		      uint16_t vf, uint64_t iova, uint64_t len,
		      struct tern_range *runs, uint32_t max, uint32_t *nr,
		      uint64_t *pages, int *more)
{
	struct tern_aq_cmd cmd = { .opcode = TERN_OP_DIRTY_REPORT,
				   .vf = cpu_to_le16(vf) };
	struct tern_aq_cpl cpl;
	uint64_t buf_iova;
	struct tern_range *buf = vfio_dma_alloc(c, max * sizeof(*buf), 64,
						&buf_iova);
	uint32_t i;
	int ret;

	if (!buf)
		return -ENOMEM;
	cmd.dirty_report.iova = cpu_to_le64(iova);
	cmd.dirty_report.len = cpu_to_le64(len);
	cmd.dirty_report.buf_addr = cpu_to_le64(buf_iova);
	cmd.dirty_report.buf_entries = cpu_to_le32(max);
	ret = exec(aq, &cmd, &cpl);
	if (ret)
		return ret;
	*nr = le64_to_cpu(cpl.result0);
	*pages = le64_to_cpu(cpl.result1);
	*more = !!(le32_to_cpu(cpl.result2) & TERN_REPORT_MORE);
	if (*nr > max)
		return -EOVERFLOW;
	for (i = 0; i < *nr; i++) {
		runs[i].iova = le64_to_cpu(buf[i].iova);
		runs[i].len = le64_to_cpu(buf[i].len);
	}
	return 0;
}

int tern_vfq_init(struct tern_vfq *vq, struct vfio_container *c, void *regs,
		  unsigned int q, uint32_t size)
{
	memset(vq, 0, sizeof(*vq));
	vq->q = q;
	vq->size = size;
	vq->ring = vfio_dma_alloc(c, size * sizeof(*vq->ring), 4096,
				  &vq->ring_iova);
	if (!vq->ring)
		return -ENOMEM;
	return tern_vfq_enable(vq, regs);
}

int tern_vfq_enable(struct tern_vfq *vq, void *regs)
{
	unsigned int base = TERN_VF_REG_Q(vq->q);

	vq->regs = regs;
	vq->tail = 0;
	mmio_write32(regs, base + TERN_Q_CTRL, 0);
	mmio_write64lh(regs, base + TERN_Q_BASE_LO, vq->ring_iova);
	mmio_write32(regs, base + TERN_Q_SIZE, vq->size);
	mmio_write32(regs, base + TERN_Q_MSIX, vq->q % TERN_VF_MSIX_VECTORS);
	mmio_write32(regs, base + TERN_Q_CTRL,
		     TERN_Q_CTRL_ENABLE | TERN_Q_CTRL_INT_EN);
	if (!(mmio_read32(regs, base + TERN_Q_STATUS) & TERN_Q_STS_ENABLED))
		return -EIO;
	return 0;
}

void tern_vfq_add(struct tern_vfq *vq, const struct tern_desc *d, int ring)
{
	vq->ring[vq->tail] = *d;
	vq->tail = (vq->tail + 1) % vq->size;
	if (ring)
		tern_vfq_ring(vq);
}

void tern_vfq_ring(struct tern_vfq *vq)
{
	__sync_synchronize();
	mmio_write32(vq->regs, TERN_VF_REG_Q(vq->q) + TERN_Q_TAIL, vq->tail);
}

uint32_t tern_vfq_head(struct tern_vfq *vq)
{
	return tern_q_reg(vq, TERN_Q_HEAD);
}

int tern_vfq_wait_idle(struct tern_vfq *vq, int timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;

	while (tern_vfq_head(vq) != vq->tail) {
		if (now_ms() > end)
			return -ETIMEDOUT;
		usleep(100);
	}
	return 0;
}

uint32_t tern_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	int k;

	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78 : crc >> 1;
	}
	return crc;
}
