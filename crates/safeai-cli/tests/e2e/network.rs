//! Network escapes tried from inside the sandbox: through the proxy, around it, to the
//! host, and through DNS. Each must fail, or behave exactly as stated.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::time::Duration;

use crate::stack::{Stack, ensure, text, unique};

/// `curl` in the sandbox through its proxy settings, with the test CA:
/// "HTTP_CODE CONNECT_CODE".
fn codes(s: &Stack, ca: &str, url: &str, extra: &str) -> String {
    let out = s.sandbox(&format!(
        "curl -s -o /dev/null --max-time 10 --cacert {ca} {extra} -w '%{{http_code}} %{{http_connect}}' '{url}'; true"
    ));
    text(&out.stdout)
}

pub fn allowed_https_http_and_subdomain_answer(s: &Stack) -> Result<(), String> {
    let ca = s.ca_in_sandbox()?;
    for (url, want) in [
        ("https://api.allowed.test/", "200 200"),
        ("http://api.allowed.test/", "200 000"),
        ("https://sub.api.allowed.test/", "200 200"),
        ("http://sub.api.allowed.test/", "200 000"),
    ] {
        let got = codes(s, ca, url, "");
        ensure(got == want, || {
            format!("{url}: expected {want:?} (HTTP, CONNECT), got {got:?}")
        })?;
    }
    Ok(())
}

pub fn denied_name_gets_403_for_connect_and_http_and_is_logged(s: &Stack) -> Result<(), String> {
    let ca = s.ca_in_sandbox()?;
    let host = format!("{}.evil.test", unique("denied"));
    let https = codes(s, ca, &format!("https://{host}/"), "");
    let http = codes(s, ca, &format!("http://{host}/"), "");
    // A denied CONNECT is answered inside TLS (the stack CA's certificate): 403 after 200.
    ensure(https == "403 200" && http.starts_with("403 "), || {
        format!("{host}: CONNECT {https:?}, HTTP {http:?}")
    })?;
    let logs = text(&s.compose(&["logs", "--no-color", "proxy"]).stdout);
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(&format!("host={host}")) && l.contains("TCP_DENIED"))
        .collect();
    ensure(
        lines.iter().any(|l| l.contains("method=CONNECT"))
            && lines.iter().any(|l| l.contains("method=GET")),
        || format!("the proxy's log lacks the CONNECT and GET denials of {host}: {lines:?}"),
    )
}

pub fn other_ports_are_denied(s: &Stack) -> Result<(), String> {
    let ca = s.ca_in_sandbox()?;
    // The upstream answers on 8443 (TLS) and 8080: only the proxy stands in the way.
    let connect = codes(s, ca, "https://api.allowed.test:8443/", "");
    let http = codes(s, ca, "http://api.allowed.test:8080/", "");
    ensure(connect == "403 200" && http.starts_with("403 "), || {
        format!("CONNECT to 8443: {connect:?}; HTTP to 8080: {http:?}")
    })
}

pub fn ip_literals_are_denied(s: &Stack) -> Result<(), String> {
    let ca = s.ca_in_sandbox()?;
    let ip = s.upstream_ip();
    // The upstream really listens at this address: a pass here is the proxy's refusal.
    for url in [
        format!("http://{ip}/"),
        format!("https://{ip}/"),
        "http://[::1]/".to_owned(),
        "https://[fd00::1]/".to_owned(),
        format!("http://[::ffff:{ip}]/"),
    ] {
        let got = codes(s, ca, &url, "-k");
        ensure(got.starts_with("403 "), || format!("{url}: {got:?}"))?;
    }
    Ok(())
}

pub fn host_header_cannot_smuggle_a_denied_destination(s: &Stack) -> Result<(), String> {
    let ca = s.ca_in_sandbox()?;
    let got = codes(s, ca, "http://evil.test/", "-H 'Host: api.allowed.test'");
    ensure(got.starts_with("403 "), || {
        format!("absolute URI to evil.test with Host: api.allowed.test → {got:?}")
    })
}

pub fn allowlisted_names_resolving_to_blocked_ranges_are_denied(s: &Stack) -> Result<(), String> {
    let ca = s.ca_in_sandbox()?;
    // In the proxy these allowlisted names resolve to the cloud metadata address, to
    // loopback, and to the proxy's own internal address (172.16.0.0/12, not excepted).
    for host in [
        "metadata.allowed.test",
        "loopback.allowed.test",
        "internal.allowed.test",
    ] {
        for url in [format!("http://{host}/"), format!("https://{host}/")] {
            let got = codes(s, ca, &url, "");
            ensure(got.starts_with("403 "), || format!("{url}: {got:?}"))?;
        }
    }
    Ok(())
}

