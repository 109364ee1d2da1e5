//! The test bed's own binder client, written from the kernel's uAPI and libbinder's parcel rules
//! with no rsbinder in it: the `binder-wire` suites use it to check rsbinder against libbinder,
//! and libdmaheap's two-stacks test uses it as the second binder stack (libbinder's stand-in)
//! in one process.

pub mod driver;
pub mod service_manager;
pub mod wire;
