/*
 * tern PF: registers, admin queue, SR-IOV and fault injection
 *
 * Copyright (c) 2025 The tern authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The programming interface is Documentation/tern/device.rst in the tern
 * repository; the definitions are in tern_hw.h.
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/pci/msix.h"
#include "hw/pci/pcie.h"
#include "hw/pci/pcie_sriov.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "system/dma.h"
#include "tern.h"

#define TERN_PF_CAP_PCIE        0xa0
#define TERN_PF_CAP_ARI         0x100
#define TERN_PF_CAP_SRIOV       0x160
#define TERN_PF_CAP_ACS         0x1a0
#define TERN_VF_OFFSET          1
#define TERN_VF_STRIDE          1

/* Completion latency per opcode, in ns of virtual time. */
static int64_t tern_cmd_latency(uint8_t opcode)
{
    switch (opcode) {
    case TERN_OP_QUIESCE:
    case TERN_OP_FREEZE:
    case TERN_OP_RESUME:
    case TERN_OP_QUERY_SIZE:
        return 20 * SCALE_US;
    case TERN_OP_SAVE:
    case TERN_OP_LOAD:
        return 500 * SCALE_US;
    default:
        return 50 * SCALE_US;
    }
}

uint64_t tern_max_image_size(uint64_t devmem_size)
{
    uint64_t pages = devmem_size >> TERN_DEVMEM_PAGE_SHIFT;

    return TERN_IMAGE_HDR_SIZE + TERN_IMAGE_REGS_SIZE +
           ROUND_UP(pages * 4, 8) + pages * TERN_DEVMEM_PAGE_SIZE;
}

TernVfState *tern_pf_get_vf(TernPfState *pf, uint16_t vf_num)
{
    PCIDevice *dev = PCI_DEVICE(pf);
    uint16_t num = MIN(pcie_sriov_num_vfs(dev), pf->total_vfs);

    if (vf_num >= num) {
        return NULL;
    }
    return TERN_VF(pcie_sriov_get_vf_at_index(dev, vf_num));
}

static bool tern_dbg_fire(TernPfState *pf, uint32_t *reg)
{
    if (!pf->debug_enabled || !(*reg & TERN_DBG_ARM)) {
        return false;
    }
    *reg &= ~TERN_DBG_ARM;
    pf->dbg_fired++;
    return true;
}

static bool tern_dbg_vf_match(uint32_t reg, uint16_t vf_num)
{
    uint16_t want = reg & TERN_DBG_VF_MASK;

    return want == TERN_VF_NONE || want == vf_num;
}

static bool tern_dbg_fire_vf(TernPfState *pf, uint32_t *reg, uint16_t vf_num)
{
    return tern_dbg_vf_match(*reg, vf_num) && tern_dbg_fire(pf, reg);
}

bool tern_pf_fire_dma_fault(TernPfState *pf, uint16_t vf_num)
{
    return tern_dbg_fire_vf(pf, &pf->dbg_dma_fail, vf_num);
}

bool tern_pf_fire_save_fault(TernPfState *pf, uint16_t vf_num)
{
    return tern_dbg_fire_vf(pf, &pf->dbg_corrupt_save, vf_num);
}

bool tern_pf_fire_resize_fault(TernPfState *pf, uint16_t vf_num)
{
    return tern_dbg_fire_vf(pf, &pf->dbg_save_resize, vf_num);
}

/* Most dirty pages a tracker holds before it overflows. */
uint32_t tern_pf_dirty_limit(TernPfState *pf)
{
    if (pf->dbg_dirty_limit) {
        return MIN(pf->dbg_dirty_limit, TERN_DIRTY_MAX_PAGES);
    }
    return TERN_DIRTY_MAX_PAGES;
}

/* Admin commands */

