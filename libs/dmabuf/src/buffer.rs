use std::ffi::CString;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use nix::unistd::{lseek, Whence};

use crate::uapi;
use crate::{Error, Result};

/// The kernel keeps at most this many bytes of a buffer's name, including the terminating NUL.
pub const DMA_BUF_NAME_LEN: usize = 32;

/// The direction of a CPU access bracketed by [`DmaBuf::begin_cpu_access`] / [`DmaBuf::end_cpu_access`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuAccess {
    Read,
    Write,
    ReadWrite,
}

impl CpuAccess {
    fn sync_flags(self) -> u64 {
        match self {
            CpuAccess::Read => uapi::DMA_BUF_SYNC_READ,
            CpuAccess::Write => uapi::DMA_BUF_SYNC_WRITE,
            CpuAccess::ReadWrite => uapi::DMA_BUF_SYNC_READ | uapi::DMA_BUF_SYNC_WRITE,
        }
    }
}

/// An owned dma-buf file descriptor and the size it was allocated with.
#[derive(Debug)]
pub struct DmaBuf {
    fd: OwnedFd,
    len: u64,
}

impl DmaBuf {
    pub(crate) fn from_parts(fd: OwnedFd, len: u64) -> Self {
        Self { fd, len }
    }

    /// Takes ownership of a dma-buf fd received from elsewhere (over binder, say); its size is
    /// what the kernel reports for the file, whole pages.
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        // One system call on every received buffer: a dma-buf's llseek reports the size without
        // moving the file position (dma-bufs have no read or write), so there is nothing to
        // rewind.
        let end =
            lseek(&fd, 0, Whence::SeekEnd).map_err(|errno| Error::Ioctl { op: "lseek", errno })?;
        Ok(Self {
            fd,
            len: end as u64,
        })
    }

    /// The size requested at allocation (or the file size for a received buffer).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Names the buffer for debugging tools (`/sys/kernel/debug/dma_buf/bufinfo`, `dmabuf_dump`).
    /// The kernel keeps [`DMA_BUF_NAME_LEN`]` - 1` bytes; a longer name is cut at a character
    /// boundary here so that what the kernel stores stays valid UTF-8.
    pub fn set_name(&self, name: &str) -> Result<()> {
        let kept = truncate_at_char_boundary(name, DMA_BUF_NAME_LEN - 1);
        let c_name = CString::new(kept).map_err(|_| Error::NameHasNul(name.to_owned()))?;
        restarted(&[Errno::EINTR], || {
            // SAFETY: the fd is an open dma-buf and `c_name` is a NUL-terminated string that
            // outlives the call; the kernel copies at most DMA_BUF_NAME_LEN bytes from it.
            unsafe { uapi::dma_buf_set_name(self.fd.as_raw_fd(), c_name.as_ptr()) }
        })
        .map_err(|errno| Error::Ioctl {
            op: "DMA_BUF_SET_NAME",
            errno,
        })?;
        Ok(())
    }

    pub fn begin_cpu_access(&self, access: CpuAccess) -> Result<()> {
        self.sync(access.sync_flags() | uapi::DMA_BUF_SYNC_START)
    }

    pub fn end_cpu_access(&self, access: CpuAccess) -> Result<()> {
        self.sync(access.sync_flags() | uapi::DMA_BUF_SYNC_END)
    }

    fn sync(&self, flags: u64) -> Result<()> {
        let arg = uapi::DmaBufSync { flags };
        // The kernel's dma-buf documentation: DMA_BUF_IOCTL_SYNC "can return -EAGAIN or -EINTR,
        // in which case it must be restarted".
        restarted(&[Errno::EINTR, Errno::EAGAIN], || {
            // SAFETY: the fd is an open dma-buf and `arg` is a valid `struct dma_buf_sync` that
            // the kernel only reads during the call.
            unsafe { uapi::dma_buf_ioctl_sync(self.fd.as_raw_fd(), &arg) }
        })
        .map_err(|errno| Error::Ioctl {
            op: "DMA_BUF_IOCTL_SYNC",
            errno,
        })?;
        Ok(())
    }

    /// Maps the whole buffer read-write and shared.
    pub fn map(&self) -> Result<Mapping> {
        let len = usize::try_from(self.len)
            .ok()
            .and_then(NonZeroUsize::new)
            .ok_or(Error::UnmappableSize(self.len))?;
        // SAFETY: a fresh shared mapping of a file we hold open; it aliases no Rust object, and
        // `Mapping` unmaps exactly this range once.
        let ptr = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &self.fd,
                0,
            )
        }
        .map_err(|errno| Error::Ioctl { op: "mmap", errno })?;
        Ok(Mapping {
            ptr: ptr.cast(),
            len: len.get(),
        })
    }
}

impl AsFd for DmaBuf {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A CPU mapping of a dma-buf. Other processes and devices may write the same memory, so its
/// contents are read and written through volatile accesses rather than handed out as slices.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The offset of the first byte that differs from `expected`, if any.
    pub fn find_byte_not_equal_to(&self, expected: u8) -> Option<usize> {
        (0..self.len).find(|&offset| self.read(offset) != expected)
    }

