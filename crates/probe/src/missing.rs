//! Why a sampled value is absent. Missing data is data: it is shown with its reason,
//! never as zero.

use std::borrow::Cow;
use std::fmt;
use std::io;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// A sampled value, or the reason it could not be sampled.
pub type Val<T> = Result<T, Missing>;

/// The reason a value is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The kernel refused the read; `grant` says what would allow it.
    Permission {
        /// The file the kernel refused.
        path: String,
        /// What would allow the read (root, CAP_SYS_PTRACE, ...).
        grant: &'static str,
    },
    /// The process (or thread) exited while it was being read.
    Exited,
    /// This kernel does not provide the file or field.
    NotInKernel {
        /// The file or field.
        what: Cow<'static, str>,
    },
    /// The value does not exist for this subject (a kernel thread has no memory map).
    NotApplicable {
        /// Why there is no value.
        why: &'static str,
    },
    /// The file was read but its content did not parse.
    Malformed {
        /// The file.
        path: String,
        /// What did not parse.
        detail: String,
    },
    /// Any other I/O error.
    Io {
        /// The file.
        path: String,
        /// The error number.
        errno: i32,
    },
    /// The file was not read: in a captured tree, not a regular file or a link out of
    /// the tree; anywhere, larger than the cap for its kind. `why` says which.
    Refused {
        /// The file.
        path: String,
        /// Why it was not read.
        why: String,
    },
}

impl Missing {
    /// Short machine-readable kind, used as the JSON `kind` key.
    pub fn kind(&self) -> &'static str {
        match self {
            Missing::Permission { .. } => "permission",
            Missing::Exited => "exited",
            Missing::NotInKernel { .. } => "not_in_kernel",
            Missing::NotApplicable { .. } => "not_applicable",
            Missing::Malformed { .. } => "malformed",
            Missing::Io { .. } => "io",
            Missing::Refused { .. } => "refused",
        }
    }

    /// The reason without the file path, to group the same reason over many processes.
    pub fn kind_reason(&self) -> String {
        match self {
            Missing::Permission { grant, .. } => format!("no permission ({grant})"),
            Missing::Io { errno, .. } => io::Error::from_raw_os_error(*errno).to_string(),
            Missing::Malformed { detail, .. } => format!("did not parse: {detail}"),
            Missing::Refused { why, .. } => format!("refused: {why}"),
            other => other.to_string(),
        }
    }

    /// The kernel lacks `what` (a file or a field of one).
    pub fn not_in_kernel(what: impl Into<Cow<'static, str>>) -> Self {
        Missing::NotInKernel { what: what.into() }
    }

    /// `path` was read but `detail` did not parse.
    pub fn malformed(path: impl Into<String>, detail: impl Into<String>) -> Self {
        Missing::Malformed {
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// `path` was not read, for the reason `why`.
    pub fn refused(path: impl Into<String>, why: impl Into<String>) -> Self {
        Missing::Refused {
            path: path.into(),
            why: why.into(),
        }
    }

    /// Classifies an I/O error on `path`. ENOENT is ambiguous inside /proc/PID (the
    /// process exited, or the kernel lacks the file); callers that can tell use
    /// [`Missing::Exited`] themselves.
    pub fn from_io(path: &str, err: &io::Error) -> Self {
        match err.raw_os_error() {
            Some(libc_errno::ESRCH) => Missing::Exited,
            Some(libc_errno::EACCES) | Some(libc_errno::EPERM) => Missing::Permission {
                path: path.to_owned(),
                grant: permission_hint(path),
            },
            Some(libc_errno::ENOENT) => Missing::not_in_kernel(path.to_owned()),
            Some(errno) => Missing::Io {
                path: path.to_owned(),
                errno,
            },
            None => Missing::Io {
                path: path.to_owned(),
                errno: 0,
            },
        }
    }
}

/// What would make a refused read possible, by the kind of file.
fn permission_hint(path: &str) -> &'static str {
    // Root without CAP_SYSLOG (a container) is refused the kernel log too.
    if path.contains("kmsg") {
        "needs CAP_SYSLOG or kernel.dmesg_restrict=0"
    } else if rustix::process::geteuid().is_root() {
        "refused even to root: the process is protected (not dumpable, or PID 1 of a sandbox)"
    } else if path.contains("/ns/") || path.ends_with("/ns") {
        "needs ptrace access (same user, or CAP_SYS_PTRACE)"
    } else if path.contains("slabinfo") {
        "readable by root only"
    } else if path.contains("/proc/") {
        "run as root or as the process's owner (ptrace access mode read)"
    } else {
        "run as root"
    }
}

/// errno values we branch on; rustix exposes them, but as its own type.
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const ESRCH: i32 = 3;
    pub const EACCES: i32 = 13;
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::Permission { path, grant } => {
                write!(f, "no permission to read {path}: {grant}")
            }
            Missing::Exited => f.write_str("process exited while it was read"),
            Missing::NotInKernel { what } => write!(f, "{what} is not provided by this kernel"),
            Missing::NotApplicable { why } => f.write_str(why),
            Missing::Malformed { path, detail } => write!(f, "{path} did not parse: {detail}"),
            Missing::Io { path, errno } => {
                write!(f, "{path}: {}", io::Error::from_raw_os_error(*errno))
            }
            Missing::Refused { path, why } => write!(f, "{path} refused: {why}"),
        }
    }
}

impl std::error::Error for Missing {}

impl Serialize for Missing {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Missing", 2)?;
        s.serialize_field("kind", self.kind())?;
        s.serialize_field("reason", &self.to_string())?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_classification() {
        let e = io::Error::from_raw_os_error(13);
        assert_eq!(Missing::from_io("/proc/1/ns/net", &e).kind(), "permission");
        let e = io::Error::from_raw_os_error(3);
        assert_eq!(Missing::from_io("/proc/1/stat", &e), Missing::Exited);
        let e = io::Error::from_raw_os_error(5);
        assert_eq!(Missing::from_io("/x", &e).kind(), "io");
    }

    #[test]
    fn reason_names_the_grant() {
        let e = io::Error::from_raw_os_error(13);
        let m = Missing::from_io("/proc/slabinfo", &e);
        assert!(m.to_string().contains("root"));
    }
}
