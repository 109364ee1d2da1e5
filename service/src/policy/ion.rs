//! The legacy ION table: heap ids and flags of callers ported from ION, mapped onto dma-buf
//! heaps and tried in ION's order.

use std::collections::BTreeMap;

use dmaheap_aidl::consts::{ION_FLAG_CACHED, ION_FLAG_CACHED_NEEDS_SYNC};
use dmaheap_aidl::usage;
use toml::Spanned;

use super::file::{IonFile, OneOrMany, UsageSpec};
use super::heaps::{is_declared, is_secure, HeapSpec};
use super::parse::{allow_list, Source};
use super::rules::Resolution;
use super::{Policy, PolicyError};
use crate::access::{AllowList, Caller};
use crate::error::{HalError, HalResult};

/// The ION flags every entry understands: they pick `cached_heap` (CACHED) or are implied by
/// dma-buf heaps (CACHED_NEEDS_SYNC: cached CPU access always needs `DMA_BUF_IOCTL_SYNC`).
pub const GENERIC_ION_FLAGS: u32 = (ION_FLAG_CACHED | ION_FLAG_CACHED_NEEDS_SYNC) as u32;

/// The flag names every policy knows, from AOSP's generic `ion.h`.
pub const GENERIC_ION_FLAG_NAMES: &[(&str, u32)] = &[
    ("ION_FLAG_CACHED", ION_FLAG_CACHED as u32),
    (
        "ION_FLAG_CACHED_NEEDS_SYNC",
        ION_FLAG_CACHED_NEEDS_SYNC as u32,
    ),
];

/// Where one legacy ION heap id goes for the flags it applies to. An id may have several
/// entries (vendors encode the content-protection target in the flags of one id); the first
/// whose flag conditions hold decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IonMapping {
    pub id: u32,
    pub name: String,
    pub line: usize,
    /// Alternatives without `ION_FLAG_CACHED`, first present wins.
    pub heaps: Vec<String>,
    /// Alternatives with `ION_FLAG_CACHED`; the uncached ones when the file gives none.
    pub cached_heaps: Vec<String>,
    /// Who may use this entry at all (narrows the heaps' own lists, never widens them).
    pub allow: AllowList,
    /// The request must have every one of these ION flags.
    pub flags_all: u32,
    /// The request must have none of these ION flags.
    pub flags_none: u32,
    /// The request's flags within this mask are passed to the heap as dma-heap `heap_flags`.
    pub pass_flags: u32,
}

impl IonMapping {
    /// Whether the entry leads to secure heaps (validation keeps an entry all secure or none).
    pub fn is_secure(&self, policy: &Policy) -> bool {
        self.heaps
            .iter()
            .any(|h| policy.heap(h).is_some_and(|spec| spec.secure))
    }

    /// Whether a request with ION `flags` is for this entry.
    pub fn applies_to(&self, flags: u32) -> bool {
        flags & self.flags_all == self.flags_all && flags & self.flags_none == 0
    }

    /// The ION flags a request to this entry may carry: the generic ones, the ones the entry
    /// requires and the ones it passes through. Anything else means the caller wants
    /// something the table does not say how to give.
    pub fn accepted_flags(&self) -> u32 {
        GENERIC_ION_FLAGS | self.flags_all | self.pass_flags
    }

    /// Whether every request this entry applies to is one `earlier` applies to already.
    fn is_shadowed_by(&self, earlier: &IonMapping) -> bool {
        earlier.id == self.id
            && earlier.flags_all & !self.flags_all == 0
            && earlier.flags_none & !self.flags_none == 0
    }
}

/// Names of ION flag bits (`[ion_flags]` plus [`GENERIC_ION_FLAG_NAMES`]), by name.
pub(super) fn flag_names_from_file(
    table: Option<BTreeMap<String, Spanned<i64>>>,
    source: &Source,
) -> Result<Vec<(String, u32)>, PolicyError> {
    let mut names: Vec<(String, u32)> = GENERIC_ION_FLAG_NAMES
        .iter()
        .map(|&(name, value)| (name.to_owned(), value))
        .collect();
    for (name, spanned_bit) in table.unwrap_or_default() {
        let span = spanned_bit.span();
        let bit = *spanned_bit.get_ref();
        if names
            .iter()
            .any(|(known, _)| known.eq_ignore_ascii_case(&name))
        {
            return Err(
                source.invalid(&span, format!("ION flag name {name:?} is built in already"))
            );
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.is_empty() {
            return Err(source.invalid(
                &span,
                format!("ION flag name {name:?} is not an identifier (letters, digits, _)"),
            ));
        }
        let bit = u32::try_from(bit).ok().filter(|&b| b < 32).ok_or_else(|| {
            source.invalid(
                &span,
                format!("ION flag {name}: bit {bit} is not a bit of the 32-bit ION flags"),
            )
        })?;
        names.push((name, 1 << bit));
    }
    Ok(names)
}

/// ION flags as a policy writes them: names from `names`, numbers, `"A|B"`.
fn parse_flags(names: &[(String, u32)], expr: &str) -> Result<u64, String> {
    let mut value = 0u64;
    let mut atoms = 0;
    for atom in expr.split(['|', '+', ',', ' ']).filter(|a| !a.is_empty()) {
        let named = names
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(atom))
            .map(|&(_, v)| u64::from(v));
        let number = || match atom.strip_prefix("0x").or_else(|| atom.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16).ok(),
            None => atom.replace('_', "").parse().ok(),
        };
        value |= named
            .or_else(number)
            .ok_or_else(|| format!("unknown ION flag {atom:?} (name it in [ion_flags])"))?;
        atoms += 1;
    }
    if atoms == 0 {
        return Err("empty ION flags".to_owned());
    }
    Ok(value)
}

