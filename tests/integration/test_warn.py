# SPDX-License-Identifier: MIT
"""action = logout with warn = DURATION (PRODUCT.md "Actions"), with the real daemon, SETs from
the local transmitter and the logind mock, whose sessions report as their TTY the slave of a
pseudo-terminal the test opened: the test reads what the daemon wrote from the master.

* The warning reaches the terminal first; meanwhile no session has ended and PAM refuses the
  user; then the logout happens, once.
* A restart of the daemon during the wait (SIGKILL or SIGTERM) neither warns again nor loses
  the logout: it happens once, and not before it was due.
* The wait holds up nobody else: another user's logout (no warn) runs at once.
* A session without a TTY is skipped; a TTY that is a symlink (to a real terminal), a regular
  file, a path outside /dev or another user's terminal is not written; the logout still
  happens.
* In dry run nothing is written and nothing ends."""

import os
import time

import pytest

import support
from support import wait_for

PAM_SUCCESS, PAM_PERM_DENIED = 0, 6


def warn_rules(warn):
    return f"""
[rule warn-high]
levels = high
action = logout
warn = {warn}
"""


class Pty:
    """A pseudo-terminal: .path is the slave's path (what the mock reports as TTY), owned by
    the session's user as login and sshd leave it; the slave stays open, as a session's shell
    would keep it; .read() collects what reached the master."""

    def __init__(self, owner):
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        os.fchown(self.slave, owner, -1)
        os.fchmod(self.slave, 0o620)
        os.set_blocking(self.master, False)
        self.data = b""

    def read(self):
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.data += chunk
        return self.data.decode("utf-8", "replace")

    def wait_text(self, text, timeout=30):
        wait_for(lambda: text in self.read(), timeout, f"{text!r} on {self.path}")
        return self.read()

    def close(self):
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def ptys():
    made = []

    def make(owner):
        p = Pty(owner)
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


def history(d, user):
    return d.ctl("history", user)["entries"][0]


def warning_line(detection, seconds):
    return f"ssf: {detection} -- you will be logged out in {seconds} seconds."


def test_warning_then_wait_then_logout(daemon_factory, transmitter, logind, users, pam, ptys):
    d = daemon_factory(rules=warn_rules("15s"))
    tty = ptys(users.uid("alice"))
    logind.add_session("w1", users.uid("alice"), "alice", tty=tty.path)
    logind.add_session("w2", users.uid("alice"), "alice", tty="")  # no terminal: skipped
    t0 = time.monotonic()
    j = transmitter.send_event("session-revoked", email="alice@example.com")
    transmitter.wait_acked(j)

    text = tty.wait_text("you will be logged out in 15 seconds.")
    assert "Broadcast message from ssf-sessiond@" in text
    assert warning_line("session-revoked", 15) in text
    # The wait: nothing has ended, the level is raised, PAM refuses her.
    assert logind.terminated() == []
    assert d.ctl("risk", "alice")["level"] == "high"
    assert pam.account(d, "alice").code == PAM_PERM_DENIED
    entry = history(d, "alice")
    assert entry["result"].startswith("pending: warned 1 of 2 sessions: w1 ("), entry
    assert "1 without a terminal" in entry["result"]
    assert "logout due at" in entry["result"]
    assert logind.terminated() == []

    wait_for(lambda: sorted(logind.terminated()) == ["w1", "w2"], 60, "the logout after the warning")
    assert time.monotonic() - t0 >= 15  # never before it was due
    wait_for(lambda: history(d, "alice")["result"].startswith("ok:"), 20, "the logout's result")
    result = history(d, "alice")["result"]
    assert "terminated 2 of 2 sessions" in result and "(after a 15 s warning)" in result, result
    assert d.ctl("status")["counters"]["actions_logout"] == 1
    assert text.count("Broadcast message") == 1
    assert "Cannot warn" not in d.log()
    # Once: a later wake-up of the lane finds nothing left to do.
    d.stop()
    assert sorted(logind.terminated()) == ["w1", "w2"]


