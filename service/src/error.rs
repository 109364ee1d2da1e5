//! The errors a client can get: each tied to one service-specific code of the AIDL interface,
//! except a denial, which is binder's own `EX_SECURITY`.

use dmaheap_aidl::consts;

/// Which `IHeapAllocator.ERROR_*` code an error is reported with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    BadArgument,
    NoSuchHeap,
    UnsupportedUsage,
    OutOfMemory,
    QuotaExceeded,
    Internal,
    /// Too many of this uid's calls are in flight (`ERROR_BUSY`).
    Busy,
    /// The policy does not let this caller use the heap: `EX_SECURITY`, not a service code.
    Denied,
}

impl ErrorKind {
    /// The AIDL `ERROR_*` constant for this kind; `None` for a denial (`EX_SECURITY`).
    pub fn code(self) -> Option<i32> {
        Some(match self {
            ErrorKind::BadArgument => consts::ERROR_BAD_ARGUMENT,
            ErrorKind::NoSuchHeap => consts::ERROR_NO_SUCH_HEAP,
            ErrorKind::UnsupportedUsage => consts::ERROR_UNSUPPORTED_USAGE,
            ErrorKind::OutOfMemory => consts::ERROR_OUT_OF_MEMORY,
            ErrorKind::QuotaExceeded => consts::ERROR_QUOTA_EXCEEDED,
            ErrorKind::Internal => consts::ERROR_INTERNAL,
            ErrorKind::Busy => consts::ERROR_BUSY,
            ErrorKind::Denied => return None,
        })
    }

    /// The name logs use.
    pub fn name(self) -> &'static str {
        match self.code() {
            Some(code) => dmaheap_aidl::error_name(code),
            None => "EX_SECURITY",
        }
    }
}

/// A request the service refuses or cannot serve, with a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HalError {
    pub kind: ErrorKind,
    pub message: String,
    /// The heap a denial is about (the key of its rate-limited log line).
    pub denied_heap: Option<String>,
}

impl HalError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            denied_heap: None,
        }
    }

    pub fn denied(heap: &str, message: impl Into<String>) -> Self {
        Self {
            denied_heap: Some(heap.to_owned()),
            ..Self::new(ErrorKind::Denied, message)
        }
    }

    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Busy, message)
    }

    pub fn bad_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadArgument, message)
    }

    pub fn no_such_heap(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NoSuchHeap, message)
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::UnsupportedUsage, message)
    }

    /// The service-specific code; `None` for a denial.
    pub fn code(&self) -> Option<i32> {
        self.kind.code()
    }
}

pub type HalResult<T> = std::result::Result<T, HalError>;
