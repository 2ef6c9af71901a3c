# SPDX-License-Identifier: MIT
"""Nothing stalls the login gate (PRODUCT.md "Limits, retention and protection of the login
gate"): PAM is answered from memory on a thread of its own while an admin query streams a
long history; `ssfctl history` returns any N, without truncation, and --since."""

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time

import pytest

import support
from support import wait_for

PAM_SUCCESS, PAM_PERM_DENIED = 0, 6


@pytest.fixture
def sockdir():
    """A socket directory everyone may traverse (tmp_path is private to root), so that ssfctl
    running as alice can reach the 0666 socket."""
    d = tempfile.mkdtemp(prefix="ssf-gate-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def fill_history(d, uid, user, n, start):
    """Adds n history rows for uid (one per second from start) to the daemon's stopped store."""
    db = sqlite3.connect(os.path.join(d.state_dir, "state.db"))
    rows = [(start + i, user, uid, f"fill-{i}", "session-revoked", "session-revoked", 0, 3,
             "logout-high", "logout", f"ok: row {i}", -1) for i in range(n)]
    db.executemany("INSERT INTO history (time, user, uid, jti, event, detection, level_before, "
                   "level_after, rule, action, result, duration_ms) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()


def ctl_as(d, uid, *args):
    """ssfctl --json as uid (an unprivileged local user); returns (rc, parsed, stderr)."""
    cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", d.ssfctl, "--json",
           "--socket", d.socket, *args]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=d.full_env())
    parsed = json.loads(cp.stdout) if cp.stdout.strip() else None
    return cp.returncode, parsed, cp.stderr


def test_history_of_any_length_while_pam_answers(daemon_factory, transmitter, users, pam,
                                                 sockdir):
    path = os.path.join(sockdir, "socket")
    d = daemon_factory(rules=support.LOGOUT_HIGH_RULES, start=False,
                       section_opts={"daemon": {"socket": path}})
    d.socket = path
    d.start()
    j = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(j)
    assert d.stop() == 0
    n = 12000
    start = int(time.time()) - n
    fill_history(d, users.uid("alice"), "alice", n, start)
    d.start()

    # PAM keeps answering, from another thread, while alice reads her whole history.
    answers, stop = [], threading.Event()

    def pam_loop():
        while not stop.is_set():
            answers.append(pam.account(d, "bob").code)

    t = threading.Thread(target=pam_loop)
    t.start()
    try:
        rc, out, err = ctl_as(d, users.uid("alice"), "history", "alice", "-n", str(n + 10))
    finally:
        stop.set()
        t.join(timeout=60)
    assert rc == 0, err
    entries = out["entries"]
    assert len(entries) == n  # every row, none truncated
    assert "truncated" not in out
    assert entries[0]["jti"] == f"fill-{n - 1}" and entries[-1]["jti"] == "fill-0"
    assert answers and all(a == PAM_PERM_DENIED for a in answers), answers

    # --since: only what happened since then, newest first.
    rc, out, err = ctl_as(d, users.uid("alice"), "history", "alice", "-n", str(n),
                          "--since", str(start + n - 100))
    assert rc == 0, err
    assert [e["jti"] for e in out["entries"]] == [f"fill-{i}" for i in range(n - 1, n - 101, -1)]

    # alice may not read bob's history, however long it is.
    rc, _, err = ctl_as(d, users.uid("alice"), "history", "bob")
    assert rc != 0 and "permission denied" in err
    # The text output streams the same rows.
    cp = d.ctl("history", "alice", "-n", "3", json=False)
    assert cp.returncode == 0 and cp.stdout.count("ok: row ") == 3, cp.stdout
    # Every frame's rows make one table: a header, then all of them, newest first.
    cp = d.ctl("history", "alice", "-n", str(n + 10), json=False, timeout=120)
    lines = cp.stdout.splitlines()
    assert cp.returncode == 0 and lines[0].startswith("TIME ") and len(lines) == n + 1, cp.stderr
    assert all("ok: row " in x for x in lines[1:])
    assert len({x.index("alice") for x in lines[1:]}) == 1  # one width for every row


