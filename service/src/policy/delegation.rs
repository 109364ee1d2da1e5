//! Who may do more than ask for one buffer: callers a heap may be delegated to (they allocate
//! from it themselves, with the resolution the service gave them), and the domains that may
//! allocate on behalf of another process.

use super::file::{CallersFile, DelegateFile, ServiceFile};
use super::heaps::HeapSpec;
use super::parse::{callers_list, Source};
use super::{Policy, PolicyError};
use crate::access::{self, AllowList, Caller};
use toml::Spanned;

/// The domains that may name another pid/uid as the owner of a buffer unless `[service]
/// on_behalf_domains` says otherwise: the gralloc allocator, which allocates every app's
/// graphic buffers under its own identity.
pub const DEFAULT_ON_BEHALF_DOMAINS: &[&str] = &["hal_graphics_allocator_default"];

/// To whom a heap may be handed to allocate from directly (`[[heap]] delegate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DelegateTo {
    Nobody,
    /// Every caller the heap admits.
    AnyAdmitted,
    /// These callers, among those the heap admits.
    Callers(AllowList),
}

impl DelegateTo {
    /// As the policy file writes it, for `dump`.
    pub fn describe(&self) -> String {
        match self {
            DelegateTo::Nobody => "false".to_owned(),
            DelegateTo::AnyAdmitted => "true".to_owned(),
            DelegateTo::Callers(list) => list.describe(),
        }
    }
}

/// The delegation a heap gets when its entry says nothing: plain system memory that every
/// client may use anyway is delegated; scarce, special or listed memory is not, since a
/// delegated caller allocates without the service seeing each request.
pub(super) fn default_delegation(restricted: bool, allow: &AllowList) -> DelegateTo {
    if restricted || !allow.is_empty() {
        DelegateTo::Nobody
    } else {
        DelegateTo::AnyAdmitted
    }
}

pub(super) fn delegation_from_file(
    raw: Option<DelegateFile>,
    restricted: bool,
    allow: &AllowList,
) -> Result<DelegateTo, String> {
    match raw {
        None => Ok(default_delegation(restricted, allow)),
        Some(DelegateFile::Flag(true)) => Ok(DelegateTo::AnyAdmitted),
        Some(DelegateFile::Flag(false)) => Ok(DelegateTo::Nobody),
        Some(DelegateFile::Callers(CallersFile { domains, uids })) => {
            let list = callers_list(domains, uids, "delegate")?;
            if list.is_empty() {
                return Err("delegate = {} lists nobody; write delegate = false".to_owned());
            }
            Ok(DelegateTo::Callers(list))
        }
    }
}

pub(super) fn on_behalf_from_file(
    section: Option<Spanned<ServiceFile>>,
    source: &Source,
) -> Result<Vec<String>, PolicyError> {
    let default = || {
        DEFAULT_ON_BEHALF_DOMAINS
            .iter()
            .map(|d| (*d).to_owned())
            .collect()
    };
    let Some(spanned) = section else {
        return Ok(default());
    };
    let span = spanned.span();
    let Some(domains) = spanned.into_inner().on_behalf_domains else {
        return Ok(default());
    };
    if let Some(bad) = domains.iter().find(|d| !access::is_selinux_identifier(d)) {
        return Err(source.invalid(
            &span,
            format!("on_behalf_domains entry {bad:?} is not an SELinux type name"),
        ));
    }
    Ok(domains)
}

impl HeapSpec {
    /// Whether this heap may be delegated to `caller`: never to a caller the heap does not
    /// admit, whatever `delegate` says (delegation never widens access).
    pub fn delegable_to(&self, caller: &Caller) -> bool {
        self.admits(caller)
            && match &self.delegate {
                DelegateTo::Nobody => false,
                DelegateTo::AnyAdmitted => true,
                DelegateTo::Callers(list) => list.admits(caller),
            }
    }
}

impl Policy {
    /// Whether `caller` may be handed the declared heap `heap` to allocate from itself.
    pub fn delegable(&self, heap: &str, caller: &Caller) -> bool {
        self.heap(heap)
            .is_some_and(|spec| spec.delegable_to(caller))
    }

    /// Whether `caller` may allocate on behalf of another pid/uid (the owner used for naming
    /// and per-uid counters). By SELinux domain only: a uid is shared by too many processes
    /// (every `system` service) to vouch for one.
    pub fn may_act_on_behalf(&self, caller: &Caller) -> bool {
        caller
            .domain
            .as_deref()
            .is_some_and(|domain| self.on_behalf_domains.iter().any(|d| d == domain))
    }
}
