//! The service-manager calls that a client standing in for libbinder makes: `getService`, the
//! same code in every numbering, and `addService` as the test bed's service manager numbers it.
//! The numberings themselves are the context manager's ([`Dialect`] in `context_manager.rs`).

use anyhow::{anyhow, bail, ensure, Context, Result};

use crate::driver::{
    Endpoint, FlatObject, Outcome, Received, BINDER_TYPE_HANDLE, FIRST_CALL_TRANSACTION,
    TF_ACCEPT_FDS,
};
use crate::wire::{Break, Reader, Status, Writer};

/// `android.os.IServiceManager`, the token every service-manager call carries.
pub const SERVICE_MANAGER: &str = "android.os.IServiceManager";

/// `getService` is FIRST_CALL_TRANSACTION in every numbering (Android 14, 15 r1-r5, 15 r6+, 16).
pub const GET_SERVICE: u32 = FIRST_CALL_TRANSACTION;

/// `addService` in the Android 16 numbering, which rsb_hub (the test bed's service manager)
/// speaks.
pub const RSB_HUB_ADD_SERVICE: u32 = FIRST_CALL_TRANSACTION + 4;

/// The reply parcel of a transaction that must have one.
pub fn expect_parcel(outcome: Outcome) -> Result<Received> {
    match outcome {
        Outcome::Reply(r) => Ok(r),
        other => bail!("expected a reply parcel, got {other:?}"),
    }
}

/// Finds `name` through the context manager; a handle in the answer is acquired, as a new
/// `BpBinder` does, before the reply buffer is freed. Returns the object and its stability word.
pub fn get_service(
    endpoint: &mut Endpoint,
    name: &str,
    broken: Option<Break>,
) -> Result<(Option<FlatObject>, i32)> {
    let mut w = Writer::new(broken);
    w.interface_token(SERVICE_MANAGER).string16(Some(name));
    let reply =
        expect_parcel(endpoint.transact(0, GET_SERVICE, TF_ACCEPT_FDS, &w.data, &w.offsets)?)?;
    let mut r = Reader::new(&reply.data, &reply.offsets);
    let status = r.status()?;
    ensure!(status == Status::Ok, "getService: {status:?}");
    let (object, stability) = r.binder()?;
    if let Some(o) = object {
        if o.kind == BINDER_TYPE_HANDLE {
            endpoint.acquire(o.value as u32)?;
        }
    }
    Ok((object, stability))
}

/// Registers the local node (`node`, `cookie`) under `name` with rsb_hub
/// (`addService(name, binder, allowIsolated false, dumpPriority DEFAULT)`).
pub fn add_service_to_rsb_hub(
    endpoint: &mut Endpoint,
    name: &str,
    node: u64,
    cookie: u64,
    broken: Option<Break>,
) -> Result<()> {
    /// IServiceManager's DUMP_FLAG_PRIORITY_DEFAULT.
    const DUMP_PRIORITY_DEFAULT: i32 = 8;
    let mut w = Writer::new(broken);
    w.interface_token(SERVICE_MANAGER)
        .string16(Some(name))
        .local_binder(node, cookie)
        .bool(false)
        .i32(DUMP_PRIORITY_DEFAULT);
    let reply = expect_parcel(endpoint.transact(
        0,
        RSB_HUB_ADD_SERVICE,
        TF_ACCEPT_FDS,
        &w.data,
        &w.offsets,
    )?)
    .context("addService")?;
    let status = Reader::new(&reply.data, &reply.offsets).status()?;
    ensure!(status == Status::Ok, "addService: {status:?}");
    Ok(())
}

/// The handle of `name`, which must be registered and reached through a handle (not our own
/// node).
pub fn service_handle(endpoint: &mut Endpoint, name: &str) -> Result<u32> {
    match get_service(endpoint, name, None)?.0 {
        Some(o) if o.kind == BINDER_TYPE_HANDLE => Ok(o.value as u32),
        Some(o) => Err(anyhow!("{name} came back as a local node: {o:?}")),
        None => Err(anyhow!("{name} is not registered")),
    }
}
