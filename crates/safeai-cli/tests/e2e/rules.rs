//! Rules and brokered credentials: the decrypted hosts of the e2e allowlist
//! (`rules.allowed.test`, `git-ro`/`git-rw.allowed.test`, `key`/`bearer.allowed.test`),
//! judged request by request from inside the sandbox, and the secret's absence from
//! everything the sandbox (and the logs) can see.

use crate::checks;
use crate::stack::{Check, Stack, ensure, text, unique};

pub const CHECKS: &[(&str, Check)] = checks![
    rules_allow_and_deny_by_method_and_path,
    ambiguous_paths_are_refused_on_ruled_hosts,
    git_clone_passes_a_read_only_rule_and_push_needs_a_read_write_one,
    the_upstream_sees_the_real_credential_never_the_clients,
    the_secret_never_reaches_the_sandbox_or_a_log,
    a_request_naming_another_host_inside_a_decrypted_connection_is_refused,
    decrypted_hosts_speak_http1_and_refuse_upgrades,
    rule_and_credential_changes_take_effect_on_reload_and_a_missing_secret_changes_nothing,
];

/// One answer, as the raw client below prints it.
#[derive(Debug)]
struct Answer {
    status: String,
    denied: String,
    body: String,
}

/// Sends each raw request on its own decrypted connection: CONNECT `host:443` through
/// the proxy, TLS with `sni` (trusting the sandbox's bundle: the stack CA signs the
/// proxy's certificate for a decrypted host), then the bytes as given.
fn raw(s: &Stack, host: &str, sni: &str, requests: &[String]) -> Result<Vec<Answer>, String> {
    let ca = s.ca_in_sandbox()?;
    let list: Vec<String> = requests.iter().map(|r| format!("{r:?}")).collect();
    let script = format!(
        r#"python3 - <<'PY'
import socket, ssl
REQUESTS = [{list}]
ctx = ssl.create_default_context(cafile="{ca}")
for i, req in enumerate(REQUESTS):
    try:
        s = socket.create_connection(("{proxy}", 3128), timeout=15)
        s.sendall(b"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            c = s.recv(1)
            if not c:
                break
            head += c
        t = ctx.wrap_socket(s, server_hostname="{sni}")
        t.sendall(req.encode("latin-1"))
        got = b""
        while True:
            c = t.recv(65536)
            if not c:
                break
            got += c
        top, _, body = got.partition(b"\r\n\r\n")
        lines = top.decode("latin-1").split("\r\n")
        denied = [l.split(":", 1)[1].strip() for l in lines[1:] if l.lower().startswith("x-safe-ai-denied:")]
        print("ANSWER", i, repr(lines[0]), repr(denied[0] if denied else "-"), repr(body.decode("latin-1")))
    except Exception as e:
        print("ANSWER", i, repr("error " + str(e)), repr("-"), repr(""))
PY"#,
        list = list.join(", "),
        proxy = s.proxy_ip(),
    );
    let out = text(&s.sandbox(&script).stdout);
    let answers: Vec<Answer> = out
        .lines()
        .filter_map(|l| l.strip_prefix("ANSWER "))
        .filter_map(|l| {
            // `i 'status' 'denied' 'body'`: Python reprs, unquoted enough for the checks.
            let fields = py_reprs(l.split_once(' ')?.1);
            (fields.len() == 3).then(|| Answer {
                status: fields[0].clone(),
                denied: fields[1].clone(),
                body: fields[2].clone(),
            })
        })
        .collect();
    ensure(answers.len() == requests.len(), || {
        format!(
            "the raw client answered {} of {} requests: {out}",
            answers.len(),
            requests.len()
        )
    })?;
    Ok(answers)
}

/// The Python `repr`s of strings on a line, unescaped as far as the checks need
/// (`\r`, `\n`, `\\`, `\'`).
fn py_reprs(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' && c != '"' {
            continue;
        }
        let quote = c;
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => s.push('\n'),
                    Some('r') => s.push('\r'),
                    Some('t') => s.push('\t'),
                    Some(o) => s.push(o),
                    None => {}
                },
                c if c == quote => break,
                c => s.push(c),
            }
        }
        out.push(s);
    }
    out
}

