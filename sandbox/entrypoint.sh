#!/usr/bin/env bash
# Entrypoint of the safe-ai sandbox: prepares what sshd needs, then runs it.
#
# Runs as root (under tini) on a read-only root filesystem, with every capability dropped
# except CHOWN, FOWNER, SETUID, SETGID, SYS_CHROOT, NET_BIND_SERVICE and AUDIT_WRITE
# (FOWNER is for sshd, which sets the mode of the terminal it hands to the user). Without
# CAP_DAC_OVERRIDE, root here can write only into directories it owns. This script writes
# only to /run (tmpfs) and to the volumes (/etc/ssh/host-keys, and /home/dev through the
# dev user), and never chmods or chowns anything of the image.
#
# With no arguments it runs sshd in the foreground, logging to stderr; with arguments it
# runs those instead, after the same preparation.
set -euo pipefail
umask 022

readonly STATE=/run/safe-ai
readonly KEY_SOURCE=/etc/safe-ai/authorized_keys
readonly HOST_KEY_DIR=/etc/ssh/host-keys
# Files copied into the home directory at start when missing there: the home volume is
# filled from the image only when it is created, so files that a later image adds
# (examples/codex.Dockerfile adds ~/.codex/config.toml) would otherwise never arrive.
readonly HOME_SEED=/etc/safe-ai/home
# Scripts sourced before sshd starts; they may call `safeai_setenv NAME VALUE` and
# `safeai_appendenv NAME WORDS`, and read SAFEAI_STACK_CA (examples/java.Dockerfile
# derives JAVA_TOOL_OPTIONS from the proxy address and builds a Java trust store).
readonly HOOK_DIR=/etc/safe-ai/entrypoint.d
# The stack's CA certificate (never its key): the proxy writes it into a volume mounted
# here read-only. The image's own CAs, which update-ca-certificates wrote at build.
readonly STACK_CA=/etc/safe-ai/ca/ca.crt SYSTEM_BUNDLE=/etc/ssl/certs/ca-certificates.system.crt
# The stack CA's path once it is known to be a certificate and trusted; empty otherwise.
SAFEAI_STACK_CA=''
readonly DEV_USER=dev DEV_UID=1000 DEV_GID=1000 DEV_HOME=/home/dev WORKSPACE=/workspace

