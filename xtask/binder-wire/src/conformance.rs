//! The allocator HAL over raw binder, as a libbinder_ndk client would talk to it: every method of
//! `vendor.dmaheap.IHeapAllocator` version 1, its error paths and the meta transactions, each
//! transaction assembled by [`Writer`] and each reply taken apart by [`Reader`], never by
//! rsbinder. A test's name says which libbinder rule it rests on.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Result};
use dmaheap_aidl::consts;
use dmaheap_aidl::usage;

use crate::driver::{
    Endpoint, Outcome, Received, BINDER_TYPE_BINDER, BINDER_TYPE_HANDLE, DEBUG_PID_TRANSACTION,
    DUMP_TRANSACTION, EXTENSION_TRANSACTION, FIRST_CALL_TRANSACTION, INTERFACE_TRANSACTION,
    PING_TRANSACTION, SHELL_COMMAND_TRANSACTION, TF_ACCEPT_FDS, TF_ONE_WAY,
};
use crate::service_manager::{add_service_to_rsb_hub, expect_parcel, get_service};
use crate::tap::Tap;
use crate::wire::{self, Break, Reader, Status, Writer};

/// The service's interface version and hash: the last line of `aidl_api/vendor.dmaheap/2/.hash`
/// is what Soong's `aidl_interface` compiles into the stubs (`--hash=$(tail -1 .hash)`). Every
/// version-1 call of this suite is laid out as a version-1 client lays it out: it is the
/// version-1 client the interface's VINTF range (1-2) promises still works.
const SERVICE_HASHES: &str = include_str!("../../../aidl_api/vendor.dmaheap/2/.hash");
const SERVICE_VERSION: i32 = 2;

/// The transaction codes: FIRST_CALL_TRANSACTION + the method's index in IHeapAllocator.aidl
/// (version 2 appends its methods after version 1's), and the two codes AIDL reserves at the
/// top for every stable interface.
mod code {
    use super::FIRST_CALL_TRANSACTION as FIRST;
    pub const ALLOCATE_BY_USAGE: u32 = FIRST;
    pub const ALLOCATE_FROM_HEAP: u32 = FIRST + 1;
    pub const ALLOCATE_ION: u32 = FIRST + 2;
    pub const ALLOCATE_BATCH: u32 = FIRST + 3;
    pub const LIST_HEAPS: u32 = FIRST + 4;
    pub const RESOLVE_USAGE: u32 = FIRST + 5;
    pub const RESOLVE_ION: u32 = FIRST + 6;
    pub const GET_STATS: u32 = FIRST + 7;
    pub const ALLOCATE: u32 = FIRST + 8;
    pub const ALLOCATE_BATCH_FOR: u32 = FIRST + 9;
    pub const RESOLVE: u32 = FIRST + 10;
    pub const DELEGATE: u32 = FIRST + 11;
    /// A method a version-3 client could call (one past version 2's last).
    pub const NEXT_VERSION_METHOD: u32 = FIRST + 12;
    pub const GET_INTERFACE_HASH: u32 = FIRST + 16_777_213;
    pub const GET_INTERFACE_VERSION: u32 = FIRST + 16_777_214;
}

/// `HeapSelector`'s tags: its fields' indices in declaration order.
mod tag {
    pub const USAGE: i32 = 0;
    pub const HEAP_NAME: i32 = 1;
    pub const ION: i32 = 2;
}

pub struct Client {
    pub endpoint: Endpoint,
    pub handle: u32,
    broken: Option<Break>,
}

/// A decoded `AllocationResult`.
#[derive(Debug)]
struct Allocation {
    fd: OwnedFd,
    heap: String,
    size: i64,
}

impl Client {
    fn writer(&self) -> Writer {
        Writer::new(self.broken)
    }

    /// A call with the IHeapAllocator token, `args` after it.
    fn call(&mut self, code: u32, args: impl FnOnce(&mut Writer)) -> Result<Outcome> {
        let mut w = self.writer();
        w.interface_token(dmaheap_aidl::DESCRIPTOR);
        args(&mut w);
        self.send(code, &w)
    }

    fn send(&mut self, code: u32, w: &Writer) -> Result<Outcome> {
        Ok(self
            .endpoint
            .transact(self.handle, code, TF_ACCEPT_FDS, &w.data, &w.offsets)?)
    }

    /// A call whose reply must be a parcel starting with an OK Status.
    fn call_ok(&mut self, code: u32, args: impl FnOnce(&mut Writer)) -> Result<Received> {
        let (status, reply) = self.call_status(code, args)?;
        ensure!(status == Status::Ok, "{status:?}");
        Ok(reply)
    }

    /// A call whose reply must be a parcel starting with a Status; returns it and the parcel.
    fn call_status(
        &mut self,
        code: u32,
        args: impl FnOnce(&mut Writer),
    ) -> Result<(Status, Received)> {
        let reply = expect_parcel(self.call(code, args)?)?;
        let status = Reader::new(&reply.data, &reply.offsets).status()?;
        Ok((status, reply))
    }
}

/// A transaction answered with the bare `status_t` `want` (TF_STATUS_CODE), no parcel.
fn expect_status(outcome: Outcome, want: i32) -> Result<()> {
    match outcome {
        Outcome::Status(s) if s == want => Ok(()),
        other => bail!("expected status {want}, got {other:?}"),
    }
}

