//! The secrets of brokered credentials: read by the proxy from its own secrets
//! directory (one file per secret, named as the allowlist's `${NAME}`), written only
//! into the squid.conf the proxy runs, and never shown.
//!
//! Why files and not the proxy's environment: a container's environment is printed by
//! `docker inspect` and `docker compose config`, inherited by every process of the proxy
//! (dnsmasq, the SSH forwarder, Squid's helpers), and fixed for the container's life; a
//! directory mounted read-only into the proxy alone is read by `safeai proxy render` as
//! root at start and at each reload (so a rotated key needs only a reload), and nothing
//! else in the stack has it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use safeai_policy::SecretName;

/// A secret's value. Shown nowhere: `Debug` and `Display` print a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Validates a secret's text: one line of printable ASCII without `"` and `\` (so it
    /// can be written into a quoted squid.conf value), one trailing newline dropped.
    ///
    /// # Errors
    ///
    /// What is wrong, in words that never quote the secret.
    pub fn new(text: &str) -> Result<Secret, &'static str> {
        let text = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(text);
        if text.is_empty() {
            return Err("the file is empty");
        }
        if text.chars().any(|c| !('!'..='~').contains(&c) && c != ' ') {
            return Err(
                "it holds a character other than printable ASCII (a second line, a tab, a control character)",
            );
        }
        if text.contains(['"', '\\']) {
            return Err("it holds `\"` or `\\`, which a header value cannot carry here");
        }
        Ok(Secret(text.to_owned()))
    }

    /// The value as squid.conf's quoted strings take it: `%` starts a format code there.
    pub(crate) fn for_squid(&self) -> String {
        self.0.replace('%', "%%")
    }

    /// The raw value, to redact it from another program's output.
    pub fn expose_for_redaction(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The values a render writes for the credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Secrets {
    /// Each secret as `[secret NAME]`: for the host's `safeai generate` and the
    /// snapshots, which never hold a secret.
    #[default]
    Redacted,
    /// The proxy's secrets, by name.
    Loaded(BTreeMap<SecretName, Secret>),
}

impl Secrets {
    /// Reads the named secrets from `dir`, each from the file of its name.
    ///
    /// # Errors
    ///
    /// Every secret that is missing or unusable, each named with its file; no value is
    /// ever part of an error.
    pub fn load<'a>(
        dir: &Path,
        names: impl IntoIterator<Item = &'a SecretName>,
    ) -> Result<Secrets, Vec<SecretError>> {
        let mut found = BTreeMap::new();
        let mut errors = Vec::new();
        for name in names {
            if found.contains_key(name) {
                continue;
            }
            let path = dir.join(name.as_str());
            let problem = match std::fs::read(&path) {
                Ok(bytes) if bytes.len() > 64 * 1024 => "it is larger than 64 KiB",
                Ok(bytes) => match String::from_utf8(bytes)
                    .map_err(|_| "it is not UTF-8 text")
                    .and_then(|t| Secret::new(&t))
                {
                    Ok(secret) => {
                        found.insert(name.clone(), secret);
                        continue;
                    }
                    Err(problem) => problem,
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => "the file does not exist",
                Err(_) => "the file cannot be read",
            };
            errors.push(SecretError {
                name: name.clone(),
                path,
                problem,
            });
        }
        if errors.is_empty() {
            Ok(Secrets::Loaded(found))
        } else {
            Err(errors)
        }
    }

    /// What squid.conf carries for `name`: the value (escaped) or the placeholder.
    pub(crate) fn squid_value(&self, name: &SecretName) -> String {
        match self {
            Secrets::Loaded(map) => map
                .get(name)
                .map(Secret::for_squid)
                // `load` was given every name the allowlist uses; a missing one here is
                // a caller's bug, and fails closed: the header carries no key.
                .unwrap_or_else(|| format!("[missing secret {}]", name.as_str())),
            Secrets::Redacted => format!("[secret {}]", name.as_str()),
        }
    }

    /// `text` with every loaded secret replaced by `[secret NAME]`: for another
    /// program's output (Squid quotes a line it rejects) before it is shown.
    pub fn redact(&self, text: &str) -> String {
        let Secrets::Loaded(map) = self else {
            return text.to_owned();
        };
        let mut out = text.to_owned();
        // Longest first, so a secret that contains another is replaced whole.
        let mut secrets: Vec<(&SecretName, &Secret)> = map.iter().collect();
        secrets.sort_by_key(|(_, s)| std::cmp::Reverse(s.0.len()));
        for (name, secret) in secrets {
            let shown = format!("[secret {}]", name.as_str());
            out = out
                .replace(&secret.for_squid(), &shown)
                .replace(&secret.0, &shown);
        }
        out
    }
}

/// A secret the proxy cannot use. Names the secret and its file, never its value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "secret {} ({}): {problem}; write the key alone into that file on the host's secrets directory (SAFE_AI_SECRETS_DIR, default ./secrets), then reload",
    .name.as_str(), .path.display()
)]
pub struct SecretError {
    /// The secret.
    pub name: SecretName,
    /// Its file.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> SecretName {
        SecretName::parse(s).unwrap()
    }

    #[test]
    fn secrets_load_by_name_and_never_show() {
        let dir = std::env::temp_dir().join(format!("safeai-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("GOOD"), "sk-abc%123\n").unwrap();
        std::fs::write(dir.join("EMPTY"), "\n").unwrap();
        std::fs::write(dir.join("TWO_LINES"), "a\nb\n").unwrap();
        std::fs::write(dir.join("QUOTE"), "a\"b").unwrap();
        let ok = Secrets::load(&dir, [&name("GOOD"), &name("GOOD")]).unwrap();
        assert_eq!(ok.squid_value(&name("GOOD")), "sk-abc%%123");
        assert!(!format!("{ok:?}").contains("sk-abc"));
        assert_eq!(
            ok.redact("FATAL: bad line: request_header_add x \"sk-abc%%123\" and sk-abc%123"),
            "FATAL: bad line: request_header_add x \"[secret GOOD]\" and [secret GOOD]"
        );
        let errors = Secrets::load(
            &dir,
            [
                &name("EMPTY"),
                &name("TWO_LINES"),
                &name("QUOTE"),
                &name("ABSENT"),
            ],
        )
        .unwrap_err();
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(messages[0].contains("secret EMPTY") && messages[0].contains("empty"));
        assert!(messages[1].contains("second line"));
        assert!(messages[3].contains("does not exist") && messages[3].contains("ABSENT"));
        for m in &messages {
            assert!(!m.contains("sk-abc") && !m.contains("a\"b"), "{m}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            Secrets::Redacted.squid_value(&name("GOOD")),
            "[secret GOOD]"
        );
    }
}
