// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-pci variant driver for tern virtual functions, with VFIO live
 * migration (STOP_COPY, P2P, PRE_COPY) and device DMA dirty tracking.
 *
 * The VF's migration functions live in its PF: this driver reaches them
 * through the handle tern_pf gives for this VF only (<linux/tern_pf.h>),
 * held while the VFIO device is open.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/pci.h>

#include "tern_vfio.h"
#define CREATE_TRACE_POINTS
#include "trace.h"

static bool migration = true;
module_param(migration, bool, 0444);
MODULE_PARM_DESC(migration, "offer VFIO migration (default on; off: plain vfio-pci)");

static bool precopy = true;
module_param(precopy, bool, 0444);
MODULE_PARM_DESC(precopy, "offer PRE_COPY (default on)");

static bool dirty_tracking = true;
module_param(dirty_tracking, bool, 0444);
MODULE_PARM_DESC(dirty_tracking, "offer device DMA dirty tracking (default on; off: only an IOMMU that tracks dirty pages can migrate the VF)");

bool tern_scatter_buffers;
module_param_named(scatter_buffers, tern_scatter_buffers, bool, 0644);
MODULE_PARM_DESC(scatter_buffers, "test aid: data buffers of pages none of which are contiguous");

/*
 * Note a reset or PF event for tern_state_unlock() to act on: now if
 * state_mutex is free, else when its holder lets go.  The callers hold
 * locks that a holder of state_mutex may wait for: never block here.
 */
static void tern_defer(struct tern_vfio_dev *tvdev, bool *flag)
{
	spin_lock(&tvdev->reset_lock);
	*flag = true;
	if (!mutex_trylock(&tvdev->state_mutex)) {
		spin_unlock(&tvdev->reset_lock);
		return;
	}
	spin_unlock(&tvdev->reset_lock);
	tern_state_unlock(tvdev);
}

static void tern_vfio_pf_event(void *priv, enum tern_vf_event event)
{
	struct tern_vfio_dev *tvdev = priv;

	tern_defer(tvdev, &tvdev->pf_event);
}

/* Read the VF's limits once, through a handle held just for that. */
static int tern_vfio_identify(struct tern_vfio_dev *tvdev)
{
	struct tern_vf *vf;
	int ret;

	vf = tern_vf_get(tvdev->core.pdev, tern_vfio_pf_event, tvdev);
	if (IS_ERR(vf))
		return PTR_ERR(vf);
	ret = tern_vf_identify(vf, &tvdev->info);
	tern_vf_put(vf);
	if (!ret && (tvdev->info.nr_queues != TERN_VF_NR_QUEUES ||
		     tvdev->info.image_version != TERN_IMAGE_VERSION))
		ret = -EPROTONOSUPPORT;
	return ret;
}

static int tern_vfio_init_dev(struct vfio_device *vdev)
{
	struct tern_vfio_dev *tvdev = to_tvdev(vdev);
	int ret;

	mutex_init(&tvdev->state_mutex);
	spin_lock_init(&tvdev->reset_lock);
	ret = vfio_pci_core_init_dev(vdev);
	if (ret)
		return ret;
	if (!migration)
		return 0;

	ret = tern_vfio_identify(tvdev);
	if (ret) {
		pci_warn(tvdev->core.pdev, "migration unavailable: the PF did not identify the VF (%d)\n",
			 ret);
		return 0;
	}
	vdev->migration_flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P;
	if (precopy) {
		vdev->migration_flags |= VFIO_MIGRATION_PRE_COPY;
		tvdev->precopy = true;
	}
	vdev->mig_ops = &tern_mig_ops;
#if IS_ENABLED(CONFIG_IOMMUFD_DRIVER)
	if (dirty_tracking)
		vdev->log_ops = &tern_log_ops;
#endif
	return 0;
}

static void tern_vfio_release_dev(struct vfio_device *vdev)
{
	struct tern_vfio_dev *tvdev = to_tvdev(vdev);

	mutex_destroy(&tvdev->state_mutex);
	vfio_pci_core_release_dev(vdev);
}

/* States in which the VF is quiesced or frozen. */
static bool tern_vf_suspended(enum vfio_device_mig_state state)
{
	switch (state) {
	case VFIO_DEVICE_STATE_RUNNING_P2P:
	case VFIO_DEVICE_STATE_PRE_COPY_P2P:
	case VFIO_DEVICE_STATE_STOP:
	case VFIO_DEVICE_STATE_STOP_COPY:
	case VFIO_DEVICE_STATE_RESUMING:
		return true;
	default:
		return false;
	}
}

static int tern_vfio_open_device(struct vfio_device *vdev)
{
	struct tern_vfio_dev *tvdev = to_tvdev(vdev);
	struct tern_vf *vf = NULL;
	int ret;

	ret = vfio_pci_core_enable(&tvdev->core);
	if (ret)
		return ret;
	if (vdev->mig_ops) {
		vf = tern_vf_get(tvdev->core.pdev, tern_vfio_pf_event, tvdev);
		if (IS_ERR(vf)) {
			vfio_pci_core_disable(&tvdev->core);
			return PTR_ERR(vf);
		}
	}

	/* Every session starts afresh. */
	mutex_lock(&tvdev->state_mutex);
	tvdev->vf = vf;
	tvdev->mig_state = VFIO_DEVICE_STATE_RUNNING;
	tvdev->tracking = false;
	tvdev->pf_lost = false;
	spin_lock(&tvdev->reset_lock);
	tvdev->deferred_reset = false;
	tvdev->pf_event = false;
	spin_unlock(&tvdev->reset_lock);
	mutex_unlock(&tvdev->state_mutex);

	vfio_pci_core_finish_enable(&tvdev->core);
	return 0;
}