fn status_after(reply: &Received) -> Result<(Status, Reader<'_>)> {
    let mut r = Reader::new(&reply.data, &reply.offsets);
    let status = r.status()?;
    Ok((status, r))
}

/// `AllocationResult`: a parcelable of {ParcelFileDescriptor fd, String heapName, long size}.
fn read_allocation(r: &mut Reader<'_>, reply: &Received) -> Result<Allocation> {
    let (fd, heap, size) = r.parcelable_body(|r, _end| {
        let fd = r.parcel_file_descriptor()?;
        let heap = r.string()?;
        let size = r.i64()?;
        Ok((fd, heap, size))
    })?;
    let fd = fd.ok_or_else(|| anyhow!("AllocationResult.fd is null"))?;
    let owned = reply
        .fds
        .iter()
        .position(|f| f.as_raw_fd() == fd)
        .ok_or_else(|| anyhow!("fd {fd} in the parcel is not one the driver installed"))?;
    let fd = reply.fds.get(owned).map(|f| f.try_clone()).transpose()?;
    Ok(Allocation {
        fd: fd.ok_or_else(|| anyhow!("fd vanished"))?,
        heap,
        size,
    })
}

/// A single `AllocationResult` after an OK status (a non-null parcelable return).
fn allocation_reply(status: Status, reply: &Received) -> Result<Allocation> {
    ensure!(status == Status::Ok, "status {status:?}");
    let (_, mut r) = status_after(reply)?;
    ensure!(r.i32()? == 1, "non-null marker of the returned parcelable");
    let allocation = read_allocation(&mut r, reply)?;
    ensure!(
        r.remaining() == 0,
        "{} bytes after the result",
        r.remaining()
    );
    Ok(allocation)
}

/// `_IOWR('H', 0x0, struct dma_heap_allocation_data)` (linux/dma-heap.h): 24 bytes.
const DMA_HEAP_IOCTL_ALLOC: u32 = 0xc018_4800;

/// `BufferDescriptor` (version 2) for a non-image buffer of `size` bytes, every field written.
fn descriptor(w: &mut Writer, usage_bits: u64, size: i64) -> &mut Writer {
    w.parcelable(|p| {
        p.i64(usage_bits as i64)
            .i32(0)
            .i32(0)
            .i32(0)
            .i32(0)
            .i64(size)
            .i32(-1)
            .i32(-1);
    })
}

fn dma_buf_len(fd: &OwnedFd) -> Result<i64> {
    // SAFETY: lseek on an fd we own; a dma-buf reports its size at SEEK_END.
    let len = unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_END) };
    ensure!(len >= 0, "lseek: {}", std::io::Error::last_os_error());
    Ok(len)
}

fn page_size() -> i64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    i64::from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as i32)
}

fn expect_service_error(status: Status, code: i32) -> Result<String> {
    match status {
        Status::ServiceSpecific { code: got, message } if got == code => {
            ensure!(!message.is_empty(), "the error has no message");
            Ok(message)
        }
        other => bail!("expected {}, got {other:?}", dmaheap_aidl::error_name(code)),
    }
}

fn find_service_pid() -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "dmaheap-service").then_some(pid)
    })
}

fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array on success.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
    ensure!(rc == 0, "pipe2: {}", std::io::Error::last_os_error());
    use std::os::fd::FromRawFd;
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn read_all(fd: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading into a live stack buffer of its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Who runs the suite, which decides the calls it may make under enforcing SELinux. Each role is
/// a caller a device has, run in that caller's domain by the enforcing phase of the test bed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Every test, as root with no SELinux policy loaded (the test bed's permissive phase).
    All,
    /// A vendor HAL client (hal_camera_default, mediacodec): every method, error path and meta
    /// transaction except DUMP and SHELL_COMMAND, and a binder of its own registered with
    /// servicemanager (as a camera provider registers itself).
    HalClient,
    /// dumpstate during a bug report, after it has dropped root to the shell uid
    /// (dumpstate.cpp DropRootUser): the interface token rules and meta transactions every
    /// caller meets first, then DUMP, which `dump_hal` lets it send.
    Dumpstate,
    /// VTS on a userdebug device: root in the `su` domain, which is permissive there
    /// (private/su.te), against the HAL in its enforcing domain, which may use su's fds and
    /// call back into su there (public/domain.te, userdebug_or_eng): the token rules and meta
    /// transactions, DUMP, SHELL_COMMAND with its result receiver, and a child switched to an
    /// app's uid, which gets EX_SECURITY from the HAL's own policy.
    Vts,
}

impl Role {
    /// The methods, error paths and meta transactions a HAL client sends.
    fn calls_methods(self) -> bool {
        matches!(self, Role::All | Role::HalClient)
    }
}

