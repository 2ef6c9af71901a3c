# SPDX-License-Identifier: MIT
"""Self-tests of the local SSF transmitter (plain urllib/ssl clients, jwcrypto as the
oracle) and of the shared fixtures (logind mock, nss_wrapper users, daemon config)."""

import configparser
import http.server
import json
import os
import ssl
import subprocess
import threading
import urllib.error
import urllib.request

import pytest

import support
from ssf_transmitter import (CAEP, OKTA, POLL, PUSH, RISC, SSF, TAMPER_MODES, make_tls_files,
                             verify_set)


def fetch(url, ca_file, token=None, method="GET", body=None, timeout=40):
    """Plain urllib client, independent of TransmitterProcess.request."""
    headers = {}
    data = None
    if token:
        headers["Authorization"] = "Bearer " + token
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    ctx = ssl.create_default_context(cafile=ca_file)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            raw = r.read()
            return r.status, r.headers, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, e.headers, (json.loads(raw) if raw else None)


def create_stream(t, body=None):
    status, _, cfg = fetch(t.origin + "/ssf/stream", t.ca_file, t.token, "POST", body or {})
    assert status == 201, cfg
    return cfg


def poll(t, cfg, body):
    status, _, out = fetch(cfg["delivery"]["endpoint_url"], t.ca_file, t.token, "POST", body)
    assert status == 200, out
    return out


def decode_claims(token):
    return json.loads(support_b64(token.split(".")[1]))


def support_b64(s):
    import base64
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# ----------------------------------------------------------------------------- discovery, auth

def test_discovery_path_insertion(transmitter_factory):
    t = transmitter_factory(issuer_path="/tenant1")
    assert t.issuer == t.origin + "/tenant1"
    status, hdrs, meta = fetch(t.origin + "/.well-known/ssf-configuration/tenant1", t.ca_file)
    assert status == 200
    assert hdrs["Content-Type"] == "application/json"
    assert meta["issuer"] == t.issuer
    assert meta["spec_version"] == "1_0"
    assert meta["delivery_methods_supported"] == [POLL, PUSH]
    assert meta["authorization_schemes"] == [{"spec_urn": "urn:ietf:rfc:6749"}]
    assert meta["default_subjects"] == "ALL"
    for k in ("jwks_uri", "configuration_endpoint", "status_endpoint", "verification_endpoint",
              "add_subject_endpoint", "remove_subject_endpoint"):
        assert meta[k].startswith(t.origin + "/"), k
    # Without the path the issuer is not found: the path is inserted after the well-known part.
    assert fetch(t.origin + "/.well-known/ssf-configuration", t.ca_file)[0] == 404
    assert fetch(t.origin + "/tenant1/.well-known/ssf-configuration", t.ca_file)[0] == 404


def test_discovery_without_path_and_tls_trust(transmitter):
    t = transmitter
    status, _, meta = fetch(t.origin + "/.well-known/ssf-configuration", t.ca_file)
    assert status == 200 and meta["issuer"] == t.origin == t.issuer
    # The server certificate chains only to the private CA.
    with pytest.raises(urllib.error.URLError) as e:
        urllib.request.urlopen(t.origin + "/.well-known/ssf-configuration", timeout=10,
                               context=ssl.create_default_context(cafile=None, capath=None,
                                                                  cadata=_unrelated_ca()))
    assert "CERTIFICATE_VERIFY_FAILED" in str(e.value)
    # localhost is in the certificate too.
    status, _, _ = fetch(f"https://localhost:{t.port}/.well-known/ssf-configuration", t.ca_file)
    assert status == 200


def _unrelated_ca():
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        ca, _, _ = make_tls_files(d)
        with open(ca) as f:
            return f.read()


def test_token_file_mode_and_ready_json(transmitter):
    t = transmitter
    st = os.stat(t.token_file)
    assert st.st_mode & 0o777 == 0o600
    with open(os.path.join(t.state_dir, "ready.json")) as f:
        ready = json.load(f)
    assert set(ready) >= {"issuer", "port", "ca_file", "token_file", "control_url"}
    assert ready["control_url"] == t.origin + "/control"


