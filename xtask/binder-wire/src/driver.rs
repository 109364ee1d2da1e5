//! The binder driver as libbinder's `IPCThreadState` and `ProcessState` drive it, written from
//! the kernel's uAPI (`include/uapi/linux/android/binder.h`, 64-bit layout: both test-bed
//! architectures and every GKI phone are 64-bit) without rsbinder: one endpoint, one thread.
//!
//! What goes over it is plain bytes and object offsets; [`crate::wire`] says what the bytes mean.

use std::collections::VecDeque;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// `_IOC(dir, type, nr, size)` of `include/uapi/asm-generic/ioctl.h` (x86 and arm64 alike).
const fn ioc(dir: u32, kind: u8, nr: u8, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | ((kind as u32) << 8) | nr as u32
}
const fn io(kind: u8, nr: u8) -> u32 {
    ioc(0, kind, nr, 0)
}
const fn iow<T>(kind: u8, nr: u8) -> u32 {
    ioc(1, kind, nr, std::mem::size_of::<T>())
}
const fn ior<T>(kind: u8, nr: u8) -> u32 {
    ioc(2, kind, nr, std::mem::size_of::<T>())
}
const fn iowr<T>(kind: u8, nr: u8) -> u32 {
    ioc(3, kind, nr, std::mem::size_of::<T>())
}

/// `struct binder_write_read`.
#[repr(C)]
#[derive(Default)]
struct WriteRead {
    write_size: u64,
    write_consumed: u64,
    write_buffer: u64,
    read_size: u64,
    read_consumed: u64,
    read_buffer: u64,
}

/// `struct binder_transaction_data` with the `ptr` arm of its data union.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct TransactionData {
    /// `target.handle` when sending, `target.ptr` (the node's binder pointer) when receiving.
    pub target: u64,
    pub cookie: u64,
    pub code: u32,
    pub flags: u32,
    pub sender_pid: i32,
    pub sender_euid: u32,
    pub data_size: u64,
    pub offsets_size: u64,
    pub buffer: u64,
    pub offsets: u64,
}

impl TransactionData {
    /// A transaction or reply to send: the driver copies `data` and `offsets` from our memory.
    fn outgoing(target: u64, code: u32, flags: u32, data: &[u8], offsets: &[u64]) -> Self {
        Self {
            target,
            code,
            flags,
            data_size: data.len() as u64,
            offsets_size: std::mem::size_of_val(offsets) as u64,
            buffer: data.as_ptr() as u64,
            offsets: offsets.as_ptr() as u64,
            ..Default::default()
        }
    }
}

/// `struct binder_transaction_data_secctx`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct TransactionDataSecctx {
    data: TransactionData,
    secctx: u64,
}

/// `struct binder_ptr_cookie`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PtrCookie {
    ptr: u64,
    cookie: u64,
}

/// `struct binder_pri_ptr_cookie`.
#[repr(C)]
struct PriPtrCookie {
    priority: i32,
    ptr: u64,
    cookie: u64,
}

/// `struct flat_binder_object` (also the layout of `binder_fd_object`: type, flags, a 64-bit
/// union holding the binder pointer, the handle or the fd, and the cookie).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct FlatObject {
    pub kind: u32,
    pub flags: u32,
    /// `binder` for BINDER_TYPE_BINDER, `handle` (low 32 bits) for HANDLE, `fd` for FD.
    pub value: u64,
    pub cookie: u64,
}

/// `struct binder_version`.
#[repr(C)]
struct Version {
    protocol_version: i32,
}

/// `struct binderfs_device` (`include/uapi/linux/android/binderfs.h`).
#[repr(C)]
struct BinderfsDevice {
    name: [u8; 256],
    major: u32,
    minor: u32,
}

pub const FLAT_OBJECT_SIZE: usize = std::mem::size_of::<FlatObject>();

