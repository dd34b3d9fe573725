#!/usr/bin/env bash
# Provision a clean Debian bookworm machine (root, no Docker engine, no image
# registry; only Debian's mirror, crates.io, PyPI and npm reachable) for the
# safe-ai test suite.  See .ci/README.md and the section "Running Docker here"
# of the design document.
#
#   1. squid-openssl (SslBump: the TLS layer), openssl, dnsmasq, dnsutils, openssh-client, debootstrap from bookworm
#      (no service is started: a policy-rc.d answers 101 during the install)
#   2. Docker engine 26 + Compose v2: bookworm's docker.io for the dependencies,
#      then trixie's containerd/docker.io/docker-cli/docker-buildx/docker-compose
#      installed over it with dpkg -i (bookworm's runc is kept)
#   3. dockerd started in the background (log: /var/log/dockerd.log), storage
#      driver and iptables backend chosen by probing, networks checked
#   4. stand-in base images built from debootstrap: debian:bookworm-slim and
#      rust:1-slim-bookworm (the machine's own stable toolchain)
#   5. gVisor: bookworm-backports' runsc (0.0~20240729, built with Go 1.22: trixie's
#      and sid's builds, with Go 1.24+, panic in the sentry; bookworm's 2022 release
#      fails coreutils' statx), the repository's scripts/runsc-netns-shim in front of it
#      (that release mistakes a container's network namespace for the host's on this
#      kernel), registered with dockerd as runtime `runsc` (without --oci-seccomp: that
#      release ignores a rule's errno, so clone3's ENOSYS becomes EPERM and threads fail)
#   6. verification and one summary line per component
#
# Idempotent: every step checks whether it is already done and skips itself.
# Environment:
#   SAFEAI_PROVISION_CACHE          cache dir (default /var/cache/safeai-provision)
#   SAFEAI_DOCKER_STORAGE_DRIVER    force a storage driver (default: probed)
#   SAFEAI_RUST_SYSROOT             toolchain to put in the rust image
#                                   (default: `rustup run stable rustc --print sysroot`)
#   SAFEAI_PROVISION_CHECK_CRATES_IO=0  skip the (non-fatal) crates.io check
set -euo pipefail

CACHE=${SAFEAI_PROVISION_CACHE:-/var/cache/safeai-provision}
DEBIAN_MIRROR=http://deb.debian.org/debian
DOCKERD_LOG=/var/log/dockerd.log
DOCKERD_PIDFILE=/var/run/docker.pid
DATA_ROOT=/var/lib/docker
DOCKER_WAIT_SECONDS=60
MIN_ENGINE=26.0.0   # CVE-2024-29018: embedded DNS must not forward from internal networks
MIN_COMPOSE=2.20.3   # healthcheck start_interval
RUNSC_VERSION=0.0~20240729.0-4~bpo12+2
RUNSC_SHIM=/usr/local/bin/runsc-netns-shim
DAEMON_JSON=/etc/docker/daemon.json
DEBIAN_IMAGE=debian:bookworm-slim
RUST_IMAGE=rust:1-slim-bookworm
TRIXIE_PKGS=(containerd docker.io docker-cli docker-buildx docker-compose)
BOOKWORM_PKGS=(squid-openssl openssl dnsmasq dnsutils openssh-client debootstrap ca-certificates iproute2)

export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C

say()  { printf '==> %s\n' "$*"; }
skip() { printf '==> [skip] %s\n' "$*"; }
warn() { printf '==> WARNING: %s\n' "$*" >&2; }
die()  { printf '==> ERROR: %s\n' "$*" >&2; exit 1; }

TIMINGS=()
SCRIPT_START=$(date +%s)
step() { # step NAME FUNCTION: run FUNCTION and record its duration
    local name=$1 fn=$2 t0
    t0=$(date +%s)
    say "---- step: $name"
    "$fn"
    TIMINGS+=("$(printf '%-28s %4ss' "$name" "$(( $(date +%s) - t0 ))")")
}

[ "$(id -u)" -eq 0 ] || die "run as root"
mkdir -p "$CACHE"

# ---------------------------------------------------------------- helpers --

pkg_installed() { # all given packages installed?
    local p s
    for p in "$@"; do
        s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [ "$s" = "install ok installed" ] || return 1
    done
}
pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }
pkgs_missing() { local p; for p in "$@"; do pkg_installed "$p" || echo "$p"; done; }
since() { echo "$(( $(date +%s) - $1 ))s"; }