def test_auth_required(transmitter):
    t = transmitter
    for method, path in (("GET", "/ssf/stream"), ("POST", "/ssf/stream"), ("GET", "/ssf/status"),
                         ("POST", "/ssf/verify"), ("POST", "/ssf/poll/x"),
                         ("GET", "/control/acks"), ("POST", "/control/events")):
        status, hdrs, body = fetch(t.origin + path, t.ca_file, None, method,
                                   {} if method == "POST" else None)
        assert status == 401, (method, path, status)
        assert hdrs["WWW-Authenticate"].startswith("Bearer"), (method, path)
        status, hdrs, body = fetch(t.origin + path, t.ca_file, "wrong-" + t.token, method,
                                   {} if method == "POST" else None)
        assert status == 401, (method, path, status)
        assert 'error="invalid_token"' in hdrs["WWW-Authenticate"]
    # Discovery and JWKS are public.
    assert fetch(t.origin + "/.well-known/ssf-configuration", t.ca_file)[0] == 200
    status, _, jwks = fetch(t.origin + "/ssf/jwks.json", t.ca_file)
    assert status == 200 and jwks["keys"]


# ----------------------------------------------------------------------------- streams

def test_stream_create_read_update_delete(transmitter):
    t = transmitter
    status, _, streams = fetch(t.origin + "/ssf/stream", t.ca_file, t.token)
    assert status == 200 and streams == []

    cfg = create_stream(t)
    sid = cfg["stream_id"]
    assert cfg["iss"] == t.issuer
    assert cfg["aud"] == t.audience
    assert cfg["delivery"] == {"method": POLL, "endpoint_url": f"{t.origin}/ssf/poll/{sid}"}
    assert CAEP + "session-revoked" in cfg["events_delivered"]
    assert OKTA + "user-risk-change" in cfg["events_supported"]
    assert cfg["min_verification_interval"] == 0

    req = [CAEP + "session-revoked", CAEP + "device-compliance-change", "urn:example:unknown"]
    cfg2 = create_stream(t, {"events_requested": req, "delivery": {"method": POLL},
                             "description": "host1"})
    assert cfg2["events_delivered"] == [CAEP + "session-revoked", CAEP + "device-compliance-change"]
    assert cfg2["description"] == "host1"

    status, _, streams = fetch(t.origin + "/ssf/stream", t.ca_file, t.token)
    assert status == 200 and isinstance(streams, list)
    assert {s["stream_id"] for s in streams} == {sid, cfg2["stream_id"]}
    status, _, one = fetch(t.origin + "/ssf/stream?stream_id=" + sid, t.ca_file, t.token)
    assert status == 200 and one == cfg

    status, _, upd = fetch(t.origin + "/ssf/stream", t.ca_file, t.token, "PATCH",
                           {"stream_id": sid, "events_requested": [RISC + "account-disabled"]})
    assert status == 200 and upd["events_delivered"] == [RISC + "account-disabled"]
    status, _, err = fetch(t.origin + "/ssf/stream", t.ca_file, t.token, "PATCH",
                           {"stream_id": sid, "aud": "https://other.example.com"})
    assert status == 400 and err["err"] == "invalid_request"
    status, _, rep = fetch(t.origin + "/ssf/stream", t.ca_file, t.token, "PUT",
                           {"stream_id": sid, "delivery": {"method": POLL}})
    assert status == 200 and "events_requested" not in rep and "description" not in rep

    status, _, st = fetch(t.origin + "/ssf/status?stream_id=" + sid, t.ca_file, t.token)
    assert status == 200 and st == {"stream_id": sid, "status": "enabled"}
    status, _, st = fetch(t.origin + "/ssf/status", t.ca_file, t.token, "POST",
                          {"stream_id": sid, "status": "paused", "reason": "maintenance"})
    assert status == 200 and st["status"] == "paused" and st["reason"] == "maintenance"
    status, _, _ = fetch(t.origin + "/ssf/status", t.ca_file, t.token, "POST",
                         {"stream_id": sid, "status": "sleepy"})
    assert status == 400

    subj = {"format": "email", "email": "alice@example.com"}
    assert fetch(t.origin + "/ssf/subjects:add", t.ca_file, t.token, "POST",
                 {"stream_id": sid, "subject": subj})[0] == 200
    assert fetch(t.origin + "/ssf/subjects:remove", t.ca_file, t.token, "POST",
                 {"stream_id": sid, "subject": subj})[0] == 204

    status, _, body = fetch(t.origin + "/ssf/stream?stream_id=" + sid, t.ca_file, t.token, "DELETE")
    assert status == 204 and body is None
    assert fetch(t.origin + "/ssf/stream?stream_id=" + sid, t.ca_file, t.token)[0] == 404
    assert fetch(t.origin + "/ssf/stream?stream_id=" + sid, t.ca_file, t.token, "DELETE")[0] == 404
    assert [s["stream_id"] for s in t.streams()] == [cfg2["stream_id"]]