static uint16_t tern_cmd_identify(TernPfState *pf, TernVfState *vf,
                                  const struct tern_aq_cmd *cmd, TernCmd *c)
{
    PCIDevice *dev = PCI_DEVICE(pf);
    struct tern_identify id = { 0 };
    uint64_t addr = le64_to_cpu(cmd->identify.addr);
    uint32_t len = le32_to_cpu(cmd->identify.len);

    if (len < sizeof(id)) {
        return TERN_STS_INVALID_FIELD;
    }
    id.magic = cpu_to_le32(TERN_PF_MAGIC);
    id.if_version = cpu_to_le16(TERN_IF_VERSION_MAJOR << 8 |
                                TERN_IF_VERSION_MINOR);
    id.image_version = cpu_to_le16(TERN_IMAGE_VERSION);
    id.total_vfs = cpu_to_le16(pf->total_vfs);
    id.num_vfs = cpu_to_le16(MIN(pcie_sriov_num_vfs(dev), pf->total_vfs));
    id.aq_max_entries = cpu_to_le16(TERN_AQ_MAX_ENTRIES);
    id.aq_max_inflight = cpu_to_le16(TERN_AQ_MAX_INFLIGHT);
    id.vf_nr_queues = cpu_to_le16(TERN_VF_NR_QUEUES);
    id.vf_msix_vectors = cpu_to_le16(TERN_VF_MSIX_VECTORS);
    id.vf_max_queue_entries = cpu_to_le16(TERN_Q_MAX_ENTRIES);
    id.max_sg_entries = cpu_to_le16(pf->max_sg);
    id.vf_max_desc_len = cpu_to_le32(TERN_DESC_MAX_LEN);
    id.vf_devmem_size = cpu_to_le64(pf->devmem_size);
    id.max_image_size = cpu_to_le64(tern_max_image_size(pf->devmem_size));
    id.dirty_max_ranges = cpu_to_le32(TERN_DIRTY_MAX_RANGES);
    id.dirty_page_shifts = cpu_to_le32(
        MAKE_64BIT_MASK(TERN_DIRTY_MIN_PAGE_SHIFT,
                        TERN_DIRTY_MAX_PAGE_SHIFT -
                        TERN_DIRTY_MIN_PAGE_SHIFT + 1));
    id.dirty_max_pages = cpu_to_le32(TERN_DIRTY_MAX_PAGES);
    id.devmem_page_size = cpu_to_le32(TERN_DEVMEM_PAGE_SIZE);
    if (vf) {
        uint16_t flags = 0;

        flags |= vf->dirty.active ? TERN_VF_F_TRACKING : 0;
        flags |= vf->has_base ? TERN_VF_F_SAVE_BASE : 0;
        flags |= vf->save_buf ? TERN_VF_F_SAVING : 0;
        flags |= vf->loading ? TERN_VF_F_LOADING : 0;
        flags |= vf->new_config ? TERN_VF_F_NEW_CONFIG : 0;
        id.vf_state = cpu_to_le16(vf->mig_state);
        id.vf_flags = cpu_to_le16(flags);
    } else {
        id.vf_state = cpu_to_le16(TERN_VF_STATE_NONE);
    }
    if (pci_dma_write(dev, addr, &id, sizeof(id)) != MEMTX_OK) {
        return TERN_STS_DMA_ERROR;
    }
    c->result0 = sizeof(id);
    return TERN_STS_SUCCESS;
}

static uint16_t tern_cmd_suspend(TernVfState *vf, uint8_t opcode)
{
    switch (opcode) {
    case TERN_OP_QUIESCE:
        tern_vf_quiesce(vf);
        break;
    case TERN_OP_FREEZE:
        if (vf->mig_state == TERN_VF_STATE_RUNNING) {
            return TERN_STS_INVALID_STATE;
        }
        tern_vf_freeze(vf);
        break;
    case TERN_OP_RESUME:
        if (vf->mig_state == TERN_VF_STATE_RUNNING) {
            return TERN_STS_INVALID_STATE;
        }
        tern_vf_resume(vf);
        break;
    }
    return TERN_STS_SUCCESS;
}

static uint16_t tern_cmd_query(TernVfState *vf, TernCmd *c)
{
    c->result0 = tern_state_size(vf, false);
    if (vf->has_base) {
        c->result1 = tern_state_size(vf, true);
        c->result2 = TERN_QUERY_HAS_BASE |
                     (vf->new_config ? TERN_QUERY_NEW_CONFIG : 0);
    }
    return TERN_STS_SUCCESS;
}

/* Insert a fetched command in deadline order, after equal deadlines. */
static void tern_aq_queue(TernPfState *pf, TernCmd *c)
{
    TernCmd *pos;

    QTAILQ_FOREACH(pos, &pf->pending, next) {
        if (pos->deadline > c->deadline) {
            QTAILQ_INSERT_BEFORE(pos, c, next);
            return;
        }
    }
    QTAILQ_INSERT_TAIL(&pf->pending, c, next);
}

/*
 * End the command of cmd->vf tagged abort.tag, if the device still holds
 * it: it completes with ABORTED now, and a command that has not executed
 * yet (stuck, or with late DMA) never will.  It must complete before the
 * ABORT itself, whose deadline was taken at the start of the fetch: the
 * commands fetched before it in the same burst may have taken longer to
 * execute than the ABORT's latency.  The VF number is not checked
 * against NumVFs: it only names the command as it was submitted.
 */
