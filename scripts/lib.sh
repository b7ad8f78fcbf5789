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
