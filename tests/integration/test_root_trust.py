# SPDX-License-Identifier: MIT
"""The root daemon trusts only what it derives itself (PRODUCT.md "Subjects, users and who is
never acted upon", max_event_age): protected accounts, canonical users through NSS, bounded
records, and a compromised network worker played by tests/integration/hostile_worker.py."""

import json
import os
import time

import pytest

import support
from support import wait_for

HOSTILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostile_worker.py")
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
PAM_SUCCESS, PAM_PERM_DENIED = 0, 6


@pytest.fixture
def users(tmp_path):
    """The default accounts plus a second name of alice's account and a system account."""
    extra = [("alias", 2001, 2001, "Alice again", "/home/alice", "/bin/sh"),
             ("daemon", 1, 1, "daemon", "/usr/sbin", "/usr/sbin/nologin")]
    return support.NssUsers(str(tmp_path / "nss"), users=support.DEFAULT_USERS + extra).write()


# Stands for the daemon's configured issuer in records (hostile_daemon() substitutes it): root
# refuses a record whose iss is not that of the transmitter whose channel it came on.
CONFIGURED_ISS = "https://configured-issuer.invalid"


def record(jti, uri, subject, event=None, iat=None, event_time=None, **extra):
    now = int(time.time())
    r = {"kind": "subject", "jti": jti, "iss": CONFIGURED_ISS, "txn": None,
         "event_uri": uri, "iat": now if iat is None else iat,
         "event_time": now if event_time is None else event_time, "stream_id": None,
         "state": None, "status": None, "reason": None, "claims": "{}",
         "event": event if event is not None else {}, "subject": subject, "critical": []}
    r.update(extra)
    return r


def email(addr):
    return {"format": "email", "email": addr}


def hostile_daemon(daemon_factory, build_dir, tmp_path, frames, **kw):
    """The real root daemon (test build) with hostile_worker.py as its network worker, which
    sends frames once ./go exists. Returns (daemon, script path)."""
    script = str(tmp_path / "hostile.json")
    binary = os.path.join(build_dir, "helpers", "ssf-sessiond-test")
    if not os.path.exists(binary):
        pytest.fail(f"{binary} is missing: make tests builds it")
    env = {"SSF_TEST_WORKER": HOSTILE, "SSF_TEST_SCRIPT": script}
    d = daemon_factory(env=env, start=False, **kw)
    with open(script, "w") as f:
        f.write(json.dumps(frames).replace(CONFIGURED_ISS, d.transmitter.issuer))
    d.binary = binary
    d.start()
    return d, script


def replies(script):
    try:
        with open(script + ".replies") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def test_hostile_worker_records_refused(daemon_factory, build_dir, tmp_path, pam):
    now = int(time.time())
    frames = [
        # root, named by the worker: recorded as protected, never acted upon.
        {"type": "ingest", "id": 1,
         "request": record("h1", RISC + "credential-compromise", email("root@example.com"))},
        # A system account (uid 1 < min_uid).
        {"type": "ingest", "id": 2,
         "request": record("h2", CAEP + "session-revoked", email("daemon@example.com"))},
        # Times root does not believe.
        {"type": "ingest", "id": 3,
         "request": record("h3", RISC + "credential-compromise", email("bob@example.com"),
                           iat=now + 3600)},
        {"type": "ingest", "id": 4,
         "request": record("h4", RISC + "credential-compromise", email("bob@example.com"),
                           event_time=4000000000)},
        {"type": "ingest", "id": 5,
         "request": record("h5", RISC + "credential-compromise", email("bob@example.com"),
                           iat=now - 31 * 86400, event_time=now - 31 * 86400)},
        # Conclusions are root's: "clear the admin's manual level" is not the worker's to say.
        {"type": "ingest", "id": 6,
         "request": record("h6", CAEP + "device-compliance-change", email("alice@example.com"),
                           event={"current_status": "compliant",
                                  "previous_status": "not-compliant"},
                           users=["root", "alice"],
                           detection={"effect": "clear", "clears": "manual"})},
        # Oversized members.
        {"type": "ingest", "id": 7,
         "request": record("h7", CAEP + "session-revoked", email("bob@example.com"),
                           event={"reason_admin": {"en": "x" * 20000}})},
        # A type root does not know: a protocol violation, the worker is killed.
        {"type": "exec", "id": 8, "cmd": "rm -rf /"},
    ]
    d, script = hostile_daemon(daemon_factory, build_dir, tmp_path, frames)
    d.ctl("set-risk", "alice", "high", "--reason", "by hand")
    with open(script + ".go", "w"):
        pass
    wait_for(lambda: len(replies(script)) >= 7, 30, "the hostile worker's frames to be answered")
    wait_for(lambda: "broke the protocol" in d.log(), 20, "root to kill the worker")
    r = replies(script)
    status = [x.get("status") if isinstance(x, dict) else x for x in r]
    assert status[0] == 0 and status[1] == 0, r
    for i in (2, 3, 4, 6):
        assert status[i] < 0, r
        assert r[i]["err"] == "invalid_request", r
    assert "future" in r[2]["description"] and "event time" in r[3]["description"]
    assert "max_event_age" in r[4]["description"] and "too large" in r[6]["description"]
    # The unknown message got no reply: root killed the worker (it may not even read EOF).
    assert len(r) == 7 or r[7] is None, r

    # root and daemon: level none, recorded as protected; PAM admits root.
    assert d.ctl("risk", "root")["level"] == "none"
    assert d.ctl("risk", "daemon")["level"] == "none"
    hist = d.ctl("history", "root")["entries"]
    assert hist and hist[0]["result"].startswith("protected"), hist
    assert d.ctl("history", "daemon")["entries"][0]["result"].startswith("protected")
    assert pam.account(d, "root").code == PAM_SUCCESS
    # bob: nothing applied; alice's manual level stays.
    assert d.ctl("risk", "bob")["level"] == "none"
    risk = d.ctl("risk", "alice")
    assert risk["level"] == "high"
    assert [x["detection"] for x in risk["detections"]] == ["manual"]
    log = d.log()
    assert "refused: iat is in the future" in log
    assert "refused: the SET was issued more than max_event_age ago" in log


