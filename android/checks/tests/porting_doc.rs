//! The README's porting guide covers what the issue asks, with the names the
//! Android files use.

mod common;

use android_checks::names;
use common::*;

#[test]
fn porting_guide_covers_the_four_topics() {
    let doc = read("README.md");
    for heading in [
        "Write the allocation policy for your heaps",
        "Map your old ION heap ids",
        "Build the heap module for your GKI kernel",
        "What the SELinux policy grants",
    ] {
        assert!(
            doc.contains(heading),
            "README.md lacks the section `{heading}`"
        );
    }
}

#[test]
fn porting_guide_uses_the_real_names() {
    let doc = read("README.md");
    for name in [
        names::SERVICE_NAME,
        names::SERVICE_PATH,
        names::SERVER_DOMAIN,
        names::EXEC_TYPE,
        names::SERVICE_TYPE,
        names::KMOD_PATH,
        names::VINTF_MATRIX,
        "BOARD_VENDOR_SEPOLICY_DIRS",
        "DEVICE_FRAMEWORK_COMPATIBILITY_MATRIX_FILE",
        "/vendor/etc/dmaheap/policy.toml",
    ] {
        assert!(doc.contains(name), "README.md never mentions `{name}`");
    }
    // Every module parameter the kernel module declares is documented.
    let params = read("heaps-kmod/params.rs");
    for line in params.lines().filter(|l| l.contains("b\"parm=")) {
        let p = line
            .split("parm=")
            .nth(1)
            .unwrap()
            .split(':')
            .next()
            .unwrap();
        assert!(
            doc.contains(&format!("`{p}`")),
            "module parameter `{p}` is not documented"
        );
    }
    // Every client domain of the policy is named.
    let clients = read("sepolicy/vendor/hal_dmaheap_clients.te");
    for line in clients
        .lines()
        .filter(|l| l.starts_with("hal_client_domain("))
    {
        let domain = line
            .trim_start_matches("hal_client_domain(")
            .split(',')
            .next()
            .unwrap();
        assert!(
            doc.contains(domain),
            "client domain {domain} is not in the porting guide"
        );
    }
}