static uint16_t tern_cmd_abort(TernPfState *pf, const struct tern_aq_cmd *cmd,
                               TernCmd *c)
{
    uint16_t tag = le16_to_cpu(cmd->abort.tag);
    TernCmd *t;

    if (cmd->flags) {
        return TERN_STS_INVALID_FIELD;
    }
    QTAILQ_FOREACH(t, &pf->pending, next) {
        if (t->tag == tag && t->cmd.vf == cmd->vf) {
            break;
        }
    }
    if (t) {
        QTAILQ_REMOVE(&pf->pending, t, next);
        t->late = false;
        t->status = TERN_STS_ABORTED;
        t->result0 = t->result1 = t->result2 = 0;
        t->deadline = MIN(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL),
                          c->deadline);
        tern_aq_queue(pf, t);
        c->result0 = 1;
    }
    return TERN_STS_SUCCESS;
}

static uint16_t tern_cmd_exec(TernPfState *pf, const struct tern_aq_cmd *cmd,
                              TernCmd *c)
{
    uint16_t vf_num = le16_to_cpu(cmd->vf);
    TernVfState *vf;

    if (cmd->opcode < TERN_OP_IDENTIFY || cmd->opcode > TERN_OP_ABORT) {
        return TERN_STS_INVALID_OPCODE;
    }
    if (cmd->opcode == TERN_OP_ABORT) {
        return tern_cmd_abort(pf, cmd, c);
    }
    vf = tern_pf_get_vf(pf, vf_num);
    if (cmd->opcode == TERN_OP_IDENTIFY) {
        if (!vf && vf_num != TERN_VF_NONE) {
            return TERN_STS_INVALID_VF;
        }
        if (cmd->flags) {
            return TERN_STS_INVALID_FIELD;
        }
        return tern_cmd_identify(pf, vf, cmd, c);
    }
    if (!vf) {
        return TERN_STS_INVALID_VF;
    }
    if (cmd->opcode != TERN_OP_SAVE && cmd->opcode != TERN_OP_LOAD &&
        cmd->flags) {
        return TERN_STS_INVALID_FIELD;
    }

    switch (cmd->opcode) {
    case TERN_OP_QUIESCE:
    case TERN_OP_FREEZE:
    case TERN_OP_RESUME:
        return tern_cmd_suspend(vf, cmd->opcode);
    case TERN_OP_QUERY_SIZE:
        return tern_cmd_query(vf, c);
    case TERN_OP_SAVE:
        return tern_state_save(pf, vf, cmd, c);
    case TERN_OP_LOAD:
        return tern_state_load(pf, vf, cmd, c);
    case TERN_OP_DIRTY_START:
        return tern_dirty_start(pf, vf, cmd, c);
    case TERN_OP_DIRTY_REPORT:
        return tern_dirty_report(pf, vf, cmd, c);
    case TERN_OP_DIRTY_STOP:
        return tern_dirty_stop(vf);
    }
    return TERN_STS_INVALID_OPCODE;
}

/* Admin queue */

static void tern_aq_clear(TernPfState *pf)
{
    TernCmd *c, *tmp;

    QTAILQ_FOREACH_SAFE(c, &pf->pending, next, tmp) {
        QTAILQ_REMOVE(&pf->pending, c, next);
        g_free(c);
    }
    pf->inflight = 0;
    pf->aq_gen++;
    timer_del(pf->aq_timer);
    qemu_bh_cancel(pf->aq_bh);
}

static void tern_aq_disable(TernPfState *pf)
{
    tern_aq_clear(pf);
    pf->ctrl &= ~TERN_PF_CTRL_ENABLE;
    pf->status = 0;
    pf->cmd_head = pf->cmd_tail = 0;
    pf->cpl_head = pf->cpl_tail = 0;
    pf->phase = true;
}

static void tern_aq_halt(TernPfState *pf, uint8_t reason)
{
    qemu_log_mask(LOG_GUEST_ERROR, "tern: admin queue halted (%u)\n", reason);
    tern_aq_clear(pf);
    pf->status &= ~(TERN_PF_STS_READY | TERN_PF_STS_ERR_MASK);
    pf->status |= TERN_PF_STS_HALTED | reason << TERN_PF_STS_ERR_SHIFT;
}

static void tern_aq_enable(TernPfState *pf)
{
    tern_aq_disable(pf);
    pf->ctrl |= TERN_PF_CTRL_ENABLE;
    if (pf->cmd_size < TERN_AQ_MIN_ENTRIES ||
        pf->cmd_size > TERN_AQ_MAX_ENTRIES ||
        pf->cpl_size < TERN_AQ_MIN_ENTRIES ||
        pf->cpl_size > TERN_AQ_MAX_ENTRIES ||
        pf->cmd_base % TERN_AQ_CMD_ALIGN ||
        pf->cpl_base % TERN_AQ_CPL_ALIGN) {
        tern_aq_halt(pf, TERN_AQ_ERR_CONFIG);
        return;
    }
    pf->status = TERN_PF_STS_READY;
}

