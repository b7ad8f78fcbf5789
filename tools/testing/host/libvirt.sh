#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# make check's host suite, run on a Debian host by scripts/host-run: tern
# from its DKMS package on Debian's stock kernel, a VF assigned to a
# libvirt domain run by Debian's QEMU.  Prints TAP.
#
# The VF is a <hostdev mode='subsystem' type='pci' managed='yes'>: libvirt
# itself must pick tern_vfio_pci (the vfio_pci: alias in modules.alias),
# bind the VF to it, start QEMU with it, and give the VF back when the
# domain stops.  The stock kernel has no IOMMUFD: tern_vfio_pci must say
# so once at load and offer no dirty-tracking ops (vfio_log_ops).  L2 is a
# guest without an OS: a firmware that only halts.
# The checks are functions that check() runs.
# shellcheck disable=SC2317

n=0
failed=0
out=/run/tern/check.out
# check DESCRIPTION COMMAND...: ok if COMMAND succeeds; its output is shown
# on failure.
check() {
	what=$1
	shift
	n=$((n + 1))
	if "$@" > "$out" 2>&1; then
		echo "ok $n $what"
	else
		echo "not ok $n $what"
		tail -n 40 "$out" | sed 's/^/# /'
		failed=1
	fi
}

kver=$(uname -r)
dom=tern-l2
nolog='kernel without IOMMUFD_DRIVER: no device dirty tracking offered'

stock_kernel() {
	case $kver in
	6.12.*-amd64) ;;
	*) echo "not a Debian 6.12 kernel: $kver"; return 1 ;;
	esac
	dpkg -S "/boot/vmlinuz-$kver" | grep '^linux-image-' &&
		! grep '^CONFIG_IOMMUFD=' "/boot/config-$kver"
}
dkms_installed() {
	dpkg-query -W -f '${Status}\n' tern-dkms | grep -x 'install ok installed' &&
		dkms status | grep "^tern/[^ ]*, $kver, x86_64: installed" &&
		modinfo -F filename tern_pf tern_vfio_pci > /run/tern/modules &&
		[ "$(grep -c "^/lib/modules/$kver/updates/dkms/" /run/tern/modules)" -eq 2 ]
}
pf_bound() {
	modprobe tern_pf &&
		[ "$(basename "$(readlink "/sys/bus/pci/devices/$TERN_PF/driver")")" = tern_pf ]
}
vfs_created() {
	echo 2 > "/sys/bus/pci/devices/$TERN_PF/sriov_numvfs" &&
		[ -e "/sys/bus/pci/devices/$TERN_PF/virtfn1" ] || return 1
	VF=$(basename "$(readlink "/sys/bus/pci/devices/$TERN_PF/virtfn0")")
	echo "VF $VF"
		! [ -e "/sys/bus/pci/devices/$VF/driver" ] &&
		! lsmod | grep '^tern_vfio_pci '
}
domain_defined() {
	# hlt; jmp back to the hlt, at the reset vector of a 64 KiB BIOS.
	{
		head -c 65520 /dev/zero
		printf '\364\353\375'
		head -c 13 /dev/zero
	} > /run/tern/halt.bin
	chmod 0644 /run/tern/halt.bin
	# The VF's address: domain:bus:slot.function.
	# shellcheck disable=SC2046
	set -- $(echo "$VF" | tr ':.' '  ')
	cat > /run/tern/domain.xml <<XML
<domain type='qemu'>
  <name>$dom</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <loader type='rom'>/run/tern/halt.bin</loader>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
    <video><model type='none'/></video>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address domain='0x$1' bus='0x$2' slot='0x$3' function='0x$4'/></source>
    </hostdev>
  </devices>
</domain>
XML
	virsh define /run/tern/domain.xml
}
vf_driver() {
	basename "$(readlink "/sys/bus/pci/devices/$VF/driver")" 2>/dev/null
}
domain_started() {
	virsh start "$dom" && virsh domstate "$dom" | grep -x running
}
libvirt_bound() {
	[ "$(vf_driver)" = tern_vfio_pci ] || { echo "driver: $(vf_driver)"; return 1; }
	# QEMU has the VF: 1af4:10f1 on its PCI bus.
	virsh qemu-monitor-command --hmp "$dom" 'info pci' > /run/tern/info-pci &&
		grep -i 'PCI device 1af4:10f1' /run/tern/info-pci
}
no_log_ops() {
	[ "$(dmesg | grep -c "tern_vfio_pci: $nolog")" -eq 1 ] || {
		dmesg | grep tern_vfio_pci
		return 1
	}
	# Module symbols: the migration ops, no dirty-tracking ops.
	grep -E ' tern_mig_ops\s+\[tern_vfio_pci\]' /proc/kallsyms &&
		! grep -E ' tern_log_ops\s+\[tern_vfio_pci\]' /proc/kallsyms
}
given_back() {
	virsh destroy "$dom" || return 1
	echo "driver: $(vf_driver), override $(cat "/sys/bus/pci/devices/$VF/driver_override")"
	[ "$(vf_driver)" != tern_vfio_pci ] &&
		[ "$(cat "/sys/bus/pci/devices/$VF/driver_override")" = '(null)' ]
}
restarted() {
	# A second start binds it again; undefine leaves nothing behind.
	domain_started && [ "$(vf_driver)" = tern_vfio_pci ] &&
		virsh destroy "$dom" && [ "$(vf_driver)" != tern_vfio_pci ] &&
		virsh undefine "$dom"
}
# The README's way by hand, on the second VF: driver_override and
# drivers_probe bind it to tern_vfio_pci; unbinding gives it back.
by_hand() {
	vf=$(basename "$(readlink "/sys/bus/pci/devices/$TERN_PF/virtfn1")")
	d=/sys/bus/pci/devices/$vf
	modprobe tern_vfio_pci &&
		echo tern_vfio_pci > "$d/driver_override" &&
		echo "$vf" > /sys/bus/pci/drivers_probe &&
		[ -e "/sys/bus/pci/drivers/tern_vfio_pci/$vf" ] &&
		[ -e "/dev/vfio/$(basename "$(readlink "$d/iommu_group")")" ] &&
		echo "$vf" > "$d/driver/unbind" &&
		echo > "$d/driver_override" && ! [ -e "$d/driver" ]
}

VF=
echo "TAP version 13"
echo "1..11"
check "Debian's stock $kver, without IOMMUFD" stock_kernel
check "tern-dkms installed by dpkg, DKMS built tern for $kver" dkms_installed
check "modprobe tern_pf: the PF $TERN_PF bound to tern_pf" pf_bound
check "2 VFs created, bound to no driver" vfs_created
check "virsh define: a domain with the VF as a managed hostdev" domain_defined
check "virsh start: the domain runs (Debian's QEMU, TCG)" domain_started
check "libvirt bound the VF to tern_vfio_pci; QEMU has it" libvirt_bound
check "tern_vfio_pci: no IOMMUFD said once, no vfio_log_ops" no_log_ops
check "virsh destroy: libvirt gave the VF back" given_back
check "a second start and stop; undefine" restarted
check "by hand: the second VF bound to tern_vfio_pci and unbound" by_hand
exit "$failed"
