//! The safe-ai domain allowlist.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]
