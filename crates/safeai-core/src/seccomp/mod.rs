//! The sandbox's seccomp profile: a typed allowlist of syscalls, rendered to Docker's `seccomp.json`.
//!
//! [`SeccompProfile`] holds one [`Rule`] per syscall, keyed by [`SyscallName`]: a syscall is
//! allowed unconditionally, allowed under argument conditions, or refused with a chosen errno,
//! never two of these at once. That matters because libseccomp silently drops a conditional
//! rule when the same syscall also has an unconditional one, which is how argument filters
//! end up having no effect. Anything without a rule falls to the default action.
//!
//! [`SeccompProfile::sandbox`] is the profile of the safe-ai sandbox; [`DENIED_SYSCALLS`]
//! lists what it deliberately leaves out. [`render`] writes any profile as `seccomp.json`
//! through the wire types of [`DockerProfile`].

mod docker;
mod low32;
mod sandbox;

use std::borrow::{Borrow, Cow};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::num::NonZeroU16;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use docker::{Action, Architecture, ArgCondition, DockerProfile, Operator, SyscallEntry};
pub use sandbox::DENIED_SYSCALLS;

/// Everything that can be wrong in a profile under construction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeccompError {
    /// A name that cannot be a syscall: the kernel's tables use only `[a-z0-9_]`.
    #[error(
        "{name:?} is not a syscall name: use the kernel's spelling, lower-case letters, digits and `_`, as in `openat`"
    )]
    InvalidSyscallName {
        /// The rejected name.
        name: String,
    },

    /// A syscall given a second rule. Two rules for one syscall are how a conditional rule
    /// gets shadowed by an unconditional one, so the builder refuses the second.
    #[error(
        "syscall `{name}` already has a rule (in \"{first}\"): give each syscall one rule, with all its allowed argument patterns as alternatives of one `Rule::AllowIf`"
    )]
    DuplicateSyscall {
        /// The syscall named twice.
        name: SyscallName,
        /// The comment of the group that holds its first rule.
        first: String,
    },

    /// A group that names no syscall.
    #[error("group \"{comment}\" names no syscall: list at least one, or drop the group")]
    EmptyGroup {
        /// The comment of the empty group.
        comment: String,
    },

    /// A [`Rule::AllowIf`] without alternatives, which allows nothing.
    #[error(
        "the rule for `{name}` has no alternative, so it allows nothing: leave `{name}` out to deny it"
    )]
    NoAlternatives {
        /// The first syscall of the group.
        name: SyscallName,
    },

    /// An alternative without conditions, which would allow the syscall unconditionally.
    #[error(
        "an alternative of the rule for `{name}` has no condition, so it allows every call: use `Rule::Allow` if that is meant"
    )]
    EmptyAlternative {
        /// The first syscall of the group.
        name: SyscallName,
    },

    /// An alternative comparing the same argument twice. runc splits such an entry into one
    /// rule per comparison, any of which allows the call, so `arg != a && arg != b` would
    /// silently become `arg != a || arg != b`: true for every argument.
    #[error(
        "an alternative of the rule for `{name}` compares argument {index} twice, which runc turns into either-or: make each comparison its own alternative, or use `Rule::allow_unless_u32` to exclude values"
    )]
    RepeatedArgument {
        /// The first syscall of the group.
        name: SyscallName,
        /// The argument compared twice.
        index: u8,
    },

    /// A masked comparison expecting bits the mask clears, which can never match.
    #[error(
        "the rule for `{name}` expects argument {index} masked with {mask:#x} to equal {value:#x}, which has bits outside the mask and never matches: clear them"
    )]
    ValueOutsideMask {
        /// The first syscall of the group.
        name: SyscallName,
        /// The argument compared.
        index: u8,
        /// The mask.
        mask: u64,
        /// The expected value.
        value: u64,
    },
}

/// The name of a syscall as the kernel's tables and libseccomp spell it (`openat`, `_llseek`).
///
/// A value that exists is well formed: non-empty, only `[a-z0-9_]`. Whether the kernel knows
/// it is checked by the tests against the syscall tables of every supported architecture.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SyscallName(Cow<'static, str>);

impl SyscallName {
    /// Checks `name` and wraps it.
    ///
    /// # Errors
    /// [`SeccompError::InvalidSyscallName`] when `name` is empty or has a character outside `[a-z0-9_]`.
    pub fn new(name: impl Into<String>) -> Result<Self, SeccompError> {
        let name = name.into();
        if is_well_formed(&name) {
            Ok(Self(Cow::Owned(name)))
        } else {
            Err(SeccompError::InvalidSyscallName { name })
        }
    }