log() { printf 'safe-ai-sandbox: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# --- session environment ---------------------------------------------------------------
# sshd starts every session with a fresh environment, so the container's own (the proxy
# variables set by compose, API keys from an override, the image's ENV) would not reach
# an SSH login. It is handed on through sshd's SetEnv and /run/safe-ai/env.sh.

# Set per session by sshd or the shell, or meaningful only to this process.
readonly NOT_HANDED_ON=' HOME HOSTNAME LOGNAME MAIL OLDPWD PWD SHELL SHLVL TERM USER _ '
declare -A SESSION_ENV=()

# safeai_setenv NAME VALUE: hand NAME=VALUE on to every login session.
safeai_setenv() {
    local name=$1 value=$2
    if [[ ! $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
        log "warning: not handing on '$name' to SSH sessions: not a variable name"
    elif [[ $value == *$'\n'* ]]; then
        log "warning: not handing on $name to SSH sessions: its value has a line break"
    else
        SESSION_ENV[$name]=$value
    fi
}

# safeai_appendenv NAME WORDS: add WORDS, after a space, to what sessions get for NAME
# (several hooks add to JAVA_TOOL_OPTIONS).
safeai_appendenv() {
    local current=${SESSION_ENV[$1]:-}
    safeai_setenv "$1" "${current:+$current }$2"
}

# The variables of the proxy's brokered credentials (`sandbox_env` in the allowlist):
# NAME=placeholder lines the proxy writes beside the policy file. The real key never comes
# here; the proxy adds it on the wire. A variable the container already sets wins.
readonly BROKERED_ENV=/etc/safe-ai/policy/sandbox.env
collect_brokered_env() {
    local name value
    [[ -r $BROKERED_ENV ]] || return 0
    while IFS='=' read -r name value; do
        [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
        [[ -n ${SESSION_ENV[$name]:-} ]] || safeai_setenv "$name" "$value"
    done <"$BROKERED_ENV"
}

collect_container_env() {
    local name
    while IFS= read -r name; do
        [[ $NOT_HANDED_ON == *" $name "* ]] || safeai_setenv "$name" "${!name}"
    done < <(compgen -e)
}

write_session_env() {
    local name value sh_file=$STATE/env.sh sshd_file=$STATE/sshd_config.d/env.conf
    local setenv=''
    install -d -m 0755 "$STATE/sshd_config.d"
    {
        echo "# Written by safeai-sandbox-entrypoint at start; read by /etc/profile.d/safe-ai.sh."
        for name in "${SORTED_NAMES[@]}"; do
            value=${SESSION_ENV[$name]}
            # POSIX shell: single quotes, each ' written as '\''.
            printf "export %s='%s'\n" "$name" "${value//\'/\'\\\'\'}"
            # sshd: one double-quoted word per variable; \ and " escaped.
            value=${value//\\/\\\\}
            setenv+=" \"$name=${value//\"/\\\"}\""
        done
    } >"$sh_file.tmp"
    {
        echo "# Written by safeai-sandbox-entrypoint at start: the environment of SSH sessions."
        if [[ -n $setenv ]]; then
            echo "SetEnv$setenv"
        fi
    } >"$sshd_file.tmp"
    chmod 0644 "$sh_file.tmp"
    # May hold API keys from the container's environment: root only (sshd reads it).
    chmod 0600 "$sshd_file.tmp"
    mv -f "$sh_file.tmp" "$sh_file"
    mv -f "$sshd_file.tmp" "$sshd_file"
}

# --- SSH host keys ---------------------------------------------------------------------
# ensure_host_key TYPE [BITS]: generate the key into the volume once; keep it afterwards.
ensure_host_key() {
    local type=$1 bits=${2:-} key=$HOST_KEY_DIR/ssh_host_$1_key
    if [[ ! -s $key ]]; then
        [[ -w $HOST_KEY_DIR ]] ||
            die "cannot write SSH host keys into $HOST_KEY_DIR: mount a volume there (compose does: ssh-host-keys)"
        rm -f "$key.new" "$key.new.pub"
        ssh-keygen -q -N '' -t "$type" ${bits:+-b "$bits"} -C "safe-ai sandbox" -f "$key.new"
        mv -f "$key.new.pub" "$key.pub"
        mv -f "$key.new" "$key"
        log "generated the $type host key: $(ssh-keygen -l -f "$key.pub" | cut -d' ' -f2)"
    fi
    # sshd ignores a private key that others can read or that root does not own.
    if [[ $(stat -c %u:%a "$key") != 0:600 ]]; then
        chown 0:0 "$key"
        chmod 0600 "$key"
    fi
    if [[ ! -s $key.pub ]]; then
        ssh-keygen -y -f "$key" >"$key.pub"
    fi
}

# --- the user's public key ------------------------------------------------------------
how_to_set_key() {
    log "SSH login is disabled until the key is there; 'docker compose exec sandbox bash' works meanwhile."
    log "Set SAFE_AI_SSH_KEY to your PUBLIC key file (default ~/.ssh/id_ed25519.pub), in your shell"
    log "or in .env, e.g. SAFE_AI_SSH_KEY=~/.ssh/id_ed25519.pub, then run 'docker compose up -d' again."
}

install_authorized_keys() {
    local dst=$STATE/authorized_keys fingerprints
    : >"$dst.tmp"
    if [[ -d $KEY_SOURCE ]]; then
        log "no SSH key: $KEY_SOURCE is a directory, not a public key file."
        how_to_set_key
    elif [[ ! -e $KEY_SOURCE ]]; then
        log "no SSH key: nothing is mounted at $KEY_SOURCE."
        how_to_set_key
    elif [[ ! -r $KEY_SOURCE ]]; then
        log "no SSH key: $KEY_SOURCE is not readable in the container (mode $(stat -c %a "$KEY_SOURCE"), owner uid $(stat -c %u "$KEY_SOURCE"))."
        log "A public key is not secret: 'chmod 644' it on the host, then run 'docker compose up -d' again."
    elif [[ ! -s $KEY_SOURCE ]]; then
        log "no SSH key: $KEY_SOURCE is empty."
        how_to_set_key
    elif grep -q 'PRIVATE KEY' "$KEY_SOURCE"; then
        log "error: $KEY_SOURCE holds a PRIVATE key, which the agent in this sandbox can read."
        log "Point SAFE_AI_SSH_KEY at the .pub file instead and consider that key exposed."
        how_to_set_key
    else
        cat "$KEY_SOURCE" >"$dst.tmp"
        if fingerprints=$(ssh-keygen -l -f "$dst.tmp" 2>/dev/null); then
            while IFS= read -r line; do
                log "SSH login as $DEV_USER allowed for $line"
            done <<<"$fingerprints"
        else
            log "warning: no valid public key in $KEY_SOURCE: SSH login will fail."
            how_to_set_key
        fi
    fi
    chmod 0644 "$dst.tmp"
    mv -f "$dst.tmp" "$dst"
}

# --- trusted certificate authorities ---------------------------------------------------
# /etc/ssl/certs/ca-certificates.crt, the bundle TLS libraries read, is a symlink to the
# file written here (sandbox/Dockerfile): the image's CAs plus the stack's CA, so that the
# certificates the proxy makes (deny pages over HTTPS, the hosts it decrypts) are trusted.
install_ca_bundle() {
    local dst=$STATE/ca-certificates.crt pem='' problem=''
    [[ -s $SYSTEM_BUNDLE ]] ||
        die "$SYSTEM_BUNDLE is missing: this image was not built from sandbox/Dockerfile's steps"
    if [[ ! -e $STACK_CA ]]; then
        problem="nothing is mounted at $STACK_CA"
    elif [[ ! -f $STACK_CA ]]; then
        problem="$STACK_CA is not a file"
    elif [[ ! -r $STACK_CA ]]; then
        problem="$STACK_CA is not readable in the container (mode $(stat -c %a "$STACK_CA"), owner uid $(stat -c %u "$STACK_CA"))"
    elif grep -q 'PRIVATE KEY' "$STACK_CA"; then
        # The agent can read every file in the sandbox.
        log "error: $STACK_CA holds a PRIVATE key, readable by the agent: consider the stack CA exposed."
        problem="$STACK_CA holds a private key"
    elif ! pem=$(openssl x509 -in "$STACK_CA" 2>/dev/null); then
        problem="$STACK_CA is not a PEM certificate"
    fi
    cat "$SYSTEM_BUNDLE" >"$dst.tmp"
    if [[ -z $problem ]]; then
        # openssl's own output: the certificate alone, whatever else the file holds.
        printf '%s\n' "$pem" >>"$dst.tmp"
        # shellcheck disable=SC2034 # read by the hooks
        SAFEAI_STACK_CA=$STACK_CA
        log "trusting the stack CA $(openssl x509 -noout -subject -fingerprint -sha256 -in "$STACK_CA" | paste -sd ' ')"
    else
        log "warning: not trusting a stack CA: $problem."
        log "HTTPS to hosts the proxy passes through (spliced) works; hosts it decrypts and deny pages over HTTPS will show certificate errors. Trusted: the system CAs only."
    fi
    chmod 0644 "$dst.tmp"
    mv -f "$dst.tmp" "$dst"
}

# --- volumes ----------------------------------------------------------------------------
# A new named volume takes the image's ownership (dev); an empty volume made elsewhere,
# or a bind mount, may not. Only a root-owned directory is taken over, and not its
# content: a bind-mounted project that belongs to someone else is left alone.
own_dir() {
    local dir=$1 owner
    owner=$(stat -c %u "$dir")
    if [[ $owner == "$DEV_UID" ]]; then
        return 0
    elif [[ $owner == 0 ]]; then
        chown "$DEV_UID:$DEV_GID" "$dir"
        log "gave $dir to $DEV_USER"
    else
        log "warning: $dir belongs to uid $owner, not to $DEV_USER (uid $DEV_UID): $DEV_USER may be unable to write there"
    fi
}

# Copy what is missing from the seed into the home directory, as dev (root here cannot
# write into dev's directories).
seed_home() {
    [[ -d $HOME_SEED ]] || return 0
    # shellcheck disable=SC2016 # expanded by the inner shell
    setpriv --reuid="$DEV_UID" --regid="$DEV_GID" --init-groups -- bash -c '
        set -euo pipefail
        cd "$1"
        find . -mindepth 1 -print0 | while IFS= read -r -d "" path; do
            path=${path#./}
            target=$2/$path
            if [[ -d $path && ! -L $path ]]; then
                [[ -e $target ]] || mkdir -m "$(stat -c %a "$path")" "$target"
            elif [[ ! -e $target && ! -L $target ]]; then
                cp -P --preserve=mode,timestamps "$path" "$target"
                echo "safe-ai-sandbox: added ~/$path"
            fi
        done' seed "$HOME_SEED" "$DEV_HOME" >&2 ||
        log "warning: could not copy the missing files of $HOME_SEED into $DEV_HOME"
}

# --- DNS --------------------------------------------------------------------------------
# /etc/resolv.conf (Docker's, read-only) names 127.0.0.11, Docker's resolver, reached
# through NAT rules that gVisor's network stack does not use. Where nothing answers there,
# a relay does, asking the proxy (the stack's DNS server, the host of HTTP_PROXY).
start_dns_relay() {
    local proxy=${HTTP_PROXY:-${http_proxy:-}} host
    host=${proxy#*://}
    host=${host%%[:/]*}
    if [[ ! $host =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
        log "warning: no DNS relay: the proxy's address is not in HTTP_PROXY (${proxy:-unset})"
        return 0
    fi
    safeai-dns-relay --if-needed "$host" &
}

main() {
    install -d -m 0755 "$STATE"
    # sshd's privilege separation directory (chroot of the pre-authentication child).
    install -d -m 0755 /run/sshd
    # Login records (/var/log/{wtmp,btmp,lastlog} point here; sshd does not create them).
    install -d -m 0755 "$STATE/log"
    install -m 0644 /dev/null /run/utmp
    install -m 0644 /dev/null "$STATE/log/wtmp"
    install -m 0644 /dev/null "$STATE/log/lastlog"
    install -m 0600 /dev/null "$STATE/log/btmp"

    ensure_host_key ed25519
    ensure_host_key rsa 3072
    install_authorized_keys
    install_ca_bundle
    start_dns_relay

    own_dir "$WORKSPACE"
    own_dir "$DEV_HOME"
    seed_home

    collect_container_env
    collect_brokered_env
    local hook
    for hook in "$HOOK_DIR"/*.sh; do
        [[ -e $hook ]] || continue
        # shellcheck source=/dev/null
        . "$hook"
    done
    SORTED_NAMES=()
    if ((${#SESSION_ENV[@]} > 0)); then
        mapfile -t SORTED_NAMES < <(printf '%s\n' "${!SESSION_ENV[@]}" | LC_ALL=C sort)
    fi
    write_session_env
    log "SSH sessions get: ${SORTED_NAMES[*]}"
    log "proxy: ${HTTPS_PROXY:-${https_proxy:-none set (no egress at all)}}"

    if (($# == 0)); then
        set -- /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config
    fi
    exec "$@"
}

main "$@"
