fn main() {
    println!("cargo:rerun-if-changed=aidl");
    rsbinder_aidl::Builder::new()
        .source("aidl/testbed/smoke/SharedBuffer.aidl")
        .source("aidl/testbed/smoke/IBufferSmoke.aidl")
        .output("smoke.rs")
        .generate()
        .expect("generating the smoke-test AIDL bindings");
}
