//! The one table that turns every failure the library reports into an errno.
//!
//! Every `dmaheap_*` call that fails returns `-errno`; the errno comes from [`TABLE`], looked up
//! by [`errno_for`]. The header (`include/dmaheap/dmaheap.h`) prints the same table for C
//! readers, and a unit test checks that each row appears there with its errno, so the two cannot
//! drift. Two kinds of failure are outside the table on purpose:
//!
//! - a kernel call the library makes on the caller's fd (`DMA_BUF_IOCTL_SYNC`,
//!   `DMA_BUF_SET_NAME`, `dup`) returns the kernel's errno unchanged;
//! - a binder transaction status that is not listed is passed through when it is a negative errno
//!   already (libbinder's `status_t` values are errno-based on Linux: `NO_INIT` is `-ENODEV`...)
//!   and is `EIO` otherwise (the `UNKNOWN_ERROR + n` family).

use dmaheap_aidl::consts;
use nix::libc;
use rsbinder::{ExceptionCode, StatusCode};

/// What failed, as far as choosing an errno is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The service refused the request with one of `IHeapAllocator`'s `ERROR_*` codes.
    Service(i32),
    /// A service-specific code this library does not know (a newer service).
    UnknownServiceCode,
    /// A binder exception (not `EX_SERVICE_SPECIFIC`, not `EX_TRANSACTION_FAILED`).
    Exception(ExceptionCode),
    /// Any other binder exception.
    UnknownException,
    /// The transaction itself failed (`EX_TRANSACTION_FAILED`) with this status.
    Transaction(StatusCode),
    /// Refused by the library before any call: NULL pointer, non-UTF-8 string, length 0 or
    /// above `PTRDIFF_MAX`, count out of 1..=MAX_BATCH_COUNT, unknown sync flags or selector.
    BadArgument,
    /// The binder driver cannot be opened or set up.
    NoBinder,
    /// The binder driver works, but the service is not registered (within the wait).
    NotRegistered,
    /// The service's reply breaks the interface (no fd, wrong number of buffers).
    BadReply,
    /// A bug in the library (a caught panic).
    Panic,
}

/// One row of the mapping.
#[derive(Debug)]
pub struct Row {
    pub cause: Cause,
    /// The name the header and logs use for the cause.
    pub label: &'static str,
    /// Positive errno; the C functions return its negation.
    pub errno: i32,
}

const fn row(cause: Cause, label: &'static str, errno: i32) -> Row {
    Row {
        cause,
        label,
        errno,
    }
}

