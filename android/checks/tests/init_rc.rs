//! The init script starts the binary Android.bp installs, declares the AIDL instance, and loads
//! the heap module the kernel side builds.

mod common;

use android_checks::{initrc, names};
use common::*;

fn rc() -> initrc::RcFile {
    initrc::parse(&read(names::INIT_RC)).unwrap_or_else(|e| panic!("{}: {e}", names::INIT_RC))
}

#[test]
fn service_runs_the_installed_binary() {
    let rc = rc();
    assert_eq!(rc.services.len(), 1);
    let s = &rc.services[0];
    let bp = android_bp();
    let m = module(&bp, "rust_binary", names::SERVICE_MODULE);
    assert_eq!(
        s.path,
        installed_path(m),
        "the .rc must start what Android.bp installs"
    );
    assert_eq!(
        s.name,
        names::SERVICE_MODULE,
        "by convention the service is named after its module"
    );
}

#[test]
fn service_declares_the_aidl_instance_and_runs_as_a_hal() {
    let rc = rc();
    let s = &rc.services[0];
    let interfaces = s.option("interface");
    assert_eq!(interfaces.len(), 1);
    assert_eq!(interfaces[0], ["aidl", names::SERVICE_NAME]);
    assert_eq!(s.option("class"), [["hal".to_owned()]]);
    let user = s.option("user");
    assert_eq!(user.len(), 1);
    assert_ne!(user[0][0], "root", "the HAL does not need root");
    assert!(!s.option("group").is_empty());
    assert!(
        s.option("disabled").is_empty(),
        "the HAL starts with class hal"
    );
    assert!(
        s.option("oneshot").is_empty(),
        "the HAL is restarted when it dies"
    );
}

#[test]
fn heap_module_is_loaded_before_the_hal() {
    let rc = rc();
    let loads: Vec<_> = rc
        .actions
        .iter()
        .flat_map(|a| a.commands.iter().map(move |c| (a, c)))
        .filter(|(_, c)| c[0] == "insmod" || c[0] == "exec")
        .collect();
    assert_eq!(loads.len(), 1, "one load line for the heap module");
    let (action, cmd) = loads[0];
    assert_eq!(cmd[0], "insmod");
    assert_eq!(cmd[1], names::KMOD_PATH);
    // Before `on boot`, which starts class hal.
    assert!(
        [
            "early-init",
            "init",
            "late-init",
            "post-fs",
            "post-fs-data",
            "early-boot"
        ]
        .contains(&action.trigger[0].as_str()),
        "load trigger {:?} is not before class hal starts",
        action.trigger
    );
    // The module the kernel side builds has that name.
    let kbuild = read("heaps-kmod/Kbuild");
    let object = names::KMOD.trim_end_matches(".ko");
    assert!(
        kbuild.contains("obj-m") && kbuild.contains(&format!("{object}.o")),
        "heaps-kmod builds {}",
        names::KMOD
    );
}
