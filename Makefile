# SPDX-License-Identifier: GPL-2.0
#
# tern: live-migratable SR-IOV VFs through VFIO, and the emulated hardware
# to build, run and test them.  See README.md.
#
#   make            setup (once), QEMU, test kernel, modules, selftests
#   make check      all of the above, static checks, the VM test suites
#   make demo       boot the test VM and show tern at work
#   make soak       the reliability figures (Documentation/tern/reliability.rst)
#   make deb        build/deb/tern-dkms_<version>_all.deb, the DKMS package
#   make hostimg    build/hostimg, a Debian host image with that package
#                   (scripts/build-hostimg; boot it with scripts/host-run)
#   make check-host the libvirt test on a Debian host (make check has it)
#   make bench      the performance figures on the benchmark kernel
#                   (Documentation/tern/performance.rst; build/bench/)
#   make modules-7  the 7.x test kernel and the modules built against it
#   make vfio-selftests  upstream's VFIO selftests of the 7.x kernel, with
#                   tern's driver for their library (build/vfio-selftests)
#
# Long builds are cached under $(TERN_CACHE) by content hash.

TERN_CACHE ?= /var/cache/tern
export TERN_CACHE

B := build
SETUP_STAMP := $(TERN_CACHE)/setup-$(shell sha256sum scripts/setup | cut -c1-16).done

.PHONY: all setup qemu kernel modules selftests check check-static demo soak \
	deb hostimg check-host bench clean kernel-7 modules-7 vfio-selftests

all: qemu kernel modules selftests

setup: $(SETUP_STAMP)

# The stamp's name holds the script's hash: a fresh clone, whose script is
# newer than the stamp, does not run it again.
$(SETUP_STAMP):
	scripts/setup
	mkdir -p $(TERN_CACHE) && touch $@

qemu: setup
	scripts/build-qemu

kernel: setup
	scripts/build-kernel

# Modules are built in a copy of the kernel code under build/, so that the
# builds against the test kernel and against Debian's headers do not share
# object files.  modroot/ holds them with the test kernel's own modules,
# installed as the VM's /lib/modules.
modules: kernel
	scripts/build-modules

# The second test kernel, Linux 7.x, and the modules built against it.
kernel-7: setup
	scripts/build-kernel --version 7

modules-7: kernel-7
	scripts/build-modules --version 7

# Upstream's tools/testing/selftests/vfio of the 7.x kernel, with tern's
# driver (tools/testing/selftests/vfio-tern), run in the VM by run_vfio.sh.
vfio-selftests: kernel-7
	scripts/build-vfio-selftests

selftests: kernel
	mkdir -p $(B)/selftests-obj
	$(MAKE) -C tools/testing/selftests/tern install \
		OUTPUT=$(CURDIR)/$(B)/selftests-obj INSTALL_PATH=$(CURDIR)/$(B)/selftests

check-static: setup
	scripts/check-static

check: setup
	scripts/check

demo: all
	scripts/demo

soak: all
	scripts/soak

# The Debian package of the drivers' sources, built by DKMS on the host
# (debian/; the version is debian/changelog's).
deb: setup
	scripts/build-deb

# Debian 12 with its stock kernel, libvirt and QEMU, and tern-dkms
# installed by apt (Documentation/tern/testing.rst, "Debian hosts").
hostimg: setup
	scripts/build-hostimg

# tern on a Debian host: the package installed by apt in the host image,
# built by DKMS for Debian's stock kernel, a VF given to a libvirt domain
# run by Debian's QEMU (tools/testing/host/libvirt.sh); make check's host
# suite, on its own.
check-host: hostimg qemu
	scripts/host-run --add tools/testing/host/libvirt.sh -- \
		sh add/libvirt.sh
# scripts/bench builds the benchmark kernel and its modules itself.
bench: all
	scripts/bench

clean:
	rm -rf $(B)
