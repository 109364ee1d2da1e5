//! The HAL registering under each release's service-manager numbering: for every release the
//! device build claims, a raw context manager of that numbering on a binder device of its own,
//! the service started against it with that release's SDK level, and what arrives checked byte
//! by byte; then a client finds the service through it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};

use crate::context_manager::{wait_for_record, Dialect};
use crate::driver::{
    self, Endpoint, Outcome, BINDER_TYPE_HANDLE, FLAT_BINDER_FLAG_ACCEPTS_FDS,
    FLAT_BINDER_FLAG_INHERIT_RT, FLAT_BINDER_FLAG_TXN_SECURITY_CTX, INTERFACE_TRANSACTION,
};
use crate::tap::Tap;
use crate::wire::{self, Reader};

struct Release {
    label: &'static str,
    sdk: u32,
    dialect: Dialect,
}

const RELEASES: &[Release] = &[
    Release {
        label: "Android 14",
        sdk: 34,
        dialect: Dialect::Android14,
    },
    Release {
        label: "Android 15 r1-r5",
        sdk: 35,
        dialect: Dialect::Android14,
    },
    Release {
        label: "Android 15 r6+",
        sdk: 35,
        dialect: Dialect::Android15R6,
    },
    Release {
        label: "Android 16",
        sdk: 36,
        dialect: Dialect::Android16,
    },
    Release {
        label: "Android 17",
        sdk: 37,
        dialect: Dialect::Android16,
    },
];

/// Kills a child when the test is done with it, whatever happened.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|f| f.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

fn hex(line: &str, key: &str) -> Result<u32> {
    let v = field(line, key).ok_or_else(|| anyhow!("no {key} in {line:?}"))?;
    let v = v.trim_start_matches("0x");
    u32::from_str_radix(v, 16).with_context(|| format!("{key}={v}"))
}

struct Bed {
    device: String,
    record: String,
    service_log: String,
    _context_manager: Reaped,
}

fn start_context_manager(control: &str, name: &str, dialect: Dialect) -> Result<Bed> {
    let device = driver::add_binderfs_device(control, name)?;
    let record = format!("/tmp/{name}.record");
    let _ = std::fs::remove_file(&record);
    let dialect_arg = clap::ValueEnum::to_possible_value(&dialect)
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default();
    let child = Command::new(std::env::current_exe()?)
        .args([
            "context-manager",
            "--device",
            &device,
            "--dialect",
            &dialect_arg,
        ])
        .args(["--record", &record])
        .stdin(Stdio::null())
        .spawn()
        .context("starting the context manager")?;
    let cm = Reaped(child);
    wait_for_record(&record, "ready", Duration::from_secs(10))
        .ok_or_else(|| anyhow!("the context manager on {device} did not start"))?;
    Ok(Bed {
        service_log: format!("/tmp/{name}.service.log"),
        device,
        record,
        _context_manager: cm,
    })
}

