//! The decision log on the running stack: the tap's events for each kind of decision,
//! `safeai logs`, `logs summary` and `learn` on a scripted set of denials, `learn
//! --apply`, hostile text, the bounded logs, and the tap's cost.

use std::time::{Duration, Instant};

use crate::checks;
use crate::stack::{Check, Event, Stack, ensure, text, unique};

pub const CHECKS: &[(&str, Check)] = checks![
    the_decision_log_has_an_event_for_each_kind_of_decision,
    hostile_hosts_paths_and_snis_come_out_escaped,
    logs_summary_and_learn_on_a_scripted_set_of_denials,
    both_services_logs_are_bounded_and_the_decision_log_stays_under_its_cap,
    figure_requests_per_second_with_and_without_the_tap,
];

/// The host's clock as `--since` takes it (the proxy's clock is the same kernel's).
fn now_arg() -> String {
    safeai_log::Timestamp::now().to_string()
}

/// Polls the decision log until `want` holds for the events of `host` (the tap writes
/// as the lines come; DNS events wait for dnsmasq's outcome line), for up to 10 s.
fn wait_for(s: &Stack, host: &str, want: impl Fn(&[Event]) -> bool) -> Result<Vec<Event>, String> {
    let started = Instant::now();
    loop {
        let events = s.events_for(host)?;
        if want(&events) || started.elapsed() > Duration::from_secs(10) {
            return Ok(events);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn the_decision_log_has_an_event_for_each_kind_of_decision(s: &Stack) -> Result<(), String> {
    let u = unique("kinds");
    let allowed = format!("{u}.api.allowed.test");
    let denied = format!("{u}.evil.test");
    let private = format!("{u}.metadata.allowed.test");
    let sinkholed = format!("{u}-dns.evil.test");
    let forwarded = format!("{u}-dns.api.allowed.test");
    let ip = s.upstream_ip();
    let out = s.sandbox(&format!(
        "c() {{ curl -sk -o /dev/null --max-time 10 -w '%{{http_code}} ' \"$@\"; }}; \
         c https://{allowed}/; c https://{denied}/; c https://{allowed}:8443/; \
         c http://{ip}/{u}; c https://{private}/; \
         dig +short +tries=1 +time=3 {sinkholed}; dig +short +tries=1 +time=3 {forwarded}"
    ));
    let got = text(&out.stdout);
    ensure(got.starts_with("200 403 403 403 403 "), || {
        format!("the requests did not get their answers: {got:?}")
    })?;
    // The origin: line 3, column 5 of the suite's allowlist, as the proxy mounts it.
    let origin = "/etc/safe-ai/allowlist.yaml:3:5";
    let one = |host: &str, what: &str, test: &dyn Fn(&Event) -> bool| -> Result<(), String> {
        let events = wait_for(s, host, |es| es.iter().any(test))?;
        ensure(events.iter().any(test), || {
            format!("{what}: no such event for {host}; its events: {events:?}")
        })
    };
    one(&allowed, "allowed HTTPS", &|e| {
        e["kind"] == "connect"
            && e["decision"] == "allowed"
            && e["result"] == "TCP_TUNNEL"
            && e["sni"] == allowed.as_str()
            && e["tls"] == "splice"
            && e["entry"] == "api.allowed.test"
            && e["origin"] == origin
            && e["bytes"].as_u64().is_some_and(|b| b > 0)
    })?;
    one(&denied, "denied by name", &|e| {
        e["kind"] == "connect" && e["decision"] == "denied" && e["reason"] == "not-allowlisted"
    })?;
    one(&allowed, "denied by port", &|e| {
        e["port"] == 8443
            && e["decision"] == "denied"
            && e["reason"] == "port"
            && e["entry"] == "api.allowed.test"
    })?;
    one(&ip, "denied by IP literal", &|e| {
        e["kind"] == "http"
            && e["path"] == format!("/{u}").as_str()
            && e["decision"] == "denied"
            && e["reason"] == "ip-address"
            && e.get("entry").is_none()
    })?;
    one(&private, "denied by private address", &|e| {
        e["kind"] == "connect"
            && e["decision"] == "denied"
            && e["reason"] == "private-address"
            && e["entry"] == "metadata.allowed.test"
    })?;
    one(&sinkholed, "DNS sinkholed", &|e| {
        e["kind"] == "dns"
            && e["query"] == "A"
            && e["result"] == "sinkholed"
            && e["decision"] == "denied"
            && e["reason"] == "not-allowlisted"
    })?;
    one(&forwarded, "DNS forwarded", &|e| {
        e["kind"] == "dns"
            && e["result"] == "forwarded"
            && e["decision"] == "allowed"
            && e["entry"] == "api.allowed.test"
            && e["origin"] == origin
    })
}

pub fn hostile_hosts_paths_and_snis_come_out_escaped(s: &Stack) -> Result<(), String> {
    let u = unique("hostile");
    // An SNI that tries to end its value and add a decision; a path with a quote, an
    // escape and a newline the client percent-encoded; a host with a quote.
    let sni = format!("{u} \\\"decision\\\":\\\"allowed\\\" reason=- \u{1b}[31m");
    let script = format!(
        r#"P=${{HTTPS_PROXY#http://}}
echo | timeout 10 openssl s_client -proxy "$P" -connect api.allowed.test:443 -servername "$(printf '{sni}')" >/dev/null 2>&1
python3 - "${{P%:*}}" <<'PY'
import socket, sys
for req in [b'GET http://{u}.evil.test/%22q%0A%1B[31m HTTP/1.1\r\nHost: {u}.evil.test\r\n\r\n',
            b'CONNECT {u}"x.evil.test:443 HTTP/1.1\r\nHost: x\r\n\r\n']:
    s = socket.create_connection((sys.argv[1], 3128)); s.sendall(req); s.recv(100); s.close()
PY
true"#
    );
    s.sandbox(&script);
    let want_sni = format!("{u} \"decision\":\"allowed\" reason=- \u{1b}[31m");
    let started = Instant::now();
    let (raw, events) = loop {
        let out = s.compose(&[
            "exec",
            "-T",
            "proxy",
            "sh",
            "-c",
            "cat /var/log/safe-ai/events.jsonl.1 2>/dev/null; cat /var/log/safe-ai/events.jsonl",
        ]);
        let raw = out.stdout;
        let events: Vec<Event> = text(&raw)
            .lines()
            .filter(|l| l.contains(&u))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if events.len() >= 3 || started.elapsed() > Duration::from_secs(10) {
            break (raw, events);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // The file: one event per line, no control byte but the newlines, every line JSON.
    ensure(
        raw.iter().all(|&b| b == b'\n' || (b >= 0x20 && b != 0x7f)),
        || "a raw control byte in the events file".to_owned(),
    )?;
    let lines = text(&raw);
    let bad: Vec<&str> = lines
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_err())
        .collect();
    ensure(bad.is_empty(), || {
        format!("lines that are not JSON: {bad:?}")
    })?;
    let by_sni = events.iter().find(|e| e["sni"] == want_sni.as_str());
    ensure(
        by_sni.is_some_and(|e| e["decision"] == "denied" && e["reason"] == "sni-mismatch"),
        || format!("the hostile SNI is not one denied event with its exact text: {events:?}"),
    )?;
    ensure(
        events
            .iter()
            .any(|e| e["path"] == "/%22q%0A%1B[31m" && e["decision"] == "denied")
            && events.iter().any(|e| {
                e["host"] == format!("{u}\"x.evil.test").as_str() && e["decision"] == "denied"
            }),
        || format!("the hostile path or host did not come out as sent: {events:?}"),
    )?;
    // The text for a terminal: no escape byte reaches it.
    let out = s.safeai(&["logs", "--denied"]);
    let shown = text(&out.stdout);
    ensure(out.status.success() && shown.contains(&u), || {
        format!("safeai logs --denied: {}", text(&out.stderr))
    })?;
    ensure(
        !shown.contains('\u{1b}') && shown.contains("\\u{1b}[31m"),
        || "safeai logs printed a raw escape, or not the escaped one".to_owned(),
    )
}

/// Masks what changes between runs: times, the scratch directory.
fn masked(s: &Stack, out: &str) -> String {
    let scratch = s.scratch.display().to_string();
    let mut t = out.replace(&scratch, "[scratch]");
    // 2026-12-02 15:20:38 → [time]
    let re_time = |line: &str| -> String {
        let b = line.as_bytes();
        let mut out = String::new();
        let mut i = 0;
        while i < b.len() {
            let is_time = b.len() - i >= 19
                && line.is_char_boundary(i)
                && line.is_char_boundary(i + 19)
                && line[i..i + 19].bytes().enumerate().all(|(k, c)| match k {
                    4 | 7 => c == b'-',
                    10 => c == b' ',
                    13 | 16 => c == b':',
                    _ => c.is_ascii_digit(),
                });
            if is_time {
                out.push_str("[time]             ");
                i += 19;
            } else {
                let c = line[i..].chars().next().unwrap();
                out.push(c);
                i += c.len_utf8();
            }
        }
        out
    };
    t = t.lines().map(re_time).collect::<Vec<_>>().join("\n");
    t
}

pub fn logs_summary_and_learn_on_a_scripted_set_of_denials(s: &Stack) -> Result<(), String> {
    struct Restore<'a>(&'a Stack, String);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            std::fs::write(self.0.allowlist(), &self.1).unwrap();
            let _ = std::fs::remove_file(self.0.scratch.join(".allowlist.yaml.safeai-learned"));
            self.0.safeai(&["reload"]);
        }
    }
    let _restore = Restore(s, std::fs::read_to_string(s.allowlist()).unwrap());
    let ca = s.ca_in_sandbox()?;
    let since = now_arg();
    // What a package install behind the proxy might run into: its index and file hosts
    // (learn.test names, which the suite's nameserver answers), and the denials no entry
    // fixes.
    let out = s.sandbox(&format!(
        "c() {{ curl -s -o /dev/null --max-time 10 --cacert {ca} -w '%{{http_code}} ' \"$@\"; }}; \
         c http://registry.learn.test/pkg; c http://registry.learn.test/pkg/-/pkg-1.0.tgz; \
         c https://files.learn.test/x.whl; c https://cdn.files.learn.test/y.whl; \
         c http://169.254.169.254/latest/meta-data/; c https://metadata.allowed.test/; \
         c -k --connect-to evil.test:443:api.allowed.test:443 https://evil.test/; \
         c https://api.allowed.test:8443/; \
         dig +short +tries=1 +time=3 telemetry.learn.test"
    ));
    let got = text(&out.stdout);
    ensure(
        got.starts_with("403 403 403 403 403 403 403 403 0.0.0.0"),
        || format!("the scripted requests did not get their answers: {got:?}"),
    )?;
    wait_for(s, "telemetry.learn.test", |es| !es.is_empty())?;
    let run = |args: &[&str]| -> Result<String, String> {
        let out = s.safeai(args);
        ensure(out.status.success(), || {
            format!("safeai {args:?}: {}", text(&out.stderr))
        })?;
        Ok(masked(s, &text(&out.stdout)))
    };
    insta::assert_snapshot!(
        "logs-denied-since",
        run(&["logs", "--denied", "--since", &since])?
    );
    insta::assert_snapshot!(
        "logs-summary-since",
        run(&["logs", "summary", "--since", &since])?
    );
    insta::assert_snapshot!("learn-since", run(&["learn", "--since", &since])?);

    // --apply: through `safeai allow`, then the next request succeeds.
    let before = std::fs::read_to_string(s.allowlist()).unwrap();
    let out = s.safeai(&["learn", "--since", &since, "--apply"]);
    ensure(out.status.success(), || {
        format!("safeai learn --apply: {}", text(&out.stderr))
    })?;
    let after = std::fs::read_to_string(s.allowlist()).unwrap();
    // Two lines added to the domains list (wherever it ends), nothing else changed.
    let added: Vec<&str> = after
        .lines()
        .filter(|l| !before.lines().any(|b| b == *l))
        .collect();
    ensure(
        added == ["  - files.learn.test", "  - registry.learn.test"]
            && after.lines().count() == before.lines().count() + 2,
        || format!("learn --apply did not add exactly the two entries:\n{after}"),
    )?;
    let started = Instant::now();
    let mut code = String::new();
    while started.elapsed() < Duration::from_secs(5) {
        code = s.status_from_sandbox("http://registry.learn.test/pkg");
        if code == "200" {
            break;
        }
    }
    ensure(code == "200", || {
        format!("registry.learn.test after learn --apply: {code:?}")
    })?;
    // Since the last learn: nothing left to propose from those denials.
    let out = run(&["learn"])?;
    ensure(out.starts_with("nothing to propose"), || {
        format!("learn after --apply proposed again:\n{out}")
    })
}

pub fn both_services_logs_are_bounded_and_the_decision_log_stays_under_its_cap(
    s: &Stack,
) -> Result<(), String> {
    // Docker's own logs: the compose file carries the limits, and the containers run
    // with them.
    for service in ["proxy", "sandbox"] {
        let config = s.service_config(service)?;
        let logging = &config["logging"];
        ensure(
            logging["driver"] == "json-file"
                && logging["options"]["max-size"] == "10m"
                && logging["options"]["max-file"] == "3",
            || format!("{service}: logging {logging}"),
        )?;
        let id = text(&s.compose(&["ps", "-q", service]).stdout)
            .trim()
            .to_owned();
        let live = text(
            &s.run(
                "docker",
                &["inspect", "-f", "{{json .HostConfig.LogConfig}}", &id],
            )
            .stdout,
        );
        ensure(
            live.contains("\"max-size\":\"10m\"") && live.contains("\"max-file\":\"3\""),
            || format!("{service} runs with log config {live}"),
        )?;
    }
    // The decision log under a bounded flood of denied requests: its file and the
    // previous one together stay under the cap the suite sets, and the newest event is
    // still written (the tap keeps up).
    let cap: u64 = s
        .env()
        .iter()
        .find(|(k, _)| *k == "SAFE_AI_EVENTS_MAX_BYTES")
        .and_then(|(_, v)| v.parse().ok())
        .ok_or("the suite sets no SAFE_AI_EVENTS_MAX_BYTES")?;
    let u = unique("flood");
    let n = 3000;
    let out = s.sandbox(&format!(
        r#"P=${{HTTP_PROXY#http://}}; python3 - "${{P%:*}}" <<'PY'
import socket, sys
def connect():
    s = socket.create_connection((sys.argv[1], 3128))
    return s, s.makefile('rb')
s, f = connect()
for i in range({n}):
    for attempt in range(3):
        try:
            s.sendall(b'GET http://%d.{u}.evil.test/ HTTP/1.1\r\nHost: x\r\n\r\n' % i)
            if not f.readline(): raise OSError('closed')
            length, close = 0, False
            while True:
                h = f.readline().lower()
                if h in (b'\r\n', b''): break
                if h.startswith(b'content-length:'): length = int(h.split(b':')[1])
                if h.startswith(b'connection:') and b'close' in h: close = True
            f.read(length)
            if close:
                s.close(); s, f = connect()
            break
        except OSError:
            s.close(); s, f = connect()
print('sent')
PY"#
    ));
    ensure(text(&out.stdout).trim() == "sent", || {
        format!(
            "the flood did not run: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })?;
    let last = format!("\"{}.{u}.evil.test\"", n - 1);
    let started = Instant::now();
    loop {
        let out = s.compose(&[
            "exec",
            "-T",
            "proxy",
            "sh",
            "-c",
            "cd /var/log/safe-ai && wc -c < events.jsonl && wc -c < events.jsonl.1 && tail -n 1 events.jsonl",
        ]);
        let got = text(&out.stdout);
        let mut lines = got.lines();
        let (now, old) = (
            lines.next().and_then(|l| l.trim().parse::<u64>().ok()),
            lines.next().and_then(|l| l.trim().parse::<u64>().ok()),
        );
        let tail = lines.next().unwrap_or_default();
        if let (Some(now), Some(old)) = (now, old)
            && tail.contains(&last)
        {
            eprintln!("figure: decision log after {n} denials: {now} + {old} bytes (cap {cap})");
            return ensure(now + old <= cap, || {
                format!("the decision log holds {now} + {old} bytes, over its cap of {cap}")
            });
        }
        if started.elapsed() > Duration::from_secs(20) {
            return Err(format!(
                "the decision log did not rotate or lost the newest event: {got:?} {}",
                text(&out.stderr)
            ));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Small requests per second through the proxy, from the sandbox, timed inside it:
/// `denied`: `n` plain GETs for a denied name on one keep-alive connection, each answered
/// by Squid itself with its page (the least work per log line: the tap's worst case);
/// otherwise `n` HTTPS requests to the fast upstream, each a new CONNECT, TLS handshake
/// and `GET /one` (two log lines each: the tunnel's start and end).
fn requests_per_second(s: &Stack, denied: bool, n: u32) -> Result<f64, String> {
    let out = s.sandbox(&format!(
        r#"P=${{HTTP_PROXY#http://}}; python3 - "${{P%:*}}" {denied} {n} <<'PY'
import socket, ssl, sys, time
proxy, denied, n = sys.argv[1], sys.argv[2] == 'true', int(sys.argv[3])
def response(f):
    status = f.readline(); length = 0
    while True:
        h = f.readline()
        if h in (b'\r\n', b''): break
        if h.lower().startswith(b'content-length:'): length = int(h.split(b':')[1])
    f.read(length)
    return status
if denied:
    s = socket.create_connection((proxy, 3128)); f = s.makefile('rb')
    def one():
        s.sendall(b'GET http://figure.evil.test/ HTTP/1.1\r\nHost: figure.evil.test\r\n\r\n')
        return response(f).startswith(b'HTTP/1.1 403')
else:
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    def one():
        s = socket.create_connection((proxy, 3128))
        s.sendall(b'CONNECT fast.allowed.test:443 HTTP/1.1\r\nHost: fast.allowed.test:443\r\n\r\n')
        f = s.makefile('rb')
        if not response(f).startswith(b'HTTP/1.1 200'): return False
        t = ctx.wrap_socket(s, server_hostname='fast.allowed.test')
        t.sendall(b'GET /one HTTP/1.0\r\n\r\n')
        got = b''
        while True:
            b = t.recv(4096)
            if not b: break
            got += b
        t.close()
        return got.startswith(b'HTTP/1.0 200')
for _ in range(20): one()
t = time.monotonic()
ok = sum(one() for _ in range(n))
print(ok, time.monotonic() - t)
PY"#
    ));
    let got = text(&out.stdout);
    let (ok, secs) = got
        .trim()
        .split_once(' ')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<f64>().ok()?)))
        .ok_or_else(|| format!("no measurement: {got:?} {}", text(&out.stderr)))?;
    ensure(ok == n, || {
        format!("only {ok} of {n} requests got their answer")
    })?;
    Ok(f64::from(n) / secs)
}

/// The tap's cost: small requests per second with Squid's access log going through the
/// tap (as shipped), and with it going through a plain copy to the container's stdout
/// instead (what the proxy did before the tap), alternated to spread the noise of a
/// shared machine. Prints the figure; never a timed assertion.
pub fn figure_requests_per_second_with_and_without_the_tap(s: &Stack) -> Result<(), String> {
    struct Restore<'a>(&'a Stack);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            // Re-renders the shipped config (access log to the tap) and tells Squid.
            self.0.safeai(&["reload"]);
            self.0.compose(&[
                "exec",
                "-T",
                "proxy",
                "sh",
                "-c",
                "kill $(cat /run/safe-ai/plain-copy.pid) 2>/dev/null; rm -f /run/safe-ai/plain.pipe",
            ]);
        }
    }
    let _restore = Restore(s);
    let proxy = |script: &str| -> Result<(), String> {
        let out = s.compose(&["exec", "-T", "proxy", "bash", "-c", script]);
        ensure(out.status.success(), || {
            format!("in the proxy: {script}: {}", text(&out.stderr))
        })
    };
    // The plain copy: a pipe read by `cat` into the container's stdout (PID 1's).
    proxy(
        "cd /run/safe-ai && rm -f plain.pipe && mkfifo -m 0660 plain.pipe && chown proxy:root plain.pipe \
         && { cat <>plain.pipe >/proc/1/fd/1 & echo $! > plain-copy.pid; }",
    )?;
    let to = |pipe: &str| {
        format!(
            "conf=$(readlink -f /run/safe-ai/squid.conf) && \
             sed -i 's#^access_log stdio:[^ ]* #access_log stdio:/run/safe-ai/{pipe} #' \"$conf\" && \
             grep -q '^access_log stdio:/run/safe-ai/{pipe} ' \"$conf\" && \
             squid -k reconfigure -f /run/safe-ai/squid.conf && sleep 2"
        )
    };
    // CPU seconds (user + system) of the tap and of Squid so far, from /proc.
    // (the tap, the plain copy, Squid)
    let cpu = || -> Result<(f64, f64, f64), String> {
        let out = s.compose(&[
            "exec",
            "-T",
            "proxy",
            "sh",
            "-c",
            "for p in $(pgrep -f '^safeai proxy tap') x $(cat /run/safe-ai/plain-copy.pid) x \
             $(pgrep -x squid); do \
             if [ $p = x ]; then echo x; else cut -d' ' -f14,15 /proc/$p/stat; fi; done",
        ]);
        let got = text(&out.stdout);
        let ticks = |part: &str| -> f64 {
            part.lines()
                .flat_map(|l| l.split_whitespace())
                .filter_map(|t| t.parse::<f64>().ok())
                .sum::<f64>()
                / 100.0
        };
        let parts: Vec<&str> = got.split("x\n").collect();
        match parts[..] {
            [tap, copy, squid] => Ok((ticks(tap), ticks(copy), ticks(squid))),
            _ => Err(format!("no CPU times: {got:?}")),
        }
    };
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (what, denied, n) in [
        ("denied plain GETs (keep-alive)", true, 2000),
        ("HTTPS requests (each a CONNECT)", false, 300),
    ] {
        let (mut with, mut without) = (Vec::new(), Vec::new());
        let (mut tap_cpu, mut copy_cpu, mut squid_cpu) = (0.0, 0.0, 0.0);
        for _ in 0..5 {
            proxy(&to("access.pipe"))?;
            let (tap0, _, squid0) = cpu()?;
            with.push(requests_per_second(s, denied, n)?);
            let (tap1, _, squid1) = cpu()?;
            (tap_cpu, squid_cpu) = (tap_cpu + tap1 - tap0, squid_cpu + squid1 - squid0);
            proxy(&to("plain.pipe"))?;
            let (_, copy0, _) = cpu()?;
            without.push(requests_per_second(s, denied, n)?);
            let (_, copy1, _) = cpu()?;
            copy_cpu += copy1 - copy0;
        }
        let (w, wo) = (median(&mut with), median(&mut without));
        eprintln!(
            "figure: {what} through the proxy: {w:.0}/s with the tap, {wo:.0}/s with a plain copy \
             (medians of 5 runs of {n}: {with:.0?} vs {without:.0?}); overhead {:.1} %",
            (1.0 - w / wo) * 100.0
        );
        // The same cost without the machine's noise: the tap's CPU time per request
        // against Squid's, for the same requests.
        eprintln!(
            "figure: {what}: the tap's CPU {:.0} µs per request, the plain copy's {:.0} µs, \
             Squid's {:.0} µs (the tap less the copy: {:.1} % of Squid's)",
            tap_cpu / f64::from(5 * n) * 1e6,
            copy_cpu / f64::from(5 * n) * 1e6,
            squid_cpu / f64::from(5 * n) * 1e6,
            (tap_cpu - copy_cpu) / squid_cpu * 100.0
        );
    }
    Ok(())
}
