//! syslens: makes the core concepts of Linux system programming visible on a real
//! machine. Data flows one way: `syslens_probe` reads the kernel, `concepts` turns
//! readings into sections per concept, `render` formats them.

pub mod cli;
pub mod concepts;
pub mod doctor;
pub mod explain;
pub mod figure;
pub mod host;
pub mod inspect;
pub mod lab;
pub mod lens;
pub mod ptable;
pub mod render;
pub mod serve;
pub mod specimen;
pub mod system;
pub mod top;
pub mod tour;
