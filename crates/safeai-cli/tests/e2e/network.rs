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
    let events: Vec<_> = s
        .events_for(&host)?
        .into_iter()
        .filter(|e| e["decision"] == "denied" && e["reason"] == "not-allowlisted")
        .collect();
    ensure(
        events.iter().any(|e| e["kind"] == "connect")
            && events
                .iter()
                .any(|e| e["kind"] == "http" && e["method"] == "GET"),
        || format!("the decision log lacks the CONNECT and GET denials of {host}: {events:?}"),
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

/// Requests written to the proxy exactly as given, from the sandbox (curl would normalize
/// an address, or open a tunnel for `https://`): `GET URI` sends an absolute-URI request;
/// `CONNECT HOST:PORT` sends the CONNECT and, after its 200, a TLS handshake (any
/// certificate) and `GET /` inside, as a client that reads the denial page. One line per
/// probe: the last status, the `X-Safe-AI-Denied` value (`-` if none) and whether the body
/// is a safe-ai page (`page`/`-`); or `ERR` and why.
fn raw_probes(s: &Stack, probes: &[String]) -> Result<Vec<String>, String> {
    const SCRIPT: &str = r#"
import socket, ssl, sys
proxy = sys.argv[1]
def parse(data):
    text = data.decode("latin-1")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = lines[0].split(" ")[1] if lines[0].startswith("HTTP/") else "none"
    reason = "-"
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "x-safe-ai-denied":
            reason = v.strip()
    page = "page" if "fix:" in body and "safe-ai:" in body else "-"
    return f"{status} {reason} {page}"
def read_all(sock):
    chunks = []
    try:
        while True:
            b = sock.recv(65536)
            if not b:
                break
            chunks.append(b)
    except socket.timeout:
        if not chunks:
            raise
    return b"".join(chunks)
def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        b = sock.recv(1)
        if not b:
            break
        data += b
    return data
for probe in sys.argv[2:]:
    method, target = probe.split(" ")
    try:
        s = socket.create_connection((proxy, 3128), timeout=10)
        if method == "CONNECT":
            s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            first = parse(read_head(s))
            if not first.startswith("200 "):
                print(first)
                continue
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            t = ctx.wrap_socket(s)
            t.sendall(b"GET / HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
            print(parse(read_all(t)))
        else:
            authority = target.split("//", 1)[1].split("/", 1)[0]
            s.sendall(f"GET {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n".encode())
            print(parse(read_all(s)))
    except Exception as e:
        print("ERR", type(e).__name__, str(e).replace("\n", " "))
"#;
    let args: String = probes.iter().map(|p| format!(" '{p}'")).collect();
    let out = s.sandbox(&format!(
        "python3 - {}{args} <<'PY'\n{SCRIPT}\nPY",
        s.proxy_ip()
    ));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    ensure(lines.len() == probes.len(), || {
        format!("the probes did not run: {:?} {}", lines, text(&out.stderr))
    })?;
    Ok(lines)
}

/// Each probe's outcome must start with `want`.
fn expect_all(s: &Stack, probes: &[String], want: &str) -> Result<(), String> {
    let got = raw_probes(s, probes)?;
    let wrong: Vec<String> = probes
        .iter()
        .zip(&got)
        .filter(|(_, g)| !g.starts_with(want))
        .map(|(p, g)| format!("{p}: {g}"))
        .collect();
    ensure(wrong.is_empty(), || {
        format!("expected {want:?}, got:\n{}", wrong.join("\n"))
    })
}

pub fn ipv4_in_short_octal_hex_and_integer_forms_is_denied(s: &Stack) -> Result<(), String> {
    // 127.0.0.1 written as inet_aton reads it; sent as written (curl would rewrite it).
    let forms = [
        "127.1",
        "0177.0.0.1",
        "0x7f.0.0.1",
        "0x7f000001",
        "2130706433",
    ];
    let probes: Vec<String> = forms
        .iter()
        .flat_map(|f| [format!("GET http://{f}/"), format!("CONNECT {f}:443")])
        .collect();
    expect_all(s, &probes, "403 ip-address page")
}

pub fn only_http_on_80_and_connect_on_443_other_schemes_are_denied(
    s: &Stack,
) -> Result<(), String> {
    // The control: the same request line with http:// reaches the upstream.
    expect_all(
        s,
        &["GET http://api.allowed.test:80/".to_owned()],
        "200 - -",
    )?;
    // Squid would speak these itself to port 80 of an allowlisted host. (gopher:// is not
    // among them: Squid 5.7 answers it 501 by itself.)
    let probes: Vec<String> = ["ftp", "whois", "https"]
        .iter()
        .map(|scheme| format!("GET {scheme}://api.allowed.test:80/"))
        .collect();
    expect_all(s, &probes, "403 scheme page")
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

pub fn a_name_with_one_excepted_and_one_blocked_address_is_refused(
    s: &Stack,
) -> Result<(), String> {
    // dual.allowed.test has two A records: the upstream (in the excepted test subnet) and
    // 127.0.0.1; mapped.allowed.test has an AAAA record ::ffff:127.0.0.1 only. The proxy
    // checks every address, before it connects (the access log says so: TCP_DENIED).
    let all = text(&s.sandbox("getent ahostsv4 dual.allowed.test").stdout);
    ensure(
        all.contains(&s.upstream_ip()) && all.contains("127.0.0.1"),
        || format!("precondition: dual.allowed.test has both addresses: {all:?}"),
    )?;
    let probes: Vec<String> = ["dual.allowed.test", "mapped.allowed.test"]
        .iter()
        .flat_map(|h| [format!("GET http://{h}/"), format!("CONNECT {h}:443")])
        .collect();
    expect_all(s, &probes, "403 private-address page")?;
    for host in ["dual.allowed.test", "mapped.allowed.test"] {
        // The proxy's decisions on the requests; the sandbox's own lookup of the name
        // (the precondition above) is an allowed DNS event, and not one of them.
        let events: Vec<_> = s
            .events_for(host)?
            .into_iter()
            .filter(|e| e["kind"] != "dns")
            .collect();
        ensure(
            !events.is_empty()
                && events
                    .iter()
                    .all(|e| e["decision"] == "denied" && e["reason"] == "private-address"),
            || format!("{host} in the decision log: {events:?}"),
        )?;
    }
    Ok(())
}

pub fn squid_resolves_through_the_dns_upstream_and_never_leaks_denied_names(
    s: &Stack,
) -> Result<(), String> {
    // Through Squid only (a raw request: the sandbox resolves nothing itself). The control
    // is allowlisted, so Squid looks it up: it must reach the test nameserver, which
    // proves Squid asks SAFE_AI_DNS_UPSTREAM and that the log is read right.
    let leak = unique("squid-leak");
    let control = format!("{}.api.allowed.test", unique("squid-control"));
    expect_all(s, &[format!("GET http://{control}/")], "200 - -")?;
    expect_all(
        s,
        &[
            format!("GET http://{leak}-http.evil.test/"),
            format!("CONNECT {leak}-connect.evil.test:443"),
        ],
        "403 not-allowlisted page",
    )?;
    std::thread::sleep(Duration::from_millis(500));
    let log = text(&s.compose(&["logs", "--no-color", "nameserver"]).stdout);
    ensure(log.contains(&control), || {
        format!("Squid's lookup of {control} never reached the nameserver: {log}")
    })?;
    ensure(!log.contains(&leak), || {
        format!("a name Squid denied reached the nameserver ({leak}):\n{log}")
    })
}

/// The address of the second proxy that [`without_an_exception_the_test_network_is_denied`]
/// starts on the external network.
fn plain_proxy_ip(s: &Stack) -> String {
    format!("172.30.{}.20", 100 + s.slot)
}

/// Removes a container when dropped, so that a failed check leaves none behind (it would
/// keep the compose project's network from being removed).
struct Container<'a>(&'a Stack, String);

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.0.run("docker", &["rm", "-f", &self.1]);
    }
}