/// Every cause and its errno. Why each errno was chosen is written in the header, next to the
/// same rows.
pub const TABLE: &[Row] = &[
    // The interface's service-specific codes (IHeapAllocator.aidl).
    row(
        Cause::Service(consts::ERROR_BAD_ARGUMENT),
        "ERROR_BAD_ARGUMENT",
        libc::EINVAL,
    ),
    row(
        Cause::Service(consts::ERROR_NO_SUCH_HEAP),
        "ERROR_NO_SUCH_HEAP",
        libc::ENOENT,
    ),
    row(
        Cause::Service(consts::ERROR_UNSUPPORTED_USAGE),
        "ERROR_UNSUPPORTED_USAGE",
        libc::EOPNOTSUPP,
    ),
    row(
        Cause::Service(consts::ERROR_OUT_OF_MEMORY),
        "ERROR_OUT_OF_MEMORY",
        libc::ENOMEM,
    ),
    row(
        Cause::Service(consts::ERROR_QUOTA_EXCEEDED),
        "ERROR_QUOTA_EXCEEDED",
        libc::EDQUOT,
    ),
    row(
        Cause::Service(consts::ERROR_INTERNAL),
        "ERROR_INTERNAL",
        libc::EIO,
    ),
    row(
        Cause::Service(consts::ERROR_BUSY),
        "ERROR_BUSY",
        libc::EBUSY,
    ),
    row(Cause::UnknownServiceCode, "other service code", libc::EIO),
    // Binder exceptions.
    row(
        Cause::Exception(ExceptionCode::Security),
        "EX_SECURITY",
        libc::EACCES,
    ),
    row(
        Cause::Exception(ExceptionCode::IllegalArgument),
        "EX_ILLEGAL_ARGUMENT",
        libc::EINVAL,
    ),
    row(
        Cause::Exception(ExceptionCode::NullPointer),
        "EX_NULL_POINTER",
        libc::EINVAL,
    ),
    row(
        Cause::Exception(ExceptionCode::UnsupportedOperation),
        "EX_UNSUPPORTED_OPERATION",
        libc::EOPNOTSUPP,
    ),
    row(
        Cause::Exception(ExceptionCode::BadParcelable),
        "EX_BAD_PARCELABLE",
        libc::EBADMSG,
    ),
    row(Cause::UnknownException, "other exception", libc::EIO),
    // Transaction failures (EX_TRANSACTION_FAILED).
    row(
        Cause::Transaction(StatusCode::DeadObject),
        "DEAD_OBJECT",
        libc::EPIPE,
    ),
    row(
        Cause::Transaction(StatusCode::FailedTransaction),
        "FAILED_TRANSACTION",
        libc::EIO,
    ),
    row(
        Cause::Transaction(StatusCode::PermissionDenied),
        "PERMISSION_DENIED",
        libc::EPERM,
    ),
    row(
        Cause::Transaction(StatusCode::BadValue),
        "BAD_VALUE",
        libc::EINVAL,
    ),
    row(
        Cause::Transaction(StatusCode::UnknownTransaction),
        "UNKNOWN_TRANSACTION",
        libc::ENOSYS,
    ),
    // The library's own.
    row(Cause::BadArgument, "bad argument", libc::EINVAL),
    row(Cause::NoBinder, "no binder driver", libc::ENXIO),
    row(Cause::NotRegistered, "service not registered", libc::ENODEV),
    row(Cause::BadReply, "malformed reply", libc::EBADMSG),
    row(Cause::Panic, "library bug", libc::ENOTRECOVERABLE),
];

/// The row for `cause`, if the table lists it.
pub fn row_for(cause: Cause) -> Option<&'static Row> {
    TABLE.iter().find(|r| r.cause == cause)
}

/// The positive errno for `cause`.
pub fn errno_for(cause: Cause) -> i32 {
    if let Some(r) = row_for(cause) {
        return r.errno;
    }
    match cause {
        Cause::Service(_) => errno_for(Cause::UnknownServiceCode),
        Cause::Exception(_) => errno_for(Cause::UnknownException),
        Cause::Transaction(code) => match i32::from(code) {
            // A status_t in errno's range is -errno already (see the module doc).
            status @ -4095..=-1 => -status,
            _ => libc::EIO,
        },
        // Every other cause has a row (a unit test checks it).
        _ => libc::EIO,
    }
}

