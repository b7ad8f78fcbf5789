// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-pci variant driver for tern virtual functions.
 */

#include <linux/module.h>
#include <linux/pci.h>
#include <linux/vfio_pci_core.h>
#include <tern/tern_hw.h>

static int tern_vfio_open_device(struct vfio_device *vdev)
{
	struct vfio_pci_core_device *core =
		container_of(vdev, struct vfio_pci_core_device, vdev);
	int ret;

	ret = vfio_pci_core_enable(core);
	if (ret)
		return ret;
	vfio_pci_core_finish_enable(core);
	return 0;
}

static const struct vfio_device_ops tern_vfio_ops = {
	.name		= "tern-vfio-pci",
	.init		= vfio_pci_core_init_dev,
	.release	= vfio_pci_core_release_dev,
	.open_device	= tern_vfio_open_device,
	.close_device	= vfio_pci_core_close_device,
	.ioctl		= vfio_pci_core_ioctl,
	.device_feature	= vfio_pci_core_ioctl_feature,
	.read		= vfio_pci_core_read,
	.write		= vfio_pci_core_write,
	.mmap		= vfio_pci_core_mmap,
	.request	= vfio_pci_core_request,
	.match		= vfio_pci_core_match,
	.bind_iommufd	= vfio_iommufd_physical_bind,
	.unbind_iommufd	= vfio_iommufd_physical_unbind,
	.attach_ioas	= vfio_iommufd_physical_attach_ioas,
	.detach_ioas	= vfio_iommufd_physical_detach_ioas,
};

static int tern_vfio_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct vfio_pci_core_device *core;
	int ret;

	core = vfio_alloc_device(vfio_pci_core_device, vdev, &pdev->dev,
				 &tern_vfio_ops);
	if (IS_ERR(core))
		return PTR_ERR(core);

	dev_set_drvdata(&pdev->dev, core);
	ret = vfio_pci_core_register_device(core);
	if (ret)
		vfio_put_device(&core->vdev);
	return ret;
}

static void tern_vfio_remove(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *core = dev_get_drvdata(&pdev->dev);

	vfio_pci_core_unregister_device(core);
	vfio_put_device(&core->vdev);
}

static const struct pci_device_id tern_vfio_ids[] = {
	{ PCI_DRIVER_OVERRIDE_DEVICE_VFIO(TERN_PCI_VENDOR_ID,
					  TERN_PCI_DEVICE_ID_VF) },
	{ }
};
MODULE_DEVICE_TABLE(pci, tern_vfio_ids);

static const struct pci_error_handlers tern_vfio_err_handlers = {
	.error_detected = vfio_pci_core_aer_err_detected,
};

static struct pci_driver tern_vfio_driver = {
	.name = KBUILD_MODNAME,
	.id_table = tern_vfio_ids,
	.probe = tern_vfio_probe,
	.remove = tern_vfio_remove,
	.err_handler = &tern_vfio_err_handlers,
	.driver_managed_dma = true,
};
module_pci_driver(tern_vfio_driver);

MODULE_IMPORT_NS(IOMMUFD);
MODULE_DESCRIPTION("vfio-pci variant driver for tern VFs");
MODULE_LICENSE("GPL");