def test_malformed_requests(transmitter):
    t = transmitter
    cfg = create_stream(t)
    url = cfg["delivery"]["endpoint_url"]
    for body in ({"ack": "abc"}, {"ack": [1]}, {"setErrs": {"j": "x"}}, {"maxEvents": -1},
                 {"maxEvents": "3"}, {"returnImmediately": "yes"}):
        status, _, err = fetch(url, t.ca_file, t.token, "POST", body)
        assert status == 400, body
        assert err["err"] == "invalid_request" and err["description"], body
    status, _, err = t.request("POST", "/ssf/stream", raw=b"{not json",
                               headers={"Content-Type": "application/json"})
    assert status == 400 and err["err"] == "invalid_request"
    status, _, err = fetch(t.origin + "/ssf/stream", t.ca_file, t.token, "POST",
                           {"delivery": {"method": "urn:example:carrier-pigeon"}})
    assert status == 400
    status, _, err = fetch(t.origin + "/ssf/poll/nope", t.ca_file, t.token, "POST", {})
    assert status == 404


# ----------------------------------------------------------------------------- poll

def test_poll_ack_removes_and_unacked_is_redelivered(transmitter):
    t = transmitter
    t.configure(redelivery_delay=0.2)
    cfg = create_stream(t)
    j1 = t.send_event("session-revoked", email="alice@example.com")
    j2 = t.send_event("credential-change", email="bob@example.com")
    out = poll(t, cfg, {"returnImmediately": True})
    assert set(out["sets"]) == {j1, j2} and out["moreAvailable"] is False
    claims = decode_claims(out["sets"][j1])
    assert claims["jti"] == j1
    assert claims["sub_id"] == {"format": "email", "email": "alice@example.com"}

    # Acknowledge j1 only: j2 comes back after the redelivery delay, j1 never again.
    out = poll(t, cfg, {"ack": [j1], "returnImmediately": False})
    assert list(out["sets"]) == [j2], out
    a = t.acks()
    assert a["acked"] == [j1] and a["pending"] == [j2] and a["polls"] == 2
    assert a["last_poll_body"] == {"ack": [j1], "returnImmediately": False}
    assert a["deliveries"][j2] == 2

    errs = {j2: {"err": "invalid_audience", "description": "test"}}
    out = poll(t, cfg, {"setErrs": errs, "returnImmediately": True})
    assert out["sets"] == {}
    a = t.acks()
    assert a["set_errs"] == errs and a["pending"] == [] and a["violations"] == []
    assert t.wait_set_err(j2, timeout=5) == errs[j2]
    t.wait_acked(j1, timeout=5)


def test_ack_and_set_err_for_same_jti_is_a_violation(transmitter):
    t = transmitter
    cfg = create_stream(t)
    j = t.send_event("session-revoked", email="alice@example.com")
    poll(t, cfg, {"ack": [j], "setErrs": {j: {"err": "invalid_key", "description": "x"}},
                  "returnImmediately": True})
    v = t.acks()["violations"]
    assert v and v[0]["jti"] == j


def test_long_poll_returns_when_event_enqueued(transmitter_factory):
    t = transmitter_factory(long_poll_max=30)
    cfg = create_stream(t)
    result = {}

    def long_poll():
        result["out"] = poll(t, cfg, {"returnImmediately": False})
    th = threading.Thread(target=long_poll)
    th.start()
    try:
        t.wait_polls(1, timeout=20)  # the poll is being held by the transmitter
        j = t.send_event("device-compliance-change", email="alice@example.com")
    finally:
        th.join(timeout=30)
    assert not th.is_alive(), "long poll did not return"
    # Had the long poll timed out instead of waking on the enqueue, sets would be empty.
    assert list(result["out"]["sets"]) == [j]


