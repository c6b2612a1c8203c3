//! The commands that turn the registry into reports: each iterates
//! [`crate::concepts::REGISTRY`] over a view of the model (or runs the labs) and returns
//! data for `render` to format. They never build a reader: the command line hands them
//! the one it built.

pub mod doctor;
pub mod explain;
pub mod inspect;
pub mod labs;
pub mod learn;
pub mod past;
pub mod system;

/// Exit statuses, the same for every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Nothing failed.
    Ok,
    /// A claim failed, or a doctor finding reached --fail-on.
    Failed,
    /// A usage error or an unreadable target.
    Usage,
    /// Stopped by this signal after cleaning up (exit 128 + signal).
    Signal(i32),
}

impl Status {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::Usage => 2,
            Status::Signal(sig) => (128 + sig).clamp(0, 255) as u8,
        }
    }
}
