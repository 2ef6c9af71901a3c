#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A local OpenID Shared Signals Framework transmitter for tests and the demo.

It serves SSF discovery, a JWKS, the stream management API (SSF 1.0 section 8),
poll delivery (RFC 8936) and push delivery (RFC 8935) over HTTPS with a private CA,
and a bearer-protected control API under /control/ that tests use to emit Security
Event Tokens (signed with jwcrypto, an implementation independent of the C verifier),
to tamper with them, to rotate keys and to inspect acknowledgements.

It is also an OAuth 2.0 authorization server for the client credentials grant
(RFC 6749 section 4.4): POST /oauth2/token issues short-lived random access tokens, which
every protected endpoint accepts alongside the static bearer token. The client must
authenticate with the one method configured (--oauth2-client-auth, or "oauth2_client_auth"
in /control/config): client_secret_basic (HTTP Basic, the default), client_secret_post
(client_id and client_secret in the form) or private_key_jwt (RFC 7523: a client assertion
verified with jwcrypto against the client's public key, --oauth2-client-key or
"oauth2_client_public_key" (PEM) in /control/config: signature, iss = sub = client id, aud =
the token endpoint, exp in the future and at most 5 minutes (plus 30 s of skew) ahead, iat,
and a jti never seen before). With --client-ca FILE every TLS connection must present a
client certificate issued by that CA (mutual TLS, RFC 8705); /control/acks then records
each request's client certificate subject CN. Tokens live `expires_in` seconds
(default 3600); /control/config can shorten their real lifetime (oauth2_token_lifetime)
without changing the advertised expires_in, to make a receiver meet a 401.

Usable in-process (class Transmitter, start()/stop()) or as a command:

    ssf_transmitter.py --listen 127.0.0.1:0 --state-dir DIR [--issuer-path /tenant1]
                       [--alg RS256|PS256|ES256|EdDSA] [--token TOKEN] [--audience AUD]
                       [--long-poll-max 10] [--redelivery-delay 2] [--push-ca FILE]
                       [--oauth2-client-id ID] [--oauth2-client-secret SECRET]
                       [--oauth2-expires-in SECONDS]
                       [--oauth2-client-auth client_secret_basic|client_secret_post|private_key_jwt]
                       [--oauth2-client-key PUBLIC-KEY-PEM] [--client-ca CA-PEM]
                       [--critical-subject-members user,tenant]

Tests can also make it misbehave through /control/config: "fail" ({path_prefix, status,
count, retry_after}: answer that many requests with that status and Retry-After value),
"status_delay" (seconds the stream status endpoint waits before answering), "log_jtis"
(true: /control/acks lists for each poll the jtis it acknowledged and delivered, "acked_jtis"
and "sets_jtis", beside their numbers);
/control/events with {"events": [...]} signs and queues many SETs in one request (each item
as the body of a single one); /control/rotate-key publishes a new signing key;
/control/ack-count answers only how many
acknowledgements and setErrs entries it holds; /control/acks lists every request it
served outside /control/ with the time it arrived and was answered (time.monotonic() of
the transmitter's process) and, for polls, what they carried.
For the conformance tests, /control/config also takes "stream_iss_override" (the "iss" of
the stream configurations the stream API answers with, discovery unchanged), "hold_delivery"
(true: nothing is polled or pushed, SETs stay queued in order) and "next_verification"
({"state": S} and/or {"subject_id": ID}: the SET answering the next verification request
carries that state / sub_id instead, once); /control/stream-status with "after_ack": true
changes the status only once the stream-updated SET announcing it was acknowledged (SSF
8.1.5: the event is sent before the stream stops).
/control/static-push {endpoint_url, authorization_header} is the stream-less push mode: a
"stream" registered by the admin, whose SETs are POSTed to that URL with that Authorization.
Several instances (each its own DIR and port) are several transmitters: distinct issuers,
keys and tokens. POST /control/events answers with the SET ({"jti", "token", "claims",
"streams"}) and "available": the time.time() at which a poll or the push thread could take it.

Every answer leaves in one write on a socket without Nagle (TCP_NODELAY), and pushes go over
one kept-alive HTTPS connection per receiver origin, as a production transmitter's would:
round trips on loopback are then well under a millisecond, not the ~40 ms of a delayed ACK.

Once listening it writes DIR/ready.json: {"issuer", "port", "ca_file", "token_file",
"control_url", "origin", "audience", "pid"}, and DIR/oauth2.json: {"token_url",
"client_id", "client_secret_file"} (the secret file is mode 0600).
"""

import argparse
import base64
import http.client
import datetime
import hmac
import ipaddress
import json
import os
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jwcrypto import jwk, jws

CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
OKTA = "https://schemas.okta.com/secevent/okta/event-type/"
SSF = "https://schemas.openid.net/secevent/ssf/event-type/"

CAEP_EVENTS = ["session-revoked", "token-claims-change", "credential-change",
               "assurance-level-change", "device-compliance-change", "session-established",
               "session-presented", "risk-level-change"]
RISC_EVENTS = ["account-disabled", "account-enabled", "account-purged",
               "account-credential-change-required", "credential-compromise",
               "identifier-changed", "identifier-recycled", "recovery-activated",
               "recovery-information-changed", "opt-in", "opt-out-initiated",
               "opt-out-cancelled", "opt-out-effective", "sessions-revoked"]
OKTA_EVENTS = ["user-risk-change", "device-risk-change"]
SSF_EVENTS = ["verification", "stream-updated"]

EVENT_URIS = {}
for _n in CAEP_EVENTS:
    EVENT_URIS[_n] = CAEP + _n
for _n in RISC_EVENTS:
    EVENT_URIS[_n] = RISC + _n
for _n in OKTA_EVENTS:
    EVENT_URIS[_n] = OKTA + _n
for _n in SSF_EVENTS:
    EVENT_URIS[_n] = SSF + _n
# PRODUCT.md lists "opt-out" as one detection name; RISC splits it in three.
EVENT_URIS["opt-out"] = RISC + "opt-out-effective"

SUPPORTED_EVENTS = ([CAEP + n for n in CAEP_EVENTS] + [RISC + n for n in RISC_EVENTS]
                    + [OKTA + n for n in OKTA_EVENTS])

POLL = "urn:ietf:rfc:8936"
PUSH = "urn:ietf:rfc:8935"

# Event members added when the caller does not give them (payload members win; a
# payload member set to null removes the default).
EVENT_DEFAULTS = {
    "device-compliance-change": {"previous_status": "compliant", "current_status": "not-compliant"},
    "credential-change": {"credential_type": "password", "change_type": "update"},
    "risk-level-change": {"principal": "USER", "current_level": "HIGH"},
    "credential-compromise": {"credential_type": "password"},
    "assurance-level-change": {"namespace": "NIST-AAL", "current_level": "nist-aal1",
                               "previous_level": "nist-aal2", "change_direction": "decrease"},
    "token-claims-change": {"claims": {"trusted_network": False}},
    "user-risk-change": {"current_level": "high", "previous_level": "low"},
    "device-risk-change": {"current_level": "high", "previous_level": "low"},
    "session-revoked": {"reason_admin": {"en": "Session revoked by policy"}},
}

TAMPER_MODES = ("signature", "payload", "alg-none", "kid-unknown", "typ", "wrong-key",
                "alg-hs256")
SIGN_ALGS = ("RS256", "PS256", "ES256", "EdDSA")
OAUTH2_SCOPES = ("ssf.read", "ssf.manage")
OAUTH2_FORM = "application/x-www-form-urlencoded"
OAUTH2_CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
OAUTH2_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
OAUTH2_ASSERTION_MAX_AHEAD = 300 + 30  # exp at most 5 minutes ahead, plus clock skew
MAX_BODY = 1 << 20
REQUEST_LOG_MAX = 5000
LONG_POLL_CAP = 30.0


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def event_uri(name):
    """Short name (PRODUCT.md) or full URI -> URI."""
    if "://" in name or name.startswith("urn:"):
        return name
    try:
        return EVENT_URIS[name]
    except KeyError:
        raise ValueError(f"unknown event name {name!r}") from None


def short_name(uri):
    return uri.rstrip("/").rsplit("/", 1)[-1]


class RequestError(Exception):
    def __init__(self, status, err, description, headers=None):
        super().__init__(description)
        self.status = status
        self.err = err
        self.description = description
        self.headers = headers or {}


class OAuthError(RequestError):
    """A token endpoint error: sent as {"error", "error_description"} (RFC 6749 5.2)."""


# ----------------------------------------------------------------------------- keys and TLS

def generate_signing_key(alg, kid=None):
    kid = kid or f"{alg.lower()}-{secrets.token_hex(6)}"
    if alg in ("RS256", "PS256"):
        key = jwk.JWK.generate(kty="RSA", size=2048, kid=kid)
    elif alg == "ES256":
        key = jwk.JWK.generate(kty="EC", crv="P-256", kid=kid)
    elif alg == "EdDSA":
        key = jwk.JWK.generate(kty="OKP", crv="Ed25519", kid=kid)
    else:
        raise ValueError(f"unsupported signing alg {alg!r}")
    return {"kid": kid, "alg": alg, "key": key}


def public_jwk(entry):
    pub = json.loads(entry["key"].export_public())
    pub["kid"] = entry["kid"]
    pub["alg"] = entry["alg"]
    pub["use"] = "sig"
    return pub


def make_tls_files(state_dir, hosts=("localhost",), ips=("127.0.0.1", "::1")):
    """Private CA + server certificate. Returns (ca_file, cert_file, key_file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start = now - datetime.timedelta(hours=1)
    end = now + datetime.timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ssf test transmitter CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                              critical=False)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName(h) for h in hosts] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file = os.path.join(state_dir, "ca.pem")
    cert_file = os.path.join(state_dir, "server-cert.pem")
    key_file = os.path.join(state_dir, "server-key.pem")
    with open(ca_file, "wb") as f:
        f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(ca_file, 0o644)
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return ca_file, cert_file, key_file


