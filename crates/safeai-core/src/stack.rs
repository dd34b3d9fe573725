//! The typed plan of the whole stack: services, networks, volumes, the security
//! profile and the proxy settings. Renderers only read it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use crate::Error;

/// A value the user can override through an environment variable at `docker compose`
/// time; it renders as `${VAR:-default}` so the committed compose file stays generic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Knob<T> {
    /// The variable, such as `SAFE_AI_SSH_PORT`.
    pub var: &'static str,
    /// The value when the variable is unset or empty.
    pub default: T,
}

impl<T: fmt::Display> fmt::Display for Knob<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${{{}:-{}}}", self.var, self.default)
    }
}

const fn knob<T>(var: &'static str, default: T) -> Knob<T> {
    Knob { var, default }
}

/// An IPv4 or IPv6 network in CIDR notation, with no host bits set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is inside the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.addr.is_ipv4() == ip.is_ipv4() && network_of(ip, self.prefix) == self.addr
    }
}

/// `ip` with every bit after the first `prefix` cleared.
fn network_of(ip: IpAddr, prefix: u8) -> IpAddr {
    let prefix = u32::from(prefix);
    match ip {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

impl FromStr for Cidr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Cidr, Error> {
        let bad = |reason: &str| Error::InvalidCidr {
            input: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (addr, prefix) = s.split_once('/').ok_or_else(|| bad("no `/prefix`"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| bad("not an IP address before the `/`"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| bad(&format!("the prefix must be a number from 0 to {max}")))?;
        if network_of(addr, prefix) != addr {
            return Err(bad("host bits are set after the prefix"));
        }
        let cidr = Cidr { addr, prefix };
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Seconds, for timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seconds(pub u32);

/// A size in mebibytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mebibytes(pub u32);

/// The destinations Squid denies after resolving a name, unless an exception names them:
/// loopback, "this network", RFC 1918, CGNAT, link-local (cloud metadata at
/// 169.254.169.254), IPv6 loopback, unspecified, ULA and link-local.
pub const BLOCKED_RANGES: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::/128",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
];

/// An absolute path that can be written into a config file as it is: `/`-separated
/// names of letters, digits, `.`, `_` and `-` (no space, quote or line break to break a
/// directive out of its line).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigPath(String);

impl ConfigPath {
    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ConfigPath {
    type Err = Error;

    fn from_str(s: &str) -> Result<ConfigPath, Error> {
        let ok = s.starts_with('/')
            && s.len() > 1
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
            && !s.split('/').any(|part| part == "..");
        if ok {
            Ok(ConfigPath(s.to_owned()))
        } else {
            Err(Error::InvalidPath {
                input: s.escape_debug().to_string(),
            })
        }
    }
}

impl fmt::Display for ConfigPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the proxy container runs with: Squid, dnsmasq and the SSH forwarder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySettings {
    /// Squid's port.
    pub http_port: u16,
    /// The proxy's address on the internal network; dnsmasq answers there.
    pub internal_address: IpAddr,
    /// Where dnsmasq forwards allowlisted names: Docker's embedded resolver by default,
    /// never a hard-coded public one.
    pub dns_upstream: IpAddr,
    /// Private ranges that allowlisted names may resolve to (for example a test
    /// network or an internal registry).
    pub private_exceptions: Vec<Cidr>,
    /// Squid's `connect_timeout`.
    pub connect_timeout: Seconds,
    /// Squid's `read_timeout`.
    pub read_timeout: Seconds,
    /// Squid's `request_body_max_size`.
    pub request_body_max: Mebibytes,
    /// Where the rendered configs and pid files live inside the proxy (a tmpfs).
    pub runtime_dir: String,
    /// Port the SSH forwarder listens on inside the proxy.
    pub ssh_forward_port: u16,
    /// Concurrent SSH connections the forwarder accepts.
    pub ssh_max_connections: u16,
    /// The stack CA, key and certificate in one PEM file (Squid mints certificates with
    /// it); in the proxy's own volume.
    pub ca_file: String,
    /// The database of minted certificates (a tmpfs: emptied at every start, so a
    /// rotated CA never meets certificates of the old one).
    pub ssl_db: String,
    /// The bound on minted certificates kept, in memory and in the database.
    pub cert_cache: Mebibytes,
    /// Extra CAs for upstream certificates (`SAFE_AI_UPSTREAM_CA`, as mounted in the
    /// proxy), beside the system's.
    pub upstream_ca: Option<ConfigPath>,
    /// The `safeai` binary in the proxy: Squid runs its SNI check helper.
    pub helper: String,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            http_port: 3128,
            internal_address: IpAddr::V4(DEFAULT_PROXY_IP),
            dns_upstream: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11)),
            private_exceptions: Vec::new(),
            connect_timeout: Seconds(30),
            read_timeout: Seconds(300),
            request_body_max: Mebibytes(1024),
            runtime_dir: "/run/safe-ai".into(),
            ssh_forward_port: 2222,
            ssh_max_connections: 32,
            ca_file: "/var/lib/safe-ai/ca/ca.pem".into(),
            ssl_db: "/var/spool/squid/ssl_db".into(),
            cert_cache: Mebibytes(4),
            upstream_ca: None,
            helper: "/usr/local/bin/safeai".into(),
        }
    }
}

/// The proxy's default address on the internal network.
pub const DEFAULT_PROXY_IP: Ipv4Addr = Ipv4Addr::new(172, 30, 42, 2);
/// The internal network's default subnet.
pub const DEFAULT_SUBNET: &str = "172.30.42.0/24";

/// The environment variables the proxy reads at start and on reload, beside the
/// allowlist's own (`SAFE_AI_ALLOWLIST`, `SAFE_AI_DEFAULT_DOMAINS`).
pub mod env {
    /// The DNS upstream for allowlisted names.
    pub const DNS_UPSTREAM: &str = "SAFE_AI_DNS_UPSTREAM";
    /// The proxy's internal address.
    pub const PROXY_IP: &str = "SAFE_AI_PROXY_IP";
    /// Comma-separated CIDRs that allowlisted names may resolve to.
    pub const PRIVATE_EXCEPTIONS: &str = "SAFE_AI_PRIVATE_EXCEPTIONS";
    /// A PEM file of extra CAs for upstream certificates (as the proxy sees it).
    pub const UPSTREAM_CA: &str = "SAFE_AI_UPSTREAM_CA";
}

impl ProxySettings {
    /// Applies the proxy's environment variables, read through `lookup`
    /// (the library never reads the environment itself). Empty values keep the default.
    ///
    /// # Errors
    ///
    /// Every variable whose value does not parse, each naming the variable.
    pub fn with_env(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ProxySettings, Vec<Error>> {
        let mut errors = Vec::new();
        let get = |var: &str| {
            lookup(var)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        for (var, slot) in [
            (env::DNS_UPSTREAM, &mut self.dns_upstream),
            (env::PROXY_IP, &mut self.internal_address),
        ] {
            if let Some(v) = get(var) {
                match v.parse() {
                    Ok(ip) => *slot = ip,
                    Err(_) => errors.push(Error::InvalidEnv {
                        var,
                        value: v,
                        expected: "an IP address, such as 127.0.0.11",
                    }),
                }
            }
        }
        if let Some(v) = get(env::UPSTREAM_CA) {
            match v.parse() {
                Ok(p) => self.upstream_ca = Some(p),
                Err(_) => errors.push(Error::InvalidEnv {
                    var: env::UPSTREAM_CA,
                    value: v,
                    expected: "an absolute path of letters, digits, `.`, `_`, `-` and `/`, such as /etc/safe-ai/upstream-ca.pem",
                }),
            }
        }
        if let Some(v) = get(env::PRIVATE_EXCEPTIONS) {
            for (i, item) in v.split(',').enumerate() {
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                match item.parse() {
                    Ok(c) => self.private_exceptions.push(c),
                    Err(e) => errors.push(Error::InvalidEnvItem {
                        var: env::PRIVATE_EXCEPTIONS,
                        index: i,
                        source: Box::new(e),
                    }),
                }
            }
            self.private_exceptions.sort();
            self.private_exceptions.dedup();
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }
}

/// Linux capabilities, by the names Docker uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)]
pub enum Capability {
    Chown,
    DacOverride,
    Fowner,
    Kill,
    NetBindService,
    Setgid,
    Setuid,
    SysChroot,
    AuditWrite,
}

impl Capability {
    /// The capability's number in the kernel (`include/uapi/linux/capability.h`): its bit
    /// in `/proc/PID/status`'s `CapBnd`, `CapEff`, … masks.
    pub fn bit(self) -> u32 {
        match self {
            Capability::Chown => 0,
            Capability::DacOverride => 1,
            Capability::Fowner => 3,
            Capability::Kill => 5,
            Capability::Setgid => 6,
            Capability::Setuid => 7,
            Capability::NetBindService => 10,
            Capability::SysChroot => 18,
            Capability::AuditWrite => 29,
        }
    }

    /// Docker's name, such as `SETUID`.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Chown => "CHOWN",
            Capability::DacOverride => "DAC_OVERRIDE",
            Capability::Fowner => "FOWNER",
            Capability::Kill => "KILL",
            Capability::NetBindService => "NET_BIND_SERVICE",
            Capability::Setgid => "SETGID",
            Capability::Setuid => "SETUID",
            Capability::SysChroot => "SYS_CHROOT",
            Capability::AuditWrite => "AUDIT_WRITE",
        }
    }
}

/// A tmpfs mount. `noexec`, `nosuid` and `nodev` are always set: there is no way to
/// build a writable tmpfs that can run programs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tmpfs {
    /// Where it is mounted.
    pub path: &'static str,
    /// Its size.
    pub size: Mebibytes,
    /// The octal mode of its root, such as `1777`.
    pub mode: &'static str,
}

impl fmt::Display for Tmpfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:rw,noexec,nosuid,nodev,size={}m,mode={}",
            self.path, self.size.0, self.mode
        )
    }
}

