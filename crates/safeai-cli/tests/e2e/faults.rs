//! Faults the stack must survive, and what must never be lost. Run last: they restart services.
//!
//! Every check here leaves the stack as it found it, whether it passes, fails or panics:
//! its cleanup runs from a guard ([`Restore`]) that restores the allowlist file, the
//! container settings it changed, and waits (bounded) until both services are healthy.
//! Every loop is bounded in count and time, inside the containers as well.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::stack::{Restore, Stack, ensure, key_values, text};

// ---- helpers -------------------------------------------------------------------------

/// Seconds since the epoch: the host and the containers share the kernel's clock, so
/// times taken on either side compare.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Exit status, stdout and stderr of a command, for failure messages.
fn show(out: &Output) -> String {
    format!(
        "status {:?}, stdout {:?}, stderr {:?}",
        out.status.code(),
        text(&out.stdout).trim(),
        text(&out.stderr).trim()
    )
}

fn num(f: &BTreeMap<String, String>, key: &str) -> Option<f64> {
    f.get(key)?.parse().ok()
}

/// The id of the service's container, also when it is stopped or restarting ("" if none).
fn container(s: &Stack, service: &str) -> String {
    text(&s.compose(&["ps", "-a", "-q", service]).stdout)
        .trim()
        .to_owned()
}

/// `docker inspect -f FORMAT` of the service's container ("" if there is none).
fn inspect(s: &Stack, service: &str, format: &str) -> String {
    let id = container(s, service);
    if id.is_empty() {
        return String::new();
    }
    text(&s.run("docker", &["inspect", "-f", format, &id]).stdout)
        .trim()
        .to_owned()
}

fn restart_count(s: &Stack, service: &str) -> u64 {
    inspect(s, service, "{{.RestartCount}}")
        .parse()
        .unwrap_or(0)
}