def test_protected_accounts_with_every_domain(daemon_factory, transmitter, logind, users, pam):
    d = daemon_factory(rules=support.LOGOUT_HIGH_RULES,
                       section_opts={"subjects": {"domains": "*"}})
    logind.add_session("r1", 0, "root")
    logind.add_session("a1", users.uid("alice"), "alice")
    j1 = transmitter.send_event("credential-compromise", email="root@attacker.example",
                                payload={"credential_type": "password"})
    j2 = transmitter.send_event("session-revoked", email="nobody@partner.example")
    j3 = transmitter.send_event("session-revoked", email="alice@partner.example")
    for j in (j1, j2, j3):
        transmitter.wait_acked(j)
    logind.wait_terminated("a1")
    assert "r1" not in logind.terminated()
    assert d.ctl("risk", "root")["level"] == "none"
    assert d.ctl("history", "root")["entries"][0]["result"].startswith("protected")
    assert d.ctl("history", "nobody")["entries"][0]["result"].startswith("protected")
    assert pam.account(d, "root").code == PAM_SUCCESS
    assert pam.account(d, "alice").code == PAM_PERM_DENIED
    # set-risk on a protected account is refused, naming the protection.
    rc, _, err = d.ctl("set-risk", "root", "high", check=False)
    assert rc != 0 and "protect" in err, err
    assert d.ctl("risk", "root")["level"] == "none"


def test_domains_limit_who_maps(daemon_factory, transmitter, users):
    d = daemon_factory(rules=support.LOGOUT_HIGH_RULES)  # domains = example.com
    j = transmitter.send_event("credential-compromise", email="root@attacker.example",
                               payload={"credential_type": "password"})
    transmitter.wait_acked(j)
    entries = [e for e in d.ctl("history")["entries"] if e.get("jti") == j]
    assert len(entries) == 1 and entries[0]["result"].startswith("unmapped"), entries
    assert d.ctl("history", "root")["entries"] == []


def test_domains_required_for_email_maps(daemon_factory, transmitter):
    d = daemon_factory(start=False, rules=support.LOGOUT_HIGH_RULES,
                       section_opts={"subjects": {"domains": None}})
    cp = d.check_config()
    assert cp.returncode == 1
    assert "needs 'domains'" in cp.stderr and "domains = *" in cp.stderr, cp.stderr
    d.write_config(d.config_text.replace("[subjects]", "[subjects]\ndomains = *", 1))
    cp = d.check_config()
    assert cp.returncode == 0, cp.stderr


def test_aliases_share_one_level(daemon_factory, transmitter, users, pam):
    d = daemon_factory(rules=support.LOGOUT_HIGH_RULES)
    j = transmitter.send_event("session-revoked", email="alias@example.com")
    transmitter.wait_acked(j)
    # One account: both names answer with its own name and level.
    assert d.ctl("risk", "alias") == d.ctl("risk", "alice")
    assert d.ctl("risk", "alias")["user"] == "alice"
    assert d.ctl("risk", "alice")["level"] == "high"
    assert [u["user"] for u in d.ctl("users")["users"]] == ["alice"]
    assert pam.account(d, "alice").code == PAM_PERM_DENIED
    assert pam.account(d, "alias").code == PAM_PERM_DENIED
    # Daemon down: the snapshot is keyed by uid, so the alias is still refused.
    assert d.stop() == 0
    assert pam.account(d, "alias", "failmode=open").code == PAM_PERM_DENIED


def test_unknown_names_get_a_defined_answer(daemon_factory, transmitter, users, pam):
    d = daemon_factory()
    # Not "daemon unavailable": a name NSS does not know is level none, with failmode=closed.
    for name in ("ghost", "john smith", "ALICE@CORP"):
        run = pam.account(d, name, "failmode=closed")
        assert run.code == PAM_SUCCESS, (name, run.logs)
    wait_for(lambda: "unknown user 'john smith'" in d.log(), 10, "the unknown user to be logged")


def test_max_event_age_refuses_old_sets(daemon_factory, transmitter, users):
    d = daemon_factory(rules=support.LOGOUT_HIGH_RULES,
                       section_opts={"daemon": {"max_event_age": "1d"}})
    old = int(time.time()) - 2 * 86400
    j = transmitter.send_event("session-revoked", email="alice@example.com",
                               claims={"iat": old})
    err = transmitter.wait_set_err(j)
    assert err["err"] == "invalid_request", err
    assert "max_event_age" in err["description"], err
    assert d.ctl("risk", "alice")["level"] == "none"
