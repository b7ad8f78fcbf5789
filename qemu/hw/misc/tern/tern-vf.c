/*
 * tern VF: registers, device memory and the DMA engine
 *
 * Copyright (c) 2025 The tern authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bitmap.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qapi/error.h"
#include "hw/pci/msix.h"
#include "hw/pci/pcie.h"
#include "hw/pci/pcie_sriov.h"
#include "migration/vmstate.h"
#include "system/dma.h"
#include "tern.h"

#define TERN_VF_CAP_PCIE        0xa0
#define TERN_VF_CAP_ARI         0x100

/* Descriptors run per bottom half invocation, over all queues. */
#define TERN_VF_BUDGET          16
#define TERN_VF_CHUNK           (64 * 1024)

TernPfState *tern_vf_pf(TernVfState *vf)
{
    return TERN_PF(pcie_sriov_get_pf(PCI_DEVICE(vf)));
}

uint16_t tern_vf_num(TernVfState *vf)
{
    return pcie_sriov_vf_number(PCI_DEVICE(vf));
}

/* Device memory dirty log (for incremental images) */

/*
 * Collect the pages of device memory the CPU wrote since the last call.
 *
 * Under TCG, memory_region_snapshot_and_clear_dirty() waits for every
 * vCPU to leave its translation block and drops the BQL meanwhile.  It
 * runs in the PF's admin queue bottom half, which QEMU marks as engaged
 * in I/O: a vCPU's write to the PF in that window would be refused as
 * re-entrant and lost (an admin queue doorbell, say).  The PF's state
 * is consistent here, so let such an access through.
 */
void tern_vf_sync_dirty(TernVfState *vf)
{
    MemReentrancyGuard *guard = &DEVICE(tern_vf_pf(vf))->mem_reentrancy_guard;
    bool engaged = guard->engaged_in_io;
    DirtyBitmapSnapshot *snap;
    uint64_t page;

    guard->engaged_in_io = false;
    snap = memory_region_snapshot_and_clear_dirty(&vf->devmem, 0,
                                                  vf->devmem_size,
                                                  DIRTY_MEMORY_VGA);
    guard->engaged_in_io = engaged;
    for (page = 0; page < vf->devmem_pages; page++) {
        if (memory_region_snapshot_get_dirty(&vf->devmem, snap,
                                             page * TERN_DEVMEM_PAGE_SIZE,
                                             TERN_DEVMEM_PAGE_SIZE)) {
            set_bit(page, vf->devmem_dirty);
        }
    }
    g_free(snap);
}

/* Forget every write so far; this does not wait for the vCPUs. */
void tern_vf_clear_dirty(TernVfState *vf)
{
    memory_region_reset_dirty(&vf->devmem, 0, vf->devmem_size,
                              DIRTY_MEMORY_VGA);
    bitmap_zero(vf->devmem_dirty, vf->devmem_pages);
}

static void tern_vf_devmem_written(TernVfState *vf, uint64_t off, uint64_t len)
{
    uint64_t first = off >> TERN_DEVMEM_PAGE_SHIFT;
    uint64_t last = (off + len - 1) >> TERN_DEVMEM_PAGE_SHIFT;

    bitmap_set(vf->devmem_dirty, first, last - first + 1);
}

/* DMA, all through the VF's own address space */

static bool tern_vf_dma_fault(TernVfState *vf)
{
    return tern_pf_fire_dma_fault(tern_vf_pf(vf), tern_vf_num(vf));
}

MemTxResult tern_vf_dma_write(TernVfState *vf, dma_addr_t addr,
                              const void *buf, dma_addr_t len)
{
    /* Recorded before the write becomes visible. */
    tern_dirty_record(vf, addr, len);
    return pci_dma_write(PCI_DEVICE(vf), addr, buf, len);
}

static uint8_t tern_vf_read_host(TernVfState *vf, uint64_t addr, void *buf,
                                 uint64_t len)
{
    if (tern_vf_dma_fault(vf) ||
        pci_dma_read(PCI_DEVICE(vf), addr, buf, len) != MEMTX_OK) {
        return TERN_DSTS_DMA_READ;
    }
    return TERN_DSTS_SUCCESS;
}

