# SPDX-License-Identifier: MIT
"""RFC 8935 push delivery: the daemon registers a push stream with a bearer secret, the
transmitter POSTs each SET to the daemon's HTTPS listener (in the unprivileged worker), and
the seed scenario works as it does over poll. Invalid SETs get 400 with an RFC 8935 error;
requests without the secret get 401; oversized or malformed requests are refused early. One
peer cannot hold the listener's connection slots, and refused requests cannot flood the log."""

import http.client
import json
import os
import select
import socket
import ssl
import time

from pam_support import PAM_PERM_DENIED, PAM_SUCCESS, run_pam
import support
from support import wait_for

PUSH = "urn:ietf:rfc:8935"
PATH = "/ssf/events"
MAX_CONNECTIONS = 32  # PUSH_MAX_CONNECTIONS
MAX_PER_PEER = 8      # PUSH_MAX_PER_PEER
LOG_BURST = 10        # PUSH_LOG_BURST (per PUSH_LOG_INTERVAL_USEC, 10 s)

RULES = support.LOGOUT_HIGH_RULES


class Push:
    """A daemon with delivery = push on 127.0.0.1:<port>, and a client for its listener."""

    def __init__(self, daemon_factory, transmitter, tmp_path, rules=RULES):
        self.ca, cert, key = support.push_tls(tmp_path / "push-tls")
        self.key = key
        self.port = support.free_port()
        self.url = f"https://127.0.0.1:{self.port}{PATH}"
        transmitter.configure(push_ca=self.ca)
        self.transmitter = transmitter
        self.daemon = daemon_factory(rules=rules, transmitter_opts={
            "delivery": "push", "push_listen": f"127.0.0.1:{self.port}", "push_url": self.url,
            "push_cert": cert, "push_key": key, "poll_wait": None})
        self.stream = wait_for(self._push_stream, 20, "a push stream on the transmitter")

    def _push_stream(self):
        for s in self.transmitter.streams():
            if s["delivery"].get("method") == PUSH:
                return s
        return None

    def context(self):
        return ssl.create_default_context(cafile=self.ca)

    def post(self, body, authorization=None, headers=None, method="POST", path=PATH):
        """One request with http.client; returns (status, headers, body bytes)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(),
                                           timeout=20)
        try:
            h = {"Content-Type": "application/secevent+jwt"}
            if authorization is not None:
                h["Authorization"] = authorization
            h.update(headers or {})
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()


def pam_account(tmp_path, daemon, user):
    line = f"account required {{module}} socket={daemon.socket} snapshot={daemon.snapshot}"
    return run_pam(tmp_path, [line], user, env=daemon.nss_env())


def listener_pids(port):
    """Pids of processes holding the TCP socket listening on 127.0.0.1:port."""
    inodes = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                inodes.add(inode)
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                target = os.readlink(f"/proc/{entry}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    pids.add(int(entry))
        except OSError:
            continue
    return pids


def test_push_stream_and_seed_scenario(daemon_factory, transmitter, logind, users, tmp_path):
    p = Push(daemon_factory, transmitter, tmp_path)
    d = p.daemon
    delivery = p.stream["delivery"]
    assert delivery["endpoint_url"] == p.url
    auth = delivery.get("authorization_header", "")
    assert auth.startswith("Bearer ") and len(auth) > len("Bearer ") + 40, delivery

    alice, bob = users.uid("alice"), users.uid("bob")
    logind.add_session("c1", alice, "alice", remote=True, service="sshd")
    logind.add_session("c2", alice, "alice", remote=False, service="su-l")
    logind.add_session("c3", bob, "bob", remote=True, service="sshd")
    jti = transmitter.send_event("device-compliance-change", email="alice@example.com",
                                 payload={"previous_status": "compliant",
                                          "current_status": "not-compliant"})
    transmitter.wait_acked(jti)
    results = [r for r in transmitter.acks()["push_results"] if r["jti"] == jti]
    assert results and results[-1]["status"] == 202, results

    logind.wait_terminated("c1")
    logind.wait_terminated("c2")
    assert sorted(logind.terminated()) == ["c1", "c2"]
    assert [s[0] for s in logind.sessions()] == ["c3"]
    risk = d.ctl("risk", "alice")
    assert risk["level"] == "high"
    assert risk["detections"][0]["jti"] == jti
    assert pam_account(tmp_path, d, "alice").code == PAM_PERM_DENIED
    assert pam_account(tmp_path, d, "bob").code == PAM_SUCCESS

    # The daemon reports the push stream, and the secret appears neither there nor in its log.
    secret = auth[len("Bearer "):]
    st = d.ctl("stream")
    assert secret not in json.dumps(st)
    assert PUSH in json.dumps(st)
    assert secret not in d.log()

    # `ssfctl verify`: requested at the verification endpoint, the SET arrives by push.
    out = d.ctl("verify", check=False)
    assert out[0] == 0, out

    # A restart keeps the stream and the secret.
    d.stop()
    d.start()
    wait_for(lambda: "Using stream" in d.log(), 20, "the restarted daemon to reuse the stream")
    streams = [s for s in transmitter.streams() if s["delivery"].get("method") == PUSH]
    assert len(streams) == 1 and streams[0]["delivery"]["authorization_header"] == auth
    j2 = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(j2)
    assert d.ctl("risk", "bob")["level"] == "high"


def test_push_tampered_set_gets_400_invalid_key(daemon_factory, transmitter, logind, users,
                                                 tmp_path):
    p = Push(daemon_factory, transmitter, tmp_path)
    logind.add_session("c1", users.uid("alice"), "alice")
    bad = transmitter.send_event("device-compliance-change", email="alice@example.com",
                                 tamper="signature")
    err = transmitter.wait_set_err(bad)
    assert err["err"] == "invalid_key", err
    assert isinstance(err.get("description"), str)
    assert [r["status"] for r in transmitter.acks()["push_results"] if r["jti"] == bad] == [400]
    assert p.daemon.ctl("risk", "alice")["level"] == "none"
    assert logind.terminated() == []
    assert p.daemon.ctl("history", "alice")["entries"] == []
    # Signed, but with a jti the daemon could not record: 400, not a 503 retried forever.
    odd = transmitter.send_event("session-revoked", email="alice@example.com",
                                 claims={"jti": "ctl\tjti"})
    assert transmitter.wait_set_err(odd)["err"] == "invalid_request"
    assert [r["status"] for r in transmitter.acks()["push_results"] if r["jti"] == odd] == [400]
    # The stream still works.
    good = transmitter.send_event("session-revoked", email="alice@example.com")
    transmitter.wait_acked(good)
    assert p.daemon.ctl("risk", "alice")["level"] == "high"


def test_push_requires_the_secret(daemon_factory, transmitter, logind, users, tmp_path):
    p = Push(daemon_factory, transmitter, tmp_path)
    auth = p.stream["delivery"]["authorization_header"]
    # Hold deliveries so that we hold a valid, undelivered SET.
    transmitter.set_stream_status("paused")
    out = transmitter.send_event_full("session-revoked", email="carol@example.com")
    token = out["token"].encode()

    for header in (None, "Bearer wrong", "Bearer " + auth[len("Bearer "):-1] + "x",
                   "Basic " + auth[len("Bearer "):], auth + "x"):
        status, headers, body = p.post(token, authorization=header)
        assert status == 401, (header, status, body)
        assert headers.get("WWW-Authenticate", "").startswith("Bearer"), headers
    assert p.daemon.ctl("risk", "carol")["level"] == "none"
    assert p.daemon.ctl("history", "carol")["entries"] == []

    # With the secret (any case of the scheme name) it is accepted: 202, empty body.
    status, headers, body = p.post(token, authorization="bearer " + auth[len("Bearer "):],
                                   headers={"Content-Type": "application/jwt"})
    assert (status, body) == (202, b""), (status, body)
    assert "Connection" not in headers, headers  # HTTP/1.1: the connection is kept
    assert p.daemon.ctl("risk", "carol")["level"] == "high"
    # Again: a duplicate, still 202, applied once.
    assert p.post(token, authorization=auth)[0] == 202
    assert len(p.daemon.ctl("history", "carol")["entries"]) == 1
    transmitter.set_stream_status("enabled")
    transmitter.wait_acked(out["jti"])


def test_push_refuses_bad_requests(daemon_factory, transmitter, users, tmp_path):
    p = Push(daemon_factory, transmitter, tmp_path)
    auth = p.stream["delivery"]["authorization_header"]

    # Oversized: refused from the head, before any body is read.
    conn = http.client.HTTPSConnection("127.0.0.1", p.port, context=p.context(), timeout=20)
    conn.putrequest("POST", PATH)
    conn.putheader("Content-Type", "application/secevent+jwt")
    conn.putheader("Authorization", auth)
    conn.putheader("Content-Length", str(64 * 1024 + 1))
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413
    conn.close()

    status, _, body = p.post(b"x" * (64 * 1024 + 1), authorization=auth)
    assert status == 413, (status, body)
    assert p.post(b"", authorization=auth, method="GET")[0] == 405
    assert p.post(b"x", authorization=auth, path="/elsewhere")[0] == 404
    status, _, body = p.post(b"not a jwt", authorization=auth)
    assert status == 400
    assert json.loads(body)["err"] == "invalid_request", body

    # Chunked (no Content-Length) is refused.
    conn = http.client.HTTPSConnection("127.0.0.1", p.port, context=p.context(), timeout=20)
    conn.request("POST", PATH, body=iter([b"abc"]), headers={"Authorization": auth},
                 encode_chunked=True)
    assert conn.getresponse().status == 400
    conn.close()

    # A client that never finishes its request is dropped; others are still served.
    raw = socket.create_connection(("127.0.0.1", p.port))
    try:
        tls = p.context().wrap_socket(raw, server_hostname="127.0.0.1")
        tls.sendall(b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n")
        assert p.post(b"x", authorization=auth, path="/elsewhere")[0] == 404
    finally:
        raw.close()


def test_push_one_peer_cannot_hold_the_listener(daemon_factory, transmitter, logind, users,
                                                 tmp_path):
    """Idle connections from one address (127.0.0.2; the transmitter pushes from 127.0.0.1),
    more than the listener takes at all: at most MAX_PER_PEER stay open, the others are closed
    at once, and the transmitter's SETs still get through while those are held."""
    p = Push(daemon_factory, transmitter, tmp_path)
    d = p.daemon
    wait_for(lambda: "Receiving security events from" in d.log(), 20, "the push stream set up")
    idle = []
    try:
        for _ in range(MAX_CONNECTIONS + MAX_PER_PEER):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            idle.append(s)
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", p.port))

        # The ones over the limit are closed without a TLS handshake: EOF (or a reset) well
        # before the 10 s handshake timeout. We send nothing, so nothing else closes them.
        closed = set()
        deadline = time.monotonic() + 5
        while len(closed) < len(idle) - MAX_PER_PEER and time.monotonic() < deadline:
            ready, _, _ = select.select([s for s in idle if s not in closed], [], [], 0.2)
            for s in ready:
                try:
                    data = s.recv(1)
                except ConnectionResetError:
                    data = b""
                assert data == b"", data
                closed.add(s)
        held = [s for s in idle if s not in closed]
        assert len(held) <= MAX_PER_PEER, (len(held), len(closed))

        # Meanwhile the transmitter pushes a SET: accepted (202) and applied...
        jti = transmitter.send_event("session-revoked", email="bob@example.com")
        transmitter.wait_acked(jti)
        results = [r for r in transmitter.acks()["push_results"] if r["jti"] == jti]
        assert results and results[-1]["status"] == 202, results
        assert d.ctl("risk", "bob")["level"] == "high"
        # ...while the idle connections that were let in are still open (not timed out).
        ready, _, _ = select.select(held, [], [], 0)
        assert ready == [], "idle connections were dropped before the SET got through"
    finally:
        for s in idle:
            s.close()
    log = d.log()
    refused = [line for line in log.splitlines()
               if "Push connection from 127.0.0.2 refused" in line]
    assert 1 <= len(refused) <= LOG_BURST, refused
    assert "Push connection from 127.0.0.1 refused" not in log


