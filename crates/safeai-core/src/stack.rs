//! The typed plan of the whole stack: services, networks, volumes, the security
//! profile and the proxy settings. Renderers only read it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
/// "this network", RFC 1918, CGNAT, loopback, link-local (cloud metadata at
/// 169.254.169.254), IETF protocol assignments, benchmarking, multicast, reserved and
/// broadcast; IPv6 unspecified, loopback, NAT64 (both prefixes), discard-only, Teredo,
/// 6to4, ULA, link-local and multicast.
///
/// No entry for IPv4-mapped IPv6 (`::ffff:0:0/96`): Squid keeps every IPv4 address in that
/// form, so such an entry would match every IPv4 destination (checked with Squid 5.7);
/// a mapped address such as `::ffff:127.0.0.1` is matched by the IPv4 ranges instead.
pub const BLOCKED_RANGES: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/32",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// [`BLOCKED_RANGES`] as networks.
pub fn blocked_ranges() -> Vec<Cidr> {
    BLOCKED_RANGES
        .iter()
        // A test parses every entry.
        .map(|r| r.parse().expect("BLOCKED_RANGES entries are CIDRs"))
        .collect()
}

/// The cloud metadata addresses: 169.254.169.254, and fd00:ec2::254 (AWS over IPv6). No
/// private exception may contain them.
pub const METADATA_ADDRESSES: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

/// An address as an integer of its family's width, with the width in bits.
fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

/// The address `n` in the family of width `width`.
fn from_bits(n: u128, width: u8) -> IpAddr {
    if width == 32 {
        // Only called with values of 32-bit families.
        IpAddr::V4(Ipv4Addr::from(u32::try_from(n).expect("an IPv4 value")))
    } else {
        IpAddr::V6(Ipv6Addr::from(n))
    }
}

impl Cidr {
    /// The first and last address of the network, as integers, and the family's width.
    fn range(&self) -> (u128, u128, u8) {
        let (start, width) = bits(self.addr);
        (start, start + host_mask(width - self.prefix), width)
    }

    /// Whether the two networks share an address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        let (a0, a1, wa) = self.range();
        let (b0, b1, wb) = other.range();
        wa == wb && a0 <= b1 && b0 <= a1
    }
}

/// The lowest `host_bits` bits set.
fn host_mask(host_bits: u8) -> u128 {
    match host_bits {
        0 => 0,
        n => u128::MAX >> (128 - u32::from(n)),
    }
}

/// The fewest networks that cover the inclusive range `[start, end]` of a family of
/// `width` bits, in address order.
fn range_to_cidrs(mut start: u128, end: u128, width: u8, out: &mut Vec<Cidr>) {
    loop {
        // The largest block that starts at `start` (so is aligned there) and ends by `end`;
        // aligned, `start + mask` cannot overflow.
        let mut host_bits =
            u8::try_from(start.trailing_zeros().min(u32::from(width))).expect("at most 128");
        while host_bits > 0 && start + host_mask(host_bits) > end {
            host_bits -= 1;
        }
        out.push(Cidr {
            addr: from_bits(start, width),
            prefix: width - host_bits,
        });
        let last = start + host_mask(host_bits);
        if last >= end {
            return;
        }
        start = last + 1;
    }
}

/// The addresses in some network of `from` and in none of `minus`, as the fewest
/// networks, in order (IPv4 first): the blocked ranges minus the private exceptions.
pub fn cidr_difference(from: &[Cidr], minus: &[Cidr]) -> Vec<Cidr> {
    let mut out = Vec::new();
    for width in [32, 128] {
        let ranges = |set: &[Cidr]| -> Vec<(u128, u128)> {
            let mut r: Vec<(u128, u128)> = set
                .iter()
                .map(Cidr::range)
                .filter(|(_, _, w)| *w == width)
                .map(|(a, b, _)| (a, b))
                .collect();
            r.sort_unstable();
            // Merged: overlapping or adjacent ranges become one.
            let mut merged: Vec<(u128, u128)> = Vec::new();
            for (a, b) in r {
                match merged.last_mut() {
                    Some((_, end)) if a <= end.saturating_add(1) => *end = (*end).max(b),
                    _ => merged.push((a, b)),
                }
            }
            merged
        };
        let cut = ranges(minus);
        for (first, b) in ranges(from) {
            let (mut a, mut done) = (first, false);
            // The cuts are merged and in order: each starts after the previous one ends.
            for &(c, d) in cut.iter().filter(|(c, d)| *d >= first && *c <= b) {
                if c > a {
                    range_to_cidrs(a, c - 1, width, &mut out);
                }
                if d >= b {
                    done = true;
                    break;
                }
                a = d + 1;
            }
            if !done {
                range_to_cidrs(a, b, width, &mut out);
            }
        }
    }
    out
}

