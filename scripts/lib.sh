# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Shared by tern's scripts: where things live and how caches are keyed.

TERN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Long builds are cached by content hash outside the checkout, so that CI
# and later runs reuse them.
TERN_CACHE=${TERN_CACHE:-/var/cache/tern}
# Per-checkout build products and links to the cached builds.
TERN_BUILD=${TERN_BUILD:-$TERN_ROOT/build}
TERN_JOBS=${TERN_JOBS:-$(nproc)}

die() {
	echo "$(basename "$0"): $*" >&2
	exit 1
}

# Version of an installed Debian package.
pkg_version() {
	dpkg-query -W -f '${Version}' "$1" 2>/dev/null
}

# Hash of files' contents and of extra strings (versions), for cache keys.
content_hash() {
	local f
	{
		for f in "$@"; do
			if [ -d "$f" ]; then
				find "$f" -type f -print0 | LC_ALL=C sort -z |
					xargs -0 sha256sum
			elif [ -f "$f" ]; then
				sha256sum "$f"
			else
				printf '%s\n' "$f"
			fi
		done
	} | sed "s|$TERN_ROOT/||" | sha256sum | cut -c1-16
}

# The URI of the configured Debian mirror serving bookworm (deb822 or
# one-line format), as the machine's apt sources give it: scripts/setup
# adds suites from it and scripts/build-hostimg builds from it; never a
# host name of our own.
debian_mirror() {
	local f
	{
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -e "$f" ] || continue
			awk '
				/^[[:space:]]*$/ { if (uri != "" && suite ~ /(^| )bookworm( |$)/) { print uri; exit } uri = ""; suite = ""; next }
				/^URIs:/ { uri = $2 }
				/^Suites:/ { suite = $0; sub(/^Suites:[[:space:]]*/, "", suite) }
				END { if (uri != "" && suite ~ /(^| )bookworm( |$)/) print uri }
			' "$f"
		done
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[ -e "$f" ] || continue
			awk '$1 == "deb" && $0 ~ / bookworm / { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f"
		done
	} | head -n 1
}

# Under TCG the guest's TSC runs at the host's TSC rate.  The guest
# calibrates it against the PIT, and on a busy host that calibration can
# be off by a factor of 50 ("tsc: Detected 55.136 MHz processor" for a
# 2.6 GHz TSC): the guest's clock then runs that much fast, and soft
# lockups, hung tasks and test timeouts are reported after a few real
# seconds.  Tell the guest the host's TSC frequency, as the host kernel
# found it; when its log has rolled over or cannot be read, as
# /proc/cpuinfo says (on a virtual host it reports the TSC frequency).
# Prints that frequency in kHz, or nothing (vm-run, host-run pass it as
# tsc_early_khz=).
host_tsc_khz() {
	local mhz_to_khz tsc_khz
	mhz_to_khz='s/\([0-9]*\)\.\([0-9][0-9][0-9]\).*/\1\2/'
	tsc_khz=$(dmesg 2>/dev/null | sed -n -e \
		's/.*tsc: \(Detected\|Refined TSC clocksource calibration:\) \([0-9.]*\) MHz.*/\2/p' |
		tail -n 1 | sed -e "$mhz_to_khz")
	# Only a virtual host: on bare metal with frequency scaling "cpu MHz" is
	# the core's current clock, not the TSC's, and the guest's own
	# calibration is the better guess.
	if [ -z "$tsc_khz" ] && grep -q '^flags.* hypervisor' /proc/cpuinfo; then
		tsc_khz=$(sed -n -e 's/^cpu MHz[[:space:]]*: //p' /proc/cpuinfo |
			head -n 1 | sed -e "$mhz_to_khz")
	fi
	echo "$tsc_khz"
}

# Seconds since the epoch, for stage timings.
now() {
	date +%s
}

# Hold an exclusive lock on cache entry $1 until the script exits, so that
# two builds of one entry (two checkouts, CI and a developer) never share
# its .tmp directory.
cache_lock() {
	local fd
	exec {fd}>"$1.lock"
	flock "$fd"
}

# kmod_build NAME KDIR [MAKE ARGS...]: build the kernel code (drivers and
# test modules) against KDIR in a copy under build/kmod/NAME, so that
# builds against different kernels never share object files.
kmod_build() {
	local name=$1 kdir=$2
	shift 2
	local dir=$TERN_BUILD/kmod/$name
	mkdir -p "$dir"
	(cd "$TERN_ROOT" && rsync -aR --delete Kbuild drivers include \
		tools/testing/selftests/tern/tern_pf_test \
		tools/testing/vm-run/Kbuild tools/testing/vm-run/tern_warn.c \
		"$dir/")
	make -s -C "$kdir" M="$dir" -j"$TERN_JOBS" CONFIG_TERN_PF=m \
		CONFIG_TERN_VFIO_PCI=m CONFIG_TERN_TESTS=m "$@" modules
}