def test_warning_ends_with_the_sanitised_reason_user(daemon_factory, transmitter, logind, users,
                                                     ptys):
    """The SET's CAEP reason_user ends the warning, as it ends PAM's denial: escape sequences
    and control characters gone, newlines folded, at most 200 characters."""
    d = daemon_factory(rules=warn_rules("30s"))
    tty = ptys(users.uid("alice"))
    logind.add_session("u1", users.uid("alice"), "alice", tty=tty.path)
    hostile = "\x1b]0;owned\x07\x1b[2JYour session\nwas revoked\x1b[31m by IT." + "x" * 5000
    j = transmitter.send_event("session-revoked", email="alice@example.com",
                               payload={"reason_user": {"de": "Sitzung widerrufen",
                                                        "en": hostile}})
    transmitter.wait_acked(j)
    tty.wait_text("you will be logged out in 30 seconds.")
    text = tty.wait_text("by IT.")
    assert "Your session was revoked by IT." + "x" * 10 in text, text
    assert "\x1b" not in text and "owned" not in text and "Sitzung" not in text
    assert "x" * 200 not in text  # cut at 200 characters
    assert logind.terminated() == []
    d.stop()


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_restart_during_the_wait(daemon_factory, transmitter, logind, users, ptys, how):
    d = daemon_factory(rules=warn_rules("12s"))
    tty = ptys(users.uid("alice"))
    logind.add_session("r1", users.uid("alice"), "alice", tty=tty.path)
    t0 = time.monotonic()
    j = transmitter.send_event("session-revoked", email="alice@example.com")
    transmitter.wait_acked(j)
    tty.wait_text("you will be logged out in 12 seconds.")
    assert logind.terminated() == []

    if how == "SIGKILL":
        d.kill()
    else:
        assert d.stop() == 0
    assert logind.terminated() == []
    d.start()

    wait_for(lambda: logind.terminated() == ["r1"], 60, "the logout after the restart")
    assert time.monotonic() - t0 >= 12
    wait_for(lambda: history(d, "alice")["result"].startswith("ok:"), 20, "the logout's result")
    # Not warned again after the restart, and the logout ran once.
    assert tty.read().count("Broadcast message") == 1
    d.stop()
    d.start()
    assert d.ctl("status")["counters"]["actions_failed"] == 0
    assert logind.terminated() == ["r1"]


def test_wait_holds_up_no_other_logout(daemon_factory, transmitter, logind, users, ptys):
    rules = """
[rule warn-staff]
groups = staff
levels = high
action = logout
warn = 10m

[rule logout-high]
levels = high
action = logout
"""
    d = daemon_factory(rules=rules)
    tty = ptys(users.uid("alice"))
    logind.add_session("a1", users.uid("alice"), "alice", tty=tty.path)
    logind.add_session("b1", users.uid("bob"), "bob")
    j = transmitter.send_event("session-revoked", email="alice@example.com")
    transmitter.wait_acked(j)
    tty.wait_text("you will be logged out in 600 seconds.")
    j = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(j)
    logind.wait_terminated("b1")
    assert logind.terminated() == ["b1"]  # alice's logout is still due later
    assert history(d, "alice")["result"].startswith("pending: warned 1 of 1 session")


def test_only_the_sessions_in_scope_are_warned(daemon_factory, transmitter, logind, users, ptys):
    d = daemon_factory(rules=warn_rules("3s") + "sessions = remote\n")
    remote, local = ptys(users.uid("alice")), ptys(users.uid("alice"))
    logind.add_session("s1", users.uid("alice"), "alice", remote=True, tty=remote.path)
    logind.add_session("c1", users.uid("alice"), "alice", remote=False, tty=local.path)
    j = transmitter.send_event("session-revoked", email="alice@example.com")
    transmitter.wait_acked(j)
    remote.wait_text("you will be logged out in 3 seconds.")
    logind.wait_terminated("s1", timeout=60)
    wait_for(lambda: history(d, "alice")["result"].startswith("ok:"), 20, "the logout's result")
    assert "terminated 1 of 1 session: s1" in history(d, "alice")["result"]
    # The local session is neither warned nor ended: the rule is about remote ones.
    assert local.read() == ""
    assert logind.terminated() == ["s1"]


