//! The per-stack certificate authority the proxy mints TLS certificates from.
//!
//! The proxy creates it at its first start ([`CaDir::init`]) in a volume only the proxy
//! mounts, so the private key never enters the sandbox; the certificate alone is
//! exported ([`CaDir::export_cert`]) to a volume the sandbox mounts read-only. Loading
//! validates everything and fails closed: a CA directory that is half-written, corrupt,
//! mismatched, not a CA or out of date is an error, and nothing is overwritten except by
//! an explicit [`CaDir::rotate`].
//!
//! This crate never prints and never reads the environment.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod files;

use std::fmt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::Duration;
pub use time::OffsetDateTime;
use x509_parser::pem::Pem;

/// The CA directory inside the proxy container (its own `proxy-ca` volume).
pub const PROXY_CA_DIR: &str = "/var/lib/safe-ai/ca";
/// Where the proxy exports the certificate: a volume the sandbox mounts read-only.
pub const PROXY_CA_PUBLIC_DIR: &str = "/var/lib/safe-ai/ca-public";

/// The private key, PEM (PKCS#8).
pub const KEY_FILE: &str = "ca.key";
/// The certificate, PEM.
pub const CERT_FILE: &str = "ca.crt";
/// The key followed by the certificate: what Squid's `http_port … cert=` reads.
pub const BUNDLE_FILE: &str = "ca.pem";
/// The certificate a rotation replaced, kept for reference only.
pub const PREVIOUS_CERT_FILE: &str = "ca.previous.crt";

const KEY_MODE: u32 = 0o640;
const CERT_MODE: u32 = 0o644;
const BUNDLE_MODE: u32 = 0o640;
const DIR_MODE: u32 = 0o750;

/// The CA's three files, in the order they are written and checked.
const FILES: [&str; 3] = [KEY_FILE, CERT_FILE, BUNDLE_FILE];

/// Errors of the stack CA. Each names the file at fault; none leaves a file changed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory that cannot be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted: "read", "create", …
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// [`CaDir::load`] on a directory with no CA at all.
    #[error("{}: no stack CA here; create one with `safeai ca init --dir {}`", dir.display(), dir.display())]
    NoCa {
        /// The directory.
        dir: PathBuf,
    },
    /// Some of the CA's files exist and others do not: a half-written CA.
    #[error(
        "{}: found {present} but not {missing} (a half-written CA); nothing was changed: \
         run `safeai ca rotate` to replace the CA",
        dir.display()
    )]
    Incomplete {
        /// The directory.
        dir: PathBuf,
        /// The files that are missing, comma-separated.
        missing: String,
        /// The files that exist, comma-separated.
        present: String,
    },
    /// The private key does not parse.
    #[error("{}: the private key does not parse ({reason}); run `safeai ca rotate` to replace the CA", path.display())]
    InvalidKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The certificate does not parse, or is not self-signed by its own key.
    #[error("{}: the certificate does not parse ({reason}); run `safeai ca rotate` to replace the CA", path.display())]
    InvalidCert {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The private key is not the one of the certificate.
    #[error(
        "{}: the private key does not match the certificate in {}; run `safeai ca rotate` \
         to replace the CA",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// The certificate cannot sign other certificates.
    #[error("{}: not a CA certificate ({reason}); run `safeai ca rotate` to replace the CA", path.display())]
    NotCa {
        /// The certificate file.
        path: PathBuf,
        /// What it lacks.
        reason: &'static str,
    },
    /// The certificate's validity starts in the future.
    #[error(
        "{}: the certificate is not valid before {}; check the clock, or run `safeai ca rotate` \
         to replace the CA",
        path.display(),
        utc(*not_before)
    )]
    NotYetValid {
        /// The certificate file.
        path: PathBuf,
        /// The start of its validity.
        not_before: OffsetDateTime,
    },
    /// The certificate has expired.
    #[error("{}: the certificate expired on {}; run `safeai ca rotate` to replace the CA", path.display(), utc(*not_after))]
    Expired {
        /// The certificate file.
        path: PathBuf,
        /// The end of its validity.
        not_after: OffsetDateTime,
    },
    /// `ca.pem` is not `ca.key` followed by `ca.crt`, so Squid would use another CA than
    /// the one the sandbox trusts.
    #[error(
        "{}: not {KEY_FILE} followed by {CERT_FILE}, so Squid would sign with another CA than \
         the one the sandbox trusts; run `safeai ca rotate` to replace the CA",
        path.display()
    )]
    BundleMismatch {
        /// The bundle file.
        path: PathBuf,
    },
    /// Generating the key or the certificate failed.
    #[error("cannot generate the stack CA: {0}")]
    Generate(String),
}

