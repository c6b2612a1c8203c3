//! The kernel's events for locking: waits for kernel locks, and futex waits.

mod futex;
mod kernel_lock;

use crate::model::event::EventSource;

/// `kernel-lock` and `futex-wait`.
pub static EVENTS: &[EventSource] = &[kernel_lock::SOURCE, futex::SOURCE];
