# SPDX-License-Identifier: MIT
"""Nothing lost, nothing doubled under faults (issue 9, "Lost signals").

* A short fault campaign (tests/integration/faults.py; the long one is bench/faults.py): SETs
  for many users flow while the root daemon or its network worker is SIGKILLed at random
  points; every SET is acknowledged, never before its commit, applied once, every due logout
  happens, every hook runs at least once and never again after its completion was recorded.
  The seed is printed; SSF_FAULT_SEED=N replays a run, SSF_FAULT_ITERATIONS=N changes its length.
* Disk full: the state directory on a small tmpfs, filled up: SETs stay unacknowledged (not
  in setErrs), the daemon says why, PAM keeps answering; once space returns they are applied
  and acknowledged, and the database passes PRAGMA integrity_check.
* A corrupt state.db: the daemon refuses to start, names the file and the recovery, and
  leaves the file as it was. Damage that the start does not read, found by a commit while
  running: the SET stays unacknowledged, the same clear error, no reset.
Real parts: the local transmitter, the daemon and its worker, the logind mock, pam_ssf.so
under pam_wrapper, hooks.
"""

import hashlib
import os
import sqlite3
import subprocess

import pytest

import faults
from support import wait_for

from pam_support import PAM_PERM_DENIED, PAM_SUCCESS


def test_fault_campaign(daemon_factory, transmitter, logind, users):
    seed = faults.seed_from_env()
    iterations = int(os.environ.get("SSF_FAULT_ITERATIONS", "24"))
    print(f"fault campaign: seed {seed} (replay with SSF_FAULT_SEED={seed}), "
          f"{iterations} iterations")
    c = faults.Campaign(transmitter, logind, users, daemon_factory, seed, iterations).setup()
    c.run()
    summary = c.finish()
    print("fault campaign:", summary)
    assert summary["root_kills"] > 0 and summary["worker_kills"] > 0, summary
    # The checks had something to check.
    assert summary["checks_while_dead"] == summary["root_kills"]
    assert summary["acks_checked"] > 0 and summary["hooks_done_at_kills"] > 0, summary


# ----------------------------------------------------------------------------- disk full

@pytest.fixture
def small_fs(tmp_path):
    """A 3 MiB tmpfs mounted under tmp_path (unmounted at teardown)."""
    mnt = tmp_path / "small-fs"
    mnt.mkdir()
    cp = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "ssf-test-tmpfs",
                         str(mnt)], capture_output=True, text=True)
    if cp.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (the integration tests run as root): {cp.stderr}")
    yield str(mnt)
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(path):
    """Write path until the file system refuses (ENOSPC); returns the bytes written."""
    n = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (1 << 16, 4096, 1):
            buf = b"\0" * chunk
            while True:
                try:
                    n += os.write(fd, buf)
                except OSError as e:
                    assert e.errno == 28, e  # ENOSPC
                    break
    finally:
        os.close(fd)
    return n


def history(d, user=None):
    return d.ctl("history", *([user] if user else []))["entries"]


def integrity(db_path):
    db = sqlite3.connect(db_path)
    try:
        return db.execute("PRAGMA integrity_check").fetchall()
    finally:
        db.close()


