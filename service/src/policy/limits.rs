//! Request limits: the largest buffer, batch and call, and how many calls a caller may have in
//! flight, per SELinux domain or uid.

use std::collections::HashMap;

use toml::Spanned;

use super::file::{CallerLimitFile, LimitsFile, OverLimitFile};
use super::parse::{uid_of_spec, Source};
use super::{Policy, PolicyError};
use crate::access::{self, Caller};

/// The domains whose calls queue for a slot instead of getting `ERROR_BUSY`, unless the policy
/// says otherwise for them: the HAL's clients in `sepolicy/vendor/hal_dmaheap_clients.te`.
/// Each allocates on behalf of many apps under one identity (every app's graphic buffers come
/// through the gralloc allocator), so a busy error would fail an app that did nothing wrong.
/// `hal_graphics_allocator` is the HAL attribute's name, listed for trees that name their
/// gralloc domain after it.
pub const QUEUEING_DOMAINS: &[&str] = &[
    "hal_graphics_allocator_default",
    "hal_graphics_allocator",
    "hal_camera_default",
    "mediacodec",
];

/// What a call beyond its caller's calls in flight does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    /// Waits a short while for a slot (the allocator's `BUSY_WAIT`), then `ERROR_BUSY`.
    Busy,
    /// Waits in line for a slot, however long it takes.
    Queue,
}

impl OverLimit {
    /// As the policy file writes it.
    pub fn name(self) -> &'static str {
        match self {
            OverLimit::Busy => "busy",
            OverLimit::Queue => "queue",
        }
    }
}

/// Whom a `[[limits.caller]]` entry is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CallerMatch {
    Domain(String),
    Uid(u32),
}

impl CallerMatch {
    fn matches(&self, caller: &Caller) -> bool {
        match self {
            CallerMatch::Domain(domain) => caller.domain.as_deref() == Some(domain.as_str()),
            CallerMatch::Uid(uid) => caller.uid == *uid,
        }
    }

    /// `domain hal_camera_default`, `uid cameraserver`.
    pub fn describe(&self) -> String {
        match self {
            CallerMatch::Domain(domain) => format!("domain {domain}"),
            CallerMatch::Uid(uid) => match access::name_of_uid(*uid) {
                Some(name) => format!("uid {name}"),
                None => format!("uid {uid}"),
            },
        }
    }
}

/// The calls in flight of one domain or uid, shared by all its processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerLimit {
    pub who: CallerMatch,
    pub max_calls_in_flight: u32,
    pub over_limit: OverLimit,
    /// The entry's line in the policy file; 0 for a built-in entry ([`QUEUEING_DOMAINS`]).
    pub line: usize,
}

impl CallerLimit {
    /// Where the entry comes from, for messages and `dump`.
    pub fn origin(&self) -> String {
        if self.line == 0 {
            "built in".to_owned()
        } else {
            format!("[[limits.caller]] on line {}", self.line)
        }
    }
}

/// Request limits. A request above them is refused before any memory is touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest single buffer, in bytes (`ERROR_BAD_ARGUMENT` above it).
    pub max_allocation_bytes: u64,
    /// Largest `count` of a batch (`ERROR_BAD_ARGUMENT` above it), at most `MAX_BATCH_COUNT`.
    pub max_batch_count: u32,
    /// Largest total of one call, size times count (`ERROR_QUOTA_EXCEEDED` above it), single
    /// allocations included.
    pub max_request_bytes: u64,
    /// Allocation calls one uid may have in flight at once when no [`Limits::callers`] entry
    /// is for it; more wait briefly, then get `ERROR_BUSY`. It is also the cap of the built-in
    /// entries. Keep it below the service's binder threads so that one client can never hold
    /// them all.
    pub max_calls_per_uid: u32,
    /// Per domain or uid, first match wins: the policy's entries, then the built-in ones for
    /// [`QUEUEING_DOMAINS`] the policy has no entry for.
    pub callers: Vec<CallerLimit>,
    /// The line of `[limits]`, 0 when the file has none.
    pub line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let max_calls_per_uid = 4;
        Self {
            max_allocation_bytes: 512 << 20,
            max_batch_count: dmaheap_aidl::consts::MAX_BATCH_COUNT as u32,
            max_request_bytes: 1 << 30,
            max_calls_per_uid,
            callers: with_builtin_callers(Vec::new(), max_calls_per_uid),
            line: 0,
        }
    }
}

/// Which in-flight count a call is charged to: its `[[limits.caller]]` entry (by index), or
/// its uid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKey {
    Entry(usize),
    Uid(u32),
}

/// The limit one call is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimit<'a> {
    pub key: LimitKey,
    pub max_calls_in_flight: u32,
    pub over_limit: OverLimit,
    /// The entry that decided; `None` for the per-uid default.
    pub entry: Option<&'a CallerLimit>,
    pub uid: u32,
}

impl CallLimit<'_> {
    /// Whose calls are counted together and which setting limits them, for messages.
    pub fn describe(&self) -> String {
        match self.entry {
            Some(entry) => format!("{} ({})", entry.who.describe(), entry.origin()),
            None => format!("uid {} (max_calls_per_uid)", self.uid),
        }
    }
}

impl Limits {
    /// The limit `caller`'s calls are under.
    pub fn for_caller(&self, caller: &Caller) -> CallLimit<'_> {
        match self
            .callers
            .iter()
            .enumerate()
            .find(|(_, entry)| entry.who.matches(caller))
        {
            Some((index, entry)) => CallLimit {
                key: LimitKey::Entry(index),
                max_calls_in_flight: entry.max_calls_in_flight,
                over_limit: entry.over_limit,
                entry: Some(entry),
                uid: caller.uid,
            },
            None => CallLimit {
                key: LimitKey::Uid(caller.uid),
                max_calls_in_flight: self.max_calls_per_uid,
                over_limit: OverLimit::Busy,
                entry: None,
                uid: caller.uid,
            },
        }
    }
}

