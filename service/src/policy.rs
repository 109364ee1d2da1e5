//! The vendor policy: which heaps exist, how gralloc usage picks one, how legacy ION heap ids map
//! onto dma-buf heaps, and the request limits.
//!
//! The policy is a TOML file (`/vendor/etc/dmaheap/policy.toml` on a device). It is parsed and
//! validated completely at start-up: any mistake is reported with the line it is on, and the
//! service refuses to start with it rather than guess.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use dmaheap_aidl::usage;
use serde::Deserialize;
use toml::Spanned;

use crate::access::{self, AllowList, Caller};
use crate::error::{HalError, HalResult};

/// Where a device keeps the policy.
pub const DEFAULT_POLICY_PATH: &str = "/vendor/etc/dmaheap/policy.toml";

/// The policy shipped with the HAL, used by tests and as the starting point for a device.
pub const DEFAULT_POLICY_TOML: &str = include_str!("../policy/default.toml");

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Syntax { origin: String, message: String },
    #[error("{origin}:{line}: {message}")]
    Invalid {
        origin: String,
        line: usize,
        message: String,
    },
}

impl PolicyError {
    /// The 1-based line the error is on, when it is about one place in the file.
    pub fn line(&self) -> Option<usize> {
        match self {
            PolicyError::Invalid { line, .. } => Some(*line),
            PolicyError::Syntax { message, .. } => message
                .split("line ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|digits| digits.parse().ok()),
            PolicyError::Read { .. } => None,
        }
    }
}

/// Request limits. A request above them is refused before any memory is touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single buffer, in bytes (`ERROR_BAD_ARGUMENT` above it).
    pub max_allocation_bytes: u64,
    /// Largest `count` of a batch (`ERROR_BAD_ARGUMENT` above it), at most `MAX_BATCH_COUNT`.
    pub max_batch_count: u32,
    /// Largest total of one call, size times count (`ERROR_QUOTA_EXCEEDED` above it), single
    /// allocations included.
    pub max_request_bytes: u64,
    /// Allocation calls one uid may have in flight at once; more wait briefly, then get
    /// `ERROR_BUSY`. Keep it below the service's binder threads so that one client can never
    /// hold them all.
    pub max_calls_per_uid: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_allocation_bytes: 512 << 20,
            max_batch_count: dmaheap_aidl::consts::MAX_BATCH_COUNT as u32,
            max_request_bytes: 1 << 30,
            max_calls_per_uid: 4,
        }
    }
}

/// A heap the policy declares. Its properties are the vendor's word: the kernel does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapSpec {
    pub name: String,
    pub cached: bool,
    pub contiguous: bool,
    pub secure: bool,
    /// Memory set aside at boot (not the system's pages), whether contiguous or not.
    pub carveout: bool,
    pub description: String,
    /// Who may allocate from it; see [`HeapSpec::admits`].
    pub allow: AllowList,
    pub line: usize,
}

impl HeapSpec {
    /// Contiguous, carveout and secure memory is scarce or special: only the callers the
    /// policy lists get it.
    pub fn is_restricted(&self) -> bool {
        self.contiguous || self.carveout || self.secure
    }

    /// Whether `caller` may allocate from this heap: a listed caller always; with no list, every
    /// caller on a plain system heap and nobody on a restricted one.
    pub fn admits(&self, caller: &Caller) -> bool {
        if self.allow.is_empty() {
            !self.is_restricted()
        } else {
            self.allow.admits(caller)
        }
    }
}

/// The usage conditions of a rule; all given conditions must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Matcher {
    /// The usage must be exactly this.
    pub exact: Option<u64>,
    /// Every one of these bits must be set.
    pub all_of: u64,
    /// At least one of these bits must be set (0: no condition).
    pub any_of: u64,
    /// None of these bits may be set.
    pub none_of: u64,
}

impl Matcher {
    pub fn matches(&self, usage: u64) -> bool {
        self.exact.is_none_or(|exact| usage == exact)
            && usage & self.all_of == self.all_of
            && (self.any_of == 0 || usage & self.any_of != 0)
            && usage & self.none_of == 0
    }

