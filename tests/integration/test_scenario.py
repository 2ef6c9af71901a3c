# SPDX-License-Identifier: MIT
"""The seed scenario end to end, with real parts: the local transmitter signs with jwcrypto,
the daemon polls it over HTTPS, keeps state in SQLite, terminates sessions through a logind
mock on a private D-Bus, and the real pam_ssf.so asks it under pam_wrapper."""

import os

import support
from pam_support import PAM_PERM_DENIED, PAM_SUCCESS, run_pam
from support import wait_for

RULES = support.DEFAULT_RULES  # logout-high, notify-medium: the seed's policy

HOOK = """#!/bin/sh
env | sort > "@HOOK@.env"
cat > "@HOOK@.stdin"
echo "notified about $SSF_USER"
"""


def pam_account(tmp_path, daemon, user, extra=""):
    line = f"account required {{module}} socket={daemon.socket} snapshot={daemon.snapshot} {extra}"
    return run_pam(tmp_path, [line.strip()], user)


def history_for(daemon, user):
    return daemon.ctl("history", user)["entries"]


def test_seed_scenario_device_noncompliant_logs_alice_out(daemon_factory, transmitter, logind,
                                                          users, tmp_path):
    d = daemon_factory(rules=RULES)
    d.add_hook("notify-admin", HOOK)
    alice, bob = users.uid("alice"), users.uid("bob")
    logind.add_session("c1", alice, "alice", remote=True, service="sshd")
    logind.add_session("c2", alice, "alice", remote=False, service="su-l")
    logind.add_session("c3", bob, "bob", remote=True, service="sshd")

    jti = transmitter.send_event("device-compliance-change", email="alice@example.com",
                                 payload={"previous_status": "compliant",
                                          "current_status": "not-compliant"})
    transmitter.wait_acked(jti)

    # Both of alice's sessions end; bob's stays.
    logind.wait_terminated("c1")
    logind.wait_terminated("c2")
    assert sorted(logind.terminated()) == ["c1", "c2"]
    assert [s[0] for s in logind.sessions()] == ["c3"]

    risk = d.ctl("risk", "alice")
    assert risk["user"] == "alice"
    assert risk["level"] == "high"
    assert [x["detection"] for x in risk["detections"]] == ["device-compliance-change"]
    assert risk["detections"][0]["jti"] == jti

    def logout_done():
        e = history_for(d, "alice")
        return e and e[0]["result"] not in (None, "pending") and e
    entries = wait_for(logout_done, 20, "the logout result in alice's history")
    e = entries[0]
    assert e["jti"] == jti
    assert e["event"] == "device-compliance-change"
    assert e["detection"] == "device-compliance-change"
    assert (e["level_before"], e["level_after"]) == ("none", "high")
    assert e["rule"] == "logout-high" and e["action"] == "logout"
    assert e["result"].startswith("ok"), e
    assert "2 of 2" in e["result"], e

    # PAM refuses alice with a message she can act on, and still admits bob.
    run = pam_account(tmp_path, d, "alice")
    assert run.code == PAM_PERM_DENIED
    assert any("high" in m and "device-compliance-change" in m for m in run.errors), run.errors
    assert pam_account(tmp_path, d, "bob").code == PAM_SUCCESS
    # The hook of the medium rule did not run.
    assert not os.path.exists(os.path.join(d.hooks_dir, "notify-admin.env"))


def test_broken_signature_reported_never_acknowledged(daemon_factory, transmitter, logind,
                                                      users, tmp_path):
    d = daemon_factory(rules=RULES)
    logind.add_session("c1", users.uid("alice"), "alice")
    bad = transmitter.send_event("device-compliance-change", email="alice@example.com",
                                 tamper="signature")
    err = transmitter.wait_set_err(bad)
    assert err["err"] == "invalid_key", err
    assert bad not in transmitter.acks()["acked"]
    # Nothing changed.
    assert d.ctl("risk", "alice")["level"] == "none"
    assert logind.terminated() == []
    assert history_for(d, "alice") == []
    assert pam_account(tmp_path, d, "alice").code == PAM_SUCCESS
    # A good SET afterwards still works: the stream was not disturbed.
    good = transmitter.send_event("session-revoked", email="alice@example.com")
    transmitter.wait_acked(good)
    assert d.ctl("risk", "alice")["level"] == "high"


