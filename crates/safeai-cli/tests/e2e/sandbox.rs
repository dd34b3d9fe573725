//! Confinement inside the sandbox, and the work that must keep working there.

pub const CHECKS: &[(&str, crate::stack::Check)] = crate::checks![];