static uint8_t tern_vf_write_host(TernVfState *vf, uint64_t addr,
                                  const void *buf, uint64_t len)
{
    if (tern_vf_dma_fault(vf) ||
        tern_vf_dma_write(vf, addr, buf, len) != MEMTX_OK) {
        return TERN_DSTS_DMA_WRITE;
    }
    return TERN_DSTS_SUCCESS;
}

static bool tern_vf_devmem_range_ok(TernVfState *vf, uint64_t off,
                                    uint64_t len)
{
    return off < vf->devmem_size && len <= vf->devmem_size - off;
}

/* Execute one descriptor; returns a TERN_DSTS_* code. */
static uint8_t tern_vf_exec(TernVfState *vf, const struct tern_desc *d,
                            uint32_t *crc, uint32_t *bytes)
{
    uint32_t len = le32_to_cpu(d->len);
    uint64_t src = le64_to_cpu(d->src);
    uint64_t dst = le64_to_cpu(d->dst);
    uint64_t pattern = le64_to_cpu(d->pattern);
    g_autofree uint8_t *buf = NULL;
    uint32_t done, n, i;
    uint8_t sts;

    *bytes = 0;
    if (d->opcode == TERN_DESC_NOP) {
        return TERN_DSTS_SUCCESS;
    }
    if (d->opcode > TERN_DESC_FROM_DEV) {
        return TERN_DSTS_INVALID_OPCODE;
    }
    if (len == 0 || len > TERN_DESC_MAX_LEN) {
        return TERN_DSTS_INVALID_LEN;
    }

    switch (d->opcode) {
    case TERN_DESC_TO_DEV:
        if (!tern_vf_devmem_range_ok(vf, dst, len)) {
            return TERN_DSTS_INVALID_ADDR;
        }
        tern_vf_devmem_written(vf, dst, len);
        sts = tern_vf_read_host(vf, src, vf->devmem_ptr + dst, len);
        break;
    case TERN_DESC_FROM_DEV:
        if (!tern_vf_devmem_range_ok(vf, src, len)) {
            return TERN_DSTS_INVALID_ADDR;
        }
        sts = tern_vf_write_host(vf, dst, vf->devmem_ptr + src, len);
        break;
    default:
        buf = g_malloc(MIN(len, TERN_VF_CHUNK));
        *crc = d->opcode == TERN_DESC_CRC32C ? (uint32_t)pattern : 0;
        sts = TERN_DSTS_SUCCESS;
        for (done = 0; done < len && sts == TERN_DSTS_SUCCESS; done += n) {
            n = MIN(len - done, TERN_VF_CHUNK);
            switch (d->opcode) {
            case TERN_DESC_MEMCPY:
                sts = tern_vf_read_host(vf, src + done, buf, n);
                if (sts == TERN_DSTS_SUCCESS) {
                    sts = tern_vf_write_host(vf, dst + done, buf, n);
                }
                break;
            case TERN_DESC_FILL:
                for (i = 0; i < n; i++) {
                    buf[i] = pattern >> (8 * ((done + i) % 8));
                }
                sts = tern_vf_write_host(vf, dst + done, buf, n);
                break;
            case TERN_DESC_CRC32C:
                sts = tern_vf_read_host(vf, src + done, buf, n);
                if (sts == TERN_DSTS_SUCCESS) {
                    *crc = tern_crc32c_update(*crc, buf, n);
                }
                break;
            }
        }
        break;
    }
    if (sts == TERN_DSTS_SUCCESS) {
        *bytes = len;
    }
    return sts;
}

static bool tern_q_has_work(TernQueue *q)
{
    return (q->status & TERN_Q_STS_ENABLED) &&
           !(q->status & TERN_Q_STS_HALTED) && q->head != q->tail;
}

static void tern_q_error(TernQueue *q, uint8_t err)
{
    q->status = (q->status & ~TERN_Q_STS_ERR_MASK) |
                err << TERN_Q_STS_ERR_SHIFT;
}