const fn pack_chars(a: u8, b: u8, c: u8, d: u8) -> u32 {
    ((a as u32) << 24) | ((b as u32) << 16) | ((c as u32) << 8) | d as u32
}
/// `B_TYPE_LARGE`.
const TYPE_LARGE: u8 = 0x85;
pub const BINDER_TYPE_BINDER: u32 = pack_chars(b's', b'b', b'*', TYPE_LARGE);
pub const BINDER_TYPE_HANDLE: u32 = pack_chars(b's', b'h', b'*', TYPE_LARGE);
pub const BINDER_TYPE_FD: u32 = pack_chars(b'f', b'd', b'*', TYPE_LARGE);

pub const FLAT_BINDER_FLAG_ACCEPTS_FDS: u32 = 0x100;
pub const FLAT_BINDER_FLAG_TXN_SECURITY_CTX: u32 = 0x1000;
/// Android's common kernel only (binder.h of ACK): a real-time caller's priority carries over to
/// the thread serving it. Upstream Linux ignores the bit and passes the flags word on as sent.
pub const FLAT_BINDER_FLAG_INHERIT_RT: u32 = 0x800;

pub const TF_ONE_WAY: u32 = 0x01;
pub const TF_STATUS_CODE: u32 = 0x08;
pub const TF_ACCEPT_FDS: u32 = 0x10;

const BINDER_CURRENT_PROTOCOL_VERSION: i32 = 8;

/// `IBinder::PING_TRANSACTION` and friends: `B_PACK_CHARS('_', 'P', 'N', 'G')` ...
pub const PING_TRANSACTION: u32 = u32::from_be_bytes(*b"_PNG");
pub const DUMP_TRANSACTION: u32 = u32::from_be_bytes(*b"_DMP");
pub const SHELL_COMMAND_TRANSACTION: u32 = u32::from_be_bytes(*b"_CMD");
pub const INTERFACE_TRANSACTION: u32 = u32::from_be_bytes(*b"_NTF");
pub const EXTENSION_TRANSACTION: u32 = u32::from_be_bytes(*b"_EXT");
pub const DEBUG_PID_TRANSACTION: u32 = u32::from_be_bytes(*b"_PID");
pub const FIRST_CALL_TRANSACTION: u32 = 1;

/// The descriptor the nodes of this endpoint answer INTERFACE_TRANSACTION with.
pub const LOCAL_DESCRIPTOR: &str = "testbed.wire.IProbe";
const BINDER_WRITE_READ: u32 = iowr::<WriteRead>(b'b', 1);
const BINDER_SET_MAX_THREADS: u32 = iow::<u32>(b'b', 5);
const BINDER_VERSION: u32 = iowr::<Version>(b'b', 9);
const BINDER_SET_CONTEXT_MGR_EXT: u32 = iow::<FlatObject>(b'b', 13);
const BINDER_CTL_ADD: u32 = iowr::<BinderfsDevice>(b'b', 1);

pub const BC_TRANSACTION: u32 = iow::<TransactionData>(b'c', 0);
pub const BC_REPLY: u32 = iow::<TransactionData>(b'c', 1);
const BC_FREE_BUFFER: u32 = iow::<u64>(b'c', 3);
const BC_INCREFS: u32 = iow::<u32>(b'c', 4);
const BC_ACQUIRE: u32 = iow::<u32>(b'c', 5);
const BC_INCREFS_DONE: u32 = iow::<PtrCookie>(b'c', 8);
const BC_ACQUIRE_DONE: u32 = iow::<PtrCookie>(b'c', 9);
const BC_ENTER_LOOPER: u32 = io(b'c', 12);