def test_long_poll_times_out_empty(transmitter_factory):
    t = transmitter_factory(long_poll_max=0.5)
    cfg = create_stream(t)
    out = poll(t, cfg, {})
    assert out == {"sets": {}, "moreAvailable": False}


def test_max_events(transmitter):
    t = transmitter
    cfg = create_stream(t)
    jtis = [t.send_event("session-revoked", email=f"u{i}@example.com") for i in range(3)]
    out = poll(t, cfg, {"maxEvents": 2, "returnImmediately": True})
    assert list(out["sets"]) == jtis[:2] and out["moreAvailable"] is True
    out = poll(t, cfg, {"maxEvents": 0, "ack": jtis[:2], "returnImmediately": True})
    assert out["sets"] == {} and out["moreAvailable"] is True
    out = poll(t, cfg, {"maxEvents": 5, "returnImmediately": True})
    assert list(out["sets"]) == jtis[2:] and out["moreAvailable"] is False
    assert t.acks()["acked"] == jtis[:2]


def test_paused_stream_holds_events(transmitter):
    t = transmitter
    cfg = create_stream(t)
    sid = cfg["stream_id"]
    fetch(t.origin + "/ssf/status", t.ca_file, t.token, "POST", {"stream_id": sid, "status": "paused"})
    j = t.send_event("session-revoked", email="alice@example.com")
    assert poll(t, cfg, {"returnImmediately": True})["sets"] == {}
    fetch(t.origin + "/ssf/status", t.ca_file, t.token, "POST", {"stream_id": sid, "status": "enabled"})
    assert list(poll(t, cfg, {"returnImmediately": True})["sets"]) == [j]


def test_events_filtered_by_events_delivered(transmitter):
    t = transmitter
    cfg = create_stream(t, {"events_requested": [CAEP + "session-revoked"]})
    out = t.control("POST", "events", {"event": "credential-change", "email": "alice@example.com"})
    assert out["streams"] == []
    with pytest.raises(AssertionError):
        t.send_event("credential-change", email="alice@example.com")
    j = t.send_event("session-revoked", email="alice@example.com")
    assert list(poll(t, cfg, {"returnImmediately": True})["sets"]) == [j]


def test_verification_event(transmitter):
    t = transmitter
    cfg = create_stream(t)
    sid = cfg["stream_id"]
    status, _, body = fetch(t.origin + "/ssf/verify", t.ca_file, t.token, "POST",
                            {"stream_id": sid, "state": "s-123"})
    assert status == 204 and body is None
    sets = poll(t, cfg, {"returnImmediately": True})["sets"]
    assert len(sets) == 1
    (jti, tok), = sets.items()
    _, claims = verify_set(tok, t.jwks())
    assert claims["sub_id"] == {"format": "opaque", "id": sid}
    assert claims["events"] == {SSF + "verification": {"state": "s-123"}}
    assert claims["iss"] == t.issuer and claims["aud"] == t.audience
    assert fetch(t.origin + "/ssf/verify", t.ca_file, t.token, "POST", {"stream_id": "zz"})[0] == 404


def test_transmitter_initiated_status_change(transmitter):
    t = transmitter
    cfg = create_stream(t)
    upd = t.set_stream_status("paused", reason="maintenance")["updates"]
    assert len(upd) == 1 and upd[0]["stream_id"] == cfg["stream_id"]
    # The stream-updated event is queued before the pause, so the receiver can learn of it
    # only after re-enabling (status is paused now).
    assert t.streams()[0]["status"] == "paused"
    t.set_stream_status("enabled")
    sets = poll(t, cfg, {"returnImmediately": True})["sets"]
    events = [list(decode_claims(s)["events"].items())[0] for s in sets.values()]
    assert (SSF + "stream-updated", {"status": "paused", "reason": "maintenance"}) in events
    assert (SSF + "stream-updated", {"status": "enabled"}) in events


# ----------------------------------------------------------------------------- SET contents, JOSE