fn get(host: &str, path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
}

/// A request through the proxy with curl: `STATUS DENIED-REASON` (`-` for none).
fn curl(s: &Stack, args: &str) -> Result<String, String> {
    let ca = s.ca_in_sandbox()?;
    let out = s.sandbox(&format!(
        "curl -s -o /dev/null -D /tmp/h --max-time 15 --cacert {ca} -w '%{{http_code}}' {args}; \
         echo \" $(grep -i '^x-safe-ai-denied:' /tmp/h | cut -d' ' -f2 | tr -d '\\r' || true)\""
    ));
    let got = text(&out.stdout);
    let got = got.trim();
    Ok(if got.ends_with(' ') || !got.contains(' ') {
        format!("{} -", got.trim())
    } else {
        got.to_owned()
    })
}

pub fn rules_allow_and_deny_by_method_and_path(s: &Stack) -> Result<(), String> {
    let h = "rules.allowed.test";
    for (args, want) in [
        (format!("https://{h}/repos/acme/tools"), "200 -"),
        (
            format!("https://{h}/repos/acme/tools/issues?state=open"),
            "200 -",
        ),
        (format!("https://{h}/repos/acme"), "200 -"),
        (
            format!("-X POST -d x https://{h}/repos/acme/tools/pulls"),
            "200 -",
        ),
        // HEAD is GET without the body: allowed by the GET rule (the stand-in has no HEAD).
        (format!("-I https://{h}/repos/acme/tools"), "501 -"),
        (format!("https://{h}/repos/other/tools"), "403 rule"),
        (format!("https://{h}/repos/acmex/tools"), "403 rule"),
        (
            format!("-X DELETE https://{h}/repos/acme/tools"),
            "403 rule",
        ),
        (
            format!("-X POST -d x https://{h}/repos/acme/tools/sub/pulls"),
            "403 rule",
        ),
        (
            format!("-X PUT -d x https://{h}/repos/acme/tools/pulls"),
            "403 rule",
        ),
        // Plain HTTP to a ruled host is judged by the same rules.
        (format!("http://{h}/repos/acme/tools"), "200 -"),
        (format!("http://{h}/repos/other/tools"), "403 rule"),
    ] {
        let got = curl(s, &args)?;
        ensure(got == want, || {
            format!("curl {args}: {got:?}, want {want:?}")
        })?;
    }
    // The page names the rules that did not match, and where they are written.
    let ca = s.ca_in_sandbox()?;
    let page = text(
        &s.sandbox(&format!(
            "curl -s --max-time 15 --cacert {ca} https://{h}/repos/other/x"
        ))
        .stdout,
    );
    for want in [
        "(rule)",
        "GET /repos/acme/**",
        "POST /repos/acme/*/pulls",
        "allowlist.yaml:",
        "/repos/other/x",
    ] {
        ensure(page.contains(want), || {
            format!("the rule page lacks {want:?}:\n{page}")
        })?;
    }
    // Decrypted: the certificate the sandbox sees for a ruled host is the stack CA's,
    // while a host without rules keeps its own (the upstream's, from the test CA).
    let issuer = |host: &str| {
        text(&s.sandbox(&format!(
            "openssl s_client -proxy {}:3128 -connect {host}:443 -servername {host} </dev/null 2>/dev/null \
             | openssl x509 -noout -issuer",
            s.proxy_ip()
        )).stdout)
    };
    let (ruled, spliced) = (issuer(h), issuer("api.allowed.test"));
    ensure(
        ruled.contains("safe-ai") && !ruled.contains("e2e test CA"),
        || format!("{h} is not decrypted with the stack CA: issuer {ruled:?}"),
    )?;
    ensure(spliced.contains("e2e test CA"), || {
        format!("api.allowed.test is not spliced: issuer {spliced:?}")
    })?;
    // The decision log names the reason and the host whose rules refused it.
    let events = s.events_for(h)?;
    ensure(
        events.iter().any(|e| {
            e["decision"] == "denied"
                && e["reason"] == "rule"
                && e["rule"] == h
                && e["path"] == "/repos/other/x"
        }),
        || format!("no denied event with reason rule and rule {h} for /repos/other/x: {events:?}"),
    )
}

