#!/usr/bin/env python3
"""safeai-dns-relay: answers DNS on 127.0.0.11:53 by asking the proxy, for runtimes where
Docker's embedded resolver at that address cannot be reached.

Docker points the sandbox's /etc/resolv.conf (read-only) at 127.0.0.11 and reaches its
resolver through NAT rules in the container's network namespace. gVisor's network stack
does not use those rules, so under runsc nothing answers there. The entrypoint starts
this relay only then. It forwards each query, unchanged, to the proxy's dnsmasq, the
same server Docker's resolver would have asked: it answers allowlisted names and sinks
every other one, so the relay opens nothing the sandbox could not already send to the
proxy itself.

Usage: safeai-dns-relay [--if-needed] UPSTREAM_IP   (binds as root, then runs as nobody)
  --if-needed  exit at once when something already answers on 127.0.0.11:53 (Docker's
               resolver, under runc)
"""

import os
import pwd
import socket
import sys
import threading

LISTEN = ("127.0.0.11", 53)
TIMEOUT = 5.0
# Queries and connections in flight at once; more are dropped (the client retries), so a
# flood cannot make the relay start threads without end.
IN_FLIGHT = threading.BoundedSemaphore(64)
# A DNS message over UDP is at most 64 KiB; over TCP it carries a 2-byte length prefix.
MAX_MESSAGE = 65535


def log(message):
    print(f"safeai-dns-relay: {message}", file=sys.stderr, flush=True)


def answer_udp(listener, query, client, upstream):
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            out.settimeout(TIMEOUT)
            out.sendto(query, (upstream, 53))
            reply, _ = out.recvfrom(MAX_MESSAGE)
        listener.sendto(reply, client)
    except OSError:
        pass  # the client retries or times out, as with any lost datagram
    finally:
        IN_FLIGHT.release()


def serve_udp(listener, upstream):
    while True:
        query, client = listener.recvfrom(MAX_MESSAGE)
        if IN_FLIGHT.acquire(blocking=False):
            threading.Thread(
                target=answer_udp, args=(listener, query, client, upstream), daemon=True
            ).start()


def pipe(source, sink):
    try:
        while data := source.recv(MAX_MESSAGE):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def answer_tcp(client, upstream):
    try:
        with client, socket.create_connection((upstream, 53), timeout=TIMEOUT) as out:
            client.settimeout(TIMEOUT)
            out.settimeout(TIMEOUT)
            back = threading.Thread(target=pipe, args=(out, client), daemon=True)
            back.start()
            pipe(client, out)
            back.join(TIMEOUT)
    except OSError:
        pass
    finally:
        IN_FLIGHT.release()


def serve_tcp(listener, upstream):
    while True:
        client, _ = listener.accept()
        if IN_FLIGHT.acquire(blocking=False):
            threading.Thread(target=answer_tcp, args=(client, upstream), daemon=True).start()
        else:
            client.close()


def something_answers():
    """Whether a resolver already answers on LISTEN: a query for the root's NS."""
    query = bytes.fromhex("5a1e01000001000000000000") + b"\x00\x00\x02\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(LISTEN)
            s.send(query)
            return s.recv(MAX_MESSAGE)[:2] == query[:2]
        except OSError:
            return False


def main():
    args = sys.argv[1:]
    if_needed = args[:1] == ["--if-needed"]
    if if_needed:
        args = args[1:]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    upstream = args[0]
    try:
        socket.inet_aton(upstream)
    except OSError:
        log(f"not an IPv4 address: {upstream!r}")
        return 2
    if if_needed and something_answers():
        return 0
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(LISTEN)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(LISTEN)
    tcp.listen(64)
    # Port 53 needed root (NET_BIND_SERVICE); nothing else does.
    nobody = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setgid(nobody.pw_gid)
    os.setuid(nobody.pw_uid)
    log(f"answering on {LISTEN[0]}:53 (UDP and TCP) by asking {upstream}:53")
    threading.Thread(target=serve_tcp, args=(tcp, upstream), daemon=True).start()
    serve_udp(udp, upstream)
    return 0


if __name__ == "__main__":
    sys.exit(main())