def verify_set(token, jwks, require_typ=True):
    """Oracle check with jwcrypto: verify `token` against a JWKS (dict or JSON text).

    Returns (header, claims). Raises on any failure (bad signature, unknown kid,
    alg none, alg not matching the key's, typ not secevent+jwt)."""
    if isinstance(jwks, str):
        jwks = json.loads(jwks)
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWS compact serialisation")
    header = json.loads(b64url_decode(parts[0]))
    alg = header.get("alg")
    if alg not in SIGN_ALGS:
        raise ValueError(f"alg {alg!r} not allowed")
    candidates = [k for k in jwks.get("keys", []) if k.get("kid") == header.get("kid")]
    if not candidates:
        raise ValueError(f"kid {header.get('kid')!r} not in JWKS")
    key_json = candidates[0]
    if key_json.get("alg") and key_json["alg"] != alg:
        raise ValueError("header alg does not match the key's alg")
    obj = jws.JWS()
    obj.deserialize(token)
    obj.verify(jwk.JWK(**key_json), alg=alg)
    if require_typ and str(header.get("typ", "")).lower() not in ("secevent+jwt",
                                                                   "application/secevent+jwt"):
        raise ValueError(f"typ {header.get('typ')!r} is not secevent+jwt")
    return header, json.loads(obj.payload)


# ----------------------------------------------------------------------------- state

class Stream:
    def __init__(self, stream_id, config):
        self.id = stream_id
        self.config = config
        self.status = "enabled"
        self.reason = None
        self.queue = {}          # jti -> entry (dict), insertion order = delivery order
        self.pending = {}        # the entries of queue still "pending", in the same order
        self.subjects = []
        self.last_verification = 0.0
        self.last_activity = time.monotonic()  # the receiver's last call about this stream
        self.polls_open = 0                    # long polls being held (activity too)

    def clear_queue(self):
        self.queue = {}
        self.pending = {}


