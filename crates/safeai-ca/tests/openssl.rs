//! The generated CA as OpenSSL, the library Squid signs with, reads it: the certificate's
//! extensions, the bundle Squid loads, and a leaf certificate signed by the CA verifying.

use std::path::{Path, PathBuf};
use std::process::Command;

use safeai_ca::{BUNDLE_FILE, CERT_FILE, CaDir, KEY_FILE};

/// `openssl ARGS` in `dir`; its stdout, or a panic with its stderr.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Whether the `openssl` binary runs. In CI (`CI=true`) its absence is a failure: this
/// check must not pass by not running.
fn have_openssl() -> bool {
    let found = Command::new("openssl").arg("version").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "openssl is not installed: the generated CA cannot be checked by the program \
             that reads it (install the openssl package)"
        );
        eprintln!("openssl is not installed here: skipping the OpenSSL checks");
    }
    found
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("safeai-ca-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn openssl_reads_the_ca_and_verifies_a_leaf_it_signed() {
    if !have_openssl() {
        return;
    }
    let dir = scratch("verify");
    let info = CaDir::new(&dir).init().unwrap().info().clone();

    let text = openssl(&dir, &["x509", "-in", CERT_FILE, "-noout", "-text"]);
    let after = |heading: &str| {
        let at = text
            .find(heading)
            .unwrap_or_else(|| panic!("no {heading} in:\n{text}"));
        text[at..].lines().nth(1).unwrap_or("").trim().to_owned()
    };
    assert!(
        text.contains("X509v3 Basic Constraints: critical"),
        "{text}"
    );
    assert_eq!(after("X509v3 Basic Constraints"), "CA:TRUE, pathlen:0");
    assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
    assert_eq!(after("X509v3 Key Usage"), "Certificate Sign, CRL Sign");
    assert!(text.contains("X509v3 Subject Key Identifier"), "{text}");
    assert!(text.contains("ASN1 OID: prime256v1"), "{text}");
    assert!(
        text.contains(&format!(
            "Subject: {}",
            info.subject.replace("CN=", "CN = ").replace("O=", "O = ")
        )),
        "{text}"
    );

    // The fingerprint is the one OpenSSL computes.
    let fingerprint = openssl(
        &dir,
        &[
            "x509",
            "-in",
            CERT_FILE,
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
    );
    assert_eq!(
        fingerprint.trim(),
        format!("sha256 Fingerprint={}", info.sha256_fingerprint)
    );

    // Squid reads the certificate and the key from the one bundle file.
    let from_bundle = openssl(&dir, &["x509", "-in", BUNDLE_FILE, "-noout", "-pubkey"]);
    let key = openssl(&dir, &["pkey", "-in", BUNDLE_FILE, "-pubout"]);
    assert_eq!(from_bundle, key, "the bundle's key is its certificate's");
    openssl(&dir, &["pkey", "-in", KEY_FILE, "-noout", "-check"]);

    // A leaf, as Squid mints them: signed with the CA key, verified against the CA alone.
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-subj",
            "/CN=leaf.test",
            "-out",
            "leaf.csr",
        ],
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:leaf.test\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        &dir,
        &[
            "x509", "-req", "-in", "leaf.csr", "-CA", CERT_FILE, "-CAkey", KEY_FILE, "-days", "1",
            "-extfile", "leaf.ext", "-out", "leaf.crt",
        ],
    );
    let verified = openssl(
        &dir,
        &[
            "verify",
            "-x509_strict",
            "-CAfile",
            CERT_FILE,
            "-verify_hostname",
            "leaf.test",
            "leaf.crt",
        ],
    );
    assert_eq!(verified.trim(), "leaf.crt: OK");

    // And a leaf signed by another CA does not verify: the check can fail.
    let other = dir.join("other");
    CaDir::new(&other).init().unwrap();
    let out = Command::new("openssl")
        .current_dir(&dir)
        .args(["verify", "-CAfile", "other/ca.crt", "leaf.crt"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}