pub fn ambiguous_paths_are_refused_on_ruled_hosts(s: &Stack) -> Result<(), String> {
    let h = "rules.allowed.test";
    let tag = unique("amb");
    let forms = [
        "/repos/acme/../other",
        "/repos/acme/x/..",
        "/repos/acme/./x",
        "/repos/acme/%2e%2e/other",
        "/repos/acme/%2E/x",
        "/repos/acme/x%2fy",
        "/repos/acme/x%2Fy",
        "/repos/acme/x%5cy",
        "/repos/acme/x\\y",
        "/repos/acme//x",
        "/repos/acme/x%00",
        "/repos/acme/x%252e%252e",
        "/repos/acme/x%3f/y",
        "/repos/acme/x%23y",
    ];
    let requests: Vec<String> = forms
        .iter()
        .map(|p| get(h, &format!("{p}?{tag}"), ""))
        .chain([get(h, &format!("/repos/acme/ok?{tag}=%2f//.."), "")])
        .collect();
    let answers = raw(s, h, h, &requests)?;
    for (form, a) in forms.iter().zip(&answers) {
        ensure(
            a.status.contains(" 403 ") && a.denied == "ambiguous-path",
            || format!("{form}: {a:?}"),
        )?;
    }
    let control = answers.last().unwrap();
    ensure(
        control.status.contains(" 200 ") && control.denied == "-",
        || format!("a query with %2f, // and .. was refused: {control:?}"),
    )?;
    let upstream = text(&s.compose(&["logs", "--no-color", "upstream"]).stdout);
    let reached = upstream.lines().filter(|l| l.contains(&tag)).count();
    ensure(reached == 1, || {
        format!("{reached} requests with {tag} reached the upstream; only the control should")
    })
}

pub fn git_clone_passes_a_read_only_rule_and_push_needs_a_read_write_one(
    s: &Stack,
) -> Result<(), String> {
    let ca = s.ca_in_sandbox()?;
    let branch = unique("e2e-rules");
    let run = |host: &str| {
        let dir = format!("/tmp/{}", unique("clone"));
        let out = s.sandbox(&format!(
            "export GIT_SSL_CAINFO={ca}; set -e; git clone -q https://{host}/repo.git {dir}; \
             echo cloned; cd {dir}; git -c user.name=e2e -c user.email=e2e@e2e.invalid \
             commit -q --allow-empty -m rules; git fetch -q origin && echo fetched; \
             git push -q origin HEAD:refs/heads/{branch} 2>&1 && echo pushed || echo push-refused"
        ));
        format!("{}{}", text(&out.stdout), text(&out.stderr))
    };
    let ro = run("git-ro.allowed.test");
    ensure(
        ro.contains("cloned")
            && ro.contains("fetched")
            && ro.contains("push-refused")
            && ro.contains("403"),
        || format!("read-only rule: clone and fetch must pass, push be refused with 403:\n{ro}"),
    )?;
    let rw = run("git-rw.allowed.test");
    ensure(rw.contains("cloned") && rw.contains("pushed"), || {
        format!("read-write rule: clone and push must pass:\n{rw}")
    })?;
    // The refused push never reached the server: only the read-write one created a ref.
    let refs = text(
        &s.compose(&[
            "exec",
            "-T",
            "upstream",
            "git",
            "-C",
            "/srv/git/repo.git",
            "for-each-ref",
            "--format=%(refname)",
        ])
        .stdout,
    );
    ensure(refs.matches(&branch).count() == 1, || {
        format!(
            "the upstream has {} refs named {branch}: {refs}",
            refs.matches(&branch).count()
        )
    })
}