class Transmitter:
    def __init__(self, listen="127.0.0.1:0", state_dir=None, issuer_path="", alg="RS256",
                 token=None, audience="https://host1.example.com/ssf", long_poll_max=10.0,
                 redelivery_delay=2.0, push_ca=None, min_verification_interval=0,
                 quiet=False, oauth2_client_id="ssf-test-client", oauth2_client_secret=None,
                 oauth2_expires_in=3600, critical_subject_members=None,
                 oauth2_client_auth="client_secret_basic", oauth2_client_key=None,
                 client_ca=None):
        if state_dir is None:
            raise ValueError("state_dir is required")
        host, _, port = listen.rpartition(":")
        self.listen_host = host.strip("[]") or "127.0.0.1"
        self.listen_port = int(port)
        self.state_dir = os.path.abspath(state_dir)
        self.issuer_path = issuer_path.rstrip("/")
        if self.issuer_path and not self.issuer_path.startswith("/"):
            self.issuer_path = "/" + self.issuer_path
        self.audience = audience
        self.long_poll_max = min(float(long_poll_max), LONG_POLL_CAP)
        self.redelivery_delay = float(redelivery_delay)
        # seconds a verification event is held before it can be delivered (/control/config)
        self.verification_delay = 0.0
        # SSF 8.1.1 inactivity_timeout (seconds, None: not advertised): a stream the receiver
        # leaves alone for longer is paused with reason "inactivity" (/control/config)
        self.inactivity_timeout = None
        self.push_ca = push_ca
        self.min_verification_interval = int(min_verification_interval)
        self.quiet = quiet
        self.given_token = token
        self.oauth2_client_id = oauth2_client_id
        # Characters that need form-encoding in client_secret_basic, but no blanks (a
        # secret file holds one line).
        self.oauth2_client_secret = oauth2_client_secret or secrets.token_urlsafe(24) + ":+/%&="
        self.oauth2_expires_in = oauth2_expires_in  # advertised; None: not sent
        self.oauth2_token_lifetime = None  # real lifetime; None: expires_in (or forever)
        self.oauth2_token_type = "Bearer"
        if oauth2_client_auth not in OAUTH2_CLIENT_AUTH_METHODS:
            raise ValueError(f"unknown client authentication {oauth2_client_auth}")
        self.oauth2_client_auth = oauth2_client_auth  # the one method the client must use
        # private_key_jwt: the client's public key (jwcrypto JWK) and the jtis seen
        self.oauth2_client_key = None
        if oauth2_client_key:
            with open(oauth2_client_key, "rb") as f:
                self.oauth2_client_key = jwk.JWK.from_pem(f.read())
        self.oauth2_assertion_jtis = set()
        self.client_ca = client_ca  # mutual TLS: CA file client certificates must chain to
        # metadata critical_subject_members (SSF 7.1): None or [] omits it; /control/config
        # may set any JSON value, to test receivers with invalid metadata.
        self.critical_subject_members = critical_subject_members
        self.oauth2_tokens = {}            # access token -> monotonic expiry (None: never)
        self.default_alg = alg
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.keys = []               # published keys (dicts from generate_signing_key)
        self.signing_kid = None
        self.streams = {}
        self.httpd = None
        self.thread = None
        self.push_thread = None
        self.push_conns = {}  # kept-alive push connections (the push thread's own)
        self.stopping = False
        self.issuer_override = None  # control: make discovery/stream lie about the issuer
        self.fail_requests = []      # control: [{"path_prefix", "status", "count", "retry_after"}]
        self.status_delay = 0.0      # control: seconds GET /ssf/status waits before answering
        # SSF 7.1 default_subjects: "ALL" delivers every subject's SETs; "NONE" only those of
        # subjects added with add_subject (SSF 8.1.3.2) (/control/config)
        self.default_subjects = "ALL"
        self.patch_unsupported = False  # control: PATCH of a stream answers 405 (PUT works)
        self.stream_iss_override = None  # control: "iss" of stream configurations only
        self.hold_delivery = False       # control: deliver nothing (poll or push) while set
        self.log_jtis = False            # control: polls' jtis in the request log
        self.next_verification = None    # control: {"state", "subject_id"} for the next one
        self.status_after_ack = {}       # jti of a stream-updated SET -> (stream id, status, reason)
        self._reset_records()

    # -- records ---------------------------------------------------------------------------
    def _reset_records(self):
        self.acked = []
        self.acked_set = set()
        self.acked_at = {}  # jti -> time.monotonic() of its first acknowledgement
        self.set_errs = {}
        self.violations = []
        self.polls = 0
        self.last_poll_body = None
        self.deliveries = {}
        self.push_results = []
        self.counters = {}
        self.sent = []
        self.oauth2_requests = []
        # Every request outside /control/: {"method", "path", "time" (time.monotonic() of this
        # process when it arrived), "status"}; the last REQUEST_LOG_MAX.
        self.requests = []

    def count(self, name):
        self.counters[name] = self.counters.get(name, 0) + 1

    # -- lifecycle -------------------------------------------------------------------------
    def start(self):
        os.makedirs(self.state_dir, mode=0o755, exist_ok=True)
        self.ca_file, cert_file, key_file = make_tls_files(self.state_dir)
        self.token_file = os.path.join(self.state_dir, "token")
        self.token = self.given_token or secrets.token_urlsafe(32)
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.token + "\n")
        os.chmod(self.token_file, 0o600)
        self.oauth2_secret_file = os.path.join(self.state_dir, "oauth2-client-secret")
        fd = os.open(self.oauth2_secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.oauth2_client_secret + "\n")
        os.chmod(self.oauth2_secret_file, 0o600)
        entry = generate_signing_key(self.default_alg)
        self.keys.append(entry)
        self.signing_kid = entry["kid"]

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert_file, key_file)
        if self.client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cafile=self.client_ca)
        server_class = _Server6 if ":" in self.listen_host else _Server
        self.httpd = server_class((self.listen_host, self.listen_port), _Handler)
        self.httpd.transmitter = self
        self.httpd.ssl_context = ctx
        self.port = self.httpd.server_address[1]
        hostpart = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        self.origin = f"https://{hostpart}:{self.port}"
        self.issuer = self.origin + self.issuer_path
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="ssf-http",
                                       kwargs={"poll_interval": 0.2}, daemon=True)
        self.thread.start()
        self.push_thread = threading.Thread(target=self._push_loop, name="ssf-push", daemon=True)
        self.push_thread.start()
        ready = {"issuer": self.issuer, "port": self.port, "ca_file": self.ca_file,
                 "token_file": self.token_file, "control_url": self.origin + "/control",
                 "origin": self.origin, "audience": self.audience, "pid": os.getpid()}
        oauth2 = {"token_url": self.origin + "/oauth2/token", "client_id": self.oauth2_client_id,
                  "client_secret_file": self.oauth2_secret_file}
        tmp = os.path.join(self.state_dir, "oauth2.json.tmp")
        with open(tmp, "w") as f:
            json.dump(oauth2, f)
        os.rename(tmp, os.path.join(self.state_dir, "oauth2.json"))
        tmp = os.path.join(self.state_dir, "ready.json.tmp")
        with open(tmp, "w") as f:
            json.dump(ready, f)
        os.rename(tmp, os.path.join(self.state_dir, "ready.json"))
        return self

    def stop(self):
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
        if self.push_thread is not None:
            self.push_thread.join(timeout=5)
            if not self.push_thread.is_alive():
                self.close_push_conns()

    def log(self, msg):
        if not self.quiet:
            sys.stderr.write(f"ssf-transmitter: {msg}\n")
            sys.stderr.flush()

    # -- metadata --------------------------------------------------------------------------
    def current_issuer(self):
        return self.issuer_override or self.issuer

    def metadata(self):
        o = self.origin
        return {
            "spec_version": "1_0",
            "issuer": self.current_issuer(),
            "jwks_uri": o + "/ssf/jwks.json",
            "delivery_methods_supported": [POLL, PUSH],
            "configuration_endpoint": o + "/ssf/stream",
            "status_endpoint": o + "/ssf/status",
            "add_subject_endpoint": o + "/ssf/subjects:add",
            "remove_subject_endpoint": o + "/ssf/subjects:remove",
            "verification_endpoint": o + "/ssf/verify",
            "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6749"}],
            "default_subjects": self.default_subjects,
        } | ({"critical_subject_members": self.critical_subject_members}
             if self.critical_subject_members not in (None, []) else {})

    def jwks(self):
        with self.lock:
            return {"keys": [public_jwk(k) for k in self.keys]}

    # -- keys ------------------------------------------------------------------------------
    def key_for_alg(self, alg):
        """Published key used for alg: the signing key if it fits, else a published key
        with that alg, else a new one (published)."""
        with self.lock:
            for k in self.keys:
                if k["kid"] == self.signing_kid and k["alg"] == alg:
                    return k
            for k in reversed(self.keys):
                if k["alg"] == alg:
                    return k
            entry = generate_signing_key(alg)
            self.keys.append(entry)
            return entry

    def rotate_key(self, alg=None, keep_old=True):
        alg = alg or self.signing_entry()["alg"]
        if alg not in SIGN_ALGS:
            raise RequestError(400, "invalid_request", f"unsupported alg {alg!r}")
        entry = generate_signing_key(alg)
        with self.lock:
            old = [k["kid"] for k in self.keys]
            if not keep_old:
                self.keys = []
            self.keys.append(entry)
            self.signing_kid = entry["kid"]
        return {"kid": entry["kid"], "alg": alg, "previous_kids": old,
                "published_kids": [k["kid"] for k in self.keys]}

    def signing_entry(self):
        with self.lock:
            for k in self.keys:
                if k["kid"] == self.signing_kid:
                    return k
            return self.keys[-1]

    # -- SET construction ------------------------------------------------------------------
    def build_set(self, event, email=None, subject=None, payload=None, claims=None,
                  tamper=None, sign_alg=None, header=None, stream=None):
        uri = event_uri(event)
        name = short_name(uri)
        if subject is None and email is not None:
            subject = {"format": "email", "email": email}
        body = {}
        if not uri.startswith(SSF):
            body["event_timestamp"] = int(time.time())
            body["initiating_entity"] = "policy"
        if uri.startswith(CAEP) or uri.startswith(RISC) or uri.startswith(OKTA):
            body.update(json.loads(json.dumps(EVENT_DEFAULTS.get(name, {}))))
        for k, v in (payload or {}).items():
            if v is None:
                body.pop(k, None)
            else:
                body[k] = v
        now = int(time.time())
        aud = stream.config["aud"] if stream is not None else self.audience
        set_claims = {"iss": self.current_issuer(), "aud": aud, "iat": now,
                      "jti": secrets.token_hex(16), "txn": secrets.token_hex(8)}
        if subject is not None:
            set_claims["sub_id"] = subject
        set_claims["events"] = {uri: body}
        for k, v in (claims or {}).items():
            if v is None:
                set_claims.pop(k, None)
            else:
                set_claims[k] = v
        token = self.sign(set_claims, tamper=tamper, sign_alg=sign_alg, header=header)
        return set_claims.get("jti"), token, set_claims

    def sign(self, set_claims, tamper=None, sign_alg=None, header=None):
        if tamper is not None and tamper not in TAMPER_MODES:
            raise RequestError(400, "invalid_request", f"unknown tamper mode {tamper!r}")
        if sign_alg is not None and sign_alg not in SIGN_ALGS:
            raise RequestError(400, "invalid_request", f"unsupported sign_alg {sign_alg!r}")
        entry = self.key_for_alg(sign_alg) if sign_alg else self.signing_entry()
        alg = entry["alg"]
        hdr = {"typ": "secevent+jwt", "alg": alg, "kid": entry["kid"]}
        if tamper == "typ":
            hdr["typ"] = "JWT"
        if tamper == "kid-unknown":
            entry = generate_signing_key(alg)
            hdr["kid"] = "unknown-" + secrets.token_hex(6)
        if tamper == "wrong-key":
            # correct kid, but signed by an unpublished key
            entry = generate_signing_key(alg, kid=entry["kid"])
        for k, v in (header or {}).items():
            if v is None:
                hdr.pop(k, None)
            else:
                hdr[k] = v
        payload = json.dumps(set_claims, separators=(",", ":")).encode()
        if tamper == "alg-none":
            hdr["alg"] = "none"
            return (b64url(json.dumps(hdr, separators=(",", ":")).encode()) + "."
                    + b64url(payload) + ".")
        if tamper == "alg-hs256":
            # Algorithm confusion: HMAC keyed with the published public key (PEM).
            secret = entry["key"].export_to_pem(private_key=False, password=None)
            hdr["alg"] = "HS256"
            signing_input = (b64url(json.dumps(hdr, separators=(",", ":")).encode()) + "."
                             + b64url(payload))
            mac = hmac.new(secret, signing_input.encode(), "sha256").digest()
            return signing_input + "." + b64url(mac)
        obj = jws.JWS(payload)
        obj.add_signature(entry["key"], None, json.dumps(hdr, separators=(",", ":")))
        token = obj.serialize(compact=True)
        if tamper == "signature":
            h, p, s = token.split(".")
            sig = bytearray(b64url_decode(s))
            sig[len(sig) // 2] ^= 0x01
            token = f"{h}.{p}.{b64url(bytes(sig))}"
        elif tamper == "payload":
            h, p, s = token.split(".")
            changed = dict(set_claims)
            changed["iat"] = int(changed.get("iat", 0) or 0) + 1
            token = f"{h}.{b64url(json.dumps(changed, separators=(',', ':')).encode())}.{s}"
        return token

    # -- queueing --------------------------------------------------------------------------
    @staticmethod
    def subject_matches(added, subject):
        """SSF 8.1.3.1: simple subjects match when identical; complex ones when every member
        is either absent on one side or identical (a complex subject also matches an added
        simple subject equal to its user member)."""
        if not isinstance(subject, dict) or not isinstance(added, dict):
            return False
        if added == subject:
            return True
        if subject.get("format", "complex") == "complex" and added.get("format") != "complex":
            return subject.get("user") == added
        if added.get("format") == "complex" and subject.get("format", "complex") == "complex":
            keys = (set(added) | set(subject)) - {"format"}
            return all(k not in added or k not in subject or added[k] == subject[k] for k in keys)
        return False

    def enqueue(self, jti, token, uri=None, stream_id=None, force=False, delay=0.0,
                subject=None):
        """Queue a SET on one stream (stream_id) or on every stream that delivers `uri`,
        deliverable `delay` seconds from now. Returns the stream ids it was queued on.
        default_subjects = NONE: a SET about `subject` (its sub_id) goes only to the streams
        that added a matching subject (stream-level SSF events always go)."""
        with self.cond:
            if stream_id is not None:
                if stream_id not in self.streams:
                    raise RequestError(404, "not_found", f"no stream {stream_id}")
                targets = [self.streams[stream_id]]
            else:
                targets = []
                for st in self.streams.values():
                    if (force or uri is None or uri.startswith(SSF)
                            or uri in st.config.get("events_delivered", [])):
                        targets.append(st)
            queued = []
            for st in targets:
                if st.status == "disabled":
                    continue
                if (self.default_subjects == "NONE" and subject is not None
                        and not (uri or "").startswith(SSF)
                        and not any(self.subject_matches(a, subject) for a in st.subjects)):
                    self.count("filtered_by_subject")
                    continue
                e = {"jti": jti, "token": token, "state": "pending",
                     "not_before": time.time() + delay if delay else 0.0, "attempts": 0}
                st.queue[jti] = e
                st.pending[jti] = e
                queued.append(st.id)
            self.sent.append(jti)
            self.cond.notify_all()
            return queued

    def pending_jtis(self):
        with self.lock:
            out = {}
            for st in self.streams.values():
                out.update(dict.fromkeys(st.pending))
            return list(out)

    def record_ack(self, jti):
        if jti in self.set_errs:
            self.violations.append({"jti": jti, "problem": "acknowledged after a setErr"})
        if jti not in self.acked_set:
            self.acked_set.add(jti)
            self.acked.append(jti)
            self.acked_at[jti] = time.monotonic()
        else:
            self.count("duplicate_acks")
        for st in self.streams.values():
            e = st.queue.get(jti)
            if e is not None:
                e["state"] = "acked"
                st.pending.pop(jti, None)
        change = self.status_after_ack.pop(jti, None)
        if change is not None and change[0] in self.streams:
            st = self.streams[change[0]]
            st.status, st.reason = change[1], change[2]
            self.log(f"stream {st.id} {change[1]} after the announcement {jti} was acknowledged")

    def record_set_err(self, jti, err):
        if jti in self.acked_set:
            self.violations.append({"jti": jti, "problem": "setErr after an acknowledgement"})
        self.set_errs[jti] = err
        for st in self.streams.values():
            e = st.queue.get(jti)
            if e is not None:
                e["state"] = "error"
                st.pending.pop(jti, None)

    # -- streams ---------------------------------------------------------------------------
    def _stream(self, stream_id, receiver=True):
        """The stream stream_id (404 when there is none); receiver: a call of the receiver
        about it, which resets its inactivity timer (SSF 8.1.1)."""
        if not isinstance(stream_id, str) or not stream_id:
            raise RequestError(400, "invalid_request", "stream_id is required")
        st = self.streams.get(stream_id)
        if st is None:
            raise RequestError(404, "not_found", f"no stream {stream_id}")
        if receiver:
            st.last_activity = time.monotonic()
        return st

    def _check_inactivity(self):
        """Pauses the streams whose receiver has been silent for inactivity_timeout."""
        if self.inactivity_timeout is None:
            return
        now = time.monotonic()
        for st in self.streams.values():
            if (st.status == "enabled" and not st.polls_open
                    and now - st.last_activity > self.inactivity_timeout):
                st.status, st.reason = "paused", "inactivity"
                self.count("inactivity_pauses")
                self.log(f"stream {st.id} paused: no receiver activity for "
                         f"{self.inactivity_timeout} s")

    def _apply_delivery(self, stream_id, delivery):
        if delivery is None:
            delivery = {"method": POLL}
        if not isinstance(delivery, dict) or not isinstance(delivery.get("method"), str):
            raise RequestError(400, "invalid_request", "delivery must be an object with a method")
        method = delivery["method"]
        if method == POLL:
            out = {"method": POLL, "endpoint_url": f"{self.origin}/ssf/poll/{stream_id}"}
            given = delivery.get("endpoint_url")
            if given is not None and given != out["endpoint_url"]:
                raise RequestError(400, "invalid_request",
                                   "endpoint_url of a poll stream is set by the transmitter")
            return out
        if method == PUSH:
            url = delivery.get("endpoint_url")
            if not isinstance(url, str) or not url.startswith("https://"):
                raise RequestError(400, "invalid_request", "push delivery needs an https endpoint_url")
            out = {"method": PUSH, "endpoint_url": url}
            if "authorization_header" in delivery:
                if not isinstance(delivery["authorization_header"], str):
                    raise RequestError(400, "invalid_request", "authorization_header must be a string")
                out["authorization_header"] = delivery["authorization_header"]
            return out
        raise RequestError(400, "invalid_request", f"unsupported delivery method {method!r}")

    def _events_requested(self, body):
        req = body.get("events_requested")
        if req is None:
            return None
        if not isinstance(req, list) or not all(isinstance(u, str) for u in req):
            raise RequestError(400, "invalid_request", "events_requested must be an array of strings")
        return req

    def _config(self, stream_id, body, old=None):
        req = self._events_requested(body)
        cfg = {"stream_id": stream_id, "iss": self.stream_iss_override or self.current_issuer(),
               "aud": self.audience,
               "events_supported": list(SUPPORTED_EVENTS)}
        if req is not None:
            cfg["events_requested"] = req
            cfg["events_delivered"] = [u for u in SUPPORTED_EVENTS if u in req]
        else:
            cfg["events_delivered"] = list(SUPPORTED_EVENTS)
        cfg["delivery"] = self._apply_delivery(stream_id, body.get("delivery"))
        cfg["min_verification_interval"] = self.min_verification_interval
        if self.inactivity_timeout is not None:
            cfg["inactivity_timeout"] = self.inactivity_timeout
        if "description" in body:
            if not isinstance(body["description"], str):
                raise RequestError(400, "invalid_request", "description must be a string")
            cfg["description"] = body["description"]
        if old is not None:
            cfg["aud"] = old["aud"]
        return cfg

    def _check_transmitter_props(self, body, cfg):
        for k in ("iss", "aud", "events_supported", "min_verification_interval",
                  "inactivity_timeout"):
            if k in body and body[k] != cfg.get(k):
                raise RequestError(400, "invalid_request", f"{k} cannot be changed by the receiver")

    def create_stream(self, body):
        with self.cond:
            sid = secrets.token_hex(12)
            cfg = self._config(sid, body)
            self.streams[sid] = Stream(sid, cfg)
            self.log(f"stream {sid} created ({cfg['delivery']['method']})")
            self.cond.notify_all()
            return cfg

    def update_stream(self, body, replace):
        with self.cond:
            st = self._stream(body.get("stream_id"))
            self._check_transmitter_props(body, st.config)
            if replace:
                merged = {k: body[k] for k in ("events_requested", "delivery", "description")
                          if k in body}
                if "delivery" not in merged:
                    merged["delivery"] = st.config["delivery"]
            else:
                merged = {k: st.config[k] for k in ("events_requested", "delivery", "description")
                          if k in st.config}
                for k in ("events_requested", "delivery", "description"):
                    if k in body:
                        merged[k] = body[k]
            st.config = self._config(st.id, merged, old=st.config)
            self.cond.notify_all()
            return st.config

    # -- verification ------------------------------------------------------------------------
    def verification(self, body):
        with self.cond:
            st = self._stream(body.get("stream_id"))
            state = body.get("state")
            if state is not None and not isinstance(state, str):
                raise RequestError(400, "invalid_request", "state must be a string")
            now = time.time()
            if (self.min_verification_interval
                    and now - st.last_verification < self.min_verification_interval):
                raise RequestError(429, "too_many_requests", "verification requested too often")
            st.last_verification = now
            payload = {"state": state} if state is not None else {}
            subject_id = st.id
            odd, self.next_verification = self.next_verification, None
            if odd:
                if "state" in odd:
                    payload = {"state": odd["state"]}
                subject_id = odd.get("subject_id", subject_id)
            jti, token, _ = self.build_set("verification", subject={"format": "opaque", "id": subject_id},
                                           payload=payload, stream=st)
            self.enqueue(jti, token, uri=SSF + "verification", stream_id=st.id,
                         delay=self.verification_delay)
            self.log(f"verification {jti} queued on {st.id}")
            return jti

    # -- poll -------------------------------------------------------------------------------
    def poll(self, stream_id, body):
        if not isinstance(body, dict):
            raise RequestError(400, "invalid_request", "poll body must be a JSON object")
        ack = body.get("ack", [])
        errs = body.get("setErrs", {})
        max_events = body.get("maxEvents")
        ret_imm = body.get("returnImmediately", False)
        if not isinstance(ack, list) or not all(isinstance(j, str) for j in ack):
            raise RequestError(400, "invalid_request", "ack must be an array of strings")
        if not isinstance(errs, dict) or not all(
                isinstance(v, dict) and isinstance(v.get("err"), str) for v in errs.values()):
            raise RequestError(400, "invalid_request",
                               "setErrs must map jti to objects with a string err")
        if max_events is not None and (isinstance(max_events, bool) or not isinstance(max_events, int)
                                       or max_events < 0):
            raise RequestError(400, "invalid_request", "maxEvents must be a non-negative integer")
        if not isinstance(ret_imm, bool):
            raise RequestError(400, "invalid_request", "returnImmediately must be a boolean")
        with self.cond:
            st = self._stream(stream_id)
            self.polls += 1
            self.last_poll_body = body
            both = set(ack) & set(errs)
            for jti in sorted(both):
                self.violations.append({"jti": jti, "problem": "both acknowledged and in setErrs"})
            for jti in ack:
                self.record_ack(jti)
            for jti, err in errs.items():
                self.record_set_err(jti, err)
            if ack or errs:
                self.cond.notify_all()
            if max_events == 0:
                return {"sets": {}, "moreAvailable": bool(self._deliverable(st, time.time(), 0))}
            deadline = time.monotonic() + (0 if ret_imm else self.long_poll_max)
            st.polls_open += 1
            try:
                return self._hold_poll(st, max_events, deadline)
            finally:
                st.polls_open -= 1
                st.last_activity = time.monotonic()

    def _hold_poll(self, st, max_events, deadline):
        """The long poll of poll(), with self.cond held."""
        while True:
            if self.stopping:
                return {"sets": {}}
            if self.hold_delivery:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return {"sets": {}, "moreAvailable": False}
                self.cond.wait(remaining)
                continue
            if st.id not in self.streams:
                raise RequestError(404, "not_found", f"no stream {st.id}")
            if st.config["delivery"]["method"] != POLL:
                raise RequestError(400, "invalid_request", "stream is not a poll stream")
            now = time.time()
            ready = self._deliverable(st, now, max_events) if st.status == "enabled" else []
            if ready:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return {"sets": {}, "moreAvailable": False}
            wait = remaining
            nxt = self._next_redelivery(st)
            if nxt is not None and st.status == "enabled":
                wait = max(0.01, min(wait, nxt - now))
            self.cond.wait(wait)
        chosen = ready if max_events is None else ready[:max_events]
        sets = {}
        for e in chosen:
            sets[e["jti"]] = e["token"]
            e["attempts"] += 1
            e["not_before"] = now + self.redelivery_delay
            self.deliveries[e["jti"]] = self.deliveries.get(e["jti"], 0) + 1
        return {"sets": sets, "moreAvailable": len(ready) > len(chosen)}

    @staticmethod
    def _deliverable(st, now, limit=None):
        """The pending entries deliverable now, in order; with a limit, at most limit + 1 of
        them (enough to tell whether more are available): a poll of a large backlog costs
        what it takes, not the size of the queue."""
        out = []
        for e in st.pending.values():
            if e["not_before"] <= now:
                out.append(e)
                if limit is not None and len(out) > limit:
                    break
        return out

    @staticmethod
    def _next_redelivery(st):
        times = [e["not_before"] for e in st.pending.values()]
        return min(times) if times else None

    # -- push -------------------------------------------------------------------------------
    def _push_context(self):
        ctx = ssl.create_default_context(cafile=self.push_ca) if self.push_ca else \
            ssl.create_default_context()
        return ctx

    def _push_loop(self):
        while True:
            with self.cond:
                if self.stopping:
                    return
                self._check_inactivity()
                work = []
                now = time.time()
                wait = 1.0
                for st in self.streams.values():
                    d = st.config["delivery"]
                    if d["method"] != PUSH or st.status != "enabled" or self.hold_delivery:
                        continue
                    for e in st.pending.values():
                        if e["not_before"] <= now:
                            e["not_before"] = now + self.redelivery_delay
                            work.append((st.id, dict(d), e["jti"], e["token"]))
                        else:
                            wait = min(wait, e["not_before"] - now)
                if not work:
                    self.cond.wait(max(0.01, wait))
                    continue
            for sid, d, jti, token in work:
                self._push_one(sid, d, jti, token)

    def _push_conn(self, url):
        """A kept-alive HTTPS connection to url's origin (RFC 9112 §9.3): one per origin and CA,
        reused by the next push, as a transmitter that pushes a stream of SETs does. Only the
        push thread uses it."""
        u = urllib.parse.urlsplit(url)
        if u.scheme != "https" or not u.hostname:
            raise ValueError(f"not an https URL: {url}")
        key = (u.hostname, u.port or 443, self.push_ca)
        conn = self.push_conns.get(key)
        if conn is None:
            conn = http.client.HTTPSConnection(u.hostname, u.port or 443, timeout=10,
                                               context=self._push_context())
            self.push_conns[key] = conn
        path = u.path or "/"
        return key, conn, path + ("?" + u.query if u.query else "")

    def close_push_conns(self):
        for conn in self.push_conns.values():
            conn.close()
        self.push_conns.clear()

    def _push_request(self, url, token, headers):
        """POSTs token to url on the kept connection; a connection the receiver closed while
        idle is opened again once (a SET may be delivered twice: jtis make that harmless).
        Returns (status, body, headers)."""
        for attempt in (0, 1):
            key, conn, path = self._push_conn(url)
            reused = conn.sock is not None
            try:
                conn.request("POST", path, body=token.encode(), headers=headers)
                r = conn.getresponse()
                body = r.read(MAX_BODY)
                if not r.isclosed() and r.length:
                    conn.close()  # more than MAX_BODY: the connection cannot be reused
                return r.status, body, r.headers
            except (http.client.RemoteDisconnected, ConnectionError, ssl.SSLError):
                conn.close()
                self.push_conns.pop(key, None)
                if not reused or attempt == 1:
                    raise
            except Exception:
                conn.close()
                self.push_conns.pop(key, None)
                raise
        raise AssertionError("not reached")

    def _push_one(self, sid, delivery, jti, token):
        headers = {"Content-Type": "application/secevent+jwt", "Accept": "application/json"}
        if delivery.get("authorization_header"):
            headers["Authorization"] = delivery["authorization_header"]
        status, body, error, retry_after = None, None, None, None
        started = time.monotonic()
        try:
            status, body, rh = self._push_request(delivery["endpoint_url"], token, headers)
            if status >= 400:
                retry_after = rh.get("Retry-After")
        except Exception as e:  # connection refused, TLS failure, timeout
            error = f"{type(e).__name__}: {e}"
        with self.cond:
            self.deliveries[jti] = self.deliveries.get(jti, 0) + 1
            result = {"jti": jti, "stream_id": sid, "status": status, "error": error,
                      "time": started, "done": time.monotonic(), "retry_after": retry_after}
            self.push_results.append(result)
            st = self.streams.get(sid)
            e = st.queue.get(jti) if st else None
            if status == 202:
                self.record_ack(jti)
            elif status == 400:
                try:
                    err = json.loads(body)
                    if not isinstance(err, dict) or not isinstance(err.get("err"), str):
                        raise ValueError
                except ValueError:
                    err = {"err": "malformed_error_response",
                           "description": (body or b"")[:200].decode("utf-8", "replace")}
                self.record_set_err(jti, err)
            elif e is not None:
                e["attempts"] += 1
            self.log(f"push {jti} to {delivery['endpoint_url']}: {status or error}")
            self.cond.notify_all()

    # -- OAuth 2.0 ----------------------------------------------------------------------------
    def issue_token(self, headers, raw):
        """The token endpoint (RFC 6749 4.4; client authentication as configured). Returns
        the response object or raises OAuthError."""
        record = {"content_type": headers.get("Content-Type"), "client_id": None,
                  "client_auth": None,
                  "grant_type": None, "scope": None, "error": None}
        with self.lock:
            self.count("oauth2_token_requests")
            self.oauth2_requests.append(record)
        try:
            return self._issue_token(headers, raw, record)
        except OAuthError as e:
            with self.lock:
                record["error"] = e.err
                self.count("oauth2_token_errors")
            raise

    def _issue_token(self, headers, raw, record):
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != OAUTH2_FORM:
            raise OAuthError(400, "invalid_request", f"Content-Type must be {OAUTH2_FORM}")
        try:
            pairs = urllib.parse.parse_qsl(raw.decode("ascii"), keep_blank_values=True,
                                           strict_parsing=bool(raw))
        except (UnicodeDecodeError, ValueError):
            raise OAuthError(400, "invalid_request", "malformed form body") from None
        form = {}
        for k, v in pairs:
            if k in form:
                raise OAuthError(400, "invalid_request", f"parameter {k} given twice")
            form[k] = v
        basic = {"WWW-Authenticate": 'Basic realm="ssf-oauth2"'}
        scheme, _, cred = (headers.get("Authorization") or "").partition(" ")
        used = []  # RFC 6749 2.3: exactly one method per request
        if headers.get("Authorization") is not None:
            used.append("client_secret_basic" if scheme.lower() == "basic" else "other")
        if "client_secret" in form:
            used.append("client_secret_post")
        if "client_assertion" in form or "client_assertion_type" in form:
            used.append("private_key_jwt")
        record["client_auth"] = used[0] if len(used) == 1 else used
        with self.lock:
            required = self.oauth2_client_auth
        if len(used) > 1:
            raise OAuthError(400, "invalid_request",
                             f"more than one client authentication method ({', '.join(used)})")
        if not used:
            raise OAuthError(401, "invalid_client",
                             f"client authentication required ({required})", basic)
        if used[0] != required:
            raise OAuthError(401, "invalid_client",
                             f"client authentication {used[0]} is not allowed for this client "
                             f"(it must use {required})", basic)
        if required == "client_secret_basic":
            if "client_id" in form:
                raise OAuthError(400, "invalid_request",
                                 "client credentials go in the Authorization header (Basic)")
            try:
                user, sep, pw = base64.b64decode(cred.strip(), validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise OAuthError(401, "invalid_client", "malformed Basic credentials",
                                 basic) from None
            client_id, secret = urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(pw)
            record["client_id"] = client_id
            self._check_secret(client_id, secret if sep else None, basic)
        elif required == "client_secret_post":
            client_id = form.get("client_id")
            record["client_id"] = client_id
            if client_id is None:
                raise OAuthError(400, "invalid_request", "client_secret_post needs client_id")
            self._check_secret(client_id, form["client_secret"], basic)
        else:
            record["client_id"] = self._check_assertion(form)
        grant = form.get("grant_type")
        record["grant_type"] = grant
        if grant is None:
            raise OAuthError(400, "invalid_request", "grant_type is required")
        if grant != "client_credentials":
            raise OAuthError(400, "unsupported_grant_type", f"grant_type {grant} is not supported")
        scope = form.get("scope")
        record["scope"] = scope
        if scope is not None:
            unknown = [x for x in scope.split(" ") if x not in OAUTH2_SCOPES]
            if unknown or not scope:
                raise OAuthError(400, "invalid_scope", f"unknown scope {' '.join(unknown)!r}")
        token = secrets.token_urlsafe(32)
        with self.lock:
            lifetime = (self.oauth2_token_lifetime if self.oauth2_token_lifetime is not None
                        else self.oauth2_expires_in)
            self.oauth2_tokens[token] = (time.monotonic() + float(lifetime)
                                         if lifetime is not None else None)
            self.count("oauth2_tokens_issued")
            out = {"access_token": token, "token_type": self.oauth2_token_type,
                   "scope": scope or " ".join(OAUTH2_SCOPES)}
            if self.oauth2_expires_in is not None:
                out["expires_in"] = self.oauth2_expires_in
        return out

    def _check_secret(self, client_id, secret, challenge):
        with self.lock:
            want_id, want_secret = self.oauth2_client_id, self.oauth2_client_secret
        if secret is None or not (hmac.compare_digest(client_id.encode(), want_id.encode())
                                  and hmac.compare_digest(secret.encode(), want_secret.encode())):
            raise OAuthError(401, "invalid_client", "Client authentication failed", challenge)

    def _check_assertion(self, form):
        """private_key_jwt (RFC 7523 2.2, 3): verify the client assertion with jwcrypto.
        Returns the client id."""
        def refuse(why):
            raise OAuthError(401, "invalid_client", f"client assertion refused: {why}")
        if form.get("client_assertion_type") != OAUTH2_ASSERTION_TYPE:
            raise OAuthError(400, "invalid_request",
                             f"client_assertion_type must be {OAUTH2_ASSERTION_TYPE}")
        assertion = form.get("client_assertion")
        if not assertion:
            raise OAuthError(400, "invalid_request", "client_assertion is required")
        with self.lock:
            key = self.oauth2_client_key
            client_id = self.oauth2_client_id
        if key is None:
            refuse("no public key is registered for this client")
        obj = jws.JWS()
        try:
            obj.deserialize(assertion)
            header = obj.jose_header
        except Exception as e:  # jwcrypto raises several types
            refuse(f"not a compact JWS ({e})")
        alg = header.get("alg")
        if alg not in ("RS256", "ES256"):
            refuse(f"alg {alg!r} is not RS256 or ES256")
        obj.allowed_algs = [alg]
        try:
            obj.verify(key, alg=alg)
        except Exception:
            refuse("bad signature")
        try:
            claims = json.loads(obj.payload)
        except ValueError:
            refuse("the payload is not JSON")
        if not isinstance(claims, dict):
            refuse("the payload is not a JSON object")
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            refuse(f"iss and sub must be the client id {client_id!r}")
        if "client_id" in form and form["client_id"] != client_id:
            refuse("client_id differs from the assertion's sub")
        aud = claims.get("aud")
        token_url = self.origin + "/oauth2/token"
        if aud != token_url and not (isinstance(aud, list) and token_url in aud):
            refuse(f"aud must be {token_url}")
        now = time.time()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or exp <= now:
            refuse("exp is missing or past")
        if exp > now + OAUTH2_ASSERTION_MAX_AHEAD:
            refuse("exp is too far ahead")
        if not isinstance(iat, int) or iat > now + 30:
            refuse("iat is missing or in the future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            refuse("jti is missing")
        with self.lock:
            if jti in self.oauth2_assertion_jtis:
                self.count("oauth2_assertion_replayed")
                refuse("jti was used before")
            self.oauth2_assertion_jtis.add(jti)
            self.count("oauth2_assertions_accepted")
        return client_id

    def check_access_token(self, token):
        """"ok", "expired" or None (not one of ours)."""
        with self.lock:
            if token not in self.oauth2_tokens:
                return None
            expiry = self.oauth2_tokens[token]
            if expiry is not None and time.monotonic() >= expiry:
                self.count("oauth2_token_rejected")
                return "expired"
            self.count("oauth2_token_accepted")
            return "ok"

    def control_oauth2(self):
        with self.lock:
            now = time.monotonic()
            return {"token_url": self.origin + "/oauth2/token", "client_id": self.oauth2_client_id,
                    "client_secret_file": self.oauth2_secret_file,
                    "expires_in": self.oauth2_expires_in,
                    "token_lifetime": self.oauth2_token_lifetime,
                    "token_type": self.oauth2_token_type,
                    "client_auth": self.oauth2_client_auth,
                    "requests": list(self.oauth2_requests),
                    "issued": list(self.oauth2_tokens),
                    "active": sum(1 for e in self.oauth2_tokens.values() if e is None or e > now),
                    "counters": {k: v for k, v in self.counters.items()
                                 if k.startswith("oauth2_")}}

    # -- control ------------------------------------------------------------------------------
    def control_acks(self):
        with self.lock:
            return {"acked": list(self.acked), "acked_at": dict(self.acked_at),
                    "set_errs": dict(self.set_errs),
                    "pending": self.pending_jtis(), "polls": self.polls,
                    "last_poll_body": self.last_poll_body, "violations": list(self.violations),
                    "deliveries": dict(self.deliveries), "push_results": list(self.push_results),
                    "counters": dict(self.counters), "sent": list(self.sent),
                    "requests": list(self.requests), "now": time.monotonic()}

    def control_ack_count(self):
        """The counts only, for a caller that polls while SETs flow (a benchmark): cheap to
        make and to read, and the lock is held only for len()."""
        with self.lock:
            return {"acked": len(self.acked), "set_errs": len(self.set_errs),
                    "now": time.monotonic()}

    def control_streams(self):
        with self.lock:
            out = []
            for st in self.streams.values():
                c = dict(st.config)
                c["status"] = st.status
                if st.reason:
                    c["reason"] = st.reason
                c["subjects"] = list(st.subjects)
                c["queue"] = [{"jti": e["jti"], "state": e["state"], "attempts": e["attempts"]}
                              for e in st.queue.values()]
                out.append(c)
            return out

    def control_reset(self, body):
        with self.cond:
            self._reset_records()
            if body.get("streams"):
                self.streams = {}
            else:
                for st in self.streams.values():
                    st.clear_queue()
            self.issuer_override = None
            self.fail_requests = []
            self.status_delay = 0.0
            self.stream_iss_override = None
            self.hold_delivery = False
            self.log_jtis = False
            self.next_verification = None
            self.status_after_ack = {}
            self.cond.notify_all()

    def control_config(self, body):
        with self.cond:
            if "redelivery_delay" in body:
                self.redelivery_delay = float(body["redelivery_delay"])
            if "long_poll_max" in body:
                self.long_poll_max = min(float(body["long_poll_max"]), LONG_POLL_CAP)
            if "min_verification_interval" in body:
                self.min_verification_interval = int(body["min_verification_interval"])
            if "verification_delay" in body:
                self.verification_delay = float(body["verification_delay"])
            if "inactivity_timeout" in body:
                v = body["inactivity_timeout"]
                self.inactivity_timeout = None if v is None else int(v)
                for st in self.streams.values():
                    st.last_activity = time.monotonic()
                    if v is None:
                        st.config.pop("inactivity_timeout", None)
                    else:
                        st.config["inactivity_timeout"] = self.inactivity_timeout
            if "issuer_override" in body:
                self.issuer_override = body["issuer_override"]
            if "push_ca" in body:
                self.push_ca = body["push_ca"]
            if "oauth2_expires_in" in body:
                v = body["oauth2_expires_in"]
                self.oauth2_expires_in = None if v is None else int(v)
            if "oauth2_token_lifetime" in body:
                v = body["oauth2_token_lifetime"]
                self.oauth2_token_lifetime = None if v is None else float(v)
            if "oauth2_token_type" in body:
                self.oauth2_token_type = str(body["oauth2_token_type"])
            if "oauth2_client_secret" in body:
                self.oauth2_client_secret = str(body["oauth2_client_secret"])
            if "critical_subject_members" in body:
                self.critical_subject_members = body["critical_subject_members"]
            if "oauth2_client_auth" in body:
                if body["oauth2_client_auth"] not in OAUTH2_CLIENT_AUTH_METHODS:
                    raise RequestError(400, "invalid_request", "unknown oauth2_client_auth")
                self.oauth2_client_auth = body["oauth2_client_auth"]
            if "oauth2_client_public_key" in body:
                v = body["oauth2_client_public_key"]
                self.oauth2_client_key = None if v is None else jwk.JWK.from_pem(v.encode())
            if body.get("oauth2_revoke"):
                self.oauth2_tokens = {}
            if "status_delay" in body:
                self.status_delay = float(body["status_delay"] or 0)
            if "default_subjects" in body:
                self.default_subjects = str(body["default_subjects"])
            if "patch_unsupported" in body:
                self.patch_unsupported = bool(body["patch_unsupported"])
            if "stream_iss_override" in body:
                self.stream_iss_override = body["stream_iss_override"]
            if "hold_delivery" in body:
                self.hold_delivery = bool(body["hold_delivery"])
            if "log_jtis" in body:
                self.log_jtis = bool(body["log_jtis"])
            if "next_verification" in body:
                v = body["next_verification"]
                if v is not None and not isinstance(v, dict):
                    raise RequestError(400, "invalid_request", "next_verification must be an object")
                self.next_verification = v
            if "fail" in body:
                f = body["fail"]
                if f is None:
                    self.fail_requests = []
                else:
                    ra = f.get("retry_after")
                    self.fail_requests.append({"path_prefix": f.get("path_prefix", "/ssf/"),
                                               "method": f.get("method"),
                                               "body": f.get("body"),
                                               "status": int(f.get("status", 503)),
                                               "count": int(f.get("count", 1)),
                                               "retry_after": None if ra is None else str(ra)})
            self.cond.notify_all()
            return {"redelivery_delay": self.redelivery_delay, "long_poll_max": self.long_poll_max,
                    "min_verification_interval": self.min_verification_interval,
                    "verification_delay": self.verification_delay,
                    "inactivity_timeout": self.inactivity_timeout,
                    "issuer_override": self.issuer_override, "fail": self.fail_requests,
                    "status_delay": self.status_delay,
                    "oauth2_expires_in": self.oauth2_expires_in,
                    "oauth2_token_lifetime": self.oauth2_token_lifetime,
                    "oauth2_token_type": self.oauth2_token_type,
                    "oauth2_client_auth": self.oauth2_client_auth,
                    "critical_subject_members": self.critical_subject_members}

    def control_stream_status(self, body):
        """Transmitter-initiated status change: sends stream-updated, then changes status."""
        with self.cond:
            sids = [body["stream_id"]] if body.get("stream_id") else list(self.streams)
            status = body.get("status")
            if status not in ("enabled", "paused", "disabled"):
                raise RequestError(400, "invalid_request", "status must be enabled|paused|disabled")
            out = []
            for sid in sids:
                st = self._stream(sid, receiver=False)
                payload = {"status": status}
                if body.get("reason"):
                    payload["reason"] = body["reason"]
                jti, token, _ = self.build_set("stream-updated", subject={"format": "opaque", "id": sid},
                                               payload=payload, stream=st)
                if body.get("after_ack"):
                    self.status_after_ack[jti] = (sid, status, body.get("reason"))
                    self.enqueue(jti, token, stream_id=sid)
                elif status == "enabled":
                    st.status, st.reason = status, body.get("reason")
                    self.enqueue(jti, token, stream_id=sid)
                else:
                    self.enqueue(jti, token, stream_id=sid)
                    st.status, st.reason = status, body.get("reason")
                out.append({"stream_id": sid, "jti": jti})
            self.cond.notify_all()
            return out

    def should_fail(self, path, method=None):
        """The failure injected for path (and method, when the failure names one): (status,
        extra headers, body or None), or None."""
        with self.lock:
            for f in self.fail_requests:
                if (f["count"] > 0 and path.startswith(f["path_prefix"])
                        and f.get("method") in (None, method)):
                    f["count"] -= 1
                    headers = {}
                    if f.get("retry_after") is not None:
                        headers["Retry-After"] = f["retry_after"]
                    return f["status"], headers, f.get("body")
        return None

    def record_request(self, method, path, when, status, note=None):
        with self.lock:
            r = {"method": method, "path": path, "time": when, "done": time.monotonic(),
                 "status": status}
            if note:
                r.update(note)
            self.requests.append(r)
            del self.requests[:-REQUEST_LOG_MAX]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def get_request(self):
        sock, addr = super().get_request()
        # No Nagle: an answer goes out as soon as it is written, instead of waiting for the
        # receiver's delayed ACK of the previous segment (up to 40 ms on Linux).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr


class _Server6(_Server):
    import socket as _socket
    address_family = _socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ssf-test-transmitter/1"
    timeout = 60
    # Buffered: the status line, the headers and the body leave in one write (one TLS record)
    # when handle_one_request() flushes after the handler, not in several small ones.
    wbufsize = 1 << 16

    def setup(self):
        super().setup()
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError) as e:
            self.server.transmitter.log(f"TLS handshake failed: {e}")
            self.close_connection = True
            self._linger()
            raise

    def _linger(self):
        """A lingering close, as web servers make one: the alert the handshake wrote stays
        readable. A TLS 1.3 client sends its request before the server has looked at its
        certificate; closing with that request unread would send a reset, and the client's
        kernel may drop the alert in front of it."""
        sock = self.request
        try:
            socket.socket.shutdown(sock, socket.SHUT_WR)
            sock.settimeout(1.0)
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and socket.socket.recv(sock, 4096):
                pass
        except OSError:
            pass

    def handle(self):
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError):
            self.close_connection = True

    def log_message(self, fmt, *args):
        pass

    def log_request(self, code="-", size="-"):
        t = self.server.transmitter
        t.log(f"{self.command} {self.path} {code}")

    # -- helpers -------------------------------------------------------------------------------
    def send_json(self, status, obj, headers=None):
        # a str is sent as it is (a test's raw body, control characters and all)
        data = obj.encode() if isinstance(obj, str) else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_empty(self, status, headers=None):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raise RequestError(411, "invalid_request", "chunked bodies are not supported")
        n = self.headers.get("Content-Length")
        if n is None:
            return b""
        try:
            n = int(n)
        except ValueError:
            raise RequestError(400, "invalid_request", "bad Content-Length") from None
        if n < 0 or n > MAX_BODY:
            self.close_connection = True
            raise RequestError(413, "invalid_request", "body too large")
        return self.rfile.read(n)

    def json_body(self, required=True):
        raw = self.read_body()
        if not raw:
            if required:
                raise RequestError(400, "invalid_request", "a JSON body is required")
            return {}
        try:
            obj = json.loads(raw)
        except ValueError as e:
            raise RequestError(400, "invalid_request", f"body is not JSON: {e}") from None
        if not isinstance(obj, dict):
            raise RequestError(400, "invalid_request", "body must be a JSON object")
        return obj

    def check_auth(self):
        t = self.server.transmitter
        got = self.headers.get("Authorization")
        if got is None:
            raise RequestError(401, "authentication_failed", "bearer token required",
                               {"WWW-Authenticate": 'Bearer realm="ssf"'})
        scheme, _, cred = got.partition(" ")
        cred = cred.strip()
        if scheme.lower() == "bearer":
            if hmac.compare_digest(cred.encode(), t.token.encode()):
                return
            # An OAuth 2.0 access token from /oauth2/token is as good, while it lasts.
            state = t.check_access_token(cred)
            if state == "ok":
                return
            if state == "expired":
                raise RequestError(401, "authentication_failed", "the access token expired",
                                   {"WWW-Authenticate": 'Bearer realm="ssf", error="invalid_token", '
                                                        'error_description="The access token expired"'})
        raise RequestError(401, "authentication_failed", "invalid bearer token",
                           {"WWW-Authenticate": 'Bearer realm="ssf", error="invalid_token"'})

    def query(self):
        q = urllib.parse.urlsplit(self.path).query
        return {k: v[-1] for k, v in urllib.parse.parse_qs(q, keep_blank_values=True).items()}

    # -- dispatch ------------------------------------------------------------------------------
    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def send_response(self, code, message=None):
        self.sent_status = code
        super().send_response(code, message)

    def dispatch(self, method):
        t = self.server.transmitter
        path = urllib.parse.urlsplit(self.path).path
        arrived = time.monotonic()
        self.sent_status = None
        self.note = None
        try:
            self._dispatch(t, method, path)
        finally:
            if not path.startswith("/control/"):
                note = dict(self.note or {})
                note["peer_port"] = self.client_address[1]  # a proxy's port, when proxied
                if t.client_ca:
                    note["client_cert"] = self._client_cn()
                t.record_request(method, path, arrived, self.sent_status, note)

    def _client_cn(self):
        """The verified client certificate's subject CN (mutual TLS), or None."""
        try:
            cert = self.request.getpeercert()
        except (ValueError, AttributeError):
            return None
        for rdn in (cert or {}).get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    return v
        return None

    def _dispatch(self, t, method, path):
        try:
            with t.lock:
                t.count(f"{method} {path.split('/poll/')[0] + '/poll' if '/poll/' in path else path}")
            if not path.startswith("/control/"):
                forced = t.should_fail(path, method)
                if forced:
                    self.read_body()
                    if forced[2] is not None:  # the test's own body (a str: raw)
                        return self.send_json(forced[0], forced[2], forced[1])
                    raise RequestError(forced[0], "forced_failure", "failure injected by the test",
                                       forced[1])
            self.route(t, method, path)
        except OAuthError as e:
            self.close_connection = True
            self.send_json(e.status, {"error": e.err, "error_description": e.description},
                           dict(e.headers, Pragma="no-cache"))
        except RequestError as e:
            if e.status in (401, 411, 413):
                self.close_connection = True
            self.send_json(e.status, {"err": e.err, "description": e.description}, e.headers)
        except (ssl.SSLError, ConnectionError, BrokenPipeError):
            self.close_connection = True
        except Exception as e:  # a bug here must be visible, not a hang
            t.log(f"internal error on {method} {path}: {type(e).__name__}: {e}")
            self.close_connection = True
            try:
                self.send_json(500, {"err": "internal_error", "description": str(e)})
            except OSError:
                pass

    def route(self, t, method, path):
        wk = "/.well-known/ssf-configuration"
        if method == "GET" and path == wk + t.issuer_path:
            return self.send_json(200, t.metadata())
        if method == "GET" and path == "/ssf/jwks.json":
            return self.send_json(200, t.jwks())
        if path.startswith(wk):
            raise RequestError(404, "not_found", "no such issuer")
        if path == "/oauth2/token":
            if method != "POST":
                raise OAuthError(405, "invalid_request", "use POST")
            raw = self.read_body()
            return self.send_json(200, t.issue_token(self.headers, raw), {"Pragma": "no-cache"})
        if not path.startswith(("/ssf/", "/control/")):
            raise RequestError(404, "not_found", f"no route for {method} {path}")
        self.check_auth()
        if path == "/ssf/stream":
            return self.stream_api(t, method)
        if path == "/ssf/status":
            if method == "GET":
                with t.lock:
                    delay = t.status_delay
                if delay > 0:
                    time.sleep(delay)  # a slow management call (/control/config status_delay)
                with t.lock:
                    st = t._stream(self.query().get("stream_id"))
                    t.count("status_reads")
                    out = {"stream_id": st.id, "status": st.status}
                    if st.reason:
                        out["reason"] = st.reason
                return self.send_json(200, out)
            if method == "POST":
                body = self.json_body()
                status = body.get("status")
                if status not in ("enabled", "paused", "disabled"):
                    raise RequestError(400, "invalid_request", "status must be enabled|paused|disabled")
                self.note = {"body": body}
                with t.cond:
                    st = t._stream(body.get("stream_id"))
                    st.status = status
                    st.reason = body.get("reason")
                    if status == "disabled":
                        st.clear_queue()
                    t.cond.notify_all()
                    out = {"stream_id": st.id, "status": st.status}
                    if st.reason:
                        out["reason"] = st.reason
                return self.send_json(200, out)
        if path in ("/ssf/subjects:add", "/ssf/subjects:remove") and method == "POST":
            body = self.json_body()
            self.note = {"body": body}
            subj = body.get("subject")
            if not isinstance(subj, dict) or not isinstance(subj.get("format"), str):
                raise RequestError(400, "invalid_request", "subject must be an object with a format")
            with t.lock:
                st = t._stream(body.get("stream_id"))
                if path.endswith(":add"):
                    if subj not in st.subjects:
                        st.subjects.append(subj)
                    return self.send_empty(200)
                if subj in st.subjects:
                    st.subjects.remove(subj)
                return self.send_empty(204)
        if path == "/ssf/verify" and method == "POST":
            t.verification(self.json_body())
            return self.send_empty(204)
        if path.startswith("/ssf/poll/") and method == "POST":
            sid = path[len("/ssf/poll/"):]
            body = self.json_body(required=False)
            out = t.poll(sid, body)
            if isinstance(body, dict):
                self.note = {"return_immediately": body.get("returnImmediately", False),
                             "acks": len(body.get("ack") or []),
                             "sets": len(out.get("sets") or {})}
                if t.log_jtis:
                    self.note["acked_jtis"] = list(body.get("ack") or [])
                    self.note["sets_jtis"] = list(out.get("sets") or {})
            return self.send_json(200, out)
        if path.startswith("/control/"):
            return self.control(t, method, path)
        raise RequestError(404 if method in ("GET", "POST") else 405, "not_found",
                           f"no route for {method} {path}")

    def stream_api(self, t, method):
        if method == "POST":
            return self.send_json(201, t.create_stream(self.json_body(required=False)))
        if method == "GET":
            sid = self.query().get("stream_id")
            with t.lock:
                if sid is None:
                    return self.send_json(200, [s.config for s in t.streams.values()])
                return self.send_json(200, t._stream(sid).config)
        if method == "PATCH" and t.patch_unsupported:
            self.read_body()  # the connection stays usable
            raise RequestError(405, "invalid_request", "PATCH not supported, use PUT")
        if method in ("PATCH", "PUT"):
            self.note = {"body": self.json_body()}
            return self.send_json(200, t.update_stream(self.note["body"], replace=(method == "PUT")))
        if method == "DELETE":
            sid = self.query().get("stream_id")
            with t.cond:
                t._stream(sid)
                del t.streams[sid]
                t.cond.notify_all()
            return self.send_empty(204)
        raise RequestError(405, "invalid_request", f"{method} not allowed")

    @staticmethod
    def control_event(t, b):
        """One SET of /control/events (b: its request body, or one item of its "events")."""
        if not isinstance(b, dict) or not isinstance(b.get("event"), str):
            raise RequestError(400, "invalid_request", "event is required")
        for k in ("subject", "payload", "claims", "header"):
            if b.get(k) is not None and not isinstance(b[k], dict):
                raise RequestError(400, "invalid_request", f"{k} must be an object")
        try:
            uri = event_uri(b["event"])
        except ValueError as e:
            raise RequestError(400, "invalid_request", str(e)) from None
        with t.cond:
            if not t.streams and not b.get("allow_no_stream"):
                raise RequestError(409, "no_stream", "no stream exists yet")
            sid = b.get("stream_id")
            st = t._stream(sid, receiver=False) if sid else None
            if st is None and t.streams:
                st = next(iter(t.streams.values()))
            jti, token, claims = t.build_set(
                b["event"], email=b.get("email"), subject=b.get("subject"),
                payload=b.get("payload"), claims=b.get("claims"), tamper=b.get("tamper"),
                sign_alg=b.get("sign_alg"), header=b.get("header"), stream=st)
            if not isinstance(jti, str) or not jti:
                # no usable jti in the SET (a test of the receiver's checks): queue it
                # under a key of our own, which the receiver cannot know
                jti = "no-jti-" + secrets.token_hex(8)
            queued = t.enqueue(jti, token, uri=uri, stream_id=sid, force=bool(b.get("force")),
                               subject=(claims or {}).get("sub_id"))
        # When a poll or the push thread can take it (the lock is released): benchmarks
        # time the signal from here.
        available = time.time()
        t.log(f"event {short_name(uri)} jti={jti} queued on {queued}")
        return {"jti": jti, "token": token, "claims": claims, "streams": queued,
                "available": available}

    def control(self, t, method, path):
        if path == "/control/events" and method == "POST":
            b = self.json_body()
            if isinstance(b.get("events"), list):
                # Many at once (a benchmark's backlog): each signed and queued in turn, the
                # lock released between two; answers their jtis and streams, in order.
                out = [self.control_event(t, e) for e in b["events"]]
                return self.send_json(200, {"events": [{"jti": o["jti"], "streams": o["streams"]}
                                                       for o in out]})
            return self.send_json(200, self.control_event(t, b))
        if path == "/control/raw" and method == "POST":
            b = self.json_body()
            if not isinstance(b.get("jti"), str) or not isinstance(b.get("token"), str):
                raise RequestError(400, "invalid_request", "jti and token (strings) are required")
            queued = t.enqueue(b["jti"], b["token"], stream_id=b.get("stream_id"))
            return self.send_json(200, {"jti": b["jti"], "streams": queued})
        if path == "/control/acks" and method == "GET":
            return self.send_json(200, t.control_acks())
        if path == "/control/ack-count" and method == "GET":
            return self.send_json(200, t.control_ack_count())
        if path == "/control/reset" and method == "POST":
            t.control_reset(self.json_body(required=False))
            return self.send_json(200, {})
        if path == "/control/streams" and method == "GET":
            return self.send_json(200, t.control_streams())
        if path == "/control/rotate-key" and method == "POST":
            b = self.json_body(required=False)
            return self.send_json(200, t.rotate_key(b.get("alg"), keep_old=b.get("keep_old", True)))
        if path == "/control/config" and method == "POST":
            return self.send_json(200, t.control_config(self.json_body()))
        if path == "/control/stream-status" and method == "POST":
            return self.send_json(200, {"updates": t.control_stream_status(self.json_body())})
        if path == "/control/oauth2" and method == "GET":
            return self.send_json(200, t.control_oauth2())
        if path == "/control/jwks" and method == "GET":
            return self.send_json(200, t.jwks())
        if path == "/control/static-push" and method == "POST":
            # Stream-less push (Okta's model): the admin registers the receiver's push URL
            # and the Authorization value at the transmitter; the receiver never calls the
            # stream API. The SETs of this "stream" go to that URL with that header.
            b = self.json_body()
            if not isinstance(b.get("endpoint_url"), str) or \
                    not isinstance(b.get("authorization_header"), str):
                raise RequestError(400, "invalid_request",
                                   "endpoint_url and authorization_header (strings) are required")
            return self.send_json(200, t.create_stream({"delivery": {
                "method": PUSH, "endpoint_url": b["endpoint_url"],
                "authorization_header": b["authorization_header"]}}))
        raise RequestError(404, "not_found", f"no control route {method} {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description="local SSF transmitter for tests and the demo")
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--issuer-path", default="")
    p.add_argument("--alg", default="RS256", choices=SIGN_ALGS)
    p.add_argument("--token")
    p.add_argument("--audience", default="https://host1.example.com/ssf")
    p.add_argument("--long-poll-max", type=float, default=10.0)
    p.add_argument("--redelivery-delay", type=float, default=2.0)
    p.add_argument("--push-ca", help="CA file to verify push receivers (default: system store)")
    p.add_argument("--min-verification-interval", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="do not log requests")
    p.add_argument("--oauth2-client-id", default="ssf-test-client")
    p.add_argument("--oauth2-client-secret", help="default: random (see DIR/oauth2.json)")
    p.add_argument("--oauth2-expires-in", type=int, default=3600)
    p.add_argument("--oauth2-client-auth", default="client_secret_basic",
                   choices=OAUTH2_CLIENT_AUTH_METHODS,
                   help="the client authentication method the token endpoint requires")
    p.add_argument("--oauth2-client-key",
                   help="private_key_jwt: the client's public key (PEM) assertions are verified with")
    p.add_argument("--client-ca", help="require TLS client certificates issued by this CA (PEM)")
    p.add_argument("--critical-subject-members", default="",
                   help="comma-separated member names for the metadata (default: none)")
    a = p.parse_args(argv)
    t = Transmitter(listen=a.listen, state_dir=a.state_dir, issuer_path=a.issuer_path, alg=a.alg,
                    token=a.token, audience=a.audience, long_poll_max=a.long_poll_max,
                    redelivery_delay=a.redelivery_delay, push_ca=a.push_ca,
                    min_verification_interval=a.min_verification_interval, quiet=a.quiet,
                    oauth2_client_id=a.oauth2_client_id,
                    oauth2_client_secret=a.oauth2_client_secret,
                    oauth2_expires_in=a.oauth2_expires_in,
                    oauth2_client_auth=a.oauth2_client_auth,
                    oauth2_client_key=a.oauth2_client_key, client_ca=a.client_ca,
                    critical_subject_members=[m for m in a.critical_subject_members.split(",")
                                              if m] or None)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    t.start()
    t.log(f"listening, issuer {t.issuer}")
    while not done.wait(1.0):
        pass
    t.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
