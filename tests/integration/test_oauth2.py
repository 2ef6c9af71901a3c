# SPDX-License-Identifier: MIT
"""auth = oauth2: the daemon gets access tokens from the transmitter's OAuth 2.0 token
endpoint (client credentials grant, client_secret_basic), refreshes them before they expire
and after a 401, and survives a refused client secret."""

import base64
import json
import os
import signal
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

import support
from support import wait_for

RULES = support.LOGOUT_HIGH_RULES


def token_request(t, client_id=None, secret=None, body=None, ctype="application/x-www-form-urlencoded"):
    """POST to the transmitter's token endpoint; returns (status, parsed JSON)."""
    with open(t.oauth2_client_secret_file) as f:
        real_secret = f.read().strip()
    cid = t.oauth2_client_id if client_id is None else client_id
    pw = real_secret if secret is None else secret
    cred = urllib.parse.quote_plus(cid) + ":" + urllib.parse.quote_plus(pw)
    headers = {"Authorization": "Basic " + base64.b64encode(cred.encode()).decode(),
               "Content-Type": ctype}
    data = (body if body is not None else
            "grant_type=client_credentials&scope=ssf.read+ssf.manage").encode()
    req = urllib.request.Request(t.oauth2_token_url, data=data, method="POST", headers=headers)
    ctx = ssl.create_default_context(cafile=t.ca_file)
    try:
        with urllib.request.urlopen(req, timeout=20, context=ctx) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def write_secret(path, value):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)


def assert_no_secrets_logged(d, t):
    log = d.log()
    with open(t.oauth2_client_secret_file) as f:
        secret = f.read().strip()
    assert secret not in log
    assert urllib.parse.quote_plus(secret) not in log
    for token in t.oauth2_state()["issued"]:
        assert token not in log


# ----------------------------------------------------------------------------- transmitter

def test_token_endpoint(transmitter):
    t = transmitter
    with open(os.path.join(t.state_dir, "oauth2.json")) as f:
        info = json.load(f)
    assert info == {"token_url": t.origin + "/oauth2/token", "client_id": t.oauth2_client_id,
                    "client_secret_file": t.oauth2_client_secret_file}
    assert os.stat(t.oauth2_client_secret_file).st_mode & 0o777 == 0o600

    status, tok = token_request(t)
    assert status == 200, tok
    assert tok["token_type"] == "Bearer" and tok["expires_in"] == 3600
    assert tok["scope"] == "ssf.read ssf.manage"
    # The access token opens every protected endpoint, like the static token.
    status, _, _ = t.request("GET", "/ssf/stream", headers={"Authorization": "Bearer " + tok["access_token"]})
    assert status == 200
    status, _, _ = t.request("GET", "/ssf/stream", headers={"Authorization": "Bearer x" + tok["access_token"]})
    assert status == 401

    # Refusals, in RFC 6749 5.2's format.
    assert token_request(t, secret="wrong") == (401, {"error": "invalid_client",
                                                      "error_description": "Client authentication failed"})
    assert token_request(t, client_id="someone-else")[1]["error"] == "invalid_client"
    assert token_request(t, body="grant_type=password")[1]["error"] == "unsupported_grant_type"
    assert token_request(t, body="scope=ssf.read")[1]["error"] == "invalid_request"
    assert token_request(t, body="grant_type=client_credentials&scope=ssf.admin")[1]["error"] == \
        "invalid_scope"
    assert token_request(t, body='{"grant_type":"client_credentials"}',
                         ctype="application/json")[1]["error"] == "invalid_request"

    # A token whose real lifetime is shorter than advertised: refused once it is over.
    t.configure(oauth2_token_lifetime=0.5)
    status, tok = token_request(t)
    assert status == 200 and tok["expires_in"] == 3600
    time.sleep(0.7)
    status, hdrs, body = t.request("GET", "/ssf/stream",
                                   headers={"Authorization": "Bearer " + tok["access_token"]})
    assert status == 401 and "expired" in hdrs["WWW-Authenticate"]
    c = t.oauth2_state()["counters"]
    assert c["oauth2_token_rejected"] == 1 and c["oauth2_tokens_issued"] == 2


# ----------------------------------------------------------------------------- daemon

def test_daemon_with_oauth2_acts_on_a_set(daemon_factory, transmitter, logind, users):
    t = transmitter
    d = daemon_factory(rules=RULES, transmitter_opts=t.oauth2_opts())
    assert "token_file" not in d.config_text
    cp = d.check_config()
    assert cp.returncode == 0, cp.stdout + cp.stderr

    logind.add_session("c1", users.uid("alice"), "alice")
    jti = t.send_event("session-revoked", email="alice@example.com")
    t.wait_acked(jti)
    logind.wait_terminated("c1")
    assert d.ctl("risk", "alice")["level"] == "high"

    st = t.oauth2_state()
    assert st["counters"]["oauth2_tokens_issued"] >= 1
    assert st["counters"]["oauth2_token_accepted"] >= 3  # stream set-up and polls
    for r in st["requests"]:
        assert r["error"] is None, r
        assert r["content_type"] == "application/x-www-form-urlencoded"
        assert r["client_id"] == t.oauth2_client_id
        assert r["grant_type"] == "client_credentials"
        assert r["scope"] == "ssf.read ssf.manage"
    # One token is enough for a while: no refresh before it nears its end.
    assert st["counters"]["oauth2_tokens_issued"] == 1
    assert "Obtained an OAuth 2.0 access token" in d.log()
    assert_no_secrets_logged(d, t)


