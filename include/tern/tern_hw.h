/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * tern hardware interface: PCI IDs, registers and command formats.
 *
 * The one source of truth shared by the QEMU device model, the drivers
 * and the selftests.  Documentation/tern/device.rst describes it.
 */
#ifndef TERN_HW_H
#define TERN_HW_H

/* QEMU's range for experimental devices (docs/specs/pci-ids.rst). */
#define TERN_PCI_VENDOR_ID		0x1af4
#define TERN_PCI_DEVICE_ID_PF		0x10f0
#define TERN_PCI_DEVICE_ID_VF		0x10f1

#define TERN_DEFAULT_TOTAL_VFS		8

#endif /* TERN_HW_H */
