//! CPU access brackets and buffer names on a caller's dma-buf fd, through the `dmabuf` crate.
//!
//! The caller keeps its fd: the library works on a duplicate (`F_DUPFD_CLOEXEC`), closed before
//! returning, so nothing here can close or leak the caller's descriptor. `DmaBuf::from_fd` asks
//! the size with `lseek(SEEK_END)`, which leaves a dma-buf's file position alone; an fd that is
//! not a dma-buf fails (`ESPIPE` for a pipe, `ENOTTY` at the ioctl otherwise), its shared file
//! position possibly moved to the end.

use std::ffi::c_int;
use std::os::fd::{FromRawFd, OwnedFd};

use dmabuf::{CpuAccess, DmaBuf};
use nix::errno::Errno;
use nix::libc;

use crate::error::{Error, Result};

/// An owned duplicate of `fd` as a [`DmaBuf`].
fn dma_buf(fd: c_int) -> Result<DmaBuf> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on any integer is sound: it either fails (EBADF) or
    // returns a new descriptor that nothing else owns.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(Error::Os {
            op: "dup of the dma-buf fd",
            errno: Errno::last(),
        });
    }
    // SAFETY: `dup` is a fresh descriptor owned by no one else; the OwnedFd closes it once.
    let owned = unsafe { OwnedFd::from_raw_fd(dup) };
    Ok(DmaBuf::from_fd(owned)?)
}

/// `DMA_BUF_IOCTL_SYNC` start; `dmabuf` restarts it on EINTR and EAGAIN, as the kernel's
/// dma-buf documentation requires.
pub fn sync_start(fd: c_int, access: CpuAccess) -> Result<()> {
    Ok(dma_buf(fd)?.begin_cpu_access(access)?)
}

pub fn sync_end(fd: c_int, access: CpuAccess) -> Result<()> {
    Ok(dma_buf(fd)?.end_cpu_access(access)?)
}

/// `DMA_BUF_SET_NAME`; the name is cut to the kernel's 31 bytes at a character boundary, and
/// `dmabuf` restarts the ioctl on EINTR.
pub fn set_name(fd: c_int, name: &str) -> Result<()> {
    Ok(dma_buf(fd)?.set_name(name)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fds::{count_open_fds, memfd, FD_LOCK};
    use std::os::fd::AsRawFd;

    #[test]
    fn a_memfd_is_not_a_dma_buf_and_nothing_leaks() {
        let _l = FD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let fd = memfd();
        let before = count_open_fds();
        for r in [
            sync_start(fd.as_raw_fd(), CpuAccess::Read),
            sync_end(fd.as_raw_fd(), CpuAccess::ReadWrite),
            set_name(fd.as_raw_fd(), "x"),
        ] {
            assert_eq!(r.unwrap_err().errno(), libc::ENOTTY);
        }
        assert_eq!(count_open_fds(), before);
        // The caller's fd is still open and still the memfd.
        assert!(nix::unistd::lseek(&fd, 0, nix::unistd::Whence::SeekEnd).is_ok());
    }

    #[test]
    fn a_closed_fd_is_ebadf() {
        let _l = FD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let fd = memfd();
        let raw = fd.as_raw_fd();
        drop(fd);
        assert_eq!(
            sync_start(raw, CpuAccess::Read).unwrap_err().errno(),
            libc::EBADF
        );
    }
}