pub fn the_upstream_sees_the_real_credential_never_the_clients(s: &Stack) -> Result<(), String> {
    let secret = s.secret();
    let token = secret.replace("key", "token");
    let answers = raw(
        s,
        "key.allowed.test",
        "key.allowed.test",
        &[
            get(
                "key.allowed.test",
                "/",
                "x-api-key: client-value\r\nX-API-KEY: second\r\n",
            ),
            get("key.allowed.test", "/", ""),
        ],
    )?;
    for a in &answers {
        let body = a.body.to_ascii_lowercase();
        ensure(a.status.contains(" 200 "), || {
            format!("key.allowed.test: {a:?}")
        })?;
        ensure(body.contains(&format!("x-api-key: {secret}")), || {
            format!("the upstream did not see the real key: {}", a.body)
        })?;
        ensure(
            body.matches("x-api-key:").count() == 1
                && !body.contains("client-value")
                && !body.contains("second"),
            || format!("the client's own header reached the upstream: {}", a.body),
        )?;
    }
    let bearer = raw(
        s,
        "bearer.allowed.test",
        "bearer.allowed.test",
        &[get(
            "bearer.allowed.test",
            "/",
            "Authorization: Bearer placeholder\r\n",
        )],
    )?;
    ensure(
        bearer[0].body.contains(&format!("Bearer {token}"))
            && !bearer[0].body.contains("placeholder"),
        || format!("bearer.allowed.test: {:?}", bearer[0]),
    )?;
    // Over plain HTTP the client's header is removed and no key is added: a secret never
    // travels in clear text.
    let out = text(
        &s.sandbox("curl -s --max-time 15 -H 'x-api-key: client-value' http://key.allowed.test/")
            .stdout,
    );
    ensure(
        out.contains("GET / HTTP/1.1") && !out.to_ascii_lowercase().contains("x-api-key"),
        || format!("plain HTTP to key.allowed.test: {out}"),
    )?;
    // Another host gets no key, and keeps the client's header (it is not decrypted at all).
    let other = text(&s.sandbox(&format!(
        "curl -s --max-time 15 --cacert {} -H 'x-api-key: client-value' https://api.allowed.test/",
        s.ca_in_sandbox()?
    )).stdout);
    ensure(
        other.contains("client-value") && !other.contains(&secret),
        || format!("api.allowed.test: {other}"),
    )
}

pub fn the_secret_never_reaches_the_sandbox_or_a_log(s: &Stack) -> Result<(), String> {
    let secret = s.secret();
    // The session has the placeholder under the credential's name.
    let env = text(
        &s.sandbox("printenv E2E_API_KEY; printenv E2E_TOKEN || echo no-token-var")
            .stdout,
    );
    ensure(
        env == "safe-ai-brokered-placeholder\nno-token-var\n",
        || format!("the sandbox's E2E_API_KEY / E2E_TOKEN: {env:?}"),
    )?;
    // Files, environments and command lines of every process: none holds it. As root, so
    // nothing is out of the search's reach. The patterns travel base64-encoded and reach
    // grep through a pipe, so that the search's own command lines do not hold them.
    let patterns = format!("{secret}\n{}\n", secret.replace("key", "token"));
    let out = s.exec(
        "sandbox",
        "root",
        &format!(
            "pat=$(printf %s '{}' | base64 -d); echo \"decoded=${{#pat}}\"; \
             timeout 300 grep -rlsF -f <(printf '%s' \"$pat\") / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev; \
             for p in /proc/[0-9]*; do cat $p/environ $p/cmdline 2>/dev/null | tr '\\0' '\\n' \
             | grep -qF -f <(printf '%s' \"$pat\") && echo in $p: $(tr '\\0' ' ' < $p/cmdline); done; \
             ls /etc/safe-ai/secrets 2>&1; echo searched",
            base64(&patterns)
        ),
    );
    let found = text(&out.stdout);
    // The control: the patterns arrived whole (a broken decoding would find nothing).
    let decoded = format!("decoded={}\n", patterns.len() - 1);
    let found = found.strip_prefix(&decoded).ok_or_else(|| {
        format!("the search's patterns did not arrive whole (want {decoded:?}): {found}")
    })?;
    ensure(
        found.ends_with("No such file or directory\nsearched\n") && found.lines().count() == 2,
        || format!("the secret (or the secrets directory) is visible in the sandbox:\n{found}"),
    )?;
    // Logs, `safeai check` and the compose model name the secret, never its value.
    let logs = text(&s.compose(&["logs", "--no-color"]).stdout)
        + &text(&s.compose(&["logs", "--no-color"]).stderr);
    ensure(!logs.contains(&secret), || {
        "the secret is in `docker compose logs`".to_owned()
    })?;
    let check = s.safeai(&["check", "--allowlist", s.allowlist().to_str().unwrap()]);
    let shown = text(&check.stdout) + &text(&check.stderr);
    ensure(
        shown.contains("E2E_API_KEY") && !shown.contains(&secret),
        || format!("safeai check must name the secret, not show it:\n{shown}"),
    )?;
    let config = text(&s.compose(&["config"]).stdout);
    ensure(!config.contains(&secret), || {
        "the secret is in `docker compose config`".to_owned()
    })?;
    // In the proxy, the squid.conf that carries it is root's and Squid's group's only:
    // the SSH forwarder's `nobody` cannot read it.
    let out = s.exec(
        "proxy",
        "root",
        "conf=$(readlink -f /run/safe-ai/squid.conf); stat -c '%a %U:%G' \"$conf\"; \
         setpriv --reuid nobody --regid nogroup --clear-groups cat \"$conf\" >/dev/null 2>&1 \
         && echo nobody-reads-it || echo nobody-refused",
    );
    let got = text(&out.stdout);
    ensure(got == "640 root:proxy\nnobody-refused\n", || {
        format!(
            "the proxy's squid.conf with the secret: {got:?} {}",
            text(&out.stderr)
        )
    })
}

