#!/usr/bin/env bash
# safe-ai setup: checks that this machine can run the stack and creates the local
# configuration files (.env, docker-compose.override.yaml) from their examples.
#
#   scripts/setup.sh              run the checks (also `make setup`)
#   scripts/setup.sh --self-test  test the version comparisons of this script
#   scripts/setup.sh --help
#
# It never overwrites a file, and exits non-zero only when the stack cannot run at all:
# no Docker engine (>= 25), or no Docker Compose v2 (>= 2.20.3). Everything else is a warning with
# the command that fixes it. Set NO_COLOR=1 to turn colours off, SAFE_AI_ASCII=1 for
# ASCII markers. Runs with bash 3.2 (macOS) as well.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Test seam: the file that tells WSL apart (see --help).
PROC_VERSION=${SAFEAI_SETUP_PROC_VERSION:-/proc/version}

# The compose file's health checks use `start_interval` (fast start-up): Compose 2.20.3
# and Engine 25 (API 1.44) are the first to know it.
COMPOSE_MIN=2.20.3
ENGINE_MIN=25.0.0
# The sandbox's CPU limit that `make setup` writes into a new .env: this many CPUs, or
# all of the Docker host's when it has fewer (Docker refuses a limit above them).
SANDBOX_CPUS_WANTED=4
# CVE-2024-29018 (the embedded DNS of an `internal` network forwarded queries to the
# host's resolvers, a way out of the sandbox): fixed in 26.0.0, 25.0.5 and 23.0.11.
CVE_DOC="https://github.com/moby/moby/security/advisories/GHSA-mq39-4gv4-mvpx"

# --- Output ---------------------------------------------------------------------------

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
    C_OK=$'\033[32m' C_WARN=$'\033[33m' C_FAIL=$'\033[31m' C_BOLD=$'\033[1m' C_OFF=$'\033[0m'
else
    C_OK='' C_WARN='' C_FAIL='' C_BOLD='' C_OFF=''
fi
case "${LC_ALL:-${LC_CTYPE:-${LANG:-}}}" in
    *UTF-8* | *utf-8* | *UTF8* | *utf8*) UTF8=1 ;;
    *) UTF8=0 ;;
esac
if [ "$UTF8" = 1 ] && [ -z "${SAFE_AI_ASCII:-}" ]; then
    M_OK='✓' M_WARN='!' M_FAIL='✗' M_INFO='•'
else
    M_OK='ok' M_WARN='!!' M_FAIL='XX' M_INFO='--'
fi

FAILURES=0
WARNINGS=0

section() { printf '\n%s%s%s\n' "$C_BOLD" "$1" "$C_OFF"; }
ok() { printf '  %s%s%s %s\n' "$C_OK" "$M_OK" "$C_OFF" "$1"; }
info() { printf '  %s %s\n' "$M_INFO" "$1"; }
warn() {
    printf '  %s%s%s %s\n' "$C_WARN" "$M_WARN" "$C_OFF" "$1"
    WARNINGS=$((WARNINGS + 1))
}
fail() {
    printf '  %s%s%s %s\n' "$C_FAIL" "$M_FAIL" "$C_OFF" "$1"
    FAILURES=$((FAILURES + 1))
}
# Advice under the previous line: one argument per line.
hint() {
    local line
    for line in "$@"; do
        printf '      %s\n' "$line"
    done
}

# Runs "$@" with a time limit when `timeout` exists (a hung daemon must not hang setup).
bounded() {
    if command -v timeout >/dev/null 2>&1; then
        timeout 20 "$@"
    else
        "$@"
    fi
}

# --- Versions -------------------------------------------------------------------------

# Prints "MAJOR MINOR PATCH" of the first X.Y[.Z] in $1 ("26.1.5+dfsg1", "v2.26.1",
# "17.03.0-ce", "2.29.7-desktop.1"); fails when there is none. Numbers are read in base
# 10, so "03" is 3.
parse_version() {
    if [[ $1 =~ ([0-9]+)\.([0-9]+)(\.([0-9]+))? ]]; then
        printf '%d %d %d\n' "$((10#${BASH_REMATCH[1]}))" "$((10#${BASH_REMATCH[2]}))" \
            "$((10#${BASH_REMATCH[4]:-0}))"
    else
        return 1
    fi
}