/// A private range that allowlisted names may resolve to (`SAFE_AI_PRIVATE_EXCEPTIONS`):
/// overlapping some blocked range (else it excepts nothing), at most a /8 (IPv4) or a /16
/// (IPv6), and never around a cloud metadata address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PrivateException(Cidr);

impl PrivateException {
    /// The network.
    pub fn cidr(&self) -> Cidr {
        self.0
    }
}

impl TryFrom<Cidr> for PrivateException {
    type Error = Error;

    fn try_from(cidr: Cidr) -> Result<PrivateException, Error> {
        let bad =
            |reason: &'static str, fix: &'static str| Error::InvalidException { cidr, reason, fix };
        let widest = if cidr.addr.is_ipv4() { 8 } else { 16 };
        if cidr.prefix < widest {
            return Err(if widest == 8 {
                bad(
                    "it is broader than a /8",
                    "name the narrowest range the service uses, such as 10.20.30.0/24",
                )
            } else {
                bad(
                    "it is broader than a /16",
                    "name the narrowest range the service uses, such as fd42:1::/64",
                )
            });
        }
        if METADATA_ADDRESSES.iter().any(|m| cidr.contains(*m)) {
            return Err(bad(
                "it contains a cloud metadata address (169.254.169.254 or fd00:ec2::254), which stays blocked",
                "name a narrower range beside it, such as 169.254.1.0/24",
            ));
        }
        if !blocked_ranges().iter().any(|b| b.overlaps(&cidr)) {
            return Err(bad(
                "it overlaps no blocked range, so it excepts nothing",
                "public addresses need no exception: remove it, or name the private range the service uses",
            ));
        }
        Ok(PrivateException(cidr))
    }
}

impl FromStr for PrivateException {
    type Err = Error;

    fn from_str(s: &str) -> Result<PrivateException, Error> {
        s.parse::<Cidr>()?.try_into()
    }
}

impl fmt::Display for PrivateException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

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
    /// The proxy's address on the internal network ([`ProxySettings::PROXY_IP`]): Squid
    /// listens and dnsmasq answers there. IPv4 only: Squid's `http_port` cannot take a
    /// bare IPv6 address.
    pub internal_address: Ipv4Addr,
    /// Where dnsmasq forwards allowlisted names and where Squid resolves them
    /// ([`ProxySettings::DNS_UPSTREAM`]): Docker's embedded resolver by default, never a
    /// hard-coded public one.
    pub dns_upstream: IpAddr,
    /// Private ranges that allowlisted names may resolve to (for example a test
    /// network or an internal registry), in order, without duplicates.
    pub private_exceptions: Vec<PrivateException>,
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
            internal_address: ProxySettings::PROXY_IP.default,
            dns_upstream: ProxySettings::DNS_UPSTREAM.default,
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