pub fn a_request_naming_another_host_inside_a_decrypted_connection_is_refused(
    s: &Stack,
) -> Result<(), String> {
    let tag = unique("other-host");
    let answers = raw(
        s,
        "key.allowed.test",
        "key.allowed.test",
        &[
            // The Host header names another allowlisted host (spliced), a ruled one, a
            // denied one; the absolute URI names another host.
            get("api.allowed.test", &format!("/?{tag}"), ""),
            get("rules.allowed.test", &format!("/repos/acme/x?{tag}"), ""),
            get("evil.test", &format!("/?{tag}"), ""),
            format!(
                "GET https://api.allowed.test/?{tag} HTTP/1.1\r\nHost: key.allowed.test\r\nConnection: close\r\n\r\n"
            ),
            // The connection's own host, as a control.
            get("key.allowed.test", &format!("/?{tag}-control"), ""),
        ],
    )?;
    for a in &answers[..4] {
        ensure(
            a.status.contains(" 403 ") && a.denied == "other-host",
            || {
                format!(
                    "a request for another host inside the connection to key.allowed.test: {a:?}"
                )
            },
        )?;
    }
    ensure(answers[4].status.contains(" 200 "), || {
        format!("control: {:?}", answers[4])
    })?;
    let upstream = text(&s.compose(&["logs", "--no-color", "upstream"]).stdout);
    let reached: Vec<&str> = upstream.lines().filter(|l| l.contains(&tag)).collect();
    ensure(
        reached.len() == 1 && reached[0].contains("-control"),
        || format!("only the control may reach the upstream: {reached:#?}"),
    )
}

pub fn decrypted_hosts_speak_http1_and_refuse_upgrades(s: &Stack) -> Result<(), String> {
    let ca = s.ca_in_sandbox()?;
    let version = text(&s.sandbox(&format!(
        "curl -s -o /dev/null --http2 --max-time 15 --cacert {ca} -w '%{{http_version}} %{{http_code}}' https://key.allowed.test/"
    )).stdout);
    ensure(version == "1.1 200", || {
        format!("HTTP/2 asked of a decrypted host: {version:?}")
    })?;
    let ws = curl(
        s,
        "-H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
         -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' https://rules.allowed.test/repos/acme/ws",
    )?;
    ensure(ws == "403 upgrade", || {
        format!("a WebSocket upgrade on a ruled host: {ws:?}")
    })?;
    // A tunnel inside the checked connection: a CONNECT sent through it.
    let inner = raw(
        s,
        "key.allowed.test",
        "key.allowed.test",
        &[
            "CONNECT key.allowed.test:443 HTTP/1.1\r\nHost: key.allowed.test:443\r\n\r\n"
                .to_owned(),
        ],
    )?;
    ensure(
        inner[0].status.contains(" 403 ") && inner[0].denied == "upgrade",
        || format!("a CONNECT inside a decrypted connection: {:?}", inner[0]),
    )
}

