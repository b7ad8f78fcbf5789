/*
 * tern: VF state images (save and load)
 *
 * Copyright (c) 2025 The tern authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * An image is taken when a SAVE with START arrives and then read out in
 * chunks.  Of a frozen VF, whose device memory cannot change, only the
 * image's head (header, registers, page index) is copied: its pages are
 * read out of device memory as the chunks are saved, and copied only if
 * the VF thaws while the image is open.  Of a running VF the image is a
 * copy made in one go.  A load is staged chunk by chunk and applied only
 * when it is complete and valid.  Every chunk is checksummed on its way:
 * a SAVE returns the CRC32C of the bytes it wrote, and a LOAD with
 * TERN_LOAD_F_CRC checks its buffers against the CRC it carries before it
 * takes a byte of them.
 */

#include "qemu/osdep.h"
#include "qemu/bitmap.h"
#include "qemu/bswap.h"
#include "qemu/crc32c.h"
#include "qemu/guest-random.h"
#include "system/dma.h"
#include "tern.h"

static uint64_t tern_image_size(uint64_t nr_pages)
{
    return TERN_IMAGE_HDR_SIZE + TERN_IMAGE_REGS_SIZE +
           ROUND_UP(nr_pages * 4, 8) + nr_pages * TERN_DEVMEM_PAGE_SIZE;
}

/*
 * The device's CRC engine: the CRC-32C register @crc (not inverted)
 * advanced over @len bytes.  A device checksums at the speed it moves
 * data; QEMU's crc32c() is a byte-wise table (150-500 MB/s on a build
 * machine), which made it the slowest step of every SAVE and LOAD and
 * of taking a frozen image.  So the host's crc32 instruction is used
 * where it has one (x86 SSE4.2), the table elsewhere: same result.
 */
#ifdef HOST_X86_64
static uint32_t __attribute__((target("sse4.2")))
tern_crc32c_sse42(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = crc;

    while (len >= 8) {
        c = __builtin_ia32_crc32di(c, ldq_le_p(p));
        p += 8;
        len -= 8;
    }
    while (len--) {
        c = __builtin_ia32_crc32qi(c, *p++);
    }
    return c;
}
#endif

uint32_t tern_crc32c_update(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;

#ifdef HOST_X86_64
    static int sse42 = -1;

    if (sse42 < 0) {
        sse42 = __builtin_cpu_supports("sse4.2");
    }
    if (sse42) {
        return tern_crc32c_sse42(crc, p, len);
    }
#endif
    while (len) {
        unsigned int n = MIN(len, UINT_MAX);

        /* QEMU's crc32c() inverts its result: undo that. */
        crc = tern_crc32c_update(crc, p, n);
        p += n;
        len -= n;
    }
    return crc;
}

static uint32_t tern_image_crc(const uint8_t *buf, uint64_t size)
{
    /* Standard CRC-32C: initial and final inversion. */
    return tern_crc32c_update(0xffffffff, buf, size) ^ 0xffffffff;
}

uint64_t tern_state_size(TernVfState *vf, bool incremental)
{
    if (!incremental) {
        return tern_image_size(vf->devmem_pages);
    }
    tern_vf_sync_dirty(vf);
    return tern_image_size(bitmap_count_one(vf->devmem_dirty,
                                            vf->devmem_pages));
}

void tern_state_reset(TernVfState *vf)
{
    g_free(vf->save_buf);
    vf->save_buf = NULL;
    vf->save_size = 0;
    vf->save_live = false;
    vf->loading = false;
    vf->load_pos = vf->load_size = 0;
    vf->has_base = false;
    vf->new_config = false;
}

void tern_state_free(TernVfState *vf)
{
    tern_state_reset(vf);
    g_free(vf->load_buf);
    vf->load_buf = NULL;
}

