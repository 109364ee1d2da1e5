//! The heaps a policy declares, and who may allocate from them.

use std::collections::HashSet;

use toml::Spanned;

use super::delegation::{delegation_from_file, DelegateTo};
use super::file::HeapFile;
use super::parse::{allow_list, byte_size, Source};
use super::{Policy, PolicyError};
use crate::access::{AllowList, Caller};
use crate::error::{HalError, HalResult};

/// The longest heap name a policy may declare (and a request may give).
pub const MAX_HEAP_NAME_BYTES: usize = 64;

/// The smallest `granule` a heap may declare: the smallest page size Android kernels use. A
/// device with larger pages rounds to its page anyway.
pub const MIN_GRANULE_BYTES: u64 = 4096;

/// Heap names become paths under /dev/dma_heap, so they must not be able to leave it.
pub fn is_plain_heap_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_HEAP_NAME_BYTES
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_graphic() && c != '/')
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
    /// Sizes from this heap are rounded up to a multiple of this (a power of two); 0: the page.
    pub granule: u64,
    /// Who may be handed this heap to allocate from directly; see [`HeapSpec::delegable_to`].
    pub delegate: DelegateTo,
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

/// Whether `name` is one of the declared `heaps`.
pub(super) fn is_declared(heaps: &[HeapSpec], name: &str) -> bool {
    heaps.iter().any(|h| h.name == name)
}

/// Whether `name` is a declared secure heap.
pub(super) fn is_secure(heaps: &[HeapSpec], name: &str) -> bool {
    heaps.iter().any(|h| h.name == name && h.secure)
}

pub(super) fn from_file(
    entries: Vec<Spanned<HeapFile>>,
    source: &Source,
) -> Result<Vec<HeapSpec>, PolicyError> {
    let mut heaps = Vec::new();
    let mut heap_names = HashSet::new();
    for spanned in entries {
        let span = spanned.span();
        let raw = spanned.into_inner();
        if !is_plain_heap_name(&raw.name) {
            return Err(source.invalid(
                &span,
                format!(
                    "heap name {:?} is not a plain file name under /dev/dma_heap",
                    raw.name
                ),
            ));
        }
        if !heap_names.insert(raw.name.clone()) {
            return Err(source.invalid(&span, format!("heap {:?} is declared twice", raw.name)));
        }
        let in_heap = |m: String| source.invalid(&span, format!("heap {:?}: {m}", raw.name));
        let allow = allow_list(raw.allow_domains, raw.allow_uids).map_err(in_heap)?;
        let granule = match &raw.granule {
            None => 0,
            Some(spec) => {
                let granule = byte_size(spec).map_err(|m| in_heap(format!("granule {m}")))?;
                if !granule.is_power_of_two() || granule < MIN_GRANULE_BYTES {
                    return Err(in_heap(format!(
                        "granule {granule} is not a power of two of at least {MIN_GRANULE_BYTES} \
                         bytes (a page)"
                    )));
                }
                granule
            }
        };
        let contiguous = raw.contiguous.unwrap_or(false);
        let secure = raw.secure.unwrap_or(false);
        let carveout = raw.carveout.unwrap_or(false);
        let delegate = delegation_from_file(raw.delegate, contiguous || carveout || secure, &allow)
            .map_err(in_heap)?;
        heaps.push(HeapSpec {
            name: raw.name,
            cached: raw.cached.unwrap_or(true),
            contiguous,
            secure,
            carveout,
            description: raw.description.unwrap_or_default(),
            allow,
            granule,
            delegate,
            line: source.line_of(span.start),
        });
    }
    if heaps.is_empty() {
        return Err(source.missing("the policy declares no [[heap]]"));
    }
    Ok(heaps)
}

impl Policy {
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

    pub(super) fn heap_admits(&self, name: &str, caller: &Caller) -> bool {
        self.heap(name).is_some_and(|spec| spec.admits(caller))
    }

    /// The size granule of the declared heap `name`; 0 (the page) for an undeclared one.
    pub fn granule_of(&self, name: &str) -> u64 {
        self.heap(name).map_or(0, |spec| spec.granule)
    }

    /// What `dump` shows of a heap beyond its kind: `granule=2M delegate=false`.
    pub fn describe_heap_extras(&self, spec: &HeapSpec) -> String {
        let granule = match spec.granule {
            0 => "page".to_owned(),
            g => describe_bytes(g),
        };
        format!("granule={granule} delegate={}", spec.delegate.describe())
    }
}

/// A byte count as policies write it: `2M`, `64K`, `4096`.
pub fn describe_bytes(bytes: u64) -> String {
    for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] {
        if bytes != 0 && bytes % (1u64 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}
