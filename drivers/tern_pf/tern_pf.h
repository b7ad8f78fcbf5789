/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tern PF driver: internal definitions.
 */
#ifndef TERN_PF_INTERNAL_H
#define TERN_PF_INTERNAL_H

#include <linux/bits.h>
#include <linux/completion.h>
#include <linux/dma-direction.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/tern_pf.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <tern/tern_hw.h>

/*
 * Commands in flight are tracked in slots that belong to the queue, not
 * to the callers: a caller that times out or is killed leaves its slot
 * ABANDONED with every DMA resource of the command still held (a
 * reference on every data page included), so that a late completion
 * finds live memory.  The watchdog then ABORTs the command; its ABORTED
 * (or late) completion frees the slot.  The tag carries the slot index
 * and a generation, so a completion for an older use of a slot is told
 * apart.  The last slot is kept for the watchdog's ABORT, so that it is
 * never starved by the commands it has to end.
 */
#define TERN_AQ_SLOT_BITS	6
#define TERN_AQ_SLOTS		BIT(TERN_AQ_SLOT_BITS)
#define TERN_AQ_BUF_SIZE	4096	/* per-slot SG list, ranges, output */

enum tern_aq_slot_state {
	TERN_SLOT_FREE,
	TERN_SLOT_BUSY,		/* submitted, the caller waits */
	TERN_SLOT_DONE,		/* completed, the caller collects */
	TERN_SLOT_RESET,	/* the queue was reset under it */
	TERN_SLOT_ABANDONED,	/* the caller timed out or was killed */
};

struct tern_aq_slot {
	enum tern_aq_slot_state state;
	u16 gen;
	struct completion done;
	struct tern_aq_cpl cpl;
	u8 opcode;
	u16 vf;
	unsigned long abandoned_at;
	bool no_abort;		/* the device does not know ABORT */
	/* DMA resources of the command, held until the device is done */
	void *buf;
	dma_addr_t buf_dma;
	struct sg_table *data;
	enum dma_data_direction dir;
	bool data_mapped;
	bool pages_held;	/* a reference on every page of @data */
	struct tern_vf_buf *vbuf;	/* a mapped buffer, referenced */
};

struct tern_aq_stats {
	u64 submitted[TERN_OP_ABORT + 1];
	u64 errors;		/* completions with a failure status */
	u64 timeouts;
	u64 interrupted;	/* callers killed while waiting */
	u64 aborts;		/* ABORTs sent for abandoned commands */
	u64 abort_failures;	/* ABORTs that did not free the command */
	u64 aborted;		/* ABORTED completions of abandoned commands */
	u64 late;		/* other completions of abandoned commands */
	u64 stray;		/* completions matching no command */
	u64 polled;		/* completions found by polling, not the IRQ */
	u64 resets;
	u64 dirty_pages;	/* pages DIRTY_REPORT returned */
	unsigned int inflight;
	unsigned int max_inflight;
};

struct tern_aq {
	struct tern_pf *pf;
	spinlock_t lock;	/* rings, slots, stats */
	wait_queue_head_t slot_wait;	/* callers waiting for a free slot */
	struct mutex reset_lock;	/* enable, disable, reset, ABORT */
	struct delayed_work watchdog;
	bool up;
	u16 depth;		/* ring entries */
	u16 nr_slots;		/* the last one is abort_slot */
	u16 max_sg;		/* SG entries per command: device and driver */
	u16 cmd_tail;
	u16 cpl_head;
	u16 phase;
	struct tern_aq_cmd *cmds;
	dma_addr_t cmds_dma;
	struct tern_aq_cpl *cpls;
	dma_addr_t cpls_dma;
	struct tern_aq_slot slots[TERN_AQ_SLOTS];
	struct tern_aq_slot *abort_slot;	/* the watchdog's, for ABORT */
	struct tern_aq_stats stats;
};

