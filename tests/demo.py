#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""make demo: the seed scenario against the bundled local SSF transmitter, narrated.

Everything runs unprivileged-by-design and private to this run: the transmitter on
127.0.0.1 with its own CA, a private D-Bus with a logind stand-in holding alice's and bob's
sessions, users from nss_wrapper, the real ssf-sessiond and ssfctl, and the real pam_ssf.so
under pam_wrapper. Nothing on this host is touched."""

import argparse
import base64
import json
import os
import shutil
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "integration"))

import pam_support  # noqa: E402
import support  # noqa: E402

PAM_NAMES = {0: "PAM_SUCCESS", 6: "PAM_PERM_DENIED", 9: "PAM_AUTHINFO_UNAVAIL",
             25: "PAM_IGNORE", 3: "PAM_SERVICE_ERR"}

RULES = support.DEFAULT_RULES  # logout-high, notify-medium: the seed's policy

HOOK = """#!/bin/sh
# The admin's workflow: here it just writes what it was told.
{
  echo "notify-admin: $SSF_USER ($SSF_UID) is now $SSF_RISK_LEVEL (was $SSF_PREVIOUS_RISK_LEVEL)"
  echo "  detection $SSF_DETECTION, rule $SSF_RULE, jti $SSF_JTI"
} > "@HOOK@.out"
"""


def say(text=""):
    print(textwrap.fill(text, 100) if text else "", flush=True)


def step(n, title):
    print(f"\n\033[1m== {n}. {title}\033[0m", flush=True)


def show(label, text):
    for line in text.rstrip().splitlines():
        print(f"   {label}{line}", flush=True)


def decode_set(token):
    header, payload, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (json.loads(base64.urlsafe_b64decode(pad(header))),
            json.loads(base64.urlsafe_b64decode(pad(payload))))


def pam(tmp, d, user):
    run = pam_support.run_pam(tmp, [f"account required {{module}} socket={d.socket} "
                                    f"snapshot={d.snapshot}"], user, service="sshd")
    return run.code, run.errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    os.environ["SSF_BUILD"] = build
    tmp = tempfile.mkdtemp(prefix="ssf-demo-")
    os.chmod(tmp, 0o755)
    procs = []
    try:
        step(1, "The identity provider: a local SSF transmitter")
        tx = support.TransmitterProcess(os.path.join(tmp, "transmitter"),
                                        log_path=os.path.join(tmp, "transmitter.log")).start()
        procs.append(tx)
        say(f"Issuer {tx.issuer}, HTTPS with its own CA, signing SETs with jwcrypto (RS256). "
            f"It publishes /.well-known/ssf-configuration, a JWKS, stream management and an "
            f"RFC 8936 poll endpoint.")

        step(2, "This host: logind with live sessions, local users")
        bus = support.SystemBus(os.path.join(tmp, "bus")).start()
        procs.append(bus)
        logind = support.LogindMock(bus, os.path.join(tmp, "logind")).start()
        procs.append(logind)
        users = support.NssUsers(os.path.join(tmp, "nss")).write()
        alice, bob = users.uid("alice"), users.uid("bob")
        logind.add_session("1", alice, "alice", remote=True, service="sshd")
        logind.add_session("2", alice, "alice", remote=False, service="su-l")
        logind.add_session("3", bob, "bob", remote=True, service="sshd")
        for sid, uid, user in logind.sessions():
            say(f"   session {sid}: {user} (uid {uid})")

        step(3, "Start ssf-sessiond")
        env = {**logind.env(), **users.env()}
        d = support.Daemon(build, os.path.join(tmp, "daemon"), tx, env=env, rules=RULES)
        d.add_hook("notify-admin", HOOK)
        say("Its entity risk policy (first match wins):")
        show("| ", RULES.strip())
        d.start()
        procs.append(d)
        tx.wait_stream()
        st = d.ctl("status")
        say(f"It discovered the transmitter and created poll stream "
            f"{st['stream']['stream_id'] or tx.streams()[0]['stream_id']}.")
        for pid in os.listdir("/proc"):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"--network-worker" not in f.read():
                        continue
                with open(f"/proc/{pid}/status") as f:
                    st_lines = dict(line.split(":", 1) for line in f if ":" in line)
            except OSError:
                continue
            if st_lines.get("PPid", "").strip() == str(d.proc.pid):
                say(f"Privilege separation: the daemon (pid {d.proc.pid}) runs as root; its "
                    f"network worker (pid {pid}), which does all HTTPS, JSON and JWS parsing, "
                    f"runs as uid {st_lines['Uid'].split()[0]} with no groups.")

        step(4, "The device manager reports alice's device non-compliant")
        out = tx.send_event_full("device-compliance-change", email="alice@example.com",
                                 payload={"previous_status": "compliant",
                                          "current_status": "not-compliant",
                                          "reason_admin": {"en": "Disk encryption disabled"}})
        header, claims = decode_set(out["token"])
        say("The transmitter queued this Security Event Token (decoded):")
        show("", json.dumps(header))
        show("", json.dumps(claims, indent=2))
        tx.wait_acked(out["jti"])
        say(f"ssf-sessiond fetched it, verified the signature against the JWKS and the claims, "
            f"committed it, and acknowledged jti {out['jti']}.")

        step(5, "What the daemon decided and did")
        logind.wait_terminated("1")
        logind.wait_terminated("2")
        support.wait_for(lambda: d.ctl("history", "alice")["entries"][0]["result"] != "pending",
                         20, "the logout result")
        show("$ ssfctl risk alice   | ", d.ctl("risk", "alice", json=False).stdout)
        show("$ ssfctl history alice | ", d.ctl("history", "alice", json=False).stdout)
        say(f"Sessions terminated through logind: {', '.join(sorted(logind.terminated()))}. "
            f"Sessions left: " + ", ".join(f"{s[0]} ({s[2]})" for s in logind.sessions()))

        step(6, "New logins ask pam_ssf.so")
        for user in ("alice", "bob"):
            code, msgs = pam(os.path.join(tmp, "pam"), d, user)
            say(f"   account phase for {user}: {PAM_NAMES.get(code, code)}")
            for m in msgs:
                say(f"      {user} sees: \"{m}\"")

        step(7, "A medium-risk signal runs the workflow hook instead")
        j = tx.send_event("credential-change", email="bob@example.com",
                          payload={"credential_type": "password", "change_type": "revoke"})
        tx.wait_acked(j)
        hook_out = os.path.join(d.hooks_dir, "notify-admin.out")
        support.wait_for(lambda: os.path.exists(hook_out), 20, "the notify-admin hook")
        show("hook | ", open(hook_out).read())
        code, _ = pam(os.path.join(tmp, "pam"), d, "bob")
        say(f"bob's session 3 is still there ({'yes' if logind.sessions() else 'no'}); "
            f"bob's risk is {d.ctl('risk', 'bob')['level']} and PAM answers "
            f"{PAM_NAMES.get(code, code)} (deny=high).")

        step(8, "The daemon's own account (log excerpt)")
        for line in d.log().splitlines():
            if any(k in line for k in ("Received", "Risk of", "Rule ", "Created stream")):
                show("", line)
        say("\nDemo complete.")
        return 0
    except Exception as e:  # show what the daemon said before failing
        print(f"\ndemo failed: {e}", file=sys.stderr)
        for p in procs:
            if isinstance(p, support.Daemon):
                print(p.log()[-4000:], file=sys.stderr)
        return 1
    finally:
        for p in reversed(procs):
            try:
                p.stop()
            except Exception:
                pass
        if args.keep:
            print(f"(kept {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
