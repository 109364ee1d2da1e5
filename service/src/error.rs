//! The errors a client can get, each tied to one service-specific code of the AIDL interface.

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
}

impl ErrorKind {
    /// The AIDL constant for this kind.
    pub fn code(self) -> i32 {
        match self {
            ErrorKind::BadArgument => consts::ERROR_BAD_ARGUMENT,
            ErrorKind::NoSuchHeap => consts::ERROR_NO_SUCH_HEAP,
            ErrorKind::UnsupportedUsage => consts::ERROR_UNSUPPORTED_USAGE,
            ErrorKind::OutOfMemory => consts::ERROR_OUT_OF_MEMORY,
            ErrorKind::QuotaExceeded => consts::ERROR_QUOTA_EXCEEDED,
            ErrorKind::Internal => consts::ERROR_INTERNAL,
        }
    }
}

/// A request the service refuses or cannot serve, with a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HalError {
    pub kind: ErrorKind,
    pub message: String,
}

impl HalError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
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

    pub fn code(&self) -> i32 {
        self.kind.code()
    }
}

pub type HalResult<T> = std::result::Result<T, HalError>;
