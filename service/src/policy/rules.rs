//! Usage rules: which heaps a gralloc usage is served from, first matching rule wins.

use std::collections::HashSet;

use dmaheap_aidl::usage;
use toml::Spanned;

use super::file::{RuleFile, UsageSpec};
use super::heaps::{is_declared, is_secure, HeapSpec};
use super::parse::{allow_list, Source};
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
                .value()
                .map_err(|m| source.invalid(&span, format!("rule {name:?}, {field}: {m}")))?;
            let unknown = usage::unknown_bits(value);
            if unknown != 0 {
                return Err(source.invalid(
                    &span,
                    format!("rule {name:?}, {field}: bits {unknown:#x} are not BufferUsage bits"),
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
        if let Some(earlier) = rules.iter().find(|r| r.matcher.is_catch_all()) {
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
            let message = format!(
                "rule {:?} for usage {described} wants {}, none of which is present",
                rule.name,
                joined(&absent)
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
            reason.push_str(&format!("; absent on this device: {}", joined(&absent)));
        }
        if !denied.is_empty() {
            reason.push_str(&format!("; not for this caller: {}", joined(&denied)));
        }
        Ok(Resolution {
            rule: rule.name.clone(),
            candidates: candidates.into_iter().cloned().collect(),
            fallback_on_error: rule.fallback_on_failure,
            reason,
        })
    }
}
