// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only module: loading it raises one kernel WARNING, so that the
 * self-test of scripts/vm-run can prove that a splat fails a run.
 */

#include <linux/bug.h>
#include <linux/module.h>

static int __init tern_warn_init(void)
{
	WARN(1, "tern_warn: deliberate warning for the vm-run self-test\n");
	return 0;
}

static void __exit tern_warn_exit(void)
{
}

module_init(tern_warn_init);
module_exit(tern_warn_exit);

MODULE_DESCRIPTION("Raises a kernel warning on load (vm-run self-test)");
MODULE_LICENSE("GPL");