# Succeeds when version $1 < version $2, comparing numbers, not text (2.9 < 2.20).
# Returns 2 when either does not parse.
version_lt() {
    local a b a1 a2 a3 b1 b2 b3
    a=$(parse_version "$1") || return 2
    b=$(parse_version "$2") || return 2
    read -r a1 a2 a3 <<<"$a"
    read -r b1 b2 b3 <<<"$b"
    [ "$a1" -ne "$b1" ] && { [ "$a1" -lt "$b1" ]; return; }
    [ "$a2" -ne "$b2" ] && { [ "$a2" -lt "$b2" ]; return; }
    [ "$a3" -lt "$b3" ]
}

# Succeeds when Docker Engine $1 lacks the CVE-2024-29018 fix: before 23.0.11, every
# 24.x, and 25.0.0 to 25.0.4. Returns 2 when $1 does not parse.
cve_2024_29018_affected() {
    parse_version "$1" >/dev/null || return 2
    version_lt "$1" 23.0.11 && return 0
    version_lt "$1" 24.0.0 && return 1
    version_lt "$1" 25.0.5 && return 0
    return 1
}

self_test() {
    local passed=0 failed=0 got
    check() { # check DESCRIPTION EXPECTED ACTUAL
        if [ "$2" = "$3" ]; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            printf '  %s %s: expected %s, got %s\n' "$M_FAIL" "$1" "$2" "$3"
        fi
    }
    status() { # prints the exit status of "$@"
        local rc=0
        "$@" || rc=$?
        printf '%s' "$rc"
    }

    # parse_version
    local case_ input expected
    for case_ in \
        '26.1.5+dfsg1=26 1 5' 'v2.26.1=2 26 1' '2.26.1-4=2 26 1' '20.10=20 10 0' \
        '17.03.0-ce=17 3 0' '2.29.7-desktop.1=2 29 7' 'Docker Compose version v2.20.2=2 20 2' \
        '0.0.1=0 0 1'; do
        input=${case_%%=*}
        expected=${case_#*=}
        got=$(parse_version "$input" || echo fail)
        check "parse_version '$input'" "$expected" "$got"
    done
    for input in '' 'podman' 'v2' '2.x'; do
        check "parse_version '$input' fails" 1 "$(status parse_version "$input")"
    done

    # version_lt: 0 = less than, 1 = not less than, 2 = unparseable
    for case_ in \
        '2.19.1 2.20.0 0' '2.20.0 2.20.0 1' '2.26.1-4 2.20.0 1' 'v2.20.0 2.20.0 1' \
        '2.9.0 2.20.0 0' '2.100.0 2.20.0 1' '1.29.2 2.20.0 0' '3.0.0 2.20.0 1' \
        '2.20 2.20.1 0' '26.0.0 25.0.5 1' '25.0.5 26.0.0 0' 'garbage 2.20.0 2' \
        '2.20.0 garbage 2'; do
        read -r input got expected <<<"$case_"
        check "version_lt $input $got" "$expected" "$(status version_lt "$input" "$got")"
    done

    # cve_2024_29018_affected: 0 = affected, 1 = fixed, 2 = unparseable
    for case_ in \
        '9.0.0 0' '17.03.0-ce 0' '20.10.24+dfsg1 0' '23.0.0 0' '23.0.10 0' '23.0.11 1' \
        '23.0.15 1' '24.0.0 0' '24.0.9 0' '25.0.0 0' '25.0.4 0' '25.0.5 1' '25.0.10 1' \
        '26.0.0 1' '26.1.5+dfsg1 1' '27.3.1 1' '28.2.2 1' '100.0.0 1' 'unknown 2'; do
        read -r input expected <<<"$case_"
        check "CVE-2024-29018 affected($input)" "$expected" \
            "$(status cve_2024_29018_affected "$input")"
    done

    if [ "$failed" -eq 0 ]; then
        printf '%s%s%s self-test: %d checks passed\n' "$C_OK" "$M_OK" "$C_OFF" "$passed"
        return 0
    fi
    printf '%s%s%s self-test: %d of %d checks failed\n' "$C_FAIL" "$M_FAIL" "$C_OFF" \
        "$failed" "$((passed + failed))"
    return 1
}

# --- Settings -------------------------------------------------------------------------

# The value Compose would use for variable $1: the shell's, else the last `NAME=value`
# line of .env (quotes removed), else empty.
setting() {
    local name=$1 value=
    if [ -n "${!name:-}" ]; then
        printf '%s' "${!name}"
        return
    fi
    if [ -f "$ROOT/.env" ]; then
        value=$(sed -n "s/^[[:space:]]*${name}[[:space:]]*=[[:space:]]*//p" "$ROOT/.env" | tail -n 1)
        value=${value%$'\r'}
        value=${value#\"}
        value=${value%\"}
        value=${value#\'}
        value=${value%\'}
    fi
    printf '%s' "$value"
}

is_wsl() {
    grep -qiE 'microsoft|wsl' "$PROC_VERSION" 2>/dev/null
}

# Succeeds when path $1 (or what it links to) is on the Windows filesystem (/mnt/c/...).
on_windows_fs() {
    local resolved
    resolved=$(readlink -f "$1" 2>/dev/null || printf '%s' "$1")
    case "$resolved" in
        /mnt/[a-zA-Z]/*) return 0 ;;
        *) return 1 ;;
    esac
}

# --- Checks ---------------------------------------------------------------------------

DOCKER_IS_PODMAN=0
COMPOSE_OK=0

check_docker() {
    section "Docker"
    if ! command -v docker >/dev/null 2>&1; then
        fail "docker is not installed"
        hint "Install Docker Engine (Linux): https://docs.docker.com/engine/install/" \
            "or Docker Desktop (macOS, Windows with WSL2): https://docs.docker.com/desktop/"
        return
    fi
    local client
    client=$(docker --version 2>/dev/null || true)
    if printf '%s' "$client" | grep -qi podman; then
        DOCKER_IS_PODMAN=1
        info "\`docker\` is Podman's compatibility command ($client)"
    fi

    local out rc=0 server
    out=$(bounded docker version --format '{{.Server.Version}}' 2>&1) || rc=$?
    server=$(printf '%s\n' "$out" | tail -n 1)
    if [ "$rc" -ne 0 ] || [ -z "$server" ]; then
        fail "the Docker engine does not answer"
        if printf '%s' "$out" | grep -qi 'permission denied'; then
            hint "Your user may not use the Docker socket. Either add it to the docker group" \
                "(sudo usermod -aG docker \"\$USER\", then log out and in), or use rootless Docker."
        elif [ "$rc" -eq 124 ]; then
            hint "\`docker version\` did not answer within 20 seconds: is the daemon hung?"
        else
            hint "Start it: \`sudo systemctl start docker\` (Linux), or start Docker Desktop." \
                "On WSL2 with Docker Desktop, enable Settings > Resources > WSL integration" \
                "for this distribution."
        fi
        hint "docker said: $(printf '%s' "$out" | head -n 1)"
        check_compose
        return
    fi
    if [ "$DOCKER_IS_PODMAN" = 1 ]; then
        ok "Podman $server answers"
    else
        ok "Docker engine $server answers"
    fi

    if [ "$DOCKER_IS_PODMAN" = 0 ] && version_lt "$server" "$ENGINE_MIN"; then
        fail "Docker Engine $server is too old: safe-ai needs $ENGINE_MIN or later"
        hint "The compose file's health checks use start_interval (Engine API 1.44)." \
            "Upgrade with Docker's own packages: https://docs.docker.com/engine/install/"
    fi
    if [ "$DOCKER_IS_PODMAN" = 1 ]; then
        info "CVE-2024-29018 concerns Docker Engine only: not checked for Podman"
    else
        local affected=0
        cve_2024_29018_affected "$server" || affected=$?
        case "$affected" in
            0)
                warn "Docker Engine $server predates the fix for CVE-2024-29018"
                hint "The embedded DNS of an internal network can forward queries to the host's" \
                    "resolvers: a DNS path out of the sandbox. Upgrade to 26.0.0 or later" \
                    "(or 25.0.5+, 23.0.11+). Distribution packages are often older (Debian" \
                    "bookworm's docker.io is 20.10): use Docker's own packages," \
                    "https://docs.docker.com/engine/install/ . Advisory: $CVE_DOC"
                ;;
            1) ok "Docker Engine has the CVE-2024-29018 fix (26.0.0+, 25.0.5+ or 23.0.11+)" ;;
            *) warn "cannot read the engine version '$server': check it has the CVE-2024-29018 fix (26.0.0+)" ;;
        esac
    fi

    check_compose
    if [ "$COMPOSE_OK" = 1 ] && [ "$DOCKER_IS_PODMAN" = 0 ]; then
        if docker buildx version >/dev/null 2>&1; then
            ok "docker buildx $(docker buildx version 2>/dev/null | awk '{print $2; exit}')"
        else
            warn "docker buildx is missing: \`docker compose build\` may fail or use the legacy builder"
            hint "Install the docker-buildx-plugin package (Docker's repository) or Docker Desktop."
        fi
    fi
    check_runtime
    check_cpus
}

check_compose() {
    local version rc=0
    version=$(bounded docker compose version --short 2>/dev/null) || rc=$?
    if [ "$rc" -ne 0 ] || [ -z "$version" ]; then
        fail "Docker Compose v2 (\`docker compose\`) is missing"
        if command -v docker-compose >/dev/null 2>&1; then
            local legacy
            legacy=$(docker-compose version --short 2>/dev/null || echo unknown)
            if version_lt "$legacy" 2.0.0; then
                hint "docker-compose $legacy is Compose v1, which is no longer supported."
            else
                hint "docker-compose $legacy is a standalone Compose v2: make it a CLI plugin with" \
                    "mkdir -p ~/.docker/cli-plugins && ln -s \"$(command -v docker-compose)\" ~/.docker/cli-plugins/docker-compose"
            fi
        fi
        hint "Install the Compose plugin: \`sudo apt-get install docker-compose-plugin\` or" \
            "\`sudo dnf install docker-compose-plugin\` (from Docker's repository), or see" \
            "https://docs.docker.com/compose/install/linux/ . Docker Desktop includes it."
        return
    fi
    local lt=0
    version_lt "$version" "$COMPOSE_MIN" || lt=$?
    case "$lt" in
        0)
            fail "Docker Compose $version is too old: safe-ai needs $COMPOSE_MIN or later"
            hint "Upgrade the docker-compose-plugin package, or see" \
                "https://docs.docker.com/compose/install/linux/"
            ;;
        1)
            ok "Docker Compose $version (>= $COMPOSE_MIN)"
            COMPOSE_OK=1
            ;;
        *)
            warn "cannot read the Compose version '$version': safe-ai needs $COMPOSE_MIN or later"
            COMPOSE_OK=1
            ;;
    esac
}

# The Docker host's number of CPUs (of its VM with Docker Desktop), or nothing.
HOST_CPUS=

# Docker refuses to start a container whose CPU limit exceeds the host's CPUs ("Range of
# CPUs is from 0.01 to 2.00"): a value set in .env or the shell may be too high here.
check_cpus() {
    local ncpu var default want
    ncpu=$(bounded docker info --format '{{.NCPU}}' 2>/dev/null || true)
    case "$ncpu" in
        '' | *[!0-9]*) return ;;
    esac
    HOST_CPUS=$ncpu
    for var in SAFE_AI_SANDBOX_CPUS:0 SAFE_AI_PROXY_CPUS:1; do
        default=${var#*:}
        var=${var%%:*}
        want=$(setting "$var")
        want=${want:-$default}
        if awk -v w="$want" -v n="$ncpu" 'BEGIN { exit !(w + 0 > n + 0) }'; then
            warn "$var is $want but the Docker host has $ncpu CPU(s): Docker will refuse to start the container"
            hint "Set $var=$ncpu (or less) in .env."
        fi
    done
}

# SAFE_AI_RUNTIME must name a runtime the engine knows (runsc for gVisor).
check_runtime() {
    local runtime
    runtime=$(setting SAFE_AI_RUNTIME)
    if [ -z "$runtime" ] || [ "$runtime" = runc ] || [ "$DOCKER_IS_PODMAN" = 1 ]; then
        return
    fi
    if bounded docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q "\"$runtime\""; then
        ok "OCI runtime $runtime (SAFE_AI_RUNTIME) is registered with the engine"
    else
        warn "SAFE_AI_RUNTIME=$runtime, but the engine has no runtime of that name"
        hint "For gVisor: https://gvisor.dev/docs/user_guide/install/ , then restart dockerd."
    fi
}

check_ssh_key() {
    section "SSH key (login to the sandbox)"
    local key from
    key=$(setting SAFE_AI_SSH_KEY)
    if [ -n "$key" ]; then
        from="SAFE_AI_SSH_KEY"
    else
        key="$HOME/.ssh/id_ed25519.pub"
        from="the default"
    fi
    # Compose expands a leading ~ in a bind source; do the same.
    case "$key" in
        \~) key=$HOME ;;
        \~/*) key="$HOME/${key#\~/}" ;;
    esac
    case "$key" in
        /*) ;;
        *) key="$ROOT/${key#./}" ;;
    esac

    if [ ! -f "$key" ]; then
        warn "no public key at $key ($from): \`docker compose up\` will refuse to start"
        local other
        for other in "$HOME"/.ssh/id_ecdsa.pub "$HOME"/.ssh/id_rsa.pub "$HOME"/.ssh/id_ed25519_sk.pub; do
            if [ -f "$other" ]; then
                hint "You have $other: to use it, set SAFE_AI_SSH_KEY=$other in .env"
                break
            fi
        done
        hint "To create a key: ssh-keygen -t ed25519 -f ~/.ssh/id_ed25519"
    elif grep -q 'PRIVATE KEY' "$key" 2>/dev/null; then
        warn "$key is a PRIVATE key: it would be mounted into the sandbox, readable by the agent"
        hint "Point SAFE_AI_SSH_KEY at the public key (the .pub file) instead."
    elif ! grep -qE '^(ssh-|ecdsa-|sk-)' "$key" 2>/dev/null; then
        warn "$key does not look like an OpenSSH public key (ssh-ed25519 AAAA...)"
    else
        ok "public key $key ($from)"
    fi

    if is_wsl && { on_windows_fs "$key" || on_windows_fs "${key%.pub}"; }; then
        warn "the key lives on the Windows filesystem ($(readlink -f "$key" 2>/dev/null || echo "$key"))"
        hint "Files under /mnt/c have Windows permissions (usually 0777): ssh refuses a private" \
            "key that others can read, and Docker may not be able to bind-mount it. Copy the" \
            "key pair into your Linux home and point SAFE_AI_SSH_KEY there:" \
            "  mkdir -p ~/.ssh && chmod 700 ~/.ssh" \
            "  cp /mnt/c/Users/<you>/.ssh/id_ed25519 /mnt/c/Users/<you>/.ssh/id_ed25519.pub ~/.ssh/" \
            "  chmod 600 ~/.ssh/id_ed25519 && chmod 644 ~/.ssh/id_ed25519.pub"
    fi
}

# Copies example $1 to $2 unless $2 exists.
create_from_example() {
    local example=$1 target=$2
    if [ -e "$ROOT/$target" ]; then
        info "$target exists: left as is"
    elif [ ! -f "$ROOT/$example" ]; then
        warn "$example is missing: $target not created"
    else
        cp "$ROOT/$example" "$ROOT/$target"
        ok "created $target from $example (edit it to change settings)"
    fi
}

# In a .env just made from the example: the sandbox's CPU limit that fits this host
# (the compose file's own default is no limit, the only one every host accepts).
set_sandbox_cpus() {
    local cpus=$SANDBOX_CPUS_WANTED
    if [ -z "$HOST_CPUS" ]; then
        info "the Docker host's CPUs are unknown: the sandbox gets no CPU limit (set SAFE_AI_SANDBOX_CPUS in .env)"
        return
    fi
    [ "$HOST_CPUS" -lt "$cpus" ] && cpus=$HOST_CPUS
    printf '\n# Written by `make setup`: %s of the Docker host'"'"'s %s CPUs.\nSAFE_AI_SANDBOX_CPUS=%s\n' \
        "$cpus" "$HOST_CPUS" "$cpus" >>"$ROOT/.env"
    ok "SAFE_AI_SANDBOX_CPUS=$cpus in .env (the Docker host has $HOST_CPUS CPUs)"
}

check_local_files() {
    section "Local configuration"
    local had_env=0
    [ -e "$ROOT/.env" ] && had_env=1
    create_from_example .env.example .env
    if [ "$had_env" = 0 ] && [ -f "$ROOT/.env" ]; then
        set_sandbox_cpus
    fi
    create_from_example docker-compose.override.yaml.example docker-compose.override.yaml
    if [ "$COMPOSE_OK" = 1 ] && [ "$DOCKER_IS_PODMAN" = 0 ]; then
        local out
        # The key's existence is checked above; a placeholder keeps `config` quiet here.
        if out=$(cd "$ROOT" && SAFE_AI_SSH_KEY=${SAFE_AI_SSH_KEY:-/dev/null} \
            bounded docker compose config -q 2>&1); then
            ok "docker compose config accepts docker-compose.yaml with .env and the override"
        else
            warn "docker compose config rejects the configuration:"
            printf '%s\n' "$out" | sed 's/^/      /'
        fi
    fi
}

# Windows Git converts LF to CRLF on checkout (core.autocrlf=true); a shell script or a
# config file with CRLF then fails inside Linux containers ("bad interpreter", "$'\r':
# command not found", squid/dnsmasq parse errors).
fix_crlf() {
    local files=() f count=0
    if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        while IFS= read -r -d '' f; do
            files+=("$f")
        done < <(git -C "$ROOT" grep -I -l -z -e $'\r' -- . 2>/dev/null || true)
    else
        while IFS= read -r -d '' f; do
            files+=("${f#./}")
        done < <(cd "$ROOT" && find . -path ./target -prune -o -path ./.git -prune -o \
            -type f -print0 | xargs -0 grep -I -l -Z -e $'\r' 2>/dev/null)
    fi

    local fixed=()
    for f in ${files[@]+"${files[@]}"}; do
        case "$f" in
            *.sh | *.bash | *.yaml | *.yml | *.conf | *.json | *.toml | *.example | *.servers | \
                *.hbs | Dockerfile | */Dockerfile | *.Dockerfile | Makefile | */Makefile | \
                .gitattributes | .gitignore | .ci/run | */entrypoint*) ;;
            *)
                # Scripts without an extension: a shebang on the first line.
                head -c 2 "$ROOT/$f" 2>/dev/null | grep -q '^#!' || continue
                ;;
        esac
        # A file marked -text in .gitattributes keeps its CRs on purpose (a test input).
        if git -C "$ROOT" check-attr text -- "$f" 2>/dev/null | grep -q ': text: unset$'; then
            continue
        fi
        sed -i 's/\r$//' "$ROOT/$f"
        fixed+=("$f")
        count=$((count + 1))
    done

    if [ "$count" -eq 0 ]; then
        ok "no CRLF line endings in the scripts and config files"
    else
        warn "converted CRLF to LF in $count file(s):"
        for f in "${fixed[@]}"; do
            hint "$f"
        done
        hint "They were checked out by Windows Git with core.autocrlf=true. .gitattributes now" \
            "keeps LF; clone inside WSL (not under /mnt/c) to avoid this altogether."
    fi
}

check_wsl() {
    is_wsl || return 0
    section "WSL2"
    info "running under WSL ($(head -c 80 "$PROC_VERSION" 2>/dev/null | tr -d '\n'))"
    if on_windows_fs "$ROOT"; then
        warn "the repository is on the Windows filesystem ($ROOT)"
        hint "Bind mounts and builds from /mnt/c are slow and lose Unix permissions: clone it" \
            "into your Linux home instead (cd ~ && git clone ...)."
    fi
    fix_crlf
}

check_podman() {
    command -v podman >/dev/null 2>&1 || return 0
    section "Podman"
    info "Podman found: $(podman --version 2>/dev/null || echo 'version unknown')"
    warn "Podman is not supported yet: the stack is tested on Docker Engine only"
    hint "Podman 4.3 refuses the compose file (its API is older than start_interval, and it" \
        "takes the inline seccomp profile for a path): see README.md, \"Podman\"."
}

summary() {
    section "Summary"
    if [ "$FAILURES" -gt 0 ]; then
        fail "$FAILURES problem(s) must be fixed before the stack can run (see above)"
        return 1
    fi
    if [ "$WARNINGS" -gt 0 ]; then
        warn "ready, with $WARNINGS warning(s) above"
    else
        ok "ready"
    fi
    hint "Next: \`make up\` (or docker compose up -d --build --wait), then \`make shell\`" \
        "(ssh -p \${SAFE_AI_SSH_PORT:-2222} dev@localhost) or VS Code Remote-SSH."
}

usage() {
    cat <<EOF
Usage: scripts/setup.sh [--self-test | --help]

Checks Docker (engine, CVE-2024-29018 fix, Compose v2 >= $COMPOSE_MIN), the SSH public
key, WSL2 and Podman specifics, and creates .env and docker-compose.override.yaml from
their examples when they do not exist (never overwrites). Exits 1 only when Docker or
Compose v2 is unusable.

  --self-test   run the unit tests of the version comparisons and exit
  --help        print this help

Environment: NO_COLOR=1 (no colours), SAFE_AI_ASCII=1 (ASCII markers),
SAFE_AI_SSH_KEY and SAFE_AI_RUNTIME (as for Compose; .env is read too),
SAFEAI_SETUP_PROC_VERSION (tests: a file to read instead of /proc/version).
EOF
}

main() {
    case "${1:-}" in
        --self-test)
            self_test
            return
            ;;
        -h | --help)
            usage
            return
            ;;
        '') ;;
        *)
            usage >&2
            return 2
            ;;
    esac
    printf '%ssafe-ai setup%s (%s)\n' "$C_BOLD" "$C_OFF" "$ROOT"
    check_docker
    # Before the copies: an example with CRLF would be copied with CRLF.
    check_wsl
    check_local_files
    check_ssh_key
    check_podman
    summary
}

main "$@"
