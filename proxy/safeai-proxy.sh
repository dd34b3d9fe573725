#!/usr/bin/env bash
# safeai-proxy: the proxy container's supervisor, reload and health check.
#
#   safeai-proxy run     render the config from the allowlist (fail closed), then run
#                        dnsmasq, the SSH forwarder and Squid; exit non-zero as soon as
#                        any of them dies, so the restart policy brings the whole proxy back
#   safeai-proxy reload  re-render and validate under a lock (`safeai proxy reload`); on
#                        success the new config is swapped in by one rename and Squid and
#                        dnsmasq re-read it; on failure the running config stays
#   safeai-proxy health  Squid, dnsmasq and the forwarder are alive and Squid answers
set -euo pipefail

RUN_DIR=/run/safe-ai
ALLOWLIST=${SAFE_AI_ALLOWLIST_PATH:-/etc/safe-ai/allowlist.yaml}
CA_DIR=/var/lib/safe-ai/ca
CA_PUBLIC_DIR=/var/lib/safe-ai/ca-public
# The sandbox mounts this volume read-only and reads policy.txt from it.
POLICY_DIR=/var/lib/safe-ai/policy
SSL_DB=/var/spool/squid/ssl_db
UPSTREAM_CA=/etc/safe-ai/upstream-ca.pem
SSH_TARGET=${SAFE_AI_SSH_TARGET:-sandbox:22}
SSH_MAX_CONNECTIONS=${SAFE_AI_SSH_MAX_CONNECTIONS:-32}
# The decision log (`safeai logs`): this file and its .1, together at most this many bytes.
EVENTS=/var/log/safe-ai/events.jsonl
EVENTS_MAX_BYTES=${SAFE_AI_EVENTS_MAX_BYTES:-8388608}

log() { echo "safe-ai proxy: $*" >&2; }

# `safeai proxy render|reload`: renders squid.conf, dnsmasq.conf, dnsmasq.servers and the
# error pages into a fresh directory under $RUN_DIR/configs, has Squid parse it and makes
# it $RUN_DIR/current (a symlink, swapped by one rename), then replaces the sandbox's
# policy file in $POLICY_DIR, all under a lock.
render() {
    # SAFE_AI_ALLOWLIST and SAFE_AI_UPSTREAM_CA name files on the host; in here they are
    # mounted at $ALLOWLIST and $UPSTREAM_CA (an empty file or /dev/null: no extra CAs).
    local upstream_ca=
    [[ -s $UPSTREAM_CA ]] && upstream_ca=$UPSTREAM_CA
    SAFE_AI_ALLOWLIST= SAFE_AI_UPSTREAM_CA=$upstream_ca \
        safeai proxy "$1" --run-dir "$RUN_DIR" --policy-dir "$POLICY_DIR" --allowlist "$ALLOWLIST"
}

# The stack CA: made at the first start, checked at every start; its certificate goes to
# the volume the sandbox reads. The database of minted certificates starts empty (tmpfs).
prepare_ca() {
    if ! safeai ca init --dir "$CA_DIR" --export "$CA_PUBLIC_DIR" --owner "0:$(id -g proxy)"; then
        log "no usable stack CA in $CA_DIR: the proxy does not start (fail closed)."
        log "Make a new one with: docker compose run --rm --no-deps proxy safeai ca rotate --dir $CA_DIR --export $CA_PUBLIC_DIR"
        log "(or delete the proxy-ca volume); then: docker compose up -d"
        return 1
    fi
    rm -rf "$SSL_DB"
    /usr/lib/squid/security_file_certgen -c -s "$SSL_DB" -M 4MB >/dev/null
    chown -R proxy:proxy "$SSL_DB"
}

