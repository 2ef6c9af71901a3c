# SPDX-License-Identifier: MIT
"""Several push transmitters on the one listener: one network worker owns it and serves each
push transmitter with its own verifier, stream and channel to root; a POST is routed by its
path (each push_url has its own), must carry that transmitter's Authorization (401) and its
`iss` (400 invalid_issuer); an unknown path is 404. One transmitter's hanging JWKS endpoint
holds up neither the other's SETs nor its setup."""

import base64
import http.client
import json
import os
import signal
import ssl
import threading
import time

import support
from support import wait_for

PUSH = "urn:ietf:rfc:8935"
OKTA_AUTH = "SSWS s3cret-value-of-the-admin"
JWKS_REFRESH_MIN_SEC = 30  # JWKS_REFRESH_MIN_USEC: one JWKS fetch per transmitter per 30 s


class TwoPush:
    """The unnamed transmitter with a managed push stream (the listener's keys in its section)
    and "okta" with stream = none, both on one listener at their own paths."""

    def __init__(self, daemon_factory, transmitter, transmitter_factory, tmp_path):
        self.okta = okta = transmitter_factory("okta")
        self.ca, cert, key = support.push_tls(tmp_path / "push-tls")
        self.port = support.free_port()
        self.url_a = f"https://127.0.0.1:{self.port}/ssf/default"
        self.url_b = f"https://127.0.0.1:{self.port}/ssf/okta"
        auth_file = support.write_secret(tmp_path / "okta-push-auth", OKTA_AUTH)
        transmitter.configure(push_ca=self.ca)
        okta.configure(push_ca=self.ca)
        self.transmitter = transmitter
        # okta names only what is its own: the listener is the first push transmitter's.
        section = support.static_push_section(okta, "okta", self.url_b, auth_file)
        self.daemon_factory = daemon_factory
        self.kw = dict(rules=support.RECORD_RULES, extra=section, transmitter_opts={
            "delivery": "push", "push_listen": f"127.0.0.1:{self.port}", "push_url": self.url_a,
            "push_cert": cert, "push_key": key, "poll_wait": None})
        self.daemon = None

    def start(self, wait=True):
        self.daemon = d = self.daemon_factory(**self.kw)
        if wait:
            self.wait_ready()
        return d

    def wait_ready(self):
        def ready():
            ts = self.daemon.ctl("transmitters")["transmitters"]
            return all(t["status"] == "enabled" for t in ts)
        wait_for(ready, 30, "both push transmitters set up")
        wait_for(self._push_stream, 20, "the managed push stream on the transmitter")
        # The admin registers okta's push URL and Authorization at okta.
        self.okta.control("POST", "static-push", {"endpoint_url": self.url_b,
                                                  "authorization_header": OKTA_AUTH})

    def _push_stream(self):
        return any(s["delivery"].get("method") == PUSH for s in self.transmitter.streams())

    def post(self, path, body, authorization=None, timeout=20):
        ctx = ssl.create_default_context(cafile=self.ca)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=timeout)
        try:
            h = {"Content-Type": "application/secevent+jwt"}
            if authorization is not None:
                h["Authorization"] = authorization
            conn.request("POST", path, body=body, headers=h)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def transmitter_of(self, user, jti):
        return support.history_transmitters(self.daemon, user, jti)