/// The cause a binder status stands for, from the two numbers the NDK gives a C++ caller:
/// `AStatus_getExceptionCode` and, for `EX_SERVICE_SPECIFIC`, `AStatus_getServiceSpecificError`
/// or, for `EX_TRANSACTION_FAILED`, `AStatus_getStatus`. `None` for `EX_NONE`.
pub fn cause_of_status(exception: i32, code: i32) -> Option<Cause> {
    if exception == ExceptionCode::None as i32 {
        return None;
    }
    if exception == ExceptionCode::ServiceSpecific as i32 {
        return Some(Cause::Service(code));
    }
    if exception == ExceptionCode::TransactionFailed as i32 {
        return Some(Cause::Transaction(StatusCode::from(code)));
    }
    let listed = TABLE.iter().find_map(|r| match r.cause {
        Cause::Exception(e) if e as i32 == exception => Some(r.cause),
        _ => None,
    });
    Some(listed.unwrap_or(Cause::UnknownException))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errno(cause: Cause) -> i32 {
        errno_for(cause)
    }

    #[test]
    fn every_service_code_has_its_errno() {
        let expected = [
            (consts::ERROR_BAD_ARGUMENT, libc::EINVAL),
            (consts::ERROR_NO_SUCH_HEAP, libc::ENOENT),
            (consts::ERROR_UNSUPPORTED_USAGE, libc::EOPNOTSUPP),
            (consts::ERROR_OUT_OF_MEMORY, libc::ENOMEM),
            (consts::ERROR_QUOTA_EXCEEDED, libc::EDQUOT),
            (consts::ERROR_INTERNAL, libc::EIO),
            (consts::ERROR_BUSY, libc::EBUSY),
        ];
        for (code, e) in expected {
            assert_eq!(errno(Cause::Service(code)), e, "service code {code}");
            let r = row_for(Cause::Service(code)).expect("a row per code");
            assert_eq!(r.label, dmaheap_aidl::error_name(code));
        }
        // Codes 1..=7 are all the interface has: a new one would need a row.
        assert_eq!(dmaheap_aidl::error_name(8), "unknown error code");
        assert_eq!(errno(Cause::Service(8)), libc::EIO);
        assert_eq!(errno(Cause::Service(0)), libc::EIO);
        assert_eq!(errno(Cause::Service(-5)), libc::EIO);
    }

    #[test]
    fn security_and_dead_object() {
        assert_eq!(
            errno(Cause::Exception(ExceptionCode::Security)),
            libc::EACCES
        );
        assert_eq!(
            errno(Cause::Transaction(StatusCode::DeadObject)),
            libc::EPIPE
        );
        // libbinder's DEAD_OBJECT is -EPIPE on the wire too.
        assert_eq!(i32::from(StatusCode::DeadObject), -libc::EPIPE);
    }

    #[test]
    fn other_exceptions_and_statuses() {
        assert_eq!(
            errno(Cause::Exception(ExceptionCode::IllegalState)),
            libc::EIO
        );
        assert_eq!(
            errno(Cause::Exception(ExceptionCode::UnsupportedOperation)),
            libc::EOPNOTSUPP
        );
        // Unlisted statuses: errno-valued ones pass through, the UNKNOWN_ERROR family is EIO.
        assert_eq!(
            errno(Cause::Transaction(StatusCode::TimedOut)),
            libc::ETIMEDOUT
        );
        assert_eq!(
            errno(Cause::Transaction(StatusCode::NoMemory)),
            libc::ENOMEM
        );
        assert_eq!(errno(Cause::Transaction(StatusCode::Unknown)), libc::EIO);
        assert_eq!(errno(Cause::Transaction(StatusCode::BadType)), libc::EIO);
        assert_eq!(
            errno(Cause::Transaction(StatusCode::UnknownTransaction)),
            libc::ENOSYS
        );
    }

    #[test]
    fn the_library_causes() {
        assert_eq!(errno(Cause::BadArgument), libc::EINVAL);
        assert_eq!(errno(Cause::NoBinder), libc::ENXIO);
        assert_eq!(errno(Cause::NotRegistered), libc::ENODEV);
        assert_eq!(errno(Cause::BadReply), libc::EBADMSG);
        assert_eq!(errno(Cause::Panic), libc::ENOTRECOVERABLE);
    }

    #[test]
    fn rows_are_unique_and_positive() {
        for (i, a) in TABLE.iter().enumerate() {
            assert!(a.errno > 0, "{}", a.label);
            for b in &TABLE[i + 1..] {
                assert_ne!(a.cause, b.cause, "{} twice", a.label);
                assert_ne!(a.label, b.label);
            }
        }
    }

    #[test]
    fn ndk_status_numbers_map_through_the_same_table() {
        assert_eq!(cause_of_status(0, 0), None);
        assert_eq!(
            cause_of_status(-8, consts::ERROR_OUT_OF_MEMORY),
            Some(Cause::Service(consts::ERROR_OUT_OF_MEMORY))
        );
        assert_eq!(
            cause_of_status(-1, 0),
            Some(Cause::Exception(ExceptionCode::Security))
        );
        assert_eq!(
            cause_of_status(-129, -libc::EPIPE),
            Some(Cause::Transaction(StatusCode::DeadObject))
        );
        assert_eq!(cause_of_status(-5, 0), Some(Cause::UnknownException));
        assert_eq!(cause_of_status(-1000, 0), Some(Cause::UnknownException));
    }

    /// The header prints this table; each row must be there with its errno's name.
    #[test]
    fn the_header_documents_every_row() {
        let header = include_str!("../include/dmaheap/dmaheap.h");
        for r in TABLE {
            let name = format!("-{:?}", nix::errno::Errno::from_raw(r.errno));
            assert!(
                header
                    .lines()
                    .any(|l| l.contains(r.label) && l.contains(&name)),
                "dmaheap.h has no line naming {:?} with {name}",
                r.label
            );
        }
    }
}