pub const BR_ERROR: u32 = ior::<i32>(b'r', 0);
const BR_OK: u32 = io(b'r', 1);
const BR_TRANSACTION_SEC_CTX: u32 = ior::<TransactionDataSecctx>(b'r', 2);
pub const BR_TRANSACTION: u32 = ior::<TransactionData>(b'r', 2);
pub const BR_REPLY: u32 = ior::<TransactionData>(b'r', 3);
const BR_DEAD_REPLY: u32 = io(b'r', 5);
pub const BR_TRANSACTION_COMPLETE: u32 = io(b'r', 6);
const BR_INCREFS: u32 = ior::<PtrCookie>(b'r', 7);
const BR_ACQUIRE: u32 = ior::<PtrCookie>(b'r', 8);
const BR_RELEASE: u32 = ior::<PtrCookie>(b'r', 9);
const BR_DECREFS: u32 = ior::<PtrCookie>(b'r', 10);
const BR_ATTEMPT_ACQUIRE: u32 = ior::<PriPtrCookie>(b'r', 11);
pub const BR_NOOP: u32 = io(b'r', 12);
const BR_SPAWN_LOOPER: u32 = io(b'r', 13);
const BR_DEAD_BINDER: u32 = ior::<u64>(b'r', 15);
const BR_CLEAR_DEATH_NOTIFICATION_DONE: u32 = ior::<u64>(b'r', 16);
const BR_FAILED_REPLY: u32 = io(b'r', 17);
const BR_FROZEN_REPLY: u32 = io(b'r', 18);
const BR_ONEWAY_SPAM_SUSPECT: u32 = io(b'r', 19);
const BR_TRANSACTION_PENDING_FROZEN: u32 = io(b'r', 20);

/// The receive area, as libbinder's `ProcessState` maps it (`BINDER_VM_SIZE`: 1 MiB - 2 pages).
const MAP_SIZE: usize = 1024 * 1024 - 2 * 4096;

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{what}: {source}")]
    Os {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("binder protocol version {0}, expected {BINDER_CURRENT_PROTOCOL_VERSION}")]
    Version(i32),
    #[error("the driver sent BR_ERROR {0}")]
    BrError(i32),
    #[error("the driver sent {0:#x}, which this endpoint does not handle here")]
    Unexpected(u32),
    #[error("no transaction within {0:?}")]
    Timeout(Duration),
    #[error("a reply or transaction record is truncated")]
    Truncated,
}

pub type Result<T> = std::result::Result<T, DriverError>;

fn os(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DriverError {
    let what = what.into();
    move |source| DriverError::Os { what, source }
}

/// A transaction or reply as the driver delivered it, copied out of the receive area (whose
/// buffer has been handed back with BC_FREE_BUFFER by then).
#[derive(Debug, Default)]
pub struct Received {
    pub code: u32,
    pub flags: u32,
    pub sender_pid: i32,
    pub sender_euid: u32,
    /// The node's cookie for a transaction (0 for the context manager).
    pub target_cookie: u64,
    /// The sender's SELinux context, when the node asked for it (BR_TRANSACTION_SEC_CTX).
    pub security_context: Option<String>,
    pub data: Vec<u8>,
    pub offsets: Vec<u64>,
    /// File descriptors the driver installed for BINDER_TYPE_FD objects: ours to close.
    pub fds: Vec<OwnedFd>,
}

/// How a transaction ended, as `IPCThreadState::waitForResponse` tells the cases apart.
#[derive(Debug)]
pub enum Outcome {
    /// BR_REPLY with a parcel.
    Reply(Received),
    /// BR_REPLY with TF_STATUS_CODE: the handler returned this `status_t` instead of a parcel.
    Status(i32),
    /// BR_DEAD_REPLY: the target process is gone (`DEAD_OBJECT`).
    DeadReply,
    /// BR_FAILED_REPLY: the driver could not deliver it (`FAILED_TRANSACTION`).
    FailedReply,
    /// A one-way call was queued (BR_TRANSACTION_COMPLETE, no reply).
    Sent,
}

/// One open binder device with its receive area.
pub struct Endpoint {
    fd: OwnedFd,
    map: *mut libc::c_void,
    /// Commands to send with the next BINDER_WRITE_READ.
    pending: Vec<u8>,
    /// Incoming transactions read while waiting for something else.
    incoming: VecDeque<Received>,
    /// The outcome of our own call, when it arrived while we were answering a nested one.
    stashed: Option<Outcome>,
    /// Received buffers not handed back yet: freed with the next command we send, after the
    /// caller had its chance to take references on handles in them (a buffer's handles lose
    /// the references the driver took for them when it is freed, as in libbinder, where the
    /// reply Parcel is destroyed after `readStrongBinder` made its BpBinder).
    unfreed: Vec<u64>,
}

// SAFETY: the mapping is only read through `&mut self` methods, and the driver owns its contents.
unsafe impl Send for Endpoint {}

fn push_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_ne_bytes());
}