/// Every environment variable of the stack, by name: the ones the proxy reads at start and
/// on reload, and the ones the compose file interpolates.
pub mod env {
    /// The allowlist file.
    pub const ALLOWLIST: &str = safeai_policy::ALLOWLIST_VAR;
    /// Extra domains, comma-separated.
    pub const DEFAULT_DOMAINS: &str = safeai_policy::DEFAULT_DOMAINS_VAR;
    /// The DNS upstream for allowlisted names.
    pub const DNS_UPSTREAM: &str = "SAFE_AI_DNS_UPSTREAM";
    /// The proxy's internal address.
    pub const PROXY_IP: &str = "SAFE_AI_PROXY_IP";
    /// Comma-separated CIDRs that allowlisted names may resolve to.
    pub const PRIVATE_EXCEPTIONS: &str = "SAFE_AI_PRIVATE_EXCEPTIONS";
    /// A PEM file of extra CAs for upstream certificates (on the host for the compose
    /// file, as mounted in the proxy for the proxy).
    pub const UPSTREAM_CA: &str = "SAFE_AI_UPSTREAM_CA";
    /// The internal network's subnet.
    pub const SUBNET: &str = "SAFE_AI_SUBNET";
    /// The host port of the SSH forward.
    pub const SSH_PORT: &str = "SAFE_AI_SSH_PORT";
    /// The host address of the SSH forward.
    pub const SSH_BIND: &str = "SAFE_AI_SSH_BIND";
    /// The public key allowed to log in.
    pub const SSH_KEY: &str = "SAFE_AI_SSH_KEY";
    /// The sandbox's memory limit.
    pub const SANDBOX_MEMORY: &str = "SAFE_AI_SANDBOX_MEMORY";
    /// The sandbox's CPU limit.
    pub const SANDBOX_CPUS: &str = "SAFE_AI_SANDBOX_CPUS";
    /// The proxy's memory limit.
    pub const PROXY_MEMORY: &str = "SAFE_AI_PROXY_MEMORY";
    /// The proxy's CPU limit.
    pub const PROXY_CPUS: &str = "SAFE_AI_PROXY_CPUS";
    /// The sandbox's OCI runtime.
    pub const RUNTIME: &str = "SAFE_AI_RUNTIME";
    /// The directory of the brokered credentials' secrets, on the host.
    pub const SECRETS_DIR: &str = "SAFE_AI_SECRETS_DIR";
    /// The cap, in bytes, of the proxy's decision log (its file and the previous one).
    pub const EVENTS_MAX_BYTES: &str = "SAFE_AI_EVENTS_MAX_BYTES";
}