def test_push_refused_requests_do_not_flood_the_log(daemon_factory, transmitter, users,
                                                     tmp_path):
    """50 requests with a wrong token: each gets 401, but only LOG_BURST warnings are logged,
    then (once the 10 s interval is over) one line with the number suppressed."""
    p = Push(daemon_factory, transmitter, tmp_path)
    d = p.daemon
    wait_for(lambda: "Receiving security events from" in d.log(), 20, "the push stream set up")
    start = len(d.log())
    for _ in range(50):
        status, _, body = p.post(b"x.y.z", authorization="Bearer wrong")
        assert status == 401, (status, body)

    def lines():
        return d.log()[start:].splitlines()

    def unauthorized():
        return [line for line in lines()
                if "without the stream's authorization, refused" in line]

    assert len(unauthorized()) == LOG_BURST, unauthorized()
    summary = f"{50 - LOG_BURST} more push requests without the stream's authorization " \
              "suppressed"
    wait_for(lambda: any(summary in line for line in lines()), 20, "the suppressed count")
    warnings = [line for line in lines() if ": warning: " in line]
    assert len(warnings) <= LOG_BURST + 1, warnings
    # The debug line of each answer is limited as well.
    answers = [line for line in lines() if ": HTTP 401" in line]
    assert len(answers) <= LOG_BURST, answers
    assert len(unauthorized()) == LOG_BURST


