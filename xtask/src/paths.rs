//! Where things live: the repository, its scratch space, and the cache outside the clone.

use std::path::{Path, PathBuf};

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

/// Per-checkout scratch space for this run's artifacts (initramfs, logs).
pub fn scratch() -> PathBuf {
    let dir = repo().join("target").join("xtask");
    std::fs::create_dir_all(&dir).expect("cannot create target/xtask");
    dir
}

/// Slow artifacts kept across clones and runs: `$DMAHEAP_CACHE`, else `$XDG_CACHE_HOME/dmaheap-hal`,
/// else `~/.cache/dmaheap-hal`. Every entry under it is keyed by what went into it.
pub fn cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("DMAHEAP_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache")
        });
    base.join("dmaheap-hal")
}

/// Runs of xtask share the kernel cache, the guest target directory and `target/xtask`: a second
/// run would take an unfinished kernel build for a broken one and delete it. One run at a time
/// per machine; a second one waits. The lock goes with the returned file.
pub fn lock_machine() -> anyhow::Result<std::fs::File> {
    use anyhow::Context;
    let cache = cache();
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("cannot create {}", cache.display()))?;
    let path = cache.join("xtask.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            crate::progress::note(format!(
                "waiting for another cargo xtask run to finish ({})",
                path.display()
            ));
            file.lock()
                .with_context(|| format!("cannot lock {}", path.display()))?;
        }
        Err(std::fs::TryLockError::Error(error)) => {
            return Err(error).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    Ok(file)
}
