//! The Soong modules of the crates this project ships (android/crates/shipped.toml):
//!
//! ```text
//! cargo run -p android-checks --bin android-crates -- generate      # android/crates/<crate>.bp
//! cargo run -p android-checks --bin android-crates -- export DIR    # DIR/<crate>/ = sources + Android.bp
//! cargo run -p android-checks --bin android-crates -- resolve       # what the device build lacks
//! ```
//!
//! `export` copies each crate as published on crates.io (from Cargo's cache: run `cargo fetch`
//! first) and writes its generated Blueprint file beside it as `Android.bp`, the layout AOSP's
//! external/rust/android-crates-io uses. Point DIR at e.g. vendor/<company>/rust-crates.

use std::path::Path;
use std::process::ExitCode;

use android_checks::deps::{self, Shipped, World};
use android_checks::repo_root;

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for e in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let e = e.map_err(|e| e.to_string())?;
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), &dest).map_err(|err| format!("{}: {err}", dest.display()))?;
        }
    }
    Ok(())
}

fn run(args: &[String]) -> Result<(), String> {
    let root = repo_root();
    let world = World::load(&root)?;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["generate"] => {
            for (path, text) in deps::generate(&world)? {
                std::fs::write(root.join(&path), text).map_err(|e| format!("{path}: {e}"))?;
                println!("wrote {path}");
            }
            Ok(())
        }
        ["export", dir] => {
            for c in &world.shipped.crates {
                let pkg = world.meta.package(&c.name)?;
                let dest = Path::new(dir).join(&c.name);
                copy_tree(pkg.dir(), &dest)?;
                let bp = root.join(Shipped::bp_path(c));
                std::fs::copy(&bp, dest.join("Android.bp")).map_err(|e| e.to_string())?;
                println!("{} {} -> {}", c.name, pkg.version, dest.display());
            }
            Ok(())
        }
        ["resolve"] => {
            let problems = world.resolve();
            if problems.is_empty() {
                println!(
                    "every Rust module resolves against AOSP's snapshot and the shipped crates"
                );
                Ok(())
            } else {
                Err(problems.join("\n"))
            }
        }
        _ => Err("usage: android-crates generate | export DIR | resolve".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("android-crates: {e}");
            ExitCode::FAILURE
        }
    }
}
