//! The options an allowlist entry can carry besides its name (`tunnel:`).

use serde::Serialize;

/// What may travel inside an HTTPS CONNECT to a name (and its subdomains).
///
/// Ordered from the narrowest to the widest, so `max` is the most permissive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tunnel {
    /// TLS only, and its ClientHello must name the CONNECT host (SNI); any other bytes end
    /// the tunnel. The default, and what a plain string entry means.
    #[default]
    Tls,
    /// Any bytes, nothing checked (git over SSH on port 443): an unchecked channel.
    Opaque,
}

impl Tunnel {
    /// Every kind, in order.
    pub(crate) const ALL: [Tunnel; 2] = [Tunnel::Tls, Tunnel::Opaque];

    /// The name written in the allowlist file: `tls` or `opaque`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tunnel::Tls => "tls",
            Tunnel::Opaque => "opaque",
        }
    }

    /// The kind named `name`, exactly as written in the file.
    pub(crate) fn from_name(name: &str) -> Option<Tunnel> {
        Tunnel::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether an entry with this tunnel allows everything one with `other` does, so that
    /// a broader entry of this kind makes a narrower one of `other` redundant.
    pub fn covers(self, other: Tunnel) -> bool {
        self >= other
    }
}

impl std::fmt::Display for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_exact() {
        for t in Tunnel::ALL {
            assert_eq!(Tunnel::from_name(t.as_str()), Some(t));
        }
        assert_eq!(Tunnel::from_name("OPAQUE"), None);
        assert_eq!(Tunnel::from_name("tls "), None);
        assert_eq!(Tunnel::default(), Tunnel::Tls);
    }

    #[test]
    fn opaque_covers_both_tls_only_itself() {
        assert!(Tunnel::Opaque.covers(Tunnel::Tls));
        assert!(Tunnel::Opaque.covers(Tunnel::Opaque));
        assert!(Tunnel::Tls.covers(Tunnel::Tls));
        assert!(!Tunnel::Tls.covers(Tunnel::Opaque));
    }
}
