# SPDX-License-Identifier: MIT
"""Worker supervision never stalls the root daemon (issue "Nothing stalls the login gate"): a
network worker that closes its channel and lingers, one that pipelines requests and never reads
the replies, and one that floods the channel are each killed and restarted, while root keeps
answering PAM and ssfctl. The compromised worker is tests/integration/hostile_worker.py, run by
the test build of the daemon (test_root_trust.py)."""

import os

from support import wait_for
from test_root_trust import hostile_daemon

PAM_SUCCESS = 0


def starts(script):
    """The pids of the stand-in's starts, in order."""
    try:
        with open(script + ".starts") as f:
            return [int(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def gone(pid):
    """True once pid no longer exists (the daemon reaped it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def go(script):
    with open(script + ".go", "w"):
        pass


def answers(d, pam):
    """Root answers ssfctl and PAM itself: with failmode=closed, bob (level none) is admitted
    only by an answer from the daemon, not by the snapshot or the fail mode."""
    assert "counters" in d.ctl("status")
    run = pam.account(d, "bob", "failmode=closed")
    assert run.code == PAM_SUCCESS, run.logs


def test_worker_lingering_after_closing_its_channel(daemon_factory, build_dir, tmp_path, pam):
    d, script = hostile_daemon(daemon_factory, build_dir, tmp_path, {"mode": "linger"})
    wait_for(lambda: starts(script), 20, "the stand-in to start")
    first = starts(script)[0]
    go(script)
    wait_for(lambda: os.path.exists(script + ".linger"), 20,
             "the stand-in to close its channel and linger")
    # Root took note at once (it does not wait for the process): a restart is scheduled.
    wait_for(lambda: "Restarting the network worker" in d.log(), 20,
             "root to schedule a restart")
    answers(d, pam)
    wait_for(lambda: "closed its channel but did not exit, killing it" in d.log(), 30,
             "root to kill the lingering worker")
    wait_for(lambda: gone(first), 20, "the lingering worker to be reaped")
    wait_for(lambda: len(starts(script)) >= 2, 30, "root to start a new worker")
    answers(d, pam)
    assert d.running()


def test_worker_that_never_reads_replies(daemon_factory, build_dir, tmp_path, pam):
    d, script = hostile_daemon(daemon_factory, build_dir, tmp_path,
                               {"mode": "pipeline", "count": 20000})
    wait_for(lambda: starts(script), 20, "the stand-in to start")
    first = starts(script)[0]
    go(script)
    wait_for(lambda: "does not read what root sends" in d.log(), 60,
             "root to kill the worker that does not read")
    answers(d, pam)
    wait_for(lambda: gone(first), 20, "the worker to be reaped")
    wait_for(lambda: len(starts(script)) >= 2, 30, "root to start a new worker")
    answers(d, pam)
    assert d.running()


def test_worker_that_floods_its_channel(daemon_factory, build_dir, tmp_path, pam):
    d, script = hostile_daemon(daemon_factory, build_dir, tmp_path, {"mode": "flood"})
    wait_for(lambda: starts(script), 20, "the stand-in to start")
    first = starts(script)[0]
    go(script)
    wait_for(lambda: os.path.exists(script + ".flood"), 20, "the stand-in to flood")
    # Answers while the flood goes on, or after it was stopped: never a stall.
    answers(d, pam)
    wait_for(lambda: "floods its channel" in d.log(), 60, "root to kill the flooding worker")
    wait_for(lambda: gone(first), 20, "the worker to be reaped")
    wait_for(lambda: len(starts(script)) >= 2, 30, "root to start a new worker")
    answers(d, pam)
    assert d.running()
