# SPDX-License-Identifier: MIT
"""action = lock (logind LockSession, nothing ends) and [daemon] dry_run = yes (audit mode:
decide and record, act on nothing, PAM admits whom it would refuse) — PRODUCT.md "Actions"."""

from syslog import LOG_NOTICE

import support
from support import wait_for

PAM_SUCCESS, PAM_PERM_DENIED = 0, 6

LOCK_RULES = """
[rule lock-high]
levels = high
action = lock
sessions = graphical
"""


def test_lock_locks_and_ends_nothing(daemon_factory, transmitter, logind, users, pam):
    d = daemon_factory(rules=LOCK_RULES)
    logind.add_session("g1", users.uid("alice"), "alice", remote=False,
                       service="gdm-password", type="wayland")
    logind.add_session("s1", users.uid("alice"), "alice", remote=True)
    j = transmitter.send_event("session-revoked", email="alice@example.com")
    transmitter.wait_acked(j)
    wait_for(lambda: "g1" in logind.locked(), 20, "LockSession(g1) on the logind mock")
    wait_for(lambda: d.ctl("history", "alice")["entries"][0]["result"].startswith("ok: locked"),
             20, "the lock to be recorded")
    assert "s1" not in logind.locked()  # only graphical sessions, as the rule says
    assert logind.terminated() == []
    assert "locked 1 of 1 session: g1" in d.ctl("history", "alice")["entries"][0]["result"]
    # Locked is not admitted: PAM still refuses a new login at high risk.
    assert pam.account(d, "alice").code == PAM_PERM_DENIED


def test_dry_run_decides_records_and_ends_nothing(daemon_factory, transmitter, logind, users,
                                                  pam):
    d = daemon_factory(rules=support.LOGOUT_HIGH_RULES,
                       section_opts={"daemon": {"dry_run": "yes"}})
    logind.add_session("c1", users.uid("alice"), "alice")
    j = transmitter.send_event("session-revoked", email="alice@example.com")
    transmitter.wait_acked(j)
    entry = d.ctl("history", "alice")["entries"][0]
    assert entry["result"] == "dry run: would logout", entry
    assert entry["level_after"] == "high"
    assert d.ctl("risk", "alice")["level"] == "high"  # levels are kept as usual
    assert "dry run: would logout" in d.log()
    # Nothing is done: no session ended, no action pending.
    assert d.ctl("status")["counters"]["actions_logout"] == 0
    assert logind.terminated() == []
    # PAM admits whom it would refuse, and says so at notice level.
    run = pam.account(d, "alice")
    assert run.code == PAM_SUCCESS
    assert run.logged(LOG_NOTICE, r"Dry run: would refuse user 'alice': risk level high")