/// Runs the suite against `service` on `device`; false when a test failed.
/// `service_pid`: the service's pid as the caller knows it; looked up by name in /proc when not
/// given (a HAL client's domain may not read another domain's /proc).
pub fn run(
    device: &str,
    service: &str,
    broken: Option<Break>,
    role: Role,
    service_pid: Option<i32>,
) -> Result<bool> {
    let every_role = role == Role::All;
    let mut tap = Tap::new();
    if !every_role {
        println!("# role {role:?}: the tests of the calls this caller makes on a device");
    }
    let mut endpoint = Endpoint::open(device)?;
    let mut found = None;
    tap.test(
        "getService finds the HAL: token (Parcel::writeInterfaceToken), Status (Status::readFromParcel), binder object + stability VINTF (Parcel::unflattenBinder, finishUnflattenBinder)",
        || {
            let (object, stability) = get_service(&mut endpoint, service, broken)?;
            let object = object.ok_or_else(|| anyhow!("{service} is not registered"))?;
            ensure!(object.kind == BINDER_TYPE_HANDLE, "object type {:#x}", object.kind);
            ensure!(
                stability == wire::STABILITY_VINTF,
                "stability {stability:#x}, a @VintfStability service must arrive as VINTF (0x3f)"
            );
            found = Some(object.value as u32);
            Ok(())
        },
    );
    let Some(handle) = found else {
        tap.finish();
        bail!("cannot go on without the service");
    };
    let mut c = Client {
        endpoint,
        handle,
        broken,
    };
    let pid = service_pid.or_else(|| if every_role { find_service_pid() } else { None });
    let fds_before = if every_role { pid.map(open_fds) } else { None };

    tap.test(
        "interface token: PENALTY_GATHER policy, unset work source, SYST header, descriptor (Parcel::writeInterfaceToken) is accepted (Parcel::enforceInterface)",
        || {
            let (status, _) = c.call_status(code::LIST_HEAPS, |_| {})?;
            ensure!(status == Status::Ok, "listHeaps: {status:?}");
            Ok(())
        },
    );
    tap.test(
        "a VNDR interface-token header is refused as BAD_TYPE, a status and no parcel (Parcel::enforceInterface kHeader; ABBinder::onTransact)",
        || {
            let mut w = Writer::new(Some(Break::VndrHeader));
            w.interface_token(dmaheap_aidl::DESCRIPTOR);
            expect_status(c.send(code::LIST_HEAPS, &w)?, wire::BAD_TYPE)
        },
    );
    tap.test(
        "a wrong descriptor is refused as BAD_TYPE (Parcel::enforceInterface; ABBinder::onTransact)",
        || {
            let mut w = c.writer();
            w.interface_token("vendor.dmaheap.IHeapAllocatorX");
            expect_status(c.send(code::LIST_HEAPS, &w)?, wire::BAD_TYPE)
        },
    );
    tap.test(
        "INTERFACE_TRANSACTION answers the descriptor as a bare String16 (BBinder::onTransact)",
        || {
            let reply =
                expect_parcel(
                    c.endpoint
                        .transact(handle, INTERFACE_TRANSACTION, 0, &[], &[])?,
                )?;
            let mut r = Reader::new(&reply.data, &reply.offsets);
            let descriptor = r.string()?;
            ensure!(descriptor == dmaheap_aidl::DESCRIPTOR, "{descriptor:?}");
            ensure!(r.remaining() == 0, "{} bytes after it", r.remaining());
            Ok(())
        },
    );
    tap.test(
        "PING_TRANSACTION answers an empty parcel (BBinder::transact, pingBinder)",
        || {
            let reply =
                expect_parcel(c.endpoint.transact(handle, PING_TRANSACTION, 0, &[], &[])?)?;
            ensure!(reply.data.is_empty(), "{} bytes", reply.data.len());
            Ok(())
        },
    );
    tap.test(
        "getInterfaceVersion (FIRST_CALL_TRANSACTION + 16777214): Status then int32 2, the latest frozen version",
        || {
            let reply = c.call_ok(code::GET_INTERFACE_VERSION, |_| {})?;
            let (_, mut r) = status_after(&reply)?;
            let version = r.i32()?;
            ensure!(version == SERVICE_VERSION, "version {version}");
            Ok(())
        },
    );
    tap.test(
        "getInterfaceHash (FIRST_CALL_TRANSACTION + 16777213): Status then the frozen hash, aidl_api/vendor.dmaheap/2/.hash",
        || {
            let reply = c.call_ok(code::GET_INTERFACE_HASH, |_| {})?;
            let (_, mut r) = status_after(&reply)?;
            let hash = r.string()?;
            let frozen = SERVICE_HASHES.lines().last().unwrap_or_default().trim();
            ensure!(hash == frozen, "hash {hash:?}, frozen {frozen:?}");
            Ok(())
        },
    );
    tap.test(
        "DEBUG_PID_TRANSACTION answers the service's pid as int32 (BBinder::transact, getDebugPid)",
        || {
            let reply =
                expect_parcel(
                    c.endpoint
                        .transact(handle, DEBUG_PID_TRANSACTION, 0, &[], &[])?,
                )?;
            let got = Reader::new(&reply.data, &reply.offsets).i32()?;
            let want = pid.ok_or_else(|| anyhow!("no dmaheap-service process (--service-pid)"))?;
            ensure!(got == want, "pid {got}, the service is {want}");
            Ok(())
        },
    );
    tap.test(
        "EXTENSION_TRANSACTION without an extension answers a null binder and its stability word (BBinder::transact, writeStrongBinder(nullptr))",
        || {
            let reply = expect_parcel(c.endpoint.transact(handle, EXTENSION_TRANSACTION, 0, &[], &[])?)?;
            let mut r = Reader::new(&reply.data, &reply.offsets);
            let (object, _stability) = r.binder()?;
            ensure!(object.is_none(), "an extension: {object:?}");
            ensure!(r.remaining() == 0, "{} bytes after it", r.remaining());
            Ok(())
        },
    );
    if matches!(role, Role::All | Role::Dumpstate | Role::Vts) {
        tap.test(
            "DUMP_TRANSACTION: an fd object, argc and String16 args; the dump is written to the fd (BBinder::onTransact)",
            || dump(&mut c),
        );
    }
    if matches!(role, Role::All | Role::Vts) {
        tap.test(
            "SHELL_COMMAND_TRANSACTION: 3 fds, args, shell callback and result receiver; answered NO_ERROR with INVALID_OPERATION sent to the result receiver (BBinder::onTransact, IResultReceiver::send)",
            || shell_command(&mut c),
        );
        tap.test(
            "a caller the policy does not list (uid 10123) gets EX_SECURITY with a message, nothing allocated (Status::writeToParcel, exception path)",
            || security_exception(device, service, broken),
        );
    }
    if !role.calls_methods() {
        return Ok(tap.finish());
    }

    let page = page_size();
    tap.test(
        "allocateByUsage(long, long, String): reply Status, non-null marker, AllocationResult with its size header, ParcelFileDescriptor as 1, 0, fd object (AParcel_writeParcelFileDescriptor)",
        || {
            let (status, reply) = c.call_status(code::ALLOCATE_BY_USAGE, |w| {
                w.i64(usage::CPU_READ_OFTEN as i64).i64(5000).string16(Some("wire.usage"));
            })?;
            let a = allocation_reply(status, &reply)?;
            ensure!(a.heap == "kmod-system", "heap {}", a.heap);
            let rounded = (5000 + page - 1) / page * page;
            ensure!(a.size == rounded, "size {} for 5000 bytes, want {rounded}", a.size);
            ensure!(dma_buf_len(&a.fd)? == rounded, "the fd's size differs");
            Ok(())
        },
    );
    tap.test(
        "allocate(in BufferDescriptor, String) (version 2): the descriptor as non-null marker + int32 size header + {long, 4 x int, long, int, int} (NDK writeToParcel)",
        || {
            let (status, reply) = c.call_status(code::ALLOCATE, |w| {
                descriptor(w, usage::CPU_READ_OFTEN, 5000).string16(Some("wire.descriptor"));
            })?;
            let a = allocation_reply(status, &reply)?;
            let rounded = (5000 + page - 1) / page * page;
            ensure!(a.size >= rounded, "size {} for 5000 bytes", a.size);
            ensure!(dma_buf_len(&a.fd)? == a.size, "the fd's size differs");
            Ok(())
        },
    );
    tap.test(
        "a BufferDescriptor from an older writer (size header covering only its first 6 fields) is read with the defaults for the rest (NDK readFromParcel stops at the size header)",
        || {
            let (status, reply) = c.call_status(code::ALLOCATE, |w| {
                w.parcelable(|p| {
                    p.i64(usage::CPU_READ_OFTEN as i64)
                        .i32(0)
                        .i32(0)
                        .i32(0)
                        .i32(0)
                        .i64(4096);
                })
                .string16(Some("wire.short-descriptor"));
            })?;
            allocation_reply(status, &reply).map(drop)
        },
    );
    tap.test(
        "allocateFromHeap(String, long, String) from \"system\"",
        || {
            let (status, reply) = c.call_status(code::ALLOCATE_FROM_HEAP, |w| {
                w.string16(Some("system"))
                    .i64(page)
                    .string16(Some("wire.heap"));
            })?;
            let a = allocation_reply(status, &reply)?;
            ensure!(
                a.heap == "system" && a.size == page,
                "{} {}",
                a.heap,
                a.size
            );
            Ok(())
        },
    );
    tap.test(
        "allocateIon(in IonRequest, ...): parcelable argument as non-null marker + int32 size header + fields (AParcel_writeParcelable, NDK writeToParcel); id 0 CACHED is kmod-system",
        || {
            let (status, reply) = c.call_status(code::ALLOCATE_ION, |w| {
                w.parcelable(|p| {
                    p.i32(1).i32(consts::ION_FLAG_CACHED).i64(0);
                })
                .i64(page)
                .string16(Some("wire.ion"));
            })?;
            let a = allocation_reply(status, &reply)?;
            ensure!(a.heap == "kmod-system", "heap {}", a.heap);
            Ok(())
        },
    );
    for (selector, label, expect_heap) in [
        (tag::HEAP_NAME, "heapName \"system\"", "system"),
        (tag::USAGE, "usage CPU_READ_OFTEN", "kmod-system"),
        (tag::ION, "ion id 0 uncached", "kmod-system-uncached"),
    ] {
        tap.test(
            &format!("allocateBatch(in HeapSelector, ...): union as non-null marker + int32 tag + value (NDK union writeToParcel), {label}; reply AllocationResult[] as count + marked elements (AParcel_writeVector)"),
            || {
                let reply = c.call_ok(code::ALLOCATE_BATCH, |w| {
                    w.union(selector, |w| match selector {
                        tag::HEAP_NAME => {
                            w.string16(Some("system"));
                        }
                        tag::USAGE => {
                            w.i64(usage::CPU_READ_OFTEN as i64);
                        }
                        _ => {
                            w.parcelable(|p| {
                                p.i32(1).i32(0).i64(0);
                            });
                        }
                    })
                    .i64(page)
                    .i32(3)
                    .string16(Some("wire.batch"));
                })?;
                let (_, mut r) = status_after(&reply)?;
                let count = r.i32()?;
                ensure!(count == 3, "{count} results");
                for i in 0..count {
                    ensure!(r.i32()? == 1, "element {i}: non-null marker");
                    let a = read_allocation(&mut r, &reply)?;
                    ensure!(a.heap == expect_heap, "element {i} from {}", a.heap);
                }
                ensure!(r.remaining() == 0, "{} bytes after the array", r.remaining());
                ensure!(reply.fds.len() == 3, "{} fds arrived", reply.fds.len());
                Ok(())
            },
        );
    }
    tap.test(
        "allocateBatchFor(in BufferDescriptor, int, String) (version 2): AllocationResult[] of 2",
        || {
            let reply = c.call_ok(code::ALLOCATE_BATCH_FOR, |w| {
                descriptor(w, usage::CPU_READ_OFTEN, page)
                    .i32(2)
                    .string16(Some("wire.batch-for"));
            })?;
            let (_, mut r) = status_after(&reply)?;
            let count = r.i32()?;
            ensure!(count == 2, "{count} results");
            for i in 0..count {
                ensure!(r.i32()? == 1, "element {i}: non-null marker");
                read_allocation(&mut r, &reply)?;
            }
            ensure!(
                r.remaining() == 0,
                "{} bytes after the array",
                r.remaining()
            );
            Ok(())
        },
    );
    tap.test(
        "resolve(in BufferDescriptor) (version 2): the same Resolution as resolveUsage for the same usage",
        || {
            let usage_bits = usage::GPU_TEXTURE | usage::VIDEO_DECODER;
            let reply = c.call_ok(code::RESOLVE, |w| {
                descriptor(w, usage_bits, page);
            })?;
            let (_, mut r) = status_after(&reply)?;
            ensure!(r.i32()? == 1, "non-null marker");
            let (heap, _, rule) = read_resolution(&mut r)?;
            ensure!(rule == "no-cpu-access", "rule {rule}, heap {heap}");
            Ok(())
        },
    );
    tap.test(
        if every_role {
            "delegate(in BufferDescriptor) (version 2): @nullable DelegatedHeap as marker 1 + size header + {ParcelFileDescriptor, String, 3 x long, int, long, String}; the node allocates"
        } else {
            "delegate(in BufferDescriptor) (version 2): a HAL-only heap node is not delegated: the @nullable result is marker 0"
        },
        || {
            let reply = c.call_ok(code::DELEGATE, |w| {
                descriptor(w, usage::CPU_READ_OFTEN, page);
            })?;
            let (_, mut r) = status_after(&reply)?;
            let marker = r.i32()?;
            if !every_role {
                ensure!(marker == 0, "marker {marker}: delegated to a client that may not use it");
                ensure!(r.remaining() == 0, "{} bytes after it", r.remaining());
                return Ok(());
            }
            ensure!(marker == 1, "marker {marker}: not delegated");
            let (fd, heap, granule, max_batch, rule) = r.parcelable_body(|r, _| {
                let fd = r.parcel_file_descriptor()?;
                let heap = r.string()?;
                let granule = r.i64()?;
                let _heap_flags = r.i64()?;
                let _max_size = r.i64()?;
                let max_batch = r.i32()?;
                let _max_request = r.i64()?;
                let rule = r.string()?;
                Ok((fd, heap, granule, max_batch, rule))
            })?;
            ensure!(r.remaining() == 0, "{} bytes after the parcelable", r.remaining());
            ensure!(heap == "kmod-system" && rule == "default", "{heap} by rule {rule}");
            ensure!(granule >= page && max_batch > 0, "granule {granule}, batch {max_batch}");
            let fd = fd.ok_or_else(|| anyhow!("no node"))?;
            let node = reply
                .fds
                .iter()
                .find(|f| f.as_raw_fd() == fd)
                .ok_or_else(|| anyhow!("fd {fd} is not one the driver installed"))?;
            // DMA_HEAP_IOCTL_ALLOC on the node: the caller's own allocation.
            let mut data = [0u64; 3]; // len, then fd + fd_flags (two u32), then heap_flags
            data[0] = page as u64;
            data[1] = u64::from(libc::O_RDWR as u32 | libc::O_CLOEXEC as u32) << 32;
            // SAFETY: `data` is laid out as struct dma_heap_allocation_data (u64 len, u32 fd,
            // u32 fd_flags, u64 heap_flags) and lives across the call.
            let rc = unsafe { libc::ioctl(node.as_raw_fd(), DMA_HEAP_IOCTL_ALLOC as _, data.as_mut_ptr()) };
            ensure!(rc == 0, "DMA_HEAP_IOCTL_ALLOC on the node: {}", std::io::Error::last_os_error());
            let buf = (data[1] & 0xffff_ffff) as i32;
            // SAFETY: the kernel installed a new dma-buf fd that nothing else owns.
            let buf = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(buf) };
            ensure!(dma_buf_len(&buf)? == page, "a buffer of {} bytes", dma_buf_len(&buf)?);
            Ok(())
        },
    );
    tap.test(
        "an out-of-range union tag (3) is refused, nothing allocated (NDK union readFromParcel: BAD_VALUE)",
        || {
            let outcome = c.call(code::ALLOCATE_BATCH, |w| {
                w.i32(1).i32(3).i64(0).i64(page).i32(1).string16(Some("wire.badtag"));
            })?;
            ensure!(
                matches!(outcome, Outcome::Status(s) if s < 0),
                "got {outcome:?}"
            );
            Ok(())
        },
    );
    tap.test(
        "listHeaps(): HeapInfo[] of parcelables {String, 4 booleans as int32, int[] as count + values, String}",
        || {
            let reply = c.call_ok(code::LIST_HEAPS, |_| {})?;
            let (_, mut r) = status_after(&reply)?;
            let count = r.i32()?;
            ensure!(count > 0, "{count} heaps");
            let mut system = None;
            for _ in 0..count {
                ensure!(r.i32()? == 1, "non-null marker");
                let (name, present, ids) = r.parcelable_body(|r, _| {
                    let name = r.string()?;
                    let present = r.bool()?;
                    let _cached = r.bool()?;
                    let _contiguous = r.bool()?;
                    let _secure = r.bool()?;
                    let n = r.i32()?;
                    let mut ids = Vec::new();
                    for _ in 0..n.max(0) {
                        ids.push(r.i32()?);
                    }
                    let _description = r.string()?;
                    Ok((name, present, ids))
                })?;
                if name == "system" {
                    system = Some((present, ids));
                }
            }
            ensure!(r.remaining() == 0, "{} bytes after the array", r.remaining());
            let (present, ids) = system.ok_or_else(|| anyhow!("no \"system\" heap listed"))?;
            ensure!(present, "system not present");
            ensure!(ids.contains(&0), "ION ids of system: {ids:?}");
            Ok(())
        },
    );
    tap.test(
        "resolveUsage(long): Resolution {String, String[], String, String}; GPU_TEXTURE|VIDEO_DECODER is rule no-cpu-access",
        || {
            let reply = c.call_ok(code::RESOLVE_USAGE, |w| {
                w.i64((usage::GPU_TEXTURE | usage::VIDEO_DECODER) as i64);
            })?;
            let (_, mut r) = status_after(&reply)?;
            ensure!(r.i32()? == 1, "non-null marker");
            let (heap, candidates, rule) = read_resolution(&mut r)?;
            ensure!(rule == "no-cpu-access", "rule {rule}");
            ensure!(candidates.first() == Some(&heap), "{heap} vs {candidates:?}");
            Ok(())
        },
    );
    tap.test(
        if every_role {
            "resolveIon(in IonRequest): id 2 is the carveout"
        } else {
            "resolveIon(in IonRequest): id 2, the carveout, is refused to this client as EX_SECURITY naming the heap"
        },
        || {
            let (status, reply) = c.call_status(code::RESOLVE_ION, |w| {
                w.parcelable(|p| {
                    p.i32(1 << 2).i32(0).i64(0);
                });
            })?;
            let (_, mut r) = status_after(&reply)?;
            if !every_role {
                return match status {
                    Status::Exception { code, message }
                        if code == wire::EX_SECURITY && message.contains("kmod-carveout") =>
                    {
                        Ok(())
                    }
                    other => bail!("{other:?}"),
                };
            }
            ensure!(status == Status::Ok, "{status:?}");
            ensure!(r.i32()? == 1, "non-null marker");
            let (heap, _, _) = read_resolution(&mut r)?;
            ensure!(heap == "kmod-carveout", "heap {heap}");
            Ok(())
        },
    );
    tap.test(
        "getStats(): AllocatorStats {HeapStats[], ClientStats[], String} with nested size headers",
        || {
            let reply = c.call_ok(code::GET_STATS, |_| {})?;
            let (_, mut r) = status_after(&reply)?;
            ensure!(r.i32()? == 1, "non-null marker");
            let (heaps, our_allocations) = r.parcelable_body(|r, _| {
                let n = r.i32()?;
                let mut heaps = Vec::new();
                for _ in 0..n.max(0) {
                    r.i32()?;
                    heaps.push(r.parcelable_body(|r, _| {
                        let name = r.string()?;
                        let _allocations = r.i64()?;
                        let _bytes = r.i64()?;
                        let _failures = r.i64()?;
                        Ok(name)
                    })?);
                }
                let m = r.i32()?;
                // SAFETY: getuid has no preconditions and cannot fail.
                let our_uid = unsafe { libc::getuid() } as i32;
                let mut ours = None;
                for _ in 0..m.max(0) {
                    r.i32()?;
                    let (uid, allocations) = r.parcelable_body(|r, _| {
                        let uid = r.i32()?;
                        let allocations = r.i64()?;
                        let _bytes = r.i64()?;
                        let _errors = r.i64()?;
                        Ok((uid, allocations))
                    })?;
                    if uid == our_uid {
                        ours = Some(allocations);
                    }
                }
                let _policy = r.string()?;
                Ok((heaps, ours))
            })?;
            ensure!(heaps.iter().any(|h| h == "kmod-system"), "heaps {heaps:?}");
            ensure!(
                our_allocations.unwrap_or(0) >= 6,
                "our uid's allocations: {our_allocations:?}"
            );
            Ok(())
        },
    );

    // Error paths, as a libbinder_ndk caller sees them.
    tap.test(
        "a service error is EX_SERVICE_SPECIFIC, its message, an empty stack-trace header and the code (Status::writeToParcel): size 0 is ERROR_BAD_ARGUMENT",
        || {
            let (status, _) = c.call_status(code::ALLOCATE_BY_USAGE, |w| {
                w.i64(usage::CPU_READ_OFTEN as i64).i64(0).string16(Some("wire.zero"));
            })?;
            expect_service_error(status, consts::ERROR_BAD_ARGUMENT).map(drop)
        },
    );
    for (size, label) in [
        (i64::MAX, "2^63 - 1"),
        (i64::MIN, "-2^63"),
        (-1, "-1"),
        (-4096, "2^64 - 4096 as a long"),
    ] {
        tap.test(
            &format!("size {label} is a service error, not a crash"),
            || {
                let (status, _) = c.call_status(code::ALLOCATE_BY_USAGE, |w| {
                    w.i64(usage::CPU_READ_OFTEN as i64)
                        .i64(size)
                        .string16(Some("wire.huge"));
                })?;
                ensure!(
                    matches!(status, Status::ServiceSpecific { .. }),
                    "{status:?}"
                );
                Ok(())
            },
        );
    }
    tap.test("an unknown heap is ERROR_NO_SUCH_HEAP", || {
        let (status, _) = c.call_status(code::ALLOCATE_FROM_HEAP, |w| {
            w.string16(Some("no-such-heap"))
                .i64(page)
                .string16(Some("wire.nope"));
        })?;
        expect_service_error(status, consts::ERROR_NO_SUCH_HEAP).map(drop)
    });
    tap.test(
        "PROTECTED with no secure heap is ERROR_UNSUPPORTED_USAGE",
        || {
            let (status, _) = c.call_status(code::ALLOCATE_BY_USAGE, |w| {
                w.i64(usage::PROTECTED as i64)
                    .i64(page)
                    .string16(Some("wire.protected"));
            })?;
            expect_service_error(status, consts::ERROR_UNSUPPORTED_USAGE).map(drop)
        },
    );
    for count in [-1, 0, i32::MAX] {
        tap.test(
            &format!("batch count {count} is ERROR_BAD_ARGUMENT"),
            || {
                let (status, _) = c.call_status(code::ALLOCATE_BATCH, |w| {
                    w.union(tag::HEAP_NAME, |w| {
                        w.string16(Some("system"));
                    })
                    .i64(page)
                    .i32(count)
                    .string16(Some("wire.count"));
                })?;
                expect_service_error(status, consts::ERROR_BAD_ARGUMENT).map(drop)
            },
        );
    }
    tap.test(
        "a null parcelable argument (marker 0) is refused as UNEXPECTED_NULL (AParcel_readParcelable)",
        || {
            let outcome = c.call(code::ALLOCATE_ION, |w| {
                w.i32(0).i64(page).string16(Some("wire.null"));
            })?;
            match outcome {
                Outcome::Status(s) if s == wire::UNEXPECTED_NULL => Ok(()),
                Outcome::Reply(r) => {
                    let status = Reader::new(&r.data, &r.offsets).status()?;
                    bail!("served as {status:?}")
                }
                other => bail!("got {other:?}"),
            }
        },
    );
    tap.test(
        "a String16 claiming 1 Mi units with 2 present is refused as a status, the service goes on (Parcel::readString16Inplace)",
        || {
            let outcome = c.call(code::ALLOCATE_BY_USAGE, |w| {
                w.i64(usage::CPU_READ_OFTEN as i64)
                    .i64(page)
                    .string16_claiming(1 << 20, &[b'a' as u16, b'b' as u16]);
            })?;
            ensure!(matches!(outcome, Outcome::Status(s) if s < 0), "got {outcome:?}");
            Ok(())
        },
    );
    tap.test(
        "a parcel that ends early (no debug name) is refused as a status, nothing allocated",
        || {
            let outcome = c.call(code::ALLOCATE_BY_USAGE, |w| {
                w.i64(usage::CPU_READ_OFTEN as i64).i64(page);
            })?;
            ensure!(
                matches!(outcome, Outcome::Status(s) if s < 0),
                "got {outcome:?}"
            );
            Ok(())
        },
    );
    tap.test(
        "a version-3 client's new method (FIRST_CALL_TRANSACTION + 12) gets UNKNOWN_TRANSACTION, which NDK stubs turn into the default implementation or STATUS_UNKNOWN_TRANSACTION",
        || {
            expect_status(
                c.call(code::NEXT_VERSION_METHOD, |_| {})?,
                wire::UNKNOWN_TRANSACTION,
            )
        },
    );
    tap.test(
        "a binder object is followed by its stability word (Parcel::finishFlattenBinder): a node registered with the service manager comes back with the stability it was sent with",
        || stability_round_trip(&mut c, broken),
    );
    if every_role {
        tap.test(
            "the service holds no more fds than before the suite",
            || {
                let (Some(pid), Some(before)) = (pid, fds_before) else {
                    bail!("no dmaheap-service process");
                };
                let after = open_fds(pid);
                ensure!(after <= before, "{before} fds before, {after} after");
                Ok(())
            },
        );
    }
    Ok(tap.finish())
}