def b64(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def test_two_push_transmitters_routed_by_path(daemon_factory, transmitter, transmitter_factory,
                                              tmp_path):
    p = TwoPush(daemon_factory, transmitter, transmitter_factory, tmp_path)
    d = p.start()
    okta = p.okta

    # One worker serves both push transmitters (they share the listener), a channel each.
    workers = [line for line in d.log().splitlines() if "Started network worker" in line]
    assert any("'default'" in w for w in workers) and any("'okta'" in w for w in workers), workers
    pids = {w.split("Started network worker ")[1].split()[0] for w in workers}
    assert len(pids) == 1, workers

    # Each transmitter's SET, delivered to its own path, applies with its own name in history.
    ja, jb = support.each_transmitter_applies(d, [(transmitter, "alice", "default"),
                                                  (okta, "bob", "okta")])
    assert [r["status"] for r in transmitter.acks()["push_results"] if r["jti"] == ja] == [202]
    assert [r["status"] for r in okta.acks()["push_results"] if r["jti"] == jb] == [202]

    # A SET signed by okta's key but with the other transmitter's iss, at okta's path with
    # okta's Authorization: 400 invalid_issuer, nothing applied.
    jx = okta.send_event("session-revoked", email="carol@example.com",
                         claims={"iss": transmitter.issuer})
    err = okta.wait_set_err(jx)
    assert err["err"] == "invalid_issuer", err
    assert [r["status"] for r in okta.acks()["push_results"] if r["jti"] == jx] == [400]
    # And the default transmitter's SET (its iss, its key) at okta's path: refused as well.
    full = transmitter.send_event_full("session-revoked", email="carol@example.com")
    status, body = p.post("/ssf/okta", full["token"].encode(), authorization=OKTA_AUTH)
    assert status == 400, (status, body)
    assert json.loads(body)["err"] == "invalid_issuer", body
    transmitter.wait_acked(full["jti"])  # delivered to its own path, it applies
    assert p.transmitter_of("carol", full["jti"]) == ["default"]
    assert p.transmitter_of("carol", jx) == []

    # The wrong Authorization at okta's path: 401, nothing applied, even with the default
    # transmitter's (valid) push secret — it is not okta's.
    dave = okta.send_event_full("credential-change", email="alice@example.com", wait_stream=0)
    secret = [s for s in transmitter.streams() if s["delivery"].get("method") == PUSH][0]
    default_auth = secret["delivery"]["authorization_header"]
    for auth in ("SSWS wrong", default_auth, None):
        status, _ = p.post("/ssf/okta", dave["token"].encode(), authorization=auth)
        assert status == 401, (auth, status)
    # ... and okta's Authorization at the default transmitter's path is not its secret.
    status, _ = p.post("/ssf/default", dave["token"].encode(), authorization=OKTA_AUTH)
    assert status == 401, status

    # A path no transmitter has: 404 (before any authorization is looked at).
    for path in ("/ssf", "/ssf/okta/", "/ssf/other", "/ssf/okta?x=1"):
        status, _ = p.post(path, dave["token"].encode(), authorization=OKTA_AUTH)
        assert status == 404, (path, status)
    okta.wait_acked(dave["jti"])  # its own delivery went through meanwhile
    # Applied once, under okta's name: nothing the refused requests carried was applied.
    assert p.transmitter_of("alice", dave["jti"]) == ["okta"]

    # Counters are per transmitter: okta's rejection is okta's.
    ts = {t["name"]: t for t in d.ctl("transmitters")["transmitters"]}
    assert ts["okta"]["counters"]["sets_rejected"] >= 2
    assert ts["default"]["counters"].get("sets_rejected", 0) == 0


def test_hanging_jwks_of_one_push_transmitter_delays_nothing(daemon_factory, transmitter,
                                                             transmitter_factory, tmp_path):
    """okta's JWKS endpoint hangs (SIGSTOP: connections are accepted by the kernel, nothing
    is answered): first while okta is being set up, then while a SET of okta's waits for a
    JWKS refresh. The default transmitter's pushed SETs are applied all along."""
    p = TwoPush(daemon_factory, transmitter, transmitter_factory, tmp_path)
    okta = p.okta
    okta.proc.send_signal(signal.SIGSTOP)
    try:
        d = p.start(wait=False)
        wait_for(lambda: d.ctl("transmitters")["transmitters"][0]["status"] == "enabled", 30,
                 "the default transmitter set up while okta's JWKS hangs")
        wait_for(p._push_stream, 20, "the managed push stream")
        for user in ("alice", "bob"):
            j = transmitter.send_event("session-revoked", email=f"{user}@example.com")
            transmitter.wait_acked(j)
            assert p.transmitter_of(user, j) == ["default"]
        assert d.ctl("transmitters")["transmitters"][1]["status"] != "enabled"
    finally:
        okta.proc.send_signal(signal.SIGCONT)
    p.wait_ready()
    jwks_fetches = okta.acks()["counters"].get("GET /ssf/jwks.json", 0)
    assert jwks_fetches >= 1

    # okta set up: a SET naming a kid okta's JWKS lacks makes okta's ingest thread fetch the
    # JWKS again (allowed once the refresh interval has passed since its last fetch, which
    # okta's clock stamped a little after the daemon made it), and that fetch hangs.
    last = [r for r in okta.acks()["requests"] if r["path"] == "/ssf/jwks.json"][-1]["time"]
    wait_for(lambda: okta.acks()["now"] >= last + JWKS_REFRESH_MIN_SEC + 0.5,
             JWKS_REFRESH_MIN_SEC + 30, "the JWKS refresh interval to pass", interval=0.2)
    iat = int(time.time())
    token = (b64({"alg": "RS256", "kid": "no-such-kid", "typ": "secevent+jwt"}) + "." +
             b64({"iss": okta.issuer, "aud": okta.audience, "iat": iat, "jti": "unknown-kid-1",
                  "events": {"https://schemas.openid.net/secevent/caep/event-type/"
                             "session-revoked": {}},
                  "sub_id": {"format": "email", "email": "carol@example.com"}}) + "." +
             base64.urlsafe_b64encode(b"x" * 256).rstrip(b"=").decode())
    answers = []
    okta.proc.send_signal(signal.SIGSTOP)
    try:
        t = threading.Thread(target=lambda: answers.append(
            p.post("/ssf/okta", token.encode(), authorization=OKTA_AUTH, timeout=60)))
        t.start()
        # okta's SET is held (its JWKS refresh hangs) and answered 503 to be delivered
        # again; the default transmitter's SETs go through meanwhile and after.
        wait_for(lambda: answers, 30, "okta's pushed SET answered")
        assert answers[0][0] == 503, answers
        for user in ("alice", "bob"):
            j = transmitter.send_event("session-revoked", email=f"{user}@example.com")
            transmitter.wait_acked(j)
            assert p.transmitter_of(user, j) == ["default"]
        assert d.ctl("risk", "carol")["level"] == "none"
    finally:
        okta.proc.send_signal(signal.SIGCONT)
        t.join(60)
    # The hanging request was okta's ingest thread refreshing the JWKS: it arrives now.
    wait_for(lambda: okta.acks()["counters"].get("GET /ssf/jwks.json", 0) > jwks_fetches, 60,
             "okta's JWKS refresh")
    j = okta.send_event("session-revoked", email="carol@example.com")
    okta.wait_acked(j, timeout=60)
    assert p.transmitter_of("carol", j) == ["okta"]


def test_root_knows_the_transmitter_by_the_channel(daemon_factory, build_dir, transmitter,
                                                    transmitter_factory, tmp_path):
    """A compromised push worker (hostile_worker.py in place of the real one) serves both push
    transmitters, a channel each. Root tags a record with the transmitter of the channel it
    arrived on and refuses one whose iss is not that transmitter's: the worker cannot pass one
    transmitter's record off as another's with its iss. (It could fabricate records with a
    transmitter's own iss on that transmitter's channel: root does not verify signatures;
    that is the trust boundary of every worker, now of the shared push worker for all the push
    transmitters it serves.)"""
    from test_root_trust import CAEP, HOSTILE, email, record, replies

    p = TwoPush(daemon_factory, transmitter, transmitter_factory, tmp_path)
    okta = p.okta
    script = str(tmp_path / "hostile.json")
    frames = [
        # On okta's channel (1) with the default transmitter's iss: refused.
        {"channel": 1, "type": "ingest", "id": 1,
         "request": record("c1", CAEP + "session-revoked", email("alice@example.com"),
                           iss=transmitter.issuer)},
        # On okta's channel with okta's iss: applied, as okta's.
        {"channel": 1, "type": "ingest", "id": 2,
         "request": record("c2", CAEP + "session-revoked", email("alice@example.com"),
                           iss=okta.issuer)},
        # On the default transmitter's channel (0) with okta's iss: refused.
        {"channel": 0, "type": "ingest", "id": 3,
         "request": record("c3", CAEP + "session-revoked", email("bob@example.com"),
                           iss=okta.issuer)},
        # On its own channel with its own iss: applied, as default's.
        {"channel": 0, "type": "ingest", "id": 4,
         "request": record("c4", CAEP + "session-revoked", email("bob@example.com"),
                           iss=transmitter.issuer)},
    ]
    with open(script, "w") as f:
        json.dump(frames, f)
    p.kw["env"] = {"SSF_TEST_WORKER": HOSTILE, "SSF_TEST_SCRIPT": script}
    p.kw["start"] = False
    d = p.start(wait=False)
    d.binary = os.path.join(build_dir, "helpers", "ssf-sessiond-test")
    d.start()
    # One worker for both, with a channel each, in the order of its --transmitter arguments.
    argv = wait_for(lambda: os.path.exists(script + ".argv") and open(script + ".argv").read(),
                    30, "the worker started")
    args = json.loads(argv.splitlines()[0])
    assert [a for a in args if a.startswith("--transmitter=")] == \
        ["--transmitter=default", "--transmitter=okta"], args
    with open(script + ".go", "w"):
        pass
    wait_for(lambda: len(replies(script)) >= 4, 30, "all records answered")
    r = replies(script)
    assert r[0]["err"] == "invalid_issuer" and r[0]["status"] < 0, r
    assert r[1]["status"] == 0, r
    assert r[2]["err"] == "invalid_issuer" and r[2]["status"] < 0, r
    assert r[3]["status"] == 0, r
    assert [(e["jti"], e["transmitter"]) for e in d.ctl("history", "alice")["entries"]] == \
        [("c2", "okta")]
    assert [(e["jti"], e["transmitter"]) for e in d.ctl("history", "bob")["entries"]] == \
        [("c4", "default")]


def test_shared_push_worker_restarted_for_all(daemon_factory, transmitter, transmitter_factory,
                                              tmp_path):
    """The push worker dies: root restarts it once, for both push transmitters together (they
    share the listener), and both transmitters' SETs are applied again."""
    p = TwoPush(daemon_factory, transmitter, transmitter_factory, tmp_path)
    d = p.start()

    def started():
        return [line.split("Started network worker ")[1].split()[0]
                for line in d.log().splitlines() if "Started network worker" in line]

    first = started()
    assert len(first) == 2 and len(set(first)) == 1, first
    os.kill(int(first[0]), signal.SIGKILL)
    again = wait_for(lambda: started()[2:] if len(started()) >= 4 else None, 30,
                     "the push worker started again")
    assert len(again) == 2 and len(set(again)) == 1 and again[0] != first[0], again
    p.wait_ready()
    support.each_transmitter_applies(d, [(transmitter, "alice", "default"),
                                         (p.okta, "bob", "okta")], timeout=40)
    # Started again once, not once per transmitter (a second worker could not bind the port):
    # both restart timers (the same 1 s backoff) have fired long before both SETs applied.
    assert len(started()) == 4, started()