    fn is_catch_all(&self) -> bool {
        *self == Matcher::default()
    }
}

/// What a matching rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Allocate from the first present heap of the list.
    Heaps(Vec<String>),
    /// Refuse the usage with `ERROR_UNSUPPORTED_USAGE` and this reason.
    Reject(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub line: usize,
    pub matcher: Matcher,
    pub action: Action,
    /// Try the next present heap when an allocation fails, not only when a heap is absent.
    /// Off by default: a contiguous-memory rule must not quietly fall back to scattered pages.
    pub fallback_on_failure: bool,
    /// Who may use the rule at all (narrows the heaps' own lists, never widens them).
    pub allow: AllowList,
}

/// Where one legacy ION heap id goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IonMapping {
    pub id: u32,
    pub name: String,
    pub line: usize,
    /// Alternatives without `ION_FLAG_CACHED`, first present wins.
    pub heaps: Vec<String>,
    /// Alternatives with `ION_FLAG_CACHED`; the uncached ones when the file gives none.
    pub cached_heaps: Vec<String>,
    /// Who may use this id at all (narrows the heaps' own lists, never widens them).
    pub allow: AllowList,
}

impl IonMapping {
    /// Whether the id leads to secure heaps (validation keeps an entry all secure or none).
    pub fn is_secure(&self, policy: &Policy) -> bool {
        self.heaps
            .iter()
            .any(|h| policy.heap(h).is_some_and(|spec| spec.secure))
    }
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Where it came from, for messages and `dump`.
    pub origin: String,
    pub limits: Limits,
    pub heaps: Vec<HeapSpec>,
    pub rules: Vec<Rule>,
    /// By ION heap id.
    pub ion: BTreeMap<u32, IonMapping>,
}

/// How a request was resolved: the heaps to try, in order, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The rule or ION entries that decided.
    pub rule: String,
    /// Present heaps to try, in order. Never empty.
    pub candidates: Vec<String>,
    /// Whether a failed allocation moves on to the next candidate (ION always does).
    pub fallback_on_error: bool,
    pub reason: String,
}

impl Policy {
    /// Reads and validates the policy at `path`.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The policy shipped with the HAL.
    pub fn builtin_default() -> Self {
        Self::parse(DEFAULT_POLICY_TOML, "built-in default policy")
            .expect("the shipped default policy is valid (checked by unit tests)")
    }

    /// Parses and validates policy text; `origin` names it in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| PolicyError::Syntax {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        let lines = LineIndex::new(text);
        let invalid = |span: std::ops::Range<usize>, message: String| PolicyError::Invalid {
            origin: origin.to_owned(),
            line: lines.line_of(span.start),
            message,
        };

        let limits = match file.limits {
            None => Limits::default(),
            Some(spanned) => {
                let span = spanned.span();
                let raw = spanned.into_inner();
                let defaults = Limits::default();
                let limits = Limits {
                    max_allocation_bytes: raw
                        .max_allocation_bytes
                        .unwrap_or(defaults.max_allocation_bytes),
                    max_batch_count: raw.max_batch_count.unwrap_or(defaults.max_batch_count),
                    max_request_bytes: raw.max_request_bytes.unwrap_or(defaults.max_request_bytes),
                    max_calls_per_uid: raw.max_calls_per_uid.unwrap_or(defaults.max_calls_per_uid),
                };
                if limits.max_calls_per_uid == 0 {
                    return Err(invalid(span, "max_calls_per_uid must be at least 1".into()));
                }
                if limits.max_allocation_bytes == 0 || limits.max_request_bytes == 0 {
                    return Err(invalid(span, "limits must be greater than 0".into()));
                }
                if limits.max_allocation_bytes > i64::MAX as u64 / 2 {
                    return Err(invalid(
                        span,
                        "max_allocation_bytes is beyond any real memory".into(),
                    ));
                }
                if !(1..=dmaheap_aidl::consts::MAX_BATCH_COUNT as u32)
                    .contains(&limits.max_batch_count)
                {
                    return Err(invalid(
                        span,
                        format!(
                            "max_batch_count must be 1 to {} (the interface's MAX_BATCH_COUNT)",
                            dmaheap_aidl::consts::MAX_BATCH_COUNT
                        ),
                    ));
                }
                limits
            }
        };

