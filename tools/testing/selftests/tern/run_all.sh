#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run the tern selftests installed next to this script, one after the
# other in one boot of the test VM, passing their TAP through.  Each test
# takes the PF for itself (tern_pf or vfio-pci).  A test that fails
# without a "not ok" line, by crashing say, counts as one failure.

dir=$(dirname "$0")
tests=${*:-tern_pf.sh tern_device_test tern_migration_test tern_fsm_test
	tern_dirty_test tern_iommufd_dirty_test tern_stream_test
	tern_fault_test tern_stress_test tern_qemu_test tern_churn}
failed=0
# The type1 IOMMU driver is a module of the test kernel; the tests that
# open VFs through a container need it.
modprobe vfio_iommu_type1

for t in $tests; do
	echo "# test: $t"
	out=/tmp/run_all.$$.out
	"$dir/$t" > "$out" 2>&1
	rc=$?
	cat "$out"
	# 4 is kselftest's "skipped".
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 4 ]; then
		failed=1
		grep -q '^not ok' "$out" ||
			echo "not ok - $t exited with status $rc"
	fi
	rm -f "$out"
done
exit $failed
