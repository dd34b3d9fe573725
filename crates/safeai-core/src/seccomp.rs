//! The sandbox seccomp profile (being written).