def test_client_id_and_secret_are_form_encoded(daemon_factory, transmitter_factory, logind, users):
    # A client id with a ':' and a blank, a secret with '%', '+', '/', ':' and '&'.
    t = transmitter_factory(extra_args=["--oauth2-client-id", "host1:ssf receiver",
                                        "--oauth2-client-secret", "s3:cr+et/%&=~"])
    d = daemon_factory(tx=t, rules=RULES,
                       transmitter_opts=t.oauth2_opts(oauth2_scope="ssf.read"))
    jti = t.send_event("credential-change", email="bob@example.com")
    t.wait_acked(jti)
    st = t.oauth2_state()
    assert st["requests"][0]["client_id"] == "host1:ssf receiver"
    assert st["requests"][0]["scope"] == "ssf.read"
    assert st["counters"].get("oauth2_token_errors", 0) == 0
    assert_no_secrets_logged(d, t)


def test_short_lived_tokens_are_refreshed_before_they_expire(daemon_factory, transmitter):
    t = transmitter
    t.configure(oauth2_expires_in=2, long_poll_max=1)
    d = daemon_factory(rules=RULES, transmitter_opts=t.oauth2_opts())
    wait_for(lambda: t.oauth2_state()["counters"].get("oauth2_tokens_issued", 0) >= 4, 30,
             "the daemon to refresh its 2-second token several times")
    jti = t.send_event("session-revoked", email="carol@example.com")
    t.wait_acked(jti)
    c = t.oauth2_state()["counters"]
    # Refreshed ahead of time: the transmitter never saw an expired token.
    assert c.get("oauth2_token_rejected", 0) == 0, c
    assert "refused our credentials" not in d.log()
    assert_no_secrets_logged(d, t)


def test_token_expiry_401_forces_one_refresh(daemon_factory, transmitter):
    t = transmitter
    # Advertised for an hour, but dead after 2 s: the daemon learns it from a 401.
    t.configure(oauth2_token_lifetime=2, long_poll_max=1)
    d = daemon_factory(rules=RULES, transmitter_opts=t.oauth2_opts())
    # Two expired tokens refused, and a new one fetched after each (the third right after the
    # second refusal: wait for it rather than race it).
    wait_for(lambda: t.oauth2_state()["counters"].get("oauth2_token_rejected", 0) >= 2 and
             t.oauth2_state()["counters"].get("oauth2_tokens_issued", 0) >= 3, 30,
             "the transmitter to refuse two expired tokens and issue a third")
    jti = t.send_event("session-revoked", email="carol@example.com")
    t.wait_acked(jti, timeout=10)
    log = d.log()
    assert "Poll endpoint refused our credentials (HTTP 401)" in log
    # Each 401 was followed by a new token and an immediate poll, not a back-off.
    assert "Transmitter not usable" not in log
    assert d.running()
    assert_no_secrets_logged(d, t)


def test_wrong_client_secret_then_fixed(daemon_factory, transmitter, tmp_path):
    t = transmitter
    secret_file = str(tmp_path / "client-secret")
    write_secret(secret_file, "not-the-secret")
    d = daemon_factory(rules=RULES, transmitter_opts=t.oauth2_opts(secret_file=secret_file))

    wait_for(lambda: "error 'invalid_client'" in d.log(), 20, "the OAuth error in the log")
    assert d.running()
    assert t.streams() == []
    assert d.ctl("status") is not None  # still answering
    line = next(x for x in d.log().splitlines() if "invalid_client" in x)
    assert t.oauth2_token_url in line and "HTTP 401" in line
    assert "not-the-secret" not in d.log()

    # The admin fixes the file and reloads: the worker reads it again.
    with open(t.oauth2_client_secret_file) as f:
        write_secret(secret_file, f.read().strip())
    d.signal(signal.SIGHUP)
    t.wait_stream(timeout=20)
    jti = t.send_event("session-revoked", email="alice@example.com")
    t.wait_acked(jti)
    assert d.running()
    assert_no_secrets_logged(d, t)


def test_unusable_token_response_is_retried(daemon_factory, transmitter):
    t = transmitter
    t.configure(oauth2_token_type="MAC")
    d = daemon_factory(rules=RULES, transmitter_opts=t.oauth2_opts())
    wait_for(lambda: "token_type\" is not \"Bearer\"" in d.log(), 20,
             "the daemon to refuse a non-Bearer token")
    assert t.streams() == []
    # The token endpoint gets better: the next attempt succeeds without a reload.
    t.configure(oauth2_token_type="bearer")
    t.wait_stream(timeout=30)
    jti = t.send_event("session-revoked", email="alice@example.com")
    t.wait_acked(jti)
    assert_no_secrets_logged(d, t)


def test_token_endpoint_errors_name_the_error_code(daemon_factory, transmitter):
    t = transmitter
    d = daemon_factory(rules=RULES, transmitter_opts=t.oauth2_opts(oauth2_scope="ssf.admin"))
    wait_for(lambda: "error 'invalid_scope'" in d.log(), 20, "the invalid_scope error in the log")
    assert d.running()
    assert t.oauth2_state()["requests"][0]["scope"] == "ssf.admin"