pub fn no_direct_tcp_udp_or_icmp_route(s: &Stack) -> Result<(), String> {
    let ip = s.upstream_ip();
    let ns = s.nameserver_ip();
    let out = s.sandbox(&format!(
        "unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy; \
         echo route: $(ip route get {ip} 2>&1); \
         curl -sS --noproxy '*' --max-time 5 -o /dev/null http://{ip}/ 2>&1; echo tcp=$?; \
         dig +tries=1 +time=3 @{ns} udp-probe.allowed.test >/dev/null 2>&1; echo udp=$?"
    ));
    let got = text(&out.stdout);
    // ICMP needs a raw socket (CAP_NET_RAW is dropped) and a route (there is none).
    ensure(got.contains("Network is unreachable"), || {
        format!("a route to {ip} exists: {got}")
    })?;
    ensure(!got.contains("tcp=0") && !got.contains("udp=0"), || {
        format!("direct traffic got through: {got}")
    })
}

/// The host's addresses the sandbox might try: every address on the host, including the
/// gateways of the project's bridges.
fn host_addresses(s: &Stack) -> Vec<String> {
    let out = s.run("ip", &["-o", "-4", "addr", "show"]);
    let mut addrs: Vec<String> = text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|cidr| cidr.split('/').next())
        .map(str::to_owned)
        .collect();
    // The internal network's gateway address, which must not exist on the host.
    let proxy = s.proxy_ip();
    let (net, _) = proxy.rsplit_once('.').unwrap();
    addrs.push(format!("{net}.1"));
    addrs.sort();
    addrs.dedup();
    addrs
}

pub fn host_listeners_are_unreachable(s: &Stack) -> Result<(), String> {
    let v4 = TcpListener::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    let port = v4.local_addr().unwrap().port();
    let v6 = TcpListener::bind(("::", port)).ok();
    v4.set_nonblocking(true).unwrap();
    let addrs = host_addresses(s);
    let script: String = addrs
        .iter()
        .map(|a| {
            format!(
                "timeout 4 bash -c 'exec 3<>/dev/tcp/{a}/{port}' 2>/dev/null && echo reached {a}; "
            )
        })
        .collect();
    let got = text(&s.sandbox(&format!("{script} true")).stdout);
    let accepted = match v4.accept() {
        Ok((_, peer)) => Some(peer.to_string()),
        Err(e) if e.kind() == ErrorKind::WouldBlock => None,
        Err(e) => Some(format!("accept error {e}")),
    };
    drop(v6);
    ensure(got.is_empty() && accepted.is_none(), || {
        format!(
            "the host listener on port {port} was reached: {got} {accepted:?} (tried {addrs:?})"
        )
    })
}

pub fn dns_answers_only_for_the_allowlist_and_never_leaks(s: &Stack) -> Result<(), String> {
    let ns = s.nameserver_ip();
    let proxy = s.proxy_ip();
    let allowed = text(
        &s.sandbox("getent ahostsv4 api.allowed.test | head -1")
            .stdout,
    );
    ensure(allowed.starts_with(&s.upstream_ip()), || {
        format!("api.allowed.test → {allowed:?}")
    })?;
    let denied = text(&s.sandbox("getent ahostsv4 evil.test | head -1").stdout);
    ensure(denied.starts_with("0.0.0.0"), || {
        format!("evil.test → {denied:?}")
    })?;

    // Three ways to ask for a denied name; none may reach the nameserver. A subdomain of
    // an allowlisted name is forwarded: the control that proves the log is read right.
    let probes = [unique("via-proxy"), unique("via-docker"), unique("direct")];
    let control = format!("{}.api.allowed.test", unique("control"));
    let out = s.sandbox(&format!(
        "dig +short +tries=1 +time=3 @{proxy} {a}.evil.test; \
         dig +short +tries=1 +time=3 @127.0.0.11 {b}.evil.test; \
         dig +short +tries=1 +time=3 @{ns} {c}.evil.test; \
         dig +short +tries=1 +time=3 @{proxy} {control}; true",
        a = probes[0],
        b = probes[1],
        c = probes[2]
    ));
    let answers = text(&out.stdout);
    std::thread::sleep(Duration::from_millis(500));
    let log = text(&s.compose(&["logs", "--no-color", "nameserver"]).stdout);
    ensure(log.contains(&control), || {
        format!("the control query never reached the nameserver: {log}")
    })?;
    for p in &probes {
        ensure(!log.contains(p.as_str()), || {
            format!("{p}.evil.test reached the nameserver:\n{log}")
        })?;
    }
    ensure(
        answers.lines().filter(|l| *l == "0.0.0.0").count() >= 2,
        || format!("denied names did not get 0.0.0.0: {answers:?}"),
    )
}

