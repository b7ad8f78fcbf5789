#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Tests of tern_pf.ko, in TAP: load and unload, VFs created and destroyed
# through sriov_numvfs, and the VF API driven by the test client module
# tern_pf_test (handles, commands from many threads, injected faults, late
# DMA, a stuck command among other VFs' commands, a caller killed while it
# waits, PF unbind while a handle is held), checked against the driver's
# debugfs.  Run as root in the test VM; fault injection needs x-debug=on.

n=0
failed=0
ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n $2"
	else
		echo "not ok $n $2"
		failed=1
	fi
}

pf=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x1af4:0x10f0 ] && pf=${d##*/}
done
if [ -z "$pf" ]; then
	echo "1..0 # SKIP no tern PF"
	exit 4
fi
dev=/sys/bus/pci/devices/$pf
dbg=/sys/kernel/debug/tern_pf/$pf

# Give the PF to tern_pf, whatever had it, with no VFs.
take_pf() {
	if [ -e "$dev/driver" ] &&
	   [ "$(basename "$(readlink "$dev/driver")")" != tern_pf ]; then
		[ -e "$dev/sriov_numvfs" ] && echo 0 > "$dev/sriov_numvfs"
		echo "$pf" > "$dev/driver/unbind"
	fi
	echo > "$dev/driver_override"
	modprobe tern_pf || return 1
	[ -e "$dev/driver" ] || echo "$pf" > /sys/bus/pci/drivers/tern_pf/bind
	[ -e /sys/bus/pci/drivers/tern_pf/"$pf" ] || return 1
	echo 0 > "$dev/sriov_numvfs"
}

nr_vfs() {
	find "$dev/" -maxdepth 1 -name 'virtfn*' | wc -l
}

stat() {
	sed -n "s/^$1: //p" "$dbg/aq"
}

echo "TAP version 13"
take_pf
ok $? "tern_pf binds the PF"

i=0
rc=0
while [ $i -lt 20 ]; do
	rmmod tern_vfio_pci 2>/dev/null
	rmmod tern_pf || rc=1
	modprobe tern_pf || rc=1
	[ -e /sys/bus/pci/drivers/tern_pf/"$pf" ] || rc=1
	i=$((i + 1))
done
ok $rc "tern_pf loads and unloads 20 times"

i=0
rc=0
while [ $i -lt 5 ]; do
	echo 8 > "$dev/sriov_numvfs" || rc=1
	[ "$(nr_vfs)" -eq 8 ] || rc=1
	echo 0 > "$dev/sriov_numvfs" || rc=1
	[ "$(nr_vfs)" -eq 0 ] || rc=1
	i=$((i + 1))
done
ok $rc "sriov_numvfs 0 -> 8 -> 0, 5 times"

# client FILE: run the test client's tests in FILE, pass their results on.
client() {
	out=$(cat "/sys/kernel/debug/tern_pf_test/$1")
	rc=$?
	echo "$out" | grep -v '^1\.\.' | sed 's/^/# /'
	fails=$(echo "$out" | grep -c '^not ok')
	passes=$(echo "$out" | grep -c '^ok')
	[ "$rc" -eq 0 ] && [ "$fails" -eq 0 ] && [ "$passes" -ge "$2" ]
	ok $? "test client: $1 ($passes passed, $fails failed)"
}

echo 8 > "$dev/sriov_numvfs"
modprobe tern_pf_test timeout_ms=2000
client run 16
# Short timeouts for the fault tests, long enough for a loaded TCG host.
echo 2000 > /sys/module/tern_pf/parameters/aq_timeout_ms
client faults 3
if [ -e "$dev/resource2" ]; then
	# A stuck command: ABORT ends it, nothing resets the queue.
	resets=$(stat resets)
	aborted=$(stat aborted_completions)
	client stuck 1
	if echo "$out" | grep -q '# SKIP'; then
		echo "ok $((n + 1)) stuck command counters # SKIP no STUCK_CMD fault"
		n=$((n + 1))
	else
		[ "$(stat resets)" -eq "$resets" ] &&
		[ "$(stat aborted_completions)" -gt "$aborted" ] &&
		[ "$(stat inflight)" -eq 0 ]
		ok $? "the stuck command was aborted, its slot freed, the queue not reset"
	fi

	# A caller killed while it waits leaves at once, not after the
	# timeout, with -EINTR.
	echo 30000 > /sys/module/tern_pf/parameters/aq_timeout_ms
	interrupted=$(stat interrupted)
	cat /sys/kernel/debug/tern_pf_test/hang > /dev/null &
	pid=$!
	sleep 3
	t0=$(date +%s)
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	t=$(($(date +%s) - t0))
	hang_errno=$(cat /sys/kernel/debug/tern_pf_test/hang_errno)
	[ "$t" -le 5 ] && [ "$hang_errno" -eq 4 ] &&
	[ "$(stat interrupted)" -gt "$interrupted" ]
	ok $? "a killed caller leaves at once (${t}s) with -EINTR (errno $hang_errno)"
fi
echo 10000 > /sys/module/tern_pf/parameters/aq_timeout_ms
echo "# $(tr '\n' ' ' < "$dbg/aq")"
[ "$(stat max_inflight)" -gt 1 ]
ok $? "more than one command was in flight at once ($(stat max_inflight))"
if [ -e "$dev/resource2" ]; then
	[ "$(stat late_completions)" -ge 1 ]
	ok $? "a late completion was recognised and dropped"
	[ "$(stat timeouts)" -ge 2 ] && [ "$(stat resets)" -ge 1 ]
	ok $? "timeouts counted, and a failed ABORT reset the queue"
	[ "$(stat errors)" -ge 1 ]
	ok $? "the injected error status was counted"
else
	echo "ok $((n + 1)) fault counters # SKIP no debug BAR (x-debug=on)"
	n=$((n + 1))
fi

client unbind 3
[ ! -e "$dev/driver" ]
ok $? "the PF is unbound"
take_pf
ok $? "the PF binds again"
rmmod tern_pf_test

echo "1..$n"
exit $failed
