//! The TLS layer, tried from inside the sandbox: SNI-checked splicing, non-TLS bytes cut,
//! opaque tunnels where the allowlist says so, the stack CA trusted by the sandbox's tools
//! (and its key nowhere in the sandbox), upstream certificates checked by the proxy, and
//! a denial page that names host, reason and fix over HTTP and HTTPS alike.

use crate::stack::{Stack, ensure, text, unique};

/// `curl -sS -D -` in the sandbox, trusting only the system bundle (which holds the stack
/// CA): headers and body, with the curl error last if any.
fn fetch(s: &Stack, url: &str, extra: &str) -> String {
    let out = s.sandbox(&format!(
        "curl -sS -D - --max-time 10 {extra} '{url}' 2>&1; true"
    ));
    text(&out.stdout).replace('\r', "")
}

/// A deny page as the client got it: status, `X-Safe-AI-Denied`, the body's claims.
fn expect_page(got: &str, reason: &str, host: &str) -> Result<(), String> {
    // The last response (a CONNECT's own 200 comes first for HTTPS).
    let last = got.rfind("HTTP/1.1 ").map(|i| &got[i..]).unwrap_or(got);
    let lower = last.to_ascii_lowercase();
    ensure(
        last.starts_with("HTTP/1.1 403")
            && lower.contains(&format!("x-safe-ai-denied: {reason}\n"))
            && lower.contains("content-type: text/plain")
            && last.contains(&format!("host:    {host}"))
            && last.contains("reason:  ")
            && last.contains("fix:     ")
            && !lower.contains("squid")
            && !lower.contains("cache administrator"),
        || format!("expected the {reason} page for {host}, got:\n{got}"),
    )
}

pub fn every_denial_reads_the_same_over_http_and_https(s: &Stack) -> Result<(), String> {
    let denied = format!("{}.evil.test", unique("page"));
    let ip = s.upstream_ip();
    for (reason, host, http, https, https_extra) in [
        (
            "not-allowlisted",
            denied.as_str(),
            format!("http://{denied}/"),
            format!("https://{denied}/"),
            "",
        ),
        (
            "port",
            "api.allowed.test",
            "http://api.allowed.test:8080/".to_owned(),
            "https://api.allowed.test:8443/".to_owned(),
            "",
        ),
        (
            "ip-address",
            ip.as_str(),
            format!("http://{ip}/"),
            format!("https://{ip}/"),
            // Squid mints the certificate for an address without an IP subjectAltName,
            // which clients reject: the page is there, behind a certificate error.
            "-k",
        ),
        (
            "private-address",
            "metadata.allowed.test",
            "http://metadata.allowed.test/".to_owned(),
            "https://metadata.allowed.test/".to_owned(),
            "",
        ),
    ] {
        expect_page(&fetch(s, &http, ""), reason, host).map_err(|e| format!("{http}: {e}"))?;
        // No --cacert: the page comes inside TLS with a certificate from the stack CA,
        // which the sandbox's system bundle trusts.
        expect_page(&fetch(s, &https, https_extra), reason, host)
            .map_err(|e| format!("{https}: {e}"))?;
    }
    let page = fetch(s, &format!("https://{denied}/"), "");
    ensure(page.contains(&format!("safeai allow {denied}")), || {
        format!("the not-allowlisted page does not say how to allow the host:\n{page}")
    })
}

pub fn a_spliced_host_keeps_its_own_certificate(s: &Stack) -> Result<(), String> {
    let out = s.sandbox(&format!(
        "openssl s_client -proxy {}:3128 -connect api.allowed.test:443 -servername api.allowed.test \
         </dev/null 2>/dev/null | grep -E '^(issuer|subject)='; true",
        s.proxy_ip()
    ));
    let got = text(&out.stdout);
    ensure(
        got.contains("issuer=CN = safe-ai e2e test CA") && !got.contains("safe-ai stack CA"),
        || format!("the spliced host's certificate is not the upstream's own: {got:?}"),
    )?;
    // And the request reaches the upstream end to end, trusting the upstream's CA only.
    let ca = s.ca_in_sandbox()?;
    let body = fetch(s, "https://api.allowed.test/", &format!("--cacert {ca}"));
    ensure(
        body.contains("HTTP/1.1 200") && body.contains("GET / HTTP/1.1"),
        || format!("https://api.allowed.test/ through the splice: {body}"),
    )
}

