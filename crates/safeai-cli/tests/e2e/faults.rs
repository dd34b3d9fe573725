//! Faults the stack must survive, and what must never be lost. Run last: they restart services.

pub const CHECKS: &[(&str, crate::stack::Check)] = crate::checks![];