def test_good_set_verifies_with_jwks_and_has_profile_claims(transmitter):
    t = transmitter
    cfg = create_stream(t)
    status, _, jwks = fetch(t.origin + "/ssf/jwks.json", t.ca_file)
    assert status == 200
    for k in jwks["keys"]:
        assert k["kid"] and k["alg"] == "RS256" and k["use"] == "sig" and "d" not in k
    out = t.send_event_full("device-compliance-change", email="alice@example.com")
    header, claims = verify_set(out["token"], jwks)
    assert header["typ"] == "secevent+jwt" and header["alg"] == "RS256"
    assert header["kid"] == jwks["keys"][0]["kid"]
    assert claims["iss"] == t.issuer and claims["aud"] == cfg["aud"]
    assert claims["jti"] == out["jti"] and isinstance(claims["iat"], int)
    assert "sub" not in claims and "exp" not in claims
    ev = claims["events"][CAEP + "device-compliance-change"]
    assert ev["previous_status"] == "compliant" and ev["current_status"] == "not-compliant"
    assert ev["initiating_entity"] == "policy" and isinstance(ev["event_timestamp"], int)


@pytest.mark.parametrize("event,member,value", [
    ("credential-change", "change_type", "update"),
    ("credential-change", "credential_type", "password"),
    ("risk-level-change", "current_level", "HIGH"),
    ("risk-level-change", "principal", "USER"),
    ("account-disabled", "initiating_entity", "policy"),
    ("user-risk-change", "current_level", "high"),
])
def test_event_defaults_and_short_names(transmitter, event, member, value):
    t = transmitter
    create_stream(t)
    claims = t.send_event_full(event, email="alice@example.com")["claims"]
    (uri, body), = claims["events"].items()
    assert uri.endswith("/" + event) and uri.startswith(("https://schemas.openid.net/secevent/",
                                                         OKTA))
    assert body[member] == value


def test_payload_and_claims_overrides(transmitter):
    t = transmitter
    create_stream(t)
    subject = {"format": "complex", "user": {"format": "email", "email": "carol@example.com"}}
    out = t.send_event_full("risk-level-change", subject=subject,
                            payload={"current_level": "MEDIUM", "event_timestamp": None},
                            claims={"iat": 1000, "aud": ["a", "b"], "txn": None, "exp": 5})
    _, claims = verify_set(out["token"], t.jwks())
    body = claims["events"][CAEP + "risk-level-change"]
    assert body["current_level"] == "MEDIUM" and "event_timestamp" not in body
    assert claims["iat"] == 1000 and claims["aud"] == ["a", "b"] and claims["exp"] == 5
    assert "txn" not in claims and claims["sub_id"] == subject
    # Okta style: subject inside the event, no sub_id.
    out = t.send_event_full(OKTA + "user-risk-change", claims={"sub_id": None},
                            payload={"subject": {"user": {"format": "email",
                                                          "email": "alice@example.com"}}})
    assert "sub_id" not in out["claims"]


@pytest.mark.parametrize("tamper", TAMPER_MODES)
def test_every_tamper_mode_fails_verification(transmitter, tamper):
    t = transmitter
    create_stream(t)
    out = t.send_event_full("session-revoked", email="alice@example.com", tamper=tamper)
    status, _, jwks = fetch(t.origin + "/ssf/jwks.json", t.ca_file)
    with pytest.raises(Exception):
        verify_set(out["token"], jwks)
    # The tampered token is what gets delivered, under the jti reported.
    cfg = t.streams()[0]
    sets = poll(t, cfg, {"returnImmediately": True})["sets"]
    assert sets == {out["jti"]: out["token"]}


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
def test_sign_algs_verify(transmitter, alg):
    t = transmitter
    create_stream(t)
    out = t.send_event_full("session-revoked", email="alice@example.com", sign_alg=alg)
    header, _ = verify_set(out["token"], t.jwks())
    assert header["alg"] == alg


def test_header_override_keeps_valid_signature(transmitter):
    t = transmitter
    create_stream(t)
    out = t.send_event_full("session-revoked", email="alice@example.com",
                            header={"typ": "application/secevent+jwt"})
    header, _ = verify_set(out["token"], t.jwks())
    assert header["typ"] == "application/secevent+jwt"