pub fn rule_and_credential_changes_take_effect_on_reload_and_a_missing_secret_changes_nothing(
    s: &Stack,
) -> Result<(), String> {
    struct Restore<'a>(&'a Stack, String);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = std::fs::write(self.0.allowlist(), &self.1);
            let _ = self
                .0
                .compose(&["exec", "-T", "proxy", "safeai-proxy", "reload"]);
        }
    }
    let original = std::fs::read_to_string(s.allowlist()).map_err(|e| e.to_string())?;
    let restore = Restore(s, original.clone());
    let reload = || s.compose(&["exec", "-T", "proxy", "safeai-proxy", "reload"]);
    let path = "https://rules.allowed.test/repos/other/x";
    ensure(curl(s, path)? == "403 rule", || {
        "precondition: /repos/other is refused".into()
    })?;

    // A wider rule takes effect.
    let wider = original.replace(
        "      - GET /repos/acme/**\n",
        "      - GET /repos/acme/**\n      - GET /repos/other/**\n",
    );
    ensure(wider != original, || {
        "the allowlist has no `GET /repos/acme/**` line to extend".into()
    })?;
    std::fs::write(s.allowlist(), &wider).map_err(|e| e.to_string())?;
    let out = reload();
    ensure(out.status.success(), || {
        format!("reload failed: {}", text(&out.stderr))
    })?;
    ensure(curl(s, path)? == "200 -", || {
        "after the reload, /repos/other still refused".into()
    })?;

    // A credential whose secret does not exist: the reload is refused, naming it, and the
    // running config (with the wider rule) stays.
    let missing = format!(
        "{wider}  - {{domain: new.allowed.test, header: x-api-key, value: '${{E2E_ABSENT}}'}}\n"
    );
    std::fs::write(s.allowlist(), &missing).map_err(|e| e.to_string())?;
    let out = reload();
    let said = text(&out.stderr) + &text(&out.stdout);
    ensure(
        !out.status.success() && said.contains("E2E_ABSENT") && said.contains("does not exist"),
        || format!("a reload with a missing secret must fail and name it: {said}"),
    )?;
    ensure(curl(s, path)? == "200 -", || {
        "the refused reload changed the running config".into()
    })?;
    // At start the same render refuses (the proxy fails closed): the start-up render,
    // run into a scratch directory of the running proxy.
    let bad = "/tmp/missing-secret.yaml";
    let out = s.compose(&["exec", "-T", "proxy", "sh", "-c", &format!(
        "cat > {bad} <<'EOF'\ncredentials:\n  - {{domain: new.allowed.test, header: x-api-key, value: '${{E2E_ABSENT}}'}}\nEOF\n\
         safeai proxy render --run-dir /tmp/render-test --allowlist {bad}; echo rc=$?; ls /tmp/render-test/current 2>&1 | head -1"
    )]);
    let said = text(&out.stdout) + &text(&out.stderr);
    ensure(
        said.contains("rc=1")
            && said.contains("secret E2E_ABSENT")
            && said.contains("does not exist")
            && said.contains("No such file"),
        || format!("the start-up render with a missing secret: {said}"),
    )?;

    // The secret changes with a reload (a rotated key).
    std::fs::write(s.allowlist(), &original).map_err(|e| e.to_string())?;
    let rotated = format!("{}-rotated", s.secret());
    let file = s.secrets_dir().join("E2E_API_KEY");
    std::fs::write(&file, &rotated).map_err(|e| e.to_string())?;
    let out = reload();
    let _ = std::fs::write(&file, s.secret());
    ensure(out.status.success(), || {
        format!("reload failed: {}", text(&out.stderr))
    })?;
    let a = raw(
        s,
        "key.allowed.test",
        "key.allowed.test",
        &[get("key.allowed.test", "/", "")],
    )?;
    ensure(a[0].body.contains(&rotated), || {
        format!("after the rotation: {:?}", a[0])
    })?;
    drop(restore);
    ensure(curl(s, path)? == "403 rule", || {
        "the restored allowlist does not refuse /repos/other".into()
    })
}

/// Standard base64, for handing a string to a shell without writing it out.
fn base64(text: &str) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
