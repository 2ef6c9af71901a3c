# SPDX-License-Identifier: MIT
"""How the daemon authenticates to a transmitter and how it reaches it: the token endpoint's
client authentication methods (oauth2_client_auth = basic | post | private_key_jwt, the
client assertion verified by the transmitter with jwcrypto), mutual TLS (tls_client_cert,
tls_client_key) to the transmitter and its token endpoint, and an outbound proxy (proxy =
http(s)://HOST:PORT, through tests/helpers/connect_proxy.py) that carries every request while
the environment's proxy variables are never used."""

import datetime
import os
import ssl
import sys

import pytest

import support
from support import wait_for

sys.path.insert(0, os.path.join(support.REPO, "tests", "helpers"))
from connect_proxy import ConnectProxy  # noqa: E402

RULES = support.LOGOUT_HIGH_RULES


# ----------------------------------------------------------------------------- helpers

def write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    return path


def make_client_key(tmp_path, kind, name="client-key.pem"):
    """A private key for private_key_jwt: (private key file 0600, public key PEM text)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa"
           else ec.generate_private_key(ec.SECP256R1()))
    path = write_private(str(tmp_path / name), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, pub.decode()


def make_client_pki(directory, cn="host1.example.com"):
    """A test CA for client certificates and one client certificate issued by it.
    Returns {"ca", "cert", "key"} file paths (the key 0600)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    os.makedirs(directory, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ssf test client CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    out = {"ca": os.path.join(directory, "client-ca.pem"),
           "cert": os.path.join(directory, "client-cert.pem"),
           "key": os.path.join(directory, "client-key.pem")}
    with open(out["ca"], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(out["cert"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(out["cert"], 0o644)
    write_private(out["key"], key.private_bytes(serialization.Encoding.PEM,
                                                serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    return out


def use_client_cert(t, pki):
    """The test's own requests to a transmitter that requires client certificates (its
    control API is behind the same TLS listener) present the client certificate too."""
    ctx = ssl.create_default_context(cafile=t.ca_file)
    ctx.load_cert_chain(pki["cert"], pki["key"])
    t._ctx = ctx


def token_requests(t):
    return t.oauth2_state()["requests"]


def delivers(d, t, logind, users, user="alice", session="c1"):
    """A session-revoked SET for user reaches the daemon and logs the session out."""
    logind.add_session(session, users.uid(user), user)
    jti = t.send_event("session-revoked", email=f"{user}@example.com")
    t.wait_acked(jti)
    logind.wait_terminated(session)
    assert d.ctl("risk", user)["level"] == "high"


def refused_without_sets(d, t, needle, timeout=20):
    """The daemon logs `needle` (its clear error), keeps running, creates no stream and so
    applies no SET."""
    wait_for(lambda: needle in d.log(), timeout, f"{needle!r} in the daemon's log")
    assert d.running()
    assert t.streams() == []
    assert t.acks()["acked"] == []


# ----------------------------------------------------------------------------- oauth2_client_auth

def test_client_secret_post_end_to_end(daemon_factory, transmitter, logind, users):
    t = transmitter
    t.configure(oauth2_client_auth="client_secret_post")
    d = daemon_factory(rules=RULES, transmitter_opts=t.oauth2_opts(oauth2_client_auth="post"))
    assert d.check_config().returncode == 0
    delivers(d, t, logind, users)
    reqs = token_requests(t)
    assert reqs and all(r["client_auth"] == "client_secret_post" and r["error"] is None
                        and r["client_id"] == t.oauth2_client_id for r in reqs), reqs
    with open(t.oauth2_client_secret_file) as f:
        assert f.read().strip() not in d.log()


def test_client_secret_basic_is_the_default(daemon_factory, transmitter, logind, users):
    t = transmitter
    d = daemon_factory(rules=RULES, transmitter_opts=t.oauth2_opts())
    delivers(d, t, logind, users)
    assert {r["client_auth"] for r in token_requests(t)} == {"client_secret_basic"}


@pytest.mark.parametrize("kind,alg", [("rsa", "RS256"), ("ec", "ES256")])
def test_private_key_jwt_end_to_end(daemon_factory, transmitter, logind, users, tmp_path, kind,
                                    alg):
    t = transmitter
    key_file, public_pem = make_client_key(tmp_path, kind)
    t.configure(oauth2_client_auth="private_key_jwt", oauth2_client_public_key=public_pem)
    # No client secret at all: the key is the credential.
    opts = t.oauth2_opts(oauth2_client_auth="private_key_jwt", oauth2_private_key=key_file,
                         oauth2_key_id="host1-key")
    opts["oauth2_client_secret_file"] = None
    d = daemon_factory(rules=RULES, transmitter_opts=opts)
    cp = d.check_config()
    assert cp.returncode == 0, cp.stdout + cp.stderr
    delivers(d, t, logind, users)
    st = t.oauth2_state()
    assert st["requests"] and all(r["client_auth"] == "private_key_jwt" and r["error"] is None
                                  for r in st["requests"]), st["requests"]
    # Each token request carried a fresh assertion the transmitter verified (alg, signature,
    # iss, sub, aud, exp, iat, unused jti).
    assert st["counters"]["oauth2_assertions_accepted"] == st["counters"]["oauth2_tokens_issued"]
    assert st["counters"].get("oauth2_assertion_replayed", 0) == 0


def test_private_key_jwt_fresh_assertion_for_each_token(daemon_factory, transmitter, tmp_path):
    t = transmitter
    key_file, public_pem = make_client_key(tmp_path, "ec")
    t.configure(oauth2_client_auth="private_key_jwt", oauth2_client_public_key=public_pem,
                oauth2_expires_in=2, long_poll_max=1)
    opts = t.oauth2_opts(oauth2_client_auth="private_key_jwt", oauth2_private_key=key_file,
                         oauth2_client_secret_file=None)
    daemon_factory(rules=RULES, transmitter_opts=opts)
    wait_for(lambda: t.oauth2_state()["counters"].get("oauth2_assertions_accepted", 0) >= 3, 30,
             "three token requests, each with an assertion the transmitter accepted")
    c = t.oauth2_state()["counters"]
    assert c.get("oauth2_assertion_replayed", 0) == 0 and c.get("oauth2_token_errors", 0) == 0, c


@pytest.mark.parametrize("required,configured", [
    ("client_secret_post", "basic"),
    ("client_secret_basic", "post"),
    ("private_key_jwt", "post"),
])
def test_wrong_method_is_refused(daemon_factory, transmitter, tmp_path, required, configured):
    t = transmitter
    t.configure(oauth2_client_auth=required)
    used = {"basic": "client_secret_basic", "post": "client_secret_post"}[configured]
    d = daemon_factory(rules=RULES, transmitter_opts=t.oauth2_opts(oauth2_client_auth=configured))
    refused_without_sets(d, t, "error 'invalid_client'")
    line = next(x for x in d.log().splitlines() if "invalid_client" in x)
    assert f"authenticated with {used}" in line and f"it must use {required}" in line, line
    assert all(r["error"] == "invalid_client" for r in token_requests(t))


def test_wrong_secret_with_post_is_refused(daemon_factory, transmitter, tmp_path):
    t = transmitter
    t.configure(oauth2_client_auth="client_secret_post")
    secret = write_private(str(tmp_path / "wrong-secret"), b"not-the-secret\n")
    d = daemon_factory(rules=RULES, transmitter_opts=t.oauth2_opts(
        oauth2_client_auth="post", oauth2_client_secret_file=secret))
    refused_without_sets(d, t, "error 'invalid_client'")
    assert "Client authentication failed" in d.log()
    assert "not-the-secret" not in d.log()


def test_private_key_jwt_wrong_key_is_refused(daemon_factory, transmitter, tmp_path):
    t = transmitter
    key_file, _ = make_client_key(tmp_path, "rsa", "ours.pem")
    _, other_public = make_client_key(tmp_path, "rsa", "registered.pem")
    t.configure(oauth2_client_auth="private_key_jwt", oauth2_client_public_key=other_public)
    opts = t.oauth2_opts(oauth2_client_auth="private_key_jwt", oauth2_private_key=key_file,
                         oauth2_client_secret_file=None)
    d = daemon_factory(rules=RULES, transmitter_opts=opts)
    refused_without_sets(d, t, "client assertion refused: bad signature")
    assert "authenticated with private_key_jwt" in d.log()


def test_private_key_jwt_unusable_key_file(daemon_factory, transmitter, tmp_path):
    t = transmitter
    bad = write_private(str(tmp_path / "not-a-key.pem"), b"-----BEGIN PRIVATE KEY-----\nAAAA\n")
    opts = t.oauth2_opts(oauth2_client_auth="private_key_jwt", oauth2_private_key=bad,
                         oauth2_client_secret_file=None)
    d = daemon_factory(rules=RULES, transmitter_opts=opts)
    wait_for(lambda: "is not an unencrypted PEM private key" in d.log(), 20,
             "the key error in the log")
    assert d.running() and t.streams() == []
    assert token_requests(t) == []


def test_check_config_per_method(daemon_factory, transmitter, tmp_path):
    t = transmitter
    key_file, _ = make_client_key(tmp_path, "ec")
    loose = str(tmp_path / "loose-key.pem")
    with open(key_file, "rb") as f, open(loose, "wb") as g:
        g.write(f.read())
    os.chmod(loose, 0o644)
    pki = make_client_pki(str(tmp_path / "pki"))
    cases = [
        (dict(oauth2_client_auth="private_key_jwt", oauth2_client_secret_file=None),
         "oauth2_client_auth = private_key_jwt needs 'oauth2_private_key'"),
        (dict(oauth2_client_auth="post", oauth2_client_secret_file=None),
         "oauth2_client_auth = post needs 'oauth2_client_secret_file'"),
        (dict(oauth2_client_secret_file=None),
         "oauth2_client_auth = basic needs 'oauth2_client_secret_file'"),
        (dict(oauth2_client_auth="private_key_jwt", oauth2_private_key=loose),
         "is readable by group or others"),
        (dict(oauth2_client_auth="private_key_jwt",
              oauth2_private_key=str(tmp_path / "missing.pem")), "does not exist"),
        (dict(oauth2_private_key=key_file), "'oauth2_private_key' is only used with"),
        (dict(oauth2_client_auth="tls_client_auth"), "expected basic, post or private_key_jwt"),
        (dict(tls_client_cert=pki["cert"]), "tls_client_cert needs 'tls_client_key'"),
        (dict(tls_client_key=pki["key"]), "tls_client_key needs 'tls_client_cert'"),
        (dict(proxy="socks5://127.0.0.1:1080"), "must be http://HOST:PORT or https://HOST:PORT"),
        (dict(proxy="http://user:pw@127.0.0.1:3128"), "no user name or password"),
        (dict(proxy="http://127.0.0.1"), "must be http://HOST:PORT"),
        (dict(proxy="http://127.0.0.1:3128/path"), "must be http://HOST:PORT"),
    ]
    for i, (extra, needle) in enumerate(cases):
        d = daemon_factory(rules=RULES, transmitter_opts=t.oauth2_opts(**extra), start=False,
                           name=f"check{i}")
        cp = d.check_config()
        assert cp.returncode != 0 and needle in cp.stdout + cp.stderr, (extra, cp.stdout + cp.stderr)
    # And the good shapes pass.
    for i, extra in enumerate([
            dict(oauth2_client_auth="private_key_jwt", oauth2_private_key=key_file,
                 oauth2_key_id="k1", oauth2_client_secret_file=None),
            dict(tls_client_cert=pki["cert"], tls_client_key=pki["key"]),
            dict(proxy="http://127.0.0.1:3128"), dict(proxy="https://[::1]:3128/"),
            dict(proxy="http://proxy.example.com:8080")]):
        d = daemon_factory(rules=RULES, transmitter_opts=t.oauth2_opts(**extra), start=False,
                           name=f"good{i}")
        cp = d.check_config()
        assert cp.returncode == 0, (extra, cp.stdout + cp.stderr)


# ----------------------------------------------------------------------------- mutual TLS

@pytest.fixture
def mtls(transmitter_factory, tmp_path):
    """A transmitter that requires client certificates from a test CA; the test's own
    requests present one. Value: (transmitter, pki)."""
    pki = make_client_pki(str(tmp_path / "pki"))
    t = transmitter_factory(name="mtls", extra_args=["--client-ca", pki["ca"]])
    use_client_cert(t, pki)
    return t, pki


def test_mtls_required_and_given(daemon_factory, mtls, logind, users):
    t, pki = mtls
    # With auth = oauth2, so that the token endpoint sees the certificate too.
    d = daemon_factory(tx=t, rules=RULES, transmitter_opts=t.oauth2_opts(
        tls_client_cert=pki["cert"], tls_client_key=pki["key"]))
    assert d.check_config().returncode == 0
    delivers(d, t, logind, users)
    reqs = t.acks()["requests"]
    paths = {r["path"] for r in reqs}
    assert "/oauth2/token" in paths and "/.well-known/ssf-configuration" in paths, paths
    assert all(r["client_cert"] == "host1.example.com" for r in reqs), reqs


def test_mtls_missing_certificate_fails(daemon_factory, mtls):
    t, _ = mtls
    d = daemon_factory(tx=t, rules=RULES)
    wait_for(lambda: "TLS handshake failed" in t.log(), 20,
             "the transmitter to refuse a connection without a client certificate")
    wait_for(lambda: "Failed to fetch transmitter metadata" in d.log(), 20,
             "the daemon to log the failed discovery")
    # The reason, in words: the server's TLS alert, and what to configure. A loaded machine
    # may see the connection reset before the alert is read: the discovery is tried again.
    line = wait_for(lambda: next((x for x in d.log().splitlines() if "certificate required" in x),
                                 None), 60, "the server's alert in the daemon's log")
    assert "warning" in line and "tls_client_cert" in line, line
    assert d.running()
    assert t.streams() == []
    assert t.acks()["requests"] == []  # no request got past the handshake


def test_mtls_key_file_must_be_private(daemon_factory, mtls, tmp_path):
    t, pki = mtls
    os.chmod(pki["key"], 0o644)
    d = daemon_factory(tx=t, rules=RULES, start=False, transmitter_opts={
        "tls_client_cert": pki["cert"], "tls_client_key": pki["key"]})
    cp = d.check_config()
    assert cp.returncode != 0 and "tls_client_key" in cp.stdout + cp.stderr


# ----------------------------------------------------------------------------- proxy

@pytest.fixture
def proxy():
    p = ConnectProxy().start()
    yield p
    p.stop()


BOGUS_PROXY_ENV = {
    # Nothing listens on port 9 here: a client that used these would fail.
    "HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9",
    "ALL_PROXY": "http://127.0.0.1:9", "all_proxy": "http://127.0.0.1:9",
}


def assert_all_through(t, p):
    """Every request the transmitter served came in on a connection the proxy tunnelled."""
    reqs = t.acks()["requests"]
    assert reqs
    ports = p.upstream_ports
    stray = [r for r in reqs if r["peer_port"] not in ports]
    assert not stray, (stray, ports)
    assert set(p.connects) == {f"127.0.0.1:{t.port}"}, p.requests
    # CONNECT carries nothing of ours: no Authorization to the proxy.
    assert all("authorization" not in r["headers"] for r in p.requests)


def test_proxy_carries_all_traffic(daemon_factory, transmitter, proxy, logind, users):
    t = transmitter
    # The environment names other proxies and exempts loopback: the configured proxy is used
    # for everything all the same.
    env = dict(BOGUS_PROXY_ENV, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    d = daemon_factory(rules=RULES, env=env, transmitter_opts=t.oauth2_opts(proxy=proxy.url))
    delivers(d, t, logind, users)
    paths = {r["path"] for r in t.acks()["requests"]}
    assert {"/.well-known/ssf-configuration", "/oauth2/token", "/ssf/jwks.json"} <= paths, paths
    assert any(p.startswith("/ssf/poll") for p in paths), paths
    assert_all_through(t, proxy)


def test_proxy_https(daemon_factory, transmitter, logind, users, tmp_path):
    t = transmitter
    # The proxy's certificate comes from a CA of its own; the daemon trusts it through
    # ca_file, which then holds both CAs.
    sys.path.insert(0, os.path.dirname(support.TRANSMITTER_SCRIPT))
    from ssf_transmitter import make_tls_files
    pdir = str(tmp_path / "proxy-tls")
    os.makedirs(pdir)
    proxy_ca, cert, key = make_tls_files(pdir)
    bundle = str(tmp_path / "ca-bundle.pem")
    with open(bundle, "w") as out:
        for f in (t.ca_file, proxy_ca):
            with open(f) as g:
                out.write(g.read())
    p = ConnectProxy(tls_cert=cert, tls_key=key).start()
    try:
        assert p.url.startswith("https://")
        d = daemon_factory(rules=RULES, env=BOGUS_PROXY_ENV,
                           transmitter_opts={"proxy": p.url, "ca_file": bundle})
        delivers(d, t, logind, users)
        assert_all_through(t, p)
    finally:
        p.stop()


def test_proxy_down_fails_clearly(daemon_factory, transmitter, proxy):
    t = transmitter
    url = proxy.url
    proxy.stop()  # nothing listens there now
    d = daemon_factory(rules=RULES, transmitter_opts={"proxy": url})
    wait_for(lambda: "Failed to fetch transmitter metadata" in d.log(), 20,
             "the daemon to log the failed discovery")
    assert f"failed through proxy {url}" in d.log()
    assert d.running()
    assert t.acks()["requests"] == []  # it never went direct


def test_environment_proxy_is_ignored_without_proxy_key(daemon_factory, transmitter, logind,
                                                        users):
    t = transmitter
    d = daemon_factory(rules=RULES, env=BOGUS_PROXY_ENV, transmitter_opts=t.oauth2_opts())
    assert "proxy =" not in d.config_text
    delivers(d, t, logind, users)
    assert "/oauth2/token" in {r["path"] for r in t.acks()["requests"]}


def test_push_delivery_with_proxy_and_client_secret_post(daemon_factory, transmitter, proxy,
                                                         logind, users, tmp_path):
    """delivery = push: the transmitter pushes to the daemon's listener directly, and every
    request of the daemon's own (discovery, token, stream, keys) goes through the proxy."""
    t = transmitter
    ca, cert, key = support.push_tls(tmp_path / "push-tls")
    port = support.free_port()
    t.configure(push_ca=ca, oauth2_client_auth="client_secret_post")
    d = daemon_factory(rules=RULES, env=BOGUS_PROXY_ENV, transmitter_opts=t.oauth2_opts(
        oauth2_client_auth="post", proxy=proxy.url, delivery="push",
        push_listen=f"127.0.0.1:{port}", push_url=f"https://127.0.0.1:{port}/ssf/events",
        push_cert=cert, push_key=key, poll_wait=None))
    wait_for(lambda: any(s["delivery"].get("method") == "urn:ietf:rfc:8935"
                         for s in t.streams()), 20, "a push stream on the transmitter")
    delivers(d, t, logind, users)
    assert any(r["status"] == 202 for r in t.acks()["push_results"])
    assert {r["client_auth"] for r in token_requests(t)} == {"client_secret_post"}
    assert_all_through(t, proxy)