static void tern_regs_to_image(TernVfState *vf, struct tern_image_regs *r)
{
    unsigned n;

    memset(r, 0, sizeof(*r));
    for (n = 0; n < TERN_VF_NR_QUEUES; n++) {
        TernQueue *q = &vf->q[n];

        r->q[n].base = cpu_to_le64(q->base);
        r->q[n].size = cpu_to_le32(q->size);
        r->q[n].ctrl = cpu_to_le32(q->ctrl);
        r->q[n].head = cpu_to_le32(q->head);
        r->q[n].tail = cpu_to_le32(q->tail);
        r->q[n].msix = cpu_to_le32(q->msix);
        r->q[n].status = cpu_to_le32(q->status);
        r->q[n].cnt_desc = cpu_to_le64(q->cnt_desc);
        r->q[n].cnt_err = cpu_to_le64(q->cnt_err);
        r->q[n].cnt_bytes = cpu_to_le64(q->cnt_bytes);
    }
    r->cnt_desc = cpu_to_le64(vf->cnt_desc);
    r->cnt_bytes = cpu_to_le64(vf->cnt_bytes);
}

static const uint32_t *tern_save_index(TernVfState *vf)
{
    return (const uint32_t *)(vf->save_buf + TERN_IMAGE_HDR_SIZE +
                              TERN_IMAGE_REGS_SIZE);
}

/* Copy the data pages of a live image out of device memory. */
static void tern_state_materialize(TernVfState *vf)
{
    const uint32_t *index;
    uint64_t i, nr_pages;
    uint8_t *buf;

    if (!vf->save_buf || !vf->save_live) {
        return;
    }
    nr_pages = (vf->save_size - vf->save_data_off) / TERN_DEVMEM_PAGE_SIZE;
    buf = g_malloc(vf->save_size);
    memcpy(buf, vf->save_buf, vf->save_data_off);
    index = (const uint32_t *)(buf + TERN_IMAGE_HDR_SIZE +
                               TERN_IMAGE_REGS_SIZE);
    for (i = 0; i < nr_pages; i++) {
        memcpy(buf + vf->save_data_off + i * TERN_DEVMEM_PAGE_SIZE,
               vf->devmem_ptr +
               (uint64_t)le32_to_cpu(index[i]) * TERN_DEVMEM_PAGE_SIZE,
               TERN_DEVMEM_PAGE_SIZE);
    }
    g_free(vf->save_buf);
    vf->save_buf = buf;
    vf->save_live = false;
}

/* The VF leaves FROZEN: its device memory may change from now on. */
void tern_state_thaw(TernVfState *vf)
{
    tern_state_materialize(vf);
}

/*
 * The bytes of the open image at @off, and in *avail how many follow
 * contiguously in memory (at most @want, at least 1 if @off is inside).
 */
static const uint8_t *tern_save_ptr(TernVfState *vf, uint64_t off,
                                    uint64_t want, uint64_t *avail)
{
    const uint32_t *index;
    uint64_t k, nr_pages, in, n;
    uint32_t page;

    if (!vf->save_live || off < vf->save_data_off) {
        n = (vf->save_live ? vf->save_data_off : vf->save_size) - off;
        *avail = MIN(n, want);
        return vf->save_buf + off;
    }
    index = tern_save_index(vf);
    nr_pages = (vf->save_size - vf->save_data_off) / TERN_DEVMEM_PAGE_SIZE;
    k = (off - vf->save_data_off) / TERN_DEVMEM_PAGE_SIZE;
    in = (off - vf->save_data_off) % TERN_DEVMEM_PAGE_SIZE;
    page = le32_to_cpu(index[k]);
    n = TERN_DEVMEM_PAGE_SIZE - in;
    /* Pages that follow each other in device memory too: one piece. */
    while (n < want && k + 1 < nr_pages &&
           le32_to_cpu(index[k + 1]) == le32_to_cpu(index[k]) + 1) {
        n += TERN_DEVMEM_PAGE_SIZE;
        k++;
    }
    *avail = MIN(n, want);
    return vf->devmem_ptr + (uint64_t)page * TERN_DEVMEM_PAGE_SIZE + in;
}

