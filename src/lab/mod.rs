//! The shared experiment engine: the child sandbox, the cgroup guard and cleanup.

pub mod cgroup;
