# SPDX-License-Identifier: MIT
"""Helpers shared by the integration tests (through conftest.py) and the demo script.

Every helper starts real processes (the local SSF transmitter, a private dbus-daemon,
the python-dbusmock logind mock, ssf-sessiond) and knows how to stop them. Nothing here
writes outside the directories it is given, and every wait is bounded and fails with a
message that says what was being waited for.
"""

import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRANSMITTER_SCRIPT = os.path.join(REPO, "tests", "transmitter", "ssf_transmitter.py")
PYTHON = "/usr/bin/python3"

if os.path.join(REPO, "tests", "transmitter") not in sys.path:
    sys.path.insert(0, os.path.join(REPO, "tests", "transmitter"))


class WaitTimeout(AssertionError):
    pass


def wait_for(predicate, timeout, what, interval=0.05):
    """Poll predicate() until it returns a truthy value (returned) or timeout seconds pass.
    An AssertionError from predicate() ends the wait at once (a definite failure); other
    exceptions (connection refused while a server starts, ...) are retried."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = predicate()
            if v:
                return v
        except AssertionError:
            raise
        except Exception as e:  # keep waiting; report the last error on timeout
            last_exc = e
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_exc!r})" if last_exc else ""
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}{extra}")
        time.sleep(interval)


def stop_process(proc, timeout=10, sig=signal.SIGTERM):
    """Send sig to proc, wait up to timeout, SIGKILL if needed. Returns the exit code."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def read_text(path, limit=200000):
    try:
        with open(path, "r", errors="replace") as f:
            data = f.read()
        return data[-limit:]
    except OSError:
        return ""


# ----------------------------------------------------------------------------- ports, TLS

