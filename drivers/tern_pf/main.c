// SPDX-License-Identifier: GPL-2.0
/*
 * tern PF driver: binds the physical function of the tern SR-IOV
 * accelerator and creates its virtual functions.
 */

#include <linux/module.h>
#include <linux/pci.h>
#include <tern/tern_hw.h>

static int tern_pf_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	return pcim_enable_device(pdev);
}

static void tern_pf_remove(struct pci_dev *pdev)
{
	pci_disable_sriov(pdev);
}

static const struct pci_device_id tern_pf_ids[] = {
	{ PCI_DEVICE(TERN_PCI_VENDOR_ID, TERN_PCI_DEVICE_ID_PF) },
	{ }
};
MODULE_DEVICE_TABLE(pci, tern_pf_ids);

static struct pci_driver tern_pf_driver = {
	.name = "tern_pf",
	.id_table = tern_pf_ids,
	.probe = tern_pf_probe,
	.remove = tern_pf_remove,
	.sriov_configure = pci_sriov_configure_simple,
};
module_pci_driver(tern_pf_driver);

MODULE_DESCRIPTION("tern SR-IOV accelerator PF driver");
MODULE_LICENSE("GPL");