fn read_resolution(r: &mut Reader<'_>) -> Result<(String, Vec<String>, String)> {
    Ok(r.parcelable_body(|r, _| {
        let heap = r.string()?;
        let n = r.i32()?;
        let mut candidates = Vec::new();
        for _ in 0..n.max(0) {
            candidates.push(r.string()?);
        }
        let rule = r.string()?;
        let _reason = r.string()?;
        Ok((heap, candidates, rule))
    })?)
}

/// The node pointer and cookie of this process's one local binder (any unique values do:
/// the driver keys the node on them and hands them back untouched).
const NODE_PTR: u64 = 0x7e57_0001;
const NODE_COOKIE: u64 = 0x7e57_0002;

fn dump(c: &mut Client) -> Result<()> {
    let (read_end, write_end) = pipe()?;
    let mut w = c.writer();
    w.file_descriptor(write_end.as_fd())
        .i32(1)
        .string16(Some("--verbose"));
    let reply = expect_parcel(c.send(DUMP_TRANSACTION, &w)?)?;
    ensure!(
        reply.data.is_empty(),
        "a dump reply has no payload, got {} bytes",
        reply.data.len()
    );
    drop(write_end);
    let text = read_all(&read_end);
    ensure!(
        text.contains(dmaheap_aidl::SERVICE_NAME),
        "dump output: {:?}",
        text.chars().take(200).collect::<String>()
    );
    Ok(())
}

