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

/// How many checkouts' guest target directories the cache keeps.
const GUEST_TARGETS_KEPT: usize = 4;

/// The cargo target directory for guest programs of this checkout. It lives in the cache so a
/// fresh clone at the same path (CI) finds its dependencies built; it is per checkout because
/// cargo names workspace crates by their path inside the workspace and decides freshness by
/// mtimes, so two checkouts sharing one directory would link each other's stale crates.
pub fn guest_target() -> PathBuf {
    use sha2::{Digest, Sha256};
    let root = cache().join("guest-target");
    let digest = Sha256::digest(repo().as_os_str().as_encoded_bytes());
    let key: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let dir = root.join(key);
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".last-used"))
        .and_then(|f| f.set_modified(std::time::SystemTime::now()));
    let _ = std::fs::write(dir.join("checkout"), repo().as_os_str().as_encoded_bytes());
    prune_guest_targets(&root, &dir);
    dir
}

fn prune_guest_targets(root: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let mut others: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p != keep && p.is_dir())
        .map(|p| {
            let used = std::fs::metadata(p.join(".last-used"))
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (used, p)
        })
        .collect();
    others.sort();
    let excess = (others.len() + 1).saturating_sub(GUEST_TARGETS_KEPT);
    for (_, path) in others.into_iter().take(excess) {
        let _ = std::fs::remove_dir_all(path);
    }
}
