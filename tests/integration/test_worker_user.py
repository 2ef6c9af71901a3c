# SPDX-License-Identifier: MIT
"""The network worker's account: without the ssf-sessiond user (or when it is nobody in
disguise) the root daemon refuses to start and says how to create it, and the worker refuses
to run; there is no fallback to `nobody`. Users come from nss_wrapper passwd files."""

import os
import socket
import subprocess

import pytest

import support

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the account is checked only as root")


def users_without_worker(tmp_path, name="nss-no-worker", worker=None):
    """nss_wrapper users: the default ones without ssf-sessiond (or with `worker` instead)."""
    users = [u for u in support.DEFAULT_USERS if u[0] != "ssf-sessiond"]
    groups = [g for g in support.DEFAULT_GROUPS if g[0] != "ssf-sessiond"]
    if worker:
        users.append(worker)
    return support.NssUsers(str(tmp_path / name), users=users, groups=groups).write()


def start_and_wait_exit(d, timeout=20):
    d.start(wait_socket=False)
    try:
        rc = d.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        d.kill()
        raise AssertionError(f"ssf-sessiond kept running without its user; log:\n{d.log()}")
    d.stop()
    return rc


def test_daemon_refuses_to_start_without_its_user(daemon_factory, tmp_path, transmitter):
    nss = users_without_worker(tmp_path)
    d = daemon_factory(start=False, env=nss.env(), rules=support.LOGOUT_HIGH_RULES)
    assert start_and_wait_exit(d) == 1
    log = d.log()
    assert "User 'ssf-sessiond' does not exist" in log, log
    assert "systemd-sysusers" in log and "useradd --system" in log, log
    assert "Refusing to start without the network worker's user 'ssf-sessiond'" in log, log
    # It stopped before it started anything: no worker, no socket, not a single poll.
    assert "Started network worker" not in log
    assert not os.path.exists(d.socket)
    assert transmitter.streams() == []

    # --check-config says so as well.
    cp = d.check_config()
    assert cp.returncode == 1
    assert "User 'ssf-sessiond' does not exist" in cp.stderr, cp.stderr
    assert "configuration is valid, but user 'ssf-sessiond' is missing" in cp.stderr, cp.stderr


def test_daemon_refuses_a_worker_user_that_is_nobody(daemon_factory, tmp_path):
    # An ssf-sessiond entry that is `nobody` under another name (its uid 65534) is no
    # dedicated account.
    nss = users_without_worker(tmp_path, "nss-alias", worker=(
        "ssf-sessiond", 65534, 65534, "alias", "/nonexistent", "/usr/sbin/nologin"))
    d = daemon_factory(start=False, env=nss.env(), rules=support.LOGOUT_HIGH_RULES)
    assert start_and_wait_exit(d) == 1
    assert "User 'ssf-sessiond' is root or shares its uid with 'nobody'" in d.log(), d.log()
    assert "Started network worker" not in d.log()


def test_worker_refuses_to_run_without_its_user(build_dir, tmp_path, transmitter):
    """The worker checks on its own (the user may vanish between the daemon's check and the
    worker's start): run as root with its channel on fd 3, it exits before any network I/O."""
    nss = users_without_worker(tmp_path)
    dirs = {"state_dir": str(tmp_path / "state"), "socket": str(tmp_path / "socket"),
            "snapshot": str(tmp_path / "snapshot"), "hooks_dir": str(tmp_path / "hooks")}
    config = tmp_path / "ssf-sessiond.conf"
    config.write_text(support.daemon_config_text(transmitter, dirs,
                                                 rules=support.LOGOUT_HIGH_RULES))
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSS_WRAPPER")}
    env.update(nss.env())
    try:
        cp = subprocess.run([os.path.join(build_dir, "ssf-sessiond"), "--network-worker",
                             "--config", str(config), "--foreground"],
                            env=env, capture_output=True, text=True, timeout=30,
                            pass_fds=(theirs.fileno(), 3),
                            preexec_fn=lambda: os.dup2(theirs.fileno(), 3))
    finally:
        theirs.close()
        ours.close()
    assert cp.returncode == 1, cp.stderr
    assert "User 'ssf-sessiond' does not exist" in cp.stderr, cp.stderr
    assert "Refusing to talk to the network as root" in cp.stderr, cp.stderr
    assert transmitter.streams() == []


# Starts ssf-sessiond under a filter that refuses the seccomp() system call with EPERM, as
# systemd's SystemCallFilter=@system-service does: the worker cannot apply its own filter.
NO_SECCOMP_WRAPPER = r'''#!/usr/bin/python3
import ctypes, os, sys
lib = ctypes.CDLL("libseccomp.so.2")
lib.seccomp_init.restype = ctypes.c_void_p
ctx = lib.seccomp_init(ctypes.c_uint32(0x7fff0000))  # SCMP_ACT_ALLOW
nr = lib.seccomp_syscall_resolve_name(b"seccomp")
assert ctx and nr >= 0
assert lib.seccomp_rule_add(ctypes.c_void_p(ctx), ctypes.c_uint32(0x00050000 | 1), nr, 0) == 0
assert lib.seccomp_load(ctypes.c_void_p(ctx)) == 0
os.execv(sys.argv[1], sys.argv[1:])
'''


def test_worker_refuses_to_run_without_its_filter(daemon_factory, transmitter, tmp_path):
    d = daemon_factory(start=False, rules=support.LOGOUT_HIGH_RULES)
    wrapper = tmp_path / "no-seccomp"
    wrapper.write_text(NO_SECCOMP_WRAPPER)
    wrapper.chmod(0o755)
    real = d.binary
    d.command = lambda *extra: [str(wrapper), real, "--config", d.config_path, *extra]
    d.start()
    support.wait_for(lambda: d.log().count("refusing to run without the worker's filter") >= 2,
                     20, "the worker to refuse twice (restarted with backoff)")
    log = d.log()
    assert "seccomp() system call is not available" in log
    assert "SystemCallFilter=seccomp" in log
    assert "exited with status 1" in log
    # It never talked to the network; root is still up and answers.
    assert transmitter.streams() == []
    assert d.ctl("risk", "alice")["level"] == "none"
