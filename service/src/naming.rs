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

/// The kernel keeps this many bytes of a dma-buf name (DMA_BUF_NAME_LEN 32, with the NUL).
pub const KERNEL_NAME_BYTES: usize = 31;

/// How many allocations [`RecentOwners`] remembers.
pub const RECENT_OWNERS: usize = 128;

/// Unicode general category Cf (format), from the Unicode Character Database's
/// `extracted/DerivedGeneralCategory.txt` (Unicode 15.1): bidirectional overrides and isolates,
/// zero-width spaces and joiners, the BOM, invisible operators, tags.
const FORMAT_CHARS: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

pub fn is_format_char(c: char) -> bool {
    FORMAT_CHARS.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// The caller's debug name as the service uses it: at most `MAX_DEBUG_NAME_BYTES` of it,
/// format characters (Cf) dropped, since they hide or reorder what a reader of fdinfo, debugfs
/// or a log sees, and control characters (C0, DEL, C1) and whitespace replaced by `_`: they end
/// lines and split the whitespace-separated columns of the kernel's dma-buf debugfs. May be
/// empty; [`buffer_label`] then uses the heap's name.
pub fn sanitize_debug_name(raw: &str) -> String {
    // Cut by bytes before looking at a single character: a hostile multi-megabyte name then
    // costs what a short one does.
    let cut = dmabuf::truncate_at_char_boundary(raw, MAX_DEBUG_NAME_BYTES as usize);
    cut.chars()
        .filter(|&c| !is_format_char(c))
        .map(|c| {
            if c.is_control() || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// The dma-buf name, within the [`KERNEL_NAME_BYTES`] the kernel keeps: the sanitised debug
/// `name` first, cut at a character boundary, then `#<batch index>` and `@<heap>` as long as
/// each fits whole. An empty name becomes the heap's name (without the `@<heap>` again).
pub fn buffer_label(name: &str, heap: &str, batch_index: Option<u32>) -> String {
    let (name, heap_suffix) = if name.is_empty() {
        (heap, None)
    } else {
        (name, Some(heap))
    };
    let mut label = dmabuf::truncate_at_char_boundary(name, KERNEL_NAME_BYTES).to_owned();
    let suffixes = [
        batch_index.map(|i| format!("#{i}")),
        heap_suffix.map(|h| format!("@{h}")),
    ];
    for suffix in suffixes.into_iter().flatten() {
        if label.len() + suffix.len() > KERNEL_NAME_BYTES {
            break;
        }
        label.push_str(&suffix);
    }
    label
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