def test_key_rotation(transmitter):
    t = transmitter
    create_stream(t)
    old = t.send_event_full("session-revoked", email="alice@example.com")["token"]
    r = t.rotate_key()
    new = t.send_event_full("session-revoked", email="alice@example.com")["token"]
    jwks = t.jwks()
    assert {k["kid"] for k in jwks["keys"]} == set(r["published_kids"])
    assert verify_set(new, jwks)[0]["kid"] == r["kid"] != verify_set(old, jwks)[0]["kid"]
    r2 = t.rotate_key(alg="ES256", keep_old=False)
    jwks = t.jwks()
    assert [k["kid"] for k in jwks["keys"]] == [r2["kid"]]
    with pytest.raises(Exception):
        verify_set(old, jwks)
    newest = t.send_event_full("session-revoked", email="alice@example.com")["token"]
    assert verify_set(newest, jwks)[0]["alg"] == "ES256"


def test_raw_and_reset(transmitter):
    t = transmitter
    cfg = create_stream(t)
    t.send_raw("hand-made-1", "not.a.jwt")
    assert poll(t, cfg, {"returnImmediately": True})["sets"] == {"hand-made-1": "not.a.jwt"}
    t.reset()
    a = t.acks()
    assert a["polls"] == 0 and a["pending"] == [] and len(t.streams()) == 1
    t.reset(streams=True)
    assert t.streams() == []


def test_failure_injection(transmitter):
    t = transmitter
    cfg = create_stream(t)
    t.configure(fail={"path_prefix": "/ssf/poll/", "status": 503, "count": 1})
    status, _, err = fetch(cfg["delivery"]["endpoint_url"], t.ca_file, t.token, "POST", {})
    assert status == 503 and err["err"] == "forced_failure"
    assert poll(t, cfg, {"returnImmediately": True}) == {"sets": {}, "moreAvailable": False}


# ----------------------------------------------------------------------------- push

