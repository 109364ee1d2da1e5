//! The library's error: what went wrong, with the message `dmaheap_last_error()` shows and the
//! errno the C call returns.

use rsbinder::{ExceptionCode, Status, StatusCode};

use crate::errno::{self, Cause};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A C argument the library refuses before any call.
    #[error("invalid argument: {0}")]
    BadArgument(String),
    /// The service refused the request with a service-specific code.
    #[error("{name} ({code}): {message}")]
    Service {
        code: i32,
        name: &'static str,
        message: String,
    },
    /// A binder exception other than a service-specific one (EX_SECURITY for a denial).
    #[error("binder exception {exception}: {message}")]
    Exception {
        exception: ExceptionCode,
        message: String,
    },
    /// The transaction failed below the interface.
    #[error("binder transaction failed: {code}{hint}")]
    Transaction {
        code: StatusCode,
        hint: &'static str,
    },
    #[error("cannot use the binder driver {device}: {reason}")]
    NoBinder { device: String, reason: String },
    #[error(
        "{} is not registered with the service manager (waited {waited_ms} ms)",
        dmaheap_aidl::SERVICE_NAME
    )]
    NotRegistered { waited_ms: u64 },
    #[error("the service's reply breaks the interface: {0}")]
    BadReply(String),
    /// A kernel call on the caller's fd failed; its errno is returned unchanged.
    #[error("{op} failed: {errno}")]
    Os {
        op: &'static str,
        errno: nix::errno::Errno,
    },
    #[error("libdmaheap bug (panic): {0}")]
    Panic(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The table's cause, or `None` for a kernel errno passed through.
    pub fn cause(&self) -> Option<Cause> {
        Some(match self {
            Error::BadArgument(_) => Cause::BadArgument,
            Error::Service { code, .. } => Cause::Service(*code),
            Error::Exception { exception, .. } => Cause::Exception(*exception),
            Error::Transaction { code, .. } => Cause::Transaction(*code),
            Error::NoBinder { .. } => Cause::NoBinder,
            Error::NotRegistered { .. } => Cause::NotRegistered,
            Error::BadReply(_) => Cause::BadReply,
            Error::Panic(_) => Cause::Panic,
            Error::Os { .. } => return None,
        })
    }

    /// The positive errno the C call reports.
    pub fn errno(&self) -> i32 {
        match (self, self.cause()) {
            (Error::Os { errno, .. }, _) => *errno as i32,
            (_, Some(cause)) => errno::errno_for(cause),
            (_, None) => nix::libc::EIO,
        }
    }

    /// The dead-object failure after which the library looks the service up again.
    pub fn is_dead_object(&self) -> bool {
        matches!(
            self,
            Error::Transaction {
                code: StatusCode::DeadObject,
                ..
            }
        )
    }

    /// A method the service's interface version does not have (a version-1 service asked for
    /// a version-2 call): libbinder's UNKNOWN_TRANSACTION.
    pub fn is_unknown_transaction(&self) -> bool {
        matches!(
            self,
            Error::Transaction {
                code: StatusCode::UnknownTransaction,
                ..
            }
        )
    }

    pub fn bad_argument(what: impl Into<String>) -> Self {
        Error::BadArgument(what.into())
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        let message = status.message().unwrap_or_default().to_owned();
        match status.exception_code() {
            ExceptionCode::ServiceSpecific => {
                let code = status.service_specific_error();
                Error::Service {
                    code,
                    name: dmaheap_aidl::error_name(code),
                    message,
                }
            }
            ExceptionCode::TransactionFailed => Error::from(status.transaction_error()),
            exception => Error::Exception { exception, message },
        }
    }
}

impl From<StatusCode> for Error {
    fn from(code: StatusCode) -> Self {
        let hint = match code {
            StatusCode::DeadObject => " (the service died)",
            StatusCode::FailedTransaction => {
                " (SELinux denying the call or the fd in the reply looks like this: check the \
                 avc log)"
            }
            _ => "",
        };
        Error::Transaction { code, hint }
    }
}

impl From<dmabuf::Error> for Error {
    fn from(e: dmabuf::Error) -> Self {
        match e {
            dmabuf::Error::Ioctl { op, errno } => Error::Os { op, errno },
            other => match other.errno() {
                Some(errno) => Error::Os {
                    op: "dma-buf call",
                    errno,
                },
                None => Error::BadArgument(other.to_string()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::libc;

    #[test]
    fn statuses_become_errors_with_their_errno() {
        let s = Status::new_service_specific_error(
            dmaheap_aidl::consts::ERROR_NO_SUCH_HEAP,
            Some("heap \"nope\" is not declared".into()),
        );
        let e = Error::from(s);
        assert_eq!(e.errno(), libc::ENOENT);
        assert_eq!(
            e.to_string(),
            "ERROR_NO_SUCH_HEAP (2): heap \"nope\" is not declared"
        );

        let s = Status::from((ExceptionCode::Security, "heap kmod-cma denied to u:r:x:s0"));
        let e = Error::from(s);
        assert_eq!(e.errno(), libc::EACCES);
        assert!(e.to_string().contains("denied to u:r:x:s0"), "{e}");

        let e = Error::from(Status::from(StatusCode::DeadObject));
        assert!(e.is_dead_object());
        assert_eq!(e.errno(), libc::EPIPE);
        assert!(e.to_string().contains("the service died"), "{e}");

        let e = Error::from(Status::from(StatusCode::FailedTransaction));
        assert!(!e.is_dead_object());
        assert_eq!(e.errno(), libc::EIO);
    }

    #[test]
    fn kernel_errnos_pass_through() {
        let e = Error::from(dmabuf::Error::Ioctl {
            op: "DMA_BUF_IOCTL_SYNC",
            errno: nix::errno::Errno::ENOTTY,
        });
        assert_eq!(e.errno(), libc::ENOTTY);
        assert_eq!(e.cause(), None);
        let e = Error::from(dmabuf::Error::NameHasNul("a\0b".into()));
        assert_eq!(e.errno(), libc::EINVAL);
    }
}