pub fn a_mismatched_or_missing_sni_is_refused(s: &Stack) -> Result<(), String> {
    let path = format!("/{}", unique("sni"));
    // The CONNECT names api.allowed.test; the ClientHello names another host: one outside
    // the allowlist, and one inside it.
    for other in ["evil.test", "sub.api.allowed.test"] {
        let got = fetch(
            s,
            &format!("https://{other}{path}"),
            &format!("--connect-to {other}:443:api.allowed.test:443"),
        );
        expect_page(&got, "sni-mismatch", other)?;
    }
    // No SNI at all.
    let out = s.sandbox(&format!(
        "printf 'GET {path} HTTP/1.1\\r\\nHost: api.allowed.test\\r\\nConnection: close\\r\\n\\r\\n' | \
         timeout 10 openssl s_client -quiet -proxy {}:3128 -connect api.allowed.test:443 -noservername \
         -verify_return_error 2>/dev/null; true",
        s.proxy_ip()
    ));
    expect_page(
        &text(&out.stdout).replace('\r', ""),
        "sni-mismatch",
        "api.allowed.test",
    )
    .map_err(|e| format!("no SNI: {e}"))?;
    // None of these reached the upstream.
    let logs = text(&s.compose(&["logs", "--no-color", "upstream"]).stdout);
    ensure(!logs.contains(&path), || {
        format!("a refused connection reached the upstream: {path} is in its log")
    })
}