def test_push_listener_runs_unprivileged(daemon_factory, transmitter, users, tmp_path):
    p = Push(daemon_factory, transmitter, tmp_path)
    pids = wait_for(lambda: listener_pids(p.port), 10, "the push listener's process")
    assert p.daemon.proc.pid not in pids
    for pid in pids:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            assert b"--network-worker" in f.read()
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        assert set(fields["Uid"].split()) == {str(users.uid("ssf-sessiond"))}, fields["Uid"]
        assert "0" not in fields["Gid"].split() and fields["Groups"].split() == []
        assert fields["NoNewPrivs"].strip() == "1"
        assert fields["Seccomp"].strip() == "2"  # its own filter (receiver/sandbox.c)
    # Delivery works under the filter, and no worker died of it.
    jti = p.transmitter.send_event("session-revoked", email="bob@example.com")
    p.transmitter.wait_acked(jti)
    assert p.daemon.ctl("risk", "bob")["level"] == "high"
    assert listener_pids(p.port) == pids
    assert "killed by signal" not in p.daemon.log()


def test_push_check_config_and_reload(daemon_factory, transmitter, users, tmp_path):
    p = Push(daemon_factory, transmitter, tmp_path)
    d = p.daemon
    assert d.check_config().returncode == 0
    wait_for(lambda: "Receiving security events from" in d.log(), 20, "the push stream set up")
    # SIGHUP: a new worker takes the listener over and events still flow.
    d.signal(1)
    wait_for(lambda: d.log().count("Receiving security events from") >= 2, 30,
             "the new worker to serve the push stream")
    j = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(j)
    assert d.ctl("risk", "bob")["level"] == "high"
    # --check-config: the push files must be readable.
    missing = str(tmp_path / "no-such-key.pem")
    d.write_config(d.config_text.replace(f"push_key = {p.key}", f"push_key = {missing}"))
    cp = d.check_config()
    assert cp.returncode != 0
    assert "push_key" in cp.stdout + cp.stderr, cp