static void tern_vfio_close_device(struct vfio_device *vdev)
{
	struct tern_vfio_dev *tvdev = to_tvdev(vdev);

	if (tvdev->vf) {
		tern_state_lock(tvdev);
		tern_mig_release_files(tvdev);
		if (tvdev->tracking)
			tern_vf_dirty_stop(tvdev->vf);
		tvdev->tracking = false;
		/* Leave the VF running for its next user (a PF reset did). */
		if (tern_vf_suspended(tvdev->mig_state) && !tvdev->pf_lost)
			tern_vf_resume(tvdev->vf);
		tvdev->mig_state = VFIO_DEVICE_STATE_RUNNING;
		tern_vf_put(tvdev->vf);
		tvdev->vf = NULL;
		tern_state_unlock(tvdev);
	}
	vfio_pci_core_close_device(vdev);
}

static const struct vfio_device_ops tern_vfio_ops = {
	.name		= "tern-vfio-pci",
	.init		= tern_vfio_init_dev,
	.release	= tern_vfio_release_dev,
	.open_device	= tern_vfio_open_device,
	.close_device	= tern_vfio_close_device,
	.ioctl		= vfio_pci_core_ioctl,
#ifdef TERN_HAVE_GET_REGION_INFO_CAPS
	.get_region_info_caps = vfio_pci_ioctl_get_region_info,
#endif
	.device_feature	= vfio_pci_core_ioctl_feature,
	.read		= vfio_pci_core_read,
	.write		= vfio_pci_core_write,
	.mmap		= vfio_pci_core_mmap,
	.request	= vfio_pci_core_request,
	.match		= vfio_pci_core_match,
#ifdef TERN_HAVE_MATCH_TOKEN_UUID
	.match_token_uuid = vfio_pci_core_match_token_uuid,
#endif
	.bind_iommufd	= vfio_iommufd_physical_bind,
	.unbind_iommufd	= vfio_iommufd_physical_unbind,
	.attach_ioas	= vfio_iommufd_physical_attach_ioas,
	.detach_ioas	= vfio_iommufd_physical_detach_ioas,
};

static ssize_t migration_compat_show(struct device *dev,
				     struct device_attribute *attr, char *buf)
{
	struct vfio_pci_core_device *core = dev_get_drvdata(dev);
	struct tern_vfio_dev *tvdev = to_tvdev(&core->vdev);

	if (!core->vdev.mig_ops)
		return -EOPNOTSUPP;
	return tern_compat_string(tvdev, buf, PAGE_SIZE);
}
static DEVICE_ATTR_RO(migration_compat);

static struct attribute *tern_vfio_attrs[] = {
	&dev_attr_migration_compat.attr,
	NULL
};
ATTRIBUTE_GROUPS(tern_vfio);

static int tern_vfio_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct tern_vfio_dev *tvdev;
	int ret;

	tvdev = vfio_alloc_device(tern_vfio_dev, core.vdev, &pdev->dev,
				  &tern_vfio_ops);
	if (IS_ERR(tvdev))
		return PTR_ERR(tvdev);

	dev_set_drvdata(&pdev->dev, &tvdev->core);
	ret = vfio_pci_core_register_device(&tvdev->core);
	if (ret)
		vfio_put_device(&tvdev->core.vdev);
	return ret;
}

static void tern_vfio_remove(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *core = dev_get_drvdata(&pdev->dev);

	vfio_pci_core_unregister_device(core);
	vfio_put_device(&core->vdev);
}

/* After any reset of the VF: back to RUNNING, open data files dead. */
static void tern_vfio_reset_done(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *core = dev_get_drvdata(&pdev->dev);
	struct tern_vfio_dev *tvdev = to_tvdev(&core->vdev);

	if (!core->vdev.mig_ops)
		return;
	tern_defer(tvdev, &tvdev->deferred_reset);
}

static const struct pci_device_id tern_vfio_ids[] = {
	{ PCI_DRIVER_OVERRIDE_DEVICE_VFIO(TERN_PCI_VENDOR_ID,
					  TERN_PCI_DEVICE_ID_VF) },
	{ }
};
MODULE_DEVICE_TABLE(pci, tern_vfio_ids);

static const struct pci_error_handlers tern_vfio_err_handlers = {
	.reset_done = tern_vfio_reset_done,
	.error_detected = vfio_pci_core_aer_err_detected,
};

static struct pci_driver tern_vfio_driver = {
	.name = KBUILD_MODNAME,
	.id_table = tern_vfio_ids,
	.probe = tern_vfio_probe,
	.remove = tern_vfio_remove,
	.err_handler = &tern_vfio_err_handlers,
	.dev_groups = tern_vfio_groups,
	.driver_managed_dma = true,
};

static int __init tern_vfio_init(void)
{
	/* vfio core reports device dirty pages only through iommufd. */
	if (!IS_ENABLED(CONFIG_IOMMUFD_DRIVER))
		pr_info("kernel without IOMMUFD_DRIVER: no device dirty tracking offered\n");
	return pci_register_driver(&tern_vfio_driver);
}
module_init(tern_vfio_init);

static void __exit tern_vfio_exit(void)
{
	pci_unregister_driver(&tern_vfio_driver);
}
module_exit(tern_vfio_exit);

TERN_IMPORT_NS_IOMMUFD;
MODULE_DESCRIPTION("vfio-pci variant driver for tern VFs, with live migration");
MODULE_LICENSE("GPL");
