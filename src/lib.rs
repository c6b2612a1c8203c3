//! syslens: makes the core concepts of Linux system programming visible on a real
//! machine. Data flows one way: `syslens_probe` reads the kernel; `model` collects the
//! views; each concept's room in `concepts` turns them into sections, findings and labs;
//! `commands` iterate the registry; `render` formats; `top`, `serve` and `tour` drive
//! them; `cli` parses flags and builds the one reader. A module imports only what sits
//! below it in that list (`catalogue` and `lab` sit below `concepts`).

#![warn(missing_docs)]

pub mod catalogue;
pub mod cli;
pub mod commands;
pub mod concepts;
pub mod lab;
pub mod learn;
pub mod model;
pub mod record;
pub mod render;
pub mod serve;
pub mod top;
pub mod tour;
pub mod watch;
