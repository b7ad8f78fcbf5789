// SPDX-License-Identifier: GPL-2.0
/*
 * tern PF driver: binds the physical function of the tern SR-IOV
 * accelerator, runs its admin queue, creates its VFs and hands out VF
 * handles (vf.c) to the VF migration driver.
 */

#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>

#include "tern_pf.h"

static void tern_pf_free(struct kref *ref)
{
	struct tern_pf *pf = container_of(ref, struct tern_pf, ref);

	pci_dev_put(pf->pdev);
	kfree(pf);
}

void tern_pf_put(struct tern_pf *pf)
{
	kref_put(&pf->ref, tern_pf_free);
}

/*
 * Close the PF to VF users: new calls fail, commands in flight are
 * aborted, every handle's owner is told, and we wait for the callers
 * that were inside a command to leave.
 */
static void tern_pf_shut(struct tern_pf *pf, enum tern_pf_state state,
			 enum tern_vf_event event)
{
	struct tern_vf *vf;

	mutex_lock(&pf->lock);
	WRITE_ONCE(pf->state, state);
	list_for_each_entry(vf, &pf->handles, node)
		vf->event(vf->priv, event);
	mutex_unlock(&pf->lock);

	mutex_lock(&pf->aq.reset_lock);
	tern_aq_disable(&pf->aq);
	mutex_unlock(&pf->aq.reset_lock);

	down_write(&pf->gate);
	up_write(&pf->gate);
}

static int tern_pf_sriov_configure(struct pci_dev *pdev, int num_vfs)
{
	struct tern_pf *pf = pci_get_drvdata(pdev);
	int ret;

	/*
	 * Hold pf->lock only to check and mark: disabling removes the VFs,
	 * which waits for their drivers, which may want the lock.
	 */
	mutex_lock(&pf->lock);
	if (pf->sriov_busy) {
		ret = -EBUSY;
	} else if (!num_vfs && !list_empty(&pf->handles)) {
		dev_warn_ratelimited(&pdev->dev,
				     "cannot disable VFs: a VF is in use for migration\n");
		ret = -EBUSY;
	} else {
		pf->sriov_busy = true;
		ret = 0;
	}
	mutex_unlock(&pf->lock);
	if (ret)
		return ret;

	if (num_vfs) {
		ret = pci_enable_sriov(pdev, num_vfs);
		if (!ret)
			ret = num_vfs;
	} else {
		pci_disable_sriov(pdev);
	}

	mutex_lock(&pf->lock);
	pf->sriov_busy = false;
	mutex_unlock(&pf->lock);
	return ret;
}

static int tern_pf_check_device(struct tern_pf *pf)
{
	u32 magic = readl(pf->regs + TERN_PF_REG_MAGIC);
	u32 version = readl(pf->regs + TERN_PF_REG_VERSION);

	if (magic != TERN_PF_MAGIC) {
		pci_err(pf->pdev, "not a tern PF: magic 0x%08x\n", magic);
		return -ENODEV;
	}
	if (version >> 16 != TERN_IF_VERSION_MAJOR) {
		pci_err(pf->pdev, "unsupported interface version %u.%u\n",
			version >> 16, version & 0xffff);
		return -ENODEV;
	}
	pf->dev_cap = readl(pf->regs + TERN_PF_REG_DEV_CAP);
	return 0;
}