    /// Wraps a name known when compiling; in a `const`, a malformed name fails the build.
    ///
    /// # Panics
    /// When `name` is empty or has a character outside `[a-z0-9_]`.
    pub const fn from_static(name: &'static str) -> Self {
        assert!(
            is_well_formed(name),
            "a syscall name is non-empty and only [a-z0-9_]"
        );
        Self(Cow::Borrowed(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const fn is_well_formed(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if !matches!(bytes[i], b'a'..=b'z' | b'0'..=b'9' | b'_') {
            return false;
        }
        i += 1;
    }
    true
}

impl fmt::Display for SyscallName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SyscallName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SyscallName({:?})", self.as_str())
    }
}

impl FromStr for SyscallName {
    type Err = SeccompError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<str> for SyscallName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

// Lets maps keyed by name be queried with a `&str`; `Ord` and `Eq` compare the text, as `str` does.
impl Borrow<str> for SyscallName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Serialize for SyscallName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SyscallName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::new(name).map_err(serde::de::Error::custom)
    }
}

/// An errno a refused syscall returns: never 0, which would make the call look successful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Errno(NonZeroU16);

impl Errno {
    /// "Operation not permitted" (1): what the profile answers to everything it does not allow.
    pub const EPERM: Self = Self(NonZeroU16::MIN);
    /// "Function not implemented" (38): tells libc the syscall does not exist, so it falls back.
    pub const ENOSYS: Self = match NonZeroU16::new(38) {
        Some(n) => Self(n),
        None => unreachable!(),
    };

    /// The errno numbered `n`, unless `n` is 0.
    pub const fn new(n: u16) -> Option<Self> {
        match NonZeroU16::new(n) {
            Some(n) => Some(Self(n)),
            None => None,
        }
    }

    /// The number.
    pub const fn get(self) -> u16 {
        self.0.get()
    }
}

/// The position of a syscall argument, 0 to 5 (syscalls take at most six).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArgIndex(u8);

impl ArgIndex {
    /// The first argument.
    pub const ARG0: Self = Self(0);
    /// The second argument.
    pub const ARG1: Self = Self(1);
    /// The third argument.
    pub const ARG2: Self = Self(2);
    /// The fourth argument.
    pub const ARG3: Self = Self(3);
    /// The fifth argument.
    pub const ARG4: Self = Self(4);
    /// The sixth argument.
    pub const ARG5: Self = Self(5);

    /// The argument at `index`, if a syscall can have one there.
    pub const fn new(index: u8) -> Option<Self> {
        if index < 6 { Some(Self(index)) } else { None }
    }

    /// The position, from 0.
    pub const fn get(self) -> u8 {
        self.0
    }
}

/// How an argument is compared. Every comparison reads the full 64-bit register on 64-bit ABIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `arg != n`
    NotEqual(u64),
    /// `arg < n`
    LessThan(u64),
    /// `arg <= n`
    LessOrEqual(u64),
    /// `arg == n`
    Equal(u64),
    /// `arg >= n`
    GreaterOrEqual(u64),
    /// `arg > n`
    GreaterThan(u64),
    /// `arg & mask == value`. Named fields because the JSON names them `value` (the mask!)
    /// and `valueTwo` (the expected value), an easy pair to swap.
    MaskedEqual {
        /// The bits of the argument that are compared.
        mask: u64,
        /// What those bits must be.
        value: u64,
    },
}

/// A comparison of one argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Condition {
    /// The argument compared.
    pub arg: ArgIndex,
    /// The comparison.
    pub cmp: Comparison,
}

impl Condition {
    /// Compares argument `arg` by `cmp`.
    pub const fn new(arg: ArgIndex, cmp: Comparison) -> Self {
        Self { arg, cmp }
    }

    fn to_docker(self) -> ArgCondition {
        let index = self.arg.get();
        let (op, value, value_two) = match self.cmp {
            Comparison::NotEqual(n) => (Operator::NotEqual, n, None),
            Comparison::LessThan(n) => (Operator::LessThan, n, None),
            Comparison::LessOrEqual(n) => (Operator::LessOrEqual, n, None),
            Comparison::Equal(n) => (Operator::Equal, n, None),
            Comparison::GreaterOrEqual(n) => (Operator::GreaterOrEqual, n, None),
            Comparison::GreaterThan(n) => (Operator::GreaterThan, n, None),
            // runc hands `value` to libseccomp as datum_a, which it reads as the mask.
            Comparison::MaskedEqual { mask, value } => (Operator::MaskedEqual, mask, Some(value)),
        };
        ArgCondition {
            index,
            value,
            value_two,
            op,
        }
    }
}

