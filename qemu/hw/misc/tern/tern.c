/*
 * tern: an SR-IOV PCIe accelerator (minimal PF and VFs)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/pcie.h"
#include "hw/pci/pcie_sriov.h"
#include "hw/qdev-properties.h"
#include "qapi/error.h"
#include "qemu/module.h"
#include "tern_hw.h"

#define TYPE_TERN_PF "tern"
#define TYPE_TERN_VF "tern-vf"

#define TERN_PF_BAR_SIZE    0x1000
#define TERN_VF_BAR_SIZE    0x1000
#define TERN_CAP_PCIE       0xa0
#define TERN_CAP_ARI        0x100
#define TERN_CAP_SRIOV      0x160
#define TERN_VF_OFFSET      1
#define TERN_VF_STRIDE      1

typedef struct TernPfState {
    PCIDevice parent_obj;
    MemoryRegion mmio;
    uint16_t total_vfs;
} TernPfState;

typedef struct TernVfState {
    PCIDevice parent_obj;
    MemoryRegion mmio;
} TernVfState;

OBJECT_DECLARE_SIMPLE_TYPE(TernPfState, TERN_PF)
OBJECT_DECLARE_SIMPLE_TYPE(TernVfState, TERN_VF)

static void tern_pf_write_config(PCIDevice *dev, uint32_t addr, uint32_t val,
                                 int len)
{
    pci_default_write_config(dev, addr, val, len);
    pcie_sriov_config_write(dev, addr, val, len);
}

static void tern_pf_realize(PCIDevice *dev, Error **errp)
{
    TernPfState *s = TERN_PF(dev);

    if (s->total_vfs < 1 || s->total_vfs > 32) {
        error_setg(errp, "tern: total-vfs must be 1..32");
        return;
    }
    dev->config_write = tern_pf_write_config;
    memory_region_init(&s->mmio, OBJECT(s), "tern-pf-mmio", TERN_PF_BAR_SIZE);
    pci_register_bar(dev, 0, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->mmio);
    if (pcie_endpoint_cap_init(dev, TERN_CAP_PCIE) < 0) {
        error_setg(errp, "tern: cannot add the PCIe capability");
        return;
    }
    pcie_ari_init(dev, TERN_CAP_ARI);
    if (!pcie_sriov_pf_init(dev, TERN_CAP_SRIOV, TYPE_TERN_VF,
                            TERN_PCI_DEVICE_ID_VF, s->total_vfs, s->total_vfs,
                            TERN_VF_OFFSET, TERN_VF_STRIDE, errp)) {
        pcie_cap_exit(dev);
        return;
    }
    pcie_sriov_pf_init_vf_bar(dev, 0, PCI_BASE_ADDRESS_MEM_TYPE_64,
                              TERN_VF_BAR_SIZE);
}

static void tern_pf_exit(PCIDevice *dev)
{
    pcie_sriov_pf_exit(dev);
    pcie_cap_exit(dev);
}

static void tern_pf_reset_hold(Object *obj, ResetType type)
{
    pcie_sriov_pf_reset(PCI_DEVICE(obj));
}

static void tern_vf_realize(PCIDevice *dev, Error **errp)
{
    TernVfState *s = TERN_VF(dev);

    memory_region_init(&s->mmio, OBJECT(s), "tern-vf-mmio", TERN_VF_BAR_SIZE);
    pcie_sriov_vf_register_bar(dev, 0, &s->mmio);
    if (pcie_endpoint_cap_init(dev, TERN_CAP_PCIE) < 0) {
        error_setg(errp, "tern-vf: cannot add the PCIe capability");
        return;
    }
    pcie_ari_init(dev, TERN_CAP_ARI);
}

static void tern_vf_exit(PCIDevice *dev)
{
    pcie_cap_exit(dev);
}

static const Property tern_pf_properties[] = {
    DEFINE_PROP_UINT16("total-vfs", TernPfState, total_vfs,
                       TERN_DEFAULT_TOTAL_VFS),
};

static void tern_pf_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);

    k->realize = tern_pf_realize;
    k->exit = tern_pf_exit;
    k->vendor_id = TERN_PCI_VENDOR_ID;
    k->device_id = TERN_PCI_DEVICE_ID_PF;
    k->class_id = PCI_CLASS_SYSTEM_OTHER;
    rc->phases.hold = tern_pf_reset_hold;
    dc->desc = "tern SR-IOV accelerator (PF)";
    device_class_set_props(dc, tern_pf_properties);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static void tern_vf_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = tern_vf_realize;
    k->exit = tern_vf_exit;
    k->vendor_id = TERN_PCI_VENDOR_ID;
    k->device_id = TERN_PCI_DEVICE_ID_VF;
    k->class_id = PCI_CLASS_SYSTEM_OTHER;
    dc->desc = "tern SR-IOV accelerator (VF)";
    dc->user_creatable = false;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo tern_types[] = {
    {
        .name          = TYPE_TERN_PF,
        .parent        = TYPE_PCI_DEVICE,
        .instance_size = sizeof(TernPfState),
        .class_init    = tern_pf_class_init,
        .interfaces    = (InterfaceInfo[]) {
            { INTERFACE_PCIE_DEVICE },
            { }
        },
    },
    {
        .name          = TYPE_TERN_VF,
        .parent        = TYPE_PCI_DEVICE,
        .instance_size = sizeof(TernVfState),
        .class_init    = tern_vf_class_init,
        .interfaces    = (InterfaceInfo[]) {
            { INTERFACE_PCIE_DEVICE },
            { }
        },
    },
};

DEFINE_TYPES(tern_types)