impl Policy {
    /// Every caller's cap must stay below the service's binder threads: a caller at its cap then
    /// still leaves a thread to everyone else.
    pub fn check_binder_threads(&self, threads: u32) -> Result<(), PolicyError> {
        let too_many = |setting: String, cap: u32, line: usize| PolicyError::Invalid {
            origin: self.origin.clone(),
            line: line.max(1),
            message: format!(
                "{setting} ({cap}) must be below the binder thread count ({threads}): one caller \
                 could hold every thread"
            ),
        };
        if self.limits.max_calls_per_uid >= threads {
            return Err(too_many(
                "max_calls_per_uid".to_owned(),
                self.limits.max_calls_per_uid,
                self.limits.line,
            ));
        }
        match self
            .limits
            .callers
            .iter()
            .find(|entry| entry.max_calls_in_flight >= threads)
        {
            Some(entry) => Err(too_many(
                format!("max_calls_in_flight of {}", entry.who.describe()),
                entry.max_calls_in_flight,
                entry.line,
            )),
            None => Ok(()),
        }
    }
}

/// The policy's entries, then a queueing entry for each of [`QUEUEING_DOMAINS`] they leave out.
fn with_builtin_callers(mut callers: Vec<CallerLimit>, cap: u32) -> Vec<CallerLimit> {
    for domain in QUEUEING_DOMAINS {
        let who = CallerMatch::Domain((*domain).to_owned());
        if !callers.iter().any(|entry| entry.who == who) {
            callers.push(CallerLimit {
                who,
                max_calls_in_flight: cap,
                over_limit: OverLimit::Queue,
                line: 0,
            });
        }
    }
    callers
}

pub(super) fn from_file(
    section: Option<Spanned<LimitsFile>>,
    source: &Source,
) -> Result<Limits, PolicyError> {
    let Some(spanned) = section else {
        return Ok(Limits::default());
    };
    let span = spanned.span();
    let raw = spanned.into_inner();
    let defaults = Limits::default();
    let max_calls_per_uid = raw.max_calls_per_uid.unwrap_or(defaults.max_calls_per_uid);
    if max_calls_per_uid == 0 {
        return Err(source.invalid(&span, "max_calls_per_uid must be at least 1".into()));
    }
    let callers = callers_from_file(raw.caller, max_calls_per_uid, source)?;
    let limits = Limits {
        max_allocation_bytes: raw
            .max_allocation_bytes
            .unwrap_or(defaults.max_allocation_bytes),
        max_batch_count: raw.max_batch_count.unwrap_or(defaults.max_batch_count),
        max_request_bytes: raw.max_request_bytes.unwrap_or(defaults.max_request_bytes),
        max_calls_per_uid,
        callers: with_builtin_callers(callers, max_calls_per_uid),
        line: source.line_of(span.start),
    };
    if limits.max_allocation_bytes == 0 || limits.max_request_bytes == 0 {
        return Err(source.invalid(&span, "limits must be greater than 0".into()));
    }
    if limits.max_allocation_bytes > i64::MAX as u64 / 2 {
        return Err(source.invalid(
            &span,
            "max_allocation_bytes is beyond any real memory".into(),
        ));
    }
    if !(1..=dmaheap_aidl::consts::MAX_BATCH_COUNT as u32).contains(&limits.max_batch_count) {
        return Err(source.invalid(
            &span,
            format!(
                "max_batch_count must be 1 to {} (the interface's MAX_BATCH_COUNT)",
                dmaheap_aidl::consts::MAX_BATCH_COUNT
            ),
        ));
    }
    Ok(limits)
}

fn callers_from_file(
    entries: Vec<Spanned<CallerLimitFile>>,
    default_cap: u32,
    source: &Source,
) -> Result<Vec<CallerLimit>, PolicyError> {
    let mut callers = Vec::new();
    let mut lines_by_caller = HashMap::new();
    for spanned in entries {
        let span = spanned.span();
        let line = source.line_of(span.start);
        let raw = spanned.into_inner();
        let who = match (raw.domain, raw.uid) {
            (Some(domain), None) if access::is_selinux_identifier(&domain) => {
                CallerMatch::Domain(domain)
            }
            (Some(domain), None) => {
                return Err(source.invalid(
                    &span,
                    format!("[[limits.caller]] domain {domain:?} is not an SELinux type name"),
                ));
            }
            (None, Some(uid)) => CallerMatch::Uid(
                uid_of_spec(uid, "[[limits.caller]] uid").map_err(|m| source.invalid(&span, m))?,
            ),
            _ => {
                return Err(source.invalid(
                    &span,
                    "[[limits.caller]] needs exactly one of domain = \"...\" or uid = ...".into(),
                ));
            }
        };
        let max_calls_in_flight = raw.max_calls_in_flight.unwrap_or(default_cap);
        if max_calls_in_flight == 0 {
            return Err(source.invalid(
                &span,
                format!(
                    "max_calls_in_flight of {} must be at least 1",
                    who.describe()
                ),
            ));
        }
        if let Some(earlier) = lines_by_caller.insert(who.clone(), line) {
            return Err(source.invalid(
                &span,
                format!(
                    "{} already has a [[limits.caller]] entry on line {earlier}",
                    who.describe()
                ),
            ));
        }
        callers.push(CallerLimit {
            who,
            max_calls_in_flight,
            over_limit: match raw.over_limit {
                None | Some(OverLimitFile::Busy) => OverLimit::Busy,
                Some(OverLimitFile::Queue) => OverLimit::Queue,
            },
            line,
        });
    }
    Ok(callers)
}
