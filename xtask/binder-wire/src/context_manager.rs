//! A context manager that speaks one release's IServiceManager numbering, byte by byte, and
//! records what registrants send it: the test bed's stand-in for Android's servicemanager when
//! the question is "does the HAL register on Android N".
//!
//! The numberings are facts read from frameworks/native
//! `libs/binder/aidl/android/os/IServiceManager.aidl`, kept here independently of the service's
//! own table (service/src/registration.rs) so that a wrong entry in either shows up as a test
//! failure instead of agreeing with itself.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;

use crate::driver::{
    Endpoint, Received, BINDER_TYPE_HANDLE, FIRST_CALL_TRANSACTION, INTERFACE_TRANSACTION,
    PING_TRANSACTION, TF_ONE_WAY,
};
use crate::wire::{self, Reader, Writer};

/// One release family's method order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Dialect {
    /// Android 14 and 15 r1-r5: getService, checkService, addService, ... getServiceDebugInfo
    /// (14 methods; AOSPA android_frameworks_native c04af456).
    Android14,
    /// Android 15 r6+: getService2 inserted after getService (15 methods; android-15.0.0_r20).
    Android15R6,
    /// Android 16: checkService2 inserted after checkService (16 methods; android-16.0.0_r4).
    Android16,
}

/// The methods the test bed needs, by their index in the AIDL file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    GetService,
    CheckService,
    AddService,
    GetServiceDebugInfo,
    /// Declared, not modelled here.
    Other,
}

impl Dialect {
    fn method_count(self) -> u32 {
        match self {
            Dialect::Android14 => 14,
            Dialect::Android15R6 => 15,
            Dialect::Android16 => 16,
        }
    }

    /// addService's transaction code in this numbering.
    pub fn add_service_code(self) -> u32 {
        (FIRST_CALL_TRANSACTION..FIRST_CALL_TRANSACTION + self.method_count())
            .find(|&code| self.method(code) == Some(Method::AddService))
            .expect("every numbering has addService")
    }

    fn method(self, code: u32) -> Option<Method> {
        let index = code.checked_sub(FIRST_CALL_TRANSACTION)?;
        if index >= self.method_count() {
            return None;
        }
        let last = self.method_count() - 1;
        Some(match (self, index) {
            (_, 0) => Method::GetService,
            (Dialect::Android14, 1) | (Dialect::Android15R6, 2) | (Dialect::Android16, 2) => {
                Method::CheckService
            }
            (Dialect::Android14, 2) | (Dialect::Android15R6, 3) | (Dialect::Android16, 4) => {
                Method::AddService
            }
            (_, i) if i == last => Method::GetServiceDebugInfo,
            _ => Method::Other,
        })
    }
}

struct Registered {
    name: String,
    handle: u32,
    stability: i32,
}

/// Serves `device` as its context manager in `dialect` until killed, appending one line per
/// event to `record`.
pub fn serve(device: &str, dialect: Dialect, record: &str) -> Result<()> {
    let mut endpoint = Endpoint::open(device)?;
    endpoint.become_context_manager()?;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(record)?;
    record_line(&mut log, &format!("ready dialect={dialect:?}"))?;
    let mut services: Vec<Registered> = Vec::new();
    loop {
        let call = endpoint.next_transaction(None)?;
        record_line(
            &mut log,
            &format!(
                "call code={} pid={} uid={}",
                call.code, call.sender_pid, call.sender_euid
            ),
        )?;
        if call.flags & TF_ONE_WAY != 0 {
            continue;
        }
        handle(&mut endpoint, dialect, &call, &mut services, &mut log)?;
    }
}

/// One record line in one write, so a reader never sees half of it.
fn record_line(log: &mut std::fs::File, line: &str) -> std::io::Result<()> {
    log.write_all(format!("{line}\n").as_bytes())
}

fn ok_status(w: &mut Writer) -> &mut Writer {
    w.i32(wire::EX_NONE)
}