pub(super) fn from_file(
    entries: Vec<Spanned<IonFile>>,
    heaps: &[HeapSpec],
    flag_names: &[(String, u32)],
    source: &Source,
) -> Result<Vec<IonMapping>, PolicyError> {
    let mut ion: Vec<IonMapping> = Vec::new();
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
        // One entry is one kind of memory: an entry that mixes secure and normal heaps would
        // put protected content in CPU-readable memory when the secure one is absent.
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
        let flags = |field: &str, spec: &Option<UsageSpec>| -> Result<u32, PolicyError> {
            let Some(spec) = spec else { return Ok(0) };
            let value = spec
                .value(&|text| parse_flags(flag_names, text))
                .map_err(|m| {
                    source.invalid(&span, format!("ION heap id {}, {field}: {m}", raw.id))
                })?;
            u32::try_from(value).map_err(|_| {
                source.invalid(
                    &span,
                    format!(
                        "ION heap id {}, {field}: {value:#x} does not fit the 32-bit ION flags",
                        raw.id
                    ),
                )
            })
        };
        let flags_all = flags("flags_all", &raw.flags_all)?;
        let flags_none = flags("flags_none", &raw.flags_none)?;
        let pass_flags = flags("pass_flags", &raw.pass_flags)?;
        if flags_all & flags_none != 0 {
            return Err(source.invalid(
                &span,
                format!(
                    "ION heap id {}: flags {:#x} are in both flags_all and flags_none; the entry \
                     can never apply",
                    raw.id,
                    flags_all & flags_none
                ),
            ));
        }
        // CACHED picks cached_heap here: handing it to the heap as well would say it twice,
        // and dma-heap flags have no such bit.
        if pass_flags & GENERIC_ION_FLAGS != 0 {
            return Err(source.invalid(
                &span,
                format!(
                    "ION heap id {}: pass_flags may not pass ION_FLAG_CACHED or \
                     ION_FLAG_CACHED_NEEDS_SYNC (they choose cached_heap)",
                    raw.id
                ),
            ));
        }
        let mapping = IonMapping {
            id: raw.id,
            name: raw.name.unwrap_or_else(|| format!("ion-{}", raw.id)),
            line,
            heaps: uncached,
            cached_heaps: cached,
            allow,
            flags_all,
            flags_none,
            pass_flags,
        };
        if let Some(earlier) = ion.iter().find(|e| mapping.is_shadowed_by(e)) {
            return Err(source.invalid(
                &span,
                format!(
                    "ION heap id {} is already mapped on line {} for every flag this entry \
                     applies to (entries of one id are tried in order: put the narrower first)",
                    raw.id, earlier.line
                ),
            ));
        }
        ion.push(mapping);
    }
    Ok(ion)
}