fn start_service(bed: &Bed, service_bin: &str, policy: &str, sdk: u32) -> Result<Reaped> {
    let log = std::fs::File::create(&bed.service_log)?;
    let child = Command::new(service_bin)
        .args(["--binder", &bed.device, "--policy", policy])
        .args(["--android-sdk", &sdk.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {service_bin}"))?;
    Ok(Reaped(child))
}

/// Runs the suite; false when a test failed.
pub fn run(control: &str, service_bin: &str, policy: &str) -> Result<bool> {
    let mut tap = Tap::new();
    for (i, release) in RELEASES.iter().enumerate() {
        let name = format!("wire-sm{i}");
        let bed = match start_context_manager(control, &name, release.dialect) {
            Ok(bed) => bed,
            Err(e) => {
                tap.test(
                    &format!("{}: context manager starts", release.label),
                    || Err(e),
                );
                continue;
            }
        };
        let service = start_service(&bed, service_bin, policy, release.sdk);
        let mut registration = None;
        tap.test(
            &format!(
                "{} (SDK {}): the service registers with addService = code {} of the {:?} numbering",
                release.label,
                release.sdk,
                release.dialect.add_service_code(),
                release.dialect
            ),
            || {
                service.as_ref().map_err(|e| anyhow!("{e:#}"))?;
                let line = wait_for_record(&bed.record, "addService", Duration::from_secs(15))
                    .ok_or_else(|| {
                        let log = std::fs::read_to_string(&bed.service_log).unwrap_or_default();
                        anyhow!("no addService arrived; the service logged:\n{log}")
                    })?;
                let code: u32 = field(&line, "code").unwrap_or("").parse()?;
                ensure!(code == release.dialect.add_service_code(), "code {code}: {line}");
                ensure!(
                    field(&line, "name") == Some(dmaheap_aidl::SERVICE_NAME),
                    "{line}"
                );
                registration = Some(line);
                Ok(())
            },
        );
        tap.test(
            &format!(
                "{}: the binder is a node with ACCEPTS_FDS and INHERIT_RT (and TXN_SECURITY_CTX where SELinux is on), followed by stability VINTF (Parcel::flattenBinder, finishFlattenBinder), then allowIsolated false and DUMP_FLAG_PRIORITY_DEFAULT",
                release.label
            ),
            || {
                let line = registration.as_deref().ok_or_else(|| anyhow!("not registered"))?;
                ensure!(hex(line, "type")? == BINDER_TYPE_HANDLE, "{line}");
                let flags = hex(line, "flags")?;
                ensure!(flags & FLAT_BINDER_FLAG_ACCEPTS_FDS != 0, "flags {flags:#x}");
                // A SCHED_FIFO camera or display thread is served at its own priority on ACK.
                ensure!(flags & FLAT_BINDER_FLAG_INHERIT_RT != 0, "flags {flags:#x}");
                // The service asks for callers' contexts; rsbinder passes the request to the
                // driver only where SELinux is on (every phone), as there is none to pass
                // otherwise.
                let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
                ensure!(
                    (flags & FLAT_BINDER_FLAG_TXN_SECURITY_CTX != 0) == selinux,
                    "flags {flags:#x} with SELinux {}",
                    if selinux { "on" } else { "off" }
                );
                ensure!(hex(line, "stability")? == wire::STABILITY_VINTF as u32, "{line}");
                ensure!(field(line, "allow_isolated") == Some("false"), "{line}");
                ensure!(field(line, "dump_priority") == Some("8"), "{line}");
                ensure!(field(line, "extra") == Some("0"), "bytes after the arguments: {line}");
                ensure!(
                    hex(line, "strict")? & wire::STRICT_MODE_PENALTY_GATHER != 0,
                    "{line}"
                );
                Ok(())
            },
        );
        tap.test(
            &format!(
                "{}: a client finds it with getService and it answers INTERFACE_TRANSACTION",
                release.label
            ),
            || {
                registration
                    .as_ref()
                    .ok_or_else(|| anyhow!("not registered"))?;
                let mut endpoint = Endpoint::open(&bed.device)?;
                let (object, stability) = crate::service_manager::get_service(
                    &mut endpoint,
                    dmaheap_aidl::SERVICE_NAME,
                    None,
                )?;
                let object = object.ok_or_else(|| anyhow!("getService returned null"))?;
                ensure!(
                    stability == wire::STABILITY_VINTF,
                    "stability {stability:#x}"
                );
                let outcome =
                    endpoint.transact(object.value as u32, INTERFACE_TRANSACTION, 0, &[], &[])?;
                let Outcome::Reply(reply) = outcome else {
                    bail!("{outcome:?}");
                };
                let descriptor = Reader::new(&reply.data, &reply.offsets).string()?;
                ensure!(descriptor == dmaheap_aidl::DESCRIPTOR, "{descriptor}");
                Ok(())
            },
        );
        drop(service);
    }

    for sdk in [33, 99] {
        let name = format!("wire-unknown{sdk}");
        let bed = start_context_manager(control, &name, Dialect::Android16)?;
        let mut service = start_service(&bed, service_bin, policy, sdk)?;
        tap.test(
            &format!(
                "SDK {sdk}: no numbering known, so one clear log line, no addService, and the process stays up (no restart loop)"
            ),
            || {
                std::thread::sleep(Duration::from_secs(3));
                ensure!(
                    service.0.try_wait()?.is_none(),
                    "the service exited: init would restart it every 5 s"
                );
                let log = std::fs::read_to_string(&bed.service_log)?;
                let lines: Vec<&str> = log.lines().filter(|l| l.contains("not registering")).collect();
                ensure!(lines.len() == 1, "{} 'not registering' lines:\n{log}", lines.len());
                ensure!(lines[0].contains(&format!("SDK {sdk}")), "{}", lines[0]);
                let record = std::fs::read_to_string(&bed.record)?;
                ensure!(!record.contains("addService"), "it registered anyway:\n{record}");
                Ok(())
            },
        );
        let _ = service.0.kill();
    }
    Ok(tap.finish())
}