        let mut heaps = Vec::new();
        let mut heap_names = HashSet::new();
        for spanned in file.heap {
            let span = spanned.span();
            let raw = spanned.into_inner();
            if !is_plain_heap_name(&raw.name) {
                return Err(invalid(
                    span,
                    format!(
                        "heap name {:?} is not a plain file name under /dev/dma_heap",
                        raw.name
                    ),
                ));
            }
            if !heap_names.insert(raw.name.clone()) {
                return Err(invalid(
                    span,
                    format!("heap {:?} is declared twice", raw.name),
                ));
            }
            let allow = allow_list(raw.allow_domains, raw.allow_uids)
                .map_err(|m| invalid(span.clone(), format!("heap {:?}: {m}", raw.name)))?;
            heaps.push(HeapSpec {
                name: raw.name,
                cached: raw.cached.unwrap_or(true),
                contiguous: raw.contiguous.unwrap_or(false),
                secure: raw.secure.unwrap_or(false),
                carveout: raw.carveout.unwrap_or(false),
                description: raw.description.unwrap_or_default(),
                allow,
                line: lines.line_of(span.start),
            });
        }
        if heaps.is_empty() {
            return Err(PolicyError::Invalid {
                origin: origin.to_owned(),
                line: 1,
                message: "the policy declares no [[heap]]".into(),
            });
        }
        let is_secure = |name: &str| heaps.iter().any(|h| h.name == name && h.secure);