def test_history_rows_of_any_bytes_are_listed(daemon_factory, transmitter, users):
    """Root writes each row's JSON itself: quotes, backslashes and control characters are
    escaped, text that is not UTF-8 comes as U+FFFD, and no row is lost to one bad byte; the
    table shows control characters as '?'."""
    d = daemon_factory(rules=support.LOGOUT_HIGH_RULES)
    transmitter.wait_stream()
    assert d.stop() == 0
    hostile = 'q"b\\s/\x01\n\t\x1b[2J\x7f\u009b\u00e9\u202e\U0001f600'
    db = sqlite3.connect(os.path.join(d.state_dir, "state.db"))
    db.execute("INSERT INTO history (time, user, uid, jti, event, detection, level_before, "
               "level_after, rule, action, result, duration_ms, txn) "
               "VALUES (?, ?, ?, ?, ?, ?, 0, 3, ?, ?, ?, ?, ?)",
               (int(time.time()), "alice", users.uid("alice"), hostile, "session-revoked",
                "session-revoked", "r", "logout", b"ok \xff\xc0\xaf \xe2\x82 end", 5, None))
    db.commit()
    db.close()
    d.start()
    e = d.ctl("history", "alice")["entries"][0]
    assert e["jti"] == hostile
    assert e["result"] == "ok \ufffd\ufffd\ufffd \ufffd\ufffd end"
    assert e["txn"] is None and e["duration_ms"] == 5 and e["level_after"] == "high"
    out = d.ctl("history", "alice", json=False).stdout
    assert "ok \ufffd\ufffd\ufffd \ufffd\ufffd end" in out and "\x1b" not in out, out


def test_pam_answered_from_memory_after_each_commit(daemon_factory, transmitter, users, pam):
    d = daemon_factory(rules=support.LOGOUT_HIGH_RULES)
    assert pam.account(d, "alice").code == PAM_SUCCESS
    j = transmitter.send_event("session-revoked", email="alice@example.com")
    transmitter.wait_acked(j)
    # Acknowledged only after the commit, and the commit published the level PAM reads.
    assert pam.account(d, "alice").code == PAM_PERM_DENIED
    d.ctl("reset", "alice")
    assert pam.account(d, "alice").code == PAM_SUCCESS
    wait_for(lambda: d.ctl("status")["counters"]["pam_queries"] >= 3, 10,
             "the PAM queries to be counted")


PRIO_RULES = """
[rule hook-medium]
levels = medium
action = workflow
workflow = prio
"""


def sched_of(path):
    """(comm, nice, policy) from a /proc stat file (policy: 0 SCHED_OTHER, 3 SCHED_BATCH)."""
    with open(path) as f:
        stat = f.read()
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    return comm, int(fields[16]), int(fields[38])


def test_background_work_runs_below_the_pam_front_thread(daemon_factory, transmitter, users,
                                                         tmp_path):
    """Only the thread that answers PAM keeps the daemon's own CPU priority: the main loop
    (commits), the network worker it forks, the snapshot compaction and the hooks run niced and
    SCHED_BATCH, so that a login's query does not queue for a CPU behind them."""
    out = tmp_path / "hook.stat"
    d = daemon_factory(rules=PRIO_RULES, start=False, section_opts={"hooks": {"timeout": "30s"}})
    d.add_hook("prio", f"#!/bin/sh\ncat /proc/self/stat > {out}.tmp && mv {out}.tmp {out}\n")
    d.start()
    transmitter.wait_stream()
    base = os.getpriority(os.PRIO_PROCESS, 0)  # what the daemon was started with
    root = d.proc.pid

    def threads():
        return {tid: sched_of(f"/proc/{root}/task/{tid}/stat")
                for tid in os.listdir(f"/proc/{root}/task")}

    def worker():
        for tid in os.listdir("/proc"):
            if tid.isdigit():
                try:
                    with open(f"/proc/{tid}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                    with open(f"/proc/{tid}/cmdline", "rb") as f:
                        worker_cmd = b"--network-worker" in f.read()
                except (OSError, ValueError):
                    continue
                if ppid == root and worker_cmd:
                    return int(tid)
        return None
    t = wait_for(lambda: (lambda x: x if any(c == "ssf-snapshot" for c, _, _ in x.values())
                          else None)(threads()), 20, "the snapshot thread")
    front = [v for v in t.values() if v[0] == "ssf-pam-front"]
    assert front == [("ssf-pam-front", base, 0)] * 4, t
    assert t[str(root)][1:] == (min(base + 5, 19), 3), t
    assert [v[1:] for v in t.values() if v[0] == "ssf-snapshot"] == [(min(base + 10, 19), 3)], t
    assert sched_of(f"/proc/{wait_for(worker, 20, 'the network worker')}/stat")[1:] == \
        (min(base + 5, 19), 3)

    # A hook runs as its lane does.
    transmitter.wait_acked(transmitter.send_event("credential-change", email="bob@example.com"))
    wait_for(out.exists, 20, "the hook to record its priority")
    assert sched_of(out)[1:] == (min(base + 5, 19), 3)