static bool tern_aq_ready(TernPfState *pf)
{
    return pf->status & TERN_PF_STS_READY;
}

/*
 * Execute a command now, on behalf of the queue it was fetched from.
 * Taking an image may drop the BQL (tern_vf_sync_dirty()), and a vCPU
 * may disable or reset the queue meanwhile: then the command is freed
 * and false returned.  The command must not be on the pending list.
 */
static bool tern_aq_exec_now(TernPfState *pf, TernCmd *c)
{
    uint32_t gen = pf->aq_gen;

    c->status = tern_cmd_exec(pf, &c->cmd, c);
    if (gen != pf->aq_gen) {
        g_free(c);
        return false;
    }
    return true;
}

/*
 * A command with late DMA (TERN_DBG_DELAY_LATE_DMA) executes, data
 * transfer included, only now that its completion is due: into or from
 * whatever the buffers it named hold by now.
 */
static bool tern_aq_exec_late(TernPfState *pf, TernCmd *c)
{
    QTAILQ_REMOVE(&pf->pending, c, next);
    c->late = false;
    if (!tern_aq_exec_now(pf, c)) {
        return false;
    }
    QTAILQ_INSERT_HEAD(&pf->pending, c, next);
    return true;
}

/* Post the completions whose deadline has passed, in deadline order. */
static void tern_aq_post(TernPfState *pf)
{
    PCIDevice *dev = PCI_DEVICE(pf);
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    bool posted = false;
    TernCmd *c;

    while ((c = QTAILQ_FIRST(&pf->pending)) && c->deadline <= now) {
        struct tern_aq_cpl cpl = { 0 };
        uint64_t addr = pf->cpl_base + (uint64_t)pf->cpl_tail * sizeof(cpl);
        uint16_t flags = pf->phase ? TERN_CPL_F_PHASE : 0;

        if ((pf->cpl_tail + 1) % pf->cpl_size == pf->cpl_head) {
            break;          /* ring full: wait for the CPL_HEAD doorbell */
        }
        if (c->late && !tern_aq_exec_late(pf, c)) {
            return;
        }
        cpl.result0 = cpu_to_le64(c->result0);
        cpl.result1 = cpu_to_le64(c->result1);
        cpl.result2 = cpu_to_le32(c->result2);
        cpl.cmd_head = cpu_to_le16(pf->cmd_head);
        cpl.tag = cpu_to_le16(c->tag);
        cpl.status = cpu_to_le16(c->status);
        /* Everything but the phase first, then the phase. */
        if (pci_dma_write(dev, addr, &cpl,
                          offsetof(struct tern_aq_cpl, flags)) != MEMTX_OK ||
            pci_dma_write(dev, addr + offsetof(struct tern_aq_cpl, flags),
                          &flags, sizeof(flags)) != MEMTX_OK) {
            tern_aq_halt(pf, TERN_AQ_ERR_CPL_DMA);
            return;
        }
        QTAILQ_REMOVE(&pf->pending, c, next);
        g_free(c);
        pf->inflight--;
        posted = true;
        if (++pf->cpl_tail == pf->cpl_size) {
            pf->cpl_tail = 0;
            pf->phase = !pf->phase;
        }
    }
    if (posted && msix_enabled(dev)) {
        msix_notify(dev, TERN_PF_MSIX_VEC_AQ);
    }
    c = QTAILQ_FIRST(&pf->pending);
    if (c && c->deadline > now && c->deadline != TERN_CMD_STUCK) {
        timer_mod(pf->aq_timer, c->deadline);
    }
}

static bool tern_dbg_fire_op(TernPfState *pf, uint32_t *reg, uint8_t opcode)
{
    return (*reg & TERN_DBG_OPCODE_MASK) == opcode && tern_dbg_fire(pf, reg);
}

/*
 * Apply the armed command faults to a command just fetched.  Returns
 * true if the command must not execute now: it failed, is stuck, or its
 * execution waits for its completion (late DMA).
 */
static bool tern_aq_inject(TernPfState *pf, TernCmd *c)
{
    uint8_t opcode = c->cmd.opcode;
    uint16_t vf_num = le16_to_cpu(c->cmd.vf);
    bool failed = false;

    if (tern_dbg_vf_match(pf->dbg_fail_vf, vf_num) &&
        tern_dbg_fire_op(pf, &pf->dbg_fail_cmd, opcode)) {
        c->status = pf->dbg_fail_status & 0xffff;
        failed = true;
    } else if (tern_dbg_vf_match(pf->dbg_stuck_vf, vf_num) &&
               tern_dbg_fire_op(pf, &pf->dbg_stuck_cmd, opcode)) {
        c->deadline = TERN_CMD_STUCK;
        return true;
    }
    if (tern_dbg_fire_op(pf, &pf->dbg_delay_cmd, opcode)) {
        c->deadline += (int64_t)MIN(pf->dbg_delay_ms,
                                    TERN_DBG_MAX_DELAY_MS) * SCALE_MS;
        /* ABORT acts at fetch: it must precede its target's completion. */
        c->late = !failed && opcode != TERN_OP_ABORT &&
                  (pf->dbg_delay_cmd & TERN_DBG_DELAY_LATE_DMA);
    }
    return failed || c->late;
}