/* Take a new image of the VF into vf->save_buf. */
static void tern_state_take(TernPfState *pf, TernVfState *vf, bool incr)
{
    bool live = vf->mig_state == TERN_VF_STATE_FROZEN;
    struct tern_image_hdr *h;
    uint64_t nr_pages, size, page, i, head, off;
    uint32_t *index;
    uint8_t *data;
    uint32_t crc;

    /* Clear the log first: a write racing with the copy is sent again. */
    tern_vf_sync_dirty(vf);
    nr_pages = incr ? bitmap_count_one(vf->devmem_dirty, vf->devmem_pages) :
                      vf->devmem_pages;
    size = tern_image_size(nr_pages);

    head = TERN_IMAGE_HDR_SIZE + TERN_IMAGE_REGS_SIZE +
           ROUND_UP(nr_pages * 4, 8);
    g_free(vf->save_buf);
    vf->save_buf = g_malloc0(live ? head : size);
    vf->save_size = size;
    vf->save_live = live;
    vf->save_data_off = head;

    if (incr) {
        vf->seq++;
    } else {
        qemu_guest_getrandom_nofail(&vf->session, sizeof(vf->session));
        vf->seq = 0;
        /* The new initial data is in this image. */
        vf->new_config = false;
    }
    vf->has_base = true;

    h = (struct tern_image_hdr *)vf->save_buf;
    h->magic = cpu_to_le32(TERN_IMAGE_MAGIC);
    h->version = cpu_to_le16(TERN_IMAGE_VERSION);
    h->type = cpu_to_le16(incr ? TERN_IMAGE_INCREMENTAL : TERN_IMAGE_FULL);
    h->hdr_size = cpu_to_le32(TERN_IMAGE_HDR_SIZE);
    h->total_size = cpu_to_le64(size);
    h->session = cpu_to_le64(vf->session);
    h->seq = cpu_to_le32(vf->seq);
    h->devmem_size = cpu_to_le64(vf->devmem_size);
    h->nr_queues = cpu_to_le16(TERN_VF_NR_QUEUES);
    h->page_shift = cpu_to_le16(TERN_DEVMEM_PAGE_SHIFT);
    h->nr_pages = cpu_to_le32(nr_pages);
    h->regs_offset = cpu_to_le32(TERN_IMAGE_HDR_SIZE);
    h->regs_size = cpu_to_le32(TERN_IMAGE_REGS_SIZE);
    h->index_offset = cpu_to_le64(TERN_IMAGE_HDR_SIZE + TERN_IMAGE_REGS_SIZE);
    h->data_offset = cpu_to_le64(TERN_IMAGE_HDR_SIZE + TERN_IMAGE_REGS_SIZE +
                                 ROUND_UP(nr_pages * 4, 8));

    tern_regs_to_image(vf, (struct tern_image_regs *)
                       (vf->save_buf + TERN_IMAGE_HDR_SIZE));
    index = (uint32_t *)(vf->save_buf + le64_to_cpu(h->index_offset));
    data = live ? NULL : vf->save_buf + le64_to_cpu(h->data_offset);
    for (page = 0, i = 0; page < vf->devmem_pages; page++) {
        if (incr && !test_bit(page, vf->devmem_dirty)) {
            continue;
        }
        index[i] = cpu_to_le32(page);
        if (!live) {
            memcpy(data + i * TERN_DEVMEM_PAGE_SIZE,
                   vf->devmem_ptr + page * TERN_DEVMEM_PAGE_SIZE,
                   TERN_DEVMEM_PAGE_SIZE);
        }
        i++;
    }
    bitmap_zero(vf->devmem_dirty, vf->devmem_pages);

    /* One pass over the image, wherever its bytes are. */
    crc = 0xffffffff;
    for (off = 0; off < size; ) {
        uint64_t n;
        const uint8_t *p = tern_save_ptr(vf, off, size - off, &n);

        crc = tern_crc32c_update(crc, p, n);
        off += n;
    }
    h->crc = cpu_to_le32(crc ^ 0xffffffff);
    if (tern_pf_fire_save_fault(pf, tern_vf_num(vf))) {
        tern_state_materialize(vf);
        vf->save_buf[size - 1] ^= 0x5a;
    }
}

static uint16_t tern_read_sg(TernPfState *pf, const struct tern_aq_cmd *cmd,
                             struct tern_sg **sg, uint32_t *count)
{
    uint32_t n = le32_to_cpu(cmd->xfer.sg_count);
    uint32_t i;

