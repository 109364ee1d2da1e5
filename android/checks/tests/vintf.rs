//! The VINTF fragments are well-formed and name the package, version and instance the service
//! registers.

mod common;

use android_checks::aidl::{Kind, Unit};
use android_checks::{names, vintf};
use common::*;

fn latest_version() -> String {
    let bp = android_bp();
    declared_versions(aidl_interface(&bp))
        .last()
        .expect("a frozen version")
        .to_string()
}

#[test]
fn manifest_fragment_names_what_the_service_registers() {
    let frag = vintf::parse(&read(names::VINTF_MANIFEST)).expect("well-formed manifest fragment");
    assert_eq!(frag.root, "manifest");
    assert_eq!(frag.kind, "device");
    assert_eq!(frag.hals.len(), 1);
    let hal = &frag.hals[0];
    assert_eq!(hal.name, names::AIDL_PACKAGE);
    assert_eq!(hal.versions, [latest_version()]);
    assert_eq!(
        hal.instances,
        [format!("{}/{}", names::INTERFACE, names::INSTANCE)]
    );
    // package.Interface/instance is the name the service registers (aidl crate constant).
    let registered = format!("{}.{}", hal.name, hal.instances[0]);
    assert_eq!(registered, names::SERVICE_NAME);
    let aidl_lib = read("aidl/src/lib.rs");
    assert!(
        aidl_lib.contains(&format!("SERVICE_NAME: &str = \"{registered}\"")),
        "aidl/src/lib.rs SERVICE_NAME must be {registered}"
    );
    // The service registers exactly that name (through the aidl crate's constant).
    let bp = android_bp();
    let service = module(&bp, "rust_binary", names::SERVICE_MODULE);
    let main = android_checks::bp::strings(service.get("srcs"))
        .into_iter()
        .find(|s| s.ends_with(".rs"))
        .unwrap();
    let main_src = read(&main);
    assert!(
        main_src.contains("registration::register(dmaheap_aidl::SERVICE_NAME"),
        "{main} must register dmaheap_aidl::SERVICE_NAME"
    );
    // The interface exists in the AIDL package and is an interface.
    let unit = Unit::load(&root().join(names::AIDL_ROOT)).unwrap();
    let t = unit
        .docs
        .iter()
        .flat_map(|d| d.types.iter())
        .find(|t| t.name == names::INTERFACE)
        .expect("interface declared");
    assert_eq!(t.kind, Kind::Interface);
    assert!(t.annotations.iter().any(|a| a == "@VintfStability"));
}

#[test]
fn compatibility_matrix_covers_the_manifest() {
    let m = vintf::parse(&read(names::VINTF_MANIFEST)).unwrap();
    let fcm = vintf::parse(&read(names::VINTF_MATRIX)).expect("well-formed matrix fragment");
    assert_eq!(fcm.root, "compatibility-matrix");
    assert_eq!(fcm.kind, "framework");
    assert_eq!(fcm.hals.len(), 1);
    let (hal, req) = (&m.hals[0], &fcm.hals[0]);
    assert_eq!(req.name, hal.name);
    // A matrix version is N or a range N-M; the manifest's must be inside it.
    let v: u32 = hal.versions[0].parse().unwrap();
    let ok = req.versions.iter().any(|r| match r.split_once('-') {
        Some((a, b)) => a.parse::<u32>().unwrap() <= v && v <= b.parse::<u32>().unwrap(),
        None => r.parse::<u32>().unwrap() == v,
    });
    assert!(ok, "matrix versions {:?} do not cover {v}", req.versions);
    for i in &hal.instances {
        assert!(req.instances.contains(i), "matrix does not list {i}");
    }
}

#[test]
fn malformed_fragments_are_rejected() {
    assert!(
        vintf::parse("<manifest version=\"1.0\" type=\"device\"><hal format=\"aidl\">").is_err()
    );
    assert!(
        vintf::parse("<manifest><hal format=\"hidl\"><name>x</name></hal></manifest>").is_err()
    );
    assert!(vintf::parse("<other/>").is_err());
    let two_names = "<manifest><hal format=\"aidl\"><name>a</name><name>b</name></hal></manifest>";
    assert!(vintf::parse(two_names).is_err());
}
