//! `dmaheap-aidl-gen`: the host tool behind Android.bp's `dmaheap_aidl_rsbinder_gen` genrule.
//!
//! Soong does not run Cargo build scripts, so the rsbinder binding that `aidl/build.rs` writes
//! for Cargo is written by this tool for Soong, with the same generator and the same settings:
//! interfaces get the frozen version and the hash recorded in `aidl_api/<module>/<N>/.hash`
//! (the last line of the file), so `getInterfaceVersion()`/`getInterfaceHash()` answer the same
//! on a Soong-built and a Cargo-built service.
//!
//! ```text
//! dmaheap-aidl-gen --version 1 --hash-file aidl_api/vendor.dmaheap/1/.hash \
//!     --out dmaheap_aidl.rs aidl/vendor/dmaheap/*.aidl
//! dmaheap-aidl-gen --crate-support --out service_manager_16.rs aidl/16/android/os/IServiceManager.aidl
//! ```
//!
//! `--crate-support` writes bindings for use inside the rsbinder crate itself, without async
//! support: what rsbinder's own build.rs writes when its `async` feature is off (the device build
//! turns it off). android/crates/rsbinder.bp runs it once per file rsbinder includes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

struct Args {
    version: Option<i32>,
    hash_file: Option<PathBuf>,
    out: PathBuf,
    sources: Vec<PathBuf>,
    crate_support: bool,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut version = None;
    let mut hash_file = None;
    let mut out = None;
    let mut sources = Vec::new();
    let mut crate_support = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--version" => {
                version = Some(
                    value("--version")?
                        .parse()
                        .map_err(|_| "--version must be a number".to_owned())?,
                )
            }
            "--hash-file" => hash_file = Some(PathBuf::from(value("--hash-file")?)),
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--crate-support" => crate_support = true,
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s => sources.push(PathBuf::from(s)),
        }
    }
    let out = out.ok_or("--out is required")?;
    // Soong passes every input in $(in); only the .aidl files are sources.
    let mut sources: Vec<PathBuf> = sources
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "aidl"))
        .collect();
    if sources.is_empty() {
        return Err("no .aidl source given".into());
    }
    sources.sort();
    Ok(Args {
        version,
        hash_file,
        out,
        sources,
        crate_support,
    })
}

/// The hash a `.hash` file records: its last non-empty line.
fn read_hash(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| format!("{} is empty", path.display()))
}

/// Does the file declare an interface (the only kind of type that carries version and hash)?
fn declares_interface(path: &Path) -> Result<bool, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .split(|c: char| c.is_whitespace() || c == '{')
        .any(|w| w == "interface"))
}

fn run(args: Args) -> Result<(), String> {
    let hash = args.hash_file.as_deref().map(read_hash).transpose()?;
    let out_dir = match args.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let file_name = args.out.file_name().ok_or("--out must name a file")?;
    let mut builder = rsbinder_aidl::Builder::new().dest_dir(&out_dir);
    if args.crate_support {
        builder = builder.set_crate_support(true).set_async_support(false);
    }
    for src in &args.sources {
        builder = builder.source(src);
        if declares_interface(src)? {
            if let Some(v) = args.version {
                builder = builder.version(v);
            }
            if let Some(h) = &hash {
                builder = builder.hash(h.clone());
            }
        }
    }
    builder
        .output(PathBuf::from(file_name))
        .generate()
        .map_err(|e| format!("{e:?}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_args(&args).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dmaheap-aidl-gen: {e}");
            ExitCode::FAILURE
        }
    }
}
