//! Network escapes tried from inside the sandbox.

pub const CHECKS: &[(&str, crate::stack::Check)] = crate::checks![];
