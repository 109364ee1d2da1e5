//! Usage rules: which heaps a request is served from, first matching rule wins.
//!
//! A rule matches on the usage bits and, optionally, on the request's format, its size and the
//! caller. A rule whose conditions do not hold is passed over and the next one tried; that is
//! not the rule's `allow` gate, which refuses the caller (`EX_SECURITY`) once the rule matched.

use std::collections::HashSet;

use dmaheap_aidl::usage;
use toml::Spanned;

use super::file::{FormatSpec, RuleFile, SizeRangeFile, UsageSpec};
use super::heaps::{describe_bytes, is_declared, is_secure, HeapSpec};
use super::parse::{allow_list, byte_size, callers_list, Source};
use super::request::{describe_pixel_format, pixel_format_of_name, BufferRequest};
use super::vendor_usage::VendorUsage;
use super::{Policy, PolicyError};
use crate::access::{AllowList, Caller};
use crate::error::{HalError, HalResult};

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

/// An inclusive range of request sizes, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeRange {
    pub min: u64,
    pub max: u64,
}

impl SizeRange {
    pub fn contains(&self, size: u64) -> bool {
        (self.min..=self.max).contains(&size)
    }
}

/// The conditions of a rule beyond the usage bits; all given ones must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// The request's format is one of these (PixelFormat values).
    pub formats: Option<Vec<i32>>,
    /// The request's size is in this range.
    pub size: Option<SizeRange>,
    /// The caller's domain or uid is listed.
    pub callers: Option<AllowList>,
}

/// Which condition of a rule a request failed, for the resolution's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmet {
    Format,
    Size,
    Caller,
}

impl Unmet {
    fn name(self) -> &'static str {
        match self {
            Unmet::Format => "format",
            Unmet::Size => "size",
            Unmet::Caller => "caller",
        }
    }
}

impl Conditions {
    fn is_empty(&self) -> bool {
        *self == Conditions::default()
    }

