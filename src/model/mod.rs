//! The model: what the concepts read. Each view is collected through the reader it is
//! given (`collect(reader, ...)`), holds raw samples and the figures derived from them,
//! and knows nothing of formatting or of the command line.

pub mod doctor;
pub mod event;
pub mod figure;
pub mod host;
pub mod limits;
pub mod locks;
pub mod process;
pub mod ptable;
pub mod system;
pub mod units;
