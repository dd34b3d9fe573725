#!/bin/sh
# safeai-sandbox-health: exits 0 when sshd is running and listening on port 22, which is
# what makes the sandbox usable. Used by the compose healthcheck; quiet in sshd's log
# (it opens no connection).
set -eu

pidfile=/run/sshd.pid
if ! pid=$(cat "$pidfile" 2>/dev/null) || [ -z "$pid" ]; then
    echo "unhealthy: no sshd pid in $pidfile (sshd has not started: see the container log)"
    exit 1
fi
if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != sshd ]; then
    echo "unhealthy: sshd (pid $pid) is not running"
    exit 1
fi
if [ -z "$(ss -Hltn 'sport = :22')" ]; then
    echo "unhealthy: sshd (pid $pid) is running but nothing listens on port 22"
    exit 1
fi
echo "healthy: sshd (pid $pid) listens on port 22"
