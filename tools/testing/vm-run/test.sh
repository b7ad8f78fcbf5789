#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Self-test of scripts/vm-run, in TAP: it runs commands, returns their
# output and status, fails a run whose kernel log has a splat, kills a
# hung VM and reports a QEMU that crashed in mid-command.  Four VM boots,
# the first with the largest device memory (the root port's window).
set -uo pipefail
top=$(cd "$(dirname "$0")/../../.." && pwd)
vm_run=$top/scripts/vm-run
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

n=0
failed=0
result() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n $2"
	else
		echo "not ok $n $2"
		failed=1
	fi
}

echo "TAP version 13"
echo "1..6"

# shellcheck disable=SC2016 # expanded in the VM
# 256 MiB of device memory, the most the device has: the window vm-run
# has the root port reserve must hold all 8 VFs' BARs of that size.
"$vm_run" --device-opt devmem-size=256M -- sh -c 'cat /sys/bus/pci/devices/$TERN_PF/sriov_totalvfs
	for vf in $TERN_VFS; do basename "$(readlink /sys/bus/pci/devices/$vf/driver)"; done
	for vf in $TERN_VFS; do
		set -- $(sed -n 3p /sys/bus/pci/devices/$vf/resource)
		echo "bar2 $(($2 - $1 + 1))"
	done
	exit 7' > "$tmp/out" 2> "$tmp/err"
rc=$?
sed 's/^/# /' "$tmp/out" "$tmp/err"
[ "$rc" -eq 7 ]
result $? "the command's exit status comes back"
[ "$(head -n 1 "$tmp/out")" = 8 ] &&
	[ "$(grep -cx tern_vfio_pci "$tmp/out")" -eq 4 ]
result $? "the PF has 8 VFs and 4 are bound to tern_vfio_pci"
[ "$(grep -cx "bar2 $((256 << 20))" "$tmp/out")" -eq 4 ]
result $? "with 256 MiB of device memory every VF's BAR 2 is assigned, 256 MiB"

"$vm_run" --vfs 0 -- modprobe tern_warn > "$tmp/out" 2> "$tmp/err"
rc=$?
sed 's/^/# /' "$tmp/out" "$tmp/err"
[ "$rc" -eq 1 ] && grep -q 'splat' "$tmp/err" && grep -q 'tern_warn' "$tmp/err"
result $? "a kernel WARNING fails a command that succeeded"

start=$(date +%s)
"$vm_run" --vfs 0 --timeout 20 -- sleep 1000 > "$tmp/out" 2> "$tmp/err"
rc=$?
elapsed=$(($(date +%s) - start))
sed 's/^/# /' "$tmp/out" "$tmp/err"
[ "$rc" -eq 124 ] && [ "$elapsed" -lt 60 ] && grep -q 'timed out' "$tmp/err"
result $? "a hung command is killed by the timeout (${elapsed} s)"

# A QEMU that aborts (an assertion) while the command runs: abort it from
# here, once the command has started, through the process tree of this
# vm-run (vm-run -> timeout -> QEMU).
(ulimit -c 0; exec "$vm_run" --vfs 0 --timeout 300 -- \
	sh -c 'echo running; sleep 1000') > "$tmp/out" 2> "$tmp/err" &
vm=$!
qemu=
for _ in $(seq 300); do
	if grep -q running "$tmp/out"; then
		qemu=$(pgrep -P "$(pgrep -x -P "$vm" timeout)")
		break
	fi
	sleep 1
done
[ -n "$qemu" ] && kill -ABRT "$qemu"
wait "$vm"
rc=$?
sed 's/^/# /' "$tmp/out" "$tmp/err"
[ "$rc" -eq 123 ] &&
	grep -q 'QEMU crashed while the command ran: killed by signal 6 (SIGABRT)' "$tmp/err"
result $? "a QEMU that aborts in mid-command is reported as a crash"

exit "$failed"