        let mut rules: Vec<Rule> = Vec::new();
        let mut rule_names = HashSet::new();
        for spanned in file.rule {
            let span = spanned.span();
            let line = lines.line_of(span.start);
            let raw = spanned.into_inner();
            let name = raw.name.clone();
            if !rule_names.insert(name.clone()) {
                return Err(invalid(span, format!("rule {name:?} is declared twice")));
            }
            let bits =
                |field: &str, spec: &Option<UsageSpec>| -> Result<Option<u64>, PolicyError> {
                    let Some(spec) = spec else { return Ok(None) };
                    let value = spec.value().map_err(|m| {
                        invalid(span.clone(), format!("rule {name:?}, {field}: {m}"))
                    })?;
                    let unknown = usage::unknown_bits(value);
                    if unknown != 0 {
                        return Err(invalid(
                            span.clone(),
                            format!(
                            "rule {name:?}, {field}: bits {unknown:#x} are not BufferUsage bits"
                        ),
                        ));
                    }
                    Ok(Some(value))
                };
            let matcher = Matcher {
                exact: bits("exact", &raw.exact)?,
                all_of: bits("all_of", &raw.all_of)?.unwrap_or(0),
                any_of: bits("any_of", &raw.any_of)?.unwrap_or(0),
                none_of: bits("none_of", &raw.none_of)?.unwrap_or(0),
            };
            if matcher.all_of & matcher.none_of != 0
                || matcher.exact.is_some_and(|e| {
                    !Matcher {
                        exact: None,
                        ..matcher
                    }
                    .matches(e)
                })
            {
                return Err(invalid(
                    span,
                    format!("rule {name:?} can never match: its conditions contradict each other"),
                ));
            }
            if let Some(earlier) = rules.iter().find(|r| r.matcher.is_catch_all()) {
                return Err(invalid(
                    span,
                    format!(
                        "rule {name:?} is unreachable: rule {:?} on line {} already matches every usage",
                        earlier.name, earlier.line
                    ),
                ));
            }
            let action = match (raw.heaps, raw.reject) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        span,
                        format!("rule {name:?} has both heaps and reject; pick one"),
                    ));
                }
                (None, None) => {
                    return Err(invalid(
                        span,
                        format!("rule {name:?} needs heaps = [...] or reject = \"why\""),
                    ));
                }
                (None, Some(reason)) => Action::Reject(reason),
                (Some(list), None) => {
                    if list.is_empty() {
                        return Err(invalid(
                            span,
                            format!("rule {name:?} has an empty heaps list"),
                        ));
                    }
                    for heap in &list {
                        if !heap_names.contains(heap) {
                            return Err(invalid(
                                span,
                                format!(
                                    "rule {name:?} names heap {heap:?}, which no [[heap]] declares"
                                ),
                            ));
                        }
                    }
                    // A rule that only ever sees PROTECTED usage must lead to protected memory;
                    // rules that may see it are checked per request instead.
                    let always_protected = matcher.all_of & usage::PROTECTED != 0
                        || matcher.exact.is_some_and(|e| e & usage::PROTECTED != 0);
                    if always_protected {
                        if let Some(heap) = list.iter().find(|h| !is_secure(h)) {
                            return Err(invalid(
                                span,
                                format!("rule {name:?} matches PROTECTED usage but heap {heap:?} is not secure"),
                            ));
                        }
                    } else if let Some(heap) = list.iter().find(|h| is_secure(h)) {
                        // Secure memory cannot be mapped by the CPU: a rule that may see usage
                        // without PROTECTED must never hand it out.
                        return Err(invalid(
                            span,
                            format!(
                                "rule {name:?} lists secure heap {heap:?} but does not require PROTECTED \
                                 (all_of or exact)"
                            ),
                        ));
                    }
                    Action::Heaps(list)
                }
            };
            let allow = allow_list(raw.allow_domains, raw.allow_uids)
                .map_err(|m| invalid(span.clone(), format!("rule {name:?}: {m}")))?;
            rules.push(Rule {
                name,
                line,
                matcher,
                action,
                fallback_on_failure: raw.fallback_on_failure.unwrap_or(false),
                allow,
            });
        }
        if rules.is_empty() {
            return Err(PolicyError::Invalid {
                origin: origin.to_owned(),
                line: 1,
                message: "the policy has no [[rule]]".into(),
            });
        }

        let mut ion = BTreeMap::new();
        for spanned in file.ion {
            let span = spanned.span();
            let line = lines.line_of(span.start);
            let raw = spanned.into_inner();
            if raw.id > 31 {
                return Err(invalid(
                    span,
                    format!("ION heap id {} does not fit a 32-bit heap mask", raw.id),
                ));
            }
            let heaps_of = |list: OneOrMany| -> Result<Vec<String>, PolicyError> {
                let list = list.into_vec();
                if list.is_empty() {
                    return Err(invalid(
                        span.clone(),
                        format!("ION heap id {} maps to no heap", raw.id),
                    ));
                }
                if let Some(unknown) = list.iter().find(|h| !heap_names.contains(*h)) {
                    return Err(invalid(
                        span.clone(),
                        format!(
                            "ION heap id {} maps to heap {unknown:?}, which no [[heap]] declares",
                            raw.id
                        ),
                    ));
                }
                Ok(list)
            };
            let heaps = heaps_of(raw.heap)?;
            let cached_heaps = match raw.cached_heap {
                Some(list) => heaps_of(list)?,
                None => heaps.clone(),
            };
            // One id is one kind of memory: an entry that mixes secure and normal heaps would
            // put protected content in CPU-readable memory when the secure one is absent.
            let secure_count = heaps
                .iter()
                .chain(&cached_heaps)
                .filter(|h| is_secure(h))
                .count();
            if secure_count != 0 && secure_count != heaps.len() + cached_heaps.len() {
                return Err(invalid(
                    span,
                    format!(
                        "ION heap id {} mixes secure and non-secure heaps; give each its own id",
                        raw.id
                    ),
                ));
            }
            let allow = allow_list(raw.allow_domains, raw.allow_uids)
                .map_err(|m| invalid(span.clone(), format!("ION heap id {}: {m}", raw.id)))?;
            let mapping = IonMapping {
                id: raw.id,
                name: raw.name.unwrap_or_else(|| format!("ion-{}", raw.id)),
                line,
                heaps,
                cached_heaps,
                allow,
            };
            if let Some(previous) = ion.insert(raw.id, mapping) {
                return Err(invalid(
                    span,
                    format!(
                        "ION heap id {} is already mapped on line {}",
                        raw.id, previous.line
                    ),
                ));
            }
        }

        Ok(Policy {
            origin: origin.to_owned(),
            limits,
            heaps,
            rules,
            ion,
        })
    }

    pub fn heap(&self, name: &str) -> Option<&HeapSpec> {
        self.heaps.iter().find(|h| h.name == name)
    }

    /// The denial for `caller` on `heap`: binder's EX_SECURITY, naming the heap and the domain.
    pub fn denial(&self, heap: &str, caller: &Caller, via: &str) -> HalError {
        HalError::denied(
            heap,
            format!(
                "uid {} (domain {}) may not allocate from heap {heap:?}{via}: the policy ({}) does not list it",
                caller.uid,
                caller.domain_shown(),
                self.origin
            ),
        )
    }

    /// Whether `caller` may allocate from the declared heap `name`.
    pub fn check_heap_access(&self, name: &str, caller: &Caller) -> HalResult<()> {
        match self.heap(name) {
            Some(spec) if spec.admits(caller) => Ok(()),
            Some(_) => Err(self.denial(name, caller, "")),
            None => Err(HalError::no_such_heap(format!(
                "heap {name:?} is not declared by the policy ({})",
                self.origin
            ))),
        }
    }

    fn heap_admits(&self, name: &str, caller: &Caller) -> bool {
        self.heap(name).is_some_and(|spec| spec.admits(caller))
    }

    /// The heaps a gralloc usage is served from, in order, considering which are `present` and
    /// which of them `caller` may use.
    pub fn resolve_usage(
        &self,
        usage_bits: u64,
        present: &dyn Fn(&str) -> bool,
        caller: &Caller,
    ) -> HalResult<Resolution> {
        let unknown = usage::unknown_bits(usage_bits);
        if unknown != 0 {
            return Err(HalError::unsupported(format!(
                "usage {:#x} has bits {unknown:#x} that BufferUsage does not define",
                usage_bits
            )));
        }
        let described = usage::describe(usage_bits);
        let rule = self
            .rules
            .iter()
            .find(|r| r.matcher.matches(usage_bits))
            .ok_or_else(|| {
                HalError::unsupported(format!("no rule of the policy matches usage {described}"))
            })?;
        let list = match &rule.action {
            Action::Reject(reason) => {
                return Err(HalError::unsupported(format!(
                    "usage {described} is refused by rule {:?}: {reason}",
                    rule.name
                )));
            }
            Action::Heaps(list) => list,
        };
        let protected = usage_bits & usage::PROTECTED != 0;
        let allowed: Vec<&String> = list
            .iter()
            .filter(|h| !protected || self.heap(h).is_some_and(|spec| spec.secure))
            .collect();
        if allowed.is_empty() {
            return Err(HalError::unsupported(format!(
                "usage {described} asks for PROTECTED memory but rule {:?} leads to no secure heap ({}); \
                 unprotected memory is never substituted",
                rule.name,
                list.join(", ")
            )));
        }
        let via = format!(" (usage {described}, rule {:?})", rule.name);
        if !rule.allow.is_empty() && !rule.allow.admits(caller) {
            return Err(self.denial(allowed[0], caller, &via));
        }
        let (permitted, denied): (Vec<&String>, Vec<&String>) = allowed
            .into_iter()
            .partition(|h| self.heap_admits(h, caller));
        if permitted.is_empty() {
            let shown = denied.iter().find(|h| present(h)).unwrap_or(&denied[0]);
            return Err(self.denial(shown, caller, &via));
        }
        let (candidates, absent): (Vec<&String>, Vec<&String>) =
            permitted.into_iter().partition(|h| present(h));
        if candidates.is_empty() {
            let names = absent
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let message = format!(
                "rule {:?} for usage {described} wants {names}, none of which is present",
                rule.name
            );
            return Err(if protected {
                HalError::unsupported(message)
            } else {
                HalError::no_such_heap(message)
            });
        }
        let mut reason = format!(
            "usage {described} matched rule {:?} (line {})",
            rule.name, rule.line
        );
        if !absent.is_empty() {
            let names = absent
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            reason.push_str(&format!("; absent on this device: {names}"));
        }
        if !denied.is_empty() {
            let names = denied
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            reason.push_str(&format!("; not for this caller: {names}"));
        }
        Ok(Resolution {
            rule: rule.name.clone(),
            candidates: candidates.into_iter().cloned().collect(),
            fallback_on_error: rule.fallback_on_failure,
            reason,
        })
    }

    /// The heaps a legacy ION request is tried on, in ION's order: highest heap id first,
    /// skipping what `caller` may not use.
    pub fn resolve_ion(
        &self,
        heap_id_mask: u32,
        flags: u32,
        present: &dyn Fn(&str) -> bool,
        caller: &Caller,
    ) -> HalResult<Resolution> {
        use dmaheap_aidl::consts::{ION_FLAG_CACHED, ION_FLAG_CACHED_NEEDS_SYNC};
        if heap_id_mask == 0 {
            return Err(HalError::bad_argument("the ION heap-id mask is empty"));
        }
        let known_flags = (ION_FLAG_CACHED | ION_FLAG_CACHED_NEEDS_SYNC) as u32;
        if flags & !known_flags != 0 {
            return Err(HalError::bad_argument(format!(
                "ION flags {:#x} are not supported (only ION_FLAG_CACHED and ION_FLAG_CACHED_NEEDS_SYNC)",
                flags & !known_flags
            )));
        }
        let cached = flags & ION_FLAG_CACHED as u32 != 0;
        let mut ids = Vec::new();
        let mut candidates: Vec<String> = Vec::new();
        let mut absent: Vec<String> = Vec::new();
        let mut denied: Option<(&str, u32)> = None;
        let mut secure_ids = 0;
        for id in (0..32u32).rev().filter(|id| heap_id_mask & (1 << id) != 0) {
            let mapping = self.ion.get(&id).ok_or_else(|| {
                HalError::no_such_heap(format!(
                    "ION heap id {id} (mask {heap_id_mask:#x}) is not mapped to a dma-buf heap by the policy"
                ))
            })?;
            if mapping.is_secure(self) {
                secure_ids += 1;
            }
            ids.push(format!("{}({id})", mapping.name));
            let alternatives = if cached {
                &mapping.cached_heaps
            } else {
                &mapping.heaps
            };
            let gate_open = mapping.allow.is_empty() || mapping.allow.admits(caller);
            let mut usable = alternatives
                .iter()
                .filter(|h| gate_open && self.heap_admits(h, caller));
            match usable.find(|h| present(h)) {
                Some(heap) if !candidates.contains(heap) => candidates.push(heap.clone()),
                Some(_) => {}
                None => {
                    let refused = alternatives
                        .iter()
                        .find(|h| present(h) && !(gate_open && self.heap_admits(h, caller)));
                    match refused {
                        Some(heap) => {
                            denied.get_or_insert((heap, id));
                        }
                        None => absent.extend(alternatives.iter().cloned()),
                    }
                }
            }
        }
        // ION tries every id of the mask in turn: a mask naming secure and normal ids would
        // fall from protected memory into CPU-readable memory.
        if secure_ids != 0 && secure_ids != ids.len() {
            return Err(HalError::unsupported(format!(
                "ION mask {heap_id_mask:#x} mixes secure and non-secure heap ids"
            )));
        }
        if candidates.is_empty() {
            if let Some((heap, id)) = denied {
                return Err(self.denial(heap, caller, &format!(" (ION heap id {id})")));
            }
            return Err(HalError::no_such_heap(format!(
                "ION mask {heap_id_mask:#x} maps to {}, none of which is present",
                absent.join(", ")
            )));
        }
        let mut reason = format!(
            "ION mask {heap_id_mask:#x}{} tried highest id first: {}",
            if cached { " with ION_FLAG_CACHED" } else { "" },
            ids.join(", ")
        );
        if !absent.is_empty() {
            reason.push_str(&format!("; absent on this device: {}", absent.join(", ")));
        }
        Ok(Resolution {
            rule: format!("ion:{}", ids.join(",")),
            candidates,
            fallback_on_error: true,
            reason,
        })
    }
}

