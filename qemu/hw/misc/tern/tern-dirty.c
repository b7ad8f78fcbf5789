/*
 * tern: tracking of a VF's DMA writes to host memory
 *
 * Copyright (c) 2025 The tern authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Dirty pages are kept as maximal runs of page numbers in an interval
 * tree: tracking a huge IOVA range costs memory only for the runs
 * written, a report finds the first run of its range in O(log n) and
 * costs O(log n) per run it returns, wherever the range starts.
 */

#include "qemu/osdep.h"
#include "system/dma.h"
#include "tern.h"

void tern_dirty_reset(TernVfState *vf)
{
    TernDirty *t = &vf->dirty;
    IntervalTreeNode *n;

    while ((n = interval_tree_iter_first(&t->runs, 0, UINT64_MAX))) {
        interval_tree_remove(n, &t->runs);
        g_free(n);
    }
    memset(t, 0, sizeof(*t));
}

static void tern_dirty_insert(TernDirty *t, uint64_t start, uint64_t last)
{
    IntervalTreeNode *n = g_new0(IntervalTreeNode, 1);

    n->start = start;
    n->last = last;
    interval_tree_insert(n, &t->runs);
}

/*
 * Mark pages [first, last] dirty.  The runs they overlap or touch are
 * merged with them, so that runs stay disjoint and never adjacent: one
 * run of the tree is one run of a report.
 */
static void tern_dirty_add(TernDirty *t, uint64_t first, uint64_t last,
                           uint64_t limit)
{
    uint64_t start = first, end = last, added = last - first + 1;
    IntervalTreeNode *n;

    /* Page numbers are at most UINT64_MAX >> 12: end + 1 cannot wrap. */
    while ((n = interval_tree_iter_first(&t->runs, start ? start - 1 : 0,
                                         end + 1))) {
        uint64_t lo = MAX(n->start, first), hi = MIN(n->last, last);

        if (lo <= hi) {
            added -= hi - lo + 1;
        }
        start = MIN(start, n->start);
        end = MAX(end, n->last);
        interval_tree_remove(n, &t->runs);
        g_free(n);
    }
    if (t->nr_pages + added > limit) {
        /* Pages are lost: every report fails until tracking restarts. */
        t->overflow = true;
        return;
    }
    tern_dirty_insert(t, start, end);
    t->nr_pages += added;
}

void tern_dirty_record(TernVfState *vf, uint64_t addr, uint64_t len)
{
    TernDirty *t = &vf->dirty;
    uint64_t last, limit;
    uint32_t i;

    if (!t->active || t->overflow || len == 0) {
        return;
    }
    last = addr + len - 1 < addr ? UINT64_MAX : addr + len - 1;
    limit = tern_pf_dirty_limit(tern_vf_pf(vf));
    for (i = 0; i < t->nr_ranges && !t->overflow; i++) {
        uint64_t lo = MAX(addr, t->ranges[i].start);
        uint64_t hi = MIN(last, t->ranges[i].last);

        if (lo <= hi) {
            tern_dirty_add(t, lo >> t->page_shift, hi >> t->page_shift,
                           limit);
        }
    }
}

static gint tern_range_cmp(gconstpointer a, gconstpointer b)
{
    const struct tern_range *x = a, *y = b;
    uint64_t xi = le64_to_cpu(x->iova), yi = le64_to_cpu(y->iova);

    return xi < yi ? -1 : xi > yi;
}