# policy-rc.d: forbid every service start while packages are installed (squid,
# dnsmasq and docker.io would otherwise try to start; without an init system
# that fails the install, with one it leaves daemons running).  An existing
# policy-rc.d is put aside and restored on exit.
POLICY=/usr/sbin/policy-rc.d
POLICY_BACKUP=/usr/sbin/policy-rc.d.safeai-provision-backup
policy_block() {
    [ -e "$POLICY_BACKUP" ] || { [ -e "$POLICY" ] && mv "$POLICY" "$POLICY_BACKUP"; } || true
    printf '#!/bin/sh\n# safe-ai provision: no service starts during package installs\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
}
policy_restore() {
    if [ -e "$POLICY_BACKUP" ]; then mv -f "$POLICY_BACKUP" "$POLICY"
    elif grep -qs 'safe-ai provision' "$POLICY"; then rm -f "$POLICY"; fi
}
WORK_TO_CLEAN=()
cleanup() {
    policy_restore
    local d
    for d in "${WORK_TO_CLEAN[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT
policy_restore   # a previous run killed mid-install may have left ours behind

APT_UPDATED=0
apt_update_once() {
    [ "$APT_UPDATED" = 1 ] && return
    say "apt-get update (machine sources)"
    apt-get update -qq
    APT_UPDATED=1
}

docker_ready() { timeout 15 docker info >/dev/null 2>&1; }

proc_running() { # is a process with this exact comm running?
    local f
    for f in /proc/[0-9]*/comm; do
        [ "$(cat "$f" 2>/dev/null)" = "$1" ] && return 0
    done
    return 1
}

# ------------------------------------------------- 1. squid, dnsmasq, tools --

step_tools() {
    if pkg_installed "${BOOKWORM_PKGS[@]}"; then
        skip "bookworm tools already installed (${BOOKWORM_PKGS[*]})"
    else
        apt_update_once
        # only the missing ones: already installed packages are left as they are
        local missing; mapfile -t missing < <(pkgs_missing "${BOOKWORM_PKGS[@]}")
        say "installing from bookworm: ${missing[*]}"
        policy_block
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        policy_restore
    fi
    local d
    for d in squid dnsmasq; do
        if proc_running "$d"; then
            warn "a $d process is running on this machine (not started by this script); tests only use '$d' to parse configs"
        fi
    done
    command -v squid >/dev/null && command -v dnsmasq >/dev/null && command -v dig >/dev/null \
        && command -v ssh >/dev/null || die "squid/dnsmasq/dig/ssh missing after install"
}

# ------------------------------------------------- 2. Docker engine + compose --

TRIXIE_DIR=$CACHE/trixie
TRIXIE_APT=(-o "Dir::Etc::sourcelist=$TRIXIE_DIR/sources.list" -o "Dir::Etc::sourceparts=-"
            -o "Dir::State::Lists=$TRIXIE_DIR/lists" -o "Dir::Cache=$TRIXIE_DIR/cache"
            -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
            -o "Acquire::Languages=none" -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false")

engine_ok() {
    pkg_installed "${TRIXIE_PKGS[@]}" || return 1
    dpkg --compare-versions "$(pkg_version docker.io)" ge "$MIN_ENGINE" || return 1
    local c; c=$(pkg_version docker-compose)
    dpkg --compare-versions "${c%%-*}" ge "$MIN_COMPOSE"
}

step_engine() {
    if engine_ok; then
        skip "docker.io $(pkg_version docker.io), docker-compose $(pkg_version docker-compose) already installed"
    else
        if ! pkg_installed docker.io; then
            apt_update_once
            # bookworm's docker.io (20.10) first: apt resolves and installs the
            # dependencies the trixie packages need (iptables, tini, runc, ...).
            say "installing bookworm's docker.io for its dependencies (iptables, tini, runc, containerd)"
            policy_block
            apt-get install -y -qq --no-install-recommends docker.io >/dev/null
            policy_restore
        fi
        say "fetching trixie's ${TRIXIE_PKGS[*]} (separate sources list + state dir; machine sources stay bookworm)"
        mkdir -p "$TRIXIE_DIR/lists/partial" "$TRIXIE_DIR/cache/archives/partial" "$TRIXIE_DIR/debs"
        # apt downloads as the unprivileged _apt user where it can
        if id _apt >/dev/null 2>&1; then chown _apt "$TRIXIE_DIR/debs"; fi
        printf 'deb %s trixie main\n' "$DEBIAN_MIRROR" >"$TRIXIE_DIR/sources.list"
        apt-get "${TRIXIE_APT[@]}" update -qq
        local p cand
        for p in "${TRIXIE_PKGS[@]}"; do
            cand=$(apt-cache "${TRIXIE_APT[@]}" policy "$p" | awk '/Candidate:/ {print $2}')
            [ -n "$cand" ] && [ "$cand" != "(none)" ] || die "no trixie candidate for $p"
            # .deb file names carry the version without its epoch
            if compgen -G "$TRIXIE_DIR/debs/${p}_${cand#*:}_*.deb" >/dev/null; then
                skip "$p $cand already downloaded"
            else
                rm -f "$TRIXIE_DIR/debs/${p}_"*.deb
                (cd "$TRIXIE_DIR/debs" && apt-get "${TRIXIE_APT[@]}" download -qq "$p")
            fi
        done
        say "dpkg -i trixie packages over bookworm (bookworm's runc kept)"
        # All Depends of these trixie debs are satisfiable on bookworm (libc6 >= 2.34,
        # init-system-helpers >= 1.54, sysvinit-utils >= 3.05-4, runc >= 1.0.0~rc8,
        # iptables, tini); trixie's runc is NOT taken because it needs libc6 >= 2.38.
        # So no --force-depends is needed; dpkg fails loudly if that ever changes.
        # Order matters: dpkg unpacks in argument order, and docker-cli (which now
        # ships /usr/bin/docker) Breaks docker.io << 26.1.4, so the new docker.io
        # must be unpacked before docker-cli (TRIXIE_PKGS is in that order).
        local debs=()
        for p in "${TRIXIE_PKGS[@]}"; do
            debs+=("$(compgen -G "$TRIXIE_DIR/debs/${p}_*.deb" | head -n 1)")
        done
        policy_block
        dpkg -i "${debs[@]}" >/dev/null
        policy_restore
        engine_ok || die "trixie engine packages not installed correctly"
        apt-get check -qq || die "apt reports broken dependencies after the trixie install"
    fi
    local v; v=$(dockerd --version | sed -n 's/^Docker version \([0-9.]*\).*/\1/p')
    dpkg --compare-versions "$v" ge "$MIN_ENGINE" || die "dockerd $v < $MIN_ENGINE"

    # Compose: trixie's docker-compose installs /usr/libexec/docker/cli-plugins/docker-compose.
    # Every docker CLI >= 19.03 searches ~/.docker/cli-plugins, /usr/local/lib/docker/cli-plugins,
    # /usr/local/libexec/docker/cli-plugins, /usr/lib/docker/cli-plugins and
    # /usr/libexec/docker/cli-plugins, so whichever `docker` is first on PATH
    # (the package's /usr/bin/docker, or a pre-installed /usr/local/bin/docker)
    # finds it.  Only if that CLI does not, link the plugins into
    # /usr/local/lib/docker/cli-plugins.
    if ! docker compose version >/dev/null 2>&1; then
        say "$(command -v docker) does not find the compose plugin; linking plugins into /usr/local/lib/docker/cli-plugins"
        mkdir -p /usr/local/lib/docker/cli-plugins
        local plug
        for plug in /usr/libexec/docker/cli-plugins/docker-*; do
            ln -sfn "$plug" /usr/local/lib/docker/cli-plugins/
        done
    fi
    v=$(docker compose version --short 2>/dev/null | sed 's/^v//') || die "docker compose does not work"
    dpkg --compare-versions "$v" ge "$MIN_COMPOSE" || die "compose $v < $MIN_COMPOSE"
}

# --------------------------------------------------------- 3. dockerd --

STORAGE_DRIVER=
probe_overlay() { # can the kernel mount overlayfs on the filesystem of the data root?
    local d rc=1
    mkdir -p "$(dirname "$DATA_ROOT")"
    d=$(mktemp -d "$(dirname "$DATA_ROOT")/.safeai-overlay-probe.XXXXXX")
    mkdir "$d/l" "$d/u" "$d/w" "$d/m"
    echo x >"$d/l/f"
    if mount -t overlay overlay -o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w" "$d/m" 2>/dev/null; then
        [ "$(cat "$d/m/f" 2>/dev/null)" = x ] && echo y >"$d/m/g" 2>/dev/null && rc=0
        umount "$d/m"
    fi
    rm -rf "$d"
    return $rc
}
choose_storage_driver() {
    if [ -n "${SAFEAI_DOCKER_STORAGE_DRIVER:-}" ]; then
        STORAGE_DRIVER=$SAFEAI_DOCKER_STORAGE_DRIVER
        say "storage driver: $STORAGE_DRIVER (forced by SAFEAI_DOCKER_STORAGE_DRIVER)"
        return
    fi
    local fs; fs=$(stat -f -c %T "$(dirname "$DATA_ROOT")")
    # overlay2 needs kernel overlayfs and a backing fs that is not itself overlayfs
    if [ "$fs" != overlayfs ] && probe_overlay; then
        STORAGE_DRIVER=overlay2
    elif [ -c /dev/fuse ]; then
        pkg_installed fuse-overlayfs || { apt_update_once; apt-get install -y -qq --no-install-recommends fuse-overlayfs >/dev/null; }
        STORAGE_DRIVER=fuse-overlayfs
    else
        STORAGE_DRIVER=vfs   # always works, but copies every layer in full
    fi
    say "storage driver: $STORAGE_DRIVER (backing fs of $(dirname "$DATA_ROOT"): $fs)"
}

choose_iptables() {
    # Debian's default is iptables-nft; take it when the kernel's nf_tables
    # accepts docker's kind of rules, else iptables-legacy.  Set explicitly so
    # the choice never depends on an earlier alternatives state.
    local b
    for b in nft legacy; do
        if "iptables-$b" -t nat -S >/dev/null 2>&1 && "iptables-$b" -t filter -S >/dev/null 2>&1 \
           && "iptables-$b" -t filter -N SAFEAI-PROBE 2>/dev/null \
           && "iptables-$b" -t filter -A SAFEAI-PROBE -m addrtype --dst-type LOCAL -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN 2>/dev/null; then
            "iptables-$b" -t filter -F SAFEAI-PROBE; "iptables-$b" -t filter -X SAFEAI-PROBE
            update-alternatives --quiet --set iptables "/usr/sbin/iptables-$b"
            update-alternatives --quiet --set ip6tables "/usr/sbin/ip6tables-$b"
            say "iptables backend: $b"
            return
        fi
        "iptables-$b" -t filter -F SAFEAI-PROBE 2>/dev/null || true
        "iptables-$b" -t filter -X SAFEAI-PROBE 2>/dev/null || true
    done
    die "neither iptables-nft nor iptables-legacy works on this kernel"
}

step_dockerd() {
    if docker_ready; then
        skip "dockerd already answers (pid $(cat "$DOCKERD_PIDFILE" 2>/dev/null || echo '?'), storage driver $(docker info -f '{{.Driver}}'))"
        return
    fi
    if [ -s "$DOCKERD_PIDFILE" ] && kill -0 "$(cat "$DOCKERD_PIDFILE")" 2>/dev/null; then
        die "dockerd (pid $(cat "$DOCKERD_PIDFILE")) is running but 'docker info' does not answer; see $DOCKERD_LOG"
    fi
    choose_storage_driver
    choose_iptables
    # cgroupfs: no systemd on these machines (cgroup v1 hybrid here).
    # --mtu: the default bridge (used by `docker build` RUN steps) gets the
    # uplink's MTU.  On Docker 26 it does not apply to user-defined networks
    # (they stay at 1500); HTTPS downloads from those still worked here.
    local uplink mtu
    uplink=$(ip -o route show default 2>/dev/null | awk '{for (i=1;i<NF;i++) if ($i=="dev") {print $(i+1); exit}}')
    mtu=$(cat "/sys/class/net/${uplink:-none}/mtu" 2>/dev/null || echo 1500)
    [ "$mtu" -le 1500 ] || mtu=1500
    local args=(--data-root "$DATA_ROOT" --pidfile "$DOCKERD_PIDFILE" -H unix:///var/run/docker.sock
                --storage-driver "$STORAGE_DRIVER" --exec-opt native.cgroupdriver=cgroupfs
                --iptables=true --mtu "$mtu")
    say "starting: dockerd ${args[*]}  (log: $DOCKERD_LOG)"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    printf '\n===== %s safe-ai provision: dockerd %s\n' "$(date -u +%FT%TZ)" "${args[*]}" >>"$DOCKERD_LOG"
    # setsid + nohup: detached from this script's session, keeps running after it
    setsid nohup dockerd "${args[@]}" >>"$DOCKERD_LOG" 2>&1 </dev/null &
    local pid=$! i
    for ((i = 0; i < DOCKER_WAIT_SECONDS; i++)); do
        docker_ready && break
        kill -0 "$pid" 2>/dev/null || { tail -n 40 "$DOCKERD_LOG" >&2; die "dockerd exited"; }
        sleep 1
    done
    if ! docker_ready; then
        tail -n 40 "$DOCKERD_LOG" >&2
        die "docker info did not answer within ${DOCKER_WAIT_SECONDS}s"
    fi
    say "dockerd running, pid $pid (ready after ~${i}s)"
}

# ------------------------------------------------------ 4. stand-in images --

ROOTFS_DIR=$CACHE/rootfs
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

debootstrap_cached() { # debootstrap_cached NAME [--include=...]: cached minbase rootfs dir
    local name=$1; shift
    local dir=$ROOTFS_DIR/$name
    if [ -e "$dir/.safeai-complete" ]; then
        skip "debootstrap $name (cached in $dir)"
    else
        say "debootstrap --variant=minbase${*:+ $*} bookworm -> $dir"
        local t0; t0=$(date +%s)
        rm -rf "$dir" "$dir.tmp"
        mkdir -p "$ROOTFS_DIR"
        debootstrap --variant=minbase "$@" bookworm "$dir.tmp" "$DEBIAN_MIRROR" >"$ROOTFS_DIR/$name.log" 2>&1 \
            || { tail -n 30 "$ROOTFS_DIR/$name.log" >&2; die "debootstrap $name failed"; }
        mv "$dir.tmp" "$dir"
        touch "$dir/.safeai-complete"
        say "  debootstrap $name took $(since "$t0")"
    fi
}

# Certificates of the machine's bundle that Debian's ca-certificates does not
# ship (e.g. a TLS-intercepting proxy's CA), one PEM file each in $1.
extract_extra_cas() {
    local out=$1 known
    mkdir -p "$out"
    known=$(mktemp)
    find /usr/share/ca-certificates -name '*.crt' -exec cat {} + >"$known" 2>/dev/null || true
    awk -v known="$known" -v out="$out" '
        { sub(/\r$/, "") }
        /-----BEGIN CERTIFICATE-----/ { inc = 1; body = ""; pem = $0 "\n"; next }
        /-----END CERTIFICATE-----/ {
            inc = 0; pem = pem $0 "\n"
            if (FILENAME == known) seen[body] = 1
            else if (!(body in seen) && !(body in done)) {
                done[body] = 1; n++
                f = sprintf("%s/safeai-host-ca-%02d.crt", out, n); printf "%s", pem > f; close(f)
            }
            next
        }
        inc { body = body $0; pem = pem $0 "\n" }
    ' "$known" /etc/ssl/certs/ca-certificates.crt
    rm -f "$known"
}

# Make an imported rootfs look like the official slim image where it matters.
customize_rootfs() {
    local dir=$1
    # apt sources exactly like the official image (deb822, with updates + security)
    rm -f "$dir/etc/apt/sources.list"
    cat >"$dir/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # the official images' apt settings and policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"; chmod 755 "$dir/usr/sbin/policy-rc.d"
    cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::Languages "none";' >"$dir/etc/apt/apt.conf.d/docker-no-languages"
    echo 'APT::AutoRemove::SuggestsImportant "false";' >"$dir/etc/apt/apt.conf.d/docker-autoremove-suggests"
    # CA bundle: the machine's, so HTTPS through a TLS-intercepting proxy works in
    # containers.  The extra CAs also go to /usr/local/share/ca-certificates so a
    # later `apt-get install ca-certificates` / update-ca-certificates keeps them.
    mkdir -p "$dir/etc/ssl/certs" "$dir/usr/local/share/ca-certificates"
    extract_extra_cas "$dir/usr/local/share/ca-certificates"
    if [ -x "$dir/usr/sbin/update-ca-certificates" ]; then
        chroot "$dir" update-ca-certificates --fresh >/dev/null 2>&1 || true
    fi
    install -m 644 /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
    # no host state in the image; apt lists/caches dropped like the official image
    : >"$dir/etc/resolv.conf"
    echo localhost >"$dir/etc/hostname"
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
           "$dir"/var/log/bootstrap.log "$dir/.safeai-complete"
}

import_rootfs() { # import_rootfs DIR TAG [--change ...]...
    local dir=$1 tag=$2; shift 2
    say "docker import $dir -> $tag"
    local t0; t0=$(date +%s)
    tar -C "$dir" --numeric-owner -c . | docker import "$@" - "$tag" >/dev/null
    say "  import of $tag took $(since "$t0")"
}

rust_sysroot() {
    if [ -n "${SAFEAI_RUST_SYSROOT:-}" ]; then echo "$SAFEAI_RUST_SYSROOT"
    elif command -v rustup >/dev/null 2>&1; then rustup run stable rustc --print sysroot
    elif command -v rustc >/dev/null 2>&1; then rustc --print sysroot
    else die "no Rust toolchain on this machine (install rustup stable or set SAFEAI_RUST_SYSROOT)"
    fi
}

step_images() {
    local work=$CACHE/work
    if image_exists "$DEBIAN_IMAGE"; then
        skip "$DEBIAN_IMAGE exists ($(docker image inspect -f '{{.Id}}' "$DEBIAN_IMAGE" | cut -c8-19))"
    else
        debootstrap_cached bookworm-minbase
        rm -rf "$work/debian"; mkdir -p "$work"; WORK_TO_CLEAN+=("$work/debian")
        cp -a "$ROOTFS_DIR/bookworm-minbase" "$work/debian"
        customize_rootfs "$work/debian"
        import_rootfs "$work/debian" "$DEBIAN_IMAGE" --change 'CMD ["bash"]'
        rm -rf "$work/debian"
    fi

    if image_exists "$RUST_IMAGE"; then
        skip "$RUST_IMAGE exists ($(docker image inspect -f '{{.Id}}' "$RUST_IMAGE" | cut -c8-19))"
    else
        local sysroot rv tc
        sysroot=$(rust_sysroot)
        rv=$("$sysroot/bin/rustc" --version | awk '{print $2}')
        tc=$(basename "$sysroot")   # e.g. stable-x86_64-unknown-linux-gnu
        debootstrap_cached bookworm-minbase-gcc --include=gcc,libc6-dev,ca-certificates
        rm -rf "$work/rust"; mkdir -p "$work"; WORK_TO_CLEAN+=("$work/rust")
        cp -a "$ROOTFS_DIR/bookworm-minbase-gcc" "$work/rust"
        customize_rootfs "$work/rust"
        say "copying toolchain $sysroot (rustc $rv; bin, lib, libexec; not share)"
        local t0; t0=$(date +%s)
        local dst=$work/rust/usr/local/rustup/toolchains/$tc
        mkdir -p "$dst" "$work/rust/usr/local/cargo/bin"
        cp -a "$sysroot/bin" "$sysroot/lib" "$dst/"
        [ -d "$sysroot/libexec" ] && cp -a "$sysroot/libexec" "$dst/"
        # CARGO_HOME/bin holds the tools, as in the official image (there they are
        # rustup proxies; here direct links: no rustup, the toolchain is fixed)
        local b
        for b in "$dst"/bin/*; do
            ln -s "/usr/local/rustup/toolchains/$tc/bin/$(basename "$b")" "$work/rust/usr/local/cargo/bin/"
        done
        chmod -R a+rwX "$work/rust/usr/local/cargo"
        say "  toolchain copy took $(since "$t0")"
        import_rootfs "$work/rust" "$RUST_IMAGE" \
            --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
            --change 'ENV CARGO_HOME=/usr/local/cargo' \
            --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change "ENV RUST_VERSION=$rv" \
            --change 'CMD ["bash"]'
        rm -rf "$work/rust"
    fi
}

# ------------------------------------------------------------ 5. gVisor --

BPO_DIR=$CACHE/bookworm-backports
BPO_APT=(-o "Dir::Etc::sourcelist=$BPO_DIR/sources.list" -o "Dir::Etc::sourceparts=-"
         -o "Dir::State::Lists=$BPO_DIR/lists" -o "Dir::Cache=$BPO_DIR/cache"
         -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
         -o "Acquire::Languages=none" -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false")
GVISOR_VERSION_TEXT='#1 SMP Sun Jan 10 15:06:54 PST 2016'   # gVisor's /proc/version

step_gvisor() {
    if [ "$(pkg_version runsc)" = "$RUNSC_VERSION" ]; then
        skip "runsc $RUNSC_VERSION already installed"
    else
        say "fetching bookworm-backports' runsc $RUNSC_VERSION (separate sources list + state dir)"
        mkdir -p "$BPO_DIR/lists/partial" "$BPO_DIR/cache/archives/partial" "$BPO_DIR/debs"
        if id _apt >/dev/null 2>&1; then chown _apt "$BPO_DIR/debs"; fi
        printf 'deb %s bookworm-backports main\n' "$DEBIAN_MIRROR" >"$BPO_DIR/sources.list"
        apt-get "${BPO_APT[@]}" update -qq
        rm -f "$BPO_DIR/debs/"runsc_*.deb
        (cd "$BPO_DIR/debs" && apt-get "${BPO_APT[@]}" download -qq "runsc=$RUNSC_VERSION")
        dpkg -i "$BPO_DIR/debs/"runsc_*.deb >/dev/null
        [ "$(pkg_version runsc)" = "$RUNSC_VERSION" ] || die "runsc $RUNSC_VERSION not installed"
    fi
    install -m 0755 "$(dirname "$0")/../scripts/runsc-netns-shim" "$RUNSC_SHIM"

    # Register the runtime, keeping whatever else daemon.json says.
    local want
    want=$(python3 - "$DAEMON_JSON" "$RUNSC_SHIM" <<'PY'
import json, os, sys
path, shim = sys.argv[1], sys.argv[2]
conf = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
conf.setdefault("runtimes", {})["runsc"] = {"path": shim}
print(json.dumps(conf, indent=2, sort_keys=True))
PY
)
    if [ "$(cat "$DAEMON_JSON" 2>/dev/null)" != "$want" ]; then
        mkdir -p "$(dirname "$DAEMON_JSON")"
        printf '%s\n' "$want" >"$DAEMON_JSON.tmp"
        mv "$DAEMON_JSON.tmp" "$DAEMON_JSON"
        say "registered runtime runsc in $DAEMON_JSON; reloading dockerd (SIGHUP)"
        kill -HUP "$(cat "$DOCKERD_PIDFILE")"
        local i
        for ((i = 0; i < 50; i++)); do
            docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"' && break
            sleep 0.2
        done
    fi
    docker info --format '{{json .Runtimes}}' | grep -q '"runsc"' || die "dockerd does not list the runsc runtime"
    local version
    version=$(docker run --rm --runtime runsc "$DEBIAN_IMAGE" cat /proc/version) ||
        die "a container does not start under runsc"
    [[ $version == *"$GVISOR_VERSION_TEXT"* ]] || die "under runsc, /proc/version is not gVisor's: $version"
    # The shim keeps runsc's guard: a container on the host's network is refused.
    if docker run --rm --runtime runsc --network host "$DEBIAN_IMAGE" true >/dev/null 2>&1; then
        die "runsc started a container on the host's network namespace"
    fi
}

# ------------------------------------------------------------ 6. verify --

CHECK_NET=safeai-provision-check
CHECK_NET_INT=safeai-provision-check-internal
CRATES_IO_RESULT="not checked"

step_verify() {
    say "docker compose version: $(docker compose version)"
    say "docker run --rm $DEBIAN_IMAGE true"
    docker run --rm "$DEBIAN_IMAGE" true

    say "user-defined bridge network + internal network (inhibit_ipv4, as in the generated compose file)"
    docker network rm "$CHECK_NET" "$CHECK_NET_INT" >/dev/null 2>&1 || true
    docker network create "$CHECK_NET" >/dev/null
    docker network create --internal -o com.docker.network.bridge.inhibit_ipv4=true "$CHECK_NET_INT" >/dev/null
    local rc=0
    # bridge: a default route and working DNS through the embedded resolver
    docker run --rm --network "$CHECK_NET" "$DEBIAN_IMAGE" \
        sh -c 'grep -q "^[a-z0-9]*\s00000000" /proc/net/route && getent hosts deb.debian.org >/dev/null' \
        || { warn "container on a user-defined bridge: no default route or no DNS"; rc=1; }
    # internal: no default route, and the embedded DNS does not forward (CVE-2024-29018)
    docker run --rm --network "$CHECK_NET_INT" "$DEBIAN_IMAGE" \
        sh -c '! grep -q "^[a-z0-9]*\s00000000" /proc/net/route && ! getent hosts deb.debian.org >/dev/null' \
        || { warn "container on an internal network: has a default route or resolves external names"; rc=1; }
    docker network rm "$CHECK_NET" "$CHECK_NET_INT" >/dev/null
    [ "$rc" = 0 ] || die "network checks failed"

    say "$RUST_IMAGE: cargo/rustc and an offline build (--network none)"
    docker run --rm --network none "$RUST_IMAGE" sh -ec \
        'cargo --version; rustc --version; cd /tmp; cargo new -q --vcs none x; cd x; cargo build -q --offline; ./target/debug/x'

    if [ "${SAFEAI_PROVISION_CHECK_CRATES_IO:-1}" = 1 ]; then
        # Non-fatal: this only reports whether a Dockerfile's `cargo build` can
        # download crates (it needs the machine's CA bundle, which the image has).
        say "crates.io from inside a container (non-fatal): cargo fetch of itoa, then cargo search"
        if docker run --rm "$RUST_IMAGE" sh -ec \
            'cd /tmp; cargo new -q --vcs none q; cd q; echo "itoa = \"1\"" >>Cargo.toml; timeout 120 cargo fetch -q'; then
            CRATES_IO_RESULT="cargo fetch OK (index + download)"
        else
            CRATES_IO_RESULT="cargo fetch FAILED"
            warn "cargo fetch from crates.io fails inside a container"
        fi
        # The search API is separate from the index; a registry mirror may not offer it.
        if docker run --rm "$RUST_IMAGE" timeout 60 cargo search -q --limit 1 itoa >/dev/null 2>&1; then
            CRATES_IO_RESULT+=", cargo search OK"
        else
            CRATES_IO_RESULT+=", cargo search fails (the search API; check the host: $(timeout 60 cargo search -q --limit 1 itoa >/dev/null 2>&1 && echo works there || echo fails there too))"
        fi
    fi

    say "squid -k parse / dnsmasq --test on the packaged default configs"
    squid -k parse -f /etc/squid/squid.conf >/dev/null 2>&1 || die "squid -k parse failed"
    dnsmasq --test -C /etc/dnsmasq.conf >/dev/null 2>&1 || die "dnsmasq --test failed"

    say "docker build (BuildKit) FROM the imported image, with apt-get install"
    local ctx; ctx=$(mktemp -d); WORK_TO_CLEAN+=("$ctx")
    cat >"$ctx/Dockerfile" <<EOF
FROM $DEBIAN_IMAGE
RUN apt-get update && apt-get install -y --no-install-recommends netbase && rm -rf /var/lib/apt/lists/*
EOF
    DOCKER_BUILDKIT=1 docker build -q -t safeai-provision-smoke "$ctx" >/dev/null
    docker image rm safeai-provision-smoke >/dev/null
}

# ------------------------------------------------------------------ main --

# Which steps to run: all by default, or a subset named on the command line
# (`provision.sh tools engine` gives the artifact checkers without starting dockerd).
STEPS=" ${*:-tools engine dockerd images gvisor verify} "
wants() { [[ "$STEPS" == *" $1 "* ]]; }

wants tools   && step "1 squid/dnsmasq/tools" step_tools
wants engine  && step "2 docker engine+compose" step_engine
wants dockerd && step "3 dockerd" step_dockerd
wants images  && step "4 stand-in images" step_images
wants gvisor  && step "5 gvisor" step_gvisor
wants verify  && step "6 verify" step_verify

if ! wants verify; then
    say "---- timings"
    printf '  %s\n' "${TIMINGS[@]}"
    exit 0
fi

say "---- summary"
printf '  %-16s %s\n' \
    squid      "$(squid -v | sed -n 's/^Squid Cache: Version //p')" \
    dnsmasq    "$(dnsmasq --version | sed -n '1s/^Dnsmasq version \([^ ]*\).*/\1/p')" \
    engine     "$(docker version -f '{{.Server.Version}}') (docker.io $(pkg_version docker.io), containerd $(pkg_version containerd), runc $(pkg_version runc))" \
    cli        "$(command -v docker) $(docker version -f '{{.Client.Version}}')" \
    compose    "$(docker compose version --short)" \
    buildx     "$(docker buildx version 2>/dev/null | awk '{print $2}')" \
    dockerd    "pid $(cat "$DOCKERD_PIDFILE"), storage $(docker info -f '{{.Driver}}'), cgroup $(docker info -f '{{.CgroupDriver}}') v$(docker info -f '{{.CgroupVersion}}'), $(iptables --version), log $DOCKERD_LOG" \
    images     "$(docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$DEBIAN_IMAGE"); $(docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$RUST_IMAGE") ($(docker run --rm --network none "$RUST_IMAGE" rustc --version))" \
    gvisor     "runsc $(pkg_version runsc) via $RUNSC_SHIM" \
    crates.io  "$CRATES_IO_RESULT"
say "---- timings"
printf '  %s\n' "${TIMINGS[@]}"
printf '  %-28s %4ss\n' total "$(( $(date +%s) - SCRIPT_START ))"