impl ProxySettings {
    /// The proxy's address: the one place its variable and default live. The compose file
    /// renders this knob (the proxy's fixed address, the sandbox's DNS server and proxy,
    /// the proxy's environment); [`ProxySettings::with_env`] reads the variable.
    pub const PROXY_IP: Knob<Ipv4Addr> = knob(env::PROXY_IP, DEFAULT_PROXY_IP);
    /// The DNS upstream, likewise: rendered into the proxy's environment, read by
    /// [`ProxySettings::with_env`].
    pub const DNS_UPSTREAM: Knob<IpAddr> =
        knob(env::DNS_UPSTREAM, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11)));
    /// The private exceptions, likewise (none by default).
    pub const PRIVATE_EXCEPTIONS: Knob<&'static str> = knob(env::PRIVATE_EXCEPTIONS, "");

    /// What Squid refuses to connect to: the blocked ranges minus the private exceptions,
    /// per address (a name with one excepted and one blocked address is refused).
    pub fn blocked_destinations(&self) -> Vec<Cidr> {
        let exceptions: Vec<Cidr> = self.private_exceptions.iter().map(|e| e.cidr()).collect();
        cidr_difference(&blocked_ranges(), &exceptions)
    }

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
        if let Some(v) = get(env::DNS_UPSTREAM) {
            match v.parse() {
                Ok(ip) => self.dns_upstream = ip,
                Err(_) => errors.push(Error::InvalidEnv {
                    var: env::DNS_UPSTREAM,
                    value: v,
                    expected: "an IP address, such as 127.0.0.11",
                }),
            }
        }
        if let Some(v) = get(env::PROXY_IP) {
            match v.parse::<IpAddr>() {
                Ok(IpAddr::V4(ip)) => self.internal_address = ip,
                Ok(IpAddr::V6(_)) => errors.push(Error::InvalidEnv {
                    var: env::PROXY_IP,
                    value: v,
                    expected: "an IPv4 address inside SAFE_AI_SUBNET, such as 172.30.42.2 \
                               (the internal network is IPv4 only)",
                }),
                Err(_) => errors.push(Error::InvalidEnv {
                    var: env::PROXY_IP,
                    value: v,
                    expected: "an IPv4 address inside SAFE_AI_SUBNET, such as 172.30.42.2",
                }),
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
                    Ok(e) => self.private_exceptions.push(e),
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
    DacReadSearch,
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
            Capability::DacReadSearch => 2,
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
            Capability::DacReadSearch => "DAC_READ_SEARCH",
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

/// Where the policy file for the sandbox lives ([`crate::sandbox_policy`]): a volume the
/// proxy writes at every start and reload, which the sandbox mounts read-only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyVolume {
    /// The volume's name (`policy`).
    pub name: &'static str,
    /// Where the proxy mounts it, read-write.
    pub in_proxy: &'static str,
    /// Where the sandbox mounts it, read-only.
    pub in_sandbox: &'static str,
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
    /// The internal subnet (`SAFE_AI_SUBNET`). The proxy's fixed address on it is
    /// [`ProxySettings::PROXY_IP`].
    pub subnet: Knob<&'static str>,
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
    /// The stack CA's volumes.
    pub ca: CaVolumes,
    /// The volume of the policy file the sandbox reads.
    pub policy: PolicyVolume,
    /// A PEM file on the host with extra CAs the proxy trusts for upstream certificates
    /// (`SAFE_AI_UPSTREAM_CA`; `/dev/null`, an empty file, means none).
    pub upstream_ca: Knob<&'static str>,
    /// Where the proxy sees that file.
    pub upstream_ca_target: &'static str,
    /// The directory on the host with one file per credential secret
    /// (`SAFE_AI_SECRETS_DIR`), mounted read-only into the proxy only.
    pub secrets_dir: Knob<&'static str>,
    /// Where the proxy sees it.
    pub secrets_target: &'static str,
    /// What Docker keeps of each service's stdout and stderr.
    pub docker_logs: DockerLogs,
    /// The cap of the proxy's decision log file (`safeai logs`), in bytes: the file and
    /// its previous part together (`SAFE_AI_EVENTS_MAX_BYTES`).
    pub events_max_bytes: Knob<u64>,
}

/// Docker's log of a service, bounded: `json-file` (what `docker compose logs` reads
/// everywhere), rotated at `max_size`, `max_files` files kept. Without it, a flood of
/// denied requests would fill the host's disk with the proxy's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerLogs {
    /// One file's size.
    pub max_size: Mebibytes,
    /// How many files are kept.
    pub max_files: u32,
}