pub fn without_an_exception_the_test_network_is_denied(s: &Stack) -> Result<(), String> {
    // The suite's proxy runs with the test network as a private exception; this one, the
    // same image and allowlist with no exception (the default), stands beside the
    // upstreams on the external network, and a client there asks it.
    let ip = plain_proxy_ip(s);
    let network = s.external_network();
    let container = Container(s, format!("{}-no-exception", s.project()));
    let _ = s.run("docker", &["rm", "-f", &container.1]);
    let allowlist = format!("{}:/etc/safe-ai/allowlist.yaml:ro", s.allowlist().display());
    let out = s.run(
        "docker",
        &[
            "run",
            "-d",
            "--name",
            &container.1,
            "--network",
            &network,
            "--ip",
            &ip,
            "-e",
            &format!("SAFE_AI_PROXY_IP={ip}"),
            "-e",
            &format!("SAFE_AI_DNS_UPSTREAM={}", s.nameserver_ip()),
            "-v",
            &allowlist,
            // Its credentials need their secrets, or it would not start at all.
            "-v",
            &format!("{}:/etc/safe-ai/secrets:ro", s.secrets_dir().display()),
            "safe-ai-proxy:latest",
        ],
    );
    ensure(out.status.success(), || {
        format!("the second proxy did not start: {}", text(&out.stderr))
    })?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !s
        .run("docker", &["exec", &container.1, "safeai-proxy", "health"])
        .status
        .success()
    {
        if std::time::Instant::now() > deadline {
            let logs = s.run("docker", &["logs", "--tail", "30", &container.1]);
            return Err(format!(
                "the second proxy is not healthy after 60 s: {}{}",
                text(&logs.stdout),
                text(&logs.stderr)
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let denied = format!("{}.evil.test", unique("plain"));
    let upstream = s.upstream_ip();
    let script = format!(
        "probe() {{ code=$(curl -s -k -o /dev/null -D /tmp/h -w '%{{http_code}}' --max-time 10 \
           -x http://{ip}:3128 \"$1\"); echo \"$1 $code $(tr -d '\\r' </tmp/h | \
           sed -n 's/^[Xx]-[Ss]afe-[Aa][Ii]-[Dd]enied: //p')\"; }}; \
         probe http://api.allowed.test/; probe https://api.allowed.test/; \
         probe http://metadata.allowed.test/; probe http://{denied}/; \
         echo \"direct $(curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 http://{upstream}/)\""
    );
    let out = s.on_external(&[], &script);
    let got = text(&out.stdout);
    let want = [
        "http://api.allowed.test/ 403 private-address".to_owned(),
        "https://api.allowed.test/ 403 private-address".to_owned(),
        "http://metadata.allowed.test/ 403 private-address".to_owned(),
        // The controls: the proxy answers by its plan, and the upstream is reachable
        // from where the client stands, so the refusals above are the proxy's.
        format!("http://{denied}/ 403 not-allowlisted"),
        "direct 200".to_owned(),
    ];
    ensure(got.lines().eq(want.iter().map(String::as_str)), || {
        format!(
            "without an exception, expected:\n{}\ngot:\n{got}{}",
            want.join("\n"),
            text(&out.stderr)
        )
    })
}

pub fn no_direct_tcp_udp_or_icmp_route(s: &Stack) -> Result<(), String> {
    let ip = s.upstream_ip();
    let ns = s.nameserver_ip();
    let out = s.sandbox(&format!(
        "unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy; \
         python3 -c 'import errno, socket, sys\n\
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
try:\n    s.connect((sys.argv[1], 9)); print(\"route: connected\")\n\
except OSError as e:\n    print(\"route:\", errno.errorcode.get(e.errno, e.errno))' {ip}; \
         curl -sS --noproxy '*' --max-time 5 -o /dev/null http://{ip}/ 2>&1; echo tcp=$?; \
         dig +tries=1 +time=3 @{ns} udp-probe.allowed.test >/dev/null 2>&1; echo udp=$?"
    ));
    let got = text(&out.stdout);
    // No route: no packet of any protocol leaves for the external network (ICMP is tried
    // by `icmp_echo_fails_to_the_proxy_and_beyond`). Asked of the kernel by a UDP connect,
    // which sends nothing and fails without a route (`ip route get` speaks netlink,
    // which gVisor's kernel does not offer): Linux answers ENETUNREACH, gVisor's network
    // stack EHOSTUNREACH; with a route, the connect succeeds on both.
    let no_route = if s.runtime == "runsc" {
        "route: EHOSTUNREACH"
    } else {
        "route: ENETUNREACH"
    };
    ensure(got.contains(no_route), || {
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

/// A listener on the host's 0.0.0.0 (IPv6 has its own check below: a dual-stack `[::]`
/// listener cannot share the port with this one).
pub fn host_listeners_are_unreachable(s: &Stack) -> Result<(), String> {
    let v4 = TcpListener::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    let port = v4.local_addr().unwrap().port();
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
    ensure(got.is_empty() && accepted.is_none(), || {
        format!(
            "the host listener on port {port} was reached: {got} {accepted:?} (tried {addrs:?})"
        )
    })
}

/// On the host: a TCP listener on `[::]` with IPV6_V6ONLY (so it binds whatever holds
/// the IPv4 side of the port), printing `port=N`, then `accepted=PEER` for each
/// connection, until its standard input closes (or 120 s).
const V6_LISTENER: &str = r#"
import select, socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind(("::", 0))
s.listen(64)
print(f"port={s.getsockname()[1]}", flush=True)
end = time.time() + 120
while time.time() < end:
    ready, _, _ = select.select([s, sys.stdin], [], [], 1)
    if s in ready:
        c, peer = s.accept()
        print(f"accepted={peer[0]}", flush=True)
        c.close()
    if sys.stdin in ready and not sys.stdin.readline():
        break
"#;

/// In the sandbox: IPv6's state (the `disable_ipv6` knobs, `absent` where the kernel has
/// none, as gVisor's; the addresses of `/proc/net/if_inet6`, all and beyond loopback;
/// the addresses and routes netlink lists beyond loopback), then TCP and ICMPv6 echo to
/// each address in argv[2:] (link-local ones through each of the sandbox's interfaces),
/// one `KIND:TARGET=RESULT` line each: CONNECTED, REPLY, or the errno's name. The
/// interfaces come from netlink (`if_nameindex`): gVisor has no `/sys/class/net`.
const V6_PROBE: &str = r#"
import errno, os, socket, struct, subprocess, sys
def err(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else "timeout"
port = int(sys.argv[1])
ifaces = sorted(n for _, n in socket.if_nameindex() if n != "lo")
print(f"interfaces={','.join(ifaces)}")
for name in ["all", "default"] + ifaces:
    try:
        with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6") as f:
            print(f"disable_ipv6:{name}={f.read().strip()}")
    except FileNotFoundError:
        print(f"disable_ipv6:{name}=absent")
with open("/proc/net/if_inet6") as f:
    v6 = [l.split() for l in f.read().splitlines() if l.strip()]
print(f"v6_addresses={len(v6)}")
print(f"v6_addresses_beyond_lo={sum(1 for l in v6 if l[-1] != 'lo')}")
def ip(*args):
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    return r.returncode, [l for l in r.stdout.splitlines() if l.strip()]
rc, lines = ip("-o", "-6", "addr", "show")
print(f"ip6_addr_beyond_lo={sum(1 for l in lines if l.split()[1] != 'lo') if rc == 0 else f'exit {rc}'}")
rc, lines = ip("-6", "route", "show", "table", "all")
print(f"ip6_routes_beyond_lo={sum(1 for l in lines if ' dev lo ' not in l + ' ') if rc == 0 else f'exit {rc}'}")
targets = []
for a in sys.argv[2:]:
    targets += [f"{a}%{i}" for i in ifaces] if a.lower().startswith("fe80:") else [a]
for t in targets:
    c = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    c.settimeout(3)
    try:
        c.connect((t, port))
        r = "CONNECTED"
    except OSError as e:
        r = err(e)
    finally:
        c.close()
    print(f"tcp:{t}={r}")
    try:
        p = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6)
    except OSError as e:
        print(f"icmp6:{t}=socket:{err(e)}")
        continue
    p.settimeout(2)
    try:
        p.sendto(struct.pack("!BBHHH", 128, 0, 0, 0, 1) + b"safe-ai", (t, 0))
        p.recv(1024)
        r = "REPLY"
    except OSError as e:
        r = err(e)
    finally:
        p.close()
    print(f"icmp6:{t}={r}")
"#;

/// The host's IPv6 addresses, link-local ones included (loopback is the sandbox's own).
fn host_v6_addresses(s: &Stack) -> Vec<String> {
    let out = s.run("ip", &["-o", "-6", "addr", "show"]);
    let mut addrs: Vec<String> = text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|cidr| cidr.split('/').next())
        .filter(|a| *a != "::1")
        .map(str::to_owned)
        .collect();
    addrs.sort();
    addrs.dedup();
    addrs
}

/// IPv6 is off in the sandbox (no address, `disable_ipv6` everywhere; under gVisor, which
/// has no such knob, no address or route beyond loopback's ::1), and a v6-only listener
/// on the host's `[::]`, which really listens (the host reaches it on `::1`), is reached
/// from the sandbox through none of the host's IPv6 addresses, link-local ones included;
/// no ICMPv6 echo is answered either.
pub fn no_ipv6_path_from_the_sandbox_to_the_host(s: &Stack) -> Result<(), String> {
    use std::io::{BufRead, BufReader};
    let addrs = host_v6_addresses(s);
    ensure(!addrs.is_empty(), || {
        "the host has no IPv6 address besides ::1: nothing to try".to_owned()
    })?;
    let mut listener = std::process::Command::new("python3")
        .args(["-c", V6_LISTENER])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3 on the host: {e}"))?;
    let mut lines = BufReader::new(listener.stdout.take().unwrap()).lines();
    let port = lines
        .next()
        .and_then(Result::ok)
        .and_then(|l| l.strip_prefix("port=").map(str::to_owned))
        .ok_or_else(|| "the v6-only listener did not bind".to_owned());
    let result = port.and_then(|port| {
        // The control: the listener accepts from the host itself.
        std::net::TcpStream::connect_timeout(
            &format!("[::1]:{port}").parse().unwrap(),
            Duration::from_secs(3),
        )
        .map_err(|e| format!("the v6-only listener on [::]:{port} refuses the host: {e}"))?;
        let out = s.sandbox(&format!(
            "python3 - {port} {} <<'PY'\n{V6_PROBE}PY\n",
            addrs.join(" ")
        ));
        Ok((port, out))
    });
    // End the listener (closing its stdin) and collect what it accepted.
    drop(listener.stdin.take());
    let accepted: Vec<String> = lines
        .map_while(Result::ok)
        .filter_map(|l| l.strip_prefix("accepted=").map(str::to_owned))
        .collect();
    let _ = listener.wait();
    let (port, out) = result?;
    let got = text(&out.stdout);
    let evidence = || {
        format!(
            "tried {addrs:?} on port {port}:\n{got}{}",
            text(&out.stderr)
        )
    };
    let f = crate::stack::key_values(&got);
    ensure(accepted.iter().all(|p| p == "::1"), || {
        format!(
            "the sandbox reached the host's v6-only listener from {accepted:?}\n{}",
            evidence()
        )
    })?;
    ensure(accepted.iter().any(|p| p == "::1"), || {
        format!("the control connection from ::1 was not seen: {accepted:?}")
    })?;
    let mut off = f.iter().filter(|(k, _)| k.starts_with("disable_ipv6:"));
    let zero = |k: &str| f.get(k).map(String::as_str) == Some("0");
    if s.runtime == "runsc" {
        // gVisor: runsc gives the sandbox's interfaces IPv4 only, and its kernel has no
        // `disable_ipv6` knob to show. IPv6 is loopback's alone: ::1 on lo, no address
        // and no route on any other interface (its /proc and netlink agree).
        ensure(
            f.contains_key("disable_ipv6:all") && off.all(|(_, v)| v == "absent"),
            || {
                format!(
                    "gVisor shows IPv6 knobs it did not show before\n{}",
                    evidence()
                )
            },
        )?;
        ensure(
            f.get("interfaces").is_some_and(|i| !i.is_empty())
                && zero("v6_addresses_beyond_lo")
                && zero("ip6_addr_beyond_lo")
                && zero("ip6_routes_beyond_lo"),
            || format!("the sandbox has IPv6 beyond loopback\n{}", evidence()),
        )?;
    } else {
        ensure(
            f.contains_key("disable_ipv6:all") && off.all(|(_, v)| v == "1"),
            || format!("IPv6 is not disabled in the sandbox\n{}", evidence()),
        )?;
        ensure(zero("v6_addresses"), || {
            format!("the sandbox has IPv6 addresses\n{}", evidence())
        })?;
    }
    for a in &addrs {
        for kind in ["tcp", "icmp6"] {
            let results: Vec<&String> = f
                .iter()
                .filter(|(k, _)| {
                    k.strip_prefix(&format!("{kind}:"))
                        .is_some_and(|t| t == a || t.starts_with(&format!("{a}%")))
                })
                .map(|(_, v)| v)
                .collect();
            ensure(!results.is_empty(), || {
                format!("no {kind} probe ran for {a}\n{}", evidence())
            })?;
            ensure(
                results.iter().all(|r| *r != "CONNECTED" && *r != "REPLY"),
                || format!("{kind} to {a} got through\n{}", evidence()),
            )?;
        }
    }
    Ok(())
}

/// In the sandbox: ICMP echo (an unprivileged ping socket, what `ping` uses without
/// CAP_NET_RAW) to each address in argv, and a raw socket; `icmp:TARGET=RESULT` lines.
const ICMP_PROBE: &str = r#"
import errno, socket, struct, sys
def err(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else "timeout"
try:
    with open("/proc/sys/net/ipv4/ping_group_range") as f:
        print("ping_group_range=" + " ".join(f.read().split()))
except OSError as e:  # gVisor's kernel has no such file
    print(f"ping_group_range={err(e)}")
try:
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
    print("raw=OPENED")
except OSError as e:
    print(f"raw={err(e)}")
for t in sys.argv[1:]:
    try:
        p = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    except OSError as e:
        print(f"icmp:{t}=socket:{err(e)}")
        continue
    p.settimeout(2)
    try:
        p.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, 1) + b"safe-ai", (t, 0))
        p.recv(1024)
        print(f"icmp:{t}=REPLY")
    except OSError as e:
        print(f"icmp:{t}={err(e)}")
    finally:
        p.close()
"#;

/// No ICMP leaves the sandbox: ping sockets are refused (`net.ipv4.ping_group_range` is
/// empty), raw sockets too (no CAP_NET_RAW); neither the proxy, on the sandbox's own
/// network, nor a container on the external network answers an echo. Under gVisor, whose
/// kernel ignores `ping_group_range`, the ping socket opens: the echo to the proxy goes
/// unanswered (it ignores echoes, `net.ipv4.icmp_echo_ignore_all`) and the external
/// network has no route.
pub fn icmp_echo_fails_to_the_proxy_and_beyond(s: &Stack) -> Result<(), String> {
    let targets = [s.proxy_ip(), s.upstream_ip()];
    let out = s.sandbox(&format!(
        "python3 - {} <<'PY'\n{ICMP_PROBE}PY\n",
        targets.join(" ")
    ));
    let got = text(&out.stdout);
    let evidence = || format!("{got}{}", text(&out.stderr));
    let f = crate::stack::key_values(&got);
    for (i, t) in targets.iter().enumerate() {
        let r = f.get(&format!("icmp:{t}"));
        ensure(r.is_some(), || {
            format!("no ICMP probe ran for {t}\n{}", evidence())
        })?;
        let want = match (s.runtime, i) {
            ("runsc", 0) => "timeout",
            ("runsc", _) => "EHOSTUNREACH",
            _ => "socket:EACCES",
        };
        ensure(r.map(String::as_str) == Some(want), || {
            format!("ICMP echo to {t}: {r:?} (expected {want})\n{}", evidence())
        })?;
    }
    ensure(f.get("raw").map(String::as_str) == Some("EPERM"), || {
        format!("a raw ICMP socket: {:?}\n{}", f.get("raw"), evidence())
    })
}

/// In the sandbox: TCP connections, `NAME=ADDR:PORT[@DEVICE]` in argv, the device bound
/// with SO_BINDTODEVICE (allowed unprivileged since Linux 5.7: with it the kernel takes
/// an address it has no route to as on-link and asks for it on that interface).
const CONNECT_PROBE: &str = r#"
import errno, socket, sys
def err(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else "timeout"
for arg in sys.argv[1:]:
    name, target = arg.split("=")
    target, _, dev = target.partition("@")
    host, port = target.rsplit(":", 1)
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.settimeout(4)
    try:
        if dev:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
        c.connect((host, int(port)))
        print(f"{name}=CONNECTED")
    except OSError as e:
        print(f"{name}={err(e)}")
    finally:
        c.close()
"#;

/// The SSH forwarder listens only on the proxy's external address, where the host's port
/// leads (key login through it is `key_login_through_the_host_port_lands_in_workspace`),
/// runs unprivileged, and the sandbox cannot reach it: not on the proxy's internal
/// address, not on the external one (no route), not even by binding its socket to its
/// interface. So the sandbox cannot take its connection slots either.
pub fn the_ssh_forwarder_is_out_of_the_sandboxs_reach_and_unprivileged(
    s: &Stack,
) -> Result<(), String> {
    let external = s.proxy_external_ip()?;
    let internal = s.proxy_ip();
    let out = s.sandbox(&format!(
        "python3 - control={internal}:3128 internal={internal}:2222 external={external}:2222 \
         external_on_eth0={external}:2222@eth0 <<'PY'\n{CONNECT_PROBE}PY\n"
    ));
    let got = text(&out.stdout);
    let f = crate::stack::key_values(&got);
    let evidence = || format!("{got}{}", text(&out.stderr));
    ensure(
        f.get("control").map(String::as_str) == Some("CONNECTED"),
        || {
            format!(
                "the control (Squid on {internal}:3128) is not reachable\n{}",
                evidence()
            )
        },
    )?;
    for name in ["internal", "external", "external_on_eth0"] {
        let r = f.get(name);
        ensure(r.is_some_and(|r| r != "CONNECTED"), || {
            format!(
                "the sandbox reaches the SSH forwarder ({name}): {r:?}\n{}",
                evidence()
            )
        })?;
    }
    // Where it listens (/proc/net/tcp: hex address:port, state 0A) and as whom.
    let out = s.exec(
        "proxy",
        "root",
        "echo uids=$(ps -o uid= -C socat); awk '$4 == \"0A\" && $2 ~ /:08AE$/ {print \"listen=\" $2}' /proc/net/tcp",
    );
    let got = text(&out.stdout);
    let f = crate::stack::key_values(&got);
    let uids: Vec<&str> = f
        .get("uids")
        .map_or(vec![], |u| u.split_whitespace().collect());
    ensure(!uids.is_empty() && uids.iter().all(|u| *u != "0"), || {
        format!("socat's uids: {uids:?} (none may be root)\n{got}")
    })?;
    let ip: std::net::Ipv4Addr = external.parse().unwrap();
    // /proc/net/tcp writes the address as the host-order u32 of its network bytes.
    let want = format!("{:08X}:08AE", u32::from_ne_bytes(ip.octets()));
    ensure(f.get("listen") == Some(&want), || {
        format!(
            "the forwarder listens on {:?}, not only on {external} ({want})\n{got}",
            f.get("listen")
        )
    })
}

/// Squid's cache manager answers nobody in the sandbox, whichever way it is asked: a
/// `cache_object://` URL, or `/squid-internal-mgr/` through the proxy or straight at it.
const MANAGER_PROBE: &str = r#"
import socket, sys
proxy = sys.argv[1]
requests = [
    f"GET cache_object://{proxy}/info HTTP/1.0\r\n\r\n",
    "GET cache_object://localhost/menu HTTP/1.0\r\n\r\n",
    f"GET http://{proxy}:3128/squid-internal-mgr/info HTTP/1.0\r\n\r\n",
    "GET http://safe-ai-proxy:3128/squid-internal-mgr/menu HTTP/1.0\r\n\r\n",
    "GET http://localhost:3128/squid-internal-mgr/info HTTP/1.0\r\n\r\n",
    f"GET /squid-internal-mgr/info HTTP/1.0\r\nHost: {proxy}:3128\r\n\r\n",
    "GET /squid-internal-mgr/menu HTTP/1.0\r\nHost: safe-ai-proxy:3128\r\n\r\n",
]
for i, req in enumerate(requests):
    c = socket.create_connection((proxy, 3128), timeout=10)
    c.sendall(req.encode())
    data = b""
    while True:
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    c.close()
    head = data.split(b"\r\n", 1)[0].decode(errors="replace")
    body = data.decode(errors="replace")
    leaked = any(m in body for m in ("Squid Object Cache", "Cache Manager", "UP Time", "Connection information"))
    print(f"req{i}={req.splitlines()[0]!r} -> {head!r} leaked={leaked}")
"#;

pub fn the_cache_manager_is_refused(s: &Stack) -> Result<(), String> {
    let proxy = s.proxy_ip();
    let out = s.sandbox(&format!("python3 - {proxy} <<'PY'\n{MANAGER_PROBE}PY\n"));
    let got = text(&out.stdout);
    let evidence = || format!("{got}{}", text(&out.stderr));
    let lines: Vec<&str> = got.lines().filter(|l| l.starts_with("req")).collect();
    ensure(lines.len() == 7, || {
        format!("the cache manager probes did not all run\n{}", evidence())
    })?;
    for l in lines {
        let refused = l.contains("-> 'HTTP/1.1 403") || l.contains("-> 'HTTP/1.1 400");
        ensure(refused && l.ends_with("leaked=False"), || {
            format!("the cache manager answered: {l}\n{}", evidence())
        })?;
    }
    Ok(())
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
    let direct_url = format!("http://{}/bytes/{BYTES}", s.upstream_ip());
    let direct = text(
        &s.on_external(&[], &format!("curl {measure} {direct_url}"))
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
    ipv4_in_short_octal_hex_and_integer_forms_is_denied,
    only_http_on_80_and_connect_on_443_other_schemes_are_denied,
    host_header_cannot_smuggle_a_denied_destination,
    allowlisted_names_resolving_to_blocked_ranges_are_denied,
    a_name_with_one_excepted_and_one_blocked_address_is_refused,
    without_an_exception_the_test_network_is_denied,
    no_direct_tcp_udp_or_icmp_route,
    host_listeners_are_unreachable,
    no_ipv6_path_from_the_sandbox_to_the_host,
    icmp_echo_fails_to_the_proxy_and_beyond,
    the_ssh_forwarder_is_out_of_the_sandboxs_reach_and_unprivileged,
    the_cache_manager_is_refused,
    dns_answers_only_for_the_allowlist_and_never_leaks,
    squid_resolves_through_the_dns_upstream_and_never_leaks_denied_names,
    upstream_sees_no_via_or_forwarded_for,
    git_clone_commit_and_push_over_https,
    figure_throughput_through_the_proxy,
];