    if (n < 1 || n > pf->max_sg) {
        return TERN_STS_INVALID_FIELD;
    }
    *sg = g_new(struct tern_sg, n);
    if (pci_dma_read(PCI_DEVICE(pf), le64_to_cpu(cmd->xfer.sg_addr), *sg,
                     n * sizeof(**sg)) != MEMTX_OK) {
        g_free(*sg);
        *sg = NULL;
        return TERN_STS_DMA_ERROR;
    }
    for (i = 0; i < n; i++) {
        if (le32_to_cpu((*sg)[i].len) == 0) {
            g_free(*sg);
            *sg = NULL;
            return TERN_STS_INVALID_FIELD;
        }
    }
    *count = n;
    return TERN_STS_SUCCESS;
}

uint16_t tern_state_save(TernPfState *pf, TernVfState *vf,
                         const struct tern_aq_cmd *cmd, TernCmd *c)
{
    uint64_t offset = le64_to_cpu(cmd->xfer.offset);
    bool start = cmd->flags & TERN_SAVE_F_START;
    bool incr = cmd->flags & TERN_SAVE_F_INCREMENTAL;
    g_autofree struct tern_sg *sg = NULL;
    uint64_t pos, end, written = 0;
    uint32_t count, i, crc = 0xffffffff;
    uint16_t sts;

    if (cmd->flags & ~(TERN_SAVE_F_START | TERN_SAVE_F_INCREMENTAL) ||
        (incr && !start)) {
        return TERN_STS_INVALID_FIELD;
    }
    if (start) {
        if (offset) {
            return TERN_STS_INVALID_OFFSET;
        }
        if (incr && !vf->has_base) {
            return TERN_STS_NO_BASE;
        }
    } else {
        if (!vf->save_buf) {
            return TERN_STS_INVALID_STATE;
        }
        if (offset > vf->save_size) {
            return TERN_STS_INVALID_OFFSET;
        }
    }
    sts = tern_read_sg(pf, cmd, &sg, &count);
    if (sts) {
        return sts;
    }
    if (start) {
        tern_state_take(pf, vf, incr);
    }

    /* SAVE_SHORT: a device may return less than the buffers hold. */
    end = vf->save_size;
    if (pf->dbg_save_short) {
        end = MIN(end, offset + pf->dbg_save_short);
    }
    pos = offset;
    for (i = 0; i < count && pos < end; i++) {
        uint64_t addr = le64_to_cpu(sg[i].addr);
        uint64_t left = MIN(le32_to_cpu(sg[i].len), end - pos);

        while (left) {
            uint64_t n;
            const uint8_t *p = tern_save_ptr(vf, pos, left, &n);

            if (pci_dma_write(PCI_DEVICE(pf), addr, p, n) != MEMTX_OK) {
                return TERN_STS_DMA_ERROR;
            }
            /* The device checksums what it writes: software need not. */
            crc = tern_crc32c_update(crc, p, n);
            addr += n;
            left -= n;
            pos += n;
            written += n;
        }
    }
    c->result0 = written | (uint64_t)(crc ^ 0xffffffff) << 32;
    c->result1 = vf->save_size;
    c->result2 = pos < vf->save_size ? TERN_XFER_MORE : 0;
    /* SAVE_RESIZE: the size of an open image changes under the driver. */
    if (!start && tern_pf_fire_resize_fault(pf, tern_vf_num(vf))) {
        c->result1 += TERN_DEVMEM_PAGE_SIZE;
    }
    return TERN_STS_SUCCESS;
}

/* The staging buffer is kept: a load does not pay for fresh memory. */
static void tern_load_discard(TernVfState *vf)
{
    vf->loading = false;
    vf->load_pos = vf->load_size = 0;
}

/*
 * The staging buffer, made once per VF and touched in full then, so that
 * no LOAD chunk pays for first touches of host memory.
 */
static void tern_load_staging(TernVfState *vf)
{
    uint64_t size = tern_max_image_size(vf->devmem_size);

    if (!vf->load_buf) {
        vf->load_buf = g_malloc(size);
        memset(vf->load_buf, 0, size);
    }
}

/*
 * CRC32C of the bytes of the SG list, read in place where the host
 * memory can be mapped (no copy), through a bounce buffer otherwise.
 */