pub fn upstream_sees_no_via_or_forwarded_for(s: &Stack) -> Result<(), String> {
    let body = text(
        &s.sandbox("curl -s --max-time 10 http://api.allowed.test/")
            .stdout,
    );
    ensure(body.starts_with("GET "), || {
        format!("no echo from the upstream: {body:?}")
    })?;
    let lower = body.to_lowercase();
    ensure(
        !lower.contains("\nvia:") && !lower.contains("x-forwarded-for"),
        || format!("the upstream saw identifying headers:\n{body}"),
    )
}

pub fn git_clone_commit_and_push_over_https(s: &Stack) -> Result<(), String> {
    let ca = s.ca_in_sandbox()?;
    let branch = unique("e2e");
    let out = s.sandbox(&format!(
        "set -e; export GIT_SSL_CAINFO={ca}; cd /workspace; rm -rf repo; \
         git clone -q https://git.allowed.test/repo.git repo; cd repo; \
         echo change > change.txt; git add change.txt; git commit -q -m 'from the sandbox'; \
         git push -q origin HEAD:{branch}; git log -1 --format='%an'"
    ));
    let got = text(&out.stdout);
    ensure(
        out.status.success() && got.trim() == "dev (via safe-ai)",
        || format!("clone/commit/push: {got} {}", text(&out.stderr)),
    )?;
    let upstream = s.exec(
        "upstream",
        "root",
        &format!("git -C /srv/git/repo.git log -1 --format=%s {branch}"),
    );
    ensure(text(&upstream.stdout).trim() == "from the sandbox", || {
        format!("the push did not arrive: {}", text(&upstream.stderr))
    })
}

/// A figure, not an assertion (these machines are shared and noisy): 100 MB through the
/// proxy against the same download container to container without it. Fails only when a
/// download does not complete.
pub fn figure_throughput_through_the_proxy(s: &Stack) -> Result<(), String> {
    const BYTES: u64 = 100 * 1024 * 1024;
    let url = format!("http://api.allowed.test/bytes/{BYTES}");
    let measure = "-s -o /dev/null --max-time 120 -w '%{size_download} %{speed_download}'";
    let proxied = text(&s.sandbox(&format!("curl {measure} {url}")).stdout);
    // The same image on the external network, straight to the upstream's address.
    let network = format!("{}_external", s.project());
    let direct_url = format!("http://{}/bytes/{BYTES}", s.upstream_ip());
    let direct = text(
        &s.run(
            "docker",
            &[
                "run",
                "--rm",
                "--network",
                &network,
                "--entrypoint",
                "bash",
                "safe-ai-sandbox:latest",
                "-c",
                &format!("curl {measure} {direct_url}"),
            ],
        )
        .stdout,
    );
    let parse = |s: &str| -> Option<(u64, f64)> {
        let (size, speed) = s.trim().split_once(' ')?;
        Some((size.parse().ok()?, speed.parse().ok()?))
    };
    match (parse(&proxied), parse(&direct)) {
        (Some((a, pa)), Some((b, da))) if a == BYTES && b == BYTES && da > 0.0 => {
            eprintln!(
                "figure: 100 MB through the proxy {:.0} MB/s, direct {:.0} MB/s, ratio {:.2}",
                pa / 1e6,
                da / 1e6,
                pa / da
            );
            Ok(())
        }
        _ => Err(format!(
            "downloads incomplete: proxied {proxied:?}, direct {direct:?}"
        )),
    }
}

pub const CHECKS: &[(&str, crate::stack::Check)] = crate::checks![
    allowed_https_http_and_subdomain_answer,
    denied_name_gets_403_for_connect_and_http_and_is_logged,
    other_ports_are_denied,
    ip_literals_are_denied,
    host_header_cannot_smuggle_a_denied_destination,
    allowlisted_names_resolving_to_blocked_ranges_are_denied,
    no_direct_tcp_udp_or_icmp_route,
    host_listeners_are_unreachable,
    dns_answers_only_for_the_allowlist_and_never_leaks,
    upstream_sees_no_via_or_forwarded_for,
    git_clone_commit_and_push_over_https,
    figure_throughput_through_the_proxy,
];