static void tern_aq_fetch(TernPfState *pf)
{
    PCIDevice *dev = PCI_DEVICE(pf);

    /*
     * A burst of commands is fetched at one instant: their latencies,
     * not the host's speed at emulating the fetches, order their
     * completions.
     */
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);

    while (tern_aq_ready(pf) && pf->cmd_head != pf->cmd_tail &&
           pf->inflight < TERN_AQ_MAX_INFLIGHT) {
        uint64_t addr = pf->cmd_base +
                        (uint64_t)pf->cmd_head * TERN_AQ_CMD_SIZE;
        TernCmd *c = g_new0(TernCmd, 1);

        if (pci_dma_read(dev, addr, &c->cmd, sizeof(c->cmd)) != MEMTX_OK) {
            g_free(c);
            tern_aq_halt(pf, TERN_AQ_ERR_CMD_DMA);
            return;
        }
        pf->cmd_head = (pf->cmd_head + 1) % pf->cmd_size;

        c->tag = le16_to_cpu(c->cmd.tag);
        c->deadline = now + tern_cmd_latency(c->cmd.opcode);
        if (!tern_aq_inject(pf, c) && !tern_aq_exec_now(pf, c)) {
            return;
        }
        tern_aq_queue(pf, c);
        pf->inflight++;
    }
}

static void tern_aq_run(void *opaque)
{
    TernPfState *pf = opaque;

    if (!tern_aq_ready(pf)) {
        return;
    }
    tern_aq_fetch(pf);
    if (tern_aq_ready(pf)) {
        tern_aq_post(pf);
    }
    /* Posting may have freed in-flight slots. */
    if (tern_aq_ready(pf) && pf->cmd_head != pf->cmd_tail &&
        pf->inflight < TERN_AQ_MAX_INFLIGHT) {
        qemu_bh_schedule(pf->aq_bh);
    }
}

static void tern_pf_function_reset(TernPfState *pf)
{
    uint16_t i;

    tern_aq_disable(pf);
    for (i = 0; i < pf->total_vfs; i++) {
        TernVfState *vf = tern_pf_get_vf(pf, i);

        if (vf) {
            tern_vf_mig_reset(vf);
        }
    }
}

/* BAR0 */

static uint64_t tern_pf_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    TernPfState *pf = opaque;

    switch (addr) {
    case TERN_PF_REG_MAGIC:
        return TERN_PF_MAGIC;
    case TERN_PF_REG_VERSION:
        return TERN_IF_VERSION_MAJOR << 16 | TERN_IF_VERSION_MINOR;
    case TERN_PF_REG_AQ_CAP:
        return TERN_AQ_MAX_ENTRIES |
               TERN_AQ_MAX_INFLIGHT << TERN_AQ_CAP_MAX_INFLIGHT_SHIFT;
    case TERN_PF_REG_DEV_CAP:
        return TERN_DEV_CAP_XFER_CRC | TERN_DEV_CAP_NEW_CONFIG |
               (pf->debug_enabled ? TERN_DEV_CAP_DEBUG : 0);
    case TERN_PF_REG_CTRL:
        return pf->ctrl;
    case TERN_PF_REG_STATUS:
        return pf->status;
    case TERN_PF_REG_AQ_CMD_BASE_LO:
        return (uint32_t)pf->cmd_base;
    case TERN_PF_REG_AQ_CMD_BASE_HI:
        return pf->cmd_base >> 32;
    case TERN_PF_REG_AQ_CMD_SIZE:
        return pf->cmd_size;
    case TERN_PF_REG_AQ_CMD_TAIL:
        return pf->cmd_tail;
    case TERN_PF_REG_AQ_CPL_BASE_LO:
        return (uint32_t)pf->cpl_base;
    case TERN_PF_REG_AQ_CPL_BASE_HI:
        return pf->cpl_base >> 32;
    case TERN_PF_REG_AQ_CPL_SIZE:
        return pf->cpl_size;
    case TERN_PF_REG_AQ_CPL_HEAD:
        return pf->cpl_head;
    case TERN_PF_REG_AQ_CMD_HEAD:
        return pf->cmd_head;
    case TERN_PF_REG_AQ_CPL_TAIL:
        return pf->cpl_tail;
    case TERN_PF_REG_AQ_INFLIGHT:
        return pf->inflight;
    }
    return 0;
}