/// How a container is confined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityProfile {
    /// The root filesystem is mounted read-only.
    pub read_only_root: bool,
    /// All capabilities are dropped, then these are added back.
    pub cap_add: Vec<Capability>,
    /// `no-new-privileges`: setuid binaries do not elevate.
    pub no_new_privileges: bool,
    /// The seccomp profile file, relative to the compose file; `None` keeps Docker's default.
    pub seccomp: Option<&'static str>,
    /// Writable scratch space.
    pub tmpfs: Vec<Tmpfs>,
    /// Memory limit (`8g`).
    pub memory: Knob<String>,
    /// CPU limit in CPUs (`1.5`); `0` is Docker's "no limit". Docker refuses to start a
    /// container whose limit exceeds the host's CPUs, so a default must be one that every
    /// host satisfies: `make setup` writes a fitting limit into the `.env` it creates.
    pub cpus: Knob<String>,
    /// Maximum number of processes and threads: contains fork bombs.
    pub pids: u32,
    /// The OCI runtime (`runc`, or `runsc` for gVisor); `None` for Docker's default.
    pub runtime: Option<Knob<String>>,
    /// Kernel settings of the container's own network namespace (`sysctls:`), by name.
    pub sysctls: BTreeMap<&'static str, &'static str>,
}