static uint16_t tern_sg_crc(TernPfState *pf, const struct tern_sg *sg,
                            uint32_t count, uint32_t *crcp)
{
    PCIDevice *dev = PCI_DEVICE(pf);
    uint32_t crc = 0xffffffff;  /* the register, not inverted */
    uint8_t bounce[4096];
    uint32_t i;

    for (i = 0; i < count; i++) {
        dma_addr_t addr = le64_to_cpu(sg[i].addr);
        dma_addr_t len = le32_to_cpu(sg[i].len);

        while (len) {
            dma_addr_t n = len;
            void *p = pci_dma_map(dev, addr, &n, DMA_DIRECTION_TO_DEVICE);

            if (p && n) {
                crc = tern_crc32c_update(crc, p, n);
                pci_dma_unmap(dev, p, n, DMA_DIRECTION_TO_DEVICE, n);
            } else {
                if (p) {
                    pci_dma_unmap(dev, p, n, DMA_DIRECTION_TO_DEVICE, 0);
                }
                n = MIN(len, sizeof(bounce));
                if (pci_dma_read(dev, addr, bounce, n) != MEMTX_OK) {
                    return TERN_STS_DMA_ERROR;
                }
                crc = tern_crc32c_update(crc, bounce, n);
            }
            addr += n;
            len -= n;
        }
    }
    *crcp = crc;
    return TERN_STS_SUCCESS;
}

/* Checks that need only the header. */
static uint16_t tern_load_check_hdr(TernVfState *vf,
                                    const struct tern_image_hdr *h)
{
    uint16_t type = le16_to_cpu(h->type);
    uint64_t nr_pages = le32_to_cpu(h->nr_pages);

    if (le32_to_cpu(h->magic) != TERN_IMAGE_MAGIC) {
        return TERN_STS_IMG_MAGIC;
    }
    if (le16_to_cpu(h->version) != TERN_IMAGE_VERSION) {
        return TERN_STS_IMG_VERSION;
    }
    if (le64_to_cpu(h->devmem_size) != vf->devmem_size ||
        le16_to_cpu(h->nr_queues) != TERN_VF_NR_QUEUES ||
        le16_to_cpu(h->page_shift) != TERN_DEVMEM_PAGE_SHIFT) {
        return TERN_STS_IMG_CONFIG;
    }
    if (le32_to_cpu(h->hdr_size) != TERN_IMAGE_HDR_SIZE ||
        le32_to_cpu(h->regs_offset) != TERN_IMAGE_HDR_SIZE ||
        le32_to_cpu(h->regs_size) != TERN_IMAGE_REGS_SIZE ||
        nr_pages > vf->devmem_pages ||
        le64_to_cpu(h->index_offset) !=
            TERN_IMAGE_HDR_SIZE + TERN_IMAGE_REGS_SIZE ||
        le64_to_cpu(h->data_offset) !=
            TERN_IMAGE_HDR_SIZE + TERN_IMAGE_REGS_SIZE +
            ROUND_UP(nr_pages * 4, 8) ||
        le64_to_cpu(h->total_size) != tern_image_size(nr_pages)) {
        return TERN_STS_IMG_SIZE;
    }
    if (type == TERN_IMAGE_FULL) {
        if (le32_to_cpu(h->seq) != 0) {
            return TERN_STS_IMG_SEQUENCE;
        }
    } else if (type == TERN_IMAGE_INCREMENTAL) {
        if (!vf->loaded || le64_to_cpu(h->session) != vf->loaded_session ||
            le32_to_cpu(h->seq) != vf->loaded_seq + 1) {
            return TERN_STS_IMG_SEQUENCE;
        }
    } else {
        return TERN_STS_IMG_CORRUPT;
    }
    return TERN_STS_SUCCESS;
}

