use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::uapi;
use crate::{DmaBuf, Error, Result};

/// Where the kernel's dma-heap core creates one character device per heap.
pub const DMA_HEAP_DIR: &str = "/dev/dma_heap";

/// An open dma-buf heap device, `/dev/dma_heap/<name>`.
#[derive(Debug)]
pub struct DmaHeap {
    name: String,
    fd: OwnedFd,
}

impl DmaHeap {
    /// Opens the heap called `name` under [`DMA_HEAP_DIR`].
    pub fn open(name: &str) -> Result<Self> {
        Self::open_in(Path::new(DMA_HEAP_DIR), name)
    }

    /// Opens the heap called `name` in `dir`, for tests and for devices that put heaps elsewhere.
    pub fn open_in(dir: &Path, name: &str) -> Result<Self> {
        if !is_plain_file_name(name) {
            return Err(Error::InvalidHeapName(name.to_owned()));
        }
        let path = dir.join(name);
        let fd =
            open(&path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|errno| {
                Error::OpenHeap {
                    path: path.clone(),
                    errno,
                }
            })?;
        Ok(Self {
            name: name.to_owned(),
            fd,
        })
    }

    /// A heap node another process opened and handed over (the allocator HAL delegating a heap
    /// to its client): `fd` must be an open `/dev/dma_heap/<name>`; the first allocation says
    /// whether it is one.
    pub fn from_fd(name: &str, fd: OwnedFd) -> Result<Self> {
        if !is_plain_file_name(name) {
            return Err(Error::InvalidHeapName(name.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            fd,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Allocates a buffer of `len` bytes; the kernel rounds it up to whole pages.
    pub fn allocate(&self, len: u64) -> Result<DmaBuf> {
        self.allocate_with_flags(len, 0)
    }

    /// [`Self::allocate`] with the heap's own `heap_flags` (0 for every upstream heap; a vendor
    /// heap may take flags, as ION heaps did).
    pub fn allocate_with_flags(&self, len: u64, heap_flags: u64) -> Result<DmaBuf> {
        let mut data = uapi::DmaHeapAllocationData {
            len,
            fd_flags: (OFlag::O_RDWR | OFlag::O_CLOEXEC).bits() as u32,
            heap_flags,
            ..Default::default()
        };
        retry_on_eintr(|| {
            // SAFETY: `self.fd` is an open dma-heap device and `data` is a live, correctly laid
            // out `struct dma_heap_allocation_data` that the kernel reads and writes only during
            // the call.
            unsafe { uapi::dma_heap_ioctl_alloc(self.fd.as_raw_fd(), &mut data) }
        })
        .map_err(|errno| Error::Allocate {
            heap: self.name.clone(),
            len,
            errno,
        })?;
        // SAFETY: on success the kernel installed a new dma-buf file descriptor in `data.fd` that
        // nothing else owns yet; ownership passes to the `OwnedFd`.
        let fd = unsafe { OwnedFd::from_raw_fd(data.fd as i32) };
        Ok(DmaBuf::from_parts(fd, len))
    }

    /// The names of the heaps in [`DMA_HEAP_DIR`], sorted.
    pub fn list() -> Result<Vec<String>> {
        Self::list_in(Path::new(DMA_HEAP_DIR))
    }

    pub fn list_in(dir: &Path) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(Error::ListHeaps)? {
            let entry = entry.map_err(Error::ListHeaps)?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// The device path of the heap called `name`.
    pub fn path_of(name: &str) -> PathBuf {
        Path::new(DMA_HEAP_DIR).join(name)
    }
}

fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

/// How many times an ioctl interrupted by a signal is tried again before EINTR is reported.
/// A heap gives up with EINTR when a signal arrives while it gathers or zeroes pages (a large
/// CMA allocation can take long enough for that); the call has done nothing then.
pub(crate) const EINTR_RETRIES: u32 = 16;

/// Calls `op` again while it fails with EINTR, at most [`EINTR_RETRIES`] more times.
pub(crate) fn retry_on_eintr<T>(mut op: impl FnMut() -> nix::Result<T>) -> nix::Result<T> {
    let mut retries = 0;
    loop {
        match op() {
            Err(nix::Error::EINTR) if retries < EINTR_RETRIES => retries += 1,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_escape_the_heap_directory_are_rejected() {
        for bad in ["", ".", "..", "../system", "a/b", "sys\0tem"] {
            assert!(
                matches!(DmaHeap::open(bad), Err(Error::InvalidHeapName(_))),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn a_missing_heap_reports_the_path_and_errno() {
        let dir = std::env::temp_dir();
        match DmaHeap::open_in(&dir, "no-such-heap-for-dmabuf-tests") {
            Err(Error::OpenHeap { path, errno }) => {
                assert_eq!(path, dir.join("no-such-heap-for-dmabuf-tests"));
                assert_eq!(errno, nix::Error::ENOENT);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn listing_is_sorted_file_names() {
        let dir = std::env::temp_dir().join(format!("dmabuf-list-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["system-uncached", "cma", "system"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let listed = DmaHeap::list_in(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(listed, ["cma", "system", "system-uncached"]);
    }

    #[test]
    fn an_interrupted_ioctl_is_tried_again_and_other_errors_are_not() {
        let mut calls = 0;
        let result = super::retry_on_eintr(|| {
            calls += 1;
            if calls < 3 {
                Err(nix::Error::EINTR)
            } else {
                Ok(calls)
            }
        });
        assert_eq!(result, Ok(3));
        let mut calls = 0;
        let result: nix::Result<()> = super::retry_on_eintr(|| {
            calls += 1;
            Err(nix::Error::ENOMEM)
        });
        assert_eq!((result, calls), (Err(nix::Error::ENOMEM), 1));
        // A signal storm ends in EINTR rather than a thread stuck in the loop.
        let mut calls = 0;
        let result: nix::Result<()> = super::retry_on_eintr(|| {
            calls += 1;
            Err(nix::Error::EINTR)
        });
        assert_eq!(
            (result, calls),
            (Err(nix::Error::EINTR), super::EINTR_RETRIES + 1)
        );
    }
}
