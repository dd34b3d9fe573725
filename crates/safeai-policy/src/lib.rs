//! The safe-ai domain allowlist: where it comes from, what makes an entry valid, and the
//! normalized value every artifact is rendered from.
//!
//! ```
//! use safeai_policy::{check, Source};
//!
//! let sources = [Source::Yaml {
//!     name: "allowlist.yaml".into(),
//!     text: "domains:\n  - github.com\n  - api.github.com\n".into(),
//! }];
//! let checked = check(&sources).expect("valid");
//! assert_eq!(checked.allowlist.len(), 1); // api.github.com is covered by github.com
//! assert!(checked.allowlist.allows("objects.githubusercontent.com") == false);
//! assert!(checked.allowlist.allows("API.GitHub.com."));
//! ```
//!
//! The library never reads the process environment and never prints: the caller
//! passes an [`Env`] and renders the [`Diagnostic`]s it gets back.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod allowlist;
mod diagnostic;
mod domain;
mod edit;
mod options;
mod origin;
pub mod presets;
mod source;

pub use allowlist::{Allowlist, Checked, Entry, Rejected, check};
pub use diagnostic::{Diagnostic, Error, Escaped, Finding, Severity, Warning, render};
pub use domain::{Domain, Validated};
pub use edit::{EditError, add_domains};
pub use options::Tunnel;
pub use origin::{Origin, Position};
pub use source::{
    ALLOWLIST_VAR, DEFAULT_ALLOWLIST_PATH, DEFAULT_DOMAINS_VAR, Env, MAX_FILE_BYTES, Source,
};