def test_disk_full_keeps_sets_pending(daemon_factory, transmitter, logind, users, pam, small_fs):
    state = os.path.join(small_fs, "state")
    d = daemon_factory(section_opts={"daemon": {"state_dir": state,
                                                "snapshot": os.path.join(state, "pam-snapshot")}},
                       start=False)
    d.state_dir, d.snapshot = state, os.path.join(state, "pam-snapshot")
    hook = d.add_hook("notify-admin", "#!/bin/sh\necho \"$SSF_JTI\" >> '@HOOK@.runs'\n")
    d.start()
    bob, carol = users.uid("bob"), users.uid("carol")
    logind.add_session("b1", bob, "bob")
    logind.add_session("c1", carol, "carol")
    j0 = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(j0)
    logind.wait_terminated("b1")

    filler = os.path.join(small_fs, "filler")
    assert fill(filler) > 0
    log_mark = len(d.log())
    pending = [transmitter.send_event("credential-compromise", email="carol@example.com"),
               transmitter.send_event("credential-change", email="alice@example.com")]

    # Delivered, refused for want of space, delivered again: still neither acknowledged nor
    # reported as an error, and the daemon said why.
    def tried_twice():
        a = transmitter.acks()
        for j in pending:
            assert j not in a["acked"], f"{j} acknowledged while the disk is full"
            assert j not in a["set_errs"], f"{j} reported in setErrs: {a['set_errs'][j]}"
        return all(a["deliveries"].get(j, 0) >= 2 for j in pending)
    wait_for(tried_twice, 30, "each SET to be delivered twice while the disk is full")
    log = d.log()[log_mark:]
    assert "No space left on device" in log, log[-4000:]
    assert "will be delivered again" in log, log[-4000:]
    assert "the file system of the state directory is full, SETs stay unacknowledged" in log, \
        log[-4000:]
    assert d.running()

    # PAM keeps answering from the daemon: bob (high) refused, alice admitted.
    assert pam.account(d, "bob", "failmode=closed").code == PAM_PERM_DENIED
    assert pam.account(d, "alice", "failmode=closed").code == PAM_SUCCESS
    assert d.ctl("risk", "bob")["level"] == "high"
    assert [e["jti"] for e in history(d) if e["jti"] in pending] == []
    # carol's logout may have been asked of logind already: an immediate logout goes out while
    # its commit syncs, here before the commit failed (ssf-sessiond(8), "Actions"). It is asked
    # again when her SET comes again and commits; her level is not recorded meanwhile.
    assert d.ctl("risk", "carol")["level"] == "none"
    if "c1" in logind.terminated():
        assert f"The logout of uid {carol} was asked of logind before its commit failed" \
            in d.log(), d.log()[-4000:]

    # Space returns: both are applied and acknowledged, their actions run.
    os.unlink(filler)
    for j in pending:
        transmitter.wait_acked(j, timeout=30)
    logind.wait_terminated("c1")
    wait_for(lambda: os.path.exists(hook + ".runs") and
             open(hook + ".runs").read().split() == [pending[1]], 20, "the hook to run once")
    assert d.ctl("risk", "carol")["level"] == "high"
    got = [e["jti"] for e in history(d) if e["jti"] in pending + [j0]]
    assert sorted(got) == sorted(pending + [j0])
    assert pam.account(d, "carol", "failmode=closed").code == PAM_PERM_DENIED

    assert d.stop() == 0
    assert integrity(os.path.join(state, "state.db")) == [("ok",)]


# ----------------------------------------------------------------------------- corrupt state.db

def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.parametrize("damage", ["header", "pages"])
def test_corrupt_state_db_is_refused_and_kept(daemon_factory, transmitter, logind, users, damage):
    d = daemon_factory()
    jti = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(jti)
    assert d.stop() == 0
    db = os.path.join(d.state_dir, "state.db")
    assert not os.path.exists(db + "-wal") or os.path.getsize(db + "-wal") == 0
    size = os.path.getsize(db)
    with open(db, "r+b") as f:
        if damage == "header":
            f.write(b"this is not an SQLite file" + b"\xa5" * 74)
        else:
            # Keep the header, destroy the schema and every table's first page.
            f.seek(100)
            f.write(b"\xa5" * (min(size, 4 * 4096) - 100))
    before = (os.stat(db).st_ino, digest(db), size)
    entries = sorted(os.listdir(d.state_dir))

    d.start(wait_socket=False)
    try:
        rc = d.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"ssf-sessiond kept running on a corrupt state.db:\n{d.log()}")
    log = d.log()
    assert rc == 1, log
    assert f"State database '{db}' is damaged" in log, log
    assert "move it aside" in log and "ssf-sessiond(8)" in log, log
    assert not os.path.exists(d.socket), "the daemon opened its socket on a corrupt database"
    # Left as it was: same file, same bytes, nothing created beside it.
    assert (os.stat(db).st_ino, digest(db), os.path.getsize(db)) == before
    assert sorted(os.listdir(d.state_dir)) == entries

    # The documented recovery: move it aside, start again (levels and history are gone).
    os.rename(db, db + ".corrupt")
    d.start()
    assert d.ctl("risk", "bob")["level"] == "none"
    assert os.path.exists(db + ".corrupt") and digest(db + ".corrupt") == before[1]