/// A volume that outlives containers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedVolume {
    /// The volume's name in the compose file.
    pub name: &'static str,
    /// Where it is mounted in the sandbox.
    pub target: &'static str,
    /// Why it exists, for the compose file's reader.
    pub purpose: &'static str,
}

/// Where the stack CA lives. Its key is only in the proxy's own volume; its certificate
/// is also in a second volume that the proxy writes and the sandbox mounts read-only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaVolumes {
    /// The volume with the key and certificate (`proxy-ca`), mounted by the proxy only.
    pub private: &'static str,
    /// Where the proxy mounts it.
    pub private_target: &'static str,
    /// The volume with the certificate alone (`ca-public`).
    pub public: &'static str,
    /// Where the proxy mounts it (read-write: it exports the certificate there).
    pub public_in_proxy: &'static str,
    /// Where the sandbox mounts it, read-only.
    pub public_in_sandbox: &'static str,
}

/// The SSH entry point for IDEs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshSettings {
    /// The host port (`SAFE_AI_SSH_PORT`, 2222).
    pub host_port: Knob<u16>,
    /// The host address the port is published on (`SAFE_AI_SSH_BIND`, 127.0.0.1:
    /// the original published on every interface).
    pub host_bind: Knob<IpAddr>,
    /// The public key allowed to log in (`SAFE_AI_SSH_KEY`).
    pub public_key: Knob<&'static str>,
}

