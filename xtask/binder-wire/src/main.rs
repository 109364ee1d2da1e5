//! `binder-wire`: the test bed's libbinder-conformance tools (issue 17).
//!
//! - `conformance`: the allocator HAL over raw binder, every method, error path and meta
//!   transaction, bytes written and read from libbinder's rules (TAP);
//! - `registration`: the HAL registering under each release's service-manager numbering (TAP);
//! - `context-manager`: the raw context manager `registration` runs, one numbering per device.

mod conformance;
mod context_manager;
mod registration;
mod tap;

use binder_wire::{driver, service_manager, wire};

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "libbinder wire conformance of the allocator HAL")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Every method, error path and meta transaction of IHeapAllocator over raw binder.
    Conformance {
        #[arg(long, default_value = "/dev/binderfs/binder")]
        device: String,
        #[arg(long, default_value = dmaheap_aidl::SERVICE_NAME)]
        service: String,
        /// Break one layout rule on purpose: the test that names it must fail.
        #[arg(long = "break", value_enum)]
        broken: Option<wire::Break>,
        #[arg(long, value_enum, default_value = "all")]
        role: conformance::Role,
        /// The service's pid, for DEBUG_PID (found in /proc by name when not given).
        #[arg(long)]
        service_pid: Option<i32>,
    },
    /// The service registering under each release's IServiceManager numbering.
    Registration {
        #[arg(long, default_value = "/dev/binderfs/binder-control")]
        binderfs_control: String,
        #[arg(long, default_value = "dmaheap-service")]
        service_bin: String,
        #[arg(long)]
        policy: String,
    },
    /// Serve a binder device as its context manager in one numbering, recording registrations.
    ContextManager {
        #[arg(long)]
        device: String,
        #[arg(long, value_enum)]
        dialect: context_manager::Dialect,
        #[arg(long)]
        record: String,
    },
}

fn main() -> Result<ExitCode> {
    let passed = match Args::parse().command {
        Cmd::Conformance {
            device,
            service,
            broken,
            role,
            service_pid,
        } => conformance::run(&device, &service, broken, role, service_pid)?,
        Cmd::Registration {
            binderfs_control,
            service_bin,
            policy,
        } => registration::run(&binderfs_control, &service_bin, &policy)?,
        Cmd::ContextManager {
            device,
            dialect,
            record,
        } => {
            context_manager::serve(&device, dialect, &record)?;
            true
        }
    };
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