impl Policy {
    /// The ION heap ids whose entries lead to the declared heap `heap`, ascending.
    pub fn ion_ids_of_heap(&self, heap: &str) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .ion
            .iter()
            .filter(|m| m.heaps.iter().chain(&m.cached_heaps).any(|h| h == heap))
            .map(|m| m.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// ION flags as `dump` shows them: names where the policy has them, hex for the rest.
    pub fn describe_ion_flags(&self, flags: u32) -> String {
        let mut parts = Vec::new();
        let mut rest = flags;
        for (name, value) in &self.ion_flag_names {
            if value.is_power_of_two() && rest & value != 0 {
                parts.push(name.clone());
                rest &= !value;
            }
        }
        usage::join_flag_names(parts, rest.into())
    }

    /// An `[[ion]]` entry's flag conditions as `dump` shows them: `flags_all=ION_FLAG_SECURE|
    /// ION_FLAG_CP_PIXEL pass_flags=0xff0000`, `any flags` when it has none.
    pub fn describe_ion_entry(&self, mapping: &IonMapping) -> String {
        let mut parts = Vec::new();
        for (label, flags) in [
            ("flags_all", mapping.flags_all),
            ("flags_none", mapping.flags_none),
        ] {
            if flags != 0 {
                parts.push(format!("{label}={}", self.describe_ion_flags(flags)));
            }
        }
        // A pass-through mask is a range of the vendor's bits, not a set of named flags.
        if mapping.pass_flags != 0 {
            parts.push(format!("pass_flags={:#x}", mapping.pass_flags));
        }
        if !mapping.allow.is_empty() {
            parts.push(format!("allow=[{}]", mapping.allow.describe()));
        }
        if parts.is_empty() {
            "any flags".to_owned()
        } else {
            parts.join(" ")
        }
    }

    /// The entry of heap id `id` for ION `flags`: the first that applies.
    fn ion_entry(&self, id: u32, heap_id_mask: u32, flags: u32) -> HalResult<&IonMapping> {
        let mut entries = self.ion.iter().filter(|m| m.id == id).peekable();
        if entries.peek().is_none() {
            return Err(HalError::no_such_heap(format!(
                "ION heap id {id} (mask {heap_id_mask:#x}) is not mapped to a dma-buf heap by the policy"
            )));
        }
        let lines: Vec<String> = self
            .ion
            .iter()
            .filter(|m| m.id == id)
            .map(|m| m.line.to_string())
            .collect();
        let entry = entries.find(|m| m.applies_to(flags)).ok_or_else(|| {
            HalError::bad_argument(format!(
                "ION flags {flags:#x} ({}) match no [[ion]] entry of heap id {id} (lines {})",
                self.describe_ion_flags(flags),
                lines.join(", ")
            ))
        })?;
        let unsupported = flags & !entry.accepted_flags();
        if unsupported != 0 {
            return Err(HalError::bad_argument(format!(
                "ION flags {unsupported:#x} ({}) are not supported for heap id {id}: its entry on \
                 line {} takes only {}",
                self.describe_ion_flags(unsupported),
                entry.line,
                self.describe_ion_flags(entry.accepted_flags())
            )));
        }
        Ok(entry)
    }

    /// The heaps a legacy ION request is tried on, in ION's order: highest heap id first,
    /// each id through its first `[[ion]]` entry whose flag conditions `flags` meets, skipping
    /// what `caller` may not use.
    pub fn resolve_ion(
        &self,
        heap_id_mask: u32,
        flags: u32,
        present: &dyn Fn(&str) -> bool,
        caller: &Caller,
    ) -> HalResult<Resolution> {
        if heap_id_mask == 0 {
            return Err(HalError::bad_argument("the ION heap-id mask is empty"));
        }
        let cached = flags & ION_FLAG_CACHED as u32 != 0;
        let mut ids = Vec::new();
        let mut candidates: Vec<String> = Vec::new();
        let mut absent: Vec<String> = Vec::new();
        let mut denied: Option<(&str, u32)> = None;
        let mut secure_ids = 0;
        let mut heap_flags: Option<(u32, u32)> = None;
        for id in (0..32u32).rev().filter(|id| heap_id_mask & (1 << id) != 0) {
            let mapping = self.ion_entry(id, heap_id_mask, flags)?;
            if mapping.is_secure(self) {
                secure_ids += 1;
            }
            // One resolution carries one heap_flags value: ids that would pass different flags
            // to their heaps cannot be tried as one request.
            let passed = flags & mapping.pass_flags;
            match heap_flags {
                Some((other, other_id)) if other != passed => {
                    return Err(HalError::bad_argument(format!(
                        "ION mask {heap_id_mask:#x} passes heap flags {other:#x} to heap id \
                         {other_id} but {passed:#x} to heap id {id}; ask for one id at a time"
                    )));
                }
                Some(_) => {}
                None => heap_flags = Some((passed, id)),
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
        let heap_flags = heap_flags.map_or(0, |(passed, _)| passed);
        let mut reason = format!(
            "ION mask {heap_id_mask:#x} with flags {} tried highest id first: {}",
            self.describe_ion_flags(flags),
            ids.join(", ")
        );
        if heap_flags != 0 {
            reason.push_str(&format!("; heap flags {heap_flags:#x} passed to the heap"));
        }
        if !absent.is_empty() {
            reason.push_str(&format!("; absent on this device: {}", absent.join(", ")));
        }
        let first = &candidates[0];
        Ok(Resolution {
            rule: format!("ion:{}", ids.join(",")),
            granule: self.granule_of(first),
            delegable: self.delegable(first, caller),
            candidates,
            fallback_on_error: true,
            reason,
            heap_flags: u64::from(heap_flags),
        })
    }
}