def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A TCP port on 127.0.0.1 that nothing is bound to now, for a listener the daemon binds
    itself later. Chosen at random below the kernel's ephemeral range, so that a port-0 bind
    elsewhere (a transmitter's listener, an outgoing connection, a test run in parallel)
    cannot be handed the same port in between; the bind here checks it is free."""
    lo, hi = _ephemeral_range()
    low, high = (10000, lo) if lo > 12000 else (hi + 1, 65536)
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randrange(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free TCP port on 127.0.0.1 in {low}-{high - 1}")


def push_tls(directory):
    """A CA and a server certificate for 127.0.0.1/localhost (a push listener's) under
    `directory` (created); the key is mode 0600 as the daemon requires. -> (ca, cert, key)."""
    from ssf_transmitter import make_tls_files
    directory = str(directory)
    os.makedirs(directory)
    ca, cert, key = make_tls_files(directory, hosts=("localhost",), ips=("127.0.0.1",))
    os.chmod(key, 0o600)
    return ca, cert, key


# ----------------------------------------------------------------------------- transmitter

class TransmitterProcess:
    """The local SSF transmitter (tests/transmitter/ssf_transmitter.py) as a subprocess."""

    def __init__(self, state_dir, issuer_path="", alg="RS256", token=None,
                 audience="https://host1.example.com/ssf", long_poll_max=10,
                 redelivery_delay=2, extra_args=(), log_path=None):
        self.state_dir = os.path.abspath(state_dir)
        self.log_path = log_path or os.path.join(self.state_dir + "-transmitter.log")
        self.args = [PYTHON, TRANSMITTER_SCRIPT, "--listen", "127.0.0.1:0",
                     "--state-dir", self.state_dir, "--alg", alg, "--audience", audience,
                     "--long-poll-max", str(long_poll_max),
                     "--redelivery-delay", str(redelivery_delay)]
        if issuer_path:
            self.args += ["--issuer-path", issuer_path]
        if token:
            self.args += ["--token", token]
        self.args += list(extra_args)
        self.proc = None
        self._ctx = None

    def start(self, timeout=30):
        os.makedirs(self.state_dir, exist_ok=True)
        ready_file = os.path.join(self.state_dir, "ready.json")
        if os.path.exists(ready_file):
            os.unlink(ready_file)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, close_fds=True)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"transmitter exited with {self.proc.returncode}:\n"
                                     + read_text(self.log_path))
            return os.path.exists(ready_file)
        try:
            wait_for(ready, timeout, "the transmitter's ready.json")
        except AssertionError:
            self.stop()
            raise
        with open(ready_file) as f:
            info = json.load(f)
        self.info = info
        self.issuer = info["issuer"]
        self.port = info["port"]
        self.origin = info["origin"]
        self.ca_file = info["ca_file"]
        self.token_file = info["token_file"]
        self.control_url = info["control_url"]
        self.audience = info["audience"]
        with open(self.token_file) as f:
            self.token = f.read().strip()
        # The OAuth 2.0 token endpoint (client credentials, client_secret_basic).
        with open(os.path.join(self.state_dir, "oauth2.json")) as f:
            self.oauth2 = json.load(f)
        self.oauth2_token_url = self.oauth2["token_url"]
        self.oauth2_client_id = self.oauth2["client_id"]
        self.oauth2_client_secret_file = self.oauth2["client_secret_file"]
        return self

    def stop(self):
        rc = stop_process(self.proc)
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None
        return rc

    def log(self):
        return read_text(self.log_path)

    # -- HTTP ---------------------------------------------------------------------------------
    def ssl_context(self):
        if self._ctx is None:
            self._ctx = ssl.create_default_context(cafile=self.ca_file)
        return self._ctx

    def request(self, method, path, body=None, auth=True, timeout=40, headers=None, raw=None):
        """HTTP request to the transmitter. Returns (status, headers, parsed JSON or None)."""
        url = path if path.startswith("https://") else self.origin + path
        hdrs = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if auth:
            hdrs.setdefault("Authorization", "Bearer " + self.token)
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ssl_context()) as r:
                status, rh, payload = r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            status, rh, payload = e.code, dict(e.headers), e.read()
        parsed = None
        if payload:
            try:
                parsed = json.loads(payload)
            except ValueError:
                parsed = payload.decode("utf-8", "replace")
        return status, rh, parsed

    def control(self, method, what, body=None):
        status, _, out = self.request(method, "/control/" + what, body)
        if status != 200:
            raise AssertionError(f"control {what} failed: {status} {out}")
        return out

    # -- control API --------------------------------------------------------------------------
    def send_event_full(self, event, email=None, subject=None, payload=None, claims=None,
                        tamper=None, sign_alg=None, header=None, stream_id=None, force=False,
                        wait_stream=20):
        """Emit one SET; returns the control response {"jti","token","claims","streams"}.
        Waits (bounded) until a stream exists, and fails if the SET was queued nowhere."""
        if wait_stream:
            self.wait_stream(timeout=wait_stream)
        body = {"event": event}
        for k, v in (("email", email), ("subject", subject), ("payload", payload),
                     ("claims", claims), ("tamper", tamper), ("sign_alg", sign_alg),
                     ("header", header), ("stream_id", stream_id)):
            if v is not None:
                body[k] = v
        if force:
            body["force"] = True
        out = self.control("POST", "events", body)
        if not out["streams"]:
            raise AssertionError(f"event {event} was queued on no stream "
                                 f"(not in any stream's events_delivered?): {self.streams()}")
        return out

    def send_event(self, event, email=None, subject=None, payload=None, claims=None,
                   tamper=None, **kw):
        return self.send_event_full(event, email=email, subject=subject, payload=payload,
                                    claims=claims, tamper=tamper, **kw)["jti"]

    def send_raw(self, jti, token, stream_id=None):
        body = {"jti": jti, "token": token}
        if stream_id:
            body["stream_id"] = stream_id
        return self.control("POST", "raw", body)

    def acks(self):
        return self.control("GET", "acks")

    def ack_count(self):
        return self.control("GET", "ack-count")

    def streams(self):
        return self.control("GET", "streams")

    def jwks(self):
        return self.control("GET", "jwks")

    def reset(self, streams=False):
        return self.control("POST", "reset", {"streams": streams})

    def rotate_key(self, alg=None, keep_old=True):
        body = {"keep_old": keep_old}
        if alg:
            body["alg"] = alg
        return self.control("POST", "rotate-key", body)

    def configure(self, **kw):
        return self.control("POST", "config", kw)

    def oauth2_state(self):
        """The token endpoint's records: requests, issued tokens, counters, settings."""
        return self.control("GET", "oauth2")

    def oauth2_opts(self, secret_file=None, **extra):
        """transmitter_opts for a daemon with auth = oauth2 against this transmitter
        (token_file dropped)."""
        opts = {"auth": "oauth2", "token_file": None,
                "oauth2_token_url": self.oauth2_token_url,
                "oauth2_client_id": self.oauth2_client_id,
                "oauth2_client_secret_file": secret_file or self.oauth2_client_secret_file}
        opts.update(extra)
        return opts

    def set_stream_status(self, status, reason=None, stream_id=None, after_ack=False):
        """Transmitter-initiated status change (a stream-updated SET is queued first);
        after_ack: the status changes only once that SET was acknowledged."""
        body = {"status": status}
        if after_ack:
            body["after_ack"] = True
        if reason:
            body["reason"] = reason
        if stream_id:
            body["stream_id"] = stream_id
        return self.control("POST", "stream-status", body)

    def wait_stream(self, timeout=20):
        """Wait until at least one stream exists; returns the list of streams."""
        return wait_for(self.streams, timeout, "a stream to be created on the transmitter",
                        interval=0.1)

    def wait_acked(self, jti, timeout=20):
        def check():
            a = self.acks()
            if jti in a["set_errs"]:
                raise AssertionError(f"SET {jti} was reported as an error, not acknowledged: "
                                     f"{a['set_errs'][jti]}")
            return jti in a["acked"]
        try:
            wait_for(check, timeout, f"SET {jti} to be acknowledged", interval=0.1)
        except WaitTimeout as e:
            raise WaitTimeout(f"{e}; transmitter records: {self.acks()}") from None
        return True

    def wait_set_err(self, jti, timeout=20):
        def check():
            a = self.acks()
            if jti in a["acked"]:
                raise AssertionError(f"SET {jti} was acknowledged, expected a setErr")
            return a["set_errs"].get(jti)
        try:
            return wait_for(check, timeout, f"SET {jti} to be reported in setErrs", interval=0.1)
        except WaitTimeout as e:
            raise WaitTimeout(f"{e}; transmitter records: {self.acks()}") from None

    def wait_polls(self, n, timeout=20):
        return wait_for(lambda: self.acks()["polls"] >= n, timeout, f"{n} polls")


# ----------------------------------------------------------------------------- D-Bus

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <!-- a private system-like bus for tests: everyone may do everything -->
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


class SystemBus:
    """A private dbus-daemon standing in for the system bus."""

    def __init__(self, directory):
        self.dir = os.path.abspath(directory)
        self.socket = os.path.join(self.dir, "bus.sock")
        self.address = "unix:path=" + self.socket
        self.proc = None

    def start(self, timeout=15):
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(self.dir, "bus.conf")
        with open(conf, "w") as f:
            f.write(BUS_CONFIG.format(socket=self.socket))
        self.log_path = os.path.join(self.dir, "dbus-daemon.log")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--nofork",
                                      "--nopidfile"], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("dbus-daemon exited:\n" + read_text(self.log_path))
            # The socket file appears at bind(), before listen(): connect to know it listens.
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(self.socket)
            return True
        wait_for(up, timeout, "the test dbus-daemon socket")
        return self

    def env(self):
        return {"DBUS_SYSTEM_BUS_ADDRESS": self.address}

    def stop(self):
        rc = stop_process(self.proc)
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None
        return rc


LOGIN1 = "org.freedesktop.login1"
LOGIN1_PATH = "/org/freedesktop/login1"
MANAGER_IFACE = "org.freedesktop.login1.Manager"
SESSION_IFACE = "org.freedesktop.login1.Session"
MOCK_IFACE = "org.freedesktop.DBus.Mock"

# Python run inside the mock (dbusmock's exec: `self`, `args`, `objects`, `dbus` are in
# scope). No comprehensions over local names: exec with separate locals breaks them.
_REMOVE_SESSION = """
def _ssf_remove_session(manager, sid):
    path = '/org/freedesktop/login1/session/' + sid
    if path not in objects:
        raise dbus.exceptions.DBusException('No session ' + sid,
                                            name='org.freedesktop.login1.NoSuchSession')
    sess = objects[path]
    seat_path = sess.Get('org.freedesktop.login1.Session', 'Seat')[1]
    user_path = sess.Get('org.freedesktop.login1.Session', 'User')[1]
    for opath, iface in ((seat_path, 'org.freedesktop.login1.Seat'),
                         (user_path, 'org.freedesktop.login1.User')):
        if opath in objects:
            cur = objects[opath].Get(iface, 'Sessions')
            keep = dbus.Array([], signature='(so)')
            for s in cur:
                if str(s[0]) != sid:
                    keep.append(s)
            objects[opath].Set(iface, 'Sessions', keep)
    objects[path].remove_from_connection()
    del objects[path]
    manager.EmitSignal('org.freedesktop.login1.Manager', 'SessionRemoved', 'so',
                       [sid, dbus.ObjectPath(path)])
globals()['_ssf_remove_session'] = _ssf_remove_session
"""

_TERMINATE_SESSION = _REMOVE_SESSION + """
_ssf_remove_session(self, args[0])
"""


# dbusmock's own call log stamps calls to the second; this one keeps time.time() as the call
# arrives, to the microsecond, so that a benchmark can time signal to logout.
def _call_time(method):
    return f"""
import time as _ssf_time
globals().setdefault('_ssf_call_times', []).append(
    (_ssf_time.time(), '{method}', str(args[0]) if len(args) > 0 else ''))
"""


_CALL_TIMES = """
ret = dbus.Array(globals().get('_ssf_call_times', []), signature='(dss)')
"""

_SESSIONS_OF_UID = """
_ssf_victims = []
for _ssf_k in list(objects.keys()):
    if '/session/' in _ssf_k:
        if int(objects[_ssf_k].Get('org.freedesktop.login1.Session', 'User')[0]) == int(args[0]):
            _ssf_victims.append(_ssf_k.split('/')[-1])
for _ssf_sid in _ssf_victims:
    _ssf_remove_session(self, _ssf_sid)
"""

_ADD_SESSION = """
_ssf_path = self.AddSession(args[0], args[1], args[2], args[3], args[4])
objects[_ssf_path].UpdateProperties('org.freedesktop.login1.Session', args[5])
objects[_ssf_path].AddMethod('org.freedesktop.login1.Session', 'Terminate', '', '', args[6])
ret = _ssf_path
"""

_GET_SESSION = """
if '/org/freedesktop/login1/session/' + args[0] not in objects:
    raise dbus.exceptions.DBusException('No session ' + args[0],
                                        name='org.freedesktop.login1.NoSuchSession')
ret = dbus.ObjectPath('/org/freedesktop/login1/session/' + args[0])
"""

# LockSession: the session must exist; it stays (locking ends nothing), and the call is recorded.
_LOCK_SESSION = """
if '/org/freedesktop/login1/session/' + args[0] not in objects:
    raise dbus.exceptions.DBusException('No session ' + args[0],
                                        name='org.freedesktop.login1.NoSuchSession')
"""

_GET_SESSION_BY_PID = """
raise dbus.exceptions.DBusException('PID ' + str(args[0]) + ' does not belong to any session',
                                    name='org.freedesktop.login1.NoSessionForPID')
"""


class LogindMock:
    """python-dbusmock's logind template on a test bus, with the gaps filled: sessions
    are really removed by TerminateSession/TerminateUser/KillSession/KillUser/
    Session.Terminate (SessionRemoved is emitted), every call is recorded, and sessions
    carry settable Remote/Service/Type/RemoteHost/TTY/Class properties."""

    def __init__(self, bus, directory):
        self.bus_address = bus.address if hasattr(bus, "address") else bus
        self.dir = os.path.abspath(directory)
        self.proc = None
        self._conn = None

    def start(self, timeout=20):
        import dbus
        os.makedirs(self.dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, "logind-mock.log")
        self.out_path = os.path.join(self.dir, "logind-mock.out")
        env = dict(os.environ)
        env["DBUS_SYSTEM_BUS_ADDRESS"] = self.bus_address
        self._out = open(self.out_path, "ab")
        self.proc = subprocess.Popen([PYTHON, "-m", "dbusmock", "--system", "--template", "logind",
                                      "-l", self.log_path], env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=subprocess.STDOUT)
        self._conn = dbus.bus.BusConnection(self.bus_address)

        def owned():
            if self.proc.poll() is not None:
                raise AssertionError("logind mock exited:\n" + read_text(self.out_path))
            return self._conn.name_has_owner(LOGIN1)
        wait_for(owned, timeout, "the logind mock to own org.freedesktop.login1")
        mock = self.mock()
        mock.AddMethod(MANAGER_IFACE, "TerminateSession", "s", "",
                       _call_time("TerminateSession") + _TERMINATE_SESSION)
        mock.AddMethod(MANAGER_IFACE, "TerminateUser", "u", "",
                       _call_time("TerminateUser") + _REMOVE_SESSION + _SESSIONS_OF_UID)
        mock.AddMethod(MANAGER_IFACE, "KillSession", "ssi", "",
                       _call_time("KillSession") + _TERMINATE_SESSION)
        mock.AddMethod(MANAGER_IFACE, "KillUser", "ui", "",
                       _call_time("KillUser") + _REMOVE_SESSION + _SESSIONS_OF_UID)
        mock.AddMethod(MANAGER_IFACE, "GetSession", "s", "o", _GET_SESSION)
        mock.AddMethod(MANAGER_IFACE, "GetSessionByPID", "u", "o", _GET_SESSION_BY_PID)
        mock.AddMethod(MANAGER_IFACE, "LockSession", "s", "",
                       _call_time("LockSession") + _LOCK_SESSION)
        # Not logind's: the mock's own record of when each call above arrived.
        mock.AddMethod(MANAGER_IFACE, "SsfCallTimes", "", "a(dss)", _CALL_TIMES)
        # Not logind's: a session made whole (properties, Terminate) inside one call.
        mock.AddMethod(MANAGER_IFACE, "SsfAddSession", "ssusba{sv}s", "s", _ADD_SESSION)
        return self

    def stop(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None
        rc = stop_process(self.proc)
        if getattr(self, "_out", None):
            self._out.close()
            self._out = None
        return rc

    def env(self):
        return {"DBUS_SYSTEM_BUS_ADDRESS": self.bus_address}

    def _obj(self, path):
        return self._conn.get_object(LOGIN1, path, introspect=False)

    def mock(self, path=LOGIN1_PATH):
        import dbus
        return dbus.Interface(self._obj(path), MOCK_IFACE)

    def manager(self):
        import dbus
        return dbus.Interface(self._obj(LOGIN1_PATH), MANAGER_IFACE)

    def add_session(self, session_id, uid, user, remote=True, service="sshd", type="tty",
                    remote_host=None, tty=None, klass="user", seat="seat0", active=True,
                    leader=None):
        """Add a session; returns its object path."""
        import dbus
        session_id = str(session_id)
        props = {
            "Remote": dbus.Boolean(remote),
            "Service": service,
            "Type": type,
            "RemoteHost": remote_host if remote_host is not None else ("192.0.2.10" if remote else ""),
            "TTY": tty if tty is not None else ("pts/0" if remote else "tty1"),
            "Class": klass,
            "Leader": dbus.UInt32(leader if leader is not None else 1000 + len(self.sessions())),
        }
        # One call, so the session is never seen half made: a daemon that ends it between
        # creation and its Terminate method would otherwise race the test.
        path = str(self.manager().SsfAddSession(
            session_id, seat, dbus.UInt32(uid), user, dbus.Boolean(active),
            dbus.Dictionary(props, signature="sv"),
            _REMOVE_SESSION + "_ssf_remove_session(objects['" + LOGIN1_PATH + "'], '"
            + session_id + "')\n"))
        return path

    def set_session_properties(self, session_id, **props):
        import dbus
        self.mock(LOGIN1_PATH + "/session/" + str(session_id)).UpdateProperties(
            SESSION_IFACE, dbus.Dictionary(props, signature="sv"))

    def session_property(self, session_id, name):
        import dbus
        obj = self._obj(LOGIN1_PATH + "/session/" + str(session_id))
        return dbus.Interface(obj, "org.freedesktop.DBus.Properties").Get(SESSION_IFACE, name)

    def sessions(self):
        """[(session_id, uid, user)] as ListSessions reports them."""
        return [(str(s[0]), int(s[1]), str(s[2])) for s in self.manager().ListSessions()]

    def calls(self, method):
        """Arguments of each recorded call to a Manager method, oldest first."""
        return [[_plain(a) for a in c[1]] for c in self.mock().GetMethodCalls(method)]

    def call_times(self, method):
        """[(time.time() when the call arrived, first argument as a string)] of each call to a
        Manager method the daemon acts with (TerminateSession, TerminateUser, KillSession,
        KillUser, LockSession), oldest first: microsecond stamps, unlike calls()."""
        out = []
        for t, m, arg in self.manager().SsfCallTimes():
            if str(m) == method:
                out.append((float(t), str(arg)))
        return out

    def terminated(self):
        """Session ids TerminateSession was called with, oldest first."""
        return [c[0] for c in self.calls("TerminateSession")]

    def locked(self):
        """Session ids LockSession was called with, oldest first."""
        return [c[0] for c in self.calls("LockSession")]

    def clear_calls(self):
        self.mock().ClearCalls()

    def wait_terminated(self, session_id, timeout=20):
        return wait_for(lambda: str(session_id) in self.terminated(), timeout,
                        f"TerminateSession({session_id}) on the logind mock")


def _plain(v):
    """dbus-python values -> plain Python values."""
    import dbus
    if isinstance(v, (dbus.String, dbus.ObjectPath)):
        return str(v)
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, (dbus.Int16, dbus.Int32, dbus.Int64, dbus.UInt16, dbus.UInt32, dbus.UInt64,
                      dbus.Byte)):
        return int(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {_plain(k): _plain(x) for k, x in v.items()}
    return v


# ----------------------------------------------------------------------------- users

NSS_WRAPPER_LIB = "libnss_wrapper.so"

DEFAULT_USERS = [
    # name, uid, gid, gecos, home, shell
    ("root", 0, 0, "root", "/root", "/bin/sh"),
    ("alice", 2001, 2001, "Alice", "/home/alice", "/bin/sh"),
    ("bob", 2002, 2002, "Bob", "/home/bob", "/bin/sh"),
    ("carol", 2003, 2003, "Carol", "/home/carol", "/bin/sh"),
    ("ssf-sessiond", 996, 996, "ssf-sessiond", "/var/lib/ssf-sessiond", "/usr/sbin/nologin"),
    ("nobody", 65534, 65534, "nobody", "/nonexistent", "/usr/sbin/nologin"),
]
DEFAULT_GROUPS = [
    # name, gid, members
    ("root", 0, []),
    ("alice", 2001, []),
    ("bob", 2002, []),
    ("carol", 2003, []),
    ("staff", 3001, ["alice"]),
    ("admins", 3002, ["carol"]),
    ("ssf-sessiond", 996, []),
    ("nogroup", 65534, []),
]


class NssUsers:
    """passwd/group files for nss_wrapper: root, alice (2001; groups alice, staff),
    bob (2002), carol (2003; group admins)."""

    def __init__(self, directory, users=None, groups=None):
        self.dir = os.path.abspath(directory)
        self.users = list(users or DEFAULT_USERS)
        self.groups = list(groups or DEFAULT_GROUPS)
        self.passwd = os.path.join(self.dir, "passwd")
        self.group = os.path.join(self.dir, "group")

    def write(self):
        os.makedirs(self.dir, exist_ok=True)
        with open(self.passwd, "w") as f:
            for name, uid, gid, gecos, home, shell in self.users:
                f.write(f"{name}:x:{uid}:{gid}:{gecos}:{home}:{shell}\n")
        with open(self.group, "w") as f:
            for name, gid, members in self.groups:
                f.write(f"{name}:x:{gid}:{','.join(members)}\n")
        os.chmod(self.passwd, 0o644)
        os.chmod(self.group, 0o644)
        return self

    def uid(self, name):
        for u in self.users:
            if u[0] == name:
                return u[1]
        raise KeyError(name)

    def env(self):
        return {"LD_PRELOAD": NSS_WRAPPER_LIB, "NSS_WRAPPER_PASSWD": self.passwd,
                "NSS_WRAPPER_GROUP": self.group}


# ----------------------------------------------------------------------------- daemon

# The one rule most tests need: a high risk logs the user out of every session (sessions =
# all and reset = no are the defaults).
LOGOUT_HIGH_RULES = """
[rule logout-high]
levels = high
action = logout
"""

# A rule that only records: every SET is applied to levels and history, nobody is acted on.
RECORD_RULES = "[rule record]\naction = none\n"

DEFAULT_RULES = """[rule logout-high]
groups = *
detections = *
levels = high
action = logout
sessions = all
reset = no

[rule notify-medium]
levels = medium
action = workflow
workflow = notify-admin
"""


def daemon_config_text(transmitter, dirs, rules=None, extra="", transmitter_opts=None,
                       section_opts=None):
    """The ssf-sessiond INI text for a test. `dirs` maps state_dir, socket, snapshot,
    hooks_dir. transmitter_opts overrides/extends [transmitter] keys (value None drops a
    key); section_opts = {section: {key: value}} does the same for [subjects], [risk],
    [hooks] and [daemon]."""
    sections = {
        "transmitter": {
            "issuer": transmitter.issuer,
            "audience": transmitter.audience,
            "auth": "bearer",
            "token_file": transmitter.token_file,
            "ca_file": transmitter.ca_file,
            "delivery": "poll",
            "poll_wait": "2s",
            "events": "all",
        },
        "subjects": {"map": "email-localpart", "domains": "example.com"},
        "risk": {"ttl": "24h"},
        "hooks": {"dir": dirs["hooks_dir"], "timeout": "10s", "user": "root"},
        "daemon": {"state_dir": dirs["state_dir"], "socket": dirs["socket"],
                   "snapshot": dirs["snapshot"]},
    }
    overrides = dict(section_opts or {})
    if transmitter_opts:
        overrides.setdefault("transmitter", {})
        overrides["transmitter"] = {**overrides["transmitter"], **transmitter_opts}
    for sec, kv in overrides.items():
        sections.setdefault(sec, {})
        for k, v in kv.items():
            if v is None:
                sections[sec].pop(k, None)
            else:
                sections[sec][k] = v
    out = []
    for sec in ("transmitter", "subjects", "risk"):
        out.append(f"[{sec}]")
        out += [f"{k} = {v}" for k, v in sections[sec].items()]
        out.append("")
    out.append(DEFAULT_RULES if rules is None else rules)
    out.append("")
    for sec, kv in sections.items():
        if sec in ("transmitter", "subjects", "risk"):
            continue
        out.append(f"[{sec}]")
        out += [f"{k} = {v}" for k, v in kv.items()]
        out.append("")
    if extra:
        out.append(extra)
    return "\n".join(out) + "\n"


class Daemon:
    """One ssf-sessiond run (foreground, debug log) with its ssfctl."""

    def __init__(self, build_dir, directory, transmitter, env=None, rules=None, extra="",
                 transmitter_opts=None, section_opts=None, config_text=None, args=()):
        self.build_dir = os.path.abspath(build_dir)
        self.dir = os.path.abspath(directory)
        self.binary = os.path.join(self.build_dir, "ssf-sessiond")
        self.ssfctl = os.path.join(self.build_dir, "ssfctl")
        self.state_dir = os.path.join(self.dir, "state")
        self.hooks_dir = os.path.join(self.dir, "hooks.d")
        self.run_dir = os.path.join(self.dir, "run")
        self.socket = os.path.join(self.run_dir, "socket")
        self.snapshot = os.path.join(self.state_dir, "pam-snapshot")
        self.config_path = os.path.join(self.dir, "ssf-sessiond.conf")
        self.log_path = os.path.join(self.dir, "ssf-sessiond.log")
        self.transmitter = transmitter
        self.env = dict(env or {})
        self.args = list(args)
        self.proc = None
        for d, mode in ((self.dir, 0o755), (self.state_dir, 0o700), (self.hooks_dir, 0o755),
                        (self.run_dir, 0o755)):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, mode)
        dirs = {"state_dir": self.state_dir, "socket": self.socket, "snapshot": self.snapshot,
                "hooks_dir": self.hooks_dir}
        if config_text is None:
            config_text = daemon_config_text(transmitter, dirs, rules=rules, extra=extra,
                                             transmitter_opts=transmitter_opts,
                                             section_opts=section_opts)
        self.write_config(config_text)

    def write_config(self, text):
        with open(self.config_path, "w") as f:
            f.write(text)
        os.chmod(self.config_path, 0o644)
        self.config_text = text

    def add_hook(self, name, script, mode=0o755):
        """Write an executable hook into the hooks dir; returns its path. "@HOOK@" in script
        is replaced by that path (a "#!" hook's $0 is /dev/fd/N: the daemon runs the file it
        checked through that fd, not the path)."""
        path = os.path.join(self.hooks_dir, name)
        with open(path, "w") as f:
            f.write(script.replace("@HOOK@", path))
        os.chmod(path, mode)
        return path

    def full_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("NSS_WRAPPER")}
        env.update(self.env)
        return env

    def nss_env(self):
        """The daemon's nss_wrapper variables: pam_ssf.so resolves users the same way."""
        return {k: v for k, v in self.env.items() if k.startswith("NSS_WRAPPER")}

    def command(self, *extra):
        return [self.binary, "--config", self.config_path, *extra]

    def check_config(self, timeout=30):
        """Run --check-config; returns the CompletedProcess."""
        return subprocess.run(self.command("--check-config"), env=self.full_env(),
                              capture_output=True, text=True, timeout=timeout)

    def start(self, timeout=20, wait_socket=True):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command("--foreground", "--log-level", "debug",
                                                  *self.args),
                                     env=self.full_env(), stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        if wait_socket:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=20):
        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"ssf-sessiond exited with {self.proc.returncode} before its "
                                     f"socket appeared; log:\n{self.log()}")
            return os.path.exists(self.socket)
        try:
            wait_for(up, timeout, f"ssf-sessiond's socket {self.socket}")
        except WaitTimeout as e:
            raise WaitTimeout(f"{e}; log:\n{self.log()}") from None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        """SIGTERM, wait; returns the exit code (SIGKILL after timeout → AssertionError)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                self._close_log()
                raise AssertionError(f"ssf-sessiond did not exit within {timeout}s of SIGTERM; "
                                     f"log:\n{self.log()}")
        self._close_log()
        return self.proc.returncode

    def kill(self):
        """SIGKILL (simulated crash); returns the exit code."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._close_log()
        return self.proc.returncode if self.proc else None

    def _close_log(self):
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def log(self):
        return read_text(self.log_path)

    def ctl(self, *args, json=True, check=None, timeout=60, env=None):
        """Run ssfctl against this daemon. json=True: adds --json and returns the parsed
        output (raises if the exit code is not 0, unless check=False, then returns
        (rc, parsed-or-None, stderr)). json=False: returns the CompletedProcess."""
        cmd = [self.ssfctl]
        if json:
            cmd.append("--json")
        cmd += ["--socket", self.socket, *[str(a) for a in args]]
        e = self.full_env()
        e.update(env or {})
        cp = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=timeout)
        if not json:
            return cp
        import json as _json
        try:
            parsed = _json.loads(cp.stdout) if cp.stdout.strip() else None
        except ValueError:
            parsed = None
        if check is False:
            return cp.returncode, parsed, cp.stderr
        if cp.returncode != 0 or parsed is None:
            raise AssertionError(f"{' '.join(cmd)} -> exit {cp.returncode}\nstdout: {cp.stdout}\n"
                                 f"stderr: {cp.stderr}\ndaemon log tail:\n{self.log()[-4000:]}")
        return parsed