/* Run the descriptor at the head of queue n. */
static void tern_vf_step(TernVfState *vf, unsigned n)
{
    PCIDevice *dev = PCI_DEVICE(vf);
    TernQueue *q = &vf->q[n];
    struct tern_desc d;
    struct tern_desc_cpl cpl = { 0 };
    uint64_t cpl_addr;
    uint32_t crc = 0, bytes = 0;
    uint8_t sts;

    if (pci_dma_read(dev, q->base + (uint64_t)q->head * sizeof(d), &d,
                     sizeof(d)) != MEMTX_OK) {
        qemu_log_mask(LOG_GUEST_ERROR, "tern-vf: queue %u fetch failed\n", n);
        q->status |= TERN_Q_STS_HALTED;
        tern_q_error(q, TERN_Q_ERR_FETCH);
        return;
    }
    cpl_addr = le64_to_cpu(d.cpl_addr);
    if (cpl_addr % TERN_DESC_CPL_ALIGN) {
        sts = TERN_DSTS_INVALID_ADDR;
    } else {
        sts = tern_vf_exec(vf, &d, &crc, &bytes);
    }
    if (cpl_addr && !(cpl_addr % TERN_DESC_CPL_ALIGN)) {
        cpl.status = sts;
        cpl.crc = cpu_to_le32(crc);
        cpl.bytes = cpu_to_le32(bytes);
        cpl.index = cpu_to_le32(q->head);
        cpl.user = d.user;
        if (tern_vf_dma_write(vf, cpl_addr, &cpl, sizeof(cpl)) != MEMTX_OK) {
            sts = TERN_DSTS_DMA_WRITE;
        }
    }
    q->head = (q->head + 1) % q->size;
    if (sts == TERN_DSTS_SUCCESS) {
        q->cnt_desc++;
        vf->cnt_desc++;
    } else {
        q->cnt_err++;
    }
    q->cnt_bytes += bytes;
    vf->cnt_bytes += bytes;
    if ((d.flags & TERN_DESC_F_INTERRUPT) && (q->ctrl & TERN_Q_CTRL_INT_EN) &&
        msix_enabled(dev)) {
        msix_notify(dev, q->msix);
    }
}

static void tern_vf_run(void *opaque)
{
    TernVfState *vf = opaque;
    unsigned budget = TERN_VF_BUDGET;
    bool work = true;
    unsigned n;

    while (vf->mig_state == TERN_VF_STATE_RUNNING && work && budget) {
        work = false;
        for (n = 0; n < TERN_VF_NR_QUEUES && budget; n++) {
            if (tern_q_has_work(&vf->q[n])) {
                tern_vf_step(vf, n);
                budget--;
                work = true;
            }
        }
    }
    if (vf->mig_state != TERN_VF_STATE_RUNNING) {
        return;
    }
    for (n = 0; n < TERN_VF_NR_QUEUES; n++) {
        if (tern_q_has_work(&vf->q[n])) {
            qemu_bh_schedule(vf->bh);
            return;
        }
    }
}

/* Migration states, driven by the PF */

void tern_vf_quiesce(TernVfState *vf)
{
    if (vf->mig_state == TERN_VF_STATE_FROZEN) {
        tern_state_thaw(vf);
        memory_region_set_readonly(&vf->devmem, false);
    }
    /* Descriptors are atomic: nothing is half done between two BHs. */
    vf->mig_state = TERN_VF_STATE_QUIESCED;
    qemu_bh_cancel(vf->bh);
}

void tern_vf_freeze(TernVfState *vf)
{
    if (vf->mig_state != TERN_VF_STATE_FROZEN) {
        vf->mig_state = TERN_VF_STATE_FROZEN;
        memory_region_set_readonly(&vf->devmem, true);
    }
}

void tern_vf_resume(TernVfState *vf)
{
    if (vf->mig_state == TERN_VF_STATE_FROZEN) {
        tern_state_thaw(vf);
        memory_region_set_readonly(&vf->devmem, false);
    }
    vf->mig_state = TERN_VF_STATE_RUNNING;
    qemu_bh_schedule(vf->bh);
}

