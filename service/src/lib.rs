//! The `vendor.dmaheap.IHeapAllocator` HAL service.
//!
//! [`policy`] turns a vendor TOML file into rules that map gralloc usage and legacy ION heap ids
//! to dma-buf heaps; [`allocator`] validates requests, resolves them and allocates through a
//! [`backend::HeapBackend`]; [`service`] exposes it over binder and [`registration`] registers it
//! in the service-manager numbering of the device's release. Everything but `service` runs in
//! host tests, on memfds instead of /dev/dma_heap.

pub mod access;
pub mod allocator;
pub mod backend;
pub mod dump;
pub mod error;
pub mod in_flight;
pub mod naming;
pub mod phases;
pub mod policy;
pub mod registration;
pub mod sched;
pub mod service;
pub mod stats;

pub use allocator::{Allocation, Allocator, Caller, Selector};
pub use error::{ErrorKind, HalError};
pub use policy::Policy;
