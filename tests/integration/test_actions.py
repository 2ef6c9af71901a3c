# SPDX-License-Identifier: MIT
"""The actions' two lanes and the containment of hooks, with the real daemon: SETs signed by
the local transmitter and polled, logouts through the logind mock, hooks from the hooks dir.

* A slow hook never holds up a logout that is due (the logind lane runs beside the hook lane).
* An immediate logout goes to logind while its commit syncs; the SET is acknowledged and the
  result recorded only once the commit is durable (the state directory on a file system whose
  syncs the test holds back).
* Hooks of one user run one at a time, in commit order; other users' hooks go ahead meanwhile.
* A hook's descendants, even one that left its session with setsid(), do not survive its
  timeout: under the intermediate subreaper (the daemon run directly, as here), and in a cgroup
  of its own when the daemon runs in a delegated cgroup (one the test creates, marked as systemd
  marks a Delegate=yes unit's).
Ordering is asserted through what the hooks and the mock recorded, never through timing."""

import os
import subprocess

import pytest

import support
from support import wait_for

SLOW_RULES = """
[rule logout-high]
levels = high
action = logout

[rule slow-medium]
levels = medium
action = workflow
workflow = slow
"""


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def alive(pid):
    """Running (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def history(d, user):
    return d.ctl("history", user)["entries"]


def result_of(d, user, jti):
    for e in history(d, user):
        if e["jti"] == jti and e["result"] not in (None, "pending"):
            return e
    return None


def test_logout_does_not_wait_for_a_slow_hook(daemon_factory, transmitter, logind, users, tmp_path):
    started, finished, pidfile = tmp_path / "started", tmp_path / "finished", tmp_path / "hook.pid"
    d = daemon_factory(rules=SLOW_RULES, start=False,
                       section_opts={"hooks": {"timeout": "30s"}})
    d.add_hook("slow", f"#!/bin/sh\necho $$ > {pidfile}\ntouch {started}\nsleep 20\ntouch {finished}\n")
    d.start()
    transmitter.wait_stream()
    logind.add_session("a1", users.uid("alice"), "alice", remote=True, service="sshd")

    # Bob's medium risk starts the slow hook...
    j_bob = transmitter.send_event("credential-change", email="bob@example.com")
    transmitter.wait_acked(j_bob)
    wait_for(started.exists, 20, "the slow hook to start")
    hook_pid = int(read(pidfile))

    # ...and while it runs, alice's high risk logs her out.
    j_alice = transmitter.send_event("session-revoked", email="alice@example.com")
    transmitter.wait_acked(j_alice)
    logind.wait_terminated("a1")
    e = wait_for(lambda: result_of(d, "alice", j_alice), 20, "alice's logout result")
    assert e["action"] == "logout" and e["result"].startswith("ok"), e

    # The hook is still running: the logout did not wait for it.
    assert not finished.exists()
    assert alive(hook_pid)
    assert [x["result"] for x in history(d, "bob") if x["jti"] == j_bob] == ["pending"]
    assert d.stop() == 0
    assert not finished.exists()


@pytest.fixture
def held_sync_fs(tmp_path):
    """(mount point, hold, release): an ext4 file system whose syncs can be held back. Its image
    lies on a second ext4 file system, both loop-mounted: freezing the outer one (fsfreeze)
    leaves the inner one taking writes into its page cache (SQLite's BEGIN, its pages) but holds
    every write-back of it, so an fsync/fdatasync there waits until the outer one is thawed."""
    outer, inner = tmp_path / "outer", tmp_path / "inner"
    outer.mkdir()
    inner.mkdir()
    mounted, frozen = [], []

    def run(*cmd):
        cp = subprocess.run(cmd, capture_output=True, text=True)
        if cp.returncode != 0:
            pytest.fail(f"{' '.join(map(str, cmd))} failed (the integration tests run as root): "
                        f"{cp.stderr}")

    def make_fs(image, size, mnt):
        with open(image, "wb") as f:
            f.truncate(size)
        run("mkfs.ext4", "-q", "-F", str(image))
        run("mount", "-o", "loop", str(image), str(mnt))
        mounted.append(mnt)

    def hold():
        run("fsfreeze", "--freeze", str(outer))
        frozen.append(outer)

    def release():
        run("fsfreeze", "--unfreeze", str(outer))
        frozen.remove(outer)

    try:
        make_fs(tmp_path / "outer.img", 64 << 20, outer)
        make_fs(outer / "inner.img", 32 << 20, inner)
        state = inner / "state"
        state.mkdir(mode=0o700)
        yield str(state), hold, release
    finally:
        for m in frozen:
            subprocess.run(["fsfreeze", "--unfreeze", str(m)], capture_output=True)
        for m in reversed(mounted):
            # Lazily: on a failure the daemon may still have files open there.
            subprocess.run(["umount", "-l", str(m)], capture_output=True)


def test_logout_goes_out_while_its_commit_syncs(daemon_factory, transmitter, logind, users,
                                                held_sync_fs):
    state, hold, release = held_sync_fs
    d = daemon_factory(section_opts={"daemon": {"state_dir": state,
                                                "snapshot": os.path.join(state, "pam-snapshot")}})
    bob, carol = users.uid("bob"), users.uid("carol")
    logind.add_session("c1", carol, "carol")
    logind.add_session("b1", bob, "bob", remote=True, service="sshd")
    # A first logout with nothing held (the lane connects to the bus).
    j0 = transmitter.send_event("session-revoked", email="carol@example.com")
    transmitter.wait_acked(j0)
    logind.wait_terminated("c1")

    hold()
    j1 = transmitter.send_event("session-revoked", email="bob@example.com")
    # Bob's session ends while the commit of his SET cannot finish...
    logind.wait_terminated("b1")
    # ...which is not acknowledged before it has: root has not answered the worker.
    a = transmitter.acks()
    assert j1 not in a["acked"] and j1 not in a["set_errs"], a
    assert a["deliveries"].get(j1) == 1, a
    assert d.running()

    release()
    transmitter.wait_acked(j1)
    e = wait_for(lambda: result_of(d, "bob", j1), 20, "bob's logout result")
    assert e["action"] == "logout" and e["level_after"] == "high", e
    assert e["result"].startswith("ok: terminated 1 of 1 session: b1 (sshd"), e
    # Asked once: the result recorded is the one logind gave while the commit synced.
    assert logind.terminated().count("b1") == 1
    assert d.ctl("risk", "bob")["level"] == "high"
    assert d.stop() == 0


ORDER_HOOK = """#!/bin/sh
echo "start $SSF_USER $SSF_DETECTION" >> {log}
if [ "$SSF_USER" = alice ] && [ "$SSF_DETECTION" = credential-change ]; then
        while [ ! -e {gate} ]; do sleep 0.05; done
fi
echo "end $SSF_USER $SSF_DETECTION" >> {log}
"""


def test_hooks_of_one_user_run_in_order_others_go_ahead(daemon_factory, transmitter, users,
                                                         tmp_path):
    log, gate = tmp_path / "order.log", tmp_path / "gate"
    d = daemon_factory(rules=SLOW_RULES, start=False, section_opts={"hooks": {"timeout": "60s"}})
    d.add_hook("slow", ORDER_HOOK.format(log=log, gate=gate))
    d.start()
    transmitter.wait_stream()

    def lines():
        return read(log).splitlines()

    # alice's first hook waits at the gate; her second SET is committed after it.
    for event, email in (("credential-change", "alice@example.com"),
                         ("account-credential-change-required", "alice@example.com"),
                         ("credential-change", "bob@example.com")):
        transmitter.wait_acked(transmitter.send_event(event, email=email))
        if email.startswith("alice") and event == "credential-change":
            wait_for(lambda: "start alice credential-change" in lines(), 20, "alice's first hook")

    # Bob's hook ran to its end while alice's first still waits, and her second has not begun.
    wait_for(lambda: "end bob credential-change" in lines(), 20, "bob's hook to finish")
    assert [x for x in lines() if "alice" in x] == ["start alice credential-change"]

    gate.touch()
    wait_for(lambda: "end alice account-credential-change-required" in lines(), 20,
             "alice's second hook")
    assert [x for x in lines() if "alice" in x] == [
        "start alice credential-change", "end alice credential-change",
        "start alice account-credential-change-required",
        "end alice account-credential-change-required"]
    for user in ("alice", "bob"):
        for e in history(d, user):
            if e["action"] == "workflow":
                assert e["result"].startswith("ok: exit 0"), e


ESCAPE_HOOK = """#!/bin/sh
setsid -f sh -c 'echo $$ > {sleeper}; exec sleep 120' </dev/null >/dev/null 2>&1
while [ ! -s {sleeper} ]; do sleep 0.01; done
grep '^0::' /proc/self/cgroup
exec sleep 120
"""


def run_escaping_hook(d, transmitter, tmp_path):
    """Runs a hook whose descendant left its session, until the hook's 2 s timeout; returns
    (the history entry, the descendant's pid), once the action's result is recorded."""
    sleeper = tmp_path / "sleeper.pid"
    d.add_hook("slow", ESCAPE_HOOK.format(sleeper=sleeper))
    d.start()
    transmitter.wait_stream()
    jti = transmitter.send_event("credential-change", email="bob@example.com")
    transmitter.wait_acked(jti)
    wait_for(lambda: read(sleeper).strip(), 20, "the hook's descendant to start")
    pid = int(read(sleeper))
    e = wait_for(lambda: result_of(d, "bob", jti), 30, "the hook's result")
    assert e["result"].startswith("failed: timed out, killed by signal TERM"), e
    return e, pid


def test_hook_descendants_die_at_timeout_reaper(daemon_factory, transmitter, tmp_path):
    d = daemon_factory(rules=SLOW_RULES, start=False, section_opts={"hooks": {"timeout": "2s"}})
    e, pid = run_escaping_hook(d, transmitter, tmp_path)
    # The daemon was started directly in a cgroup not delegated to it: no hook cgroup.
    assert "/hook-" not in e["result"], e
    # Its intermediate reaper stopped and reaped it: not even a zombie is left.
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 10, f"descendant {pid} to be gone")


def own_cgroup():
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                path = line[3:].strip()
                break
        else:
            return None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.startswith("cgroup2 "):
                fields = left.split()
                root, mnt = fields[3], fields[4]
                if root == "/":
                    return mnt + ("" if path == "/" else path)
    return None


@pytest.fixture
def delegated_cgroup():
    """A cgroup under the test's own, marked delegated (trusted.delegate = 1, as systemd marks a
    Delegate=yes unit's); skips where this machine does not allow one."""
    if os.geteuid() != 0:
        pytest.skip("creating a cgroup needs root")
    base = own_cgroup()
    if not base:
        pytest.skip("no cgroup v2 here")
    cg = os.path.join(base, f"ssf-itest-{os.getpid()}")
    try:
        os.mkdir(cg)
    except OSError as e:
        pytest.skip(f"cannot create a cgroup in {base}: {e}")
    try:
        os.setxattr(cg, "trusted.delegate", b"1")
    except OSError as e:
        os.rmdir(cg)
        pytest.skip(f"no xattrs on cgroups here: {e}")
    yield cg
    for name in os.listdir(cg):
        if name.startswith("hook-"):
            try:
                os.rmdir(os.path.join(cg, name))
            except OSError:
                pass
    wait_for(lambda: not read(os.path.join(cg, "cgroup.procs")).strip(), 10,
             "the test cgroup to be empty")
    os.rmdir(cg)


def test_hook_descendants_die_at_timeout_cgroup(daemon_factory, transmitter, tmp_path,
                                                delegated_cgroup):
    d = daemon_factory(rules=SLOW_RULES, start=False, section_opts={"hooks": {"timeout": "2s"}})
    # The daemon starts inside the delegated cgroup.
    binary_command = d.command
    d.command = lambda *extra: ["/bin/sh", "-c",
                                f'echo $$ > {delegated_cgroup}/cgroup.procs && exec "$@"', "sh",
                                *binary_command(*extra)]
    e, pid = run_escaping_hook(d, transmitter, tmp_path)
    # The hook ran in a cgroup of its own, below the daemon's...
    rel = "/" + os.path.basename(delegated_cgroup) + "/hook-"
    assert rel in e["result"], e
    # ...the descendant is stopped (re-parented to init, which may leave it a zombie)...
    wait_for(lambda: not alive(pid), 10, f"descendant {pid} to be stopped")
    # ...and the hook's cgroup was removed.
    wait_for(lambda: not [n for n in os.listdir(delegated_cgroup) if n.startswith("hook-")], 10,
             "the hook's cgroup to be removed")
    assert d.stop() == 0


# C0 (ESC, BEL), DEL, C1 as UTF-8 (U+009B CSI, U+009D OSC), a bidi override (U+202E RLO) and
# invalid UTF-8 (a stray byte, an overlong '/'), on standard output and standard error.
HOSTILE_OUTPUT_HOOK = r"""#!/bin/sh
printf 'mark\033[2J\302\2331m\302\2350;t\007\177x\342\200\256gpj.exe\377\300\257end\n'
printf 'second\302\205line\n' >&2
"""
HOSTILE_CLEAN = "mark?[2J?1m?0;t??x?gpj.exe???end"
UNSAFE = [chr(c) for c in range(0x20) if c not in (0x09, 0x0a)] + \
         [chr(c) for c in range(0x7f, 0xa0)] + [chr(c) for c in range(0x202a, 0x202f)]


def test_hook_output_is_neutralised_in_history_and_journal(daemon_factory, transmitter):
    d = daemon_factory(rules=SLOW_RULES, start=False)
    d.add_hook("slow", HOSTILE_OUTPUT_HOOK)
    d.start()
    transmitter.wait_stream()
    jti = transmitter.send_event("credential-change", email="bob@example.com")
    transmitter.wait_acked(jti)
    e = wait_for(lambda: result_of(d, "bob", jti), 30, "the hook's result")

    # The history: the first line, each unsafe character one '?'.
    assert e["result"].startswith("ok: exit 0 in "), e
    assert e["result"].endswith(": " + HOSTILE_CLEAN), e
    assert not any(c in e["result"] for c in UNSAFE), e

    # The journal (the daemon's log here): the same line, valid UTF-8, nothing unsafe.
    with open(d.log_path, "rb") as f:
        raw = f.read()
    lines = [x for x in raw.split(b"\n") if b"mark" in x]
    assert lines, raw[-2000:]
    for x in lines:
        text = x.decode("utf-8")  # raises on invalid UTF-8
        assert HOSTILE_CLEAN in text, text
        assert not any(c in text for c in UNSAFE), text