def transmitter_section(t, name, delivery="poll"):
    """A [transmitter NAME] section for the local transmitter t (managed stream, bearer token,
    poll_wait 2 s, every event), to go beside the unnamed [transmitter] in a configuration."""
    return (f"[transmitter {name}]\nissuer = {t.issuer}\naudience = {t.audience}\nauth = bearer\n"
            f"token_file = {t.token_file}\nca_file = {t.ca_file}\ndelivery = {delivery}\n"
            f"poll_wait = 2s\nevents = all\n")


def static_push_section(t, name, push_url, authorization_file):
    """A [transmitter NAME] section with stream = none for the local transmitter t: it pushes
    to push_url (on a listener configured elsewhere) with the Authorization value in
    authorization_file; issuer, jwks_uri and audience are given, nothing is discovered."""
    return (f"[transmitter {name}]\nissuer = {t.issuer}\nstream = none\n"
            f"jwks_uri = {t.origin}/ssf/jwks.json\naudience = {t.audience}\n"
            f"ca_file = {t.ca_file}\ndelivery = push\npush_url = {push_url}\n"
            f"push_authorization_file = {authorization_file}\n")


def write_secret(path, value):
    """A file holding value and a newline, mode 0600 (tokens, Authorization values)."""
    with open(path, "w") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)
    return str(path)