/// The internal network's addressing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkPlan {
    /// The internal subnet (`SAFE_AI_SUBNET`).
    pub subnet: Knob<&'static str>,
    /// The proxy's fixed address on it (`SAFE_AI_PROXY_IP`), the sandbox's DNS server.
    pub proxy_ip: Knob<IpAddr>,
}

/// The whole stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stack {
    /// Networks.
    pub network: NetworkPlan,
    /// The sandbox's confinement.
    pub sandbox: SecurityProfile,
    /// The proxy's confinement.
    pub proxy: SecurityProfile,
    /// The sandbox's persistent volumes.
    pub volumes: Vec<NamedVolume>,
    /// SSH.
    pub ssh: SshSettings,
    /// The proxy's settings.
    pub proxy_settings: ProxySettings,
    /// The allowlist file mounted into the proxy (`SAFE_AI_ALLOWLIST`).
    pub allowlist_file: Knob<&'static str>,
    /// Extra domains (`SAFE_AI_DEFAULT_DOMAINS`), passed to the proxy.
    pub default_domains: Knob<&'static str>,
    /// The DNS upstream passed to the proxy (`SAFE_AI_DNS_UPSTREAM`).
    pub dns_upstream: Knob<IpAddr>,
    /// The stack CA's volumes.
    pub ca: CaVolumes,
    /// A PEM file on the host with extra CAs the proxy trusts for upstream certificates
    /// (`SAFE_AI_UPSTREAM_CA`; `/dev/null`, an empty file, means none).
    pub upstream_ca: Knob<&'static str>,
    /// Where the proxy sees that file.
    pub upstream_ca_target: &'static str,
}