/// Waits until every service is healthy; returns how long that took.
fn wait_healthy(s: &Stack, services: &[&str], limit: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let states: Vec<String> = services.iter().map(|svc| s.health(svc)).collect();
        if states.iter().all(|h| h == "healthy") {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            let shown: Vec<String> = services
                .iter()
                .zip(&states)
                .map(|(svc, h)| format!("{svc} {h:?}"))
                .collect();
            return Err(format!(
                "not healthy after {} s: {}",
                limit.as_secs(),
                shown.join(", ")
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Polls the sandbox's status for `url` until it is `want`; returns the time taken and
/// every distinct answer seen, in order.
fn wait_status(s: &Stack, url: &str, want: &str, limit: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    let mut seen: Vec<String> = Vec::new();
    loop {
        let code = s.status_from_sandbox(url);
        if code == want {
            return Ok(started.elapsed());
        }
        if seen.last() != Some(&code) {
            seen.push(code);
        }
        if started.elapsed() > limit {
            return Err(format!(
                "{url} did not answer {want} within {} s; answers seen: {seen:?}",
                limit.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Brings the stack back to both services healthy: waits for a service that is coming
/// back by itself, starts what is stopped or gone (`docker compose up -d`, no build).
fn heal(s: &Stack) -> Result<(), String> {
    let gone = ["proxy", "sandbox"].iter().any(|svc| {
        let state = inspect(s, svc, "{{.State.Status}}");
        state != "running" && state != "restarting"
    });
    if !gone && wait_healthy(s, &["proxy", "sandbox"], Duration::from_secs(45)).is_ok() {
        return Ok(());
    }
    let out = s.compose(&["up", "-d"]);
    if !out.status.success() {
        return Err(format!("docker compose up -d: {}", show(&out)));
    }
    wait_healthy(s, &["proxy", "sandbox"], Duration::from_secs(90)).map(|_| ())
}

/// Writes the allowlist in place (same inode: the proxy sees the file through a bind
/// mount of it) and reloads the proxy when asked.
fn put_allowlist(s: &Stack, content: &str, reload: bool) -> Result<(), String> {
    std::fs::write(s.allowlist(), content).map_err(|e| format!("writing the allowlist: {e}"))?;
    if reload {
        let out = s.safeai(&["reload"]);
        ensure(out.status.success(), || {
            format!("safeai reload: {}", show(&out))
        })?;
    }
    Ok(())
}

/// The proxy's log since `since` (seconds since the epoch).
fn proxy_log_since(s: &Stack, since: f64) -> String {
    let since = format!("{}", since.floor() as u64);
    text(
        &s.compose(&["logs", "--no-color", "--since", &since, "proxy"])
            .stdout,
    )
}

/// Exit codes of the service's container between `since` and now (Docker's `die` events).
fn exit_codes_since(s: &Stack, service: &str, since: f64) -> Vec<String> {
    events_since(s, service, since)
        .iter()
        .filter_map(|e| e.strip_prefix("die "))
        .map(str::to_owned)
        .collect()
}

/// Key login through the host port, running `command`.
fn ssh(s: &Stack, command: &str) -> Output {
    let mut args = s.ssh_options();
    args.extend([
        "-o".into(),
        "LogLevel=ERROR".into(),
        "dev@127.0.0.1".into(),
        command.into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.run("ssh", &args)
}

// ---- 1. fork bomb --------------------------------------------------------------------

/// Forks (as dev) until the kernel refuses, holds at the limit for HOLD seconds, then
/// kills and reaps its children. Each child is `sleep 30` (argv[0] `safeai-e2e-bomb`,
/// so `pkill -f` finds it) and so lives 30 s at most even if this parent is killed.
/// Reads the pids controller's counters (cgroup v1 or v2) to show which limit refused.
const BOMB: &str = r#"
import errno, os, resource, signal, sys, time

def cg(name):
    for d in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup"):
        try:
            with open(os.path.join(d, name)) as f:
                return f.read().strip()
        except OSError:
            pass
    return "?"

def limit_hits():
    for line in cg("pids.events").splitlines():
        k, _, v = line.partition(" ")
        if k == "max":
            return int(v)
    return -1

hold, budget = float(sys.argv[1]), float(sys.argv[2])
start = time.time()
hits_before = limit_hits()
current_at_start = cg("pids.current")
children, failures, errnos = [], 0, {}
t_limit, current_at_limit = None, None
while time.time() - start < budget:
    try:
        pid = os.fork()
    except OSError as e:
        failures += 1
        name = errno.errorcode.get(e.errno, str(e.errno))
        errnos[name] = errnos.get(name, 0) + 1
        if t_limit is None:
            t_limit = time.time()
            current_at_limit = cg("pids.current")
        if time.time() - t_limit >= hold:
            break
        time.sleep(0.02)
        continue
    if pid == 0:
        try:
            fd = os.open("/dev/null", os.O_RDWR)
            for i in (0, 1, 2):
                os.dup2(fd, i)
            os.execv("/bin/sleep", ["safeai-e2e-bomb", "30"])
        finally:
            os._exit(127)
    children.append(pid)
t_end = time.time()
peak = cg("pids.peak")
hits = limit_hits() - hits_before
for pid in children:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
for pid in children:
    try:
        os.waitpid(pid, 0)
    except OSError:
        pass
print(f"forked={len(children)}")
print(f"fork_failures={failures}")
print("errnos=" + ",".join(f"{k}:{v}" for k, v in sorted(errnos.items())))
print(f"pids_max={cg('pids.max')}")
print(f"pids_current_at_start={current_at_start}")
print(f"pids_current_at_limit={current_at_limit}")
print(f"pids_peak={peak}")
print(f"limit_hits={hits}")
print(f"kernel_pid_max={open('/proc/sys/kernel/pid_max').read().strip()}")
print(f"rlimit_nproc={resource.getrlimit(resource.RLIMIT_NPROC)[0]}")
print(f"t_start={start}")
print(f"t_limit={t_limit}")
print(f"t_end={t_end}")
"#;

/// Started before the bomb, so it needs no new process: one request through the proxy
/// every 0.25 s for DURATION seconds, one JSON line each (start, end, status).
const PROBE: &str = r#"
import json, sys, time, urllib.error, urllib.request
end = time.time() + float(sys.argv[1])
while time.time() < end:
    t = time.time()
    try:
        with urllib.request.urlopen("http://api.allowed.test/", timeout=3) as r:
            code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    except Exception as e:
        code = f"{type(e).__name__}: {e}"
    print(json.dumps([t, time.time(), code]), flush=True)
    time.sleep(0.25)
"#;

const PROBE_LOG: &str = "/tmp/safeai-e2e-probe.log";

/// Kills whatever the fork bomb check left in the sandbox; bounded (the bomb's children
/// end by themselves within 30 s, so an exec refused at the pids limit is retried).
fn kill_bomb(s: &Stack) -> Result<(), String> {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(45) {
        let out = s.sandbox(
            "pkill -KILL -f 'safeai-e2e-[b]omb'; pkill -KILL -f 'safeai-e2e-[p]robe'; sleep 0.3; \
             echo left=$(pgrep -c -f 'safeai-e2e-[b]omb|safeai-e2e-[p]robe'); \
             echo pids=$(cat /sys/fs/cgroup/pids/pids.current 2>/dev/null || cat /sys/fs/cgroup/pids.current)",
        );
        let f = key_values(&text(&out.stdout));
        if out.status.success() && f.get("left").map(String::as_str) == Some("0") {
            eprintln!(
                "fork bomb: no bomb process left; {} processes in the sandbox",
                f.get("pids").map_or("?", String::as_str)
            );
            return Ok(());
        }
        last = show(&out);
        std::thread::sleep(Duration::from_secs(1));
    }
    Err(format!("bomb processes still there after 45 s: {last}"))
}

/// A request from inside the proxy container to Squid, and the proxy's health check:
/// "ok HTTP/1.1 200 OK" when both are fine.
fn proxy_side_probe(s: &Stack) -> String {
    let script = format!(
        "safeai-proxy health >/dev/null 2>&1 && h=ok || h=unhealthy; \
         r=$(timeout 5 bash -c 'exec 3<>/dev/tcp/{ip}/3128; \
             printf \"GET http://api.allowed.test/ HTTP/1.1\\r\\nHost: api.allowed.test\\r\\nConnection: close\\r\\n\\r\\n\" >&3; \
             head -n1 <&3' | tr -d '\\r'); echo \"$h $r\"",
        ip = s.proxy_ip()
    );
    text(&s.exec("proxy", "root", &script).stdout)
        .trim()
        .to_owned()
}

/// A fork bomb as dev stops at the sandbox's pids limit (EAGAIN, counted by the pids
/// controller, about pids.max processes), while the proxy keeps serving both a probe that
/// was already running in the sandbox and requests from the proxy's own side; afterwards
/// no bomb process is left and the sandbox is healthy.
///
/// Under gVisor the processes in the sandbox are not host processes: the host's pids
/// limit counts gVisor's kernel and its stub processes (about two host tasks per process
/// inside), and gVisor's own cgroup files show no limit. There the check runs
/// [`fork_bomb_under_gvisor`].
pub fn fork_bomb_is_contained_and_the_proxy_keeps_serving(s: &Stack) -> Result<(), String> {
    let restore = Restore::new(|| {
        kill_bomb(s)?;
        heal(s)
    });
    let result = if s.runtime == "runsc" {
        fork_bomb_under_gvisor(s)
    } else {
        fork_bomb(s)
    };
    restore.finish(result)
}

/// A file in /workspace written before a fault that ends the sandbox: it must survive.
fn workspace_marker(s: &Stack, tag: &str) -> Result<String, String> {
    let path = format!("/workspace/.{}", crate::stack::unique(tag));
    let out = s.sandbox(&format!("echo kept > '{path}' && cat '{path}'"));
    ensure(text(&out.stdout).trim() == "kept", || {
        format!("writing {path}: {}", show(&out))
    })?;
    Ok(path)
}

/// After a fault that ended the sandbox: Docker restarted it (once more than `restarts`),
/// it is healthy again, its egress answers 200, and `marker` survived; the proxy never
/// restarted. Returns how long the sandbox took to be healthy.
fn sandbox_came_back(
    s: &Stack,
    restarts: u64,
    proxy_restarts: u64,
    marker: &str,
) -> Result<Duration, String> {
    let took = wait_healthy(s, &["sandbox", "proxy"], Duration::from_secs(120))?;
    let now_restarts = restart_count(s, "sandbox");
    ensure(now_restarts == restarts + 1, || {
        format!(
            "the sandbox restarted {} times, expected once",
            now_restarts - restarts
        )
    })?;
    ensure(restart_count(s, "proxy") == proxy_restarts, || {
        "the proxy restarted too".to_owned()
    })?;
    let code = s.status_from_sandbox("http://api.allowed.test/");
    ensure(code == "200", || {
        format!("api.allowed.test after the sandbox came back: {code:?}")
    })?;
    let out = s.sandbox(&format!("cat '{marker}' && rm -f '{marker}'"));
    ensure(text(&out.stdout).trim() == "kept", || {
        format!("{marker} did not survive: {}", show(&out))
    })?;
    Ok(took)
}

/// Docker's events of the service's container between `since` and now, as
/// `ACTION EXITCODE` lines (`die 2`, `oom`, `start`).
fn events_since(s: &Stack, service: &str, since: f64) -> Vec<String> {
    let id = container(s, service);
    let out = s.run(
        "docker",
        &[
            "events",
            "--since",
            &format!("{}", since.floor() as u64),
            "--until",
            &format!("{:.3}", now()),
            "--filter",
            &format!("container={id}"),
            "--filter",
            "event=die",
            "--filter",
            "event=oom",
            "--filter",
            "event=start",
            "--format",
            "{{.Action}} {{.Actor.Attributes.exitCode}}",
        ],
    );
    text(&out.stdout)
        .lines()
        .map(|l| l.replace("<no value>", "").trim().to_owned())
        .collect()
}

/// The fork bomb under gVisor (runsc 0.0~20240729), as seen here: gVisor forks slowly
/// (about 25 processes a second), each process costs the host about two tasks (gVisor's
/// stubs), and when the host's pids cgroup of the sandbox refuses gVisor's kernel a
/// task, gVisor's kernel stops, with the whole sandbox (exit 2). So the bomb is contained
/// at the sandbox's boundary, not at the bomb: the host's limit holds (pids.events
/// counts the refusal), the proxy serves throughout, Docker restarts the sandbox and
/// /workspace survives. The bomb gets longer than under runc (45 s) to reach the limit.
fn fork_bomb_under_gvisor(s: &Stack) -> Result<(), String> {
    let before = s.status_from_sandbox("http://api.allowed.test/");
    ensure(before == "200", || {
        format!("precondition: api.allowed.test answers {before:?} before the bomb")
    })?;
    let pids_limit: u64 = inspect(s, "sandbox", "{{.HostConfig.PidsLimit}}")
        .parse()
        .map_err(|e| format!("the sandbox's PidsLimit: {e}"))?;
    let host = s.host_cgroup("sandbox", "pids")?;
    let host_max = std::fs::read_to_string(host.join("pids.max")).unwrap_or_default();
    ensure(host_max.trim() == pids_limit.to_string(), || {
        format!("the host's pids.max for the sandbox is {host_max:?}, docker says {pids_limit}")
    })?;
    let marker = workspace_marker(s, "bomb")?;
    let (restarts, proxy_restarts) = (restart_count(s, "sandbox"), restart_count(s, "proxy"));
    let t0 = now();
    let bomb_script =
        format!("timeout 60 python3 - 6 45 safeai-e2e-bomb-parent <<'PY'\n{BOMB}PY\n");
    let done = AtomicBool::new(false);
    let mut proxy_probes: Vec<(f64, f64, String)> = Vec::new();
    let (bomb, host_view) = std::thread::scope(|scope| {
        let bomb = scope.spawn(|| {
            let out = s.sandbox(&bomb_script);
            done.store(true, Ordering::SeqCst);
            out
        });
        // The host's count of the sandbox's tasks and of refusals at its limit, until the
        // cgroup goes with the sandbox (or the bomb ends).
        let watcher = scope.spawn(|| {
            let started = Instant::now();
            let (mut peak, mut refusals) = (0u64, 0u64);
            while !done.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(75) {
                let current = std::fs::read_to_string(host.join("pids.current"));
                let events = std::fs::read_to_string(host.join("pids.events"));
                let (Ok(current), Ok(events)) = (current, events) else {
                    break;
                };
                peak = peak.max(current.trim().parse().unwrap_or(0));
                let max = events
                    .lines()
                    .find_map(|l| l.strip_prefix("max "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                refusals = refusals.max(max);
                // gVisor's kernel stops within moments of the first refusal.
                std::thread::sleep(Duration::from_millis(20));
            }
            (peak, refusals)
        });
        let started = Instant::now();
        while !done.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(75) {
            let t = now();
            let got = proxy_side_probe(s);
            proxy_probes.push((t, now(), got));
            std::thread::sleep(Duration::from_millis(200));
        }
        (bomb.join(), watcher.join().unwrap_or((0, 0)))
    });
    let bomb = bomb.map_err(|_| "the bomb's thread panicked".to_owned())?;
    let (peak, refusals) = host_view;
    let events = events_since(s, "sandbox", t0);
    eprintln!(
        "fork bomb (gVisor): host tasks of the sandbox up to {peak} of {pids_limit}, {refusals} refusals counted; \
         sandbox events {events:?}; the bomb's exec: {}",
        show(&bomb)
    );
    // The limit reached: a refusal counted, or (when the sandbox ended between two
    // readings) the count seen at the limit.
    ensure(refusals >= 1 || peak + 8 >= pids_limit, || {
        format!(
            "the host's pids limit did not refuse (peak {peak} of {pids_limit}, {refusals} refusals): what stopped the bomb?\n{}",
            show(&bomb)
        )
    })?;
    ensure(
        events
            .iter()
            .any(|e| e.starts_with("die ") && e != "die 137")
            && !events.iter().any(|e| e == "oom"),
        || {
            format!(
                "expected the sandbox to end at its pids limit (a die event, no OOM), as gVisor 0.0~20240729 does: {events:?}\n{}",
                show(&bomb)
            )
        },
    )?;
    ensure(
        !proxy_probes.is_empty()
            && proxy_probes
                .iter()
                .all(|(_, _, r)| r == "ok HTTP/1.1 200 OK"),
        || format!("the proxy during the bomb: {proxy_probes:?}"),
    )?;
    let took = sandbox_came_back(s, restarts, proxy_restarts, &marker)?;
    eprintln!(
        "fork bomb (gVisor): {} proxy-side probes all 200; the sandbox was back and healthy {:.1} s later, egress 200, /workspace kept",
        proxy_probes.len(),
        took.as_secs_f64()
    );
    Ok(())
}

fn fork_bomb(s: &Stack) -> Result<(), String> {
    let before = s.status_from_sandbox("http://api.allowed.test/");
    ensure(before == "200", || {
        format!("precondition: api.allowed.test answers {before:?} before the bomb")
    })?;
    let pids_limit: u64 = inspect(s, "sandbox", "{{.HostConfig.PidsLimit}}")
        .parse()
        .map_err(|e| format!("the sandbox's PidsLimit: {e}"))?;

    // The probe in the sandbox exists before the bomb: it needs no fork to keep asking.
    let out = s.sandbox(&format!(
        "rm -f {PROBE_LOG}; python3 - 40 safeai-e2e-probe >{PROBE_LOG} 2>&1 <<'PY' &\n{PROBE}PY\necho started"
    ));
    ensure(text(&out.stdout).trim() == "started", || {
        format!("the probe did not start: {}", show(&out))
    })?;

    let bomb_script =
        format!("timeout 20 python3 - 6 15 safeai-e2e-bomb-parent <<'PY'\n{BOMB}PY\n");
    let done = AtomicBool::new(false);
    let mut proxy_probes: Vec<(f64, f64, String)> = Vec::new();
    let (bomb, (host_pids, exec_at_limit)) = std::thread::scope(|scope| {
        let bomb = scope.spawn(|| {
            let out = s.sandbox(&bomb_script);
            done.store(true, Ordering::SeqCst);
            out
        });
        // The host's view of the sandbox's process count and, once at the limit, a new
        // exec into the sandbox (it may block until the bomb ends: its own thread).
        let watcher = scope.spawn(|| {
            let started = Instant::now();
            let (mut pids, mut exec) = (Vec::new(), None);
            let id = container(s, "sandbox");
            while !done.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(30) {
                let out = s.run(
                    "docker",
                    &["stats", "--no-stream", "--format", "{{.PIDs}}", &id],
                );
                let n = text(&out.stdout).trim().parse::<u64>().unwrap_or(0);
                pids.push(n);
                if exec.is_none() && n + 16 >= pids_limit {
                    let t = Instant::now();
                    let out = s.sandbox("echo exec-works");
                    exec = Some(format!(
                        "{:.1} s, {}",
                        t.elapsed().as_secs_f64(),
                        show(&out)
                    ));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            (pids, exec)
        });
        // The proxy's view, while the bomb runs (bounded: 30 s).
        let started = Instant::now();
        while !done.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(30) {
            let t0 = now();
            let got = proxy_side_probe(s);
            proxy_probes.push((t0, now(), got));
            std::thread::sleep(Duration::from_millis(200));
        }
        (
            bomb.join(),
            watcher.join().unwrap_or_else(|_| (Vec::new(), None)),
        )
    });
    let bomb = bomb.map_err(|_| "the bomb's thread panicked".to_owned())?;
    let report = text(&bomb.stdout);
    eprintln!("fork bomb: {}", report.trim().replace('\n', ", "));
    eprintln!("fork bomb: docker stats PIDs during the bomb: {host_pids:?}");
    if let Some(e) = &exec_at_limit {
        eprintln!("fork bomb: a new `docker compose exec` into the sandbox at its limit: {e}");
    } else {
        eprintln!("fork bomb: docker stats never saw the sandbox at its limit");
    }
    let f = key_values(&report);
    let get =
        |k: &str| num(&f, k).ok_or_else(|| format!("no {k} in the bomb's report: {}", show(&bomb)));
    let (forked, failures, hits) = (get("forked")?, get("fork_failures")?, get("limit_hits")?);
    let (pids_max, at_limit) = (get("pids_max")?, get("pids_current_at_limit")?);
    let start = get("pids_current_at_start")?;
    let (t_limit, t_end, pid_max) = (get("t_limit")?, get("t_end")?, get("kernel_pid_max")?);
    let errnos = f.get("errnos").cloned().unwrap_or_default();

    ensure(pids_max == pids_limit as f64, || {
        format!("pids.max in the sandbox is {pids_max}, docker says PidsLimit {pids_limit}")
    })?;
    ensure(
        failures > 0.0 && errnos.starts_with("EAGAIN:") && !errnos.contains(','),
        || {
            format!(
                "fork never failed, or not only with EAGAIN: failures {failures}, errnos {errnos:?}"
            )
        },
    )?;
    ensure(hits > 0.0, || {
        format!(
            "the pids controller counted no refusal (pids.events max +{hits}): the limit that refused was not the container's"
        )
    })?;
    // About pids.max processes (what was there plus what the bomb forked), far below the
    // kernel's own limit.
    ensure(
        at_limit >= pids_max - 8.0 && start + forked >= pids_max - 16.0 && forked < pids_max,
        || {
            format!(
                "processes: {start} at the start + {forked} forked; {at_limit} at the first refusal; pids.max {pids_max}"
            )
        },
    )?;
    ensure(pid_max > 4.0 * pids_max, || {
        format!(
            "kernel pid_max {pid_max} is not far above pids.max {pids_max}: the check proves nothing"
        )
    })?;

    // The proxy's side, while the sandbox sat at its limit.
    let during: Vec<&(f64, f64, String)> = proxy_probes
        .iter()
        .filter(|(a, b, _)| *a >= t_limit && *b <= t_end)
        .collect();
    ensure(
        !during.is_empty() && during.iter().all(|(_, _, r)| r == "ok HTTP/1.1 200 OK"),
        || {
            format!(
                "the proxy while the sandbox was at its limit ({t_limit:.1}..{t_end:.1}): {proxy_probes:?}"
            )
        },
    )?;

    // The sandbox's side: the probe started before the bomb.
    let log = text(&s.sandbox(&format!("cat {PROBE_LOG}")).stdout);
    let probes: Vec<(f64, f64, String)> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<(f64, f64, serde_json::Value)>(l).ok())
        .map(|(a, b, c)| (a, b, c.to_string()))
        .collect();
    let in_window: Vec<&(f64, f64, String)> = probes
        .iter()
        .filter(|(a, b, _)| *a >= t_limit && *b <= t_end)
        .collect();
    let ok = in_window.iter().filter(|(_, _, c)| c == "200").count();
    eprintln!(
        "fork bomb: at the limit for {:.1} s; {} proxy-side probes all 200; sandbox probe {ok}/{} answered 200",
        t_end - t_limit,
        during.len(),
        in_window.len()
    );
    ensure(ok >= 3 && ok == in_window.len(), || {
        format!(
            "the sandbox's own requests while at its limit ({t_limit:.1}..{t_end:.1}): {in_window:?}\nwhole probe log:\n{log}"
        )
    })?;

    kill_bomb(s)?;
    let took = wait_healthy(s, &["sandbox", "proxy"], Duration::from_secs(60))?;
    let after = s.status_from_sandbox("http://api.allowed.test/");
    ensure(after == "200", || {
        format!("api.allowed.test after the bomb: {after:?}")
    })?;
    eprintln!(
        "fork bomb: sandbox healthy again {:.1} s after cleanup, egress 200",
        took.as_secs_f64()
    );
    Ok(())
}

// ---- 2. memory hog -------------------------------------------------------------------

/// Allocates and touches 16 MiB at a time, printing the total in MiB, up to 2.5 GiB: far
/// past the limit the check sets, so it ends killed, or with 3 if it never was.
const HOG: &str = r#"
import sys
chunks = []
for i in range(160):
    chunks.append(b"\xff" * (16 << 20))
    print((i + 1) * 16, flush=True)
sys.exit(3)
"#;

/// Under a 512 MiB limit (set with `docker update`, restored after), a process that
/// allocates without end is OOM-killed (137, counted by the memory controller) while the
/// sandbox container itself and the proxy stay up, healthy and serving.
///
/// Under gVisor (no `docker update` there) the hog meets the configured limit instead:
/// [`memory_hog_under_gvisor`].
pub fn memory_hog_is_killed_without_taking_the_stack_down(s: &Stack) -> Result<(), String> {
    if s.runtime == "runsc" {
        let restore = Restore::new(|| heal(s));
        let result = memory_hog_under_gvisor(s);
        return restore.finish(result);
    }
    let id = container(s, "sandbox");
    let original = inspect(
        s,
        "sandbox",
        "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}",
    );
    let (memory, swap) = original
        .split_once(' ')
        .map(|(m, w)| (m.to_owned(), w.to_owned()))
        .ok_or_else(|| format!("the sandbox's memory settings: {original:?}"))?;
    let restore = Restore::new(|| {
        let out = s.run(
            "docker",
            &["update", "--memory", &memory, "--memory-swap", &swap, &id],
        );
        let now = inspect(
            s,
            "sandbox",
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}",
        );
        ensure(out.status.success() && now == original, || {
            format!(
                "restoring the memory limit {original:?}: {}; now {now:?}",
                show(&out)
            )
        })?;
        heal(s)
    });
    let result = memory_hog(s, &id);
    restore.finish(result)
}

fn memory_hog(s: &Stack, id: &str) -> Result<(), String> {
    const LIMIT: u64 = 512 * 1024 * 1024;
    let state = "{{.State.Status}} {{.State.StartedAt}} {{.RestartCount}}";
    let (sandbox_before, proxy_before) = (inspect(s, "sandbox", state), inspect(s, "proxy", state));
    let out = s.run(
        "docker",
        &["update", "--memory", "512m", "--memory-swap", "512m", id],
    );
    ensure(out.status.success(), || {
        format!("docker update --memory 512m: {}", show(&out))
    })?;
    let script = format!(
        "limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)\n\
         oom() {{ {{ cat /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null || cat /sys/fs/cgroup/memory.events; }} | awk '$1 == \"oom_kill\" {{ print $2 }}'; }}\n\
         echo limit=$limit\n\
         echo oom_kills_before=$(oom)\n\
         timeout 60 python3 -c '{HOG}' | tail -n 1 | sed 's/^/allocated_mib=/'\n\
         echo status=${{PIPESTATUS[0]}}\n\
         echo oom_kills_after=$(oom)\n"
    );
    let out = s.sandbox(&script);
    let report = text(&out.stdout);
    eprintln!("memory hog: {}", report.trim().replace('\n', ", "));
    let f = key_values(&report);
    let get =
        |k: &str| num(&f, k).ok_or_else(|| format!("no {k} in the hog's report: {}", show(&out)));
    let (limit, status, allocated) = (get("limit")?, get("status")?, get("allocated_mib")?);
    let oom_kills = get("oom_kills_after")? - get("oom_kills_before")?;
    ensure(limit == LIMIT as f64, || {
        format!("the sandbox's memory limit inside is {limit}, not 512 MiB")
    })?;
    ensure(status == 137.0, || {
        format!("the hog ended with {status} (137 = killed), after {allocated} MiB")
    })?;
    ensure(oom_kills >= 1.0, || {
        format!(
            "the memory controller counted no OOM kill (+{oom_kills}): something else killed the hog"
        )
    })?;
    // Killed near this limit, not the default 8 GiB.
    ensure((256.0..=512.0).contains(&allocated), || {
        format!("the hog got {allocated} MiB under a 512 MiB limit")
    })?;

    let state = "{{.State.Status}} {{.State.StartedAt}} {{.RestartCount}}";
    let (sandbox_after, proxy_after) = (inspect(s, "sandbox", state), inspect(s, "proxy", state));
    ensure(
        sandbox_after == sandbox_before && proxy_after == proxy_before,
        || {
            format!(
                "a container restarted (status, started, restarts): sandbox {sandbox_before:?} -> {sandbox_after:?}, proxy {proxy_before:?} -> {proxy_after:?}"
            )
        },
    )?;
    wait_healthy(s, &["sandbox", "proxy"], Duration::from_secs(30))?;
    let code = s.status_from_sandbox("http://api.allowed.test/");
    ensure(code == "200", || {
        format!("api.allowed.test after the OOM kill: {code:?}")
    })?;
    eprintln!(
        "memory hog: OOM-killed (137) after {allocated} MiB; the sandbox ({sandbox_after}) and the proxy stayed up and healthy, egress 200"
    );
    Ok(())
}

/// The memory hog under gVisor (runsc 0.0~20240729): the sandbox's memory is gVisor's
/// kernel's, so the host's OOM killer, at the configured limit (the e2e runsc stack:
/// 2 GiB), picks one of the sandbox's host tasks. Seen here: for one hog, the host task
/// that maps its memory (`oom_score_adj` 1), and the hog ends (status 1, nothing on its
/// stderr) while the sandbox stays up; in a sandbox of many small processes,
/// gVisor's kernel itself (`oom_score_adj` 0), and the whole sandbox ends (137) and
/// Docker restarts it. Either is contained at the sandbox's boundary, and the check
/// holds each to that: the OOM kill counted in the sandbox's cgroup, the hog stopped
/// below the limit, the proxy up and serving throughout, the sandbox healthy again
/// (restarted once, or not at all) with /workspace intact.
fn memory_hog_under_gvisor(s: &Stack) -> Result<(), String> {
    let config = s.service_config("sandbox")?;
    let configured: u64 = config["mem_limit"]
        .as_str()
        .and_then(|m| m.parse().ok())
        .or_else(|| config["mem_limit"].as_u64())
        .ok_or_else(|| {
            format!(
                "no mem_limit in the sandbox's config: {}",
                config["mem_limit"]
            )
        })?;
    let host = s
        .host_cgroup_file("sandbox", "memory", "memory.limit_in_bytes")
        .or_else(|_| s.host_cgroup_file("sandbox", "memory", "memory.max"))?;
    ensure(host == configured.to_string(), || {
        format!("the host's memory limit of the sandbox is {host:?}, configured {configured}")
    })?;
    // The hog allocates up to 2.5 GiB: past this limit, or the check proves nothing.
    ensure(configured < 2560 << 20, || {
        format!("the configured limit {configured} is beyond what the hog allocates")
    })?;
    let marker = workspace_marker(s, "hog")?;
    let (restarts, proxy_restarts) = (restart_count(s, "sandbox"), restart_count(s, "proxy"));
    let t0 = now();
    let done = AtomicBool::new(false);
    let mut proxy_probes: Vec<String> = Vec::new();
    let hog = std::thread::scope(|scope| {
        let hog = scope.spawn(|| {
            let out = s.sandbox(&format!(
                "timeout 90 python3 -c '{HOG}' 2>/tmp/safeai-e2e-hog.err | tail -n 1 | sed 's/^/allocated_mib=/'; \
                 echo status=${{PIPESTATUS[0]}}; echo \"error=$(tail -n 1 /tmp/safeai-e2e-hog.err)\"; rm -f /tmp/safeai-e2e-hog.err"
            ));
            done.store(true, Ordering::SeqCst);
            out
        });
        let started = Instant::now();
        while !done.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(100) {
            proxy_probes.push(proxy_side_probe(s));
            std::thread::sleep(Duration::from_millis(200));
        }
        hog.join()
    });
    let hog = hog.map_err(|_| "the hog's thread panicked".to_owned())?;
    let events = events_since(s, "sandbox", t0);
    eprintln!(
        "memory hog (gVisor): limit {configured} bytes; sandbox events {events:?}; the hog's exec: {}",
        show(&hog)
    );
    ensure(events.iter().any(|e| e == "oom"), || {
        format!(
            "the host's OOM killer did not act in the sandbox's cgroup: {events:?}\n{}",
            show(&hog)
        )
    })?;
    ensure(
        !proxy_probes.is_empty() && proxy_probes.iter().all(|r| r == "ok HTTP/1.1 200 OK"),
        || format!("the proxy during the hog: {proxy_probes:?}"),
    )?;
    let whole = events.iter().any(|e| e.starts_with("die"));
    let (took, how) = if whole {
        ensure(events.iter().any(|e| e == "die 137"), || {
            format!("the sandbox ended, but not by the OOM killer: {events:?}")
        })?;
        let took = sandbox_came_back(s, restarts, proxy_restarts, &marker)?;
        (
            took,
            "the whole sandbox was OOM-killed and restarted".to_owned(),
        )
    } else {
        let report = key_values(&text(&hog.stdout));
        let (status, allocated) = (num(&report, "status"), num(&report, "allocated_mib"));
        ensure(
            status.is_some_and(|c| c != 0.0 && c != 3.0)
                && allocated.is_some_and(|m| m * 1048576.0 <= configured as f64),
            || {
                format!(
                    "the sandbox stayed up, but the hog was not stopped below the limit: {}",
                    show(&hog)
                )
            },
        )?;
        let error = report.get("error").cloned().unwrap_or_default();
        let took = wait_healthy(s, &["sandbox", "proxy"], Duration::from_secs(60))?;
        ensure(
            restart_count(s, "sandbox") == restarts && restart_count(s, "proxy") == proxy_restarts,
            || "a container restarted, with no die event".to_owned(),
        )?;
        let code = s.status_from_sandbox("http://api.allowed.test/");
        ensure(code == "200", || {
            format!("api.allowed.test after the OOM kill: {code:?}")
        })?;
        let out = s.sandbox(&format!("cat '{marker}' && rm -f '{marker}'"));
        ensure(text(&out.stdout).trim() == "kept", || {
            format!("{marker}: {}", show(&out))
        })?;
        (
            took,
            format!(
                "the hog alone was stopped (status {}, after {} MiB: {error:?}), the sandbox stayed up",
                status.unwrap_or_default(),
                allocated.unwrap_or_default()
            ),
        )
    };
    eprintln!(
        "memory hog (gVisor): OOM kill at {configured} bytes: {how}; {} proxy-side probes all 200; healthy {:.1} s later, egress 200, /workspace kept",
        proxy_probes.len(),
        took.as_secs_f64()
    );
    Ok(())
}

// ---- 3. squid dies -------------------------------------------------------------------

/// Squid crashing (SIGKILL) takes the whole proxy container down with a non-zero exit;
/// the restart policy brings it back and egress returns with no manual action.
pub fn killing_squid_restarts_the_proxy_and_egress_comes_back(s: &Stack) -> Result<(), String> {
    let restore = Restore::new(|| heal(s));
    let result = killing_squid(s);
    restore.finish(result)
}

fn killing_squid(s: &Stack) -> Result<(), String> {
    let policy = inspect(s, "proxy", "{{.HostConfig.RestartPolicy.Name}}");
    let restarts = restart_count(s, "proxy");
    let sandbox_started = inspect(s, "sandbox", "{{.State.StartedAt}}");
    let t0 = now();
    // SIGKILL: a crash, no orderly shutdown.
    let out = s.exec("proxy", "root", "pkill -KILL -x squid && echo killed");
    ensure(text(&out.stdout).trim() == "killed", || {
        format!("pkill squid in the proxy: {}", show(&out))
    })?;
    let killed = Instant::now();

    // No manual action from here on: only watching.
    let mut back = None;
    let mut seen = Vec::new();
    while killed.elapsed() < Duration::from_secs(60) {
        if restart_count(s, "proxy") > restarts {
            let code = s.status_from_sandbox("http://api.allowed.test/");
            if code == "200" {
                back = Some(killed.elapsed());
                break;
            }
            if seen.last() != Some(&code) {
                seen.push(code);
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let after = restart_count(s, "proxy");
    let exits = exit_codes_since(s, "proxy", t0);
    let log = proxy_log_since(s, t0);
    let said = log
        .lines()
        .find_map(|l| l.find("squid exited").map(|i| &l[i..]))
        .unwrap_or("")
        .trim()
        .to_owned();
    eprintln!(
        "squid killed: restart policy {policy}, RestartCount {restarts} -> {after}, exit codes {exits:?}, log: {said:?}"
    );
    let back = back.ok_or_else(|| {
        format!("egress did not come back within 60 s (RestartCount {restarts} -> {after}; answers after the restart {seen:?})\nproxy log:\n{log}")
    })?;
    ensure(after > restarts, || {
        format!("the proxy was not restarted: RestartCount {restarts} -> {after}")
    })?;
    ensure(!exits.is_empty() && exits.iter().all(|c| c != "0"), || {
        format!("the proxy container's exit codes since the kill: {exits:?}\n{log}")
    })?;
    ensure(!said.is_empty(), || {
        format!("the supervisor did not log why it stopped:\n{log}")
    })?;
    let healthy = wait_healthy(s, &["proxy"], Duration::from_secs(60))?;
    ensure(
        inspect(s, "sandbox", "{{.State.StartedAt}}") == sandbox_started,
        || "the sandbox was restarted too".to_owned(),
    )?;
    eprintln!(
        "figure: squid killed to egress answering 200 again {:.1} s (proxy healthy {:.1} s later)",
        back.as_secs_f64(),
        healthy.as_secs_f64()
    );
    Ok(())
}

// ---- 4. proxy stopped ----------------------------------------------------------------

/// With the proxy stopped, the sandbox reaches nothing: not through the proxy settings,
/// not straight to the upstream's address, not by name. Started again, egress returns.
pub fn with_the_proxy_stopped_the_sandbox_has_no_egress(s: &Stack) -> Result<(), String> {
    let restore = Restore::new(|| heal(s));
    let result = proxy_stopped(s);
    restore.finish(result)
}

fn proxy_stopped(s: &Stack) -> Result<(), String> {
    let sandbox_started = inspect(s, "sandbox", "{{.State.StartedAt}}");
    let out = s.compose(&["stop", "proxy"]);
    ensure(out.status.success(), || {
        format!("docker compose stop proxy: {}", show(&out))
    })?;
    let state = inspect(s, "proxy", "{{.State.Status}}");
    ensure(state == "exited", || {
        format!("the proxy after `stop`: {state:?}")
    })?;
    let sandbox = inspect(s, "sandbox", "{{.State.Status}} {{.State.StartedAt}}");
    ensure(sandbox == format!("running {sandbox_started}"), || {
        format!("stopping the proxy touched the sandbox: {sandbox:?}")
    })?;

    let ip = s.upstream_ip();
    let script = format!(
        "try() {{ curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 \"$@\"; echo \" $?\"; }}\n\
         noproxy() {{ env -u HTTP_PROXY -u http_proxy -u HTTPS_PROXY -u https_proxy \
             curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 --noproxy '*' \"$@\"; echo \" $?\"; }}\n\
         echo \"proxied=$(try http://api.allowed.test/)\"\n\
         echo \"direct_ip=$(noproxy http://{ip}/)\"\n\
         echo \"direct_name=$(noproxy http://api.allowed.test/)\"\n"
    );
    let out = s.sandbox(&script);
    let report = text(&out.stdout);
    eprintln!(
        "proxy stopped: (HTTP code, curl exit) {}",
        report.trim().replace('\n', ", ")
    );
    let f = key_values(&report);
    let result = |k: &str| -> (String, u32) {
        let v = f.get(k).cloned().unwrap_or_default();
        let (code, exit) = v.split_once(' ').unwrap_or(("", ""));
        (code.to_owned(), exit.parse().unwrap_or(0))
    };
    // 5 proxy unresolvable, 6 host unresolvable, 7 no connection, 28 timeout.
    for (k, allowed) in [
        ("proxied", &[5, 6, 7, 28][..]),
        ("direct_ip", &[7, 28][..]),
        ("direct_name", &[6, 7, 28][..]),
    ] {
        let (code, exit) = result(k);
        ensure(code == "000" && allowed.contains(&exit), || {
            format!(
                "{k}: HTTP {code:?}, curl exit {exit} (expected no answer, exit in {allowed:?}); {}",
                show(&out)
            )
        })?;
    }

    let out = s.compose(&["start", "proxy"]);
    ensure(out.status.success(), || {
        format!("docker compose start proxy: {}", show(&out))
    })?;
    let healthy = wait_healthy(s, &["proxy", "sandbox"], Duration::from_secs(60))?;
    let back = wait_status(
        s,
        "http://api.allowed.test/",
        "200",
        Duration::from_secs(20),
    )?;
    eprintln!(
        "proxy stopped: started again, healthy after {:.1} s, egress 200 {:.1} s later",
        healthy.as_secs_f64(),
        back.as_secs_f64()
    );
    Ok(())
}

// ---- 5. invalid mounted allowlist ----------------------------------------------------

/// An invalid allowlist at start keeps the proxy down (exits, restart loop, never
/// healthy, says why and "fail closed" in its log) and the sandbox without egress; once
/// the file is fixed, the restart loop brings the proxy back by itself.
pub fn an_invalid_mounted_allowlist_keeps_the_proxy_down(s: &Stack) -> Result<(), String> {
    let original = std::fs::read_to_string(s.allowlist())
        .map_err(|e| format!("reading the allowlist: {e}"))?;
    let restore = Restore::new(|| {
        put_allowlist(s, &original, false)?;
        heal(s)
    });
    let result = invalid_allowlist(s, &original);
    restore.finish(result)
}

fn invalid_allowlist(s: &Stack, original: &str) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let inode = |s: &Stack| {
        std::fs::metadata(s.allowlist())
            .map(|m| m.ino())
            .unwrap_or(0)
    };
    let ino = inode(s);
    let invalid = "# e2e: invalid on purpose\ndomains:\n  - https://api.allowed.test/\n";
    put_allowlist(s, invalid, false)?;
    ensure(inode(s) == ino, || {
        "writing the allowlist replaced its inode: the bind mount would not see it".to_owned()
    })?;
    let mounted = text(
        &s.exec("proxy", "root", "cat /etc/safe-ai/allowlist.yaml")
            .stdout,
    );
    ensure(mounted == invalid, || {
        format!("the proxy does not see the new file through its mount: {mounted:?}")
    })?;

    let restarts = restart_count(s, "proxy");
    let t0 = now();
    let out = s.compose(&["restart", "proxy"]);
    ensure(out.status.success(), || {
        format!("docker compose restart proxy: {}", show(&out))
    })?;
    // 8 s of watching: long enough for several restarts, short enough that Docker's
    // restart backoff (doubling from 100 ms) stays a few seconds.
    let watch = Instant::now();
    let mut states = Vec::new();
    let mut codes = Vec::new();
    while watch.elapsed() < Duration::from_secs(8) {
        let h = format!(
            "{}/{}",
            inspect(s, "proxy", "{{.State.Status}}"),
            s.health("proxy")
        );
        if states.last() != Some(&h) {
            states.push(h);
        }
        let out = s.sandbox(
            "curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://api.allowed.test/; echo \" $?\"",
        );
        let code = text(&out.stdout).trim().to_owned();
        if codes.last() != Some(&code) {
            codes.push(code);
        }
    }
    let during = restart_count(s, "proxy");
    let exits = exit_codes_since(s, "proxy", t0);
    let log = proxy_log_since(s, t0);
    eprintln!(
        "invalid allowlist: proxy states {states:?}; sandbox (HTTP code, curl exit) {codes:?}; RestartCount {restarts} -> {during}; exit codes {exits:?}"
    );
    ensure(states.iter().all(|h| !h.ends_with("/healthy")), || {
        format!("the proxy became healthy with an invalid allowlist: {states:?}")
    })?;
    ensure(codes.iter().all(|c| !c.starts_with("200")), || {
        format!("the sandbox got an answer while the proxy should be down: {codes:?}")
    })?;
    ensure(during >= restarts + 2, || {
        format!("the proxy is not in a restart loop: RestartCount {restarts} -> {during}")
    })?;
    // The first exit is `restart` stopping the running proxy (0 when it stops cleanly);
    // every start after it must fail.
    ensure(
        exits.len() >= 3 && exits[1..].iter().all(|c| c != "0"),
        || format!("exit codes of the proxy since the restart: {exits:?}"),
    )?;
    ensure(
        log.contains("is a URL, not a domain") && log.contains("fail closed"),
        || format!("the proxy's log does not say why it stays down:\n{log}"),
    )?;
    if let Some(l) = log
        .lines()
        .find(|l| l.contains("fail closed"))
        .map(|l| &l[l.find("safe-ai proxy:").unwrap_or(0)..])
    {
        eprintln!("invalid allowlist: log: {}", l.trim());
    }

    // Fixed: the restart loop brings it back by itself.
    put_allowlist(s, original, false)?;
    let fixed = Instant::now();
    let how = match wait_healthy(s, &["proxy"], Duration::from_secs(40)) {
        Ok(_) => "by its restart loop",
        Err(e) => {
            eprintln!(
                "invalid allowlist: {e}; the restart backoff is long: docker compose up -d proxy"
            );
            let out = s.compose(&["up", "-d", "proxy"]);
            ensure(out.status.success(), || {
                format!("docker compose up -d proxy: {}", show(&out))
            })?;
            wait_healthy(s, &["proxy"], Duration::from_secs(60))?;
            "after docker compose up -d proxy"
        }
    };
    let back = fixed.elapsed();
    wait_status(
        s,
        "http://api.allowed.test/",
        "200",
        Duration::from_secs(20),
    )?;
    eprintln!(
        "figure: allowlist fixed to proxy healthy {:.1} s ({how}); egress 200",
        back.as_secs_f64()
    );
    Ok(())
}

// ---- 6. reload under open connections ------------------------------------------------

/// In the sandbox, before the reload: one keep-alive connection through the proxy with a
/// first `GET http://api.allowed.test/`, and (with the test CA, argv[1]) one CONNECT
/// tunnel to api.allowed.test:443 with a first HTTPS request inside it. Prints `ready`,
/// then polls new.allowed.test on fresh connections every 50 ms until it answers 200
/// (15 s at most), then sends the second request on each of the two open connections.
const KEEPALIVE: &str = r#"
import json, os, socket, ssl, sys, time, urllib.error, urllib.request

ca = sys.argv[1]
proxy = os.environ["HTTP_PROXY"].split("://", 1)[1].rstrip("/")
phost, pport = proxy.rsplit(":", 1)

def connect():
    return socket.create_connection((phost, int(pport)), timeout=10)

def head(f):
    status = f.readline().decode("latin-1").strip()
    headers = {}
    while True:
        line = f.readline().decode("latin-1").strip()
        if not line:
            return status, headers
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()

def response(f):
    status, headers = head(f)
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            n = int(f.readline().strip().split(b";")[0], 16)
            f.read(n + 2)
            if n == 0:
                break
    else:
        f.read(int(headers.get("content-length", "0")))
    return status

def get(sock, f, target):
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: api.allowed.test\r\n\r\n".encode())
    return response(f)

def probe(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception as e:
        return f"{type(e).__name__}: {e}"

out = {}
plain = connect()
pf = plain.makefile("rb")
out["plain_first"] = get(plain, pf, "http://api.allowed.test/")
out["plain_socket"] = plain.getsockname()
if ca:
    raw = connect()
    raw.sendall(b"CONNECT api.allowed.test:443 HTTP/1.1\r\nHost: api.allowed.test:443\r\n\r\n")
    rf = raw.makefile("rb")
    out["connect"] = head(rf)[0]
    tls = ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname="api.allowed.test")
    tf = tls.makefile("rb")
    out["tunnel_first"] = get(tls, tf, "/")
    out["tunnel_socket"] = tls.getsockname()
print("ready", flush=True)

polls = []
deadline = time.time() + 15
while time.time() < deadline:
    t = time.time()
    code = probe("http://new.allowed.test/")
    polls.append([t, time.time(), code])
    if code == 200:
        break
    time.sleep(0.05)
out["polls"] = polls

def again(name, sock, f, target):
    try:
        out[name] = get(sock, f, target)
    except Exception as e:
        out[name] = f"{type(e).__name__}: {e}"

again("plain_second", plain, pf, "http://api.allowed.test/")
out["plain_socket_after"] = plain.getsockname()
if ca:
    again("tunnel_second", tls, tf, "/")
    out["tunnel_socket_after"] = tls.getsockname()
print(json.dumps(out), flush=True)
"#;

/// A reload (`safeai allow`) takes effect within 2 s of the command's return and does not
/// break connections already open through the proxy: a keep-alive HTTP connection (two
/// requests on the same socket, one before and one after the reload) and a CONNECT
/// tunnel to the TLS stand-in upstream on 443 (`tests/e2e/upstream/upstream.py`, test CA
/// from `Stack::ca_in_sandbox`). CONNECT is only allowed to 443, and the upstream answers
/// plain HTTP on 80 and 8080 only, hence the keep-alive connection for plain HTTP.
pub fn reload_under_an_open_tunnel(s: &Stack) -> Result<(), String> {
    let original = std::fs::read_to_string(s.allowlist())
        .map_err(|e| format!("reading the allowlist: {e}"))?;
    let restore = Restore::new(|| {
        put_allowlist(s, &original, true)?;
        heal(s)
    });
    let result = reload_under_open_connections(s, &original);
    restore.finish(result)
}

fn reload_under_open_connections(s: &Stack, original: &str) -> Result<(), String> {
    // Start without new.allowed.test (an earlier check may have added it).
    let baseline: String = original
        .lines()
        .filter(|l| l.trim().trim_start_matches('-').trim() != "new.allowed.test")
        .map(|l| format!("{l}\n"))
        .collect();
    if baseline != original {
        put_allowlist(s, &baseline, true)?;
    }
    let before = s.status_from_sandbox("http://new.allowed.test/");
    ensure(before == "403", || {
        format!("precondition: new.allowed.test answers {before:?} before the reload")
    })?;
    // The CONNECT half needs the TLS upstream (api.allowed.test:443 with the test CA):
    // without the CA the check fails, rather than try half of it.
    let ca = s
        .ca_in_sandbox()
        .map_err(|e| format!("reload: no test CA for the tunnel half: {e}"))?;

    let mut child = s
        .cmd(
            "docker",
            &[
                "compose",
                "exec",
                "-T",
                "-u",
                "dev",
                "sandbox",
                "bash",
                "-lc",
                &format!("timeout 60 python3 - '{ca}' <<'PY'\n{KEEPALIVE}PY\n"),
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("docker compose exec: {e}"))?;
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let finish = |child: &mut std::process::Child| {
        // The script ends by itself (timeout 60 in the sandbox); kill is a safety net.
        let deadline = Instant::now() + Duration::from_secs(70);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    };

    let ready = rx.recv_timeout(Duration::from_secs(40));
    if ready.as_deref() != Ok("ready") {
        finish(&mut child);
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        let _ = reader.join();
        return Err(format!(
            "the connections in the sandbox did not open: {ready:?}; stderr {err}"
        ));
    }
    let allowlist = s.allowlist();
    let started = now();
    let out = s.safeai(&[
        "allow",
        "new.allowed.test",
        "--allowlist",
        allowlist.to_str().unwrap(),
    ]);
    let returned = now();
    let line = rx.recv_timeout(Duration::from_secs(40));
    finish(&mut child);
    let mut err = String::new();
    let _ = stderr.read_to_string(&mut err);
    let _ = reader.join();
    ensure(out.status.success(), || {
        format!("safeai allow new.allowed.test: {}", show(&out))
    })?;
    let line = line.map_err(|e| format!("no result from the sandbox ({e}); stderr {err}"))?;
    let r: serde_json::Value = serde_json::from_str(&line)
        .map_err(|e| format!("the sandbox's result {line:?}: {e}; stderr {err}"))?;
    let polls = r["polls"].as_array().cloned().unwrap_or_default();
    let refused = polls
        .iter()
        .filter(|p| p[2].as_str().is_some_and(|c| c.contains("refused")))
        .count();
    let first_ok = polls
        .iter()
        .find(|p| p[2] == 200)
        .and_then(|p| p[1].as_f64());
    let last_403 = polls
        .iter()
        .filter(|p| p[2] == 403)
        .filter_map(|p| p[0].as_f64())
        .fold(f64::NAN, f64::max);
    eprintln!(
        "reload: `safeai allow` took {:.2} s; {} polls of new.allowed.test: last 403 at {:+.2} s, first 200 at {:+.2} s from its return, {refused} refused connections",
        returned - started,
        polls.len(),
        last_403 - returned,
        first_ok.map_or(f64::NAN, |t| t - returned)
    );
    eprintln!(
        "reload: keep-alive {} / {} on {} then {}; tunnel {} {} / {} on {} then {}",
        r["plain_first"],
        r["plain_second"],
        r["plain_socket"],
        r["plain_socket_after"],
        r["connect"],
        r["tunnel_first"],
        r["tunnel_second"],
        r["tunnel_socket"],
        r["tunnel_socket_after"]
    );
    let first_ok = first_ok.ok_or_else(|| {
        format!("new.allowed.test never answered 200 within 15 s of the reload: {polls:?}")
    })?;
    let latency = (first_ok - returned).max(0.0);
    eprintln!("figure: reload latency {latency:.2} s");
    ensure(!last_403.is_nan(), || {
        format!("no 403 before the reload was seen: the polls prove nothing: {polls:?}")
    })?;
    ensure(latency < 2.0, || {
        format!(
            "new.allowed.test answered 200 {latency:.2} s after the reload returned (limit 2 s)"
        )
    })?;
    let ok = "HTTP/1.1 200 OK";
    ensure(
        r["plain_first"] == ok
            && r["plain_second"] == ok
            && r["plain_socket"] == r["plain_socket_after"],
        || format!("the keep-alive connection across the reload: {line}"),
    )?;
    ensure(
        r["connect"] == "HTTP/1.1 200 Connection established"
            && r["tunnel_first"] == ok
            && r["tunnel_second"] == ok
            && r["tunnel_socket"] == r["tunnel_socket_after"],
        || format!("the CONNECT tunnel across the reload: {line}"),
    )
}

/// Several reloads at once, valid and invalid allowlists mixed (the file changes while
/// they run): each either reloads or is refused with the running config unchanged; after
/// them Squid and dnsmasq run, with a config Squid parses, the proxy did not restart, and
/// the last valid list is live (every reload reads the file under the lock, so the last
/// one to take it reads the final content).
pub fn concurrent_reloads_leave_a_valid_config_live(s: &Stack) -> Result<(), String> {
    let original = std::fs::read_to_string(s.allowlist())
        .map_err(|e| format!("reading the allowlist: {e}"))?;
    let restore = Restore::new(|| {
        put_allowlist(s, &original, true)?;
        heal(s)
    });
    let result = concurrent_reloads(s, &original);
    restore.finish(result)
}

fn concurrent_reloads(s: &Stack, original: &str) -> Result<(), String> {
    let without: String = original
        .lines()
        .filter(|l| l.trim().trim_start_matches('-').trim() != "new.allowed.test")
        .map(|l| format!("{l}\n"))
        .collect();
    let with = crate::stack::with_domain(&without, "new.allowed.test");
    let invalid = crate::stack::with_domain(&without, "https://not-a-domain.test/x");
    put_allowlist(s, &without, true)?;
    let restarts = restart_count(s, "proxy");
    let reload = || {
        s.cmd(
            "docker",
            &["compose", "exec", "-T", "proxy", "safeai-proxy", "reload"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    };
    let mut children = Vec::new();
    for content in [&with, &invalid, &without, &invalid, &with, &invalid, &with] {
        put_allowlist(s, content, false)?;
        for _ in 0..2 {
            children.push(reload().map_err(|e| format!("docker compose exec: {e}"))?);
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    let mut outcomes = Vec::new();
    for child in children {
        let out = child
            .wait_with_output()
            .map_err(|e| format!("waiting for a reload: {e}"))?;
        let err = text(&out.stderr);
        let ok = out.status.success() && err.contains("reloaded:");
        let refused = !out.status.success() && err.contains("reload refused");
        ensure(ok || refused, || {
            format!(
                "a concurrent reload neither reloaded nor was refused: {}",
                show(&out)
            )
        })?;
        outcomes.push(if ok { "reloaded" } else { "refused" });
    }
    eprintln!("concurrent reloads: {outcomes:?}");
    ensure(
        outcomes.contains(&"refused") && outcomes.contains(&"reloaded"),
        || format!("the mix did not happen (both kinds expected): {outcomes:?}"),
    )?;
    // Squid may still be reconfiguring: the live state is judged once it answers.
    wait_status(
        s,
        "http://new.allowed.test/",
        "200",
        Duration::from_secs(15),
    )?;
    let out = s.exec(
        "proxy",
        "root",
        "safeai-proxy health && echo health=ok; \
         squid -k parse -f /run/safe-ai/squid.conf >/tmp/parse.log 2>&1 && ! grep -qE 'FATAL|ERROR' /tmp/parse.log && echo parse=ok; \
         echo dnsmasq=$(pgrep -c -x dnsmasq) squid=$(pgrep -c -x squid); \
         echo servers=$(grep -c new.allowed.test /run/safe-ai/dnsmasq.servers)",
    );
    let f = key_values(&text(&out.stdout));
    ensure(
        f.get("health").map(String::as_str) == Some("ok")
            && f.get("parse").map(String::as_str) == Some("ok")
            && f.get("servers").map(String::as_str) == Some("1"),
        || format!("the proxy after concurrent reloads: {}", show(&out)),
    )?;
    ensure(restart_count(s, "proxy") == restarts, || {
        "the proxy restarted during the concurrent reloads".to_owned()
    })?;
    let code = s.status_from_sandbox("http://api.allowed.test/");
    ensure(code == "200", || {
        format!("api.allowed.test after the concurrent reloads: {code:?}")
    })
}

/// What Squid writes to its cache log after it dropped privileges (here the lines of a
/// reconfigure) reaches the container's output, `docker compose logs proxy`, through a
/// log Squid can open as its own user: no "Cannot write log file" (Squid's fallback when
/// it cannot reopen the log, as with `/dev/stderr`).
pub fn squids_cache_log_reaches_the_proxy_log(s: &Stack) -> Result<(), String> {
    let restore = Restore::new(|| heal(s));
    let result = (|| {
        let since = now();
        let out = s.exec(
            "proxy",
            "root",
            "squid -k reconfigure -f /run/safe-ai/squid.conf",
        );
        ensure(out.status.success(), || {
            format!("squid -k reconfigure: {}", show(&out))
        })?;
        // From the reconfigure's first line to its last (Squid listens again).
        let started = Instant::now();
        loop {
            let log = proxy_log_since(s, since - 1.0);
            let first = log.find("Reconfiguring Squid Cache");
            if let Some(first) = first
                && log[first..].contains("Socket connections at")
            {
                return ensure(!log.contains("Cannot write log file"), || {
                    format!("Squid cannot open its cache log:\n{log}")
                });
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err(format!(
                    "the reconfigure's lines (\"Reconfiguring Squid Cache\" … \"Accepting … Socket connections at\") \
                     are not in the proxy's log within 10 s:\n{log}"
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    })();
    restore.finish(result)
}

// ---- 7. nothing lost -----------------------------------------------------------------

const PERSIST: &str = ".safeai-e2e-persist";

/// A random hex token from the host's /dev/urandom.
fn token() -> String {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The contents of the two test files, as the sandbox sees them.
fn persisted(s: &Stack) -> String {
    text(
        &s.sandbox(&format!(
            "echo ws=$(cat /workspace/{PERSIST} 2>&1); echo home=$(cat ~/{PERSIST} 2>&1)"
        ))
        .stdout,
    )
}

/// The host keys sshd serves through the host port (ssh-keyscan), sorted "type key".
fn served_host_keys(s: &Stack) -> Result<Vec<String>, String> {
    let port = s.ssh_port.to_string();
    let started = Instant::now();
    loop {
        let out = s.run("ssh-keyscan", &["-T", "5", "-p", &port, "127.0.0.1"]);
        let mut keys: Vec<String> = text(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let mut w = l.split_whitespace().skip(1);
                Some(format!("{} {}", w.next()?, w.next()?))
            })
            .collect();
        keys.sort();
        if !keys.is_empty() {
            return Ok(keys);
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!("ssh-keyscan got no key in 30 s: {}", show(&out)));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The host keys in the sandbox's volume, sorted "type key".
fn stored_host_keys(s: &Stack) -> Vec<String> {
    let out = s.sandbox("cat /etc/ssh/host-keys/*.pub");
    let mut keys: Vec<String> = text(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some(format!("{} {}", w.next()?, w.next()?))
        })
        .collect();
    keys.sort();
    keys
}

fn fingerprint(keys: &[String]) -> String {
    keys.iter()
        .map(|k| {
            let (kind, key) = k.split_once(' ').unwrap_or((k, ""));
            format!("{kind} …{}", &key[key.len().saturating_sub(12)..])
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Files in /workspace and in dev's home, and the SSH host keys, survive a restart of the
/// sandbox and a `docker compose down` (without -v) then `up`; key login works after.
pub fn files_and_host_key_survive_restart_and_down_up(s: &Stack) -> Result<(), String> {
    let restore = Restore::new(|| {
        heal(s)?;
        let out = s.sandbox(&format!("rm -f /workspace/{PERSIST} ~/{PERSIST}"));
        ensure(out.status.success(), || {
            format!("removing the test files: {}", show(&out))
        })
    });
    let result = persistence(s);
    restore.finish(result)
}

fn persistence(s: &Stack) -> Result<(), String> {
    let (ws, home) = (token(), token());
    let out = s.sandbox(&format!(
        "printf %s {ws} > /workspace/{PERSIST} && printf %s {home} > ~/{PERSIST} && echo written"
    ));
    ensure(text(&out.stdout).trim() == "written", || {
        format!("writing the test files: {}", show(&out))
    })?;
    let files = format!("ws={ws}\nhome={home}\n");
    ensure(persisted(s) == files, || {
        format!("the test files read back as {:?}", persisted(s))
    })?;
    let keys = served_host_keys(s)?;
    let stored = stored_host_keys(s);
    ensure(keys == stored, || {
        format!("sshd serves {keys:?}, the volume holds {stored:?}")
    })?;
    eprintln!("persistence: host keys {}", fingerprint(&keys));
    let login = ssh(s, "pwd; id -un");
    let landed = text(&login.stdout);
    ensure(
        login.status.success() && landed.ends_with("\ndev\n"),
        || format!("precondition: key login as dev: {}", show(&login)),
    )?;

    let same = |s: &Stack, when: &str| -> Result<(), String> {
        let got = persisted(s);
        ensure(got == files, || {
            format!("after {when}: the files hold {got:?}, expected {files:?}")
        })?;
        let now = served_host_keys(s)?;
        ensure(now == keys, || {
            format!(
                "after {when}: the host keys changed: {} -> {}",
                fingerprint(&keys),
                fingerprint(&now)
            )
        })
    };

    // restart
    let started = inspect(s, "sandbox", "{{.State.StartedAt}}");
    let out = s.compose(&["restart", "sandbox"]);
    ensure(out.status.success(), || {
        format!("docker compose restart sandbox: {}", show(&out))
    })?;
    let healthy = wait_healthy(s, &["sandbox"], Duration::from_secs(60))?;
    let restarted = inspect(s, "sandbox", "{{.State.StartedAt}}");
    ensure(restarted != started, || {
        format!("the sandbox did not restart: started at {started} still")
    })?;
    same(s, "docker compose restart sandbox")?;
    eprintln!(
        "persistence: restart: healthy {:.1} s, files and host keys unchanged",
        healthy.as_secs_f64()
    );

    // down (keeping the volumes), then up
    let sandbox_id = container(s, "sandbox");
    let out = s.compose(&["down"]);
    ensure(out.status.success(), || {
        format!("docker compose down: {}", show(&out))
    })?;
    let gone = s.run("docker", &["inspect", &sandbox_id]);
    ensure(!gone.status.success(), || {
        "the sandbox container survived `docker compose down`".to_owned()
    })?;
    let up = Instant::now();
    let out = s.compose(&["up", "-d"]);
    let up_returned = up.elapsed();
    ensure(out.status.success(), || {
        format!("docker compose up -d: {}", show(&out))
    })?;
    let mut login = None;
    let mut last = String::new();
    while up.elapsed() < Duration::from_secs(120) {
        let out = ssh(s, "pwd; id -un");
        if out.status.success() {
            login = Some((up.elapsed(), text(&out.stdout)));
            break;
        }
        last = show(&out);
        std::thread::sleep(Duration::from_millis(250));
    }
    let (took, said) = login.ok_or_else(|| format!("no SSH login within 120 s of `up`: {last}"))?;
    ensure(said == landed, || {
        format!("the SSH login said {said:?}, before the down {landed:?}")
    })?;
    eprintln!(
        "figure: docker compose up (after down) to first SSH login {:.1} s (up returned after {:.1} s)",
        took.as_secs_f64(),
        up_returned.as_secs_f64()
    );
    wait_healthy(s, &["proxy", "sandbox"], Duration::from_secs(90))?;
    let healthy = up.elapsed();
    same(s, "docker compose down and up")?;
    let code = s.status_from_sandbox("http://api.allowed.test/");
    ensure(code == "200", || {
        format!("api.allowed.test after down and up: {code:?}")
    })?;
    eprintln!(
        "persistence: down/up: both healthy {:.1} s after up, files and host keys unchanged, key login works, egress 200",
        healthy.as_secs_f64()
    );
    Ok(())
}

/// An editor that saves by replacing the file leaves the proxy reading the old inode:
/// `safeai reload` must say so instead of reloading a list the user no longer has.
pub fn a_replaced_allowlist_is_reported_not_silently_reloaded(s: &Stack) -> Result<(), String> {
    let original = std::fs::read_to_string(s.allowlist())
        .map_err(|e| format!("reading the allowlist: {e}"))?;
    let restore = Restore::new(|| {
        // Mount the current file again, then put the original content back in place.
        let out = s.compose(&["up", "-d", "--force-recreate", "proxy"]);
        ensure(out.status.success(), || {
            format!("recreating the proxy: {}", show(&out))
        })?;
        wait_healthy(s, &["proxy", "sandbox"], Duration::from_secs(90))?;
        put_allowlist(s, &original, true)?;
        heal(s)
    });
    let result = (|| {
        let replacement = s.allowlist().with_extension("new");
        std::fs::write(
            &replacement,
            crate::stack::with_domain(&original, "new.allowed.test"),
        )
        .map_err(|e| e.to_string())?;
        std::fs::rename(&replacement, s.allowlist()).map_err(|e| e.to_string())?;
        let out = s.safeai(&["reload"]);
        let err = show(&out);
        ensure(
            !out.status.success() && err.contains("the file was replaced"),
            || format!("safeai reload after a replacement: {err}"),
        )?;
        let code = s.status_from_sandbox("http://new.allowed.test/");
        ensure(code == "403", || {
            format!("new.allowed.test after the refused reload: {code:?}")
        })
    })();
    restore.finish(result)
}

/// The sandbox reads a denied HTTPS page trusting only its system bundle: proof that it
/// trusts the proxy's current CA.
fn sandbox_trusts_the_proxy(s: &Stack) -> Result<(), String> {
    let host = format!("{}.evil.test", crate::stack::unique("ca"));
    let out = s.sandbox(&format!(
        "curl -sS -o /dev/null -w '%{{http_code}}' --max-time 10 https://{host}/ 2>&1; true"
    ));
    let got = text(&out.stdout);
    ensure(got == "403", || {
        format!("the sandbox does not trust the proxy's CA (https://{host}/): {got}")
    })
}

/// `safeai ca rotate` on the host: a new CA in the proxy, the sandbox restarted with it
/// in its bundle, denied HTTPS pages still trusted.
pub fn safeai_ca_rotate_gives_proxy_and_sandbox_a_new_ca(s: &Stack) -> Result<(), String> {
    let before = s.ca_fingerprint("sandbox", "/etc/safe-ai/ca/ca.crt");
    let restore = Restore::new(|| heal(s));
    let result = (|| {
        let out = s.safeai(&["ca", "rotate"]);
        ensure(out.status.success(), || {
            format!("safeai ca rotate failed: {}", show(&out))
        })?;
        let took = wait_healthy(s, &["proxy", "sandbox"], Duration::from_secs(90))?;
        let (proxy, sandbox) = (
            s.ca_fingerprint("proxy", "/var/lib/safe-ai/ca/ca.crt"),
            s.ca_fingerprint("sandbox", "/etc/safe-ai/ca/ca.crt"),
        );
        ensure(
            !before.is_empty() && sandbox != before && proxy == sandbox,
            || format!("after rotate: before {before:?}, proxy {proxy:?}, sandbox {sandbox:?}"),
        )?;
        sandbox_trusts_the_proxy(s)?;
        eprintln!(
            "figure: safeai ca rotate to both healthy again {:.1} s",
            took.as_secs_f64()
        );
        Ok(())
    })();
    restore.finish(result)
}

/// A CA that cannot be loaded keeps the proxy down (fail closed, never healthy, the
/// sandbox without egress) and says how to make a new one; a new one brings it back.
pub fn an_unusable_stack_ca_keeps_the_proxy_down(s: &Stack) -> Result<(), String> {
    let restore = Restore::new(|| {
        // The way the log tells: a new CA made by a one-off proxy container.
        let out = s.compose(&[
            "run", "--rm", "--no-deps", "--entrypoint", "bash", "proxy", "-c",
            "safeai ca rotate --dir /var/lib/safe-ai/ca --export /var/lib/safe-ai/ca-public --owner 0:$(id -g proxy)",
        ]);
        if !out.status.success() {
            return Err(format!("making a new CA: {}", show(&out)));
        }
        let out = s.compose(&["up", "-d", "proxy"]);
        if !out.status.success() {
            return Err(format!("docker compose up -d proxy: {}", show(&out)));
        }
        wait_healthy(s, &["proxy"], Duration::from_secs(60))?;
        // The sandbox builds its bundle at start: it needs the new certificate.
        let out = s.compose(&["restart", "sandbox"]);
        if !out.status.success() {
            return Err(format!("docker compose restart sandbox: {}", show(&out)));
        }
        heal(s)?;
        sandbox_trusts_the_proxy(s)
    });
    let result = (|| {
        let out = s.exec(
            "proxy",
            "root",
            "printf 'not a key\\n' > /var/lib/safe-ai/ca/ca.key",
        );
        ensure(out.status.success(), || {
            format!("corrupting the CA key: {}", show(&out))
        })?;
        let t0 = now();
        let out = s.compose(&["restart", "proxy"]);
        ensure(out.status.success(), || {
            format!("docker compose restart proxy: {}", show(&out))
        })?;
        let watch = Instant::now();
        let (mut states, mut codes) = (Vec::new(), Vec::new());
        while watch.elapsed() < Duration::from_secs(8) {
            let h = format!(
                "{}/{}",
                inspect(s, "proxy", "{{.State.Status}}"),
                s.health("proxy")
            );
            if states.last() != Some(&h) {
                states.push(h);
            }
            let code = s.status_from_sandbox("http://api.allowed.test/");
            if codes.last() != Some(&code) {
                codes.push(code);
            }
        }
        let log = proxy_log_since(s, t0);
        ensure(states.iter().all(|h| !h.ends_with("/healthy")), || {
            format!("the proxy became healthy with a broken CA: {states:?}")
        })?;
        ensure(codes.iter().all(|c| c != "200"), || {
            format!("the sandbox had egress while the proxy should be down: {codes:?}")
        })?;
        ensure(
            log.contains("ca.key") && log.contains("fail closed") && log.contains("ca rotate"),
            || format!("the proxy's log does not say why it stays down and what to do:\n{log}"),
        )?;
        Ok(())
    })();
    restore.finish(result)
}

/// Squid's certificate generator killed: the next denied HTTPS request, which needs a new
/// certificate, still gets its page (Squid starts a new helper, or the proxy restarts).
pub fn a_dead_certificate_generator_is_replaced(s: &Stack) -> Result<(), String> {
    let restore = Restore::new(|| heal(s));
    let result = (|| {
        let restarts = restart_count(s, "proxy");
        let out = s.exec(
            "proxy",
            "root",
            "pkill -KILL -f '^[(]security_file_certgen[)]'; echo $?",
        );
        ensure(text(&out.stdout).trim() == "0", || {
            format!("no certificate generator to kill: {}", show(&out))
        })?;
        let killed = Instant::now();
        loop {
            // A new name each time: its certificate is not in any cache.
            if sandbox_trusts_the_proxy(s).is_ok() {
                break;
            }
            if killed.elapsed() > Duration::from_secs(60) {
                return Err("no denied HTTPS page within 60 s of killing the generator".into());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let back = killed.elapsed();
        let out = s.exec(
            "proxy",
            "root",
            "pgrep -c -f '^[(]security_file_certgen[)]'",
        );
        eprintln!(
            "figure: certificate generator killed to a minted certificate again {:.1} s (proxy restarts {} -> {}, generators running {})",
            back.as_secs_f64(),
            restarts,
            restart_count(s, "proxy"),
            text(&out.stdout).trim()
        );
        Ok(())
    })();
    restore.finish(result)
}

pub const CHECKS: &[(&str, crate::stack::Check)] = crate::checks![
    fork_bomb_is_contained_and_the_proxy_keeps_serving,
    memory_hog_is_killed_without_taking_the_stack_down,
    reload_under_an_open_tunnel,
    concurrent_reloads_leave_a_valid_config_live,
    squids_cache_log_reaches_the_proxy_log,
    a_replaced_allowlist_is_reported_not_silently_reloaded,
    killing_squid_restarts_the_proxy_and_egress_comes_back,
    with_the_proxy_stopped_the_sandbox_has_no_egress,
    an_invalid_mounted_allowlist_keeps_the_proxy_down,
    a_dead_certificate_generator_is_replaced,
    safeai_ca_rotate_gives_proxy_and_sandbox_a_new_ca,
    an_unusable_stack_ca_keeps_the_proxy_down,
    files_and_host_key_survive_restart_and_down_up,
];