def history_transmitters(daemon, user, jti):
    """The transmitter names `ssfctl history USER` gives for the SET jti (one per entry)."""
    return [e["transmitter"] for e in daemon.ctl("history", user)["entries"] if e["jti"] == jti]


def each_transmitter_applies(daemon, sends, timeout=20):
    """sends: [(transmitter, user, name)]. Each transmitter sends session-revoked for
    USER@example.com, all at once; each SET is acknowledged, raises the user to high, and
    history names the transmitter it came from (root's knowledge: the worker channel).
    Returns the jtis in the order given."""
    jtis = [t.send_event("session-revoked", email=f"{user}@example.com") for t, user, _ in sends]
    for (t, user, name), jti in zip(sends, jtis):
        t.wait_acked(jti, timeout=timeout)
        assert daemon.ctl("risk", user)["level"] == "high", (name, user)
        assert history_transmitters(daemon, user, jti) == [name], (name, user)
    return jtis


def find_build_dir():
    return os.environ.get("SSF_BUILD") or os.path.join(REPO, "build")


class Stack:
    """Everything a scenario needs, under one directory: transmitter, test bus, logind
    mock, nss_wrapper users and (optionally) ssf-sessiond. For the demo script and for
    ad-hoc runs; the pytest fixtures compose the same classes.

        with Stack(base_dir, build_dir) as s:
            s.logind.add_session("c1", s.users.uid("alice"), "alice")
            d = s.start_daemon()
            jti = s.transmitter.send_event("device-compliance-change", email="alice@example.com")
            s.transmitter.wait_acked(jti)
    """

    def __init__(self, base_dir, build_dir=None, transmitter_kw=None):
        self.base = os.path.abspath(base_dir)
        self.build_dir = build_dir or find_build_dir()
        self.transmitter_kw = dict(transmitter_kw or {})
        self.transmitter = self.bus = self.logind = self.users = None
        self.daemons = []

    def start(self):
        os.makedirs(self.base, exist_ok=True)
        try:
            self.transmitter = TransmitterProcess(
                os.path.join(self.base, "transmitter"),
                log_path=os.path.join(self.base, "transmitter.log"), **self.transmitter_kw).start()
            self.bus = SystemBus(os.path.join(self.base, "bus")).start()
            self.logind = LogindMock(self.bus, os.path.join(self.base, "logind")).start()
            self.users = NssUsers(os.path.join(self.base, "nss")).write()
        except BaseException:
            self.stop()
            raise
        return self

    def daemon_env(self):
        env = {}
        env.update(self.logind.env())
        env.update(self.users.env())
        return env

    def start_daemon(self, name="daemon", start=True, **kw):
        env = self.daemon_env()
        env.update(kw.pop("env", None) or {})
        d = Daemon(self.build_dir, os.path.join(self.base, name), self.transmitter, env=env, **kw)
        self.daemons.append(d)
        if start:
            d.start()
        return d

    def stop(self):
        for d in self.daemons:
            if d.running():
                try:
                    d.stop()
                except AssertionError:
                    pass
        for part in (self.logind, self.bus, self.transmitter):
            if part is not None:
                part.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
