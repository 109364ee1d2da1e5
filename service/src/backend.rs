//! Where buffers come from. The allocator talks to a [`HeapBackend`] so that its whole logic runs
//! in host tests against [`MemfdBackend`]; on a device it is [`DmaHeapBackend`].

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;

use dmabuf::{DmaBuf, DmaHeap};

/// Why a backend could not produce or name a buffer.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("heap {0:?} is not present")]
    Absent(String),
    #[error(transparent)]
    DmaBuf(#[from] dmabuf::Error),
    #[error("{op} failed: {errno}")]
    Os { op: &'static str, errno: nix::Error },
    /// The heap's node carries a label the vendor policy keeps to the HAL alone.
    #[error("heap {heap:?} is labelled {label}, which only the HAL may use")]
    HalOnly { heap: String, label: String },
}

impl BackendError {
    /// The kernel's errno, when the kernel refused.
    pub fn errno(&self) -> Option<nix::Error> {
        match self {
            BackendError::Absent(_) | BackendError::HalOnly { .. } => None,
            BackendError::DmaBuf(e) => e.errno(),
            BackendError::Os { errno, .. } => Some(*errno),
        }
    }

    pub fn is_out_of_memory(&self) -> bool {
        self.errno() == Some(nix::Error::ENOMEM)
    }
}

/// A source of dma-bufs, by heap name.
pub trait HeapBackend: Send + Sync {
    /// Whether the heap exists on this device now.
    fn is_present(&self, heap: &str) -> bool;
    /// A new buffer of `len` bytes (already page-aligned) from `heap`; its memory is zeroed.
    fn allocate(&self, heap: &str, len: u64) -> Result<DmaBuf, BackendError>;
    /// [`Self::allocate`] with the heap's own `heap_flags` (from an ION entry's `pass_flags`).
    /// Backends that know no flags refuse any, as an upstream heap does.
    fn allocate_with_flags(
        &self,
        heap: &str,
        len: u64,
        heap_flags: u64,
    ) -> Result<DmaBuf, BackendError> {
        if heap_flags != 0 {
            return Err(BackendError::Os {
                op: "allocate with heap flags",
                errno: nix::Error::EINVAL,
            });
        }
        self.allocate(heap, len)
    }
    /// Names the buffer for debugging tools.
    fn set_name(&self, buf: &DmaBuf, name: &str) -> Result<(), BackendError>;
    /// The heap's node opened anew for a client to allocate from itself (a delegated heap):
    /// its own open file, read-only, close-on-exec. `HalOnly` for a node the client could not
    /// use anyway under the vendor's SELinux policy.
    fn open_for_client(&self, heap: &str) -> Result<OwnedFd, BackendError>;
}

/// The SELinux type of the heap nodes only the HAL may open or ioctl (`sepolicy/vendor/file.te`;
/// `hal_dmaheap.te` has the neverallow): handing one out would only earn the client an AVC
/// denial on its first allocation.
pub const HAL_ONLY_HEAP_TYPE: &str = "dmaheap_vendor_heap_device";

/// The SELinux type in a node's `security.selinux` label (`u:object_r:<type>:s0`), if it has one.
fn selinux_type(path: &Path) -> Option<String> {
    let label = xattr(path, "security.selinux")?;
    let label = String::from_utf8_lossy(&label);
    label
        .trim_end_matches('\0')
        .split(':')
        .nth(2)
        .map(str::to_owned)
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let name = std::ffi::CString::new(name).ok()?;
    let mut value = vec![0u8; 256];
    // SAFETY: both strings are NUL-terminated and outlive the call; `value` is writable for its
    // length, which is what the call is told.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    let n = usize::try_from(n).ok()?;
    value.truncate(n);
    Some(value)
}

/// The real thing: `DMA_HEAP_IOCTL_ALLOC` on `/dev/dma_heap/<name>`.
///
/// Each heap device is opened once and kept open: opening it per allocation would cost a path
/// walk and an SELinux check on every buffer.
#[derive(Debug)]
pub struct DmaHeapBackend {
    dir: PathBuf,
    open: RwLock<HashMap<String, Arc<DmaHeap>>>,
}

impl DmaHeapBackend {
    /// Heaps are looked up in `dir` (normally [`dmabuf::DMA_HEAP_DIR`]); the ones named in
    /// `preopen` that exist are opened right away so that the first allocations are not slower.
    pub fn new(dir: &Path, preopen: &[String]) -> Self {
        let backend = Self {
            dir: dir.to_owned(),
            open: RwLock::new(HashMap::new()),
        };
        for name in preopen {
            match backend.heap(name) {
                Ok(_) => log::info!("heap {name}: opened {}", dir.join(name).display()),
                Err(e) => log::info!("heap {name}: not available ({e})"),
            }
        }
        backend
    }

    /// The heaps present in the directory, whatever the policy says.
    pub fn present_heaps(&self) -> BTreeSet<String> {
        DmaHeap::list_in(&self.dir)
            .map(|v| v.into_iter().collect())
            .unwrap_or_default()
    }

    fn heap(&self, name: &str) -> Result<Arc<DmaHeap>, BackendError> {
        if let Some(heap) = self
            .open
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return Ok(Arc::clone(heap));
        }
        // Heaps may appear after start-up (a vendor module loaded late), so a miss is retried.
        let heap = match DmaHeap::open_in(&self.dir, name) {
            Ok(heap) => Arc::new(heap),
            Err(dmabuf::Error::OpenHeap {
                errno: nix::Error::ENOENT,
                ..
            }) => {
                return Err(BackendError::Absent(name.to_owned()));
            }
            Err(e) => return Err(e.into()),
        };
        let mut open = self.open.write().unwrap_or_else(|p| p.into_inner());
        // Another thread may have opened it meanwhile; keep one fd per heap.
        Ok(Arc::clone(open.entry(name.to_owned()).or_insert(heap)))
    }
}