static bool tern_load_check_regs(const struct tern_image_regs *r)
{
    unsigned n;

    for (n = 0; n < TERN_VF_NR_QUEUES; n++) {
        const struct tern_image_queue *q = &r->q[n];
        uint32_t size = le32_to_cpu(q->size);
        uint32_t ctrl = le32_to_cpu(q->ctrl);
        uint32_t status = le32_to_cpu(q->status);

        if (ctrl & ~(TERN_Q_CTRL_ENABLE | TERN_Q_CTRL_INT_EN) ||
            status & ~(TERN_Q_STS_ENABLED | TERN_Q_STS_HALTED |
                       TERN_Q_STS_ERR_MASK) ||
            le32_to_cpu(q->msix) >= TERN_VF_MSIX_VECTORS ||
            !(ctrl & TERN_Q_CTRL_ENABLE) != !(status & TERN_Q_STS_ENABLED)) {
            return false;
        }
        if (status & TERN_Q_STS_ENABLED) {
            if (size < TERN_Q_MIN_ENTRIES || size > TERN_Q_MAX_ENTRIES ||
                le64_to_cpu(q->base) % TERN_Q_ALIGN ||
                le32_to_cpu(q->head) >= size ||
                le32_to_cpu(q->tail) >= size) {
                return false;
            }
        } else if (le32_to_cpu(q->head) > TERN_Q_MAX_ENTRIES ||
                   le32_to_cpu(q->tail) > TERN_Q_MAX_ENTRIES) {
            return false;
        }
    }
    return true;
}

/* Checks of the complete image. */
static uint16_t tern_load_check(TernVfState *vf)
{
    struct tern_image_hdr *h = (struct tern_image_hdr *)vf->load_buf;
    uint32_t nr_pages = le32_to_cpu(h->nr_pages);
    const uint32_t *index;
    uint32_t crc = le32_to_cpu(h->crc);
    uint32_t i;

    h->crc = 0;
    if (tern_image_crc(vf->load_buf, vf->load_size) != crc) {
        return TERN_STS_IMG_CHECKSUM;
    }
    if (le16_to_cpu(h->type) == TERN_IMAGE_FULL &&
        nr_pages != vf->devmem_pages) {
        return TERN_STS_IMG_CORRUPT;
    }
    index = (const uint32_t *)(vf->load_buf + le64_to_cpu(h->index_offset));
    for (i = 0; i < nr_pages; i++) {
        uint32_t page = le32_to_cpu(index[i]);

        if (page >= vf->devmem_pages ||
            (i && page <= le32_to_cpu(index[i - 1]))) {
            return TERN_STS_IMG_CORRUPT;
        }
    }
    if (!tern_load_check_regs((const struct tern_image_regs *)
                              (vf->load_buf + TERN_IMAGE_HDR_SIZE))) {
        return TERN_STS_IMG_CORRUPT;
    }
    return TERN_STS_SUCCESS;
}

static void tern_load_apply(TernVfState *vf)
{
    const struct tern_image_hdr *h =
        (const struct tern_image_hdr *)vf->load_buf;
    const struct tern_image_regs *r = (const struct tern_image_regs *)
        (vf->load_buf + TERN_IMAGE_HDR_SIZE);
    const uint32_t *index =
        (const uint32_t *)(vf->load_buf + le64_to_cpu(h->index_offset));
    const uint8_t *data = vf->load_buf + le64_to_cpu(h->data_offset);
    uint32_t nr_pages = le32_to_cpu(h->nr_pages);
    uint32_t i;
    unsigned n;

    for (n = 0; n < TERN_VF_NR_QUEUES; n++) {
        TernQueue *q = &vf->q[n];

        q->base = le64_to_cpu(r->q[n].base);
        q->size = le32_to_cpu(r->q[n].size);
        q->ctrl = le32_to_cpu(r->q[n].ctrl);
        q->head = le32_to_cpu(r->q[n].head);
        q->tail = le32_to_cpu(r->q[n].tail);
        q->msix = le32_to_cpu(r->q[n].msix);
        q->status = le32_to_cpu(r->q[n].status);
        q->cnt_desc = le64_to_cpu(r->q[n].cnt_desc);
        q->cnt_err = le64_to_cpu(r->q[n].cnt_err);
        q->cnt_bytes = le64_to_cpu(r->q[n].cnt_bytes);
    }
    vf->cnt_desc = le64_to_cpu(r->cnt_desc);
    vf->cnt_bytes = le64_to_cpu(r->cnt_bytes);
    for (i = 0; i < nr_pages; i++) {
        memcpy(vf->devmem_ptr +
               (uint64_t)le32_to_cpu(index[i]) * TERN_DEVMEM_PAGE_SIZE,
               data + (uint64_t)i * TERN_DEVMEM_PAGE_SIZE,
               TERN_DEVMEM_PAGE_SIZE);
    }
    vf->loaded = true;
    vf->loaded_session = le64_to_cpu(h->session);
    vf->loaded_seq = le32_to_cpu(h->seq);

    /* A loaded VF has no save base; its next image must be FULL. */
    g_free(vf->save_buf);
    vf->save_buf = NULL;
    vf->save_size = 0;
    vf->save_live = false;
    vf->has_base = false;
    vf->new_config = false;
    tern_vf_clear_dirty(vf);
}