/// A directory holding (or about to hold) a stack CA: `ca.key`, `ca.crt` and `ca.pem`.
#[derive(Clone, Debug)]
pub struct CaDir {
    path: PathBuf,
    owner: Option<(u32, u32)>,
}

/// What [`CaDir::init`] found.
#[derive(Clone, Debug)]
pub enum InitOutcome {
    /// There was no CA: this one was just made.
    Created(CaInfo),
    /// A valid CA was there and is kept.
    Existing(CaInfo),
}

impl InitOutcome {
    /// The CA, new or kept.
    pub fn info(&self) -> &CaInfo {
        match self {
            InitOutcome::Created(info) | InitOutcome::Existing(info) => info,
        }
    }
}

/// What a user needs to recognise a CA certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaInfo {
    /// The subject, such as `CN=safe-ai stack CA 1a2b3c4d, O=safe-ai`.
    pub subject: String,
    /// The start of the validity.
    pub not_before: OffsetDateTime,
    /// The end of the validity.
    pub not_after: OffsetDateTime,
    /// SHA-256 of the DER certificate, colon-separated upper-case hex (as `openssl x509
    /// -fingerprint -sha256` prints it).
    pub sha256_fingerprint: String,
    /// The certificate, PEM.
    pub cert_pem: String,
}

impl CaInfo {
    /// Parses and checks a CA certificate on its own (no key): one PEM certificate,
    /// self-signed, a CA allowed to sign certificates, valid now. `path` names its origin
    /// in errors.
    pub fn from_cert_pem(pem: &str, path: &Path) -> Result<CaInfo, Error> {
        parse_cert(pem, path, OffsetDateTime::now_utc()).map(|(info, _)| info)
    }

    /// One line: subject, fingerprint and end of validity.
    pub fn summary(&self) -> String {
        format!(
            "{}, SHA-256 {}, valid until {}",
            self.subject,
            self.sha256_fingerprint,
            utc(self.not_after)
        )
    }
}

impl fmt::Display for CaInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "subject      {}", self.subject)?;
        writeln!(f, "valid from   {}", utc(self.not_before))?;
        writeln!(f, "valid until  {}", utc(self.not_after))?;
        write!(f, "SHA-256      {}", self.sha256_fingerprint)
    }
}