/* Function reset of the PF: migration state only. */
void tern_vf_mig_reset(TernVfState *vf)
{
    tern_vf_resume(vf);
    tern_dirty_reset(vf);
    tern_state_reset(vf);
}

/* BAR0 */

static uint64_t tern_q_read(TernQueue *q, hwaddr reg)
{
    switch (reg) {
    case TERN_Q_BASE_LO:
        return (uint32_t)q->base;
    case TERN_Q_BASE_HI:
        return q->base >> 32;
    case TERN_Q_SIZE:
        return q->size;
    case TERN_Q_CTRL:
        return q->ctrl;
    case TERN_Q_HEAD:
        return q->head;
    case TERN_Q_TAIL:
        return q->tail;
    case TERN_Q_MSIX:
        return q->msix;
    case TERN_Q_STATUS:
        return q->status;
    case TERN_Q_CNT_DESC_LO:
        return (uint32_t)q->cnt_desc;
    case TERN_Q_CNT_DESC_HI:
        return q->cnt_desc >> 32;
    case TERN_Q_CNT_ERR_LO:
        return (uint32_t)q->cnt_err;
    case TERN_Q_CNT_ERR_HI:
        return q->cnt_err >> 32;
    case TERN_Q_CNT_BYTES_LO:
        return (uint32_t)q->cnt_bytes;
    case TERN_Q_CNT_BYTES_HI:
        return q->cnt_bytes >> 32;
    }
    return 0;
}

static uint64_t tern_vf_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    TernVfState *vf = opaque;
    unsigned n;

    if (addr >= TERN_VF_REG_Q(0) && addr < TERN_VF_REG_Q(TERN_VF_NR_QUEUES)) {
        return tern_q_read(&vf->q[(addr - TERN_VF_REG_Q(0)) / 0x40],
                           (addr - TERN_VF_REG_Q(0)) % 0x40);
    }
    switch (addr) {
    case TERN_VF_REG_MAGIC:
        return TERN_VF_MAGIC;
    case TERN_VF_REG_CAP:
        return TERN_VF_NR_QUEUES |
               TERN_VF_MSIX_VECTORS << TERN_VF_CAP_VECTORS_SHIFT;
    case TERN_VF_REG_DEVMEM_SIZE_LO:
        return (uint32_t)vf->devmem_size;
    case TERN_VF_REG_DEVMEM_SIZE_HI:
        return vf->devmem_size >> 32;
    case TERN_VF_REG_STATUS:
        for (n = 0; n < TERN_VF_NR_QUEUES; n++) {
            if (vf->q[n].status & TERN_Q_STS_HALTED) {
                return TERN_VF_STS_ERROR;
            }
        }
        return 0;
    case TERN_VF_REG_CNT_DESC_LO:
        return (uint32_t)vf->cnt_desc;
    case TERN_VF_REG_CNT_DESC_HI:
        return vf->cnt_desc >> 32;
    case TERN_VF_REG_CNT_BYTES_LO:
        return (uint32_t)vf->cnt_bytes;
    case TERN_VF_REG_CNT_BYTES_HI:
        return vf->cnt_bytes >> 32;
    }
    return 0;
}

/*
 * A queue's setup (BASE, SIZE, MSIX) took a new value.  Since the last
 * FULL image it is new initial data: QUERY_SIZE says so (NEW_CONFIG)
 * until the next FULL image, a load or a reset.
 */
static void tern_q_config_changed(TernVfState *vf)
{
    if (vf->has_base) {
        vf->new_config = true;
    }
}