fn push_struct<T: Copy>(out: &mut Vec<u8>, value: &T) {
    // SAFETY: T is a plain #[repr(C)] uAPI struct with no padding-dependent invariants; reading
    // its bytes (padding included, zeroed by Default) is what the driver does with it.
    let bytes = unsafe {
        std::slice::from_raw_parts(value as *const T as *const u8, std::mem::size_of::<T>())
    };
    out.extend_from_slice(bytes);
}

fn read_struct<T: Copy + Default>(bytes: &[u8]) -> Result<T> {
    if bytes.len() < std::mem::size_of::<T>() {
        return Err(DriverError::Truncated);
    }
    let mut value = T::default();
    // SAFETY: `bytes` holds at least size_of::<T>() bytes, T is plain data for which every bit
    // pattern is valid (integers only), and the destination is a properly aligned T.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            &mut value as *mut T as *mut u8,
            std::mem::size_of::<T>(),
        )
    };
    Ok(value)
}

/// Adds a device named `name` to the binderfs instance whose control node is `control`
/// (what `rsb_device` and Android's init do), so each context manager gets its own device.
pub fn add_binderfs_device(control: &str, name: &str) -> Result<String> {
    let control_fd = open(control)?;
    let mut device = BinderfsDevice {
        name: [0; 256],
        major: 0,
        minor: 0,
    };
    let bytes = name.as_bytes();
    let len = bytes.len().min(255);
    device.name[..len].copy_from_slice(&bytes[..len]);
    // SAFETY: BINDER_CTL_ADD reads and writes exactly one binderfs_device, which `device` is.
    let rc = unsafe { libc::ioctl(control_fd.as_raw_fd(), BINDER_CTL_ADD as _, &mut device) };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EEXIST) {
            return Err(os(format!("BINDER_CTL_ADD {name}"))(err));
        }
    }
    let dir = std::path::Path::new(control)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    Ok(format!("{dir}/{name}"))
}