    /// The first condition `request` from `caller` fails, if any. A request that lacks the
    /// field a condition reads fails it: a rule about RAW16 buffers cannot know that an
    /// unformatted request is one.
    pub fn unmet(&self, request: &BufferRequest, caller: &Caller) -> Option<Unmet> {
        if let Some(formats) = &self.formats {
            if !request.format.is_some_and(|f| formats.contains(&f)) {
                return Some(Unmet::Format);
            }
        }
        if let Some(range) = &self.size {
            if !request.size.is_some_and(|s| range.contains(s)) {
                return Some(Unmet::Size);
            }
        }
        if let Some(callers) = &self.callers {
            if !callers.admits(caller) {
                return Some(Unmet::Caller);
            }
        }
        None
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
    /// Format, size and caller conditions: a request that fails one passes the rule over.
    pub conditions: Conditions,
    pub action: Action,
    /// Try the next present heap when an allocation fails, not only when a heap is absent.
    /// Off by default: a contiguous-memory rule must not quietly fall back to scattered pages.
    pub fallback_on_failure: bool,
    /// Who may use the rule at all (narrows the heaps' own lists, never widens them).
    pub allow: AllowList,
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
    /// dma-heap `heap_flags` for the allocation ioctl: the request's ION flags that the
    /// deciding `[[ion]]` entry passes through; 0 otherwise.
    pub heap_flags: u64,
    /// Sizes are rounded up to a multiple of this (the first candidate's `granule`); 0: the
    /// page.
    pub granule: u64,
    /// Whether the first candidate may be handed to this caller to allocate from directly.
    pub delegable: bool,
}

/// Heap names for a message: `a, b, c`.
fn joined(names: &[&String]) -> String {
    names
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn from_file(
    entries: Vec<Spanned<RuleFile>>,
    heaps: &[HeapSpec],
    vendor_usage: &VendorUsage,
    source: &Source,
) -> Result<Vec<Rule>, PolicyError> {
    let mut rules: Vec<Rule> = Vec::new();
    let mut rule_names = HashSet::new();
    for spanned in entries {
        let span = spanned.span();
        let line = source.line_of(span.start);
        let raw = spanned.into_inner();
        let name = raw.name.clone();
        if !rule_names.insert(name.clone()) {
            return Err(source.invalid(&span, format!("rule {name:?} is declared twice")));
        }
        let bits = |field: &str, spec: &Option<UsageSpec>| -> Result<Option<u64>, PolicyError> {
            let Some(spec) = spec else { return Ok(None) };
            let value = spec
                .value(&|text| vendor_usage.parse(text))
                .map_err(|m| source.invalid(&span, format!("rule {name:?}, {field}: {m}")))?;
            let unknown = vendor_usage.unknown_bits(value);
            if unknown != 0 {
                return Err(source.invalid(
                    &span,
                    format!(
                        "rule {name:?}, {field}: bits {unknown:#x} are not BufferUsage bits \
                         (declare vendor bits in [usage] vendor_bits)"
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
            return Err(source.invalid(
                &span,
                format!("rule {name:?} can never match: its conditions contradict each other"),
            ));
        }
        let conditions = conditions_from_file(raw.formats, raw.size, raw.callers)
            .map_err(|m| source.invalid(&span, format!("rule {name:?}: {m}")))?;
        if let Some(earlier) = rules
            .iter()
            .find(|r| r.matcher.is_catch_all() && r.conditions.is_empty())
        {
            return Err(source.invalid(
                &span,
                format!(
                    "rule {name:?} is unreachable: rule {:?} on line {} already matches every usage",
                    earlier.name, earlier.line
                ),
            ));
        }
        let action = match (raw.heaps, raw.reject) {
            (Some(_), Some(_)) => {
                return Err(source.invalid(
                    &span,
                    format!("rule {name:?} has both heaps and reject; pick one"),
                ));
            }
            (None, None) => {
                return Err(source.invalid(
                    &span,
                    format!("rule {name:?} needs heaps = [...] or reject = \"why\""),
                ));
            }
            (None, Some(reason)) => Action::Reject(reason),
            (Some(list), None) => {
                check_heap_list(&name, &matcher, &list, heaps)
                    .map_err(|m| source.invalid(&span, m))?;
                Action::Heaps(list)
            }
        };
        let allow = allow_list(raw.allow_domains, raw.allow_uids)
            .map_err(|m| source.invalid(&span, format!("rule {name:?}: {m}")))?;
        rules.push(Rule {
            name,
            line,
            matcher,
            conditions,
            action,
            fallback_on_failure: raw.fallback_on_failure.unwrap_or(false),
            allow,
        });
    }
    if rules.is_empty() {
        return Err(source.missing("the policy has no [[rule]]"));
    }
    Ok(rules)
}

/// A rule's `formats`, `size` and `callers` as the file gives them, checked.
fn conditions_from_file(
    formats: Option<Vec<FormatSpec>>,
    size: Option<SizeRangeFile>,
    callers: Option<super::file::CallersFile>,
) -> Result<Conditions, String> {
    let formats = match formats {
        None => None,
        Some(list) if list.is_empty() => {
            return Err("formats = [] can never match; leave formats out instead".to_owned())
        }
        Some(list) => Some(
            list.iter()
                .map(|spec| match spec {
                    FormatSpec::Number(n) => i32::try_from(*n)
                        .map_err(|_| format!("format {n} is not a PixelFormat value (32 bits)")),
                    FormatSpec::Name(name) => pixel_format_of_name(name).ok_or_else(|| {
                        format!(
                            "format {name:?} is not a PixelFormat name (PixelFormat.aidl); give \
                             a vendor format as a number"
                        )
                    }),
                })
                .collect::<Result<Vec<i32>, String>>()?,
        ),
    };
    let size = match size {
        None => None,
        Some(SizeRangeFile {
            min: None,
            max: None,
        }) => return Err("size = {} has neither min nor max".to_owned()),
        Some(SizeRangeFile { min, max }) => {
            let bound = |end: &str, spec: Option<super::file::ByteSize>, default: u64| {
                spec.map_or(Ok(default), |spec| {
                    byte_size(&spec).map_err(|m| format!("size.{end}: {m}"))
                })
            };
            let range = SizeRange {
                min: bound("min", min, 0)?,
                max: bound("max", max, u64::MAX)?,
            };
            if range.min > range.max {
                return Err(format!(
                    "size.min ({}) is above size.max ({}): the rule can never match",
                    range.min, range.max
                ));
            }
            Some(range)
        }
    };
    let callers = match callers {
        None => None,
        Some(raw) => {
            let list = callers_list(raw.domains, raw.uids, "callers")?;
            if list.is_empty() {
                return Err("callers = {} lists nobody: the rule can never match".to_owned());
            }
            Some(list)
        }
    };
    Ok(Conditions {
        formats,
        size,
        callers,
    })
}

/// A rule's heap list: declared heaps, and secure ones exactly when the rule requires PROTECTED.
fn check_heap_list(
    name: &str,
    matcher: &Matcher,
    list: &[String],
    heaps: &[HeapSpec],
) -> Result<(), String> {
    if list.is_empty() {
        return Err(format!("rule {name:?} has an empty heaps list"));
    }
    if let Some(heap) = list.iter().find(|h| !is_declared(heaps, h)) {
        return Err(format!(
            "rule {name:?} names heap {heap:?}, which no [[heap]] declares"
        ));
    }
    // A rule that only ever sees PROTECTED usage must lead to protected memory; rules that may
    // see it are checked per request instead.
    let always_protected = matcher.all_of & usage::PROTECTED != 0
        || matcher.exact.is_some_and(|e| e & usage::PROTECTED != 0);
    if always_protected {
        if let Some(heap) = list.iter().find(|h| !is_secure(heaps, h)) {
            return Err(format!(
                "rule {name:?} matches PROTECTED usage but heap {heap:?} is not secure"
            ));
        }
    } else if let Some(heap) = list.iter().find(|h| is_secure(heaps, h)) {
        // Secure memory cannot be mapped by the CPU: a rule that may see usage without
        // PROTECTED must never hand it out.
        return Err(format!(
            "rule {name:?} lists secure heap {heap:?} but does not require PROTECTED \
             (all_of or exact)"
        ));
    }
    Ok(())
}

impl Policy {
    /// The heaps a gralloc usage is served from, in order, considering which are `present` and
    /// which of them `caller` may use: [`Policy::resolve_request`] for a request known by its
    /// usage alone (no format, no size).
    pub fn resolve_usage(
        &self,
        usage_bits: u64,
        present: &dyn Fn(&str) -> bool,
        caller: &Caller,
    ) -> HalResult<Resolution> {
        self.resolve_request(&BufferRequest::usage_only(usage_bits), present, caller)
    }

    /// The heaps `request` is served from, in order: the first rule whose usage conditions and
    /// format, size and caller conditions hold decides; its heaps are narrowed to secure ones
    /// for PROTECTED usage, to the ones `caller` may use and to the ones `present`.
    pub fn resolve_request(
        &self,
        request: &BufferRequest,
        present: &dyn Fn(&str) -> bool,
        caller: &Caller,
    ) -> HalResult<Resolution> {
        let usage_bits = request.usage;
        let unknown = self.vendor_usage.unknown_bits(usage_bits);
        if unknown != 0 {
            return Err(HalError::unsupported(format!(
                "usage {:#x} has bits {unknown:#x} that BufferUsage does not define (nor the \
                 policy's [usage] vendor_bits)",
                usage_bits
            )));
        }
        let described = self.describe_usage(usage_bits);
        let shape = request.describe_shape();
        let asked = if shape.is_empty() {
            format!("usage {described}")
        } else {
            format!("usage {described} ({shape})")
        };
        let mut passed_over = Vec::new();
        let rule = self
            .rules
            .iter()
            .filter(|r| r.matcher.matches(usage_bits))
            .find(|r| match r.conditions.unmet(request, caller) {
                None => true,
                Some(unmet) => {
                    passed_over.push(format!("{} ({})", r.name, unmet.name()));
                    false
                }
            })
            .ok_or_else(|| {
                let mut message = format!("no rule of the policy matches {asked}");
                if !passed_over.is_empty() {
                    message.push_str(&format!(
                        "; passed over for their conditions: {}",
                        passed_over.join(", ")
                    ));
                }
                HalError::unsupported(message)
            })?;
        let list = match &rule.action {
            Action::Reject(reason) => {
                return Err(HalError::unsupported(format!(
                    "{asked} is refused by rule {:?}: {reason}",
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
                "{asked} asks for PROTECTED memory but rule {:?} leads to no secure heap ({}); \
                 unprotected memory is never substituted",
                rule.name,
                list.join(", ")
            )));
        }
        let via = format!(" ({asked}, rule {:?})", rule.name);
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
            let message = format!(
                "rule {:?} for {asked} wants {}, none of which is present",
                rule.name,
                joined(&absent)
            );
            return Err(if protected {
                HalError::unsupported(message)
            } else {
                HalError::no_such_heap(message)
            });
        }
        let mut reason = format!("{asked} matched rule {:?} (line {})", rule.name, rule.line);
        if !passed_over.is_empty() {
            reason.push_str(&format!(
                "; passed over for their conditions: {}",
                passed_over.join(", ")
            ));
        }
        if !absent.is_empty() {
            reason.push_str(&format!("; absent on this device: {}", joined(&absent)));
        }
        if !denied.is_empty() {
            reason.push_str(&format!("; not for this caller: {}", joined(&denied)));
        }
        let first = candidates[0];
        Ok(Resolution {
            rule: rule.name.clone(),
            granule: self.granule_of(first),
            delegable: self.delegable(first, caller),
            candidates: candidates.into_iter().cloned().collect(),
            fallback_on_error: rule.fallback_on_failure,
            reason,
            heap_flags: 0,
        })
    }

    /// A rule's conditions as `dump` shows them: `any_of=COMPOSER_OVERLAY formats=RAW16
    /// size=64K..2M callers=domains=hal_camera_default uids=`, `always` for a catch-all, with
    /// the rule's `allow` gate last.
    pub fn describe_rule_conditions(&self, rule: &Rule) -> String {
        let m = &rule.matcher;
        let mut parts = Vec::new();
        if let Some(exact) = m.exact {
            parts.push(format!("exact={}", self.describe_usage(exact)));
        }
        for (label, bits) in [
            ("all_of", m.all_of),
            ("any_of", m.any_of),
            ("none_of", m.none_of),
        ] {
            if bits != 0 {
                parts.push(format!("{label}={}", self.describe_usage(bits)));
            }
        }
        let c = &rule.conditions;
        if let Some(formats) = &c.formats {
            let names: Vec<String> = formats.iter().map(|&f| describe_pixel_format(f)).collect();
            parts.push(format!("formats={}", names.join(",")));
        }
        if let Some(range) = &c.size {
            let max = if range.max == u64::MAX {
                String::new()
            } else {
                describe_bytes(range.max)
            };
            parts.push(format!("size={}..{max}", describe_bytes(range.min)));
        }
        if let Some(callers) = &c.callers {
            parts.push(format!("callers=[{}]", callers.describe()));
        }
        if parts.is_empty() {
            parts.push("always".to_owned());
        }
        if !rule.allow.is_empty() {
            parts.push(format!("allow=[{}]", rule.allow.describe()));
        }
        parts.join(" ")
    }
}
