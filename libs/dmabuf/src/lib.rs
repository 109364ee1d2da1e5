//! Safe wrappers over the Linux dma-heap and dma-buf user API.
//!
//! This is the one place in the project that speaks the kernel's ioctls: the HAL service, its client
//! library, the VTS suite and the test-bed tools all go through it.

mod buffer;
mod heap;
pub mod name;
pub mod stats;
mod uapi;

pub use buffer::{truncate_at_char_boundary, CpuAccess, DmaBuf, Mapping, DMA_BUF_NAME_LEN};
pub use heap::{DmaHeap, DMA_HEAP_DIR};

use std::path::PathBuf;

/// What went wrong, with the kernel's errno where there is one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid heap name {0:?}: it must be a plain file name under {DMA_HEAP_DIR}")]
    InvalidHeapName(String),
    #[error("cannot open {path}: {errno}")]
    OpenHeap { path: PathBuf, errno: nix::Error },
    #[error("cannot list {DMA_HEAP_DIR}: {0}")]
    ListHeaps(std::io::Error),
    #[error("allocating {len} bytes from heap {heap:?} failed: {errno}")]
    Allocate {
        heap: String,
        len: u64,
        errno: nix::Error,
    },
    #[error("buffer name {0:?} contains a NUL byte")]
    NameHasNul(String),
    #[error("{op} on dma-buf failed: {errno}")]
    Ioctl { op: &'static str, errno: nix::Error },
    #[error(
        "a dma-buf of {0} bytes cannot be mapped: zero-sized or larger than the address space"
    )]
    UnmappableSize(u64),
}

impl Error {
    /// The kernel's errno behind this error, when the kernel said no.
    pub fn errno(&self) -> Option<nix::Error> {
        match self {
            Error::OpenHeap { errno, .. }
            | Error::Allocate { errno, .. }
            | Error::Ioctl { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
