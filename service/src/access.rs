//! Who is calling and whom the policy lets in: the caller's uid and SELinux domain, the policy's
//! `allow_uids` / `allow_domains` lists, and the Android ID names those lists may use.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Android IDs a policy may name in `allow_uids`, and `dump` prints.
///
/// Source: AOSP `system/core/libcutils/include/private/android_filesystem_config.h` (the
/// `AID_*` defines; a define's friendly name is its lowercased suffix, except `mediacodec`,
/// `mediaex` and `mediadrm`, which the header names itself). Only the ids a heap allocator's
/// callers run as are listed; any other uid can be given as a number.
pub const ANDROID_IDS: &[(&str, u32)] = &[
    ("root", 0),
    ("system", 1000),
    ("radio", 1001),
    ("bluetooth", 1002),
    ("graphics", 1003),
    ("audio", 1005),
    ("camera", 1006),
    ("media", 1013),
    ("drm", 1019),
    ("mediadrm", 1031),
    ("mediaex", 1040),
    ("audioserver", 1041),
    ("mediacodec", 1046),
    ("cameraserver", 1047),
    ("automotive_evs", 1062),
    ("gpu_service", 1072),
    ("shell", 2000),
    ("nobody", 9999),
];

/// The uid an Android ID name stands for.
pub fn uid_of_name(name: &str) -> Option<u32> {
    ANDROID_IDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, uid)| uid)
}

/// The Android ID name of a uid, when it has one in [`ANDROID_IDS`].
pub fn name_of_uid(uid: u32) -> Option<&'static str> {
    ANDROID_IDS
        .iter()
        .find(|(_, u)| *u == uid)
        .map(|&(name, _)| name)
}

/// Uids that may read everything the service knows (dump, every uid's counters): AOSP's
/// debugging identities.
pub const PRIVILEGED_UIDS: [u32; 3] = [0, 1000, 2000];

/// The domain `dumpsys`/bugreport run in; it may dump whatever its uid.
pub const DUMPSTATE_DOMAIN: &str = "dumpstate";

/// Who is asking, from the binder transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub pid: i32,
    /// The type field of the caller's SELinux context; `None` where the kernel gives none
    /// (SELinux off, or a binder that did not request it).
    pub domain: Option<String>,
}

impl Caller {
    /// A caller known by uid and pid only (no SELinux context).
    pub fn new(uid: u32, pid: i32) -> Self {
        Self {
            uid,
            pid,
            domain: None,
        }
    }

    /// A caller with an SELinux context such as `u:r:hal_camera_default:s0`.
    pub fn with_context(uid: u32, pid: i32, context: Option<&str>) -> Self {
        Self {
            uid,
            pid,
            domain: context.and_then(domain_of_context).map(str::to_owned),
        }
    }

    /// The domain as messages show it.
    pub fn domain_shown(&self) -> &str {
        self.domain.as_deref().unwrap_or("<none>")
    }

    /// May read dumps and every uid's counters.
    pub fn is_privileged(&self) -> bool {
        PRIVILEGED_UIDS.contains(&self.uid) || self.domain.as_deref() == Some(DUMPSTATE_DOMAIN)
    }
}

/// The type (domain) of an SELinux context `user:role:type:level[:categories]`.
pub fn domain_of_context(context: &str) -> Option<&str> {
    let context = context.trim_end_matches('\0');
    context
        .split(':')
        .nth(2)
        .filter(|t| is_selinux_identifier(t))
}

/// What a policy type name may be made of (checkpolicy's identifiers).
pub fn is_selinux_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// An `allow_domains` / `allow_uids` pair. Empty means "no list given".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    pub domains: Vec<String>,
    pub uids: Vec<u32>,
}

impl AllowList {
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty() && self.uids.is_empty()
    }

    /// Whether the caller's uid or domain is listed.
    pub fn admits(&self, caller: &Caller) -> bool {
        self.uids.contains(&caller.uid)
            || caller
                .domain
                .as_deref()
                .is_some_and(|d| self.domains.iter().any(|listed| listed == d))
    }

    /// `domains=a,b uids=root,1234`, for dump.
    pub fn describe(&self) -> String {
        let uids: Vec<String> = self
            .uids
            .iter()
            .map(|&u| name_of_uid(u).map_or_else(|| u.to_string(), str::to_owned))
            .collect();
        format!("domains={} uids={}", self.domains.join(","), uids.join(","))
    }
}

/// Logs a line at most once per key per interval, counting what it held back: a client that
/// fails on purpose must not be able to flood the log.
#[derive(Debug)]
pub struct RateLimitedLog {
    interval: Duration,
    capacity: usize,
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl RateLimitedLog {
    pub fn new(interval: Duration, capacity: usize) -> Self {
        Self {
            interval,
            capacity,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a line for `key` goes out now, and how many were held back before it.
    pub fn admit(&self, key: &str) -> Option<u64> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((last, held)) = seen.get_mut(key) {
            if now.duration_since(*last) < self.interval {
                *held += 1;
                return None;
            }
            let held_back = *held;
            *last = now;
            *held = 0;
            return Some(held_back);
        }
        if seen.len() >= self.capacity {
            // Forget keys whose interval is over; if every key is fresh, a flood of new keys is
            // itself what must not reach the log.
            let interval = self.interval;
            seen.retain(|_, (last, _)| now.duration_since(*last) < interval);
            if seen.len() >= self.capacity {
                return None;
            }
        }
        seen.insert(key.to_owned(), (now, 0));
        Some(0)
    }
}
