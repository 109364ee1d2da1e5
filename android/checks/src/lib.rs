//! Checks for the Android integration of dmaheap-hal, run by `cargo test` because Soong cannot
//! run on the project's machines. Each module reads one kind of file the way the Android build
//! would, with a real parser or compiler where one exists here:
//!
//! - [`bp`]: `Android.bp`, parsed with the `android_bp` Blueprint parser.
//! - [`aidl`] and [`aidl_api`]: the AIDL sources and the frozen `aidl_api/` snapshots, hashed the
//!   way AOSP's `aidl_interface` hashes them.
//! - [`vintf`]: the VINTF manifest and compatibility-matrix fragments (XML).
//! - [`initrc`]: the init `.rc` file.
//! - [`sepolicy`]: the vendor policy, expanded with `m4` and compiled with `checkpolicy` against
//!   a stand-in for the platform policy (`android/checks/platform-stub/`).
//!
//! The integration tests under `tests/` apply them to the repository.

pub mod aidl;
pub mod aidl_api;
pub mod bp;
pub mod cargo;
pub mod deps;
pub mod initrc;
pub mod metadata;
pub mod modload;
pub mod sepolicy;
pub mod starlark;
pub mod vintf;

use std::path::PathBuf;

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(|p| p.parent())
        .expect("android/checks sits two levels below the repository root")
        .to_owned()
}

/// The names this project fixes across all its Android files.
pub mod names {
    /// The AIDL package, and the `aidl_interface` module name.
    pub const AIDL_PACKAGE: &str = "vendor.dmaheap";
    pub const AIDL_MODULE: &str = "vendor.dmaheap";
    pub const INTERFACE: &str = "IHeapAllocator";
    pub const INSTANCE: &str = "default";
    /// `<package>.<interface>/<instance>`: the name the service registers.
    pub const SERVICE_NAME: &str = "vendor.dmaheap.IHeapAllocator/default";
    /// Directory of the AIDL sources (the `local_include_dir` of the aidl_interface).
    pub const AIDL_ROOT: &str = "aidl";
    /// The service's Soong module and installed path.
    pub const SERVICE_MODULE: &str = "vendor.dmaheap-service";
    pub const SERVICE_PATH: &str = "/vendor/bin/hw/vendor.dmaheap-service";
    pub const INIT_RC: &str = "init/vendor.dmaheap-service.rc";
    pub const VINTF_MANIFEST: &str = "vintf/vendor.dmaheap-service.xml";
    pub const VINTF_MATRIX: &str = "vintf/vendor.dmaheap-compatibility-matrix.xml";
    /// SELinux labels.
    pub const HAL_ATTRIBUTE: &str = "hal_dmaheap";
    pub const SERVER_DOMAIN: &str = "hal_dmaheap_default";
    pub const EXEC_TYPE: &str = "hal_dmaheap_default_exec";
    pub const SERVICE_TYPE: &str = "hal_dmaheap_service";
    /// The kernel module and where the device installs it.
    pub const KMOD: &str = "dmaheap_heaps.ko";
    pub const KMOD_PATH: &str = "/vendor/lib/modules/dmaheap_heaps.ko";
}