impl HeapBackend for DmaHeapBackend {
    fn is_present(&self, heap: &str) -> bool {
        self.open
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(heap)
            || self.dir.join(heap).exists()
    }

    fn allocate(&self, heap: &str, len: u64) -> Result<DmaBuf, BackendError> {
        Ok(self.heap(heap)?.allocate(len)?)
    }

    fn allocate_with_flags(
        &self,
        heap: &str,
        len: u64,
        heap_flags: u64,
    ) -> Result<DmaBuf, BackendError> {
        Ok(self.heap(heap)?.allocate_with_flags(len, heap_flags)?)
    }

    fn set_name(&self, buf: &DmaBuf, name: &str) -> Result<(), BackendError> {
        Ok(buf.set_name(name)?)
    }

    fn open_for_client(&self, heap: &str) -> Result<OwnedFd, BackendError> {
        let path = self.dir.join(heap);
        if let Some(label) = selinux_type(&path) {
            if label == HAL_ONLY_HEAP_TYPE {
                return Err(BackendError::HalOnly {
                    heap: heap.to_owned(),
                    label,
                });
            }
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => BackendError::Absent(heap.to_owned()),
                _ => BackendError::Os {
                    op: "opening the heap for a client",
                    errno: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                },
            })?;
        Ok(OwnedFd::from(file))
    }
}

/// A stand-in for host tests: each "heap" hands out memfds, which are zeroed, mappable, and
/// counted like dma-bufs. Heaps can be made absent or made to fail with an errno.
#[derive(Debug, Default)]
pub struct MemfdBackend {
    state: Mutex<MemfdState>,
    /// Signalled when a held heap is released or a caller starts waiting on one.
    changed: Condvar,
}