/// Opens a CONNECT to `host:443` from the sandbox, sends an SSH-like banner and a line,
/// and returns what came back after the proxy's `200`.
fn raw_tunnel(s: &Stack, host: &str) -> String {
    let script = format!(
        r#"python3 - <<'PY'
import socket
s = socket.create_connection(("{proxy}", 3128), timeout=10)
s.sendall(b"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    chunk = s.recv(1)
    if not chunk:
        break
    head += chunk
print("connect:", head.split(b"\r\n")[0].decode())
s.sendall(b"SSH-2.0-OpenSSH_9.2\r\nhello\r\n")
got = b""
try:
    while b"echo: hello" not in got:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
except OSError as e:
    print("error:", e)
print("got:", got)
PY"#,
        proxy = s.proxy_ip(),
    );
    text(&s.sandbox(&script).stdout)
}

pub fn non_tls_bytes_end_the_tunnel_unless_the_entry_is_opaque(s: &Stack) -> Result<(), String> {
    // The same server behind both names: a banner, then an echo; it logs each connection.
    let connections = || {
        text(&s.compose(&["logs", "--no-color", "raw"]).stdout)
            .matches("raw: connection from")
            .count()
    };
    let before = connections();
    let checked = raw_tunnel(s, "raw.allowed.test");
    ensure(
        checked.contains("connect: HTTP/1.1 200") && checked.contains("got: b''"),
        || format!("non-TLS bytes to raw.allowed.test (tunnel: tls) were not cut: {checked}"),
    )?;
    ensure(connections() == before, || {
        "the cut tunnel to raw.allowed.test still reached the server".to_owned()
    })?;
    let opaque = raw_tunnel(s, "opaque.allowed.test");
    ensure(
        opaque.contains("SSH-2.0-e2e-raw") && opaque.contains("echo: hello"),
        || format!("the opaque tunnel to opaque.allowed.test did not carry the bytes: {opaque}"),
    )?;
    ensure(connections() > before, || {
        "the raw server logged no connection for the opaque tunnel: the count proves nothing"
            .to_owned()
    })?;
    ensure(
        s.events_for("raw.allowed.test")?
            .iter()
            .any(|e| e["reason"] == "opaque-tunnel" && e["decision"] == "denied"),
        || "no event with reason opaque-tunnel for raw.allowed.test".to_owned(),
    )
}

pub fn an_upstream_certificate_the_proxy_does_not_trust_is_refused(
    s: &Stack,
) -> Result<(), String> {
    // A mismatched SNI makes the proxy speak TLS to the CONNECT target itself (to show the
    // page): with the test CA's upstream that works, with an untrusted one it must not.
    let trusted = fetch(
        s,
        "https://evil.test/",
        "--connect-to evil.test:443:api.allowed.test:443",
    );
    expect_page(&trusted, "sni-mismatch", "evil.test").map_err(|e| format!("control: {e}"))?;
    let untrusted = fetch(
        s,
        "https://evil.test/",
        "--connect-to evil.test:443:untrusted.allowed.test:443",
    );
    ensure(
        untrusted.contains("HTTP/1.1 503")
            && untrusted.contains("(ERR_SECURE_CONNECT_FAIL)")
            && untrusted.contains("host:    untrusted.allowed.test"),
        || format!("the proxy did not refuse untrusted.allowed.test's certificate:\n{untrusted}"),
    )?;
    // A decrypted host (a credential's) behind the same untrusted certificate: the proxy
    // verifies it before any request, and so before any key, goes out.
    let decrypted = fetch(s, "https://untrusted-key.allowed.test/", "");
    ensure(
        decrypted.contains("HTTP/1.1 503")
            && decrypted.contains("(ERR_SECURE_CONNECT_FAIL)")
            && decrypted.contains("host:    untrusted-key.allowed.test"),
        || {
            format!(
                "the proxy did not refuse the decrypted host's untrusted certificate:\n{decrypted}"
            )
        },
    )
}

pub fn the_ca_key_never_reaches_the_sandbox(s: &Stack) -> Result<(), String> {
    // A line of the key's base64 body, looked for in every readable file of the sandbox.
    let key = s.exec("proxy", "root", "sed -n 2p /var/lib/safe-ai/ca/ca.key");
    let line = text(&key.stdout).trim().to_owned();
    ensure(line.len() > 40, || {
        format!("cannot read the CA key in the proxy: {}", text(&key.stderr))
    })?;
    let out = s.exec(
        "sandbox",
        "root",
        &format!(
            "grep -rlIF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev -e '{line}' / 2>/dev/null; \
             echo done; ls -A /etc/safe-ai/ca; touch /etc/safe-ai/ca/x 2>&1"
        ),
    );
    let got = text(&out.stdout);
    let (found, rest) = got.split_once("done\n").unwrap_or((&got, ""));
    ensure(found.trim().is_empty(), || {
        format!("the CA key is readable in the sandbox: {found}")
    })?;
    ensure(
        rest.starts_with("ca.crt\n") && rest.contains("Read-only file system"),
        || format!("/etc/safe-ai/ca holds more than the certificate, or is writable: {rest:?}"),
    )?;
    // The certificate the sandbox trusts is the proxy's.
    let (proxy, sandbox) = (
        s.ca_fingerprint("proxy", "/var/lib/safe-ai/ca/ca.crt"),
        s.ca_fingerprint("sandbox", "/etc/safe-ai/ca/ca.crt"),
    );
    ensure(!proxy.is_empty() && proxy == sandbox, || {
        format!("stack CA in the proxy {proxy:?}, in the sandbox {sandbox:?}")
    })
}

/// Whether the proxy logged a decrypted request to `host` (the request a client sends
/// inside a denied CONNECT, answered with the page): the client finished the TLS
/// handshake with the stack CA's certificate.
fn decrypted_request_logged(s: &Stack, host: &str) -> bool {
    s.events_for(host).is_ok_and(|events| {
        events
            .iter()
            .any(|e| e["kind"] == "https" && e["port"] == 443 && e["status"] == 403)
    })
}

/// Runs each tool's script against a fresh denied host and checks its words and the
/// proxy's log: `want` in the output, no TLS complaint, and a decrypted request logged.
fn tools_trust(
    s: &Stack,
    run: impl Fn(&str) -> String,
    tools: &[(&str, &str, &str)],
) -> Result<(), String> {
    for (tool, script, want) in tools {
        let host = format!("{}.evil.test", unique("trust"));
        let got = run(&script.replace("HOST", &host));
        let lower = got.to_ascii_lowercase();
        ensure(
            got.contains(want)
                && !lower.contains("certificate")
                && !lower.contains("ssl")
                && !lower.contains("pkix"),
            || format!("{tool} did not trust the stack CA (want {want:?}):\n{got}"),
        )?;
        ensure(decrypted_request_logged(s, &host), || {
            format!("{tool}: no decrypted request to {host} in the proxy's log:\n{got}")
        })?;
    }
    Ok(())
}

pub fn the_sandboxs_tools_trust_the_stack_ca(s: &Stack) -> Result<(), String> {
    // Each tool fetches from a denied host: the answer comes through a connection the
    // proxy decrypted with a certificate from the stack CA. An HTTP 403 means the tool
    // trusted it; a certificate error means it did not.
    let tools: &[(&str, &str, &str)] = &[
        (
            "curl",
            "curl -sS https://HOST/ 2>&1",
            "refused this request",
        ),
        ("git", "git ls-remote https://HOST/repo.git 2>&1", "403"),
        (
            "python urllib",
            "python3 -c 'import urllib.request, urllib.error\ntry: urllib.request.urlopen(\"https://HOST/\")\nexcept urllib.error.HTTPError as e: print(e.code, e.headers[\"X-Safe-AI-Denied\"])' 2>&1",
            "403 not-allowlisted",
        ),
        (
            // pip's own copy of requests: the same code as the package, with
            // REQUESTS_CA_BUNDLE.
            "python requests",
            "python3 -c 'from pip._vendor import requests\nr = requests.get(\"https://HOST/\")\nprint(r.status_code, r.headers[\"X-Safe-AI-Denied\"])' 2>&1",
            "403 not-allowlisted",
        ),
        (
            // pip reads a 403 index as "no such package"; a TLS failure would say so.
            "pip",
            "pip download --no-deps --retries 0 --dest /tmp/pip-e2e --index-url https://HOST/simple/ x 2>&1",
            "No matching distribution found for x",
        ),
    ];
    tools_trust(
        s,
        |script| text(&s.sandbox(&format!("{script}; true")).stdout),
        tools,
    )
}

/// Node has no proxy support of its own: a CONNECT by hand, then TLS over it (with the
/// default CAs and NODE_EXTRA_CA_CERTS).
const NODE_PROBE: &str = r#"node -e '
const http = require("http"), tls = require("tls");
const [ph, pp] = process.env.HTTPS_PROXY.replace("http://", "").split(":");
const host = process.argv[1];
http.request({ host: ph, port: pp, method: "CONNECT", path: host + ":443" }).on("connect", (res, socket) => {
  const t = tls.connect({ socket, servername: host }, () => {
    t.write("GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n");
  });
  let data = ""; t.on("data", d => data += d);
  t.on("end", () => console.log(data.split("\r\n")[0], (data.match(/X-Safe-AI-Denied: \S+/) || ["none"])[0]));
  t.on("error", e => console.log("error", e.message));
}).end();' HOST 2>&1"#;

/// Java through the proxy settings and the trust store that the image's start hooks put
/// in JAVA_TOOL_OPTIONS.
const JAVA_PROBE: &str = r#"cat > /tmp/Probe.java <<'JAVA'
public class Probe {
  public static void main(String[] a) throws Exception {
    var c = (java.net.HttpURLConnection) new java.net.URI(a[0]).toURL().openConnection();
    System.out.println(c.getResponseCode() + " " + c.getHeaderField("X-Safe-AI-Denied"));
  }
}
JAVA
java /tmp/Probe.java https://HOST/ 2>&1 | grep -v -e '^Picked up JAVA_TOOL_OPTIONS' -e '^NOTE:'"#;

pub fn the_example_images_tools_trust_the_stack_ca(s: &Stack) -> Result<(), String> {
    let tools: &[(&str, &str, &str)] = &[
        (
            "node",
            NODE_PROBE,
            "HTTP/1.1 403 Forbidden X-Safe-AI-Denied: not-allowlisted",
        ),
        (
            "cargo",
            "CARGO_HOME=/tmp/cargo cargo search --index https://HOST/index x 2>&1",
            "got 403",
        ),
        (
            "java (the Java example image)",
            JAVA_PROBE,
            "403 not-allowlisted",
        ),
    ];
    tools_trust(
        s,
        // stdout only: the entrypoint's own lines go to stderr.
        |script| text(&s.in_tools_image(script).stdout),
        tools,
    )
}

/// Figures, not assertions (these machines are shared and noisy): what the SNI check
/// costs. The same fast TLS server (OpenSSL's s_server) reached three ways: through the
/// proxy peeked and spliced (`fast.allowed.test`), through the proxy unread
/// (`fast-opaque.allowed.test`, `tunnel: opaque`: the plain tunnel the proxy had before
/// the TLS layer), and directly from a container on the external network. Throughput of
/// a 256 MiB download (median of 3 each), and the median time to a finished TLS handshake
/// (`time_appconnect`) of 200 new connections each. Fails only when a probe does not
/// complete.
pub fn figure_cost_of_the_sni_check(s: &Stack) -> Result<(), String> {
    const BYTES: u64 = 256 * 1024 * 1024;
    const CONNECTIONS: usize = 200;
    let ca = s.ca_in_sandbox()?;
    let download = |run: &dyn Fn(&str) -> String, host: &str, ca: &str| -> Result<f64, String> {
        let got = run(&format!(
            "curl -s -o /dev/null --max-time 120 --cacert {ca} -w '%{{size_download}} %{{speed_download}}' https://{host}/zero"
        ));
        match got.trim().split_once(' ') {
            Some((size, speed)) if size.parse() == Ok(BYTES) => speed
                .parse::<f64>()
                .map_err(|e| format!("{host}: {got:?}: {e}")),
            _ => Err(format!("download from {host} incomplete: {got:?}")),
        }
    };
    // The median of one timing of curl's over a new connection each time.
    let timed = |run: &dyn Fn(&str) -> String,
                 host: &str,
                 ca: &str,
                 timing: &str|
     -> Result<f64, String> {
        let got = run(&format!(
            "for i in $(seq {CONNECTIONS}); do curl -s -o /dev/null --max-time 10 --cacert {ca} \
             -w '%{{{timing}}}\\n' https://{host}/one; done"
        ));
        let mut times: Vec<f64> = got
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .filter(|t: &f64| *t > 0.0)
            .collect();
        if times.len() != CONNECTIONS {
            return Err(format!(
                "{host}: {} of {CONNECTIONS} handshakes",
                times.len()
            ));
        }
        times.sort_by(f64::total_cmp);
        Ok(times[CONNECTIONS / 2])
    };
    let handshakes = |run: &dyn Fn(&str) -> String, host: &str, ca: &str| {
        timed(run, host, ca, "time_appconnect")
    };
    let sandbox = |script: &str| text(&s.sandbox(script).stdout);
    let mount = format!("{}:/test-ca:ro", s.test_ca().display());
    let direct = |script: &str| text(&s.on_external(&[&mount], script).stdout);
    // Three rounds, interleaved, and the median of each: one download is at the mercy of
    // whatever else the machine does.
    let (mut spliced, mut opaque, mut straight) = (Vec::new(), Vec::new(), Vec::new());
    let mut bumped = Vec::new();
    for _ in 0..3 {
        bumped.push(download(&sandbox, "fast-bumped.allowed.test", ca)?);
        spliced.push(download(&sandbox, "fast.allowed.test", ca)?);
        opaque.push(download(&sandbox, "fast-opaque.allowed.test", ca)?);
        straight.push(download(&direct, "fast.allowed.test", "/test-ca/ca.pem")?);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (spliced, opaque, straight) = (median(spliced), median(opaque), median(straight));
    eprintln!(
        "figure: 256 MiB over HTTPS, median of 3: decrypted (rules) {:.0} MB/s ({:+.1} % against spliced)",
        median(bumped.clone()) / 1e6,
        (median(bumped) / spliced - 1.0) * 100.0,
    );
    eprintln!(
        "figure: 256 MiB over HTTPS, median of 3: spliced after the SNI check {:.0} MB/s, plain tunnel {:.0} MB/s ({:+.1} %), direct {:.0} MB/s",
        spliced / 1e6,
        opaque / 1e6,
        (spliced / opaque - 1.0) * 100.0,
        straight / 1e6
    );
    let spliced = handshakes(&sandbox, "fast.allowed.test", ca)?;
    let opaque = handshakes(&sandbox, "fast-opaque.allowed.test", ca)?;
    let straight = handshakes(&direct, "fast.allowed.test", "/test-ca/ca.pem")?;
    eprintln!(
        "figure: new HTTPS connection to handshake done, median of {CONNECTIONS}: spliced after the SNI check {:.2} ms, plain tunnel {:.2} ms ({:+.2} ms), direct {:.2} ms",
        spliced * 1e3,
        opaque * 1e3,
        (spliced - opaque) * 1e3,
        straight * 1e3
    );
    // A whole request on a new connection: for a decrypted host the proxy's own TLS
    // to the upstream happens after the client's handshake, so the total is the figure.
    // The first request mints the host's certificate; the median is of cached ones.
    let total =
        |run: &dyn Fn(&str) -> String, host: &str, ca: &str| timed(run, host, ca, "time_total");
    let bumped = total(&sandbox, "fast-bumped.allowed.test", ca)?;
    let spliced = total(&sandbox, "fast.allowed.test", ca)?;
    let straight = total(&direct, "fast.allowed.test", "/test-ca/ca.pem")?;
    eprintln!(
        "figure: new HTTPS connection to response done, median of {CONNECTIONS}: decrypted (rules) {:.2} ms ({:+.2} ms against spliced), spliced {:.2} ms, direct {:.2} ms",
        bumped * 1e3,
        (bumped - spliced) * 1e3,
        spliced * 1e3,
        straight * 1e3
    );
    Ok(())
}

pub const CHECKS: &[(&str, crate::stack::Check)] = crate::checks![
    every_denial_reads_the_same_over_http_and_https,
    a_spliced_host_keeps_its_own_certificate,
    a_mismatched_or_missing_sni_is_refused,
    non_tls_bytes_end_the_tunnel_unless_the_entry_is_opaque,
    an_upstream_certificate_the_proxy_does_not_trust_is_refused,
    the_ca_key_never_reaches_the_sandbox,
    the_sandboxs_tools_trust_the_stack_ca,
    the_example_images_tools_trust_the_stack_ca,
    figure_cost_of_the_sni_check,
];
