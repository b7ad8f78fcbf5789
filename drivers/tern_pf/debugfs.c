// SPDX-License-Identifier: GPL-2.0
/*
 * tern PF driver: debugfs.  /sys/kernel/debug/tern_pf/<PF>/aq shows the
 * admin queue's size, what is in flight and the per-opcode counters;
 * handles lists the VFs whose migration handle is held.
 */

#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "tern_pf.h"

static struct dentry *tern_pf_debugfs_root;

static int aq_show(struct seq_file *m, void *unused)
{
	struct tern_pf *pf = m->private;
	struct tern_aq *aq = &pf->aq;
	struct tern_aq_stats st;
	unsigned int op;
	bool up;

	spin_lock_irq(&aq->lock);
	st = aq->stats;
	up = aq->up;
	spin_unlock_irq(&aq->lock);

	seq_printf(m, "state: %s\n", up ? "up" : "down");
	seq_printf(m, "depth: %u\n", aq->depth);
	seq_printf(m, "slots: %u\n", aq->nr_slots);
	seq_printf(m, "max_sg: %u\n", aq->max_sg);
	seq_printf(m, "timeout_ms: %u\n", tern_aq_timeout_ms);
	seq_printf(m, "inflight: %u\n", st.inflight);
	seq_printf(m, "max_inflight: %u\n", st.max_inflight);
	seq_printf(m, "errors: %llu\n", st.errors);
	seq_printf(m, "timeouts: %llu\n", st.timeouts);
	seq_printf(m, "interrupted: %llu\n", st.interrupted);
	seq_printf(m, "aborts: %llu\n", st.aborts);
	seq_printf(m, "abort_failures: %llu\n", st.abort_failures);
	seq_printf(m, "aborted_completions: %llu\n", st.aborted);
	seq_printf(m, "late_completions: %llu\n", st.late);
	seq_printf(m, "stray_completions: %llu\n", st.stray);
	seq_printf(m, "polled_completions: %llu\n", st.polled);
	seq_printf(m, "resets: %llu\n", st.resets);
	seq_printf(m, "dirty_pages_reported: %llu\n", st.dirty_pages);
	for (op = TERN_OP_IDENTIFY; op <= TERN_OP_ABORT; op++)
		seq_printf(m, "cmd_%s: %llu\n", tern_op_name(op),
			   st.submitted[op]);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(aq);

static int handles_show(struct seq_file *m, void *unused)
{
	struct tern_pf *pf = m->private;
	struct tern_vf *vf;

	mutex_lock(&pf->lock);
	list_for_each_entry(vf, &pf->handles, node)
		seq_printf(m, "%u\n", vf->vf_id);
	mutex_unlock(&pf->lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(handles);

void tern_pf_debugfs_init(struct tern_pf *pf)
{
	pf->debugfs = debugfs_create_dir(pci_name(pf->pdev),
					 tern_pf_debugfs_root);
	debugfs_create_file("aq", 0444, pf->debugfs, pf, &aq_fops);
	debugfs_create_file("handles", 0444, pf->debugfs, pf, &handles_fops);
}

void tern_pf_debugfs_exit(struct tern_pf *pf)
{
	debugfs_remove_recursive(pf->debugfs);
	pf->debugfs = NULL;
}

void tern_pf_debugfs_register(void)
{
	tern_pf_debugfs_root = debugfs_create_dir("tern_pf", NULL);
}

void tern_pf_debugfs_unregister(void)
{
	debugfs_remove_recursive(tern_pf_debugfs_root);
}
