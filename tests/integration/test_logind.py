# SPDX-License-Identifier: MIT
"""logind.c against a real D-Bus: a private dbus-daemon with python-dbusmock's logind template.

Each case starts a fresh mock, populates the sessions tests/unit/test-logind.c expects, runs
that one cmocka test (SSF_TEST_LOGIND_CASE) with the bus in DBUS_SYSTEM_BUS_ADDRESS, and then
checks which TerminateSession calls the mock recorded.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

import dbus
import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SSF_BUILD", os.path.join(TOP, "build"))
TEST_BIN = os.path.join(BUILD, "tests", "test-logind")

LOGIND = "org.freedesktop.login1"
MANAGER_PATH = "/org/freedesktop/login1"
MANAGER_IFACE = "org.freedesktop.login1.Manager"
SESSION_IFACE = "org.freedesktop.login1.Session"
MOCK_IFACE = "org.freedesktop.DBus.Mock"

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={sock}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""

# TerminateSession as logind does it: the session disappears. Session 12 cannot be
# terminated (polkit said no); session 14 ended on its own just before the call.
TERMINATE_CODE = """
if args[0] == '12':
    raise dbus.exceptions.DBusException('Access denied', name='org.freedesktop.DBus.Error.AccessDenied')
if args[0] == '14':
    raise dbus.exceptions.DBusException('No session 14', name='org.freedesktop.login1.NoSuchSession')
self.RemoveObject('/org/freedesktop/login1/session/' + args[0])
"""


def wait_for(pred, what, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def bus():
    if not os.access(TEST_BIN, os.X_OK):
        pytest.fail(f"{TEST_BIN} is not built (make tests)")
    d = tempfile.mkdtemp(prefix="ssf-logind-")
    sock = os.path.join(d, "bus.sock")
    conf = os.path.join(d, "bus.conf")
    with open(conf, "w") as f:
        f.write(BUS_CONF.format(sock=sock))
    daemon = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--nofork", "--print-address"],
                              stdout=subprocess.PIPE, text=True)
    address = daemon.stdout.readline().strip()
    assert address.startswith("unix:"), address
    try:
        yield {"address": address, "dir": d}
    finally:
        daemon.terminate()
        daemon.wait(10)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def logind(bus):
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus["address"])
    log = os.path.join(bus["dir"], "mock.log")
    mock = subprocess.Popen(["/usr/bin/python3", "-m", "dbusmock", "--system", "--template", "logind",
                             "-l", log], env=env, stdout=subprocess.DEVNULL)
    conn = dbus.bus.BusConnection(bus["address"])
    try:
        wait_for(lambda: conn.name_has_owner(LOGIND) or mock.poll() is not None, "the logind mock")
        assert mock.poll() is None, "dbusmock exited"
        manager = conn.get_object(LOGIND, MANAGER_PATH)
        m = dbus.Interface(manager, MOCK_IFACE)
        populate(conn, m)
        m.ClearCalls()
        yield {"conn": conn, "mock": m, "address": bus["address"], "log": log}
    finally:
        mock.send_signal(signal.SIGTERM)
        try:
            mock.wait(10)
        except subprocess.TimeoutExpired:
            mock.kill()
            mock.wait()
        conn.close()


def add_session(conn, m, sid, uid, user, **props):
    path = m.AddSession(sid, "seat0", dbus.UInt32(uid), user, True)
    s = dbus.Interface(conn.get_object(LOGIND, path), MOCK_IFACE)
    s.UpdateProperties(SESSION_IFACE, props)
    return path


def populate(conn, m):
    add_session(conn, m, "3", 2001, "alice", Remote=True, RemoteHost="10.0.0.1", Service="sshd",
                Type="tty", TTY="pts/0", Class="user")
    add_session(conn, m, "5", 2001, "alice", Remote=False, RemoteHost="", Service="su-l",
                Type="tty", TTY="pts/1", Class="user")
    add_session(conn, m, "7", 2002, "bob", Remote=True, RemoteHost="10.0.0.2", Service="sshd",
                Type="tty", TTY="pts/2", Class="user")
    # A session exposing only what ListSessions needs: every other property is missing.
    m.AddObject("/org/freedesktop/login1/session/9", SESSION_IFACE, {
        "Id": "9",
        "Name": "carol",
        "User": (dbus.UInt32(2003), dbus.ObjectPath("/org/freedesktop/login1/user/2003")),
        "Seat": ("", dbus.ObjectPath("/")),
    }, dbus.Array([], signature="(ssss)"))
    add_session(conn, m, "11", 2004, "dave", Remote=True, RemoteHost="10.0.0.4", Service="sshd",
                Type="tty", TTY="pts/3", Class="user")
    add_session(conn, m, "12", 2004, "dave", Remote=False, RemoteHost="", Service="su-l",
                Type="tty", TTY="pts/4", Class="user")
    add_session(conn, m, "14", 2006, "erin", Remote=True, RemoteHost="10.0.0.6", Service="sshd",
                Type="tty", TTY="pts/5", Class="user")
    m.AddMethod(MANAGER_IFACE, "TerminateSession", "s", "", TERMINATE_CODE)


def terminated(m):
    return sorted((str(args[0]) for _, args in m.GetMethodCalls("TerminateSession")), key=int)


def run_case(logind, case):
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=logind["address"], SSF_TEST_LOGIND_BUS="1",
               SSF_TEST_LOGIND_CASE=case)
    p = subprocess.run([TEST_BIN], env=env, capture_output=True, text=True, timeout=120)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    # The case really ran against the bus: not skipped, not filtered away.
    assert f"[       OK ] {case}" in out, out
    assert "SKIPPED" not in out, out
    return out


def test_list(logind):
    run_case(logind, "test_list")
    assert terminated(logind["mock"]) == []


def test_missing_properties(logind):
    run_case(logind, "test_missing_properties")
    assert terminated(logind["mock"]) == ["9"]


def test_logout_all(logind):
    out = run_case(logind, "test_logout_all")
    assert terminated(logind["mock"]) == ["3", "5"]
    assert "terminated 2 of 2 sessions" in out


def test_logout_remote(logind):
    run_case(logind, "test_logout_remote")
    assert terminated(logind["mock"]) == ["3"]


def test_logout_local(logind):
    run_case(logind, "test_logout_local")
    assert terminated(logind["mock"]) == ["5"]


def test_logout_graphical(logind):
    run_case(logind, "test_logout_graphical")
    assert terminated(logind["mock"]) == []


def test_logout_nobody(logind):
    run_case(logind, "test_logout_nobody")
    assert terminated(logind["mock"]) == []


def test_logout_partial_failure(logind):
    run_case(logind, "test_logout_partial_failure")
    # Both were attempted; 12 failed and is still there.
    assert terminated(logind["mock"]) == ["11", "12"]
    conn = logind["conn"]
    sessions = dbus.Interface(conn.get_object(LOGIND, MANAGER_PATH), MANAGER_IFACE).ListSessions()
    assert sorted(str(s[0]) for s in sessions if int(s[1]) == 2004) == ["12"]


def test_logout_already_gone(logind):
    run_case(logind, "test_logout_already_gone")
    assert terminated(logind["mock"]) == ["14"]


def test_session_paths_from_logind(logind):
    # logind.c reads properties at the object paths ListSessions returned.
    run_case(logind, "test_list")
    with open(logind["log"]) as f:
        log = f.read()
    assert "GetAll /org/freedesktop/login1/session/3 org.freedesktop.login1.Session" in log
    assert "GetAll /org/freedesktop/login1/session/5 org.freedesktop.login1.Session" in log
