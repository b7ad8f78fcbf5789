/*
 * tern: an SR-IOV PCIe DMA accelerator with live migration support
 *
 * Copyright (c) 2025 The tern authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_MISC_TERN_H
#define HW_MISC_TERN_H

#include "hw/pci/pci_device.h"
#include "qemu/interval-tree.h"
#include "qemu/queue.h"
#include "qemu/timer.h"
#include "tern_hw.h"

#define TYPE_TERN_PF "tern"
#define TYPE_TERN_VF "tern-vf"

OBJECT_DECLARE_SIMPLE_TYPE(TernPfState, TERN_PF)
OBJECT_DECLARE_SIMPLE_TYPE(TernVfState, TERN_VF)

/* Deadline of a stuck command: it completes only if aborted. */
#define TERN_CMD_STUCK          INT64_MAX

/* An admin command between fetch and the posting of its completion. */
typedef struct TernCmd {
    QTAILQ_ENTRY(TernCmd) next;
    int64_t deadline;
    struct tern_aq_cmd cmd; /* as fetched */
    bool late;              /* executes when its completion is posted */
    uint16_t tag;
    uint16_t status;
    uint64_t result0;
    uint64_t result1;
    uint32_t result2;
} TernCmd;

struct TernPfState {
    PCIDevice parent_obj;

    MemoryRegion mmio;
    MemoryRegion debug;

    /* Properties */
    uint16_t total_vfs;
    uint64_t devmem_size;
    bool debug_enabled;
    uint32_t max_sg;        /* SG entries per SAVE or LOAD (x-max-sg) */

    /* Registers */
    uint32_t ctrl;
    uint32_t status;
    uint64_t cmd_base;
    uint32_t cmd_size;
    uint32_t cmd_head;
    uint32_t cmd_tail;
    uint64_t cpl_base;
    uint32_t cpl_size;
    uint32_t cpl_head;
    uint32_t cpl_tail;
    bool phase;

    /* Fetched commands, ordered by completion deadline */
    QTAILQ_HEAD(, TernCmd) pending;
    uint32_t inflight;
    uint32_t aq_gen;        /* counts tern_aq_clear() calls */
    QEMUBH *aq_bh;
    QEMUTimer *aq_timer;

    /* Fault injection (BAR2) */
    uint32_t dbg_fail_cmd;
    uint32_t dbg_fail_vf;
    uint32_t dbg_fail_status;
    uint32_t dbg_delay_cmd;
    uint32_t dbg_delay_ms;
    uint32_t dbg_dma_fail;
    uint32_t dbg_corrupt_save;
    uint32_t dbg_fired;
    uint32_t dbg_stuck_cmd;
    uint32_t dbg_stuck_vf;
    uint32_t dbg_save_short;
    uint32_t dbg_save_resize;
    uint32_t dbg_dirty_limit;
};

typedef struct TernQueue {
    uint64_t base;
    uint32_t size;
    uint32_t ctrl;
    uint32_t head;
    uint32_t tail;
    uint32_t msix;
    uint32_t status;
    uint64_t cnt_desc;
    uint64_t cnt_err;
    uint64_t cnt_bytes;
} TernQueue;

/* Tracker of a VF's DMA writes to host memory, by IOVA. */
typedef struct TernDirty {
    bool active;
    bool overflow;
    uint8_t page_shift;
    uint32_t nr_ranges;
    struct {
        uint64_t start;
        uint64_t last;      /* inclusive */
    } ranges[TERN_DIRTY_MAX_RANGES];
    IntervalTreeRoot runs;  /* runs of dirty page numbers */
    uint64_t nr_pages;
} TernDirty;

struct TernVfState {
    PCIDevice parent_obj;

    MemoryRegion mmio;
    MemoryRegion devmem;
    MemoryRegion msix;
    QEMUBH *bh;

    /* Functional state */
    TernQueue q[TERN_VF_NR_QUEUES];
    uint64_t cnt_desc;
    uint64_t cnt_bytes;
    uint64_t devmem_size;
    uint64_t devmem_pages;
    uint8_t *devmem_ptr;
    unsigned long *devmem_dirty; /* pages written since the last save */

    /* Migration state, reachable only through the PF */
    uint16_t mig_state;     /* TERN_VF_STATE_* */
    TernDirty dirty;
    bool has_base;
    bool new_config;        /* a queue's setup changed since the FULL image */
    uint64_t session;
    uint32_t seq;
    uint8_t *save_buf;      /* the image, or only its head if save_live */
    uint64_t save_size;
    bool save_live;         /* data pages read from devmem (VF frozen) */
    uint64_t save_data_off; /* where the data pages start */
    uint8_t *load_buf;      /* staging, max image size, kept once made */
    uint64_t load_pos;
    uint64_t load_size;     /* 0 until the header is staged */
    bool loading;
    bool loaded;
    uint64_t loaded_session;
    uint32_t loaded_seq;
};

/* tern-pf.c */
TernVfState *tern_pf_get_vf(TernPfState *pf, uint16_t vf_num);
bool tern_pf_fire_dma_fault(TernPfState *pf, uint16_t vf_num);
bool tern_pf_fire_save_fault(TernPfState *pf, uint16_t vf_num);
bool tern_pf_fire_resize_fault(TernPfState *pf, uint16_t vf_num);
uint32_t tern_pf_dirty_limit(TernPfState *pf);
uint64_t tern_max_image_size(uint64_t devmem_size);
uint32_t tern_crc32c_update(uint32_t crc, const void *buf, size_t len);

/* tern-vf.c */
TernPfState *tern_vf_pf(TernVfState *vf);
uint16_t tern_vf_num(TernVfState *vf);
void tern_vf_quiesce(TernVfState *vf);
void tern_vf_freeze(TernVfState *vf);
void tern_vf_resume(TernVfState *vf);
void tern_vf_mig_reset(TernVfState *vf);
void tern_vf_sync_dirty(TernVfState *vf);
void tern_vf_clear_dirty(TernVfState *vf);
MemTxResult tern_vf_dma_write(TernVfState *vf, dma_addr_t addr,
                              const void *buf, dma_addr_t len);

/* tern-state.c */
uint64_t tern_state_size(TernVfState *vf, bool incremental);
uint16_t tern_state_save(TernPfState *pf, TernVfState *vf,
                         const struct tern_aq_cmd *cmd, TernCmd *c);
uint16_t tern_state_load(TernPfState *pf, TernVfState *vf,
                         const struct tern_aq_cmd *cmd, TernCmd *c);
void tern_state_reset(TernVfState *vf);
void tern_state_free(TernVfState *vf);
void tern_state_thaw(TernVfState *vf);

/* tern-dirty.c */
uint16_t tern_dirty_start(TernPfState *pf, TernVfState *vf,
                          const struct tern_aq_cmd *cmd, TernCmd *c);
uint16_t tern_dirty_report(TernPfState *pf, TernVfState *vf,
                           const struct tern_aq_cmd *cmd, TernCmd *c);
uint16_t tern_dirty_stop(TernVfState *vf);
void tern_dirty_record(TernVfState *vf, uint64_t addr, uint64_t len);
void tern_dirty_reset(TernVfState *vf);

#endif