/// What the profile does with one syscall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Allowed whatever its arguments.
    Allow,
    /// Allowed when at least one alternative holds; an alternative holds when all its
    /// conditions hold, and compares each argument at most once. Other calls get the
    /// profile's default action. Each alternative is rendered as its own entry.
    AllowIf(Vec<Vec<Condition>>),
    /// Refused with this errno instead of the default one.
    Errno(Errno),
}

impl Rule {
    /// Allowed unless argument `arg`, read as the 32-bit integer the kernel sees, is one of
    /// `excluded`. With nothing excluded this is [`Rule::Allow`].
    ///
    /// Use this, not `NotEqual` or ranges, for `int` arguments: those compare all 64 bits,
    /// so a caller could set high bits the kernel then ignores (`0x1_0000_5412` passes
    /// `arg > 0x541c` and runs TIOCSTI). Nor `NotEqual` twice: runc splits two comparisons
    /// of one argument into either-or rules.
    ///
    /// The rule is a union of single-condition `MaskedEqual` alternatives whose masks cover
    /// only the low 32 bits, so the high bits never matter. In the binary trie of 32-bit
    /// values, each sibling subtree met on the way to an excluded value that holds no
    /// excluded value is one alternative (mask: the prefix bits, value: the prefix), which
    /// makes at most 32 alternatives per excluded value, none overlapping.
    pub fn allow_unless_u32(arg: ArgIndex, excluded: &[u32]) -> Self {
        if excluded.is_empty() {
            return Self::Allow;
        }
        let alternatives = low32::complement(excluded)
            .into_iter()
            .map(|p| {
                let cmp = Comparison::MaskedEqual {
                    mask: u64::from(p.mask),
                    value: u64::from(p.value),
                };
                vec![Condition::new(arg, cmp)]
            })
            .collect();
        Self::AllowIf(alternatives)
    }

    /// Allowed only when argument `arg`, read as the 32-bit integer the kernel sees, is one
    /// of `allowed`; every other value gets the profile's default action. With nothing
    /// allowed the rule has no alternative, which the builder refuses.
    ///
    /// Each value is its own single-condition alternative, `arg & 0xffffffff == value`: the
    /// mask keeps the high bits out of the comparison, as the kernel does (so `0x1_0000_0002`
    /// is AF_INET to both), and one condition per alternative survives runc's splitting of
    /// repeated arguments.
    pub fn allow_only_u32(arg: ArgIndex, allowed: &[u32]) -> Self {
        let values: BTreeSet<u32> = allowed.iter().copied().collect();
        Self::AllowIf(
            values
                .into_iter()
                .map(|v| {
                    let cmp = Comparison::MaskedEqual {
                        mask: u64::from(u32::MAX),
                        value: u64::from(v),
                    };
                    vec![Condition::new(arg, cmp)]
                })
                .collect(),
        )
    }