/// `2036-05-01 09:30:00 UTC`.
fn utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl CaDir {
    /// The CA in `path`; nothing is read or written until a method is called.
    pub fn new(path: impl Into<PathBuf>) -> CaDir {
        CaDir {
            path: path.into(),
            owner: None,
        }
    }

    /// Give the files written from now on this owner and group (Squid's user, when
    /// running as root). Without it, a replaced file keeps its owner and a new one
    /// belongs to the caller.
    pub fn with_owner(mut self, uid: u32, gid: u32) -> CaDir {
        self.owner = Some((uid, gid));
        self
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes a CA if the directory has none (creating the directory if needed); otherwise
    /// validates the one there and keeps it. Never replaces a CA, valid or not: a broken
    /// one is an error, and [`CaDir::rotate`] is the way to replace it.
    pub fn init(&self) -> Result<InitOutcome, Error> {
        if self.present()?.is_empty() {
            self.create_dir()?;
            self.write_new()?;
            self.load().map(InitOutcome::Created)
        } else {
            self.load().map(InitOutcome::Existing)
        }
    }

    /// Replaces the CA with a new one, whatever state the old one is in, and keeps the
    /// old certificate as `ca.previous.crt` for reference.
    pub fn rotate(&self) -> Result<CaInfo, Error> {
        self.create_dir()?;
        let cert = self.file(CERT_FILE);
        match std::fs::read(&cert) {
            Ok(old) => {
                files::write_atomic(&self.file(PREVIOUS_CERT_FILE), &old, CERT_MODE, self.owner)?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Io {
                    action: "read",
                    path: cert,
                    source,
                });
            }
        }
        self.write_new()?;
        self.load()
    }

    /// Reads and validates the CA: every file present, the key and certificate parse, the
    /// key is the certificate's, the certificate is a CA valid now, and `ca.pem` is the
    /// key followed by the certificate.
    pub fn load(&self) -> Result<CaInfo, Error> {
        self.load_at(OffsetDateTime::now_utc())
    }

    /// Writes the certificate (never the key) as `ca.crt`, mode 0644, into `dir`, after
    /// validating the CA; returns the path written.
    pub fn export_cert(&self, dir: &Path) -> Result<PathBuf, Error> {
        let info = self.load()?;
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            action: "create",
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(CERT_FILE);
        files::write_atomic(&path, info.cert_pem.as_bytes(), CERT_MODE, None)?;
        Ok(path)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Which of the three files exist.
    fn present(&self) -> Result<Vec<&'static str>, Error> {
        let mut present = Vec::new();
        for name in FILES {
            let path = self.file(name);
            if path.try_exists().map_err(|source| Error::Io {
                action: "look for",
                path,
                source,
            })? {
                present.push(name);
            }
        }
        Ok(present)
    }

    fn create_dir(&self) -> Result<(), Error> {
        if self.path.is_dir() {
            return Ok(());
        }
        use std::os::unix::fs::DirBuilderExt;
        let io = |action| {
            move |source| Error::Io {
                action,
                path: self.path.clone(),
                source,
            }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(&self.path)
            .map_err(io("create"))?;
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(&self.path, Some(uid), Some(gid))
                .map_err(io("change the owner of"))?;
        }
        Ok(())
    }

    /// Generates a CA and writes its files. A crash between two renames leaves files
    /// that do not match, which `load` refuses: never a CA the sandbox would not trust.
    fn write_new(&self) -> Result<(), Error> {
        let new = generate(OffsetDateTime::now_utc())?;
        let bundle = format!("{}{}", new.key_pem, new.cert_pem);
        files::write_atomic(
            &self.file(KEY_FILE),
            new.key_pem.as_bytes(),
            KEY_MODE,
            self.owner,
        )?;
        files::write_atomic(
            &self.file(CERT_FILE),
            new.cert_pem.as_bytes(),
            CERT_MODE,
            self.owner,
        )?;
        files::write_atomic(
            &self.file(BUNDLE_FILE),
            bundle.as_bytes(),
            BUNDLE_MODE,
            self.owner,
        )
    }

    fn load_at(&self, now: OffsetDateTime) -> Result<CaInfo, Error> {
        let present = self.present()?;
        if present.is_empty() {
            return Err(Error::NoCa {
                dir: self.path.clone(),
            });
        }
        if present.len() < FILES.len() {
            let missing: Vec<&str> = FILES.into_iter().filter(|f| !present.contains(f)).collect();
            return Err(Error::Incomplete {
                dir: self.path.clone(),
                missing: missing.join(", "),
                present: present.join(", "),
            });
        }
        let [key_path, cert_path, bundle_path] = FILES.map(|f| self.file(f));
        let key_pem = read_text(&key_path, |reason| Error::InvalidKey {
            path: key_path.clone(),
            reason,
        })?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| Error::InvalidKey {
            path: key_path.clone(),
            reason: e.to_string(),
        })?;
        let cert_pem = read_text(&cert_path, |reason| Error::InvalidCert {
            path: cert_path.clone(),
            reason,
        })?;
        let (info, public_key) = parse_cert(&cert_pem, &cert_path, now)?;
        if key.public_key_raw() != public_key {
            return Err(Error::KeyMismatch {
                key: key_path,
                cert: cert_path,
            });
        }
        let bundle = read_text(&bundle_path, |_| Error::BundleMismatch {
            path: bundle_path.clone(),
        })?;
        if bundle != format!("{key_pem}{cert_pem}") {
            return Err(Error::BundleMismatch { path: bundle_path });
        }
        Ok(info)
    }
}

/// Reads a file that must be text; `invalid` makes the error for one that is not.
fn read_text(path: &Path, invalid: impl FnOnce(String) -> Error) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| invalid("not PEM text".to_owned()))
}