fn open(path: &str) -> Result<OwnedFd> {
    let c_path = CString::new(path).map_err(|_| DriverError::Truncated)?;
    // SAFETY: a valid NUL-terminated path; the returned fd is checked before it is owned.
    let fd = unsafe { libc::open(c_path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(os(format!("open {path}"))(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just returned by open and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Endpoint {
    /// Opens `path`, checks the protocol version and maps the receive area, as
    /// `ProcessState::open_driver` and its constructor do.
    pub fn open(path: &str) -> Result<Self> {
        let fd = open(path)?;
        let mut version = Version {
            protocol_version: 0,
        };
        // SAFETY: BINDER_VERSION writes one binder_version into `version`.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), BINDER_VERSION as _, &mut version) };
        if rc < 0 {
            return Err(os("BINDER_VERSION")(std::io::Error::last_os_error()));
        }
        if version.protocol_version != BINDER_CURRENT_PROTOCOL_VERSION {
            return Err(DriverError::Version(version.protocol_version));
        }
        let max_threads: u32 = 0;
        // SAFETY: BINDER_SET_MAX_THREADS reads one u32.
        unsafe { libc::ioctl(fd.as_raw_fd(), BINDER_SET_MAX_THREADS as _, &max_threads) };
        // SAFETY: a fresh read-only private mapping of the binder fd, as the driver requires;
        // the result is checked against MAP_FAILED.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MAP_SIZE,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(os("mmap of the binder receive area")(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(Self {
            fd,
            map,
            pending: Vec::new(),
            incoming: VecDeque::new(),
            stashed: None,
            unfreed: Vec::new(),
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Registers as the device's context manager (handle 0), asking for callers' SELinux
    /// contexts as servicemanager does (`BINDER_SET_CONTEXT_MGR_EXT` with TXN_SECURITY_CTX).
    pub fn become_context_manager(&mut self) -> Result<()> {
        let object = FlatObject {
            flags: FLAT_BINDER_FLAG_TXN_SECURITY_CTX,
            ..Default::default()
        };
        // SAFETY: BINDER_SET_CONTEXT_MGR_EXT reads one flat_binder_object.
        let rc = unsafe { libc::ioctl(self.raw_fd(), BINDER_SET_CONTEXT_MGR_EXT as _, &object) };
        if rc < 0 {
            return Err(os("BINDER_SET_CONTEXT_MGR_EXT")(
                std::io::Error::last_os_error(),
            ));
        }
        push_u32(&mut self.pending, BC_ENTER_LOOPER);
        self.flush()
    }

    /// Makes this thread a looper, so the driver hands it transactions for the process (a
    /// one-way call to a node of ours, for instance).
    pub fn enter_looper(&mut self) -> Result<()> {
        push_u32(&mut self.pending, BC_ENTER_LOOPER);
        self.flush()
    }

    /// Takes a strong reference on `handle` (BC_INCREFS + BC_ACQUIRE, as a new `BpBinder`
    /// does), so it outlives the buffer it arrived in.
    pub fn acquire(&mut self, handle: u32) -> Result<()> {
        push_u32(&mut self.pending, BC_INCREFS);
        push_u32(&mut self.pending, handle);
        push_u32(&mut self.pending, BC_ACQUIRE);
        push_u32(&mut self.pending, handle);
        self.flush()
    }

    fn write_read(&mut self, read: Option<&mut [u8]>) -> Result<usize> {
        for buffer in std::mem::take(&mut self.unfreed) {
            push_u32(&mut self.pending, BC_FREE_BUFFER);
            self.pending.extend_from_slice(&buffer.to_ne_bytes());
        }
        let mut bwr = WriteRead {
            write_size: self.pending.len() as u64,
            write_buffer: self.pending.as_ptr() as u64,
            ..Default::default()
        };
        if let Some(read) = read {
            bwr.read_size = read.len() as u64;
            bwr.read_buffer = read.as_mut_ptr() as u64;
        }
        loop {
            // SAFETY: `bwr` points at `self.pending` (write_size bytes) and the read buffer
            // (read_size bytes), both alive and exclusively borrowed for the call.
            let rc = unsafe { libc::ioctl(self.raw_fd(), BINDER_WRITE_READ as _, &mut bwr) };
            if rc >= 0 {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(os("BINDER_WRITE_READ")(err));
            }
        }
        let consumed = usize::try_from(bwr.write_consumed).unwrap_or(usize::MAX);
        self.pending.drain(..consumed.min(self.pending.len()));
        Ok(usize::try_from(bwr.read_consumed).unwrap_or(0))
    }

    fn flush(&mut self) -> Result<()> {
        while !self.pending.is_empty() {
            self.write_read(None)?;
        }
        Ok(())
    }

    /// Copies a delivered buffer out of the receive area and frees it.
    fn take_buffer(&mut self, td: &TransactionData, secctx: u64) -> Result<Received> {
        let base = self.map as u64;
        let within = |ptr: u64, len: u64| {
            ptr >= base
                && ptr
                    .checked_add(len)
                    .is_some_and(|end| end <= base + MAP_SIZE as u64)
        };
        if !within(td.buffer, td.data_size) || !within(td.offsets, td.offsets_size) {
            return Err(DriverError::Truncated);
        }
        // SAFETY: the driver placed data_size bytes at `buffer` and offsets_size bytes at
        // `offsets` inside our mapping (checked just above); they stay valid until the
        // BC_FREE_BUFFER queued below is sent.
        let data = unsafe {
            std::slice::from_raw_parts(td.buffer as *const u8, td.data_size as usize).to_vec()
        };
        // SAFETY: as above, for the offsets array (u64 entries, 8-aligned by the driver).
        let offsets = unsafe {
            std::slice::from_raw_parts(td.offsets as *const u64, (td.offsets_size / 8) as usize)
                .to_vec()
        };
        let security_context = if secctx != 0 && within(secctx, 1) {
            // SAFETY: the driver writes the NUL-terminated context inside the same buffer.
            let c = unsafe { std::ffi::CStr::from_ptr(secctx as *const libc::c_char) };
            Some(c.to_string_lossy().into_owned())
        } else {
            None
        };
        let mut fds = Vec::new();
        for &offset in &offsets {
            let Some(bytes) = data.get(offset as usize..) else {
                continue;
            };
            if let Ok(object) = read_struct::<FlatObject>(bytes) {
                if object.kind == BINDER_TYPE_FD {
                    // SAFETY: the driver installed this fd in our table for this buffer; a
                    // delivered transaction's fds belong to the receiver.
                    fds.push(unsafe { OwnedFd::from_raw_fd(object.value as RawFd) });
                }
            }
        }
        self.unfreed.push(td.buffer);
        Ok(Received {
            code: td.code,
            flags: td.flags,
            sender_pid: td.sender_pid,
            sender_euid: td.sender_euid,
            target_cookie: td.cookie,
            security_context,
            data,
            offsets,
            fds,
        })
    }

    /// Reads and handles driver commands until `want` says stop; reference-count requests on
    /// our nodes are acknowledged as libbinder's `executeCommand` does.
    fn pump(
        &mut self,
        timeout: Option<Duration>,
        mut want: impl FnMut(Event) -> bool,
    ) -> Result<()> {
        let mut buf = vec![0u8; 4096];
        loop {
            if let Some(timeout) = timeout {
                self.flush()?;
                let mut pfd = libc::pollfd {
                    fd: self.raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
                // SAFETY: one valid pollfd.
                let n = unsafe { libc::poll(&mut pfd, 1, ms) };
                if n == 0 {
                    return Err(DriverError::Timeout(timeout));
                }
            }
            let len = self.write_read(Some(&mut buf))?;
            // Every command of this read is handled, even after the awaited one.
            let mut done = false;
            let mut at = 0usize;
            while at + 4 <= len {
                let cmd = u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
                at += 4;
                let size = ((cmd >> 16) & 0x3fff) as usize;
                let payload = buf
                    .get(at..at + size)
                    .ok_or(DriverError::Truncated)?
                    .to_vec();
                at += size;
                let event = match cmd {
                    BR_NOOP
                    | BR_OK
                    | BR_SPAWN_LOOPER
                    | BR_ONEWAY_SPAM_SUSPECT
                    | BR_TRANSACTION_PENDING_FROZEN => continue,
                    BR_TRANSACTION_COMPLETE => Event::Complete,
                    BR_INCREFS | BR_ACQUIRE => {
                        let pc: PtrCookie = read_struct(&payload)?;
                        push_u32(
                            &mut self.pending,
                            if cmd == BR_INCREFS {
                                BC_INCREFS_DONE
                            } else {
                                BC_ACQUIRE_DONE
                            },
                        );
                        push_struct(&mut self.pending, &pc);
                        continue;
                    }
                    BR_RELEASE | BR_DECREFS | BR_DEAD_BINDER | BR_CLEAR_DEATH_NOTIFICATION_DONE => {
                        continue
                    }
                    BR_ATTEMPT_ACQUIRE => return Err(DriverError::Unexpected(cmd)),
                    BR_ERROR => {
                        let code: i32 = read_struct(&payload)?;
                        return Err(DriverError::BrError(code));
                    }
                    BR_DEAD_REPLY => Event::Outcome(Outcome::DeadReply),
                    BR_FAILED_REPLY | BR_FROZEN_REPLY => Event::Outcome(Outcome::FailedReply),
                    BR_REPLY => {
                        let td: TransactionData = read_struct(&payload)?;
                        let received = self.take_buffer(&td, 0)?;
                        if td.flags & TF_STATUS_CODE != 0 {
                            let status = received
                                .data
                                .get(..4)
                                .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                                .ok_or(DriverError::Truncated)?;
                            Event::Outcome(Outcome::Status(status))
                        } else {
                            Event::Outcome(Outcome::Reply(received))
                        }
                    }
                    BR_TRANSACTION => {
                        let td: TransactionData = read_struct(&payload)?;
                        let received = self.take_buffer(&td, 0)?;
                        self.incoming.push_back(received);
                        Event::Incoming
                    }
                    BR_TRANSACTION_SEC_CTX => {
                        let td: TransactionDataSecctx = read_struct(&payload)?;
                        let received = self.take_buffer(&td.data, td.secctx)?;
                        self.incoming.push_back(received);
                        Event::Incoming
                    }
                    other => return Err(DriverError::Unexpected(other)),
                };
                if want(event) {
                    done = true;
                }
            }
            if done {
                return self.flush();
            }
        }
    }

    /// Sends one transaction to `handle` and waits for its outcome (`IPCThreadState::transact`
    /// + `waitForResponse`). `data` and `offsets` are the parcel as [`crate::wire`] built it.
    pub fn transact(
        &mut self,
        handle: u32,
        code: u32,
        flags: u32,
        data: &[u8],
        offsets: &[u64],
    ) -> Result<Outcome> {
        let td = TransactionData::outgoing(u64::from(handle), code, flags, data, offsets);
        push_u32(&mut self.pending, BC_TRANSACTION);
        push_struct(&mut self.pending, &td);
        let one_way = flags & TF_ONE_WAY != 0;
        // `data` and `offsets` stay borrowed for this whole call; the first BINDER_WRITE_READ
        // below copies them into the target's buffer.
        loop {
            if let Some(outcome) = self.stashed.take() {
                return Ok(outcome);
            }
            let mut outcome = None;
            self.pump(None, |event| match event {
                Event::Complete if one_way => {
                    outcome = Some(Outcome::Sent);
                    true
                }
                Event::Outcome(o) => {
                    outcome = Some(o);
                    true
                }
                Event::Incoming => true,
                Event::Complete => false,
            })?;
            if let Some(outcome) = outcome {
                return Ok(outcome);
            }
            // A call back into one of our nodes while we wait (the target asking our binder
            // for its descriptor, say): answered at once, as libbinder's waitForResponse runs
            // executeCommand, or both sides would wait for each other.
            while let Some(nested) = self.incoming.pop_front() {
                if nested.flags & TF_ONE_WAY == 0 {
                    self.answer_meta(&nested)?;
                }
            }
        }
    }

    /// The answer a bare libbinder `BBinder` gives: PING empty, INTERFACE our descriptor,
    /// anything else UNKNOWN_TRANSACTION.
    pub fn answer_meta(&mut self, call: &Received) -> Result<()> {
        match call.code {
            PING_TRANSACTION => self.reply(&[], &[]),
            INTERFACE_TRANSACTION => {
                let mut w = crate::wire::Writer::new(None);
                w.string16(Some(LOCAL_DESCRIPTOR));
                self.reply(&w.data, &w.offsets)
            }
            _ => self.reply_status(crate::wire::UNKNOWN_TRANSACTION),
        }
    }

    /// The next incoming transaction to one of our nodes, waiting up to `timeout` (or forever).
    pub fn next_transaction(&mut self, timeout: Option<Duration>) -> Result<Received> {
        if let Some(received) = self.incoming.pop_front() {
            return Ok(received);
        }
        self.pump(timeout, |event| matches!(event, Event::Incoming))?;
        self.incoming.pop_front().ok_or(DriverError::Truncated)
    }

    /// Answers the transaction being handled with a parcel (`IPCThreadState::sendReply`).
    pub fn reply(&mut self, data: &[u8], offsets: &[u64]) -> Result<()> {
        self.send_reply(0, data, offsets)
    }

    /// Answers with a bare `status_t` (TF_STATUS_CODE), as libbinder does when the handler
    /// returns an error such as UNKNOWN_TRANSACTION.
    pub fn reply_status(&mut self, status: i32) -> Result<()> {
        let bytes = status.to_ne_bytes();
        self.send_reply(TF_STATUS_CODE, &bytes, &[])
    }

    fn send_reply(&mut self, flags: u32, data: &[u8], offsets: &[u64]) -> Result<()> {
        let td = TransactionData::outgoing(0, 0, flags, data, offsets);
        push_u32(&mut self.pending, BC_REPLY);
        push_struct(&mut self.pending, &td);
        let mut stashed = None;
        self.pump(None, |event| match event {
            Event::Complete => true,
            Event::Outcome(o) => {
                stashed = Some(o);
                false
            }
            Event::Incoming => false,
        })?;
        if stashed.is_some() {
            self.stashed = stashed;
        }
        Ok(())
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.flush();
        // SAFETY: `map` is the live mapping of MAP_SIZE bytes made in `open`.
        unsafe { libc::munmap(self.map, MAP_SIZE) };
    }
}

enum Event {
    Complete,
    Outcome(Outcome),
    Incoming,
}

/// Reads a flat object at `offset` of `data`.
pub fn object_at(data: &[u8], offset: usize) -> Option<FlatObject> {
    read_struct(data.get(offset..)?).ok()
}

/// The bytes of a flat object, for writers.
pub fn object_bytes(object: &FlatObject) -> Vec<u8> {
    let mut out = Vec::with_capacity(FLAT_OBJECT_SIZE);
    push_struct(&mut out, object);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values every binder user-space (libbinder, rsbinder, strace) prints for these.
    #[test]
    fn ioctl_and_command_codes_are_the_64_bit_uapi_values() {
        assert_eq!(BINDER_WRITE_READ, 0xc030_6201);
        assert_eq!(BINDER_VERSION, 0xc004_6209);
        assert_eq!(BINDER_SET_CONTEXT_MGR_EXT, 0x4018_620d);
        assert_eq!(BC_TRANSACTION, 0x4040_6300);
        assert_eq!(BC_REPLY, 0x4040_6301);
        assert_eq!(BC_FREE_BUFFER, 0x4008_6303);
        assert_eq!(BR_REPLY, 0x8040_7203);
        assert_eq!(BR_TRANSACTION, 0x8040_7202);
        assert_eq!(BR_TRANSACTION_SEC_CTX, 0x8048_7202);
        assert_eq!(BR_TRANSACTION_COMPLETE, 0x7206);
        assert_eq!(BR_NOOP, 0x720c);
        assert_eq!(FLAT_OBJECT_SIZE, 24);
        assert_eq!(std::mem::size_of::<TransactionData>(), 64);
        assert_eq!(BINDER_TYPE_BINDER, 0x7362_2a85);
        assert_eq!(BINDER_TYPE_HANDLE, 0x7368_2a85);
        assert_eq!(BINDER_TYPE_FD, 0x6664_2a85);
    }

    /// `struct binder_transaction_data`'s field offsets: padding would keep the size at 64 with a
    /// field missing (sender_pid once was, and the pid read as the euid).
    #[test]
    fn transaction_data_fields_sit_where_the_uapi_puts_them() {
        use std::mem::offset_of;
        assert_eq!(offset_of!(TransactionData, code), 16);
        assert_eq!(offset_of!(TransactionData, flags), 20);
        assert_eq!(offset_of!(TransactionData, sender_pid), 24);
        assert_eq!(offset_of!(TransactionData, sender_euid), 28);
        assert_eq!(offset_of!(TransactionData, data_size), 32);
        assert_eq!(offset_of!(TransactionData, offsets_size), 40);
        assert_eq!(offset_of!(TransactionData, buffer), 48);
        assert_eq!(offset_of!(TransactionData, offsets), 56);
    }
}