uint16_t tern_dirty_start(TernPfState *pf, TernVfState *vf,
                          const struct tern_aq_cmd *cmd, TernCmd *c)
{
    TernDirty *t = &vf->dirty;
    uint32_t nr = le32_to_cpu(cmd->dirty_start.nr_ranges);
    uint8_t shift = cmd->dirty_start.page_shift;
    struct tern_range r[TERN_DIRTY_MAX_RANGES];
    uint64_t mask = (1ull << shift) - 1;
    uint32_t i;

    if (t->active) {
        return TERN_STS_BUSY;
    }
    if (nr < 1 || nr > TERN_DIRTY_MAX_RANGES ||
        shift < TERN_DIRTY_MIN_PAGE_SHIFT ||
        shift > TERN_DIRTY_MAX_PAGE_SHIFT) {
        return TERN_STS_INVALID_FIELD;
    }
    if (pci_dma_read(PCI_DEVICE(pf), le64_to_cpu(cmd->dirty_start.ranges_addr),
                     r, nr * sizeof(r[0])) != MEMTX_OK) {
        return TERN_STS_DMA_ERROR;
    }
    qsort(r, nr, sizeof(r[0]), tern_range_cmp);
    for (i = 0; i < nr; i++) {
        uint64_t iova = le64_to_cpu(r[i].iova);
        uint64_t len = le64_to_cpu(r[i].len);

        if (len == 0 || (iova & mask) || (len & mask) ||
            iova + len - 1 < iova) {
            return TERN_STS_INVALID_FIELD;
        }
        if (i && iova <= t->ranges[i - 1].last) {
            return TERN_STS_INVALID_FIELD;
        }
        t->ranges[i].start = iova;
        t->ranges[i].last = iova + len - 1;
    }
    t->nr_ranges = nr;
    t->page_shift = shift;
    t->nr_pages = 0;
    t->overflow = false;
    t->active = true;
    return TERN_STS_SUCCESS;
}

/* Report and clear what was reported: runs[i] is run nodes[i] clipped. */
static void tern_dirty_clear(TernDirty *t, GPtrArray *nodes, uint64_t first,
                             uint64_t last)
{
    guint i;

    for (i = 0; i < nodes->len; i++) {
        IntervalTreeNode *n = g_ptr_array_index(nodes, i);

        interval_tree_remove(n, &t->runs);
        t->nr_pages -= MIN(n->last, last) - MAX(n->start, first) + 1;
        /* Only the first and last run can stick out of the range. */
        if (n->start < first) {
            tern_dirty_insert(t, n->start, first - 1);
        }
        if (n->last > last) {
            tern_dirty_insert(t, last + 1, n->last);
        }
        g_free(n);
    }
}

uint16_t tern_dirty_report(TernPfState *pf, TernVfState *vf,
                           const struct tern_aq_cmd *cmd, TernCmd *c)
{
    TernDirty *t = &vf->dirty;
    uint64_t iova = le64_to_cpu(cmd->dirty_report.iova);
    uint64_t len = le64_to_cpu(cmd->dirty_report.len);
    uint64_t buf = le64_to_cpu(cmd->dirty_report.buf_addr);
    uint32_t entries = le32_to_cpu(cmd->dirty_report.buf_entries);
    g_autoptr(GArray) runs = NULL;
    g_autoptr(GPtrArray) nodes = NULL;
    IntervalTreeNode *n;
    uint64_t mask, first, last, pages = 0;

    if (!t->active) {
        return TERN_STS_INVALID_STATE;
    }
    mask = (1ull << t->page_shift) - 1;
    if (len == 0 || (iova & mask) || (len & mask) || iova + len - 1 < iova ||
        entries == 0) {
        return TERN_STS_INVALID_FIELD;
    }
    if (t->overflow) {
        return TERN_STS_DIRTY_OVERFLOW;
    }

    first = iova >> t->page_shift;
    last = (iova + len - 1) >> t->page_shift;
    runs = g_array_new(FALSE, FALSE, sizeof(struct tern_range));
    nodes = g_ptr_array_new();
    for (n = interval_tree_iter_first(&t->runs, first, last);
         n && runs->len < entries;
         n = interval_tree_iter_next(n, first, last)) {
        uint64_t lo = MAX(n->start, first), hi = MIN(n->last, last);
        struct tern_range run = {
            .iova = cpu_to_le64(lo << t->page_shift),
            .len = cpu_to_le64((hi - lo + 1) << t->page_shift),
        };

        g_array_append_val(runs, run);
        g_ptr_array_add(nodes, n);
        pages += hi - lo + 1;
    }
    if (runs->len &&
        pci_dma_write(PCI_DEVICE(pf), buf, runs->data,
                      runs->len * sizeof(struct tern_range)) != MEMTX_OK) {
        return TERN_STS_DMA_ERROR;
    }
    tern_dirty_clear(t, nodes, first, last);
    c->result0 = runs->len;
    c->result1 = pages;
    c->result2 = n ? TERN_REPORT_MORE : 0;
    return TERN_STS_SUCCESS;
}

uint16_t tern_dirty_stop(TernVfState *vf)
{
    if (!vf->dirty.active) {
        return TERN_STS_INVALID_STATE;
    }
    tern_dirty_reset(vf);
    return TERN_STS_SUCCESS;
}