static void tern_q_write(TernVfState *vf, TernQueue *q, hwaddr reg,
                         uint32_t val)
{
    bool enabled = q->ctrl & TERN_Q_CTRL_ENABLE;
    uint64_t old;

    switch (reg) {
    case TERN_Q_BASE_LO:
    case TERN_Q_BASE_HI:
        if (!enabled) {
            old = q->base;
            q->base = deposit64(q->base, reg == TERN_Q_BASE_LO ? 0 : 32, 32,
                                val);
            if (q->base != old) {
                tern_q_config_changed(vf);
            }
        }
        break;
    case TERN_Q_SIZE:
        if (!enabled) {
            if (q->size != val) {
                tern_q_config_changed(vf);
            }
            q->size = val;
        }
        break;
    case TERN_Q_CTRL:
        q->ctrl = val & (TERN_Q_CTRL_ENABLE | TERN_Q_CTRL_INT_EN);
        if ((val & TERN_Q_CTRL_ENABLE) && !enabled) {
            if (q->size < TERN_Q_MIN_ENTRIES || q->size > TERN_Q_MAX_ENTRIES ||
                q->base % TERN_Q_ALIGN) {
                q->ctrl &= ~TERN_Q_CTRL_ENABLE;
                q->status = 0;
                tern_q_error(q, TERN_Q_ERR_CONFIG);
                break;
            }
            q->head = q->tail = 0;
            q->status = TERN_Q_STS_ENABLED;
        } else if (!(val & TERN_Q_CTRL_ENABLE) && enabled) {
            q->status &= ~TERN_Q_STS_ENABLED;
        }
        break;
    case TERN_Q_TAIL:
        if (!enabled || val >= q->size) {
            tern_q_error(q, TERN_Q_ERR_DOORBELL);
            break;
        }
        q->tail = val;
        if (vf->mig_state == TERN_VF_STATE_RUNNING) {
            qemu_bh_schedule(vf->bh);
        }
        break;
    case TERN_Q_MSIX:
        if (val < TERN_VF_MSIX_VECTORS) {
            if (q->msix != val) {
                tern_q_config_changed(vf);
            }
            q->msix = val;
        }
        break;
    }
}

static void tern_vf_mmio_write(void *opaque, hwaddr addr, uint64_t val,
                               unsigned size)
{
    TernVfState *vf = opaque;

    if (vf->mig_state == TERN_VF_STATE_FROZEN) {
        return;
    }
    if (addr >= TERN_VF_REG_Q(0) && addr < TERN_VF_REG_Q(TERN_VF_NR_QUEUES)) {
        tern_q_write(vf, &vf->q[(addr - TERN_VF_REG_Q(0)) / 0x40],
                     (addr - TERN_VF_REG_Q(0)) % 0x40, val);
    }
}