/**
 * struct tern_aq_io - the memory a command reads and writes
 * @in: copied into the slot buffer before submission (ranges)
 * @in_len: bytes of @in
 * @out: receives the slot buffer after completion (identify, report)
 * @out_len: bytes of @out
 * @data: pages mapped for the PF and listed as tern_sg entries (save, load)
 * @data_len: bytes of @data (or of @vbuf) to use
 * @dir: direction of @data
 * @vbuf: instead of @data, a buffer mapped once (tern_vf_buf_map())
 * @vbuf_off: where in @vbuf the @data_len bytes start
 */
struct tern_aq_io {
	const void *in;
	size_t in_len;
	void *out;
	size_t out_len;
	struct sg_table *data;
	u32 data_len;
	enum dma_data_direction dir;
	struct tern_vf_buf *vbuf;
	u32 vbuf_off;
};

/*
 * A data buffer mapped for the PF's DMA once, for many commands
 * (tern_vf_buf_map()).  Its owner and every command in flight on it hold
 * a reference; it is unmapped by the last one, or by the PF's removal,
 * whichever comes first.
 */
struct tern_vf_buf {
	struct kref ref;
	struct tern_pf *pf;	/* referenced */
	struct list_head node;	/* in pf->bufs while mapped */
	struct sg_table sgt;	/* the owner's pages, each referenced */
	enum dma_data_direction dir;
	bool mapped;		/* under pf->buf_lock */
};

enum tern_pf_state {
	TERN_PF_LIVE,
	TERN_PF_RESETTING,
	TERN_PF_GONE,
};

struct tern_pf {
	struct pci_dev *pdev;
	void __iomem *regs;
	struct kref ref;	/* the binding, and one per handle */
	/*
	 * Callers hold gate for reading across a command; reset and
	 * removal take it for writing to wait for them to leave.
	 */
	struct rw_semaphore gate;
	/*
	 * Written (WRITE_ONCE) under lock only.  tern_vf_get() reads it
	 * under lock; callers inside gate read it with READ_ONCE and no
	 * lock: reset and removal change it first, disable the queue, and
	 * only then take gate for writing to wait for those callers.
	 */
	enum tern_pf_state state;
	struct mutex lock;	/* state, handles, sriov_busy */
	struct list_head handles;
	bool sriov_busy;	/* VFs being enabled or disabled */
	u16 total_vfs;
	u32 dev_cap;		/* TERN_PF_REG_DEV_CAP */
	spinlock_t buf_lock;	/* bufs, tern_vf_buf.mapped */
	struct list_head bufs;	/* mapped tern_vf_bufs */
	struct tern_aq aq;
	struct dentry *debugfs;
};

struct tern_vf {
	struct tern_pf *pf;
	struct list_head node;	/* in pf->handles */
	u16 vf_id;
	tern_vf_event_fn event;
	void *priv;
};

extern unsigned int tern_aq_timeout_ms;
extern struct pci_driver tern_pf_driver;

int tern_aq_init(struct tern_pf *pf);
void tern_aq_fini(struct tern_pf *pf);
int tern_aq_enable(struct tern_aq *aq);
void tern_aq_disable(struct tern_aq *aq);
int tern_aq_exec(struct tern_aq *aq, struct tern_aq_cmd *cmd,
		 const struct tern_aq_io *io, struct tern_aq_cpl *cpl);
int tern_aq_identify_device(struct tern_aq *aq);
const char *tern_op_name(u8 opcode);

void tern_pf_debugfs_init(struct tern_pf *pf);
void tern_pf_debugfs_exit(struct tern_pf *pf);
void tern_pf_debugfs_register(void);
void tern_pf_debugfs_unregister(void);

void tern_pf_put(struct tern_pf *pf);
void tern_vf_buf_put(struct tern_vf_buf *buf);
void tern_pf_unmap_bufs(struct tern_pf *pf);

#endif /* TERN_PF_INTERNAL_H */