static void tern_pf_doorbell(TernPfState *pf, uint32_t *reg, uint32_t size,
                             uint32_t val)
{
    if (!tern_aq_ready(pf)) {
        return;
    }
    if (val >= size) {
        qemu_log_mask(LOG_GUEST_ERROR, "tern: doorbell %u >= %u\n", val, size);
        pf->status |= TERN_PF_STS_DB_ERROR;
        return;
    }
    *reg = val;
    qemu_bh_schedule(pf->aq_bh);
}

static void tern_pf_mmio_write(void *opaque, hwaddr addr, uint64_t val,
                               unsigned size)
{
    TernPfState *pf = opaque;
    bool enabled = pf->ctrl & TERN_PF_CTRL_ENABLE;

    switch (addr) {
    case TERN_PF_REG_CTRL:
        if (val & TERN_PF_CTRL_RESET) {
            tern_pf_function_reset(pf);
            break;
        }
        if ((val & TERN_PF_CTRL_ENABLE) && !enabled) {
            tern_aq_enable(pf);
        } else if (!(val & TERN_PF_CTRL_ENABLE) && enabled) {
            tern_aq_disable(pf);
        }
        break;
    case TERN_PF_REG_AQ_CMD_BASE_LO:
        if (!enabled) {
            pf->cmd_base = deposit64(pf->cmd_base, 0, 32, val);
        }
        break;
    case TERN_PF_REG_AQ_CMD_BASE_HI:
        if (!enabled) {
            pf->cmd_base = deposit64(pf->cmd_base, 32, 32, val);
        }
        break;
    case TERN_PF_REG_AQ_CMD_SIZE:
        if (!enabled) {
            pf->cmd_size = val;
        }
        break;
    case TERN_PF_REG_AQ_CPL_BASE_LO:
        if (!enabled) {
            pf->cpl_base = deposit64(pf->cpl_base, 0, 32, val);
        }
        break;
    case TERN_PF_REG_AQ_CPL_BASE_HI:
        if (!enabled) {
            pf->cpl_base = deposit64(pf->cpl_base, 32, 32, val);
        }
        break;
    case TERN_PF_REG_AQ_CPL_SIZE:
        if (!enabled) {
            pf->cpl_size = val;
        }
        break;
    case TERN_PF_REG_AQ_CMD_TAIL:
        tern_pf_doorbell(pf, &pf->cmd_tail, pf->cmd_size, val);
        break;
    case TERN_PF_REG_AQ_CPL_HEAD:
        tern_pf_doorbell(pf, &pf->cpl_head, pf->cpl_size, val);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "tern: write to 0x%" HWADDR_PRIx "\n",
                      addr);
    }
}

static const MemoryRegionOps tern_pf_mmio_ops = {
    .read = tern_pf_mmio_read,
    .write = tern_pf_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 8,
    },
    .impl = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
};

/* BAR2: fault injection */

static uint64_t tern_dbg_read(void *opaque, hwaddr addr, unsigned size)
{
    TernPfState *pf = opaque;

    switch (addr) {
    case TERN_DBG_REG_MAGIC:
        return TERN_DBG_MAGIC;
    case TERN_DBG_REG_FAIL_CMD:
        return pf->dbg_fail_cmd;
    case TERN_DBG_REG_FAIL_VF:
        return pf->dbg_fail_vf;
    case TERN_DBG_REG_FAIL_STATUS:
        return pf->dbg_fail_status;
    case TERN_DBG_REG_DELAY_CMD:
        return pf->dbg_delay_cmd;
    case TERN_DBG_REG_DELAY_MS:
        return pf->dbg_delay_ms;
    case TERN_DBG_REG_DMA_FAIL:
        return pf->dbg_dma_fail;
    case TERN_DBG_REG_CORRUPT_SAVE:
        return pf->dbg_corrupt_save;
    case TERN_DBG_REG_FIRED:
        return pf->dbg_fired;
    case TERN_DBG_REG_STUCK_CMD:
        return pf->dbg_stuck_cmd;
    case TERN_DBG_REG_STUCK_VF:
        return pf->dbg_stuck_vf;
    case TERN_DBG_REG_SAVE_SHORT:
        return pf->dbg_save_short;
    case TERN_DBG_REG_SAVE_RESIZE:
        return pf->dbg_save_resize;
    case TERN_DBG_REG_DIRTY_LIMIT:
        return pf->dbg_dirty_limit;
    }
    return 0;
}