static int tern_pf_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct tern_pf *pf;
	int ret;

	pf = kzalloc(sizeof(*pf), GFP_KERNEL);
	if (!pf)
		return -ENOMEM;
	kref_init(&pf->ref);
	init_rwsem(&pf->gate);
	mutex_init(&pf->lock);
	INIT_LIST_HEAD(&pf->handles);
	spin_lock_init(&pf->buf_lock);
	INIT_LIST_HEAD(&pf->bufs);
	pf->pdev = pci_dev_get(pdev);

	ret = pcim_enable_device(pdev);
	if (ret)
		goto err_put;
	pf->regs = pcim_iomap_region(pdev, TERN_PF_BAR_REGS, "tern_pf");
	if (IS_ERR(pf->regs)) {
		ret = PTR_ERR(pf->regs);
		goto err_put;
	}
	ret = tern_pf_check_device(pf);
	if (ret)
		goto err_put;
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		goto err_put;
	/* A tern_sg entry describes up to 4 GiB - 1. */
	dma_set_max_seg_size(&pdev->dev, U32_MAX);
	pci_set_master(pdev);

	ret = pci_alloc_irq_vectors(pdev, TERN_PF_MSIX_VECTORS,
				    TERN_PF_MSIX_VECTORS, PCI_IRQ_MSIX);
	if (ret < 0)
		goto err_put;

	ret = tern_aq_init(pf);
	if (ret)
		goto err_irq;
	ret = tern_aq_identify_device(&pf->aq);
	if (ret) {
		pci_err(pdev, "IDENTIFY of the device failed: %d\n", ret);
		goto err_aq;
	}

	pf->total_vfs = pci_sriov_get_totalvfs(pdev);
	pci_set_drvdata(pdev, pf);
	tern_pf_debugfs_init(pf);
	pci_info(pdev, "admin queue: %u entries, %u commands in flight, %u SG entries; %u VFs%s\n",
		 pf->aq.depth, pf->aq.nr_slots - 1, pf->aq.max_sg,
		 pf->total_vfs,
		 pf->dev_cap & TERN_DEV_CAP_XFER_CRC ? "; chunk CRCs" : "");
	return 0;

err_aq:
	tern_aq_fini(pf);
err_irq:
	pci_free_irq_vectors(pdev);
err_put:
	tern_pf_put(pf);
	return ret;
}

static void tern_pf_remove(struct pci_dev *pdev)
{
	struct tern_pf *pf = pci_get_drvdata(pdev);

	tern_pf_shut(pf, TERN_PF_GONE, TERN_VF_EVENT_PF_REMOVE);
	/* No command is in flight: no mapping may outlive the binding. */
	tern_pf_unmap_bufs(pf);
	pci_disable_sriov(pdev);
	tern_pf_debugfs_exit(pf);
	tern_aq_fini(pf);
	pci_free_irq_vectors(pdev);
	tern_pf_put(pf);
}

static void tern_pf_reset_prepare(struct pci_dev *pdev)
{
	struct tern_pf *pf = pci_get_drvdata(pdev);

	tern_pf_shut(pf, TERN_PF_RESETTING, TERN_VF_EVENT_PF_RESET);
}

static void tern_pf_reset_done(struct pci_dev *pdev)
{
	struct tern_pf *pf = pci_get_drvdata(pdev);
	int ret;

	mutex_lock(&pf->aq.reset_lock);
	ret = tern_aq_enable(&pf->aq);
	mutex_unlock(&pf->aq.reset_lock);
	if (ret) {
		dev_err_ratelimited(&pdev->dev,
				    "admin queue did not restart after reset: %d\n",
				    ret);
		return;
	}
	mutex_lock(&pf->lock);
	WRITE_ONCE(pf->state, TERN_PF_LIVE);
	mutex_unlock(&pf->lock);
}

static const struct pci_error_handlers tern_pf_err_handlers = {
	.reset_prepare = tern_pf_reset_prepare,
	.reset_done = tern_pf_reset_done,
};

static const struct pci_device_id tern_pf_ids[] = {
	{ PCI_DEVICE(TERN_PCI_VENDOR_ID, TERN_PCI_DEVICE_ID_PF) },
	{ }
};
MODULE_DEVICE_TABLE(pci, tern_pf_ids);

struct pci_driver tern_pf_driver = {
	.name = "tern_pf",
	.id_table = tern_pf_ids,
	.probe = tern_pf_probe,
	.remove = tern_pf_remove,
	.sriov_configure = tern_pf_sriov_configure,
	.err_handler = &tern_pf_err_handlers,
};

static int __init tern_pf_init(void)
{
	int ret;

	tern_pf_debugfs_register();
	ret = pci_register_driver(&tern_pf_driver);
	if (ret)
		tern_pf_debugfs_unregister();
	return ret;
}

static void __exit tern_pf_exit(void)
{
	pci_unregister_driver(&tern_pf_driver);
	tern_pf_debugfs_unregister();
}

module_init(tern_pf_init);
module_exit(tern_pf_exit);

MODULE_DESCRIPTION("tern SR-IOV accelerator PF driver");
MODULE_LICENSE("GPL");
