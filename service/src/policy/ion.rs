//! The legacy ION table: heap ids and flags of callers ported from ION, mapped onto dma-buf
//! heaps and tried in ION's order.

use std::collections::BTreeMap;

use toml::Spanned;

use super::file::{IonFile, OneOrMany};
use super::heaps::{is_declared, is_secure, HeapSpec};
use super::parse::{allow_list, Source};
use super::rules::Resolution;
use super::{Policy, PolicyError};
use crate::access::{AllowList, Caller};
use crate::error::{HalError, HalResult};

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

pub(super) fn from_file(
    entries: Vec<Spanned<IonFile>>,
    heaps: &[HeapSpec],
    source: &Source,
) -> Result<BTreeMap<u32, IonMapping>, PolicyError> {
    let mut ion = BTreeMap::new();
    for spanned in entries {
        let span = spanned.span();
        let line = source.line_of(span.start);
        let raw = spanned.into_inner();
        if raw.id > 31 {
            return Err(source.invalid(
                &span,
                format!("ION heap id {} does not fit a 32-bit heap mask", raw.id),
            ));
        }
        let heaps_of = |list: OneOrMany| -> Result<Vec<String>, PolicyError> {
            let list = list.into_vec();
            if list.is_empty() {
                return Err(
                    source.invalid(&span, format!("ION heap id {} maps to no heap", raw.id))
                );
            }
            if let Some(unknown) = list.iter().find(|h| !is_declared(heaps, h)) {
                return Err(source.invalid(
                    &span,
                    format!(
                        "ION heap id {} maps to heap {unknown:?}, which no [[heap]] declares",
                        raw.id
                    ),
                ));
            }
            Ok(list)
        };
        let uncached = heaps_of(raw.heap)?;
        let cached = match raw.cached_heap {
            Some(list) => heaps_of(list)?,
            None => uncached.clone(),
        };
        // One id is one kind of memory: an entry that mixes secure and normal heaps would put
        // protected content in CPU-readable memory when the secure one is absent.
        let secure_count = uncached
            .iter()
            .chain(&cached)
            .filter(|h| is_secure(heaps, h))
            .count();
        if secure_count != 0 && secure_count != uncached.len() + cached.len() {
            return Err(source.invalid(
                &span,
                format!(
                    "ION heap id {} mixes secure and non-secure heaps; give each its own id",
                    raw.id
                ),
            ));
        }
        let allow = allow_list(raw.allow_domains, raw.allow_uids)
            .map_err(|m| source.invalid(&span, format!("ION heap id {}: {m}", raw.id)))?;
        let mapping = IonMapping {
            id: raw.id,
            name: raw.name.unwrap_or_else(|| format!("ion-{}", raw.id)),
            line,
            heaps: uncached,
            cached_heaps: cached,
            allow,
        };
        if let Some(previous) = ion.insert(raw.id, mapping) {
            return Err(source.invalid(
                &span,
                format!(
                    "ION heap id {} is already mapped on line {}",
                    raw.id, previous.line
                ),
            ));
        }
    }
    Ok(ion)
}

impl Policy {
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