static const MemoryRegionOps tern_vf_mmio_ops = {
    .read = tern_vf_mmio_read,
    .write = tern_vf_mmio_write,
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

/* Device */

static void tern_vf_write_config(PCIDevice *dev, uint32_t addr, uint32_t val,
                                 int len)
{
    pci_default_write_config(dev, addr, val, len);
    pcie_cap_flr_write_config(dev, addr, val, len);
}

static void tern_vf_realize(PCIDevice *dev, Error **errp)
{
    TernVfState *vf = TERN_VF(dev);
    TernPfState *pf = tern_vf_pf(vf);
    unsigned i;

    vf->devmem_size = pf->devmem_size;
    vf->devmem_pages = vf->devmem_size >> TERN_DEVMEM_PAGE_SHIFT;
    vf->devmem_dirty = bitmap_new(vf->devmem_pages);
    vf->bh = qemu_bh_new_guarded(tern_vf_run, vf,
                                 &DEVICE(dev)->mem_reentrancy_guard);
    dev->config_write = tern_vf_write_config;

    memory_region_init_io(&vf->mmio, OBJECT(vf), &tern_vf_mmio_ops, vf,
                          "tern-vf-regs", TERN_VF_REGS_SIZE);
    pci_register_bar(dev, TERN_VF_BAR_REGS, PCI_BASE_ADDRESS_MEM_TYPE_64,
                     &vf->mmio);

    /* RAM with dirty logging: BAR writes by the CPU are tracked too. */
    if (!memory_region_init_ram(&vf->devmem, OBJECT(vf), "tern-vf-devmem",
                                vf->devmem_size, errp)) {
        return;
    }
    vf->devmem_ptr = memory_region_get_ram_ptr(&vf->devmem);
    memory_region_set_log(&vf->devmem, true, DIRTY_MEMORY_VGA);
    pci_register_bar(dev, TERN_VF_BAR_DEVMEM, PCI_BASE_ADDRESS_MEM_TYPE_64 |
                     PCI_BASE_ADDRESS_MEM_PREFETCH, &vf->devmem);

    memory_region_init(&vf->msix, OBJECT(vf), "tern-vf-msix",
                       TERN_VF_MSIX_SIZE);
    pci_register_bar(dev, TERN_VF_BAR_MSIX, PCI_BASE_ADDRESS_MEM_TYPE_64,
                     &vf->msix);
    if (msix_init(dev, TERN_VF_MSIX_VECTORS, &vf->msix, TERN_VF_BAR_MSIX,
                  TERN_VF_MSIX_TABLE_OFFSET, &vf->msix, TERN_VF_BAR_MSIX,
                  TERN_VF_MSIX_PBA_OFFSET, 0, errp)) {
        return;
    }
    for (i = 0; i < TERN_VF_MSIX_VECTORS; i++) {
        msix_vector_use(dev, i);
    }

    if (pcie_endpoint_cap_init(dev, TERN_VF_CAP_PCIE) < 0) {
        error_setg(errp, "tern-vf: cannot add the PCIe capability");
        msix_uninit(dev, &vf->msix, &vf->msix);
        return;
    }
    pcie_cap_flr_init(dev);
    pcie_ari_init(dev, TERN_VF_CAP_ARI);
}

static void tern_vf_exit(PCIDevice *dev)
{
    TernVfState *vf = TERN_VF(dev);

    tern_dirty_reset(vf);
    tern_state_free(vf);
    pcie_cap_exit(dev);
    msix_uninit(dev, &vf->msix, &vf->msix);
    qemu_bh_delete(vf->bh);
    g_free(vf->devmem_dirty);
}

/* VF FLR, VF Enable changes, bus resets */
static void tern_vf_reset_hold(Object *obj, ResetType type)
{
    TernVfState *vf = TERN_VF(obj);

    qemu_bh_cancel(vf->bh);
    memset(vf->q, 0, sizeof(vf->q));
    vf->cnt_desc = vf->cnt_bytes = 0;
    tern_vf_resume(vf);
    tern_state_reset(vf);
    /*
     * Dirty tracking is the PF's migration state; like VFIO's DMA logging
     * it is independent of the VF's own resets: a VF FLR in mid-migration
     * must not lose pages the VMM has not read yet.  Disabling the VF
     * ends it (pci_set_enabled() clears enabled before the reset).
     */
    if (!PCI_DEVICE(vf)->enabled) {
        tern_dirty_reset(vf);
    }
    qemu_bh_cancel(vf->bh);
    if (vf->devmem_ptr) {
        memset(vf->devmem_ptr, 0, vf->devmem_size);
        tern_vf_clear_dirty(vf);
    }
    vf->loaded = false;
}

static const VMStateDescription vmstate_tern_vf = {
    .name = "tern-vf",
    .unmigratable = 1,
};

static void tern_vf_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);

    k->realize = tern_vf_realize;
    k->exit = tern_vf_exit;
    k->vendor_id = TERN_PCI_VENDOR_ID;
    k->device_id = TERN_PCI_DEVICE_ID_VF;
    k->class_id = PCI_CLASS_SYSTEM_OTHER;
    rc->phases.hold = tern_vf_reset_hold;
    dc->desc = "tern SR-IOV DMA accelerator (VF)";
    dc->vmsd = &vmstate_tern_vf;
    dc->user_creatable = false;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo tern_vf_info = {
    .name          = TYPE_TERN_VF,
    .parent        = TYPE_PCI_DEVICE,
    .instance_size = sizeof(TernVfState),
    .class_init    = tern_vf_class_init,
    .interfaces    = (InterfaceInfo[]) {
        { INTERFACE_PCIE_DEVICE },
        { }
    },
};

static void tern_vf_register_types(void)
{
    type_register_static(&tern_vf_info);
}

type_init(tern_vf_register_types)
