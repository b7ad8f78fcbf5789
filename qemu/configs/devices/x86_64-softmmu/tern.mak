# The devices of tern's QEMU: what the L1 test VM and the L2 guests use.
CONFIG_Q35=y
CONFIG_VTD=y
# A vIOMMU without an address width: where vfio must still block
# migration (tern_qemu_test --viommu virtio).
CONFIG_VIRTIO_IOMMU=y
CONFIG_PCIE_PORT=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_BLK=y
CONFIG_VIRTIO_SERIAL=y
# The private network between two Debian hosts (scripts/host-run).
CONFIG_VIRTIO_NET=y
CONFIG_VIRTIO_RNG=y
CONFIG_SERIAL_ISA=y
CONFIG_VFIO_PCI=y
CONFIG_TERN=y