class _Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        srv = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        srv.received.append({"auth": self.headers.get("Authorization"),
                             "ctype": self.headers.get("Content-Type"), "body": body.decode()})
        claims = decode_claims(body.decode())
        if claims["sub_id"].get("email", "").startswith("bad"):
            data = json.dumps({"err": "invalid_audience", "description": "nope"}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()


def test_push_delivery(transmitter, tmp_path):
    t = transmitter
    ca, cert, key = make_tls_files(str(tmp_path))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    srv.received = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        t.configure(push_ca=ca)
        url = f"https://127.0.0.1:{srv.server_address[1]}/ssf/events"
        cfg = create_stream(t, {"delivery": {"method": PUSH, "endpoint_url": url,
                                             "authorization_header": "Bearer push-secret"}})
        assert cfg["delivery"]["endpoint_url"] == url
        good = t.send_event("session-revoked", email="alice@example.com")
        bad = t.send_event("session-revoked", email="bad@example.com")
        t.wait_acked(good)
        assert t.wait_set_err(bad) == {"err": "invalid_audience", "description": "nope"}
        assert {r["auth"] for r in srv.received} == {"Bearer push-secret"}
        assert {r["ctype"] for r in srv.received} == {"application/secevent+jwt"}
        # A poll on a push stream is refused.
        status, _, _ = fetch(t.origin + "/ssf/poll/" + cfg["stream_id"], t.ca_file, t.token,
                             "POST", {"returnImmediately": True})
        assert status == 400
    finally:
        srv.shutdown()
        srv.server_close()


def test_push_receiver_tls_is_verified(transmitter, tmp_path):
    t = transmitter
    _, cert, key = make_tls_files(str(tmp_path))   # receiver cert from a CA the transmitter lacks
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    srv.received = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        t.configure(push_ca=t.ca_file)
        url = f"https://127.0.0.1:{srv.server_address[1]}/ssf/events"
        create_stream(t, {"delivery": {"method": PUSH, "endpoint_url": url}})
        j = t.send_event("session-revoked", email="alice@example.com")
        res = support.wait_for(lambda: t.acks()["push_results"], 20, "a push attempt")
        assert res[0]["jti"] == j and res[0]["status"] is None
        assert "CERTIFICATE_VERIFY_FAILED" in res[0]["error"]
        assert srv.received == [] and j in t.acks()["pending"]
    finally:
        srv.shutdown()
        srv.server_close()


# ----------------------------------------------------------------------------- fixtures

def test_logind_mock_terminate_session(logind):
    path = logind.add_session("c1", 2001, "alice", remote=True, service="sshd", type="tty")
    logind.add_session("c2", 2002, "bob", remote=False, service="login", type="tty")
    assert path == "/org/freedesktop/login1/session/c1"
    assert sorted(logind.sessions()) == [("c1", 2001, "alice"), ("c2", 2002, "bob")]
    assert bool(logind.session_property("c1", "Remote")) is True
    assert str(logind.session_property("c1", "Service")) == "sshd"
    assert str(logind.session_property("c2", "TTY")) == "tty1"
    assert str(logind.session_property("c1", "RemoteHost")) == "192.0.2.10"

    logind.manager().TerminateSession("c1")
    assert logind.sessions() == [("c2", 2002, "bob")]
    assert logind.terminated() == ["c1"]
    import dbus
    with pytest.raises(dbus.exceptions.DBusException) as e:
        logind.manager().TerminateSession("c1")
    assert e.value.get_dbus_name() == "org.freedesktop.login1.NoSuchSession"
    with pytest.raises(dbus.exceptions.DBusException):
        logind.manager().GetSession("c1")
    assert str(logind.manager().GetSession("c2")) == "/org/freedesktop/login1/session/c2"


def test_logind_mock_terminate_user_and_session_terminate(logind):
    logind.add_session("a1", 2001, "alice")
    logind.add_session("a2", 2001, "alice", remote=False, service="gdm-password", type="x11")
    logind.add_session("b1", 2002, "bob")
    logind.manager().TerminateUser(2001)
    assert logind.sessions() == [("b1", 2002, "bob")]
    assert logind.calls("TerminateUser") == [[2001]]
    import dbus
    obj = logind._conn.get_object(support.LOGIN1, "/org/freedesktop/login1/session/b1")
    dbus.Interface(obj, support.SESSION_IFACE).Terminate()
    assert logind.sessions() == []


def test_nss_wrapper_resolves_users(users):
    env = dict(os.environ)
    env.update(users.env())
    cp = subprocess.run(["getent", "passwd", "alice"], env=env, capture_output=True, text=True,
                        timeout=30)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.startswith("alice:x:2001:2001:")
    cp = subprocess.run(["id", "-Gn", "alice"], env=env, capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0 and set(cp.stdout.split()) == {"alice", "staff"}
    cp = subprocess.run(["getent", "group", "admins"], env=env, capture_output=True, text=True,
                        timeout=30)
    assert cp.stdout.strip() == "admins:x:3002:carol"
    # Without the wrapper alice does not exist on this machine.
    cp = subprocess.run(["getent", "passwd", "alice"], capture_output=True, text=True, timeout=30,
                        env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"})
    assert cp.returncode != 0


def test_daemon_config_text(transmitter, tmp_path):
    dirs = {"state_dir": str(tmp_path / "s"), "socket": str(tmp_path / "sock"),
            "snapshot": str(tmp_path / "snap"), "hooks_dir": str(tmp_path / "hooks.d")}
    text = support.daemon_config_text(transmitter, dirs, transmitter_opts={"poll_wait": "0",
                                                                           "events": None})
    cp = configparser.ConfigParser(strict=True, inline_comment_prefixes=(";", "#"))
    cp.read_string(text)
    assert cp["transmitter"]["issuer"] == transmitter.issuer
    assert cp["transmitter"]["token_file"] == transmitter.token_file
    assert cp["transmitter"]["poll_wait"] == "0" and "events" not in cp["transmitter"]
    assert cp["rule logout-high"]["action"] == "logout"
    assert cp["rule notify-medium"]["workflow"] == "notify-admin"
    assert cp["daemon"]["socket"] == dirs["socket"]
    assert cp["hooks"]["dir"] == dirs["hooks_dir"]


# A stand-in for ssf-sessiond/ssfctl, to test the Daemon helper's own logic (config and
# file modes, environment, waiting for the socket, stop, early exit) without the real
# daemon. It only reads the [daemon] socket key of the config it is given.
FAKE_DAEMON = r'''#!/usr/bin/python3
import json, os, signal, socket, sys
args = sys.argv[1:]
cfg = args[args.index("--config") + 1]
if "--check-config" in args:
    sys.exit(0)
sock_path = None
for line in open(cfg):
    k, _, v = line.partition("=")
    if k.strip() == "socket":
        sock_path = v.strip()
if os.environ.get("FAKE_FAIL"):
    print("fake: failing as asked", file=sys.stderr)
    sys.exit(3)
with open(os.path.join(os.path.dirname(cfg), "fake-env.json"), "w") as f:
    json.dump({"env": dict(os.environ), "args": args,
               "config_mode": os.stat(cfg).st_mode & 0o777}, f)
s = socket.socket(socket.AF_UNIX)
s.bind(sock_path)
s.listen(1)
signal.signal(signal.SIGTERM, lambda *a: (os.unlink(sock_path), sys.exit(0)))
print("fake: up", file=sys.stderr, flush=True)
while True:
    signal.pause()
'''

FAKE_CTL = r'''#!/usr/bin/python3
import json, sys
args = sys.argv[1:]
if args[-1] == "fail":
    print("fake: usage", file=sys.stderr)
    sys.exit(2)
print(json.dumps({"args": args}))
'''


def test_daemon_helper_with_fake_binaries(transmitter, users, system_bus, tmp_path):
    build = tmp_path / "fake-build"
    build.mkdir()
    for name, text in (("ssf-sessiond", FAKE_DAEMON), ("ssfctl", FAKE_CTL)):
        (build / name).write_text(text)
        (build / name).chmod(0o755)
    env = {**system_bus.env(), **users.env()}
    d = support.Daemon(str(build), str(tmp_path / "d"), transmitter, env=env,
                       rules="[rule r]\naction = none\n")
    assert os.stat(d.hooks_dir).st_mode & 0o777 == 0o755
    assert d.check_config().returncode == 0
    d.start(timeout=20)
    try:
        assert os.path.exists(d.socket)
        with open(os.path.join(d.dir, "fake-env.json")) as f:
            seen = json.load(f)
        assert seen["config_mode"] == 0o644
        assert seen["args"] == ["--config", d.config_path, "--foreground", "--log-level", "debug"]
        assert seen["env"]["DBUS_SYSTEM_BUS_ADDRESS"] == system_bus.address
        assert seen["env"]["NSS_WRAPPER_PASSWD"] == users.passwd
        assert "[rule r]" in d.config_text and "action = none" in d.config_text
        assert d.ctl("risk", "alice") == {"args": ["--json", "--socket", d.socket, "risk", "alice"]}
        cp = d.ctl("status", json=False)
        assert cp.returncode == 0 and json.loads(cp.stdout)["args"][:2] == ["--socket", d.socket]
        rc, parsed, err = d.ctl("fail", check=False)
        assert rc == 2 and parsed is None and "usage" in err
        with pytest.raises(AssertionError):
            d.ctl("fail")
        assert "fake: up" in d.log()
    finally:
        assert d.stop() == 0
    assert not d.running()

    failing = support.Daemon(str(build), str(tmp_path / "d2"), transmitter,
                             env={**env, "FAKE_FAIL": "1"})
    with pytest.raises(AssertionError) as e:
        failing.start(timeout=20)
    assert "exited with 3" in str(e.value) and "failing as asked" in str(e.value)


def test_stack_starts_and_stops_everything(tmp_path):
    s = support.Stack(str(tmp_path / "stack"), build_dir=str(tmp_path / "no-build"))
    with s:
        assert s.transmitter.proc.poll() is None and s.bus.proc.poll() is None
        assert s.logind.proc.poll() is None
        s.logind.add_session("c9", s.users.uid("bob"), "bob")
        assert s.logind.sessions() == [("c9", 2002, "bob")]
        assert s.daemon_env()["DBUS_SYSTEM_BUS_ADDRESS"] == s.bus.address
    for p in (s.transmitter.proc, s.bus.proc, s.logind.proc):
        assert p.poll() is not None