def test_poll_stream_is_switched_to_push(daemon_factory, transmitter, users, tmp_path):
    """A remembered poll stream is updated (PATCH) to push delivery with our secret."""
    d = daemon_factory(rules=RULES)
    (poll_stream,) = transmitter.wait_stream()
    wait_for(lambda: "Created stream" in d.log(), 20, "the poll stream to be remembered")
    d.stop()
    ca, cert, key = support.push_tls(tmp_path / "push-tls")
    port = support.free_port()
    url = f"https://127.0.0.1:{port}{PATH}"
    transmitter.configure(push_ca=ca)
    d.write_config(d.config_text.replace(
        "delivery = poll",
        f"delivery = push\npush_listen = 127.0.0.1:{port}\npush_url = {url}\n"
        f"push_cert = {cert}\npush_key = {key}"))
    d.start()

    def switched():
        (s,) = transmitter.streams()
        return s["delivery"].get("method") == PUSH and s
    s = wait_for(switched, 20, "the stream to be switched to push")
    assert s["stream_id"] == poll_stream["stream_id"]
    assert s["delivery"]["endpoint_url"] == url
    assert s["delivery"]["authorization_header"].startswith("Bearer ")
    j = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(j)
    assert d.ctl("risk", "bob")["level"] == "high"


def test_push_receiver_keeps_an_idle_stream_active(daemon_factory, transmitter, users,
                                                    tmp_path):
    """SSF 8.1.1 inactivity_timeout: a push receiver gets SETs without calling the transmitter,
    so it reads the stream status at least every inactivity_timeout / 2; the transmitter
    pauses a stream left alone for longer (shown by stopping the daemon)."""
    transmitter.configure(inactivity_timeout=4)
    p = Push(daemon_factory, transmitter, tmp_path)
    assert p.stream["inactivity_timeout"] == 4
    reads = transmitter.acks()["counters"].get("status_reads", 0)
    time.sleep(9)  # over twice the timeout, with no SET delivered
    counters = transmitter.acks()["counters"]
    assert counters.get("status_reads", 0) >= reads + 3, counters
    assert "inactivity_pauses" not in counters, counters
    (s,) = [s for s in transmitter.streams() if s["stream_id"] == p.stream["stream_id"]]
    assert s["status"] == "enabled", s
    j = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(j)

    # Without the daemon, nobody keeps it active.
    assert p.daemon.stop(timeout=5) == 0
    wait_for(lambda: transmitter.acks()["counters"].get("inactivity_pauses"), 15,
             "the transmitter to pause the idle stream")
    (s,) = [s for s in transmitter.streams() if s["stream_id"] == p.stream["stream_id"]]
    assert (s["status"], s.get("reason")) == ("paused", "inactivity"), s


