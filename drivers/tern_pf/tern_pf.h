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
#include <linux/semaphore.h>
#include <linux/spinlock.h>
#include <linux/tern_pf.h>
#include <linux/workqueue.h>
#include <tern/tern_hw.h>

/*
 * Commands in flight are tracked in slots that belong to the queue, not
 * to the callers: a caller that times out leaves its slot ABANDONED with
 * every DMA resource of the command still held, so that a late
 * completion finds live memory.  The tag carries the slot index and a
 * generation, so a completion for an older use of a slot is told apart.
 */
#define TERN_AQ_SLOT_BITS	6
#define TERN_AQ_SLOTS		BIT(TERN_AQ_SLOT_BITS)
#define TERN_AQ_BUF_SIZE	4096	/* per-slot SG list, ranges, output */

enum tern_aq_slot_state {
	TERN_SLOT_FREE,
	TERN_SLOT_BUSY,		/* submitted, the caller waits */
	TERN_SLOT_DONE,		/* completed, the caller collects */
	TERN_SLOT_ABORTED,	/* the queue was reset under it */
	TERN_SLOT_ABANDONED,	/* the caller timed out */
};

struct tern_aq_slot {
	enum tern_aq_slot_state state;
	u16 gen;
	struct completion done;
	struct tern_aq_cpl cpl;
	u8 opcode;
	u16 vf;
	unsigned long abandoned_at;
	/* DMA resources of the command, held until the device is done */
	void *buf;
	dma_addr_t buf_dma;
	struct sg_table *data;
	enum dma_data_direction dir;
	bool data_mapped;
};

struct tern_aq_stats {
	u64 submitted[TERN_OP_DIRTY_STOP + 1];
	u64 errors;		/* completions with a failure status */
	u64 timeouts;
	u64 late;		/* completions of abandoned commands */
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
	struct semaphore free_slots;
	struct mutex reset_lock;	/* enable, disable, reset */
	struct delayed_work watchdog;
	bool up;
	u16 depth;		/* ring entries */
	u16 nr_slots;
	u16 cmd_tail;
	u16 cpl_head;
	u16 phase;
	struct tern_aq_cmd *cmds;
	dma_addr_t cmds_dma;
	struct tern_aq_cpl *cpls;
	dma_addr_t cpls_dma;
	struct tern_aq_slot slots[TERN_AQ_SLOTS];
	struct tern_aq_stats stats;
};

/**
 * struct tern_aq_io - the memory a command reads and writes
 * @in: copied into the slot buffer before submission (ranges)
 * @in_len: bytes of @in
 * @out: receives the slot buffer after completion (identify, report)
 * @out_len: bytes of @out
 * @data: pages mapped for the PF and listed as tern_sg entries (save, load)
 * @data_len: bytes of @data to use
 * @dir: direction of @data
 */
struct tern_aq_io {
	const void *in;
	size_t in_len;
	void *out;
	size_t out_len;
	struct sg_table *data;
	u32 data_len;
	enum dma_data_direction dir;
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
	enum tern_pf_state state;	/* written under gate and lock */
	struct mutex lock;	/* handles, sriov_busy */
	struct list_head handles;
	bool sriov_busy;	/* VFs being enabled or disabled */
	u16 total_vfs;
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
const char *tern_op_name(u8 opcode);

void tern_pf_debugfs_init(struct tern_pf *pf);
void tern_pf_debugfs_exit(struct tern_pf *pf);
void tern_pf_debugfs_register(void);
void tern_pf_debugfs_unregister(void);

void tern_pf_put(struct tern_pf *pf);

#endif /* TERN_PF_INTERNAL_H */