    /// Like [`Mapping::find_byte_not_equal_to`], but reads eight bytes at a time: for checking
    /// large buffers (tens of MiB) quickly.
    pub fn find_byte_not_equal_to_wide(&self, expected: u8) -> Option<usize> {
        let words = self.len / 8;
        let pattern = u64::from_ne_bytes([expected; 8]);
        let base = self.ptr.as_ptr().cast::<u64>();
        for w in 0..words {
            // SAFETY: `w * 8 + 8 <= len`, inside the live mapping; mmap returns page-aligned
            // addresses, so the u64 access is aligned.
            let v = unsafe { base.add(w).read_volatile() };
            if v != pattern {
                let first = (0..8)
                    .find(|&i| v.to_ne_bytes()[i] != expected)
                    .unwrap_or(0);
                return Some(w * 8 + first);
            }
        }
        (words * 8..self.len).find(|&offset| self.read(offset) != expected)
    }

    /// Like [`Mapping::fill`], but writes eight bytes at a time.
    pub fn fill_wide(&mut self, value: u8) {
        let words = self.len / 8;
        let pattern = u64::from_ne_bytes([value; 8]);
        let base = self.ptr.as_ptr().cast::<u64>();
        for w in 0..words {
            // SAFETY: as in `find_byte_not_equal_to_wide`, and the mapping is writable.
            unsafe { base.add(w).write_volatile(pattern) };
        }
        for offset in words * 8..self.len {
            self.write(offset, value);
        }
    }

    pub fn read(&self, offset: usize) -> u8 {
        assert!(
            offset < self.len,
            "offset {offset} outside a {}-byte mapping",
            self.len
        );
        // SAFETY: offset is inside the live mapping, checked above.
        unsafe { self.ptr.as_ptr().add(offset).read_volatile() }
    }

    pub fn write(&mut self, offset: usize, value: u8) {
        assert!(
            offset < self.len,
            "offset {offset} outside a {}-byte mapping",
            self.len
        );
        // SAFETY: offset is inside the live, writable mapping, checked above.
        unsafe { self.ptr.as_ptr().add(offset).write_volatile(value) }
    }

    pub fn fill(&mut self, value: u8) {
        for offset in 0..self.len {
            self.write(offset, value);
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the range `mmap` returned, unmapped only here.
        // A failure can only mean the range is already gone; there is nothing to recover.
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

/// Runs `ioctl` again for as long as it fails with one of `restart_on`.
fn restarted<T>(restart_on: &[Errno], mut ioctl: impl FnMut() -> nix::Result<T>) -> nix::Result<T> {
    loop {
        match ioctl() {
            Err(errno) if restart_on.contains(&errno) => continue,
            other => return other,
        }
    }
}

/// The longest prefix of `s` of at most `max_bytes` bytes that ends on a character boundary.
pub fn truncate_at_char_boundary(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_to_the_kernel_limit_without_splitting_a_character() {
        assert_eq!(truncate_at_char_boundary("short", 31), "short");
        let long = "x".repeat(40);
        assert_eq!(truncate_at_char_boundary(&long, 31).len(), 31);
        // 30 ASCII bytes then a 3-byte character: cutting at 31 would split it.
        let multibyte = format!("{}€", "a".repeat(30));
        assert_eq!(truncate_at_char_boundary(&multibyte, 31), "a".repeat(30));
    }

    #[test]
    fn only_the_listed_errors_restart_an_ioctl() {
        let mut calls = 0;
        let r = restarted(&[Errno::EINTR, Errno::EAGAIN], || {
            calls += 1;
            match calls {
                1 => Err(Errno::EINTR),
                2 => Err(Errno::EAGAIN),
                _ => Ok(7),
            }
        });
        assert_eq!((r, calls), (Ok(7), 3));
        let mut calls = 0;
        let r: nix::Result<()> = restarted(&[Errno::EINTR], || {
            calls += 1;
            Err(if calls == 1 {
                Errno::EINTR
            } else {
                Errno::EAGAIN
            })
        });
        assert_eq!((r, calls), (Err(Errno::EAGAIN), 2));
        let mut calls = 0;
        let r: nix::Result<()> = restarted(&[Errno::EINTR, Errno::EAGAIN], || {
            calls += 1;
            Err(Errno::EINVAL)
        });
        assert_eq!((r, calls), (Err(Errno::EINVAL), 1));
    }

    #[test]
    fn sync_flags_match_the_uapi() {
        assert_eq!(CpuAccess::Read.sync_flags(), 1);
        assert_eq!(CpuAccess::Write.sync_flags(), 2);
        assert_eq!(CpuAccess::ReadWrite.sync_flags(), 3);
    }

    #[test]
    fn a_memfd_stands_in_for_a_received_buffer_and_maps() {
        let memfd =
            nix::sys::memfd::memfd_create(c"dmabuf-test", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                .expect("memfd_create");
        nix::unistd::ftruncate(&memfd, 8192).unwrap();
        let buf = DmaBuf::from_fd(memfd).unwrap();
        assert_eq!(buf.len(), 8192);
        let mut map = buf.map().unwrap();
        assert_eq!(map.find_byte_not_equal_to(0), None);
        map.write(4097, 0xa5);
        assert_eq!(map.find_byte_not_equal_to(0), Some(4097));
        map.fill(0x5a);
        assert_eq!(map.find_byte_not_equal_to(0x5a), None);
        map.fill_wide(0x3c);
        assert_eq!(map.find_byte_not_equal_to_wide(0x3c), None);
        map.write(8190, 0);
        assert_eq!(map.find_byte_not_equal_to_wide(0x3c), Some(8190));
    }
}