def test_push_receiver_notices_a_deleted_stream_and_a_status_change(daemon_factory, transmitter,
                                                                     users, tmp_path):
    """A push receiver hears nothing when its stream is deleted or paused at the transmitter
    without a stream-updated event; its periodic status read notices both."""
    transmitter.configure(inactivity_timeout=4)
    p = Push(daemon_factory, transmitter, tmp_path)
    d = p.daemon
    old = p.stream["stream_id"]
    wait_for(lambda: d.ctl("status")["stream"]["stream_id"] == old, 20, "the daemon's stream")

    code, _, out = transmitter.request("POST", "/ssf/status",
                                       {"stream_id": old, "status": "paused",
                                        "reason": "maintenance"})
    assert code == 200, out
    wait_for(lambda: d.ctl("status")["stream"]["status"] == "paused", 15,
             "the daemon to see the stream paused")
    assert f"Transmitter reports stream '{old}' paused: maintenance" in d.log()
    code, _, out = transmitter.request("POST", "/ssf/status",
                                       {"stream_id": old, "status": "enabled"})
    assert code == 200, out
    wait_for(lambda: d.ctl("status")["stream"]["status"] == "enabled", 15,
             "the daemon to see the stream enabled again")

    code, _, _ = transmitter.request("DELETE", f"/ssf/stream?stream_id={old}")
    assert code == 204
    new = wait_for(lambda: [s["stream_id"] for s in transmitter.streams()
                            if s["delivery"].get("method") == PUSH], 15,
                   "the daemon to create a new push stream")
    assert new != [old]
    wait_for(lambda: d.ctl("status")["stream"]["stream_id"] == new[0], 15,
             "the daemon to report the new stream")
    assert f"Stream '{old}' is gone at the transmitter" in d.log()
    j = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(j)
    assert d.ctl("risk", "bob")["level"] == "high"


def test_push_keeps_connections_alive(daemon_factory, transmitter, users, tmp_path):
    """HTTP/1.1 keep-alive: several SETs over one TLS connection; a request that says
    Connection: close gets its answer and the connection ends."""
    p = Push(daemon_factory, transmitter, tmp_path)
    auth = p.stream["delivery"]["authorization_header"]
    transmitter.set_stream_status("paused")  # we push ourselves
    tokens = [transmitter.send_event_full("session-established", email=f"{u}@example.com")
              for u in ("alice", "bob", "carol")]
    conn = http.client.HTTPSConnection("127.0.0.1", p.port, context=p.context(), timeout=20)
    try:
        sock = None
        for out in tokens:
            conn.request("POST", PATH, body=out["token"].encode(),
                         headers={"Authorization": auth,
                                  "Content-Type": "application/secevent+jwt"})
            r = conn.getresponse()
            assert (r.status, r.read()) == (202, b"")
            assert r.getheader("Connection") is None
            assert sock is None or conn.sock is sock, "the connection was not kept"
            sock = conn.sock
    finally:
        conn.close()
    # Connection: close: the answer says so, and the daemon ends the connection (EOF).
    body = tokens[0]["token"].encode()
    with socket.create_connection(("127.0.0.1", p.port), timeout=20) as raw:
        with p.context().wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: "
                        + auth.encode() + b"\r\nConnection: close\r\nContent-Length: "
                        + str(len(body)).encode() + b"\r\n\r\n" + body)
            data = b""
            while True:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                data += chunk
    assert data.startswith(b"HTTP/1.1 202 "), data
    assert b"\r\nConnection: close\r\n" in data, data
    for out in tokens:
        entries = p.daemon.ctl("history")["entries"]
        assert [e for e in entries if e["jti"] == out["jti"]], out["jti"]