def test_medium_signal_runs_workflow_and_logs_nobody_out(daemon_factory, transmitter, logind,
                                                         users, tmp_path):
    d = daemon_factory(rules=RULES)
    hook = d.add_hook("notify-admin", HOOK)
    logind.add_session("c1", users.uid("alice"), "alice")
    jti = transmitter.send_event("credential-change", email="alice@example.com",
                                 payload={"credential_type": "password", "change_type": "update"})
    transmitter.wait_acked(jti)
    wait_for(lambda: os.path.exists(hook + ".env"), 20, "the notify-admin hook to run")

    def env():
        with open(hook + ".env") as f:
            return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    wait_for(lambda: "SSF_JTI" in env(), 10, "the hook's environment")
    e = env()
    assert e["SSF_USER"] == "alice"
    assert e["SSF_UID"] == str(users.uid("alice"))
    assert e["SSF_RISK_LEVEL"] == "medium"
    assert e["SSF_PREVIOUS_RISK_LEVEL"] == "none"
    assert e["SSF_DETECTION"] == "credential-change"
    assert e["SSF_EVENT_TYPE"].endswith("/credential-change")
    assert e["SSF_JTI"] == jti
    assert e["SSF_ISSUER"] == transmitter.issuer
    assert e["SSF_RULE"] == "notify-medium"
    assert e["PATH"] == "/usr/sbin:/usr/bin:/sbin:/bin"
    assert logind.terminated() == []

    def done():
        h = history_for(d, "alice")
        return h and h[0]["result"] != "pending" and h
    h = wait_for(done, 20, "the workflow result in history")[0]
    assert h["action"] == "workflow" and h["rule"] == "notify-medium"
    assert h["result"].startswith("ok"), h
    # medium is below the default deny=high: PAM admits her; deny=medium refuses her.
    assert pam_account(tmp_path, d, "alice").code == PAM_SUCCESS
    assert pam_account(tmp_path, d, "alice", "deny=medium").code == PAM_PERM_DENIED


def test_reset_yes_clears_risk_after_logout(daemon_factory, transmitter, logind, users,
                                            tmp_path):
    d = daemon_factory(rules=RULES.replace("reset = no", "reset = yes"))
    logind.add_session("c1", users.uid("alice"), "alice")
    jti = transmitter.send_event("session-revoked", email="alice@example.com")
    transmitter.wait_acked(jti)
    logind.wait_terminated("c1")
    wait_for(lambda: d.ctl("risk", "alice")["level"] == "none", 20,
             "alice's risk to be reset after the logout")
    events = [e["event"] for e in history_for(d, "alice")]
    assert events[0] == "reset" and "session-revoked" in events
    assert pam_account(tmp_path, d, "alice").code == PAM_SUCCESS


def test_pam_answered_while_long_poll_in_flight(daemon_factory, transmitter, users, tmp_path):
    # poll_wait 30 s: the poll thread sits in a long poll while PAM asks.
    d = daemon_factory(rules=RULES, transmitter_opts={"poll_wait": "30s"})
    transmitter.wait_stream()
    transmitter.wait_polls(1)
    for _ in range(5):
        assert pam_account(tmp_path, d, "bob", "timeout=500 failmode=closed").code == PAM_SUCCESS


def test_ssfctl_reset_and_set_risk(daemon_factory, transmitter, logind, users, tmp_path):
    d = daemon_factory(rules=RULES)
    out = d.ctl("set-risk", "carol", "high", "--reason", "manual test")
    assert (out["level_before"], out["level_after"]) == ("none", "high")
    assert pam_account(tmp_path, d, "carol").code == PAM_PERM_DENIED
    assert [u["user"] for u in d.ctl("users")["users"]] == ["carol"]
    out = d.ctl("reset", "carol")
    assert (out["level_before"], out["level_after"]) == ("high", "none")
    assert pam_account(tmp_path, d, "carol").code == PAM_SUCCESS
    assert [e["event"] for e in history_for(d, "carol")] == ["reset", "set-risk"]
