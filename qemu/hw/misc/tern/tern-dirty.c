/*
 * tern: tracking of a VF's DMA writes to host memory
 *
 * Copyright (c) 2025 The tern authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Dirty pages are kept in a sparse set (a balanced tree of page numbers),
 * so tracking a huge IOVA range costs memory only for the pages written,
 * and a report costs host memory only for the runs of dirty pages.
 */

#include "qemu/osdep.h"
#include "system/dma.h"
#include "tern.h"

static gint tern_u64_cmp(gconstpointer a, gconstpointer b, gpointer opaque)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

void tern_dirty_reset(TernVfState *vf)
{
    TernDirty *t = &vf->dirty;

    if (t->pages) {
        g_tree_destroy(t->pages);
    }
    memset(t, 0, sizeof(*t));
}

static bool tern_dirty_tracked(TernDirty *t, uint64_t page)
{
    uint64_t addr = page << t->page_shift;
    uint32_t i;

    for (i = 0; i < t->nr_ranges; i++) {
        if (addr >= t->ranges[i].start && addr <= t->ranges[i].last) {
            return true;
        }
    }
    return false;
}

void tern_dirty_record(TernVfState *vf, uint64_t addr, uint64_t len)
{
    TernDirty *t = &vf->dirty;
    uint64_t first, last, page;

    if (!t->active || t->overflow || len == 0) {
        return;
    }
    first = addr >> t->page_shift;
    last = (addr + len - 1 < addr ? UINT64_MAX : addr + len - 1) >>
           t->page_shift;
    for (page = first; page <= last; page++) {
        if (tern_dirty_tracked(t, page) && !g_tree_lookup(t->pages, &page)) {
            uint64_t *key;

            if (t->nr_pages >= TERN_DIRTY_MAX_PAGES) {
                t->overflow = true;
                return;
            }
            key = g_new(uint64_t, 1);
            *key = page;
            g_tree_insert(t->pages, key, key);
            t->nr_pages++;
        }
        if (page == UINT64_MAX) {
            break;
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
    t->pages = g_tree_new_full(tern_u64_cmp, NULL, g_free, NULL);
    t->nr_pages = 0;
    t->overflow = false;
    t->active = true;
    return TERN_STS_SUCCESS;
}

typedef struct TernReport {
    uint64_t first;         /* pages [first, last] are asked for */
    uint64_t last;
    uint32_t max_runs;
    GArray *runs;           /* struct tern_range, in pages */
    GArray *pages;          /* page numbers reported */
    bool more;
} TernReport;

static gboolean tern_report_page(gpointer key, gpointer value, gpointer opaque)
{
    TernReport *rep = opaque;
    uint64_t page = *(uint64_t *)key;
    struct tern_range *run;

    if (page < rep->first) {
        return FALSE;
    }
    if (page > rep->last) {
        return TRUE;
    }
    run = rep->runs->len ?
          &g_array_index(rep->runs, struct tern_range, rep->runs->len - 1) :
          NULL;
    if (run && run->iova + run->len == page) {
        run->len++;
    } else {
        struct tern_range new_run = { .iova = page, .len = 1 };

        if (rep->runs->len == rep->max_runs) {
            rep->more = true;
            return TRUE;
        }
        g_array_append_val(rep->runs, new_run);
    }
    g_array_append_val(rep->pages, page);
    return FALSE;
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
    g_autoptr(GArray) pages = NULL;
    TernReport rep;
    uint64_t mask;
    guint i;

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

    runs = g_array_new(FALSE, FALSE, sizeof(struct tern_range));
    pages = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    rep = (TernReport) {
        .first = iova >> t->page_shift,
        .last = (iova + len - 1) >> t->page_shift,
        .max_runs = entries,
        .runs = runs,
        .pages = pages,
    };
    g_tree_foreach(t->pages, tern_report_page, &rep);

    for (i = 0; i < runs->len; i++) {
        struct tern_range *run = &g_array_index(runs, struct tern_range, i);

        run->iova = cpu_to_le64(run->iova << t->page_shift);
        run->len = cpu_to_le64(run->len << t->page_shift);
    }
    if (runs->len &&
        pci_dma_write(PCI_DEVICE(pf), buf, runs->data,
                      runs->len * sizeof(struct tern_range)) != MEMTX_OK) {
        return TERN_STS_DMA_ERROR;
    }
    /* Clear exactly what was reported. */
    for (i = 0; i < pages->len; i++) {
        g_tree_remove(t->pages, &g_array_index(pages, uint64_t, i));
    }
    t->nr_pages -= pages->len;
    c->result0 = runs->len;
    c->result1 = pages->len;
    c->result2 = rep.more ? TERN_REPORT_MORE : 0;
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