def test_push_listener_full_of_idle_connections(daemon_factory, transmitter, logind, users,
                                                 tmp_path):
    """Four addresses (127.0.0.2-5) each hold as many idle connections as one peer may:
    all 32 slots. The listener keeps accepting: the transmitter's connection (from 127.0.0.1)
    evicts the idle connection that waited longest, and its SET is applied."""
    p = Push(daemon_factory, transmitter, tmp_path)
    d = p.daemon
    wait_for(lambda: "Receiving security events from" in d.log(), 20, "the push stream set up")
    idle = []
    try:
        for host in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"):
            for _ in range(MAX_PER_PEER):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                idle.append(s)
                s.bind((host, 0))
                s.connect(("127.0.0.1", p.port))
        assert len(idle) == MAX_CONNECTIONS
        # None of them is refused (each peer is within its limit): they hold every slot.
        ready, _, _ = select.select(idle, [], [], 0.5)
        assert ready == [], "a connection within the limits was closed"
        # Idle for longer than the eviction threshold (1 s), the transmitter pushes.
        time.sleep(1.2)
        logind.add_session("c9", users.uid("bob"), "bob")
        jti = transmitter.send_event("session-revoked", email="bob@example.com")
        transmitter.wait_acked(jti)
        results = [r for r in transmitter.acks()["push_results"] if r["jti"] == jti]
        assert results and results[-1]["status"] == 202, results
        assert d.ctl("risk", "bob")["level"] == "high"
        logind.wait_terminated("c9")
        # Some idle connections were closed to make room, not all of them.
        ready, _, _ = select.select(idle, [], [], 0)
        assert 1 <= len(ready) < len(idle), len(ready)
    finally:
        for s in idle:
            s.close()
    assert "Push listener full: closed the connection from 127.0.0." in d.log()
    assert "Push connection from 127.0.0.1 refused" not in d.log()


def test_push_served_during_a_slow_management_call(daemon_factory, transmitter, users,
                                                   tmp_path):
    """The stream status endpoint takes 8 s to answer; a SET pushed while the daemon waits
    for it is answered 202 and applied before that call returns (all times measured by the
    transmitter)."""
    transmitter.configure(inactivity_timeout=20)  # the daemon checks the stream every 10 s
    p = Push(daemon_factory, transmitter, tmp_path)
    d = p.daemon
    wait_for(lambda: "Receiving security events from" in d.log(), 20, "the push stream set up")
    transmitter.configure(status_delay=8)
    mark = transmitter.acks()["counters"].get("GET /ssf/status", 0)
    wait_for(lambda: transmitter.acks()["counters"].get("GET /ssf/status", 0) > mark, 30,
             "a (slow) stream status request")
    jti = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(jti)
    assert d.ctl("risk", "bob")["level"] == "high"
    transmitter.configure(status_delay=0)

    def slow_status():
        return [r for r in transmitter.acks()["requests"]
                if r["path"] == "/ssf/status" and r["done"] - r["time"] >= 7]

    status = wait_for(slow_status, 20, "the slow status call answered")[-1]
    pushed = [r for r in transmitter.acks()["push_results"] if r["jti"] == jti][-1]
    assert pushed["status"] == 202, pushed
    assert status["time"] <= pushed["time"] and pushed["done"] <= status["done"], \
        (status, pushed)


def test_push_rotated_key_gets_503_then_202(daemon_factory, transmitter, logind, users,
                                            tmp_path):
    """A pushed SET signed with a key published after the daemon's last JWKS fetch: 503 with
    a Retry-After while the fetch is rate-limited, never 400; 202 and applied once the JWKS
    may be fetched again (30 s after the last fetch)."""
    p = Push(daemon_factory, transmitter, tmp_path)
    d = p.daemon
    wait_for(lambda: "Receiving security events from" in d.log(), 20, "the push stream set up")
    fetches = [r for r in transmitter.acks()["requests"] if r["path"] == "/ssf/jwks.json"]
    first = fetches[0]["time"]
    wait_for(lambda: transmitter.acks()["now"] >= first + 2, 10, "2 s after the JWKS fetch",
             interval=0.1)
    transmitter.rotate_key()
    jti = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(jti, timeout=50)
    results = [r for r in transmitter.acks()["push_results"] if r["jti"] == jti]
    assert results[-1]["status"] == 202, results
    deferred = results[:-1]
    assert deferred and all(r["status"] == 503 for r in deferred), results
    for r in deferred:
        assert 1 <= int(r["retry_after"]) <= 30, r
    assert jti not in transmitter.acks()["set_errs"]
    assert d.ctl("risk", "bob")["level"] == "high"
    fetches = [r for r in transmitter.acks()["requests"] if r["path"] == "/ssf/jwks.json"]
    assert len(fetches) == 2 and fetches[1]["time"] >= first + 30 - 0.05, fetches
