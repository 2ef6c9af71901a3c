# SPDX-License-Identifier: MIT
"""ssf-sessiond against hostile or careless local clients and at awkward moments: idle and
garbage IPC clients, oversize frames, questions from unprivileged users, many connections,
shutdown during a long poll or while a workflow hook runs, reload storms. The daemon must keep
answering PAM, leak no descriptors and stop cleanly."""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import pytest

from pam_support import (CTL_REPLY, CTL_REQUEST, PAM_QUERY, PAM_REPLY, TAG_ARGS, TAG_BODY, TAG_LEVEL,
                         TAG_MESSAGE, TAG_STATUS, TAG_USER, TAG_VERB, decode_frame, encode_frame,
                         pam_query)
import support
from support import wait_for

NOBODY = 65534
EPERM = 1

RULES = support.LOGOUT_HIGH_RULES

# A child running as another uid: connects, sends the frame given in hex, prints the reply
# in hex ("" when the daemon closed the connection without answering).
_CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(float(sys.argv[3]))
s.connect(sys.argv[1])
s.send(bytes.fromhex(sys.argv[2]))
try:
    print(s.recv(70000).hex())
except ConnectionResetError:
    print("")
"""


@pytest.fixture
def sockdir():
    """A socket directory everyone may traverse (tmp_path is private to root), so that
    clients running as nobody can reach the 0666 socket."""
    d = tempfile.mkdtemp(prefix="ssf-robust-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def start(daemon_factory, sockdir, **kw):
    path = os.path.join(sockdir, "socket")
    opts = kw.pop("section_opts", {})
    opts.setdefault("daemon", {})["socket"] = path
    d = daemon_factory(start=False, section_opts=opts, **kw)
    d.socket = path
    return d.start()


def connect(path, timeout=5):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(timeout)
    s.connect(path)
    return s


def exchange(path, frame, uid=None, timeout=5):
    """Sends one frame, returns the reply frame (b"" when closed without an answer)."""
    if uid is None:
        with connect(path, timeout) as s:
            s.send(frame)
            try:
                return s.recv(70000)
            except ConnectionResetError:
                return b""
    cp = subprocess.run([sys.executable, "-c", _CLIENT, path, frame.hex(), str(timeout)],
                        user=uid, group=uid, extra_groups=[], capture_output=True, text=True,
                        timeout=timeout + 10, cwd="/")
    assert cp.returncode == 0, cp.stderr
    return bytes.fromhex(cp.stdout.strip())


def pam_answer(path, user, uid=None):
    data = exchange(path, pam_query(user, service="ssf-test"), uid=uid)
    msg_type, tlvs = decode_frame(data)
    assert msg_type == PAM_REPLY
    status = struct.unpack(">i", tlvs[TAG_STATUS])[0]
    return status, tlvs[TAG_LEVEL][0], tlvs.get(TAG_MESSAGE, b"").decode()


def ctl(path, verb, args=None, uid=None):
    tlvs = [(TAG_VERB, verb.encode())]
    if args is not None:
        tlvs.append((TAG_ARGS, args.encode() if isinstance(args, str) else
                     json.dumps(args).encode()))
    data = exchange(path, encode_frame(CTL_REQUEST, tlvs), uid=uid)
    msg_type, tlvs = decode_frame(data)
    assert msg_type == CTL_REPLY
    return struct.unpack(">i", tlvs[TAG_STATUS])[0], tlvs


def fds(d):
    """The daemon's descriptors on its IPC socket: the listener and the accepted clients
    (those carry the listener's path in /proc/net/unix; curl's socketpairs do not)."""
    with open("/proc/net/unix") as f:
        inodes = {fields[6] for fields in (line.split() for line in list(f)[1:])
                  if len(fields) > 7 and fields[7] == d.socket}
    n = 0
    for fd in os.listdir(f"/proc/{d.proc.pid}/fd"):
        try:
            target = os.readlink(f"/proc/{d.proc.pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            n += 1
    return n


def assert_alive(d):
    assert d.running(), d.log()[-4000:]
    assert pam_answer(d.socket, "bob") == (0, 0, "")


def test_idle_client_does_not_block_and_is_dropped(daemon_factory, sockdir):
    d = start(daemon_factory, sockdir, rules=RULES)
    idle = connect(d.socket, timeout=15)
    # The daemon answers others meanwhile...
    assert pam_answer(d.socket, "alice") == (0, 0, "")
    # ...and hangs up on the silent one after its timeout (the socket's own 15 s timeout
    # would raise instead).
    assert idle.recv(100) == b""
    idle.close()
    assert d.stop(timeout=5) == 0


@pytest.mark.parametrize("frame", [
    b"",
    b"\0",
    b"garbage, not a frame at all",
    encode_frame(PAM_QUERY, [(TAG_USER, b"alice")], magic=0x41414141),
    encode_frame(PAM_QUERY, [(TAG_USER, b"alice")], version=9),
    encode_frame(PAM_QUERY, [(TAG_USER, b"alice")], length=4000),
    encode_frame(PAM_QUERY, [(TAG_USER, b"alice"), (TAG_USER, b"bob")]),
    encode_frame(PAM_QUERY, []),
    encode_frame(PAM_QUERY, [(TAG_USER, b"alice")])[:-2],
    encode_frame(PAM_QUERY, [(TAG_USER, b"al\0ce")]),
    encode_frame(CTL_REQUEST, []),
    encode_frame(PAM_REPLY, [(TAG_STATUS, b"\0\0\0\0"), (TAG_LEVEL, b"\3")]),
    encode_frame(77, [(TAG_USER, b"alice")]),
    encode_frame(PAM_QUERY, [(TAG_USER, b"a" * 60000)]),
    b"\xff" * (70 * 1024),  # larger than the largest frame
], ids=["empty", "nul", "text", "magic", "version", "length", "duplicate-tag", "no-user",
        "truncated", "nul-in-user", "no-verb", "reply-type", "unknown-type", "long-user",
        "oversize"])
def test_garbage_frames_are_dropped(daemon_factory, sockdir, frame):
    d = start(daemon_factory, sockdir, rules=RULES)
    before = fds(d)
    assert before >= 1  # the listener
    for _ in range(3):
        data = exchange(d.socket, frame)
        if data:  # an answer is fine as long as it is a well-formed error
            msg_type, tlvs = decode_frame(data)
            assert struct.unpack(">i", tlvs[TAG_STATUS])[0] < 0
    assert_alive(d)
    wait_for(lambda: fds(d) <= before, 10, "the dropped clients' descriptors to be closed")
    assert d.stop(timeout=5) == 0


def test_bad_ctl_requests(daemon_factory, sockdir):
    d = start(daemon_factory, sockdir, rules=RULES)
    for verb, args in (("risk", "[1, 2]"), ("risk", "{not json"), ("risk", {}),
                       ("risk", {"user": 42}), ("risk", {"user": "-rf"}), ("risk", {"user": "a/b"}),
                       ("history", {"limit": "x"}), ("history", {"limit": 0}),
                       ("set-risk", {"user": "bob", "level": "extreme"}),
                       ("set-risk", {"user": "bob", "level": "high", "reason": "x" * 300}),
                       ("verify", {"timeout_ms": 5}), ("explode", None)):
        status, _ = ctl(d.socket, verb, args)
        assert status < 0, (verb, args)
    # An empty verb is a malformed frame: dropped without an answer.
    assert exchange(d.socket, encode_frame(CTL_REQUEST, [(TAG_VERB, b"")])) == b""
    assert_alive(d)
    assert d.stop(timeout=5) == 0


def test_pam_query_for_unknown_user(daemon_factory, sockdir):
    d = start(daemon_factory, sockdir, rules=RULES)
    assert pam_answer(d.socket, "nosuchuser") == (0, 0, "")
    status, _ = ctl(d.socket, "risk", {"user": "nosuchuser"})
    assert status == 0
    assert d.stop(timeout=5) == 0


def test_unprivileged_client_may_only_ask_about_itself(daemon_factory, sockdir):
    d = start(daemon_factory, sockdir, rules=RULES)
    status, _ = ctl(d.socket, "set-risk", {"user": "alice", "level": "high"})
    assert status == 0
    # nobody asking about alice, about a user that does not exist, and about itself.
    status, level, _ = pam_answer(d.socket, "alice", uid=NOBODY)
    assert (status, level) == (-EPERM, 0)
    status, level, _ = pam_answer(d.socket, "nosuchuser", uid=NOBODY)
    assert status == -EPERM
    for verb, args in (("risk", {"user": "alice"}), ("history", {"user": "alice"}),
                       ("history", {}), ("status", None), ("users", None), ("metrics", None),
                       ("stream", None), ("verify", None), ("reset", {"user": "alice"}),
                       ("set-risk", {"user": "alice", "level": "none"})):
        status, tlvs = ctl(d.socket, verb, args, uid=NOBODY)
        assert status == -EPERM, (verb, tlvs)
    # Nothing changed for alice.
    assert pam_answer(d.socket, "alice")[1] == 3
    assert d.stop(timeout=5) == 0


def nss_gate_env(build_dir, gate):
    """nss_wrapper's files plus an NSS module whose lookup of the name slowpoke waits until the
    file gate exists (tests/helpers/nss/nss-gate.c): a slow user database on demand."""
    return {"NSS_WRAPPER_MODULE_SO_PATH": os.path.join(build_dir, "helpers", "libnss_ssfgate.so"),
            "NSS_WRAPPER_MODULE_FN_PREFIX": "ssfgate",
            "SSF_NSS_GATE_NAME": "slowpoke", "SSF_NSS_GATE_FILE": gate}


def test_slow_user_database_holds_up_only_its_own_query(daemon_factory, sockdir, users,
                                                        build_dir):
    """A PAM query whose account lookup waits on a slow user database (a directory server
    down) holds up its own answer only: the next logins are answered meanwhile, by the daemon
    (not the module's snapshot fallback). An unprivileged caller cannot start such a lookup:
    it may only name its own account, which is looked up by its uid."""
    gate = os.path.join(sockdir, "nss-gate")
    d = start(daemon_factory, sockdir, rules=RULES, env=nss_gate_env(build_dir, gate))
    assert ctl(d.socket, "set-risk", {"user": "alice", "level": "high"})[0] == 0
    alice = users.uid("alice")
    assert pam_answer(d.socket, "slowpoke", uid=alice)[0] == -EPERM
    assert pam_answer(d.socket, "bob", uid=alice)[0] == -EPERM
    assert pam_answer(d.socket, "alice", uid=alice)[:2] == (0, 3)
    assert not os.path.exists(gate + ".waiting"), "an unprivileged caller's name was looked up"

    # Root (sshd) asks about slowpoke: the daemon's lookup waits in the user database ...
    slow = connect(d.socket, timeout=90)
    slow.send(pam_query("slowpoke", service="ssf-test"))
    wait_for(lambda: os.path.exists(gate + ".waiting"), 20, "the daemon's lookup of slowpoke")
    # ... and the logins after it are answered, more of them than there are front threads.
    for _ in range(8):
        assert pam_answer(d.socket, "bob")[:2] == (0, 0)
        assert pam_answer(d.socket, "alice")[:2] == (0, 3)
    slow.setblocking(False)
    with pytest.raises(BlockingIOError):
        slow.recv(70000)
    # The directory answers (no such user): so does the daemon.
    open(gate, "w").close()
    slow.settimeout(30)
    msg_type, tlvs = decode_frame(slow.recv(70000))
    slow.close()
    assert msg_type == PAM_REPLY
    assert (struct.unpack(">i", tlvs[TAG_STATUS])[0], tlvs[TAG_LEVEL][0]) == (0, 0)
    assert_alive(d)
    assert d.stop(timeout=5) == 0


def test_many_idle_unprivileged_clients_do_not_lock_out_pam(daemon_factory, sockdir):
    d = start(daemon_factory, sockdir, rules=RULES)
    before = fds(d)
    # nobody opens as many connections as it can and sends nothing.
    hog = subprocess.Popen([sys.executable, "-c", r"""
import socket, sys, time
conns = []
for i in range(200):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.connect(sys.argv[1])
    except OSError:
        break
    conns.append(s)
print(len(conns), flush=True)
time.sleep(30)
""", d.socket], user=NOBODY, group=NOBODY, extra_groups=[], stdout=subprocess.PIPE, text=True,
        cwd="/")
    try:
        assert int(hog.stdout.readline()) > 0
        # The daemon keeps only a bounded number of them (those over the limit are accepted
        # and closed at once, so a sample may catch one in flight: wait until it settles).
        wait_for(lambda: before < fds(d) <= before + 16, 10,
                 "the daemon to hold at most 16 of nobody's connections")
        # root (sshd, login) still gets answers while the hog holds its connections.
        for _ in range(5):
            assert pam_answer(d.socket, "bob") == (0, 0, "")
    finally:
        hog.kill()
        hog.wait()
    wait_for(lambda: fds(d) <= before, 15, "the hog's descriptors to be closed")
    assert d.stop(timeout=5) == 0


def test_client_leaving_during_verify_is_freed(daemon_factory, sockdir, transmitter):
    d = start(daemon_factory, sockdir, rules=RULES)
    transmitter.wait_stream()
    wait_for(lambda: ctl(d.socket, "status")[0] == 0 and
             json.loads(ctl(d.socket, "status")[1][TAG_BODY])["stream"]["stream_id"], 20,
             "the daemon to know its stream")
    before = fds(d)
    for _ in range(5):
        s = connect(d.socket)
        s.send(encode_frame(CTL_REQUEST, [(TAG_VERB, b"verify"),
                                          (TAG_ARGS, b'{"timeout_ms": 60000}')]))
        s.close()
    wait_for(lambda: fds(d) <= before, 10, "the verify clients' descriptors to be closed")
    assert_alive(d)
    assert d.stop(timeout=5) == 0


def test_sigterm_during_long_poll_exits_quickly(daemon_factory, transmitter):
    d = daemon_factory(rules=RULES, transmitter_opts={"poll_wait": "60s"})
    transmitter.wait_polls(1)
    time.sleep(0.5)  # inside the long poll
    # d.stop() fails unless the daemon exits 0 within 5 s of SIGTERM.
    assert d.stop(timeout=5) == 0


def test_sigterm_while_a_hook_runs_exits_zero(daemon_factory, transmitter, users, tmp_path):
    marker = tmp_path / "hook-started"
    pidfile = tmp_path / "hook-pid"
    runs = tmp_path / "hook-runs"
    d = daemon_factory(rules="""
[rule notify-medium]
levels = medium
action = workflow
workflow = slow
""", section_opts={"hooks": {"timeout": "60s"}})
    d.add_hook("slow", f"#!/bin/sh\necho $$ > {pidfile}\ntouch {marker}\nexec sleep 30\n")
    jti = transmitter.send_event("credential-change", email="alice@example.com",
                                 payload={"credential_type": "password", "change_type": "update"})
    transmitter.wait_acked(jti)
    wait_for(marker.exists, 20, "the hook to start")
    pid = int(pidfile.read_text())
    # d.stop() fails unless the daemon exits 0 within 5 s of SIGTERM.
    assert d.stop(timeout=5) == 0
    # The hook did not outlive the daemon...
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 10, f"hook process {pid} to be gone")
    # ...and its interrupted action runs again, once and whole, at the next start.
    d.add_hook("slow", f"#!/bin/sh\necho run >> {runs}\n")
    d.start()
    wait_for(runs.exists, 20, "the pending workflow to run after the restart")

    def done():
        e = d.ctl("history", "alice")["entries"]
        return e and e[0]["result"] != "pending" and e
    e = wait_for(done, 20, "the workflow result")[0]
    assert e["result"].startswith("ok"), e
    assert runs.read_text() == "run\n"


def test_reload_storm_keeps_answering(daemon_factory, transmitter, sockdir):
    d = start(daemon_factory, sockdir, rules=RULES)
    transmitter.wait_polls(1)
    token = transmitter.token_file
    for i in range(20):
        if i % 5 == 4:
            # The token file moves: a transmitter setting changed, the poll thread sets up
            # again while requests may be running.
            moved = os.path.join(os.path.dirname(token), f"token{i}")
            shutil.copy(token, moved)
            os.chmod(moved, 0o600)
            d.write_config(d.config_text.replace(token, moved))
            token = moved
        d.signal(signal.SIGHUP)
        assert pam_answer(d.socket, "bob") == (0, 0, "")
    n = transmitter.acks()["polls"]
    transmitter.wait_polls(n + 1)
    assert_alive(d)
    assert d.stop(timeout=5) == 0


def test_reload_lets_the_worker_exit_by_itself(daemon_factory, transmitter):
    d = daemon_factory(rules=RULES)
    transmitter.wait_polls(1)
    d.signal(signal.SIGHUP)
    n = transmitter.acks()["polls"]
    transmitter.wait_polls(n + 1)
    assert d.stop(timeout=5) == 0
    assert "killed by signal" not in d.log()


def test_concurrent_verify_supersedes_the_older_request(daemon_factory, sockdir, transmitter):
    d = start(daemon_factory, sockdir, rules=RULES)
    wait_for(lambda: d.ctl("status")["stream"]["stream_id"], 20, "the daemon to know its stream")
    # Hold verification events at the transmitter so that the first request is still
    # unanswered when the second one reaches it, whatever the machine's speed.
    transmitter.configure(verification_delay=2.0)
    request = encode_frame(CTL_REQUEST, [(TAG_VERB, b"verify"),
                                         (TAG_ARGS, b'{"timeout_ms": 30000}')])
    sent = len(transmitter.acks()["sent"])
    first = connect(d.socket, timeout=15)
    first.send(request)
    wait_for(lambda: len(transmitter.acks()["sent"]) == sent + 1, 10,
             "the transmitter to queue the first verification event")
    second = connect(d.socket, timeout=15)
    second.send(request)

    def body(sock):
        msg_type, tlvs = decode_frame(sock.recv(70000))
        assert msg_type == CTL_REPLY and struct.unpack(">i", tlvs[TAG_STATUS])[0] == 0
        return json.loads(tlvs[TAG_BODY])
    old, new = body(first), body(second)
    assert old["received"] is False and "superseded" in old["result"], old
    assert new["received"] is True, new
    first.close()
    second.close()
    assert d.stop(timeout=5) == 0