#[derive(Debug, Default)]
struct MemfdState {
    present: BTreeSet<String>,
    failures: HashMap<String, FailurePlan>,
    names: Vec<String>,
    allocations: u64,
    /// Heaps whose allocations wait until released (a slow CMA allocation, in tests).
    held: BTreeSet<String>,
    /// Allocations waiting on a held heap now.
    waiting: usize,
}

#[derive(Debug, Clone, Copy)]
struct FailurePlan {
    errno: nix::Error,
    after: u64,
}

impl MemfdBackend {
    pub fn with_heaps<I: IntoIterator<Item = S>, S: Into<String>>(heaps: I) -> Self {
        let backend = Self::default();
        backend.lock().present = heaps.into_iter().map(Into::into).collect();
        backend
    }

    /// Makes `heap` fail with `errno` once it has served `after` more buffers.
    pub fn fail_after(&self, heap: &str, after: u64, errno: nix::Error) {
        self.lock()
            .failures
            .insert(heap.to_owned(), FailurePlan { errno, after });
    }

    pub fn set_present(&self, heap: &str, present: bool) {
        let mut state = self.lock();
        if present {
            state.present.insert(heap.to_owned());
        } else {
            state.present.remove(heap);
        }
    }

    /// Every name given to a buffer so far, in order.
    pub fn names(&self) -> Vec<String> {
        self.lock().names.clone()
    }

    /// How many buffers were created, including ones later freed.
    pub fn allocations(&self) -> u64 {
        self.lock().allocations
    }

    /// Makes allocations from `heap` wait until [`MemfdBackend::release`].
    pub fn hold(&self, heap: &str) {
        self.lock().held.insert(heap.to_owned());
    }

    pub fn release(&self, heap: &str) {
        self.lock().held.remove(heap);
        self.changed.notify_all();
    }

    /// Waits until `count` allocations are waiting on held heaps.
    pub fn wait_for_waiters(&self, count: usize) {
        let mut state = self.lock();
        while state.waiting < count {
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemfdState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl HeapBackend for MemfdBackend {
    fn is_present(&self, heap: &str) -> bool {
        self.lock().present.contains(heap)
    }

    fn allocate(&self, heap: &str, len: u64) -> Result<DmaBuf, BackendError> {
        {
            let mut state = self.lock();
            if state.held.contains(heap) {
                state.waiting += 1;
                self.changed.notify_all();
                while state.held.contains(heap) {
                    state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
                }
                state.waiting -= 1;
            }
            if !state.present.contains(heap) {
                return Err(BackendError::Absent(heap.to_owned()));
            }
            if let Some(plan) = state.failures.get_mut(heap) {
                if plan.after == 0 {
                    return Err(BackendError::Os {
                        op: "allocate",
                        errno: plan.errno,
                    });
                }
                plan.after -= 1;
            }
            state.allocations += 1;
        }
        let fd =
            nix::sys::memfd::memfd_create(c"dmaheap-test", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                .map_err(|errno| BackendError::Os {
                    op: "memfd_create",
                    errno,
                })?;
        let size = i64::try_from(len).map_err(|_| BackendError::Os {
            op: "ftruncate",
            errno: nix::Error::EINVAL,
        })?;
        nix::unistd::ftruncate(&fd, size).map_err(|errno| BackendError::Os {
            op: "ftruncate",
            errno,
        })?;
        Ok(DmaBuf::from_fd(fd)?)
    }

    fn set_name(&self, _buf: &DmaBuf, name: &str) -> Result<(), BackendError> {
        self.lock().names.push(name.to_owned());
        Ok(())
    }

    /// A memfd stands in for the node: tests check that one is handed out and closed.
    fn open_for_client(&self, heap: &str) -> Result<OwnedFd, BackendError> {
        if !self.lock().present.contains(heap) {
            return Err(BackendError::Absent(heap.to_owned()));
        }
        nix::sys::memfd::memfd_create(c"dmaheap-node", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|errno| BackendError::Os {
                op: "memfd_create",
                errno,
            })
    }
}