impl Default for Stack {
    fn default() -> Self {
        let proxy_ip = knob("SAFE_AI_PROXY_IP", IpAddr::V4(DEFAULT_PROXY_IP));
        Stack {
            network: NetworkPlan {
                subnet: knob("SAFE_AI_SUBNET", DEFAULT_SUBNET),
                proxy_ip,
            },
            sandbox: SecurityProfile {
                read_only_root: true,
                // sshd: bind port 22, switch to the user, chroot for privilege
                // separation, chown the pty, write the login record. FOWNER: sshd sets
                // the terminal's mode after giving it to the user, which it must under
                // gVisor, whose /dev/pts ignores Docker's mode=620 (under runc the mode is
                // already right); root, the only holder, can already take any file with
                // CHOWN, so it adds no power root lacked.
                cap_add: vec![
                    Capability::AuditWrite,
                    Capability::Chown,
                    Capability::Fowner,
                    Capability::NetBindService,
                    Capability::Setgid,
                    Capability::Setuid,
                    Capability::SysChroot,
                ],
                no_new_privileges: true,
                seccomp: Some("seccomp.json"),
                tmpfs: vec![
                    Tmpfs {
                        path: "/tmp",
                        size: Mebibytes(2048),
                        mode: "1777",
                    },
                    Tmpfs {
                        path: "/var/tmp",
                        size: Mebibytes(512),
                        mode: "1777",
                    },
                    Tmpfs {
                        path: "/run",
                        size: Mebibytes(64),
                        mode: "755",
                    },
                ],
                memory: knob("SAFE_AI_SANDBOX_MEMORY", "8g".into()),
                // No CPU cap unless configured (a fixed cap such as 4 fails on a 2-core host).
                cpus: knob("SAFE_AI_SANDBOX_CPUS", "0".into()),
                pids: 1024,
                runtime: Some(knob("SAFE_AI_RUNTIME", "runc".into())),
                sysctls: BTreeMap::from([
                    // No IPv6 at all: the internal network has none, and a link-local
                    // address would reach the host's bridges (every interface,
                    // present and future).
                    ("net.ipv6.conf.all.disable_ipv6", "1"),
                    ("net.ipv6.conf.default.disable_ipv6", "1"),
                    // No ICMP sockets for anyone (Docker allows every group by default):
                    // `ping` needs them, without CAP_NET_RAW.
                    ("net.ipv4.ping_group_range", "1 0"),
                ]),
            },
            proxy: SecurityProfile {
                read_only_root: true,
                // Squid and dnsmasq start as root and drop to their users; dnsmasq binds 53.
                cap_add: vec![
                    Capability::Chown,
                    Capability::Kill,
                    Capability::NetBindService,
                    Capability::Setgid,
                    Capability::Setuid,
                ],
                no_new_privileges: true,
                seccomp: None,
                tmpfs: vec![
                    Tmpfs {
                        path: "/run",
                        size: Mebibytes(64),
                        mode: "755",
                    },
                    Tmpfs {
                        path: "/tmp",
                        size: Mebibytes(64),
                        mode: "1777",
                    },
                    Tmpfs {
                        path: "/var/spool/squid",
                        size: Mebibytes(64),
                        mode: "755",
                    },
                    Tmpfs {
                        path: "/var/log/squid",
                        size: Mebibytes(64),
                        mode: "755",
                    },
                ],
                memory: knob("SAFE_AI_PROXY_MEMORY", "512m".into()),
                cpus: knob("SAFE_AI_PROXY_CPUS", "1".into()),
                pids: 256,
                runtime: None,
                sysctls: BTreeMap::from([
                    // Answer ARP only for an address of the interface asked on: the
                    // sandbox, on the internal network, cannot reach the proxy's external
                    // address (where the SSH forwarder listens) by taking it as on-link.
                    ("net.ipv4.conf.all.arp_ignore", "1"),
                ]),
            },
            volumes: vec![
                NamedVolume {
                    name: "workspace",
                    target: "/workspace",
                    purpose: "the agent's work",
                },
                NamedVolume {
                    name: "home",
                    target: "/home/dev",
                    purpose: "shell history, agent config, the IDE server",
                },
                NamedVolume {
                    name: "ssh-host-keys",
                    target: "/etc/ssh/host-keys",
                    purpose: "a stable host key across rebuilds",
                },
            ],
            ssh: SshSettings {
                host_port: knob("SAFE_AI_SSH_PORT", 2222),
                host_bind: knob("SAFE_AI_SSH_BIND", IpAddr::V4(Ipv4Addr::LOCALHOST)),
                public_key: knob("SAFE_AI_SSH_KEY", "~/.ssh/id_ed25519.pub"),
            },
            proxy_settings: ProxySettings::default(),
            allowlist_file: knob("SAFE_AI_ALLOWLIST", "./allowlist.yaml"),
            default_domains: knob("SAFE_AI_DEFAULT_DOMAINS", ""),
            dns_upstream: knob(
                "SAFE_AI_DNS_UPSTREAM",
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11)),
            ),
            ca: CaVolumes {
                private: "proxy-ca",
                private_target: "/var/lib/safe-ai/ca",
                public: "ca-public",
                public_in_proxy: "/var/lib/safe-ai/ca-public",
                public_in_sandbox: "/etc/safe-ai/ca",
            },
            upstream_ca: knob("SAFE_AI_UPSTREAM_CA", "/dev/null"),
            upstream_ca_target: "/etc/safe-ai/upstream-ca.pem",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_and_rejects_host_bits() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!("10.0.0.1/8".parse::<Cidr>().is_err());
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("10.0.0.0".parse::<Cidr>().is_err());
        assert!("fd00::/8".parse::<Cidr>().is_ok());
        assert!("0.0.0.0/0".parse::<Cidr>().is_ok());
        for r in BLOCKED_RANGES {
            assert!(r.parse::<Cidr>().is_ok(), "{r}");
        }
    }

    #[test]
    fn knobs_render_as_interpolations() {
        assert_eq!(
            Stack::default().ssh.host_port.to_string(),
            "${SAFE_AI_SSH_PORT:-2222}"
        );
    }

    #[test]
    fn env_overrides_and_reports_every_bad_value() {
        let env = |k: &str| match k {
            "SAFE_AI_DNS_UPSTREAM" => Some("10.9.9.9".to_owned()),
            "SAFE_AI_PRIVATE_EXCEPTIONS" => Some("172.31.0.0/16, ,bad".to_owned()),
            "SAFE_AI_PROXY_IP" => Some("nope".to_owned()),
            _ => None,
        };
        let errors = ProxySettings::default().with_env(env).unwrap_err();
        assert_eq!(errors.len(), 2);
        let ok = ProxySettings::default()
            .with_env(|k| (k == "SAFE_AI_PRIVATE_EXCEPTIONS").then(|| "172.31.0.0/16".to_owned()))
            .unwrap();
        assert_eq!(ok.private_exceptions[0].to_string(), "172.31.0.0/16");
    }
}
