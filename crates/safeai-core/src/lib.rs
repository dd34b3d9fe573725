//! The safe-ai stack model and the renderers of its artifacts.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod seccomp;
