//! The policy file as TOML gives it, before validation: what each section may contain.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyFile {
    pub limits: Option<Spanned<LimitsFile>>,
    pub service: Option<Spanned<ServiceFile>>,
    pub usage: Option<Spanned<UsageFile>>,
    /// Names for ION flag bits, usable in `[[ion]]` flag fields: `NAME = bit`.
    pub ion_flags: Option<BTreeMap<String, Spanned<i64>>>,
    #[serde(default)]
    pub heap: Vec<Spanned<HeapFile>>,
    #[serde(default)]
    pub rule: Vec<Spanned<RuleFile>>,
    #[serde(default)]
    pub ion: Vec<Spanned<IonFile>>,
}

/// `[service]`: who may act for others.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServiceFile {
    pub on_behalf_domains: Option<Vec<String>>,
}

/// `[usage]`: the vendor's own usage bits, by name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UsageFile {
    /// `NAME = bit`, the bit a number from 0 to 63.
    pub vendor_bits: Option<BTreeMap<String, Spanned<i64>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LimitsFile {
    pub max_allocation_bytes: Option<u64>,
    pub max_batch_count: Option<u32>,
    pub max_request_bytes: Option<u64>,
    pub max_calls_per_uid: Option<u32>,
    #[serde(default)]
    pub caller: Vec<Spanned<CallerLimitFile>>,
}

/// A `[[limits.caller]]` entry: one domain's or one uid's calls in flight.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CallerLimitFile {
    pub domain: Option<String>,
    pub uid: Option<UidSpec>,
    pub max_calls_in_flight: Option<u32>,
    pub over_limit: Option<OverLimitFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum OverLimitFile {
    Busy,
    Queue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HeapFile {
    pub name: String,
    pub cached: Option<bool>,
    pub contiguous: Option<bool>,
    pub secure: Option<bool>,
    pub carveout: Option<bool>,
    pub description: Option<String>,
    pub allow_domains: Option<Vec<String>>,
    pub allow_uids: Option<Vec<UidSpec>>,
    /// A power of two, as a byte size.
    pub granule: Option<ByteSize>,
    pub delegate: Option<DelegateFile>,
}

/// `delegate = true | false | { domains = [...], uids = [...] }`.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum DelegateFile {
    Flag(bool),
    Callers(CallersFile),
}

/// A set of callers by SELinux domain and uid (`callers` of a rule, `delegate` of a heap).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CallersFile {
    pub domains: Option<Vec<String>>,
    pub uids: Option<Vec<UidSpec>>,
}

/// A byte count: a number, or text such as `"64K"`, `"2M"`, `"1G"`, `"0x1000"`.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum ByteSize {
    Number(i64),
    Text(String),
}

/// `size = { min = "64K", max = "2M" }`, both ends inclusive, either optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SizeRangeFile {
    pub min: Option<ByteSize>,
    pub max: Option<ByteSize>,
}

/// A PixelFormat in `formats`: its name in PixelFormat.aidl or its number.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum FormatSpec {
    Number(i64),
    Name(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleFile {
    pub name: String,
    pub exact: Option<UsageSpec>,
    pub all_of: Option<UsageSpec>,
    pub any_of: Option<UsageSpec>,
    pub none_of: Option<UsageSpec>,
    pub heaps: Option<Vec<String>>,
    pub reject: Option<String>,
    pub fallback_on_failure: Option<bool>,
    pub allow_domains: Option<Vec<String>>,
    pub allow_uids: Option<Vec<UidSpec>>,
    pub formats: Option<Vec<FormatSpec>>,
    pub size: Option<SizeRangeFile>,
    pub callers: Option<CallersFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IonFile {
    pub id: u32,
    pub name: Option<String>,
    pub heap: OneOrMany,
    pub cached_heap: Option<OneOrMany>,
    pub allow_domains: Option<Vec<String>>,
    pub allow_uids: Option<Vec<UidSpec>>,
    /// ION flags the request must all have for this entry to apply.
    pub flags_all: Option<UsageSpec>,
    /// ION flags the request must have none of for this entry to apply.
    pub flags_none: Option<UsageSpec>,
    /// The request's flags within this mask go to the heap as dma-heap `heap_flags`.
    pub pass_flags: Option<UsageSpec>,
}

/// A uid in `allow_uids`: an Android ID name or a number.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum UidSpec {
    Number(i64),
    Name(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

/// Bits in a policy (usage, ION flags): a name or number, an expression `"A|B"`, or a list of
/// those.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum UsageSpec {
    One(UsageAtom),
    Many(Vec<UsageAtom>),
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum UsageAtom {
    // TOML integers are signed: bit 63 arrives as a negative number, which is still one bit.
    Number(i64),
    Text(String),
}

impl UsageSpec {
    /// The bits, each text atom read by `parse_text` (which knows the names that apply).
    pub fn value(&self, parse_text: &dyn Fn(&str) -> Result<u64, String>) -> Result<u64, String> {
        let atom_value = |atom: &UsageAtom| match atom {
            UsageAtom::Number(n) => Ok(*n as u64),
            UsageAtom::Text(text) => parse_text(text),
        };
        match self {
            UsageSpec::One(atom) => atom_value(atom),
            UsageSpec::Many(atoms) => atoms
                .iter()
                .try_fold(0, |acc, atom| Ok(acc | atom_value(atom)?)),
        }
    }
}