/// The longest heap name a policy may declare (and a request may give).
pub const MAX_HEAP_NAME_BYTES: usize = 64;

/// Heap names become paths under /dev/dma_heap, so they must not be able to leave it.
pub fn is_plain_heap_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_HEAP_NAME_BYTES
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_graphic() && c != '/')
}

struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { starts }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    limits: Option<Spanned<LimitsFile>>,
    #[serde(default)]
    heap: Vec<Spanned<HeapFile>>,
    #[serde(default)]
    rule: Vec<Spanned<RuleFile>>,
    #[serde(default)]
    ion: Vec<Spanned<IonFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    max_allocation_bytes: Option<u64>,
    max_batch_count: Option<u32>,
    max_request_bytes: Option<u64>,
    max_calls_per_uid: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeapFile {
    name: String,
    cached: Option<bool>,
    contiguous: Option<bool>,
    secure: Option<bool>,
    carveout: Option<bool>,
    description: Option<String>,
    allow_domains: Option<Vec<String>>,
    allow_uids: Option<Vec<UidSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: String,
    exact: Option<UsageSpec>,
    all_of: Option<UsageSpec>,
    any_of: Option<UsageSpec>,
    none_of: Option<UsageSpec>,
    heaps: Option<Vec<String>>,
    reject: Option<String>,
    fallback_on_failure: Option<bool>,
    allow_domains: Option<Vec<String>>,
    allow_uids: Option<Vec<UidSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IonFile {
    id: u32,
    name: Option<String>,
    heap: OneOrMany,
    cached_heap: Option<OneOrMany>,
    allow_domains: Option<Vec<String>>,
    allow_uids: Option<Vec<UidSpec>>,
}

/// A uid in `allow_uids`: an Android ID name or a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum UidSpec {
    Number(i64),
    Name(String),
}