/// Parses and checks a CA certificate; returns what a user sees and its raw public key.
fn parse_cert(pem: &str, path: &Path, now: OffsetDateTime) -> Result<(CaInfo, Vec<u8>), Error> {
    let invalid = |reason: String| Error::InvalidCert {
        path: path.to_path_buf(),
        reason,
    };
    let not_ca = |reason| Error::NotCa {
        path: path.to_path_buf(),
        reason,
    };
    let blocks = Pem::iter_from_buffer(pem.as_bytes())
        .collect::<Result<Vec<Pem>, _>>()
        .map_err(|e| invalid(format!("bad PEM: {e}")))?;
    let [block] = &blocks[..] else {
        return Err(invalid(format!(
            "expected one PEM certificate, found {} PEM blocks",
            blocks.len()
        )));
    };
    if block.label != "CERTIFICATE" {
        return Err(invalid(format!(
            "a PEM `{}`, not a `CERTIFICATE`",
            block.label
        )));
    }
    let cert = block
        .parse_x509()
        .map_err(|e| invalid(format!("bad DER: {e}")))?;
    if cert.issuer() != cert.subject() || cert.verify_signature(None).is_err() {
        return Err(invalid("not self-signed by its own key".to_owned()));
    }
    match cert.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => {}
        Ok(_) => return Err(not_ca("no basicConstraints CA:TRUE")),
        Err(_) => return Err(not_ca("its basicConstraints do not parse")),
    }
    match cert.key_usage() {
        Ok(Some(ku)) if ku.value.key_cert_sign() => {}
        Ok(_) => return Err(not_ca("no keyUsage keyCertSign")),
        Err(_) => return Err(not_ca("its keyUsage does not parse")),
    }
    let time = |t: x509_parser::time::ASN1Time| {
        OffsetDateTime::from_unix_timestamp(t.timestamp())
            .map_err(|e| invalid(format!("bad validity date: {e}")))
    };
    let not_before = time(cert.validity().not_before)?;
    let not_after = time(cert.validity().not_after)?;
    if now < not_before {
        return Err(Error::NotYetValid {
            path: path.to_path_buf(),
            not_before,
        });
    }
    if now > not_after {
        return Err(Error::Expired {
            path: path.to_path_buf(),
            not_after,
        });
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, block.contents.as_slice());
    let info = CaInfo {
        subject: cert.subject().to_string(),
        not_before,
        not_after,
        sha256_fingerprint: hex(digest.as_ref(), ":"),
        cert_pem: pem.to_owned(),
    };
    Ok((info, cert.public_key().subject_public_key.data.to_vec()))
}

fn hex(bytes: &[u8], separator: &str) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(separator)
}

/// A freshly generated CA, PEM.
struct Generated {
    key_pem: String,
    cert_pem: String,
}

fn generate(now: OffsetDateTime) -> Result<Generated, Error> {
    let rng = SystemRandom::new();
    let mut id = [0u8; 4];
    let mut serial = [0u8; 16];
    rng.fill(&mut id)
        .and_then(|()| rng.fill(&mut serial))
        .map_err(|_| Error::Generate("the system's random source failed".to_owned()))?;
    // A positive DER INTEGER of at most 20 bytes, as RFC 5280 asks.
    serial[0] &= 0x7f;
    let generate = |e: rcgen::Error| Error::Generate(e.to_string());
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate)?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(
        DnType::CommonName,
        format!("safe-ai stack CA {}", hex(&id, "").to_lowercase()),
    );
    name.push(DnType::OrganizationName, "safe-ai");
    params.distinguished_name = name;
    // pathlen:0: this CA signs leaf certificates only, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    // An hour back absorbs clock skew between the proxy and the sandbox. Ten years ahead
    // because this CA is trusted by one stack only, lives in a volume nobody else mounts,
    // and is replaced with `safeai ca rotate` (or `docker compose down -v`): an expiry
    // would only break a working sandbox some day, with nothing gained.
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(3650);
    let cert = params.self_signed(&key).map_err(generate)?;
    Ok(Generated {
        key_pem: key.serialize_pem(),
        cert_pem: cert.pem(),
    })
}

#[cfg(test)]
mod tests;