def test_symlink_and_regular_file_not_written(daemon_factory, transmitter, logind, users, ptys):
    if os.geteuid() != 0:
        pytest.skip("needs root to create files under /dev")
    alice = users.uid("alice")
    real, target, bobs = ptys(alice), ptys(alice), ptys(users.uid("bob"))
    regular = f"/dev/ttySSFWARNF{os.getpid()}"
    link = f"/dev/ttySSFWARNL{os.getpid()}"
    for p in (regular, link):
        if os.path.lexists(p):
            os.unlink(p)
    with open(regular, "w"):
        pass
    os.chown(regular, alice, -1)  # hers, so that only its being no terminal stops the write
    os.symlink(target.path, link)
    try:
        d = daemon_factory(rules=warn_rules("3s"))
        logind.add_session("f1", users.uid("alice"), "alice", tty=regular)
        logind.add_session("l1", users.uid("alice"), "alice", tty=link[len("/dev/"):])
        logind.add_session("p1", users.uid("alice"), "alice", tty=real.path)
        logind.add_session("x1", users.uid("alice"), "alice", tty="../../etc/motd")
        # A terminal of bob's that logind (mistakenly) reports for her session: never written.
        logind.add_session("y1", users.uid("alice"), "alice", tty=bobs.path)
        j = transmitter.send_event("session-revoked", email="alice@example.com")
        transmitter.wait_acked(j)
        real.wait_text("you will be logged out in 3 seconds.")
        wait_for(lambda: sorted(logind.terminated()) == ["f1", "l1", "p1", "x1", "y1"], 60,
                 "the logout of every session")
        assert os.path.getsize(regular) == 0
        assert os.path.islink(link)
        assert target.read() == ""  # nothing reached the terminal behind the symlink
        assert bobs.read() == ""
        wait_for(lambda: "Rule warn-high: logout of 'alice' in 3 s" in d.log(), 20, "the warning's log")
        line = [s for s in d.log().splitlines() if "Rule warn-high: logout of 'alice' in 3 s" in s][0]
        assert "warned 1 of 5 sessions: p1 (" in line, line
        assert "f1 (" + regular + ": Inappropriate ioctl for device)" in line, line
        assert "l1 (" + link[len("/dev/"):] + ": Too many levels of symbolic links)" in line, line
        assert "x1 (../../etc/motd: Invalid argument)" in line, line
        assert "y1 (" + bobs.path + ": Permission denied)" in line, line
    finally:
        for p in (regular, link):
            if os.path.lexists(p):
                os.unlink(p)


def test_dry_run_writes_no_warning(daemon_factory, transmitter, logind, users, pam, ptys):
    d = daemon_factory(rules=warn_rules("2s"), section_opts={"daemon": {"dry_run": "yes"}})
    tty = ptys(users.uid("alice"))
    logind.add_session("d1", users.uid("alice"), "alice", tty=tty.path)
    j = transmitter.send_event("session-revoked", email="alice@example.com")
    transmitter.wait_acked(j)
    assert history(d, "alice")["result"] == "dry run: would logout"
    # Nothing was enqueued (the same transaction as the decision), so nothing can follow.
    assert d.ctl("status")["counters"]["actions_logout"] == 0
    assert tty.read() == ""
    assert logind.terminated() == []


def test_check_config_refuses_warn_without_logout(daemon_factory):
    d = daemon_factory(rules="""
[rule lock-high]
levels = high
action = lock
warn = 30s
""", start=False)
    r = d.check_config()
    assert r.returncode != 0
    assert "Rule 'lock-high': 'warn' is only valid with action = logout" in r.stdout + r.stderr