fn allow_list(
    domains: Option<Vec<String>>,
    uids: Option<Vec<UidSpec>>,
) -> Result<AllowList, String> {
    let domains = domains.unwrap_or_default();
    if let Some(bad) = domains.iter().find(|d| !access::is_selinux_identifier(d)) {
        return Err(format!(
            "allow_domains entry {bad:?} is not an SELinux type name"
        ));
    }
    let uids = uids
        .unwrap_or_default()
        .into_iter()
        .map(|spec| match spec {
            // u32::MAX is (uid_t)-1, "no uid" to the kernel: nobody calls with it.
            UidSpec::Number(n) => u32::try_from(n)
                .ok()
                .filter(|&u| u != u32::MAX)
                .ok_or_else(|| format!("allow_uids entry {n} is not a uid")),
            UidSpec::Name(name) => access::uid_of_name(&name).ok_or_else(|| {
                format!("allow_uids entry {name:?} is not an Android ID name this service knows; give the number")
            }),
        })
        .collect::<Result<Vec<u32>, String>>()?;
    Ok(AllowList { domains, uids })
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

/// Usage in a policy: a name or number, an expression `"A|B"`, or a list of those.
#[derive(Deserialize)]
#[serde(untagged)]
enum UsageSpec {
    One(UsageAtom),
    Many(Vec<UsageAtom>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum UsageAtom {
    // TOML integers are signed: bit 63 arrives as a negative number, which is still one bit.
    Number(i64),
    Text(String),
}

impl UsageAtom {
    fn value(&self) -> Result<u64, String> {
        match self {
            UsageAtom::Number(n) => Ok(*n as u64),
            UsageAtom::Text(text) => usage::parse(text),
        }
    }
}

impl UsageSpec {
    fn value(&self) -> Result<u64, String> {
        match self {
            UsageSpec::One(atom) => atom.value(),
            UsageSpec::Many(atoms) => atoms
                .iter()
                .try_fold(0, |acc, atom| Ok(acc | atom.value()?)),
        }
    }
}
