#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Upstream's VFIO selftests (tools/testing/selftests/vfio of the 7.x test
# kernel, built with tern's driver for their library by
# scripts/build-vfio-selftests) on tern, in the test VM, TAP passed
# through:
#
# - the device tests on one VF bound to tern_vfio_pci, each in every
#   IOMMU mode upstream defines (the tests' fixture variants: vfio type1
#   and type1v2 containers, iommufd's compat containers, iommufd cdev);
#   vfio_pci_driver_test does DMA and MSI-X through tern's driver;
# - vfio_pci_sriov_uapi_test, a test of the VF token of a PF that
#   vfio-pci owns, on the tern PF bound to vfio-pci (the test creates its
#   VF, which vfio-pci claims).
#
# Tests that need what the kernel lacks (hugetlbfs, an IOMMU debugfs)
# skip with the reason.  A test that fails without a "not ok" line, by
# crashing say, counts as one failure.  Usage: run_vfio.sh [TEST...]
#
# vfio_pci_driver_test, the one that uses tern's driver, maps (and so
# pins) 1 GiB of shared anonymous memory in each test's fixture: in 4 KiB
# pages that takes longer than the harness's 30 s per test under TCG with
# the debug kernel.  Shared memory gets transparent huge pages for the
# run (shmem_enabled=always): 512 times fewer pages to fault and pin
# (Documentation/tern/testing.rst, "Upstream's VFIO selftests").

dir=$(dirname "$0")
vf_tests="vfio_pci_device_test vfio_dma_mapping_test
	vfio_dma_mapping_mmio_test vfio_iommufd_setup_test
	vfio_pci_device_init_perf_test vfio_pci_driver_test"
tests=${*:-$vf_tests vfio_pci_sriov_uapi_test}
failed=0

die() {
	echo "not ok - run_vfio.sh: $*"
	exit 1
}

pf=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x1af4:0x10f0 ] &&
		pf=${d##*/}
done
[ -n "$pf" ] || die "no tern PF"
pfdir=/sys/bus/pci/devices/$pf

# Give the PF to driver $1, without VFs: never unbind a PF that has VFs
# (7.3 warns once per VF).
pf_bind() {
	if [ -e "$pfdir/driver" ]; then
		echo 0 > "$pfdir/sriov_numvfs"
		[ "$(cat "$pfdir/sriov_numvfs")" = 0 ] || return 1
		echo "$pf" > "$pfdir/driver/unbind"
	fi
	echo "$1" > "$pfdir/driver_override"
	echo "$pf" > /sys/bus/pci/drivers_probe
	[ -e "/sys/bus/pci/drivers/$1/$pf" ]
}

modprobe -a tern_pf tern_vfio_pci vfio_iommu_type1 || die "modprobe"
modprobe vfio-pci enable_sriov=1 || die "modprobe vfio-pci"
echo Y > /sys/module/vfio_pci/parameters/enable_sriov
thp=/sys/kernel/mm/transparent_hugepage/shmem_enabled
[ -e "$thp" ] || die "no $thp: the kernel lacks CONFIG_TRANSPARENT_HUGEPAGE"
echo always > "$thp" || die "shmem_enabled"

run() {
	echo "# test: $*"
	out=/tmp/run_vfio.$$.out
	"$dir/$1" "$2" > "$out" 2>&1
	rc=$?
	cat "$out"
	# 4 is kselftest's "skipped".
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 4 ]; then
		failed=1
		grep -q '^not ok' "$out" ||
			echo "not ok - $1 exited with status $rc"
	fi
	rm -f "$out"
}

vf=
for t in $tests; do
	case $t in
	vfio_pci_sriov_uapi_test)
		pf_bind vfio-pci || die "binding $pf to vfio-pci"
		vf=
		run "$t" "$pf"
		;;
	*)
		if [ -z "$vf" ]; then
			pf_bind tern_pf || die "binding $pf to tern_pf"
			echo 1 > "$pfdir/sriov_numvfs" || die "sriov_numvfs"
			vf=$(basename "$(readlink "$pfdir/virtfn0")")
			echo tern_vfio_pci > "/sys/bus/pci/devices/$vf/driver_override"
			echo "$vf" > /sys/bus/pci/drivers_probe
			[ -e "/sys/bus/pci/drivers/tern_vfio_pci/$vf" ] ||
				die "$vf did not bind to tern_vfio_pci"
		fi
		run "$t" "$vf"
		;;
	esac
done
pf_bind tern_pf || die "binding $pf back to tern_pf"
exit $failed
