//! Buffer names and owners.
//!
//! A debug name is a debugging aid, never a reason to fail an allocation: whatever the caller
//! sends is cut, cleaned and, if nothing is left, replaced by the heap's name. The label the
//! kernel keeps (31 bytes, shown in `/proc/<pid>/fdinfo` and the dma-buf debugfs) is the
//! caller's name first; who asked for the buffer goes into a bounded record of recent
//! allocations that `dump` shows, keyed by the dma-buf's inode, which fdinfo (`ino:`) and
//! debugfs show too.

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dmaheap_aidl::consts::MAX_DEBUG_NAME_BYTES;

use crate::access::Caller;

/// How many allocations [`RecentOwners`] remembers.
pub const RECENT_OWNERS: usize = 128;

/// The kernel keeps this many bytes of a dma-buf name; see [`dmabuf::name`].
pub use dmabuf::name::{buffer_label, KERNEL_NAME_BYTES};

/// The caller's debug name as the service uses it ([`dmabuf::name::sanitize`]), at most
/// `MAX_DEBUG_NAME_BYTES` of it.
pub fn sanitize_debug_name(raw: &str) -> String {
    dmabuf::name::sanitize(raw, MAX_DEBUG_NAME_BYTES as usize)
}

/// The inode of the file `fd` refers to; for a dma-buf, the `ino:` of its fdinfo and the
/// inode column of the kernel's dma-buf debugfs. 0 if the kernel does not say.
pub fn inode_of(fd: impl AsFd) -> u64 {
    nix::sys::stat::fstat(fd).map_or(0, |st| st.st_ino)
}

/// Who one buffer was made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub inode: u64,
    pub uid: u32,
    pub pid: i32,
    pub domain: Option<String>,
    pub heap: String,
    pub size: u64,
    /// The sanitised debug name, longer than the kernel keeps of it.
    pub name: Arc<str>,
    pub batch_index: Option<u32>,
    pub at: Instant,
}

impl Owner {
    pub fn new(caller: &Caller, name: Arc<str>, heap: &str, size: u64, inode: u64) -> Self {
        Self {
            inode,
            uid: caller.uid,
            pid: caller.pid,
            domain: caller.domain.clone(),
            heap: heap.to_owned(),
            size,
            name,
            batch_index: None,
            at: Instant::now(),
        }
    }
}

/// The owners of the last [`RECENT_OWNERS`] buffers handed out, oldest first. Bounded, so that
/// a client allocating in a loop costs the service no memory.
#[derive(Debug, Default)]
pub struct RecentOwners {
    owners: Mutex<VecDeque<Owner>>,
}

impl RecentOwners {
    pub fn record(&self, owner: Owner) {
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        if owners.len() == RECENT_OWNERS {
            owners.pop_front();
        }
        owners.push_back(owner);
    }

    pub fn snapshot(&self) -> Vec<Owner> {
        let owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        owners.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_keeps_the_newest_owners_only() {
        let recent = RecentOwners::default();
        let caller = Caller::new(10123, 7);
        for inode in 0..(RECENT_OWNERS as u64 * 3) {
            recent.record(Owner::new(&caller, "x".into(), "system", 4096, inode));
        }
        let kept = recent.snapshot();
        assert_eq!(kept.len(), RECENT_OWNERS);
        assert_eq!(
            kept.first().map(|o| o.inode),
            Some(RECENT_OWNERS as u64 * 2)
        );
        assert_eq!(
            kept.last().map(|o| o.inode),
            Some(RECENT_OWNERS as u64 * 3 - 1)
        );
    }
}