fn shell_command(c: &mut Client) -> Result<()> {
    let (_in_read, in_write) = pipe()?;
    let (out_read, out_write) = pipe()?;
    let (_err_read, err_write) = pipe()?;
    let mut w = c.writer();
    // BBinder::onTransact reads plain fds (readFileDescriptor), not ParcelFileDescriptors.
    w.file_descriptor(in_write.as_fd())
        .file_descriptor(out_write.as_fd())
        .file_descriptor(err_write.as_fd())
        .i32(1)
        .string16(Some("help"))
        .null_binder()
        .local_binder(NODE_PTR, NODE_COOKIE);
    let outcome = c.send(SHELL_COMMAND_TRANSACTION, &w)?;
    let reply = match outcome {
        Outcome::Reply(r) => r,
        other => bail!("libbinder answers NO_ERROR with an empty parcel, got {other:?}"),
    };
    ensure!(
        reply.data.is_empty(),
        "{} bytes in the reply",
        reply.data.len()
    );
    drop(out_read);
    // IResultReceiver::send: a one-way call to our node with the IResultReceiver token and the
    // result code.
    c.endpoint.enter_looper()?;
    let call = c.endpoint.next_transaction(Some(Duration::from_secs(5)))?;
    ensure!(call.flags & TF_ONE_WAY != 0, "send() is one-way");
    ensure!(
        call.target_cookie == NODE_COOKIE,
        "delivered to cookie {:#x}",
        call.target_cookie
    );
    let mut r = Reader::new(&call.data, &call.offsets);
    r.i32()?;
    r.i32()?;
    let header = r.i32()? as u32;
    ensure!(header == wire::HEADER_SYST, "header {header:#x}");
    let token = r.string()?;
    ensure!(
        token == "com.android.internal.os.IResultReceiver",
        "token {token}"
    );
    let result = r.i32()?;
    ensure!(result == wire::INVALID_OPERATION, "result {result}");
    Ok(())
}

