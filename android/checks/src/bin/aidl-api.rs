//! Maintains `aidl_api/vendor.dmaheap/` without Soong, with the same layout and hash as
//! `m vendor.dmaheap-update-api` / `m vendor.dmaheap-freeze-api`:
//!
//! ```text
//! cargo run -p android-checks --bin aidl-api -- update      # aidl/ -> aidl_api/<module>/current
//! cargo run -p android-checks --bin aidl-api -- freeze      # current -> next version N, N/.hash
//! cargo run -p android-checks --bin aidl-api -- refreeze-unreleased
//!                                   # rewrite the latest version from the sources: ONLY while
//!                                   # that version has never shipped on any device
//! cargo run -p android-checks --bin aidl-api -- hash DIR N  # print the hash of DIR as version N
//! cargo run -p android-checks --bin aidl-api -- dump DIR    # print the API of the .aidl under DIR
//! ```
//!
//! `freeze` does not edit Android.bp: add `{ version: "N", imports: [] }` to `versions_with_info`
//! yourself (the checks fail until you do).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use android_checks::aidl::Unit;
use android_checks::aidl_api::{self, Snapshots};
use android_checks::{names, repo_root};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aidl-api: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let root = repo_root();
    let module_dir = root.join("aidl_api").join(names::AIDL_MODULE);
    let src = root.join(names::AIDL_ROOT);
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["update"] => {
            aidl_api::write_snapshot(&src, &module_dir.join("current"))?;
            println!("updated {}", module_dir.join("current").display());
            Ok(())
        }
        ["freeze"] => {
            let snaps = Snapshots::scan(&module_dir).unwrap_or(Snapshots {
                module_dir: module_dir.clone(),
                versions: Vec::new(),
                has_current: false,
                strays: Vec::new(),
            });
            let tot = Unit::load(&src).map_err(|e| e.to_string())?.api();
            if let Some(&latest) = snaps.versions.last() {
                let frozen = aidl_api::load_snapshot(&snaps.dir(latest))?;
                if frozen == tot {
                    println!("no change since version {latest}: nothing to freeze");
                    return Ok(());
                }
                let errors = aidl_api::compatibility_errors(&frozen, &tot);
                if !errors.is_empty() {
                    return Err(format!(
                        "the sources are not backward compatible with version {latest}:\n  {}",
                        errors.join("\n  ")
                    ));
                }
            }
            let next = snaps.versions.last().map_or(1, |v| v + 1);
            aidl_api::write_snapshot(&src, &module_dir.join("current"))?;
            let dir = snaps.dir(next);
            aidl_api::write_snapshot(&src, &dir)?;
            let hash = aidl_api::compute_hash(&dir, next).map_err(|e| e.to_string())?;
            std::fs::write(dir.join(".hash"), format!("{hash}\n")).map_err(|e| e.to_string())?;
            println!(
                "froze version {next} in {} (hash {hash}); now add {{ version: \"{next}\", imports: [] }} \
                 to versions_with_info in Android.bp",
                dir.display()
            );
            Ok(())
        }
        ["refreeze-unreleased"] => {
            let snaps = Snapshots::scan(&module_dir).map_err(|e| e.to_string())?;
            let latest = *snaps
                .versions
                .last()
                .ok_or("no frozen version to rewrite")?;
            aidl_api::write_snapshot(&src, &module_dir.join("current"))?;
            let dir = snaps.dir(latest);
            aidl_api::write_snapshot(&src, &dir)?;
            let hash = aidl_api::compute_hash(&dir, latest).map_err(|e| e.to_string())?;
            // The earlier hashes stay as a record of what this version was before; the build
            // compares the last line only.
            let hash_file = dir.join(".hash");
            let mut recorded = std::fs::read_to_string(&hash_file).unwrap_or_default();
            if recorded.lines().map(str::trim).rfind(|l| !l.is_empty()) != Some(hash.as_str()) {
                if !recorded.is_empty() && !recorded.ends_with('\n') {
                    recorded.push('\n');
                }
                recorded.push_str(&format!("{hash}\n"));
            }
            std::fs::write(&hash_file, recorded).map_err(|e| e.to_string())?;
            println!(
                "rewrote unreleased version {latest} in {} (hash {hash}); rebuild the aidl crate",
                dir.display()
            );
            Ok(())
        }
        ["hash", dir, version] => {
            let v: u32 = version.parse().map_err(|_| "version must be a number")?;
            let h = aidl_api::compute_hash(Path::new(dir), v).map_err(|e| e.to_string())?;
            println!("{h}");
            Ok(())
        }
        ["dump", dir] => {
            let unit = Unit::load(&PathBuf::from(dir)).map_err(|e| e.to_string())?;
            for (name, body) in unit.api() {
                println!("// {name}\n{body}");
            }
            Ok(())
        }
        _ => Err(
            "usage: aidl-api update | freeze | refreeze-unreleased | hash DIR VERSION | dump DIR"
                .into(),
        ),
    }
}