impl Default for Stack {
    fn default() -> Self {
        Stack {
            network: NetworkPlan {
                subnet: knob(env::SUBNET, DEFAULT_SUBNET),
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
                memory: knob(env::SANDBOX_MEMORY, "8g".into()),
                // No CPU cap unless configured (a fixed cap such as 4 fails on a 2-core host).
                cpus: knob(env::SANDBOX_CPUS, "0".into()),
                pids: 1024,
                runtime: Some(knob(env::RUNTIME, "runc".into())),
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
                // DAC_READ_SEARCH: the supervisor (root) reads the secrets directory
                // whatever its owner and mode on the host (`chmod 600` is fine); the
                // processes that drop to their users lose it.
                cap_add: vec![
                    Capability::Chown,
                    Capability::DacReadSearch,
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
                    // The decision log: its cap (SAFE_AI_EVENTS_MAX_BYTES) is the tap's; a
                    // tmpfs of its own keeps a larger cap from crowding the others.
                    Tmpfs {
                        path: "/var/log/safe-ai",
                        size: Mebibytes(64),
                        mode: "755",
                    },
                ],
                memory: knob(env::PROXY_MEMORY, "512m".into()),
                cpus: knob(env::PROXY_CPUS, "1".into()),
                pids: 256,
                runtime: None,
                sysctls: BTreeMap::from([
                    // Answer ARP only for an address of the interface asked on: the
                    // sandbox, on the internal network, cannot reach the proxy's external
                    // address (where the SSH forwarder listens) by taking it as on-link.
                    ("net.ipv4.conf.all.arp_ignore", "1"),
                    // No echo replies: under gVisor the sandbox can open a ping socket
                    // (its kernel ignores ping_group_range), and the proxy is the one
                    // host it can reach; nothing here needs to answer a ping.
                    ("net.ipv4.icmp_echo_ignore_all", "1"),
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
                host_port: knob(env::SSH_PORT, 2222),
                host_bind: knob(env::SSH_BIND, IpAddr::V4(Ipv4Addr::LOCALHOST)),
                public_key: knob(env::SSH_KEY, "~/.ssh/id_ed25519.pub"),
            },
            proxy_settings: ProxySettings::default(),
            allowlist_file: knob(env::ALLOWLIST, "./allowlist.yaml"),
            default_domains: knob(env::DEFAULT_DOMAINS, ""),
            ca: CaVolumes {
                private: "proxy-ca",
                private_target: "/var/lib/safe-ai/ca",
                public: "ca-public",
                public_in_proxy: "/var/lib/safe-ai/ca-public",
                public_in_sandbox: "/etc/safe-ai/ca",
            },
            policy: PolicyVolume {
                name: "policy",
                in_proxy: "/var/lib/safe-ai/policy",
                in_sandbox: "/etc/safe-ai/policy",
            },
            upstream_ca: knob(env::UPSTREAM_CA, "/dev/null"),
            upstream_ca_target: "/etc/safe-ai/upstream-ca.pem",
            secrets_dir: knob(env::SECRETS_DIR, "./secrets"),
            secrets_target: "/etc/safe-ai/secrets",
            docker_logs: DockerLogs {
                max_size: Mebibytes(10),
                max_files: 3,
            },
            events_max_bytes: knob(env::EVENTS_MAX_BYTES, 8 << 20),
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

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    fn strings(list: &[Cidr]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_difference_cuts_the_exception_out_of_its_range_and_keeps_the_rest() {
        let got = cidr_difference(&cidrs(&["172.16.0.0/12"]), &cidrs(&["172.30.100.0/24"]));
        assert_eq!(
            strings(&got),
            [
                "172.16.0.0/13",
                "172.24.0.0/14",
                "172.28.0.0/15",
                "172.30.0.0/18",
                "172.30.64.0/19",
                "172.30.96.0/22",
                "172.30.101.0/24",
                "172.30.102.0/23",
                "172.30.104.0/21",
                "172.30.112.0/20",
                "172.30.128.0/17",
                "172.31.0.0/16",
            ]
        );
        // An exception as wide as its range removes it; one beside every range changes nothing.
        assert!(cidr_difference(&cidrs(&["10.0.0.0/8"]), &cidrs(&["10.0.0.0/8"])).is_empty());
        assert_eq!(
            strings(&cidr_difference(
                &cidrs(&["10.0.0.0/8", "fc00::/7"]),
                &cidrs(&["11.0.0.0/8", "fd00::/8"])
            )),
            ["10.0.0.0/8", "fc00::/8"]
        );
        // Whole families, at the edges of the address space.
        assert_eq!(
            strings(&cidr_difference(
                &cidrs(&["0.0.0.0/0", "::/0"]),
                &cidrs(&["0.0.0.0/1", "8000::/1"])
            )),
            ["128.0.0.0/1", "::/1"]
        );
        assert_eq!(
            strings(&cidr_difference(&cidrs(&["255.255.255.255/32"]), &[])),
            ["255.255.255.255/32"]
        );
    }

    #[test]
    fn blocked_destinations_without_exceptions_are_the_blocked_ranges_merged() {
        let got = ProxySettings::default().blocked_destinations();
        // Merged (224/4 and 240/4 are 224/3, :: and ::1 are ::/127) and without
        // 255.255.255.255/32 inside 240/4: Squid warns on overlap and drops the entry.
        assert_eq!(
            strings(&got),
            [
                "0.0.0.0/8",
                "10.0.0.0/8",
                "100.64.0.0/10",
                "127.0.0.0/8",
                "169.254.0.0/16",
                "172.16.0.0/12",
                "192.0.0.0/24",
                "192.168.0.0/16",
                "198.18.0.0/15",
                "224.0.0.0/3",
                "::/127",
                "64:ff9b::/96",
                "64:ff9b:1::/48",
                "100::/64",
                "2001::/32",
                "2002::/16",
                "fc00::/7",
                "fe80::/10",
                "ff00::/8",
            ]
        );
        for r in blocked_ranges() {
            let (first, last, w) = r.range();
            for ip in [from_bits(first, w), from_bits(last, w)] {
                assert!(got.iter().any(|c| c.contains(ip)), "{ip} of {r}");
            }
        }
    }

    #[test]
    fn a_name_with_one_excepted_and_one_blocked_address_stays_blocked_per_address() {
        let settings = ProxySettings::default()
            .with_env(|k| (k == env::PRIVATE_EXCEPTIONS).then(|| "172.30.100.0/24".to_owned()))
            .unwrap();
        let blocked = settings.blocked_destinations();
        let hit = |ip: &str| blocked.iter().any(|c| c.contains(ip.parse().unwrap()));
        assert!(!hit("172.30.100.10"));
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.30.99.255",
            "172.30.101.0",
            "169.254.169.254",
        ] {
            assert!(hit(ip), "{ip}");
        }
    }

    #[test]
    fn private_exceptions_that_unlock_too_much_or_nothing_are_refused_with_a_fix() {
        for (value, says) in [
            ("10.0.0.0/7", "broader than a /8"),
            ("fc00::/15", "broader than a /16"),
            ("169.254.0.0/16", "cloud metadata address"),
            ("169.254.169.254/32", "cloud metadata address"),
            ("fd00:ec2::/32", "cloud metadata address"),
            ("8.8.8.0/24", "overlaps no blocked range"),
            ("2a00::/16", "overlaps no blocked range"),
            ("::ffff:0.0.0.0/96", "overlaps no blocked range"),
            ("::ffff:10.0.0.0/104", "overlaps no blocked range"),
        ] {
            let errors = ProxySettings::default()
                .with_env(|k| {
                    (k == env::PRIVATE_EXCEPTIONS).then(|| format!("10.9.0.0/16,{value}"))
                })
                .unwrap_err();
            let [e] = &errors[..] else {
                panic!("{value}: {errors:?}")
            };
            let msg = e.to_string();
            assert!(
                msg.starts_with("SAFE_AI_PRIVATE_EXCEPTIONS[1]: ")
                    && msg.contains(value)
                    && msg.contains(says)
                    && msg.contains("; "),
                "{value}: {msg}"
            );
        }
        // Narrow ones beside the metadata address, and ones that reach partly into a
        // blocked range, are fine.
        for ok in ["169.254.1.0/24", "172.0.0.0/8", "fd42::/64", "fd42::/16"] {
            assert!(ok.parse::<PrivateException>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn the_proxy_address_is_ipv4_only() {
        let errors = ProxySettings::default()
            .with_env(|k| (k == env::PROXY_IP).then(|| "fd00::2".to_owned()))
            .unwrap_err();
        let msg = errors[0].to_string();
        assert!(
            msg.starts_with("SAFE_AI_PROXY_IP=\"fd00::2\" is not valid")
                && msg.contains("IPv4")
                && msg.contains("172.30.42.2"),
            "{msg}"
        );
        let ok = ProxySettings::default()
            .with_env(|k| (k == env::PROXY_IP).then(|| "172.30.50.2".to_owned()))
            .unwrap();
        assert_eq!(ok.internal_address, Ipv4Addr::new(172, 30, 50, 2));
    }

    #[test]
    fn the_knobs_defaults_are_the_proxys_defaults() {
        let d = ProxySettings::default();
        assert_eq!(ProxySettings::PROXY_IP.default, d.internal_address);
        assert_eq!(ProxySettings::DNS_UPSTREAM.default, d.dns_upstream);
        assert_eq!(
            ProxySettings::PROXY_IP.to_string(),
            "${SAFE_AI_PROXY_IP:-172.30.42.2}"
        );
    }

    mod difference_laws {
        use super::super::*;
        use proptest::prelude::*;

        fn v4() -> impl Strategy<Value = Cidr> {
            let addr = prop_oneof![
                any::<u32>(),
                (0u32..256).prop_map(|x| x << 24),
                (0u32..65536).prop_map(|x| 0x0a00_0000 | (x << 8)),
                (0u32..4096).prop_map(|x| 0x0a00_0000 | x),
            ];
            (addr, 0u8..=32).prop_map(|(a, p)| Cidr {
                addr: network_of(IpAddr::V4(a.into()), p),
                prefix: p,
            })
        }

        fn v6() -> impl Strategy<Value = Cidr> {
            let addr = prop_oneof![
                any::<u128>(),
                (0u128..256).prop_map(|x| x << 120),
                (0u128..65536).prop_map(|x| (0xfd00u128 << 112) | x),
                Just(u128::MAX),
            ];
            (addr, 0u8..=128).prop_map(|(a, p)| Cidr {
                addr: network_of(IpAddr::V6(a.into()), p),
                prefix: p,
            })
        }

        fn set() -> impl Strategy<Value = Vec<Cidr>> {
            prop::collection::vec(prop_oneof![v4(), v6()], 0..8)
        }

        fn covered(set: &[Cidr], ip: IpAddr) -> bool {
            set.iter().any(|c| c.contains(ip))
        }

        /// Addresses where the answer may change: each network's edges and their
        /// neighbours.
        fn probes(sets: &[&[Cidr]], extra: &[IpAddr]) -> Vec<IpAddr> {
            let mut out = extra.to_vec();
            for c in sets.iter().flat_map(|s| s.iter()) {
                let (a, b, w) = c.range();
                let max = if w == 32 {
                    u128::from(u32::MAX)
                } else {
                    u128::MAX
                };
                for n in [Some(a), Some(b), a.checked_sub(1), (b < max).then(|| b + 1)]
                    .into_iter()
                    .flatten()
                {
                    out.push(from_bits(n, w));
                }
            }
            out
        }

        fn check(from: &[Cidr], minus: &[Cidr], extra: &[IpAddr]) -> Result<(), TestCaseError> {
            let got = cidr_difference(from, minus);
            for ip in probes(&[from, minus, &got], extra) {
                prop_assert_eq!(
                    covered(&got, ip),
                    covered(from, ip) && !covered(minus, ip),
                    "{} in {:?} - {:?} = {:?}",
                    ip,
                    from,
                    minus,
                    got
                );
            }
            // In order, disjoint, and no two networks that one could replace (Squid warns
            // on overlap, and the fewest lines are the ones a reader can check).
            for pair in got.windows(2) {
                prop_assert!(pair[0] < pair[1]);
                prop_assert!(!pair[0].overlaps(&pair[1]), "{:?}", pair);
                let (a, b) = (pair[0], pair[1]);
                if a.prefix == b.prefix && a.prefix > 0 && a.addr.is_ipv4() == b.addr.is_ipv4() {
                    let parent = network_of(a.addr, a.prefix - 1);
                    prop_assert!(
                        parent != network_of(b.addr, b.prefix - 1),
                        "{} and {} make one network",
                        a,
                        b
                    );
                }
            }
            Ok(())
        }

        proptest! {
            #[test]
            fn covers_exactly_from_minus_the_cut(
                from in set(),
                minus in set(),
                a in any::<u32>(),
                b in any::<u128>(),
            ) {
                check(&from, &minus, &[IpAddr::V4(a.into()), IpAddr::V6(b.into())])?;
            }

            #[test]
            fn the_blocked_ranges_minus_any_exceptions(
                minus in set(),
                a in any::<u32>(),
                b in any::<u128>(),
            ) {
                check(&blocked_ranges(), &minus, &[IpAddr::V4(a.into()), IpAddr::V6(b.into())])?;
            }

            #[test]
            fn the_difference_of_a_difference_changes_nothing(from in set(), minus in set()) {
                let once = cidr_difference(&from, &minus);
                prop_assert_eq!(cidr_difference(&once, &minus), once.clone());
                prop_assert_eq!(cidr_difference(&once, &[]), once);
            }
        }
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
