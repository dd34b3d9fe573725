use std::os::unix::fs::PermissionsExt;

use super::*;

/// A fresh directory under the system's temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("safeai-ca-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn ca(&self) -> CaDir {
        CaDir::new(self.0.join("ca"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Every file of the directory with its contents, to prove a failure changed nothing.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// `init` and `load` both refuse the directory, and neither changes a byte of it.
fn refused(ca: &CaDir) -> Error {
    let before = contents(ca.path());
    let err = ca.load().unwrap_err();
    let again = ca.init().unwrap_err();
    assert_eq!(err.to_string(), again.to_string());
    assert_eq!(contents(ca.path()), before, "a refused CA was modified");
    err
}

/// Rewrites the certificate (and the bundle, so only the certificate is at fault) with
/// one made from `params`, signed by the directory's own key.
fn replace_cert(ca: &CaDir, params: CertificateParams) {
    let key_pem = std::fs::read_to_string(ca.path().join(KEY_FILE)).unwrap();
    let key = KeyPair::from_pem(&key_pem).unwrap();
    let cert_pem = params.self_signed(&key).unwrap().pem();
    std::fs::write(ca.path().join(CERT_FILE), &cert_pem).unwrap();
    std::fs::write(ca.path().join(BUNDLE_FILE), format!("{key_pem}{cert_pem}")).unwrap();
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

#[test]
fn init_creates_then_keeps_and_load_reads_the_same_ca() {
    let scratch = Scratch::new("roundtrip");
    let ca = scratch.ca();
    let InitOutcome::Created(created) = ca.init().unwrap() else {
        panic!("a missing directory must be created")
    };
    let InitOutcome::Existing(kept) = ca.init().unwrap() else {
        panic!("a valid CA must be kept")
    };
    assert_eq!(created, kept);
    assert_eq!(ca.load().unwrap(), created);

    let cn = created
        .subject
        .strip_prefix("CN=safe-ai stack CA ")
        .and_then(|rest| rest.strip_suffix(", O=safe-ai"))
        .unwrap_or_else(|| panic!("subject {}", created.subject));
    assert!(
        cn.len() == 8 && cn.bytes().all(|b| b.is_ascii_hexdigit()),
        "{cn}"
    );
    assert_eq!(created.sha256_fingerprint.len(), 32 * 3 - 1);
    assert!(
        created
            .sha256_fingerprint
            .split(':')
            .all(|b| b.len() == 2 && b.bytes().all(|c| matches!(c, b'0'..=b'9' | b'A'..=b'F')))
    );
    let now = OffsetDateTime::now_utc();
    assert!(created.not_before < now - Duration::minutes(59));
    assert!(created.not_before > now - Duration::minutes(61));
    assert_eq!(
        (created.not_after - created.not_before).whole_days(),
        3650,
        "an hour back plus ten years ahead"
    );
    assert_eq!(
        std::fs::read_to_string(ca.path().join(CERT_FILE)).unwrap(),
        created.cert_pem
    );
}

#[test]
fn two_cas_differ() {
    let scratch = Scratch::new("two");
    let a = CaDir::new(scratch.0.join("a")).init().unwrap();
    let b = CaDir::new(scratch.0.join("b")).init().unwrap();
    assert_ne!(a.info().subject, b.info().subject);
    assert_ne!(a.info().sha256_fingerprint, b.info().sha256_fingerprint);
}

#[test]
fn an_empty_directory_gets_a_ca_and_load_says_there_is_none() {
    let scratch = Scratch::new("empty");
    let ca = CaDir::new(&scratch.0);
    let err = ca.load().unwrap_err();
    assert!(matches!(err, Error::NoCa { .. }), "{err}");
    assert!(err.to_string().contains("safeai ca init --dir"), "{err}");
    assert!(matches!(ca.init().unwrap(), InitOutcome::Created(_)));
}

#[test]
fn the_files_have_their_modes_and_no_temporary_file_remains() {
    let scratch = Scratch::new("modes");
    let ca = scratch.ca();
    ca.init().unwrap();
    ca.rotate().unwrap();
    let public = scratch.0.join("public");
    let exported = ca.export_cert(&public).unwrap();
    assert_eq!(mode(&ca.path().join(KEY_FILE)), 0o640);
    assert_eq!(mode(&ca.path().join(CERT_FILE)), 0o644);
    assert_eq!(mode(&ca.path().join(BUNDLE_FILE)), 0o640);
    assert_eq!(mode(&ca.path().join(PREVIOUS_CERT_FILE)), 0o644);
    assert_eq!(mode(ca.path()), 0o750);
    assert_eq!(mode(&exported), 0o644);
    let names: Vec<String> = contents(ca.path()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [CERT_FILE, KEY_FILE, BUNDLE_FILE, PREVIOUS_CERT_FILE]
    );
}

#[test]
fn the_bundle_is_the_key_then_the_certificate() {
    let scratch = Scratch::new("bundle");
    let ca = scratch.ca();
    ca.init().unwrap();
    let read = |f| std::fs::read_to_string(ca.path().join(f)).unwrap();
    assert!(read(KEY_FILE).starts_with(&format!("-----BEGIN {}-----\n", "PRIVATE KEY")));
    assert!(read(CERT_FILE).starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert_eq!(read(BUNDLE_FILE), read(KEY_FILE) + &read(CERT_FILE));
}

#[test]
fn export_writes_the_certificate_only() {
    let scratch = Scratch::new("export");
    let ca = scratch.ca();
    let info = ca.init().unwrap();
    let public = scratch.0.join("public");
    assert_eq!(ca.export_cert(&public).unwrap(), public.join(CERT_FILE));
    let files = contents(&public);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, CERT_FILE);
    assert_eq!(files[0].1, info.info().cert_pem.as_bytes());
    assert!(!String::from_utf8_lossy(&files[0].1).contains("PRIVATE KEY"));
    // Exporting again (after a rotation) replaces it.
    let rotated = ca.rotate().unwrap();
    ca.export_cert(&public).unwrap();
    assert_eq!(
        std::fs::read_to_string(public.join(CERT_FILE)).unwrap(),
        rotated.cert_pem
    );
}

#[test]
fn export_of_a_broken_ca_writes_nothing() {
    let scratch = Scratch::new("export-broken");
    let ca = scratch.ca();
    ca.init().unwrap();
    std::fs::write(ca.path().join(KEY_FILE), "garbage").unwrap();
    let public = scratch.0.join("public");
    assert!(matches!(
        ca.export_cert(&public),
        Err(Error::InvalidKey { .. })
    ));
    assert!(!public.exists());
}

#[test]
fn rotate_makes_a_new_ca_and_keeps_the_previous_certificate() {
    let scratch = Scratch::new("rotate");
    let ca = scratch.ca();
    let old = ca.init().unwrap().info().clone();
    let new = ca.rotate().unwrap();
    assert_ne!(new.sha256_fingerprint, old.sha256_fingerprint);
    assert_eq!(ca.load().unwrap(), new);
    assert_eq!(
        std::fs::read_to_string(ca.path().join(PREVIOUS_CERT_FILE)).unwrap(),
        old.cert_pem
    );
}

#[test]
fn rotate_replaces_a_broken_ca() {
    let scratch = Scratch::new("rotate-broken");
    let ca = scratch.ca();
    ca.init().unwrap();
    std::fs::remove_file(ca.path().join(BUNDLE_FILE)).unwrap();
    std::fs::write(ca.path().join(KEY_FILE), "garbage").unwrap();
    ca.rotate().unwrap();
    assert!(ca.load().is_ok());
}

#[test]
fn a_missing_file_next_to_the_others_is_refused() {
    for missing in FILES {
        let scratch = Scratch::new(&format!("missing-{missing}"));
        let ca = scratch.ca();
        ca.init().unwrap();
        std::fs::remove_file(ca.path().join(missing)).unwrap();
        let err = refused(&ca);
        let Error::Incomplete {
            missing: named,
            present,
            ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!(named, missing);
        assert!(!present.contains(missing));
        assert!(err.to_string().contains("safeai ca rotate"), "{err}");
    }
}

#[test]
fn a_corrupt_key_is_refused() {
    let scratch = Scratch::new("corrupt-key");
    let ca = scratch.ca();
    ca.init().unwrap();
    let key = ca.path().join(KEY_FILE);
    let pem = std::fs::read_to_string(&key).unwrap();
    std::fs::write(&key, pem.replacen("MI", "XX", 1)).unwrap();
    let err = refused(&ca);
    assert!(
        matches!(&err, Error::InvalidKey { path, .. } if *path == key),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.starts_with(&key.display().to_string()), "{message}");
    assert!(message.contains("safeai ca rotate"), "{message}");

    std::fs::write(&key, [0xff, 0xfe, 0x00]).unwrap();
    assert!(matches!(refused(&ca), Error::InvalidKey { .. }));
}

#[test]
fn the_key_of_another_ca_is_refused() {
    let scratch = Scratch::new("mismatch");
    let ca = scratch.ca();
    let other = CaDir::new(scratch.0.join("other"));
    ca.init().unwrap();
    other.init().unwrap();
    let other_key = std::fs::read_to_string(other.path().join(KEY_FILE)).unwrap();
    std::fs::write(ca.path().join(KEY_FILE), other_key).unwrap();
    let err = refused(&ca);
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("ca.key"), "{err}");
    assert!(err.to_string().contains("ca.crt"), "{err}");
}

#[test]
fn a_truncated_or_foreign_certificate_is_refused() {
    let scratch = Scratch::new("truncated");
    let ca = scratch.ca();
    ca.init().unwrap();
    let cert = ca.path().join(CERT_FILE);
    let pem = std::fs::read_to_string(&cert).unwrap();
    for bad in [
        pem[..pem.len() / 2].to_owned(),
        String::new(),
        format!("{pem}{pem}"),
        std::fs::read_to_string(ca.path().join(KEY_FILE)).unwrap(),
    ] {
        std::fs::write(&cert, &bad).unwrap();
        let err = refused(&ca);
        assert!(
            matches!(&err, Error::InvalidCert { path, .. } if *path == cert),
            "{err}"
        );
    }

    // A well-formed CA certificate, but another CA's: the key does not match it.
    let other = CaDir::new(scratch.0.join("other"));
    let other_pem = other.init().unwrap().info().cert_pem.clone();
    std::fs::write(&cert, other_pem).unwrap();
    assert!(matches!(refused(&ca), Error::KeyMismatch { .. }));
}

#[test]
fn a_certificate_that_is_not_a_ca_is_refused() {
    let scratch = Scratch::new("not-ca");
    let ca = scratch.ca();
    ca.init().unwrap();

    replace_cert(&ca, CertificateParams::default());
    let err = refused(&ca);
    assert!(
        matches!(
            err,
            Error::NotCa {
                reason: "no basicConstraints CA:TRUE",
                ..
            }
        ),
        "{err}"
    );

    let mut params = ca_params();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    replace_cert(&ca, params);
    let err = refused(&ca);
    assert!(
        matches!(
            err,
            Error::NotCa {
                reason: "no keyUsage keyCertSign",
                ..
            }
        ),
        "{err}"
    );

    // The same parameters otherwise: the checks above are what refused them.
    replace_cert(&ca, ca_params());
    assert!(ca.load().is_ok());
}

#[test]
fn an_expired_or_future_certificate_is_refused() {
    let scratch = Scratch::new("dates");
    let ca = scratch.ca();
    ca.init().unwrap();
    let now = OffsetDateTime::now_utc();

    let mut params = ca_params();
    params.not_before = now - Duration::days(20);
    params.not_after = now - Duration::days(10);
    replace_cert(&ca, params);
    let err = refused(&ca);
    assert!(matches!(err, Error::Expired { .. }), "{err}");
    assert!(err.to_string().contains("expired on"), "{err}");

    let mut params = ca_params();
    params.not_before = now + Duration::days(1);
    params.not_after = now + Duration::days(10);
    replace_cert(&ca, params);
    let err = refused(&ca);
    assert!(matches!(err, Error::NotYetValid { .. }), "{err}");
    assert!(err.to_string().contains("check the clock"), "{err}");
}

#[test]
fn a_generated_ca_is_valid_for_ten_years_and_not_after() {
    let scratch = Scratch::new("ten-years");
    let ca = scratch.ca();
    ca.init().unwrap();
    let now = OffsetDateTime::now_utc();
    assert!(ca.load_at(now + Duration::days(3649)).is_ok());
    assert!(matches!(
        ca.load_at(now + Duration::days(3651)),
        Err(Error::Expired { .. })
    ));
    assert!(matches!(
        ca.load_at(now - Duration::hours(2)),
        Err(Error::NotYetValid { .. })
    ));
}

#[test]
fn a_bundle_that_is_not_the_key_and_certificate_is_refused() {
    let scratch = Scratch::new("bundle-mismatch");
    let ca = scratch.ca();
    ca.init().unwrap();
    let bundle = ca.path().join(BUNDLE_FILE);
    let cert = std::fs::read_to_string(ca.path().join(CERT_FILE)).unwrap();
    std::fs::write(&bundle, cert).unwrap();
    let err = refused(&ca);
    assert!(
        matches!(&err, Error::BundleMismatch { path } if *path == bundle),
        "{err}"
    );
}

#[test]
fn a_certificate_alone_parses_with_its_origin_in_errors() {
    let scratch = Scratch::new("cert-only");
    let info = scratch.ca().init().unwrap().info().clone();
    let origin = Path::new("proxy:/var/lib/safe-ai/ca-public/ca.crt");
    assert_eq!(CaInfo::from_cert_pem(&info.cert_pem, origin).unwrap(), info);
    let err = CaInfo::from_cert_pem("", origin).unwrap_err();
    assert!(err.to_string().starts_with("proxy:/var/lib"), "{err}");
}

#[test]
fn the_display_and_summary_read_well() {
    let info = CaInfo {
        subject: "CN=safe-ai stack CA 0a1b2c3d, O=safe-ai".to_owned(),
        not_before: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        not_after: OffsetDateTime::from_unix_timestamp(2_015_360_000).unwrap(),
        sha256_fingerprint: "AB:CD".to_owned(),
        cert_pem: String::new(),
    };
    assert_eq!(
        info.to_string(),
        "subject      CN=safe-ai stack CA 0a1b2c3d, O=safe-ai\n\
         valid from   2023-11-14 22:13:20 UTC\n\
         valid until  2033-11-11 22:13:20 UTC\n\
         SHA-256      AB:CD"
    );
    assert_eq!(
        info.summary(),
        "CN=safe-ai stack CA 0a1b2c3d, O=safe-ai, SHA-256 AB:CD, valid until 2033-11-11 22:13:20 UTC"
    );
}

#[test]
fn an_owner_is_applied_and_a_replaced_file_keeps_its_owner() {
    use std::os::unix::fs::MetadataExt;
    let scratch = Scratch::new("owner");
    let me = std::fs::metadata(&scratch.0).unwrap();
    // As root (the proxy's case) hand the files to `nobody`; otherwise chown to our own
    // ids, which any user may do, so the code path still runs.
    let owner = if me.uid() == 0 {
        (65534, 65534)
    } else {
        (me.uid(), me.gid())
    };
    let ca = scratch.ca().with_owner(owner.0, owner.1);
    ca.init().unwrap();
    let ids = |f: &str| {
        let m = std::fs::metadata(ca.path().join(f)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(ids(""), owner, "the directory it created");
    for f in FILES {
        assert_eq!(ids(f), owner, "{f}");
    }
    // Without an owner, a rotation keeps the owner of the files it replaces.
    CaDir::new(ca.path()).rotate().unwrap();
    for f in FILES {
        assert_eq!(ids(f), owner, "{f}");
    }
}