fn handle(
    endpoint: &mut Endpoint,
    dialect: Dialect,
    call: &Received,
    services: &mut Vec<Registered>,
    log: &mut std::fs::File,
) -> Result<()> {
    match call.code {
        PING_TRANSACTION => return Ok(endpoint.reply(&[], &[])?),
        INTERFACE_TRANSACTION => {
            let mut w = Writer::new(None);
            w.string16(Some(crate::service_manager::SERVICE_MANAGER));
            return Ok(endpoint.reply(&w.data, &w.offsets)?);
        }
        _ => {}
    }
    let Some(method) = dialect.method(call.code) else {
        return Ok(endpoint.reply_status(wire::UNKNOWN_TRANSACTION)?);
    };
    let mut r = Reader::new(&call.data, &call.offsets);
    let strict = r.i32()? as u32;
    let _work_source = r.i32()?;
    let header = r.i32()? as u32;
    let token = r.string()?;
    if header != wire::HEADER_SYST || token != crate::service_manager::SERVICE_MANAGER {
        record_line(log, &format!("refused header={header:#x} token={token}"))?;
        return Ok(endpoint.reply_status(wire::BAD_TYPE)?);
    }
    let mut w = Writer::new(None);
    match method {
        Method::AddService => {
            let name = r.string()?;
            let (object, stability) = r.binder()?;
            let allow_isolated = r.bool()?;
            let dump_priority = r.i32()?;
            let object = object.unwrap_or_default();
            let line = format!(
                "addService code={} name={name} type={:#x} flags={:#x} stability={stability:#x} \
                 allow_isolated={allow_isolated} dump_priority={dump_priority} strict={strict:#x} \
                 extra={} sid={}",
                call.code,
                object.kind,
                object.flags,
                r.remaining(),
                call.security_context.as_deref().unwrap_or("-")
            );
            record_line(log, &line)?;
            if object.kind == BINDER_TYPE_HANDLE {
                let handle = object.value as u32;
                endpoint.acquire(handle)?;
                services.retain(|s| s.name != name);
                services.push(Registered {
                    name,
                    handle,
                    stability,
                });
            }
            ok_status(&mut w);
        }
        Method::GetService | Method::CheckService => {
            // Both return `@nullable IBinder` in the Android 14 and 16 files; 15 r6's
            // checkService returns a `Service` union, which this test bed does not model.
            if method == Method::CheckService && dialect == Dialect::Android15R6 {
                return Ok(endpoint.reply_status(wire::UNKNOWN_TRANSACTION)?);
            }
            let name = r.string()?;
            ok_status(&mut w);
            match services.iter().find(|s| s.name == name) {
                Some(s) => w.handle(s.handle, s.stability),
                None => w.null_binder(),
            };
        }
        Method::GetServiceDebugInfo => {
            // An empty ServiceDebugInfo[]: all the SDK 35 probe needs is an answer.
            ok_status(&mut w).i32(0);
        }
        Method::Other => {
            w.i32(-7) // EX_UNSUPPORTED_OPERATION
                .string16(Some("not modelled by the test bed's context manager"))
                .i32(0);
        }
    }
    endpoint.reply(&w.data, &w.offsets)?;
    Ok(())
}

/// Waits until `record` has a line starting with `prefix`; returns it.
pub fn wait_for_record(record: &str, prefix: &str, timeout: Duration) -> Option<String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(record) {
            let complete = text.rfind('\n').map_or("", |end| &text[..end]);
            if let Some(line) = complete.lines().find(|l| l.starts_with(prefix)) {
                return Some(line.to_owned());
            }
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_service_and_the_probe_code_per_dialect() {
        assert_eq!(Dialect::Android14.add_service_code(), 3);
        assert_eq!(Dialect::Android15R6.add_service_code(), 4);
        assert_eq!(Dialect::Android16.add_service_code(), 5);
        assert_eq!(Dialect::Android14.method(15), None);
        assert_eq!(
            Dialect::Android15R6.method(15),
            Some(Method::GetServiceDebugInfo)
        );
        assert_eq!(Dialect::Android16.method(1), Some(Method::GetService));
    }
}