static void tern_dbg_write(void *opaque, hwaddr addr, uint64_t val,
                           unsigned size)
{
    TernPfState *pf = opaque;
    uint32_t arm = val & TERN_DBG_ARM;

    switch (addr) {
    case TERN_DBG_REG_FAIL_CMD:
        pf->dbg_fail_cmd = arm | (val & TERN_DBG_OPCODE_MASK);
        break;
    case TERN_DBG_REG_FAIL_VF:
        pf->dbg_fail_vf = val & TERN_DBG_VF_MASK;
        break;
    case TERN_DBG_REG_FAIL_STATUS:
        pf->dbg_fail_status = val & 0xffff;
        break;
    case TERN_DBG_REG_DELAY_CMD:
        pf->dbg_delay_cmd = arm | (val & (TERN_DBG_DELAY_LATE_DMA |
                                          TERN_DBG_OPCODE_MASK));
        break;
    case TERN_DBG_REG_DELAY_MS:
        pf->dbg_delay_ms = MIN(val, TERN_DBG_MAX_DELAY_MS);
        break;
    case TERN_DBG_REG_DMA_FAIL:
        pf->dbg_dma_fail = arm | (val & TERN_DBG_VF_MASK);
        break;
    case TERN_DBG_REG_CORRUPT_SAVE:
        pf->dbg_corrupt_save = arm | (val & TERN_DBG_VF_MASK);
        break;
    case TERN_DBG_REG_STUCK_CMD:
        pf->dbg_stuck_cmd = arm | (val & TERN_DBG_OPCODE_MASK);
        break;
    case TERN_DBG_REG_STUCK_VF:
        pf->dbg_stuck_vf = val & TERN_DBG_VF_MASK;
        break;
    case TERN_DBG_REG_SAVE_SHORT:
        pf->dbg_save_short = val;
        break;
    case TERN_DBG_REG_SAVE_RESIZE:
        pf->dbg_save_resize = arm | (val & TERN_DBG_VF_MASK);
        break;
    case TERN_DBG_REG_DIRTY_LIMIT:
        pf->dbg_dirty_limit = val;
        break;
    }
}

static const MemoryRegionOps tern_dbg_ops = {
    .read = tern_dbg_read,
    .write = tern_dbg_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
};

/* Device */

static void tern_pf_write_config(PCIDevice *dev, uint32_t addr, uint32_t val,
                                 int len)
{
    pci_default_write_config(dev, addr, val, len);
    pcie_cap_flr_write_config(dev, addr, val, len);
    pcie_sriov_config_write(dev, addr, val, len);
}

static void tern_pf_realize(PCIDevice *dev, Error **errp)
{
    TernPfState *pf = TERN_PF(dev);

    if (pf->total_vfs < 1 || pf->total_vfs > TERN_MAX_TOTAL_VFS) {
        error_setg(errp, "tern: total-vfs must be 1..%d", TERN_MAX_TOTAL_VFS);
        return;
    }
    if (!is_power_of_2(pf->devmem_size) ||
        pf->devmem_size < TERN_DEVMEM_MIN_SIZE ||
        pf->devmem_size > TERN_DEVMEM_MAX_SIZE) {
        error_setg(errp, "tern: devmem-size must be a power of two from "
                   "1 MiB to 256 MiB");
        return;
    }
    if (pf->max_sg < 1 || pf->max_sg > TERN_MAX_SG_ENTRIES) {
        error_setg(errp, "tern: x-max-sg must be 1..%d", TERN_MAX_SG_ENTRIES);
        return;
    }

    QTAILQ_INIT(&pf->pending);
    pf->aq_bh = qemu_bh_new_guarded(tern_aq_run, pf,
                                    &DEVICE(dev)->mem_reentrancy_guard);
    pf->aq_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, tern_aq_run, pf);
    pf->phase = true;

    dev->config_write = tern_pf_write_config;

    memory_region_init_io(&pf->mmio, OBJECT(pf), &tern_pf_mmio_ops, pf,
                          "tern-pf-regs", TERN_PF_REGS_SIZE);
    pci_register_bar(dev, TERN_PF_BAR_REGS, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &pf->mmio);
    if (pf->debug_enabled) {
        memory_region_init_io(&pf->debug, OBJECT(pf), &tern_dbg_ops, pf,
                              "tern-pf-debug", TERN_PF_DEBUG_SIZE);
        pci_register_bar(dev, TERN_PF_BAR_DEBUG,
                         PCI_BASE_ADDRESS_SPACE_MEMORY |
                         PCI_BASE_ADDRESS_MEM_TYPE_64, &pf->debug);
    }
    if (msix_init_exclusive_bar(dev, TERN_PF_MSIX_VECTORS, TERN_PF_BAR_MSIX,
                                errp)) {
        return;
    }
    msix_vector_use(dev, TERN_PF_MSIX_VEC_AQ);

    if (pcie_endpoint_cap_init(dev, TERN_PF_CAP_PCIE) < 0) {
        error_setg(errp, "tern: cannot add the PCIe capability");
        goto err_msix;
    }
    pcie_cap_flr_init(dev);
    pcie_ari_init(dev, TERN_PF_CAP_ARI);
    if (!pcie_sriov_pf_init(dev, TERN_PF_CAP_SRIOV, TYPE_TERN_VF,
                            TERN_PCI_DEVICE_ID_VF, pf->total_vfs,
                            pf->total_vfs, TERN_VF_OFFSET, TERN_VF_STRIDE,
                            errp)) {
        goto err_pcie;
    }
    pcie_sriov_pf_init_vf_bar(dev, TERN_VF_BAR_REGS,
                              PCI_BASE_ADDRESS_MEM_TYPE_64,
                              TERN_VF_REGS_SIZE);
    pcie_sriov_pf_init_vf_bar(dev, TERN_VF_BAR_DEVMEM,
                              PCI_BASE_ADDRESS_MEM_TYPE_64 |
                              PCI_BASE_ADDRESS_MEM_PREFETCH,
                              pf->devmem_size);
    pcie_sriov_pf_init_vf_bar(dev, TERN_VF_BAR_MSIX,
                              PCI_BASE_ADDRESS_MEM_TYPE_64,
                              TERN_VF_MSIX_SIZE);
    /*
     * With VFs the PF is a multi-function device; an ACS capability
     * without peer-to-peer controls tells the OS its functions are
     * isolated from each other.
     */
    pcie_acs_init(dev, TERN_PF_CAP_ACS);
    return;

