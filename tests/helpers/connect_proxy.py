#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A small HTTP CONNECT proxy for tests: it tunnels TCP to loopback targets and records
every request it gets, so a test can tell which connections went through it.

Usable in-process (class ConnectProxy: start(), stop(), .connects, .refused, .port) or as a
command:

    connect_proxy.py --listen 127.0.0.1:0 --log FILE [--tls-cert CERT --tls-key KEY]

With --tls-cert/--tls-key it is an HTTPS proxy (the client speaks TLS to the proxy, then its
own TLS to the target inside the tunnel). The command writes one JSON line per request to
the log: {"method", "target", "status"}; first a line {"listening": PORT}.

Only CONNECT to 127.0.0.1, ::1 or localhost is tunnelled (403 otherwise: tests never reach
out); any other method is answered 405. Request headers are recorded by name only (a
Proxy-Authorization or an Authorization header reaching the proxy would show up there).
"""

import argparse
import json
import select
import socket
import ssl
import sys
import threading

ALLOWED_HOSTS = ("127.0.0.1", "::1", "localhost")
MAX_HEAD = 16 * 1024


class ConnectProxy:
    def __init__(self, listen="127.0.0.1:0", tls_cert=None, tls_key=None, log_path=None):
        host, _, port = listen.rpartition(":")
        self.host = host.strip("[]") or "127.0.0.1"
        self.port = int(port)
        self.tls = None
        if tls_cert:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(tls_cert, tls_key)
        self.log_path = log_path
        self.lock = threading.Lock()
        # {"method", "target", "status", "headers", "upstream_port" (the tunnel's local port
        # towards the target, so the target's logs can be matched; None when not tunnelled)}
        self.requests = []
        self.sock = None
        self.stopping = False
        self.thread = None

    @property
    def connects(self):
        """The CONNECT targets ("host:port") that were tunnelled, in order."""
        with self.lock:
            return [r["target"] for r in self.requests
                    if r["method"] == "CONNECT" and r["status"] == 200]

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.host, self.port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._accept_loop, name="connect-proxy", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.stopping = True
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        if self.thread is not None:
            self.thread.join(timeout=5)

    @property
    def upstream_ports(self):
        with self.lock:
            return {r["upstream_port"] for r in self.requests if r["upstream_port"]}

    def _record(self, method, target, status, headers, upstream_port=None):
        r = {"method": method, "target": target, "status": status, "headers": headers,
             "upstream_port": upstream_port}
        with self.lock:
            self.requests.append(r)
            if self.log_path:
                with open(self.log_path, "a") as f:
                    f.write(json.dumps({k: r[k] for k in ("method", "target", "status")}) + "\n")

    def _accept_loop(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        upstream = None
        try:
            conn.settimeout(30)
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
                if len(head) > MAX_HEAD:
                    return
            head, _, rest = head.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            method = parts[0] if parts else ""
            target = parts[1] if len(parts) > 1 else ""
            headers = sorted({ln.split(":", 1)[0].strip().lower() for ln in lines[1:] if ":" in ln})
            if method != "CONNECT":
                self._record(method, target, 405, headers)
                conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            host, _, port = target.rpartition(":")
            host = host.strip("[]")
            if host not in ALLOWED_HOSTS or not port.isdigit():
                self._record(method, target, 403, headers)
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            try:
                upstream = socket.create_connection((host, int(port)), timeout=10)
            except OSError:
                self._record(method, target, 502, headers)
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            self._record(method, target, 200, headers, upstream.getsockname()[1])
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            self._relay(conn, upstream)
        except (OSError, ssl.SSLError):
            pass
        finally:
            for s in (conn, upstream):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass

    def _relay(self, a, b):
        a.settimeout(None)
        b.settimeout(None)
        socks = [a, b]
        while not self.stopping:
            # An SSLSocket may hold decrypted bytes select() cannot see.
            ready = [a] if isinstance(a, ssl.SSLSocket) and a.pending() else []
            if not ready:
                ready, _, _ = select.select(socks, [], [], 1.0)
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)


def main(argv=None):
    p = argparse.ArgumentParser(description="HTTP CONNECT proxy for tests (loopback targets only)")
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--log", required=True, help="JSON lines: one per request")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    a = p.parse_args(argv)
    proxy = ConnectProxy(a.listen, a.tls_cert, a.tls_key, a.log).start()
    with open(a.log, "a") as f:
        f.write(json.dumps({"listening": proxy.port}) + "\n")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
