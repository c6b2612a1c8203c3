//! Readers of the Linux kernel's own evidence: /proc and the cgroup file systems.
//!
//! Every reader goes through [`Reader`], which takes a root path (a captured tree in
//! tests and offline analysis) and reuses one buffer. Every sampled field is a
//! [`Val`]: the value, or [`Missing`] with the reason. Nothing here prints.
#![warn(missing_docs)]

pub mod cgroup;
pub mod container;
pub mod elf;
pub mod fds;
pub mod kallsyms;
pub mod kmsg;
pub mod limits;
pub mod locks;
mod missing;
pub mod mountinfo;
pub mod names;
pub mod ns;
pub mod parse;
pub mod process;
pub mod psi;
mod read;
pub mod sched;
pub mod smaps;
pub mod stat;
pub mod status;
pub mod system;
pub mod table;
pub mod taskstats;
pub mod trace;
pub mod tracefs;

pub use missing::{Missing, Val};
pub use read::{Files, HeldFile, PidDir, Reader};

/// Clock ticks per second for the tick fields of stat (sysconf(_SC_CLK_TCK)); 100 on
/// every Linux architecture syslens builds for, fixed by the kernel ABI (USER_HZ).
pub const USER_HZ: u64 = 100;