err_pcie:
    pcie_cap_exit(dev);
err_msix:
    msix_uninit_exclusive_bar(dev);
}

static void tern_pf_exit(PCIDevice *dev)
{
    TernPfState *pf = TERN_PF(dev);

    tern_aq_clear(pf);
    pcie_sriov_pf_exit(dev);
    pcie_cap_exit(dev);
    msix_uninit_exclusive_bar(dev);
    timer_free(pf->aq_timer);
    qemu_bh_delete(pf->aq_bh);
}

static void tern_pf_reset_hold(Object *obj, ResetType type)
{
    TernPfState *pf = TERN_PF(obj);
    PCIDevice *dev = PCI_DEVICE(obj);

    tern_aq_disable(pf);
    pf->cmd_base = pf->cpl_base = 0;
    pf->cmd_size = pf->cpl_size = 0;
    pf->dbg_fail_cmd = pf->dbg_delay_cmd = pf->dbg_stuck_cmd = 0;
    pf->dbg_dma_fail = pf->dbg_corrupt_save = pf->dbg_save_resize = 0;
    pf->dbg_fail_vf = pf->dbg_stuck_vf = TERN_VF_NONE;
    pf->dbg_fail_status = pf->dbg_delay_ms = 0;
    pf->dbg_save_short = pf->dbg_dirty_limit = 0;
    pcie_sriov_pf_reset(dev);
    pcie_acs_reset(dev);
}

static const VMStateDescription vmstate_tern_pf = {
    .name = "tern",
    .unmigratable = 1,
};

static const Property tern_pf_properties[] = {
    DEFINE_PROP_UINT16("total-vfs", TernPfState, total_vfs,
                       TERN_DEFAULT_TOTAL_VFS),
    DEFINE_PROP_SIZE("devmem-size", TernPfState, devmem_size,
                     TERN_DEVMEM_DEFAULT_SIZE),
    DEFINE_PROP_BOOL("x-debug", TernPfState, debug_enabled, false),
    DEFINE_PROP_UINT32("x-max-sg", TernPfState, max_sg, TERN_MAX_SG_ENTRIES),
};

static void tern_pf_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);

    k->realize = tern_pf_realize;
    k->exit = tern_pf_exit;
    k->vendor_id = TERN_PCI_VENDOR_ID;
    k->device_id = TERN_PCI_DEVICE_ID_PF;
    k->class_id = PCI_CLASS_SYSTEM_OTHER;
    rc->phases.hold = tern_pf_reset_hold;
    dc->desc = "tern SR-IOV DMA accelerator (PF)";
    dc->vmsd = &vmstate_tern_pf;
    device_class_set_props(dc, tern_pf_properties);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo tern_pf_info = {
    .name          = TYPE_TERN_PF,
    .parent        = TYPE_PCI_DEVICE,
    .instance_size = sizeof(TernPfState),
    .class_init    = tern_pf_class_init,
    .interfaces    = (InterfaceInfo[]) {
        { INTERFACE_PCIE_DEVICE },
        { }
    },
};

static void tern_pf_register_types(void)
{
    type_register_static(&tern_pf_info);
}

type_init(tern_pf_register_types)
