"""Stand-in upstream for the end-to-end suite.

GET /            echo: the request line and headers as the body (any other path and
                 method too: POST, PUT, PATCH, DELETE, OPTIONS echo, the body read)
GET /bytes/N     N zero bytes, streamed (throughput figures)
/repo.git/...    a git repository over smart HTTP (clone and push)

HTTP on 80 and 8080, HTTPS on 443 and 8443. The certificate is issued at start by the
suite's test CA, mounted at /test-ca (ca.pem, ca.key); the proxy trusts that CA through
SAFE_AI_UPSTREAM_CA.

MODE=untrusted: HTTPS on 443 only, with a certificate from a CA of its own that nobody
trusts (the proxy must refuse it when it speaks TLS to this server itself).
MODE=raw: not TLS at all on 443: a banner like an SSH server's, then an echo of each line
(for tunnels that carry another protocol).
"""
import http.server
import os
import socketserver
import ssl
import subprocess
import sys
import threading

CERTS = "/certs"
NAMES = ["allowed.test", "*.allowed.test", "*.api.allowed.test", "evil.test", "*.evil.test"]
GIT_ROOT = "/srv/git"


def run(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_certs(own_ca):
    os.makedirs(CERTS, exist_ok=True)
    if own_ca:
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=untrusted e2e CA", "-keyout", f"{CERTS}/ca.key", "-out", f"{CERTS}/ca.pem")
    else:
        for f in ("ca.pem", "ca.key"):
            with open(f"/test-ca/{f}") as src, open(f"{CERTS}/{f}", "w") as dst:
                dst.write(src.read())
    san = ",".join("DNS:" + n for n in NAMES)
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=allowed.test",
        "-keyout", f"{CERTS}/server.key", "-out", f"{CERTS}/server.csr")
    with open(f"{CERTS}/ext.cnf", "w") as f:
        f.write(f"subjectAltName={san}\n")
    run("openssl", "x509", "-req", "-in", f"{CERTS}/server.csr", "-CA", f"{CERTS}/ca.pem",
        "-CAkey", f"{CERTS}/ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", f"{CERTS}/ext.cnf", "-out", f"{CERTS}/server.pem")


def make_repo():
    repo = f"{GIT_ROOT}/repo.git"
    if os.path.exists(repo):
        return
    run("git", "init", "-q", "--bare", "-b", "main", repo)
    run("git", "-C", repo, "config", "http.receivepack", "true")
    seed = "/tmp/seed"
    run("git", "init", "-q", "-b", "main", seed)
    with open(f"{seed}/README", "w") as f:
        f.write("seed\n")
    run("git", "-C", seed, "add", "README")
    run("git", "-C", seed, "-c", "user.name=seed", "-c", "user.email=seed@e2e.invalid",
        "commit", "-q", "-m", "seed")
    run("git", "-C", seed, "push", "-q", repo, "main")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("upstream: %s %s\n" % (self.headers.get("Host", "-"), fmt % args))

    def send_body(self, body, ctype="text/plain"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/repo.git"):
            return self.git()
        if self.path.startswith("/bytes/"):
            n = int(self.path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = bytes(65536)
            while n > 0:
                k = min(n, len(chunk))
                self.wfile.write(chunk[:k])
                n -= k
            return
        self.send_body((self.requestline + "\n" + str(self.headers)).encode())

    def do_POST(self):
        if self.path.startswith("/repo.git"):
            return self.git()
        self.echo()

    def echo(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_body((self.requestline + "\n" + str(self.headers)).encode())

    do_PUT = do_PATCH = do_DELETE = do_OPTIONS = echo

    def git(self):
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = dict(os.environ,
                   GIT_PROJECT_ROOT=GIT_ROOT, GIT_HTTP_EXPORT_ALL="1",
                   REQUEST_METHOD=self.command, PATH_INFO=path, QUERY_STRING=query,
                   CONTENT_TYPE=self.headers.get("Content-Type", ""),
                   CONTENT_LENGTH=str(len(body)), REMOTE_USER="e2e", REMOTE_ADDR="0.0.0.0")
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        out = subprocess.run(["git", "http-backend"], input=body, env=env,
                             stdout=subprocess.PIPE, check=False).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode().split("\r\n"):
            if not line:
                continue
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            else:
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(port, tls):
    server = Server(("0.0.0.0", port), Handler)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f"{CERTS}/server.pem", f"{CERTS}/server.key")
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


class Raw(socketserver.StreamRequestHandler):
    def handle(self):
        sys.stderr.write("raw: connection from %s\n" % self.client_address[0])
        sys.stderr.flush()
        self.wfile.write(b"SSH-2.0-e2e-raw\r\n")
        for line in self.rfile:
            self.wfile.write(b"echo: " + line)


class RawServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


mode = os.environ.get("MODE", "tls")
if mode == "raw":
    threading.Thread(target=RawServer(("0.0.0.0", 443), Raw).serve_forever, daemon=True).start()
elif mode == "untrusted":
    make_certs(own_ca=True)
    threading.Thread(target=serve, args=(443, True), daemon=True).start()
else:
    make_certs(own_ca=False)
    make_repo()
    for port, tls in [(80, False), (8080, False), (443, True), (8443, True)]:
        threading.Thread(target=serve, args=(port, tls), daemon=True).start()
sys.stderr.write("upstream: ready\n")
threading.Event().wait()
