#!/usr/bin/env bash
# safeai-proxy: the proxy container's supervisor, reload and health check.
#
#   safeai-proxy run     render the config from the allowlist (fail closed), then run
#                        dnsmasq, the SSH forwarder and Squid; exit non-zero as soon as
#                        any of them dies, so the restart policy brings the whole proxy back
#   safeai-proxy reload  re-render and validate; on success Squid reconfigures and dnsmasq
#                        re-reads its servers file; on failure the running config stays
#   safeai-proxy health  Squid, dnsmasq and the forwarder are alive and Squid answers
set -euo pipefail

RUN_DIR=/run/safe-ai
ALLOWLIST=${SAFE_AI_ALLOWLIST_PATH:-/etc/safe-ai/allowlist.yaml}
CA_DIR=/var/lib/safe-ai/ca
CA_PUBLIC_DIR=/var/lib/safe-ai/ca-public
SSL_DB=/var/spool/squid/ssl_db
UPSTREAM_CA=/etc/safe-ai/upstream-ca.pem
SSH_TARGET=${SAFE_AI_SSH_TARGET:-sandbox:22}
SSH_MAX_CONNECTIONS=${SAFE_AI_SSH_MAX_CONNECTIONS:-32}

log() { echo "safe-ai proxy: $*" >&2; }

# Renders squid.conf, dnsmasq.conf and dnsmasq.servers into $1 and checks squid.conf
# with Squid's own parser. Prints every validation error; changes nothing else.
render_into() {
    local dir=$1
    rm -rf "$dir"
    mkdir -p "$dir"
    # SAFE_AI_ALLOWLIST and SAFE_AI_UPSTREAM_CA name files on the host; in here they are
    # mounted at $ALLOWLIST and $UPSTREAM_CA (an empty file or /dev/null: no extra CAs).
    local upstream_ca=
    [[ -s $UPSTREAM_CA ]] && upstream_ca=$UPSTREAM_CA
    if ! SAFE_AI_ALLOWLIST= SAFE_AI_UPSTREAM_CA=$upstream_ca safeai generate --allowlist "$ALLOWLIST" \
        --out "$dir" --only squid,dnsmasq,dnsmasq-servers,error-pages; then
        return 1
    fi
    local parse
    if ! parse=$(squid -k parse -f "$dir/squid.conf" 2>&1) || grep -qE 'FATAL|ERROR' <<<"$parse"; then
        log "squid rejected the rendered squid.conf:"
        echo "$parse" >&2
        return 1
    fi
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
    # Paths in the rendered files point at $RUN_DIR; the live files are links into current/
    # (made first: Squid's parser checks that the error directory exists).
    local f
    for f in squid.conf dnsmasq.conf dnsmasq.servers errors; do
        ln -sfn "current/$f" "$RUN_DIR/$f"
    done
    if ! render_into "$RUN_DIR/current"; then
        log "the allowlist is invalid: the proxy does not start, so the sandbox has no egress (fail closed). Fix the file and run: docker compose up -d proxy"
        exit 1
    fi
    local conf=$RUN_DIR/current
    log "allowlist: $(grep -c '^server=' "$conf/dnsmasq.servers" || true) domains"

    # Squid's access log: a pipe it can write as its own user, copied to our stdout. Opened
    # read-write by the reader, so a Squid reconfigure (which reopens logs) is no EOF.
    rm -f "$RUN_DIR/access.pipe"
    mkfifo -m 0660 "$RUN_DIR/access.pipe"
    # Owned by proxy (Squid writes it), group root: this script has no CAP_DAC_OVERRIDE.
    chown proxy:root "$RUN_DIR/access.pipe"
    cat <>"$RUN_DIR/access.pipe" &
    local log_pid=$!

    dnsmasq --keep-in-foreground --conf-file="$RUN_DIR/dnsmasq.conf" \
        --pid-file="$RUN_DIR/dnsmasq.pid" --user=nobody --group=nogroup &
    local dnsmasq_pid=$!
    socat "TCP-LISTEN:2222,fork,reuseaddr,max-children=$SSH_MAX_CONNECTIONS" "TCP:$SSH_TARGET" &
    local socat_pid=$!
    echo "$socat_pid" >"$RUN_DIR/socat.pid"
    # -N: no daemon, so this script is Squid's parent and sees it exit.
    squid -N -f "$RUN_DIR/squid.conf" &
    local squid_pid=$!

    trap 'log "stopping"; kill -TERM $squid_pid $dnsmasq_pid $socat_pid $log_pid 2>/dev/null; wait; exit 0' TERM INT
    local status=0
    wait -n "$squid_pid" "$dnsmasq_pid" "$socat_pid" "$log_pid" || status=$?
    for name in squid dnsmasq socat log; do
        local var=${name}_pid
        if ! kill -0 "${!var}" 2>/dev/null; then
            log "$name exited (status $status): stopping the proxy so that it restarts whole"
        fi
    done
    kill -TERM "$squid_pid" "$dnsmasq_pid" "$socat_pid" "$log_pid" 2>/dev/null || true
    exit "$(( status == 0 ? 1 : status ))"
}

reload() {
    local next=$RUN_DIR/next
    if ! render_into "$next"; then
        rm -rf "$next"
        log "reload refused: the running configuration is unchanged"
        exit 1
    fi
    # Swap the directory the live links point into, in one rename.
    rm -rf "$RUN_DIR/previous"
    mv "$RUN_DIR/current" "$RUN_DIR/previous"
    mv "$next" "$RUN_DIR/current"
    squid -k reconfigure -f "$RUN_DIR/squid.conf"
    kill -HUP "$(cat "$RUN_DIR/dnsmasq.pid")"
    rm -rf "$RUN_DIR/previous"
    log "reloaded: $(grep -c '^server=' "$RUN_DIR/dnsmasq.servers" || true) domains"
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