run() {
    mkdir -p "$RUN_DIR"
    prepare_ca || exit 1
    # Paths in the rendered files point at $RUN_DIR; the live files are links through
    # current/, which `safeai proxy` swaps.
    local f
    for f in squid.conf dnsmasq.conf dnsmasq.servers errors; do
        ln -sfn "current/$f" "$RUN_DIR/$f"
    done
    if ! render render; then
        log "the config could not be rendered (the allowlist, or a credential's secret, above): the proxy does not start, so the sandbox has no egress (fail closed). Fix it and run: docker compose up -d proxy"
        exit 1
    fi

    # Where the host's published SSH port leads: the proxy's address on the external
    # network (the one with the default route).
    local ssh_address
    ssh_address=$(safeai proxy ssh-address) || exit 1

    # Squid's logs: pipes it can write as its own user (it cannot reopen the container's
    # stdout or stderr). Its access log and dnsmasq's query log (its stderr) go through
    # the tap, which writes the decision log to stdout and to $EVENTS; Squid's cache log
    # (warnings, errors, reconfigures) is copied to stderr. Opened read-write by the
    # readers, so a Squid reconfigure (which reopens logs) is no EOF. Owned by proxy
    # (Squid writes them), group root: this script has no CAP_DAC_OVERRIDE.
    local pipe
    for pipe in access cache dns; do
        rm -f "$RUN_DIR/$pipe.pipe"
        mkfifo -m 0660 "$RUN_DIR/$pipe.pipe"
        chown proxy:root "$RUN_DIR/$pipe.pipe"
    done
    SAFE_AI_ALLOWLIST= safeai proxy tap --squid "$RUN_DIR/access.pipe" --dnsmasq "$RUN_DIR/dns.pipe" \
        --file "$EVENTS" --max-bytes "$EVENTS_MAX_BYTES" --allowlist "$ALLOWLIST" &
    local tap_pid=$!
    cat <>"$RUN_DIR/cache.pipe" >&2 &
    local cache_log_pid=$!

    dnsmasq --keep-in-foreground --conf-file="$RUN_DIR/dnsmasq.conf" \
        --pid-file="$RUN_DIR/dnsmasq.pid" --user=nobody --group=nogroup 2<>"$RUN_DIR/dns.pipe" &
    local dnsmasq_pid=$!
    # The SSH forwarder: as nobody (2222 needs no privilege), listening only on the
    # address the host's published port leads to, out of the sandbox's reach.
    setpriv --reuid=nobody --regid=nogroup --clear-groups \
        socat "TCP-LISTEN:2222,bind=$ssh_address,fork,reuseaddr,max-children=$SSH_MAX_CONNECTIONS" \
        "TCP:$SSH_TARGET" &
    local socat_pid=$!
    echo "$socat_pid" >"$RUN_DIR/socat.pid"
    log "SSH forwarder on $ssh_address:2222"
    # -N: no daemon, so this script is Squid's parent and sees it exit.
    squid -N -f "$RUN_DIR/squid.conf" &
    local squid_pid=$!

    local all="$squid_pid $dnsmasq_pid $socat_pid $tap_pid $cache_log_pid"
    # shellcheck disable=SC2086 # the pids, one word each
    trap 'log "stopping"; kill -TERM $all 2>/dev/null; wait; exit 0' TERM INT
    local status=0
    # shellcheck disable=SC2086
    wait -n $all || status=$?
    for name in squid dnsmasq socat tap cache_log; do
        local var=${name}_pid
        if ! kill -0 "${!var}" 2>/dev/null; then
            log "$name exited (status $status): stopping the proxy so that it restarts whole"
        fi
    done
    # shellcheck disable=SC2086
    kill -TERM $all 2>/dev/null || true
    exit "$(( status == 0 ? 1 : status ))"
}

reload() {
    render reload
}

health() {
    local pid
    for pidfile in squid.pid dnsmasq.pid socat.pid; do
        pid=$(cat "$RUN_DIR/$pidfile" 2>/dev/null) || { echo "no $pidfile"; exit 1; }
        kill -0 "$pid" 2>/dev/null || { echo "${pidfile%.pid} is not running"; exit 1; }
    done
    # Squid answers on its internal address (a request without a host: 400 is an answer).
    exec 3<>"/dev/tcp/${SAFE_AI_PROXY_IP:-172.30.42.2}/3128"
    printf 'GET / HTTP/1.0\r\n\r\n' >&3
    head -c 12 <&3 | grep -q '^HTTP/' || { echo "squid does not answer"; exit 1; }
}

case ${1:-run} in
    run) run ;;
    reload) reload ;;
    health) health ;;
    *) echo "usage: safeai-proxy run|reload|health" >&2; exit 2 ;;
esac
