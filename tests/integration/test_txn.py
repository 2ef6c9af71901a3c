# SPDX-License-Identifier: MIT
"""SETs of one transaction at the transmitter share their txn claim (SSF §4.1.9, RFC 8417
§2.2): an action that an earlier SET of the same txn already caused for a user is not run
again, also across a restart of the daemon; the SET's risk change is recorded all the same.
Real parts: the local transmitter signs the SETs, the daemon polls them, terminates sessions
through the logind mock and runs a hook."""

import support
from support import wait_for

RULES = support.DEFAULT_RULES  # logout-high (sessions = all, reset = no), notify-medium

HOOK = """#!/usr/bin/python3
import json, os, sys
facts = json.load(sys.stdin)  # the txn is in the standard input object
with open("@HOOK@.runs", "a") as f:
    f.write(os.environ["SSF_JTI"] + " " + facts["txn"] + "\\n")
print("notified about " + os.environ["SSF_USER"])
"""


def history(d, user):
    return d.ctl("history", user)["entries"]


def send(transmitter, event, txn, email="alice@example.com"):
    """Sends one SET for alice with txn (None: without the claim) and waits for its ack."""
    jti = transmitter.send_event(event, email=email, claims={"txn": txn})
    transmitter.wait_acked(jti)
    return jti


def entry(d, user, jti):
    for e in history(d, user):
        if e["jti"] == jti:
            return e
    raise AssertionError(f"no history entry for {jti}: {history(d, user)}")


def wait_result(d, user, jti):
    """The history entry of jti once its action finished (not "pending")."""
    def done():
        e = entry(d, user, jti)
        return e["result"] not in (None, "pending") and e
    return wait_for(done, 20, f"the action result of {jti} in {user}'s history")


def test_same_txn_logs_out_once(daemon_factory, transmitter, logind, users):
    d = daemon_factory(rules=RULES)
    alice, bob = users.uid("alice"), users.uid("bob")
    logind.add_session("c1", alice, "alice", remote=True, service="sshd")
    logind.add_session("c2", alice, "alice", remote=False, service="su-l")
    logind.add_session("b1", bob, "bob", remote=True, service="sshd")
    txn = "txn-incident-42"

    j1 = send(transmitter, "session-revoked", txn)
    e1 = wait_result(d, "alice", j1)
    assert e1["action"] == "logout" and e1["result"].startswith("ok"), e1
    assert e1["txn"] == txn
    assert sorted(logind.terminated()) == ["c1", "c2"]

    # She is back in (say, through a door PAM does not guard) when the second SET of the
    # same transaction arrives: its logout was already done, so it is not run again.
    logind.add_session("c3", alice, "alice", remote=True, service="sshd")
    j2 = send(transmitter, "credential-compromise", txn)
    e2 = entry(d, "alice", j2)
    assert e2["txn"] == txn
    assert e2["detection"] == "credential-compromise"
    assert (e2["level_before"], e2["level_after"]) == ("high", "high")
    assert e2["rule"] == "logout-high" and e2["action"] == "logout"
    assert e2["result"] == f"skipped: already done for txn {txn} (jti {j1})", e2
    assert e2["duration_ms"] is None
    # The risk change is recorded all the same.
    risk = d.ctl("risk", "alice")
    assert sorted(x["detection"] for x in risk["detections"]) == [
        "credential-compromise", "session-revoked"]

    # The same txn for bob is his own transaction's first logout.
    j3 = send(transmitter, "session-revoked", txn, email="bob@example.com")
    assert wait_result(d, "bob", j3)["result"].startswith("ok")

    # Each session was terminated once; c3 not at all.
    assert sorted(logind.terminated()) == ["b1", "c1", "c2"]
    assert [s[0] for s in logind.sessions()] == ["c3"]
    assert "skipped: already done for txn" in d.log()

    # Across a restart (the correlation is in the state database).
    assert d.stop() == 0
    d.start()
    logind.add_session("c4", alice, "alice", remote=False, service="login")
    j4 = send(transmitter, "account-disabled", txn)
    assert entry(d, "alice", j4)["result"] == f"skipped: already done for txn {txn} (jti {j1})"
    # A SET with another txn still acts: the logout runs and takes c3 and c4.
    j5 = send(transmitter, "sessions-revoked", "txn-other")
    assert wait_result(d, "alice", j5)["result"].startswith("ok")
    assert sorted(logind.terminated()) == ["b1", "c1", "c2", "c3", "c4"]


def test_different_or_no_txn_both_act(daemon_factory, transmitter, logind, users):
    d = daemon_factory(rules=RULES)
    alice = users.uid("alice")

    for n, first, second in ((1, ("session-revoked", "txn-a"), ("credential-compromise", "txn-b")),
                             (2, ("account-disabled", None), ("account-purged", None))):
        logind.clear_calls()
        logind.add_session(f"s{n}a", alice, "alice")
        j1 = send(transmitter, *first)
        assert wait_result(d, "alice", j1)["result"].startswith("ok")
        logind.add_session(f"s{n}b", alice, "alice")
        j2 = send(transmitter, *second)
        e2 = wait_result(d, "alice", j2)
        assert e2["action"] == "logout" and e2["result"].startswith("ok"), e2
        assert e2["txn"] == second[1]
        assert logind.terminated() == [f"s{n}a", f"s{n}b"], (first, second)


def test_workflow_once_per_txn_and_logout_too(daemon_factory, transmitter, logind, users):
    """Different actions of one transaction both run; the hook sees the txn."""
    d = daemon_factory(rules=RULES)
    hook = d.add_hook("notify-admin", HOOK)
    logind.add_session("c1", users.uid("alice"), "alice")
    txn = "txn-w"

    j1 = send(transmitter, "credential-change", txn)        # medium: notify-admin
    assert wait_result(d, "alice", j1)["result"].startswith("ok")
    j2 = send(transmitter, "credential-change", txn)        # renewed, same hook: skipped
    assert entry(d, "alice", j2)["result"] == f"skipped: already done for txn {txn} (jti {j1})"
    j3 = send(transmitter, "session-revoked", txn)          # high: the logout runs
    e3 = wait_result(d, "alice", j3)
    assert e3["action"] == "logout" and e3["result"].startswith("ok"), e3
    assert logind.terminated() == ["c1"]

    with open(hook + ".runs") as f:
        assert f.read().splitlines() == [f"{j1} {txn}"]