fn stability_round_trip(c: &mut Client, broken: Option<Break>) -> Result<()> {
    let name = "testbed.wire.IProbe/stability";
    add_service_to_rsb_hub(&mut c.endpoint, name, NODE_PTR, NODE_COOKIE, broken)?;
    let (object, stability) = get_service(&mut c.endpoint, name, None)?;
    let object = object.ok_or_else(|| anyhow!("not found after addService"))?;
    ensure!(
        object.kind == BINDER_TYPE_BINDER && object.value == NODE_PTR,
        "our own node comes back as itself, got {object:?}"
    );
    ensure!(
        stability == wire::STABILITY_SYSTEM,
        "sent SYSTEM (0xc), got {stability:#x}"
    );
    Ok(())
}

/// The same allocation as a uid no heap lists, in a child process (binder identifies the
/// caller by the process's credentials at the call).
fn security_exception(device: &str, service: &str, broken: Option<Break>) -> Result<()> {
    const APP_UID: u32 = 10123;
    // SAFETY: fork in this single-threaded test process; the child only does binder calls and
    // _exit.
    let pid = unsafe { libc::fork() };
    ensure!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let verdict = (|| -> Result<()> {
            // SAFETY: setuid in the child, which has no other threads.
            ensure!(unsafe { libc::setuid(APP_UID) } == 0, "setuid");
            let mut endpoint = Endpoint::open(device)?;
            let (object, _) = get_service(&mut endpoint, service, broken)?;
            let handle = object.ok_or_else(|| anyhow!("not found"))?.value as u32;
            let mut c = Client {
                endpoint,
                handle,
                broken,
            };
            let (status, reply) = c.call_status(code::ALLOCATE_FROM_HEAP, |w| {
                w.string16(Some("kmod-carveout"))
                    .i64(page_size())
                    .string16(Some("wire.app"));
            })?;
            ensure!(reply.fds.is_empty(), "an fd was handed out");
            match status {
                Status::Exception { code, message } if code == wire::EX_SECURITY => {
                    ensure!(message.contains("kmod-carveout"), "message {message:?}");
                    Ok(())
                }
                other => bail!("got {other:?}"),
            }
        })();
        if let Err(e) = &verdict {
            eprintln!("# {e:#}");
        }
        // SAFETY: leaving the forked child without running the parent's destructors.
        unsafe { libc::_exit(i32::from(verdict.is_err())) };
    }
    let mut wstatus = 0;
    // SAFETY: waiting for the child just forked.
    unsafe { libc::waitpid(pid, &mut wstatus, 0) };
    ensure!(
        libc::WIFEXITED(wstatus) && libc::WEXITSTATUS(wstatus) == 0,
        "the child failed (status {wstatus:#x})"
    );
    Ok(())
}
