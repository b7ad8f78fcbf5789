/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tern_vfio_pci: what differs between the kernels it builds against
 * (6.12 to 7.x), in one place.  The driver tests the TERN_HAVE_* features
 * and calls the helpers below, never a version number.  A feature is the
 * macro its change brought where there is one, else what the kernel's
 * headers declare, which the Kbuild file next to this one finds out
 * (-DTERN_HAVE_...).  Documentation/tern/vfio.rst lists the differences.
 */
#ifndef TERN_VFIO_COMPAT_H
#define TERN_VFIO_COMPAT_H

#include <linux/uaccess.h>
#include <linux/vfio.h>

/*
 * 6.13: symbol namespaces are string literals ("module: Convert symbol
 * namespace to string literal"); Kbuild sets TERN_HAVE_NS_IDENTIFIER
 * while module.h still stringifies MODULE_IMPORT_NS()'s argument.
 */
#ifdef TERN_HAVE_NS_IDENTIFIER
#define TERN_IMPORT_NS_IOMMUFD	MODULE_IMPORT_NS(IOMMUFD)
#else
#define TERN_IMPORT_NS_IOMMUFD	MODULE_IMPORT_NS("IOMMUFD")
#endif

/*
 * 6.17: VFIO_DEVICE_BIND_IOMMUFD takes the VF token
 * (VFIO_DEVICE_BIND_FLAG_TOKEN), which vfio core checks through
 * vfio_device_ops.match_token_uuid; a driver without the op binds only
 * without a token, so a VF of a PF owned by vfio-pci would go unchecked.
 */
#ifdef VFIO_DEVICE_BIND_FLAG_TOKEN
#define TERN_HAVE_MATCH_TOKEN_UUID
#endif

/*
 * 6.19: vfio core answers VFIO_DEVICE_GET_REGION_INFO itself, through
 * vfio_device_ops.get_region_info_caps; vfio_pci_core_ioctl() no longer
 * does, and without the op the ioctl fails.  Kbuild sets
 * TERN_HAVE_GET_REGION_INFO_CAPS when vfio.h declares the op.
 */

/*
 * 7.1: VFIO_PRECOPY_INFO_REINIT, with the feature by which user space
 * opts in to vfio_precopy_info.flags as an output (..._MIG_PRECOPY_INFOv2,
 * vfio_device.precopy_info_v2), and vfio_check_precopy_ioctl() to parse
 * VFIO_MIG_GET_PRECOPY_INFO.
 */
#ifdef VFIO_PRECOPY_INFO_REINIT
#define TERN_HAVE_PRECOPY_INFO_V2
#endif

#ifdef TERN_HAVE_PRECOPY_INFO_V2
#define TERN_PRECOPY_INFO_REINIT	VFIO_PRECOPY_INFO_REINIT
#else
#define TERN_PRECOPY_INFO_REINIT	0
#endif

/*
 * User space opted in to PRECOPY_INFOv2 on this open of the device: the
 * driver may report VFIO_PRECOPY_INFO_REINIT.  vfio core sets the flag
 * and clears it at the device's last close; never on older kernels.
 */
static inline bool tern_precopy_info_v2(struct vfio_device *vdev)
{
#ifdef TERN_HAVE_PRECOPY_INFO_V2
	return READ_ONCE(vdev->precopy_info_v2);
#else
	return false;
#endif
}

/*
 * Parse VFIO_MIG_GET_PRECOPY_INFO's argument into @info: -ENOTTY for
 * another command, -EFAULT or -EINVAL for a bad argument.  The driver
 * fills in the sizes and flags and copies offsetofend(dirty_bytes) back.
 */
static inline int tern_check_precopy_ioctl(struct vfio_device *vdev,
					   unsigned int cmd, unsigned long arg,
					   struct vfio_precopy_info *info)
{
#ifdef TERN_HAVE_PRECOPY_INFO_V2
	return vfio_check_precopy_ioctl(vdev, cmd, arg, info);
#else
	const size_t minsz = offsetofend(struct vfio_precopy_info, dirty_bytes);

	if (cmd != VFIO_MIG_GET_PRECOPY_INFO)
		return -ENOTTY;
	if (copy_from_user(info, (void __user *)arg, minsz))
		return -EFAULT;
	if (info->argsz < minsz)
		return -EINVAL;
	return 0;
#endif
}

#endif /* TERN_VFIO_COMPAT_H */