def test_state_db_damaged_while_running(daemon_factory, transmitter, logind, users, pam):
    """A damaged page that the start does not read (the history table's root page) is found by
    the next commit: the SET stays unacknowledged and out of setErrs, the daemon says the file is
    damaged and what to do, keeps answering PAM from the levels it has, and never resets the
    file; after the documented recovery (move it aside, start again) new SETs are applied."""
    d = daemon_factory()
    bob = users.uid("bob")
    logind.add_session("b1", bob, "bob")
    j0 = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(j0)
    logind.wait_terminated("b1")
    assert d.stop() == 0
    db = os.path.join(d.state_dir, "state.db")
    assert not os.path.exists(db + "-wal") or os.path.getsize(db + "-wal") == 0
    con = sqlite3.connect(db)
    try:
        page_size = con.execute("PRAGMA page_size").fetchone()[0]
        root = con.execute("SELECT rootpage FROM sqlite_master WHERE type = 'table' AND "
                           "name = 'history'").fetchone()[0]
        detections = con.execute("SELECT uid, detection, level FROM detections").fetchall()
    finally:
        con.close()
    assert root > 1 and (bob, ) in [(u, ) for u, _, _ in detections], detections
    with open(db, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * page_size)

    d.start()
    assert d.ctl("risk", "bob")["level"] == "high"
    logind.add_session("c1", users.uid("carol"), "carol")
    pending = transmitter.send_event("credential-compromise", email="carol@example.com")

    def unacknowledged():
        a = transmitter.acks()
        assert pending not in a["acked"], "acknowledged although its commit failed"
        assert pending not in a["set_errs"], f"reported in setErrs: {a['set_errs'][pending]}"
        return a["deliveries"].get(pending, 0)
    damaged = f"State database '{db}' is damaged"
    wait_for(lambda: damaged in d.log() and "will be delivered again" in d.log(), 30,
             "the daemon to find the damaged page and keep the SET for later")
    log = d.log()
    assert "SETs stay unacknowledged" in log and "ssf-sessiond(8)" in log, log[-4000:]
    # Delivered again, and refused again the same way.
    seen = unacknowledged()
    wait_for(lambda: unacknowledged() > seen and d.log().count(damaged) >= 2, 30,
             "the SET to be delivered and refused again")
    assert d.running()
    # PAM keeps answering from the daemon's levels; nothing was reset.
    assert pam.account(d, "bob", "failmode=closed").code == PAM_PERM_DENIED
    assert pam.account(d, "carol", "failmode=closed").code == PAM_SUCCESS
    assert "c1" not in logind.terminated()
    assert d.stop() == 0
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT uid, detection, level FROM detections").fetchall() == detections
    finally:
        con.close()

    # The documented recovery: move the file aside with its companions, start again.
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.rename(db + suffix, db + ".corrupt" + suffix)
    # The new database has no stream id: the daemon sets up a stream again, and what was
    # pending on the old one stays there (ssf-sessiond(8): levels come back with new events).
    old = {st["stream_id"] for st in transmitter.streams()}
    d.start()
    assert d.ctl("risk", "bob")["level"] == "none"
    new = wait_for(lambda: [st["stream_id"] for st in transmitter.streams()
                            if st["stream_id"] not in old], 20, "the daemon's new stream")
    again = transmitter.send_event("credential-compromise", email="carol@example.com",
                                   stream_id=new[0])
    transmitter.wait_acked(again, timeout=30)
    logind.wait_terminated("c1")
    assert d.ctl("risk", "carol")["level"] == "high"
    assert [e["jti"] for e in history(d)] == [again]
    assert d.stop() == 0
    assert integrity(db) == [("ok",)]