uint16_t tern_state_load(TernPfState *pf, TernVfState *vf,
                         const struct tern_aq_cmd *cmd, TernCmd *c)
{
    uint64_t offset = le64_to_cpu(cmd->xfer.offset);
    bool start = cmd->flags & TERN_LOAD_F_START;
    g_autofree struct tern_sg *sg = NULL;
    uint64_t consumed = 0;
    uint32_t count, i;
    uint16_t sts;

    if (cmd->flags & ~(TERN_LOAD_F_START | TERN_LOAD_F_CRC)) {
        return TERN_STS_INVALID_FIELD;
    }
    if (vf->mig_state != TERN_VF_STATE_FROZEN) {
        return TERN_STS_INVALID_STATE;
    }
    if (start) {
        if (offset) {
            return TERN_STS_INVALID_OFFSET;
        }
    } else {
        if (!vf->loading) {
            return TERN_STS_INVALID_STATE;
        }
        if (offset != vf->load_pos) {
            return TERN_STS_INVALID_OFFSET;
        }
    }
    sts = tern_read_sg(pf, cmd, &sg, &count);
    if (sts) {
        return sts;
    }
    /* Checked before anything is taken: a bad chunk changes nothing. */
    if (cmd->flags & TERN_LOAD_F_CRC) {
        uint32_t crc;

        sts = tern_sg_crc(pf, sg, count, &crc);
        if (sts) {
            return sts;
        }
        if ((crc ^ 0xffffffff) != le32_to_cpu(cmd->xfer.crc)) {
            return TERN_STS_DATA_CRC;
        }
    }
    if (start) {
        tern_load_discard(vf);
        tern_load_staging(vf);
        vf->loading = true;
    }

    for (i = 0; i < count; i++) {
        uint64_t addr = le64_to_cpu(sg[i].addr);
        uint64_t len = le32_to_cpu(sg[i].len);

        while (len) {
            uint64_t end = vf->load_size ? vf->load_size : TERN_IMAGE_HDR_SIZE;
            uint64_t n = MIN(len, end - vf->load_pos);

            if (n == 0) {
                break;
            }
            if (pci_dma_read(PCI_DEVICE(pf), addr,
                             vf->load_buf + vf->load_pos, n) != MEMTX_OK) {
                tern_load_discard(vf);
                return TERN_STS_DMA_ERROR;
            }
            vf->load_pos += n;
            consumed += n;
            addr += n;
            len -= n;
            if (!vf->load_size && vf->load_pos == TERN_IMAGE_HDR_SIZE) {
                const struct tern_image_hdr *h = (void *)vf->load_buf;

                sts = tern_load_check_hdr(vf, h);
                if (sts) {
                    tern_load_discard(vf);
                    return sts;
                }
                /* Checked: at most the staging buffer's size. */
                vf->load_size = le64_to_cpu(h->total_size);
            }
        }
    }

    c->result0 = consumed;
    c->result1 = vf->load_size;
    if (vf->load_size && vf->load_pos == vf->load_size) {
        sts = tern_load_check(vf);
        if (sts) {
            tern_load_discard(vf);
            return sts;
        }
        tern_load_apply(vf);
        tern_load_discard(vf);
        c->result2 = TERN_LOAD_APPLIED;
    } else {
        c->result2 = TERN_XFER_MORE;
    }
    return TERN_STS_SUCCESS;
}
