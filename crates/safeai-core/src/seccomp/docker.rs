//! Docker's `seccomp.json` format: the subset safe-ai writes.
//!
//! These types mirror the JSON field for field so that serde alone renders the artifact.
//! They carry no rule of their own: build a [`SeccompProfile`](super::SeccompProfile), which
//! holds the invariants, and convert it with [`SeccompProfile::to_docker`](super::SeccompProfile::to_docker).
//! They also deserialize (rejecting unknown fields), so tests can read back what was rendered.

use serde::{Deserialize, Serialize};

use super::SyscallName;

/// A whole profile, as read by Docker, Podman and runc (`--security-opt seccomp=seccomp.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DockerProfile {
    /// What happens to a syscall no entry matches.
    pub default_action: Action,
    /// The errno returned by [`Action::Errno`] as the default action; Docker assumes EPERM when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u16>,
    /// The ABIs the filter covers; the runtime refuses every syscall made through any other ABI.
    pub architectures: Vec<Architecture>,
    /// The rules, in the order they were written.
    pub syscalls: Vec<SyscallEntry>,
}

/// One rule: the syscalls it names get `action` when every condition in `args` holds.
///
/// Two entries naming the same syscall are alternatives (either may match).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyscallEntry {
    /// The syscalls this entry applies to.
    pub names: Vec<SyscallName>,
    /// What happens to a matching call.
    pub action: Action,
    /// The errno returned when `action` is [`Action::Errno`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u16>,
    /// Conditions on the arguments, all of which must hold; empty means unconditional.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgCondition>,
    /// Why the entry exists; ignored by the runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A comparison of one syscall argument with constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArgCondition {
    /// Which argument, from 0.
    pub index: u8,
    /// The operand; for [`Operator::MaskedEqual`] this is the MASK (runc passes it to libseccomp
    /// as `datum_a`, which libseccomp reads as the mask).
    pub value: u64,
    /// Only for [`Operator::MaskedEqual`]: the value the masked argument must equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_two: Option<u64>,
    /// How the argument is compared.
    pub op: Operator,
}

/// The action of a rule or of the profile's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Let the syscall run.
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    /// Fail the syscall with an errno (`errnoRet` / `defaultErrnoRet`) without running it.
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
}

/// A comparison operator of libseccomp.
///
/// All of them compare the full 64-bit register on 64-bit ABIs, even where the kernel
/// reads only an `int` from it: see [`Rule::allow_unless_u32`](super::Rule::allow_unless_u32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Operator {
    /// `arg != value`
    #[serde(rename = "SCMP_CMP_NE")]
    NotEqual,
    /// `arg < value`
    #[serde(rename = "SCMP_CMP_LT")]
    LessThan,
    /// `arg <= value`
    #[serde(rename = "SCMP_CMP_LE")]
    LessOrEqual,
    /// `arg == value`
    #[serde(rename = "SCMP_CMP_EQ")]
    Equal,
    /// `arg >= value`
    #[serde(rename = "SCMP_CMP_GE")]
    GreaterOrEqual,
    /// `arg > value`
    #[serde(rename = "SCMP_CMP_GT")]
    GreaterThan,
    /// `arg & value == valueTwo` (`value` is the mask)
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEqual,
}

/// An ABI the filter covers.
///
/// The order of the variants is the order in which they are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Architecture {
    /// 64-bit x86 (amd64).
    #[serde(rename = "SCMP_ARCH_X86_64")]
    X86_64,
    /// 32-bit x86 (i386), which amd64 kernels usually run too.
    #[serde(rename = "SCMP_ARCH_X86")]
    X86,
    /// The x32 ABI of amd64 kernels (32-bit pointers, 64-bit registers).
    #[serde(rename = "SCMP_ARCH_X32")]
    X32,
    /// 64-bit Arm (arm64), as on Apple silicon and Graviton.
    #[serde(rename = "SCMP_ARCH_AARCH64")]
    Aarch64,
    /// 32-bit Arm, which many arm64 kernels run too.
    #[serde(rename = "SCMP_ARCH_ARM")]
    Arm,
}

impl Architecture {
    /// Every ABI safe-ai targets: amd64 and arm64 hosts with their 32-bit companions.
    ///
    /// The companions must be listed: an ABI missing from the profile is not filtered more
    /// loosely, every syscall through it is refused, which would break 32-bit binaries.
    pub const ALL: [Self; 5] = [Self::X86_64, Self::X86, Self::X32, Self::Aarch64, Self::Arm];
}
