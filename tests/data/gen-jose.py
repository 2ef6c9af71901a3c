#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Generates the JOSE test fixtures under tests/data/jose/ with python3-jwcrypto, an
implementation independent of ours, so the C verifier is never only checked against itself.

    /usr/bin/python3 tests/data/gen-jose.py

Keys are TEST KEYS ONLY. They are kept in tests/data/jose/keys/ and reused when present, so
re-running the script changes only what it is asked to change. Every token is written to
tests/data/jose/<name>.jwt (one line, no newline at the end); the JWKS documents are
tests/data/jose/jwks*.json. The C unit tests (test-jws.c, test-set.c, test-risk.c) read them.

Fixed facts the C tests share (they are not computed from any clock):
    issuer   https://tr.example.test
    audience https://host1.example.test/ssf
    iat      1700000000
"""
import json
import os
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from jwcrypto import jwk
from jwcrypto.common import base64url_decode, base64url_encode
from jwcrypto.jws import JWSCore

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "jose")
KEYS = os.path.join(OUT, "keys")

ISS = "https://tr.example.test"
AUD = "https://host1.example.test/ssf"
IAT = 1700000000
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
OKTA = "https://schemas.okta.com/secevent/okta/event-type/"
SSF = "https://schemas.openid.net/secevent/ssf/event-type/"
ALL_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
            "EdDSA", "HS256"]


def load_or_generate(name, **params):
    path = os.path.join(KEYS, name + ".jwk")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return jwk.JWK.from_json(f.read())
    k = jwk.JWK.generate(**params)
    with open(path, "w", encoding="utf-8") as f:
        f.write((k.export() if params["kty"] == "oct" else k.export_private()) + "\n")
    return k


def public(k, **extra):
    d = json.loads(k.export_public())
    d.update(extra)
    return d


def write(name, text):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        f.write(text)


def sign(key, header, claims):
    """Compact JWS over the exact header and payload bytes given (dicts are JSON-encoded)."""
    h = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
    p = claims if isinstance(claims, bytes) else json.dumps(claims, separators=(",", ":")).encode()
    core = JWSCore(json.loads(h)["alg"], key, h, p, ALL_ALGS)
    sig = core.sign()
    return "%s.%s.%s" % (sig["protected"], sig["payload"].decode(), sig["signature"])


def claims(**over):
    c = {
        "iss": ISS,
        "aud": AUD,
        "iat": IAT,
        "jti": "jti-0001",
        "txn": "txn-1",
        "sub_id": {"format": "email", "email": "alice@example.com"},
        "events": {CAEP + "session-revoked": {
            "initiating_entity": "policy",
            "reason_admin": {"en": "Landspeed Policy Violation: C076E82F"},
            "event_timestamp": IAT - 100}},
    }
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def event(uri, payload, **over):
    return claims(events={uri: payload}, **over)


def main():
    os.makedirs(KEYS, exist_ok=True)
    rsa = load_or_generate("rsa1", kty="RSA", size=2048, kid="rsa1")
    rsa_ps = load_or_generate("rsa-ps", kty="RSA", size=2048, kid="rsa-ps")
    rsa_other = load_or_generate("rsa-other", kty="RSA", size=2048, kid="rsa1")
    rsa_weak = load_or_generate("rsa-weak", kty="RSA", size=1024, kid="weak")
    ec = load_or_generate("ec1", kty="EC", crv="P-256", kid="ec1")
    ec384 = load_or_generate("ec384", kty="EC", crv="P-384", kid="ec384")
    ed = load_or_generate("ed1", kty="OKP", crv="Ed25519", kid="ed1")
    ed448 = load_or_generate("ed448", kty="OKP", crv="Ed448", kid="ed448")
    hmac = load_or_generate("hs1", kty="oct", size=256, kid="hs1")

    # The transmitter's JWKS: one key per family, one RSA key pinned to PS256.
    jwks = {"keys": [public(rsa, use="sig"), public(rsa_ps, alg="PS256"), public(ec, use="sig"),
                     public(ec384), public(ed)]}
    write("jwks.json", json.dumps(jwks, indent=1) + "\n")
    # Keys that must all be skipped, and one usable one.
    skipped = {"keys": [
        public(rsa_weak),                              # RSA < 2048 bits
        json.loads(hmac.export()),                     # symmetric
        json.loads(rsa.export_private()) | {"kid": "private"},  # private material
        public(rsa, kid="enc", use="enc"),             # encryption key
        public(rsa, kid="ops", key_ops=["encrypt"]),   # no verify op
        public(ec, kid="alg-mismatch", alg="RS256"),   # alg does not fit kty
        public(rsa, kid="alg-hs", alg="HS256"),        # alg not allowed
        public(ed448),                                 # Ed448 not allowed
        {"kty": "XYZ", "kid": "unknown-kty"},
        "not an object",
        public(ec, kid="ec-short", x="AAAA"),          # bad coordinate length
        public(ed, kid="usable"),
    ]}
    write("jwks-skipped.json", json.dumps(skipped, indent=1) + "\n")
    write("jwks-weak.json", json.dumps({"keys": [public(rsa_weak)]}, indent=1) + "\n")
    write("jwks-single.json", json.dumps({"keys": [public(rsa)]}, indent=1) + "\n")

    h = {"typ": "secevent+jwt"}
    rs = dict(h, alg="RS256", kid="rsa1")
    tokens = {
        # Good SETs, one per algorithm family.
        "set-ok-rs256": sign(rsa, rs, claims()),
        "set-ok-ps256": sign(rsa, dict(h, alg="PS256", kid="rsa1"), claims()),
        "set-ok-ps256-pinned": sign(rsa_ps, dict(h, alg="PS256", kid="rsa-ps"), claims()),
        "set-ok-es256": sign(ec, dict(h, alg="ES256", kid="ec1"), claims()),
        "set-ok-es384": sign(ec384, dict(h, alg="ES384", kid="ec384"), claims()),
        "set-ok-eddsa": sign(ed, dict(h, alg="EdDSA", kid="ed1"), claims()),
        "set-ok-typ-application": sign(rsa, dict(rs, typ="application/secevent+jwt"), claims()),
        "set-ok-typ-upper": sign(rsa, dict(rs, typ="SecEvent+JWT"), claims()),
        "set-ok-aud-array": sign(rsa, rs, claims(aud=["https://other.test", AUD])),
        "set-ok-iat-within-skew": sign(rsa, rs, claims(iat=IAT + 200)),
        "set-ok-ignored-headers": sign(rsa, dict(rs, jku="https://evil.test/jwks",
                                                 x5u="https://evil.test/x5u",
                                                 jwk=public(rsa_other)), claims()),
        "set-ok-no-kid-single": sign(rsa, dict(h, alg="RS256"), claims()),
        # Header / signature failures.
        "set-typ-missing": sign(rsa, {"alg": "RS256", "kid": "rsa1"}, claims()),
        "set-typ-jwt": sign(rsa, dict(rs, typ="JWT"), claims()),
        "set-crit": sign(rsa, dict(rs, crit=["exp"], exp=1), claims()),
        "set-no-kid-ambiguous": sign(rsa, dict(h, alg="PS256"), claims()),
        "set-unknown-kid": sign(rsa, dict(rs, kid="nope"), claims()),
        "set-wrong-key": sign(rsa_other, rs, claims()),
        "set-alg-pinned-mismatch": sign(rsa_ps, dict(h, alg="RS256", kid="rsa-ps"), claims()),
        "set-hs256": sign(hmac, dict(h, alg="HS256", kid="hs1"), claims()),
        "set-weak-rsa": sign(rsa_weak, dict(h, alg="RS256", kid="weak"), claims()),
        # Claim failures.
        "set-iss-wrong": sign(rsa, rs, claims(iss="https://evil.test")),
        "set-iss-missing": sign(rsa, rs, claims(iss=None)),
        "set-aud-missing": sign(rsa, rs, claims(aud=None)),
        "set-aud-wrong": sign(rsa, rs, claims(aud="https://other.test")),
        "set-aud-array-wrong": sign(rsa, rs, claims(aud=["https://a.test", "https://b.test"])),
        "set-iat-future": sign(rsa, rs, claims(iat=IAT + 3600)),
        "set-iat-missing": sign(rsa, rs, claims(iat=None)),
        "set-iat-string": sign(rsa, rs, claims(iat="1700000000")),
        "set-jti-missing": sign(rsa, rs, claims(jti=None)),
        "set-jti-empty": sign(rsa, rs, claims(jti="")),
        "set-jti-long": sign(rsa, rs, claims(jti="j" * 257)),
        "set-events-missing": sign(rsa, rs, claims(events=None)),
        "set-events-empty": sign(rsa, rs, claims(events={})),
        "set-events-array": sign(rsa, rs, claims(events=[CAEP + "session-revoked"])),
        "set-event-not-object": sign(rsa, rs, claims(events={CAEP + "session-revoked": "x"})),
        "set-sub-present": sign(rsa, rs, claims(sub="alice")),
        "set-exp-present": sign(rsa, rs, claims(exp=IAT + 3600)),
        "set-two-events": sign(rsa, rs, claims(events={CAEP + "session-revoked": {},
                                                      CAEP + "credential-change": {}})),
        "set-duplicate-claim": sign(rsa, rs, (
            '{"iss":"%s","iss":"%s","aud":"%s","iat":%d,"jti":"dup","events":{"%s":{}}}'
            % (ISS, ISS, AUD, IAT, CAEP + "session-revoked")).encode()),
        "set-not-json": sign(rsa, rs, b"this is not json"),
        # Event selection, legacy URIs, subjects, times.
        "set-extension-event": sign(rsa, rs, claims(events={
            "https://vendor.example/ext/session-revoked-detail": {"note": "x"},
            CAEP + "session-revoked": {"event_timestamp": IAT - 5}})),
        "set-unknown-event": sign(rsa, rs, claims(events={"https://vendor.example/ev/x": {}})),
        "set-legacy-token-claims": sign(rsa, rs, claims(events={
            CAEP + "token-claims-changed": {"claims": {"trusted_network": False}}})),
        "set-legacy-verification": sign(rsa, rs, claims(
            sub_id={"format": "opaque", "id": "stream-1"},
            events={"https://schemas.openid.net/secevent/risc/event-type/verification":
                    {"state": "abc"}})),
        "set-alternative-uris": sign(rsa, rs, claims(
            sub_id={"format": "opaque", "id": "stream-1"},
            events={"https://schemas.openid.net/secevent/sse/event-type/verification": {},
                    SSF + "verification": {"state": "s1"}})),
        "set-okta": sign(rsa, rs, claims(sub_id=None, txn=None, events={CAEP + "session-revoked": {
            "subject": {"user": {"format": "iss_sub", "iss": ISS, "sub": "00u1okta"}},
            "reason_admin": {"en": "Policy Violation: C076E822"},
            "event_timestamp": (IAT - 60) * 1000 + 643}})),
        "set-okta-user-risk": sign(rsa, rs, claims(sub_id=None, events={OKTA + "user-risk-change": {
            "subject": {"user": {"format": "email", "email": "alice@example.com"}},
            "current_level": "high", "previous_level": "low",
            "event_timestamp": (IAT - 30) * 1000}})),
        "set-google-subject-type": sign(rsa, rs, claims(
            sub_id={"subject_type": "iss-sub", "iss": ISS, "sub": "g-123"},
            events={RISC + "account-disabled": {"reason": "hijacking"}})),
        "set-toe": sign(rsa, rs, claims(toe=IAT - 500, events={RISC + "account-purged": {}})),
        "set-event-time-future": sign(rsa, rs, claims(events={
            CAEP + "session-revoked": {"event_timestamp": IAT + 100000}})),
        "set-sub-id-not-object": sign(rsa, rs, claims(sub_id="alice")),
        "set-no-subject": sign(rsa, rs, claims(sub_id=None)),
        "set-txn-number": sign(rsa, rs, claims(txn=8675309)),
    }
    # Signed with python3-cryptography directly, for what jwcrypto does not produce: PSS with
    # a salt longer than the hash (RFC 7518 §3.5 requires salt = hash length), and the RFC 9864
    # fully-specified "Ed25519" alg name.
    def raw_sign(header, signer):
        hb = base64url_encode(json.dumps(header, separators=(",", ":")))
        pb = base64url_encode(json.dumps(claims(), separators=(",", ":")))
        return "%s.%s.%s" % (hb, pb, base64url_encode(signer(("%s.%s" % (hb, pb)).encode())))

    rsa_priv = rsa.get_op_key("sign")
    tokens["set-ps256-salt-max"] = raw_sign(dict(h, alg="PS256", kid="rsa1"), lambda m: rsa_priv.sign(
        m, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH),
        hashes.SHA256()))
    tokens["set-ps256-mgf1-sha1"] = raw_sign(dict(h, alg="PS256", kid="rsa1"), lambda m: rsa_priv.sign(
        m, padding.PSS(mgf=padding.MGF1(hashes.SHA1()), salt_length=32), hashes.SHA256()))
    tokens["set-ok-ps256-raw"] = raw_sign(dict(h, alg="PS256", kid="rsa1"), lambda m: rsa_priv.sign(
        m, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256()))
    ed_priv = ed.get_op_key("sign")
    tokens["set-ok-ed25519-alg"] = raw_sign(dict(h, alg="Ed25519", kid="ed1"), ed_priv.sign)

    # Built by hand: an unsecured JWS (alg none) and a compact token with five parts (JWE-like).
    none_hdr = base64url_encode(json.dumps({"typ": "secevent+jwt", "alg": "none"}))
    payload = base64url_encode(json.dumps(claims()))
    tokens["set-alg-none"] = none_hdr + "." + payload + "."
    tokens["set-alg-none-sig"] = none_hdr + "." + payload + ".AAAA"

    # Risk classification fixtures: one good SET per event, signed like the others.
    def risk(name, uri, payload, **over):
        tokens["risk-" + name] = sign(rsa, rs, event(uri, payload, **over))

    risk("session-revoked", CAEP + "session-revoked", {})
    risk("sessions-revoked", RISC + "sessions-revoked", {})
    risk("token-claims-change", CAEP + "token-claims-change", {"claims": {"a": 1}})
    risk("credential-change", CAEP + "credential-change",
         {"credential_type": "password", "change_type": "update"})
    risk("credential-change-missing", CAEP + "credential-change", {"credential_type": "password"})
    risk("assurance-down", CAEP + "assurance-level-change",
         {"namespace": "NIST-AAL", "current_level": "nist-aal1", "previous_level": "nist-aal2",
          "change_direction": "decrease"})
    risk("assurance-up", CAEP + "assurance-level-change",
         {"namespace": "NIST-AAL", "current_level": "nist-aal2", "previous_level": "nist-aal1",
          "change_direction": "increase"})
    risk("compliance-not", CAEP + "device-compliance-change",
         {"current_status": "not-compliant", "previous_status": "compliant",
          "reason_admin": {"de": "Nicht konform", "fr": "Non conforme"}})
    risk("compliance-ok", CAEP + "device-compliance-change",
         {"current_status": "compliant", "previous_status": "not-compliant"})
    risk("compliance-missing", CAEP + "device-compliance-change", {"previous_status": "compliant"})
    risk("compliance-bogus", CAEP + "device-compliance-change",
         {"current_status": "sort-of", "previous_status": "compliant"})
    risk("session-established", CAEP + "session-established", {"acr": "AAL2"})
    risk("session-presented", CAEP + "session-presented", {})
    risk("risk-level-high", CAEP + "risk-level-change",
         {"current_level": "HIGH", "principal": "USER", "risk_reason": "PASSWORD_FOUND_IN_DATA_BREACH"})
    risk("risk-level-low-lower", CAEP + "risk-level-change",
         {"current_level": "low", "previous_level": "HIGH", "principal": "USER"})
    risk("risk-level-missing", CAEP + "risk-level-change", {"principal": "USER"})
    risk("risk-level-bogus", CAEP + "risk-level-change", {"current_level": "EXTREME"})
    risk("okta-user-risk-medium", OKTA + "user-risk-change",
         {"current_level": "medium", "previous_level": "low"})
    risk("okta-user-risk-secure", OKTA + "user-risk-change",
         {"current_level": "secure", "previous_level": "high"})
    risk("okta-device-risk-none", OKTA + "device-risk-change",
         {"current_level": "none", "previous_level": "high"})
    risk("okta-ip-change", OKTA + "ip-change", {"current_ip_address": "192.0.2.1"})
    for name in ("account-disabled", "account-enabled", "account-purged",
                 "account-credential-change-required", "credential-compromise",
                 "identifier-changed", "identifier-recycled", "recovery-activated",
                 "recovery-information-changed", "opt-in", "opt-out-initiated",
                 "opt-out-cancelled", "opt-out-effective"):
        payload = {"credential_type": "password"} if name == "credential-compromise" else {}
        risk(name, RISC + name, payload)
    risk("account-disabled-reason", RISC + "account-disabled", {"reason": "hijacking"})
    risk("verification", SSF + "verification", {"state": "x"})
    risk("stream-updated", SSF + "stream-updated", {"status": "paused"})
    risk("unknown", "https://vendor.example/ev/whatever", {})

    for name, tok in tokens.items():
        write(name + ".jwt", tok)

    # Seeds for the fuzz targets: a few of the above plus the JWKS documents.
    fuzz = os.path.join(HERE, "..", "fuzz", "corpus")
    for sub in ("jws", "set", "jwks"):
        os.makedirs(os.path.join(fuzz, sub), exist_ok=True)
    for name in ("set-ok-rs256", "set-ok-es256", "set-ok-eddsa", "set-alg-none", "set-crit",
                 "set-okta", "set-two-events", "set-google-subject-type", "set-alternative-uris",
                 "risk-compliance-not", "risk-okta-user-risk-secure", "risk-credential-change"):
        with open(os.path.join(fuzz, "jws", name), "w", encoding="utf-8") as f:
            f.write(tokens[name])
        with open(os.path.join(fuzz, "set", name), "w", encoding="utf-8") as f:
            f.write(tokens[name])
        # The decoded payload too: fuzz-set also feeds its input to the claims validator.
        with open(os.path.join(fuzz, "set", name + ".json"), "wb") as f:
            f.write(base64url_decode(tokens[name].split(".")[1]))
    # Signed with the RFC 8037 A.1 key, which fuzz-set.c embeds, so that the fuzzer gets past
    # the signature check into the claims.
    rfc8037 = jwk.JWK(kty="OKP", crv="Ed25519", x="11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                      d="nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
    ed_h = dict(h, alg="EdDSA")
    for name, c in (("ed-session-revoked", claims()),
                    ("ed-okta", claims(sub_id=None, events={CAEP + "credential-change": {
                        "subject": {"format": "iss_sub", "iss": ISS, "sub": "00u1"},
                        "credential_type": "password", "change_type": "revoke",
                        "event_timestamp": IAT * 1000}})),
                    ("ed-risk-level", event(CAEP + "risk-level-change", {"current_level": "HIGH"})),
                    ("ed-compliance", event(CAEP + "device-compliance-change",
                                            {"current_status": "compliant"}))):
        with open(os.path.join(fuzz, "set", name), "w", encoding="utf-8") as f:
            f.write(sign(rfc8037, ed_h, c))
    for name in ("jwks.json", "jwks-skipped.json", "jwks-weak.json"):
        with open(os.path.join(OUT, name), encoding="utf-8") as src, \
                open(os.path.join(fuzz, "jwks", name), "w", encoding="utf-8") as dst:
            dst.write(src.read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