    fn check(&self, name: &SyscallName) -> Result<(), SeccompError> {
        let Self::AllowIf(alternatives) = self else {
            return Ok(());
        };
        if alternatives.is_empty() {
            return Err(SeccompError::NoAlternatives { name: name.clone() });
        }
        for conditions in alternatives {
            if conditions.is_empty() {
                return Err(SeccompError::EmptyAlternative { name: name.clone() });
            }
            let mut seen = BTreeSet::new();
            for condition in conditions {
                let index = condition.arg.get();
                if !seen.insert(index) {
                    return Err(SeccompError::RepeatedArgument {
                        name: name.clone(),
                        index,
                    });
                }
                if let Comparison::MaskedEqual { mask, value } = condition.cmp
                    && value & !mask != 0
                {
                    return Err(SeccompError::ValueOutsideMask {
                        name: name.clone(),
                        index,
                        mask,
                        value,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Syscalls sharing one rule and one reason, rendered together under `comment`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    comment: String,
    rule: Rule,
}

/// A seccomp allowlist: one rule per syscall, everything else refused with the default errno.
///
/// Build one with [`SeccompProfile::builder`], or take the sandbox's with [`SeccompProfile::sandbox`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompProfile {
    default_errno: Errno,
    architectures: BTreeSet<Architecture>,
    groups: Vec<Group>,
    /// Each syscall's group. The key is what makes "one rule per syscall" hold.
    syscalls: BTreeMap<SyscallName, usize>,
}

impl SeccompProfile {
    /// Starts an empty profile that refuses every syscall with `default_errno` on `architectures`.
    pub fn builder(
        default_errno: Errno,
        architectures: impl IntoIterator<Item = Architecture>,
    ) -> SeccompProfileBuilder {
        SeccompProfileBuilder {
            profile: Self {
                default_errno,
                architectures: architectures.into_iter().collect(),
                groups: Vec::new(),
                syscalls: BTreeMap::new(),
            },
        }
    }

    /// The errno of every syscall without a rule.
    pub fn default_errno(&self) -> Errno {
        self.default_errno
    }

    /// The ABIs covered, in rendering order.
    pub fn architectures(&self) -> impl Iterator<Item = Architecture> + '_ {
        self.architectures.iter().copied()
    }

    /// The rule of `name`, or `None` when it falls to the default.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.syscalls
            .get(name)
            .map(|&group| &self.groups[group].rule)
    }

    /// Every syscall with a rule, in name order.
    pub fn rules(&self) -> impl Iterator<Item = (&SyscallName, &Rule)> + '_ {
        self.syscalls
            .iter()
            .map(|(name, &group)| (name, &self.groups[group].rule))
    }

    /// The profile in Docker's format: groups in the order they were added, names sorted
    /// within each, one entry per alternative of a conditional rule.
    pub fn to_docker(&self) -> DockerProfile {
        let mut members: Vec<Vec<SyscallName>> = vec![Vec::new(); self.groups.len()];
        for (name, &group) in &self.syscalls {
            members[group].push(name.clone());
        }
        let mut syscalls = Vec::new();
        for (group, names) in self.groups.iter().zip(members) {
            let comment = Some(group.comment.clone());
            match &group.rule {
                Rule::Allow => syscalls.push(SyscallEntry {
                    names,
                    action: Action::Allow,
                    errno_ret: None,
                    args: Vec::new(),
                    comment,
                }),
                Rule::Errno(errno) => syscalls.push(SyscallEntry {
                    names,
                    action: Action::Errno,
                    errno_ret: Some(errno.get()),
                    args: Vec::new(),
                    comment,
                }),
                Rule::AllowIf(alternatives) => {
                    syscalls.extend(alternatives.iter().map(|conditions| SyscallEntry {
                        names: names.clone(),
                        action: Action::Allow,
                        errno_ret: None,
                        args: conditions.iter().map(|c| c.to_docker()).collect(),
                        comment: comment.clone(),
                    }));
                }
            }
        }
        DockerProfile {
            default_action: Action::Errno,
            default_errno_ret: Some(self.default_errno.get()),
            architectures: self.architectures().collect(),
            syscalls,
        }
    }
}

/// Adds rules to a [`SeccompProfile`], refusing a second rule for any syscall.
#[derive(Debug, Clone)]
pub struct SeccompProfileBuilder {
    profile: SeccompProfile,
}

impl SeccompProfileBuilder {
    /// Gives every syscall in `names` the rule `rule`; `comment` says why, and is rendered
    /// with the group. On error nothing is added.
    ///
    /// # Errors
    /// A malformed name ([`SeccompError::InvalidSyscallName`]), a name that already has a rule
    /// ([`SeccompError::DuplicateSyscall`]), no names ([`SeccompError::EmptyGroup`]), or a
    /// [`Rule::AllowIf`] that is empty, allows everything or compares an argument twice.
    pub fn group<I, S>(
        &mut self,
        comment: &str,
        rule: Rule,
        names: I,
    ) -> Result<&mut Self, SeccompError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut group_names = BTreeSet::new();
        for name in names {
            let name = SyscallName::new(name.as_ref())?;
            if let Some(&group) = self.profile.syscalls.get(&name) {
                let first = self.profile.groups[group].comment.clone();
                return Err(SeccompError::DuplicateSyscall { name, first });
            }
            if group_names.contains(&name) {
                return Err(SeccompError::DuplicateSyscall {
                    name,
                    first: comment.to_owned(),
                });
            }
            group_names.insert(name);
        }
        let Some(first) = group_names.first() else {
            return Err(SeccompError::EmptyGroup {
                comment: comment.to_owned(),
            });
        };
        rule.check(first)?;

        let group = self.profile.groups.len();
        self.profile.groups.push(Group {
            comment: comment.to_owned(),
            rule,
        });
        self.profile
            .syscalls
            .extend(group_names.into_iter().map(|name| (name, group)));
        Ok(self)
    }

    /// Allows every syscall in `names` unconditionally; see [`group`](Self::group).
    ///
    /// # Errors
    /// As [`group`](Self::group).
    pub fn allow<I, S>(&mut self, comment: &str, names: I) -> Result<&mut Self, SeccompError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.group(comment, Rule::Allow, names)
    }

    /// The finished profile.
    pub fn build(self) -> SeccompProfile {
        self.profile
    }
}

/// Renders `profile` as Docker's `seccomp.json`: pretty JSON indented by two spaces, ending
/// with a newline. The same profile always renders to the same bytes.
pub fn render(profile: &SeccompProfile) -> String {
    let mut json = serde_json::to_string_pretty(&profile.to_docker())
        .expect("structs with string keys and integer or string values always serialize");
    json.push('\n');
    json
}
