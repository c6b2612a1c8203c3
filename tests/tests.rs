//! The integration tests, one target (so the library links once): each module drives
//! the real binary, or the library, against the live kernel or a recorded tree.
//! Regression tests are named after their issue and symptom.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

mod cli;
mod doctor;
mod escapes;
mod fixtures;
mod hostile_root;
mod inspect;
mod interrupt;
mod labs;
mod learn;
mod promises;
mod record;
mod root;
mod serve;
mod system;
mod top;
mod tour;
mod truth;
mod unprivileged;
mod watch;
mod width;
