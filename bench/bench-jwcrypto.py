#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A second reference for bench-jws: python3-jwcrypto verifying the same SETs with the same
JWKS (deserialize + verify, no claim checks), against the floor under it, pyca/cryptography's
verify of the same signing input with the same key object. Same fixtures as bench-jws.

    bench/bench-jwcrypto.py [--data tests/data/jose] [--rounds R] [--round-ms MS]
"""

import argparse
import json
import os
import statistics
import sys
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from jwcrypto import jwk, jws
from jwcrypto.common import base64url_decode

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = [("RS256", "set-ok-rs256.jwt"), ("PS256", "set-ok-ps256-pinned.jwt"),
         ("ES256", "set-ok-es256.jwt"), ("EdDSA", "set-ok-eddsa.jwt")]


def floor_fn(alg, key, signing_input, sig):
    pub = key.get_op_key("verify")
    if alg == "RS256":
        return lambda: pub.verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
    if alg == "PS256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return lambda: pub.verify(sig, signing_input, pss, hashes.SHA256())
    if alg == "ES256":
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        return lambda: pub.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    return lambda: pub.verify(sig, signing_input)


def per_op(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(HERE), "tests", "data", "jose"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--round-ms", type=float, default=150)
    args = ap.parse_args()
    with open(os.path.join(args.data, "jwks.json"), encoding="utf-8") as f:
        keyset = jwk.JWKSet.from_json(f.read())

    print(f"python3-jwcrypto reference (µs/op, median of {args.rounds} paired rounds)")
    print(f"{'alg':6s} {'jwcrypto':>11s} {'pyca floor':>11s} {'ratio':>7s}")
    for alg, name in CASES:
        with open(os.path.join(args.data, name), encoding="utf-8") as f:
            token = f.read().strip()
        header = json.loads(base64url_decode(token.split(".")[0]))
        key = keyset.get_key(header["kid"])
        signing_input = token.rsplit(".", 1)[0].encode()
        sig = base64url_decode(token.rsplit(".", 1)[1])

        def verify(token=token, key=key, alg=alg):
            j = jws.JWS()
            j.deserialize(token)
            j.verify(key, alg=alg)

        base = floor_fn(alg, key, signing_input, sig)
        verify()
        base()
        n = max(10, int(args.round_ms / 1e3 / per_op(verify, 20)))
        tj, tb, ratio = [], [], []
        for _ in range(args.rounds):
            b = per_op(base, n)
            v = per_op(verify, n)
            tb.append(b)
            tj.append(v)
            ratio.append(v / b)
        print(f"{alg:6s} {statistics.median(tj) * 1e6:11.1f} {statistics.median(tb) * 1e6:11.1f} "
              f"{statistics.median(ratio):7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
