//! The policy file as TOML gives it, before validation: what each section may contain.

use serde::Deserialize;
use toml::Spanned;

use dmaheap_aidl::usage;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyFile {
    pub limits: Option<Spanned<LimitsFile>>,
    #[serde(default)]
    pub heap: Vec<Spanned<HeapFile>>,
    #[serde(default)]
    pub rule: Vec<Spanned<RuleFile>>,
    #[serde(default)]
    pub ion: Vec<Spanned<IonFile>>,
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

/// Usage in a policy: a name or number, an expression `"A|B"`, or a list of those.
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

impl UsageAtom {
    fn value(&self) -> Result<u64, String> {
        match self {
            UsageAtom::Number(n) => Ok(*n as u64),
            UsageAtom::Text(text) => usage::parse(text),
        }
    }
}

impl UsageSpec {
    pub fn value(&self) -> Result<u64, String> {
        match self {
            UsageSpec::One(atom) => atom.value(),
            UsageSpec::Many(atoms) => atoms
                .iter()
                .try_fold(0, |acc, atom| Ok(acc | atom.value()?)),
        }
    }
}
