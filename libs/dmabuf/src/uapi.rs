//! The kernel's user API, as in `include/uapi/linux/dma-heap.h` and `include/uapi/linux/dma-buf.h`.

/// `struct dma_heap_allocation_data`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DmaHeapAllocationData {
    pub len: u64,
    pub fd: u32,
    pub fd_flags: u32,
    pub heap_flags: u64,
}

/// `struct dma_buf_sync`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct DmaBufSync {
    pub flags: u64,
}

pub const DMA_BUF_SYNC_READ: u64 = 1 << 0;
pub const DMA_BUF_SYNC_WRITE: u64 = 1 << 1;
pub const DMA_BUF_SYNC_START: u64 = 0;
pub const DMA_BUF_SYNC_END: u64 = 1 << 2;

nix::ioctl_readwrite!(dma_heap_ioctl_alloc, b'H', 0, DmaHeapAllocationData);
nix::ioctl_write_ptr!(dma_buf_ioctl_sync, b'b', 0, DmaBufSync);
// The kernel declares DMA_BUF_SET_NAME as _IOW('b', 1, const char *): the size field encodes a
// pointer, and the argument is the pointer to the NUL-terminated name itself.
nix::ioctl_write_ptr_bad!(
    dma_buf_set_name,
    nix::request_code_write!(b'b', 1, std::mem::size_of::<*const u8>()),
    std::ffi::c_char
);
