# SPDX-License-Identifier: MIT
"""pytest fixtures shared by every integration test.

All files live under tmp_path; every process a fixture starts is stopped at teardown;
every wait is bounded and says what it waited for. The helpers themselves are in
support.py so the demo script can use the same code.
"""

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import support  # noqa: E402


@pytest.fixture(scope="session")
def build_dir():
    """Absolute build directory (env SSF_BUILD, default <repo>/build); fails when the
    binaries are missing."""
    b = os.path.abspath(support.find_build_dir())
    missing = [n for n in ("ssf-sessiond", "ssfctl", "pam_ssf.so")
               if not os.path.isfile(os.path.join(b, n))]
    if missing:
        pytest.fail(f"build directory {b} lacks {', '.join(missing)}: run `make` first "
                    f"(or set SSF_BUILD)")
    return b


@pytest.fixture
def transmitter(tmp_path):
    """The local SSF transmitter (subprocess of tests/transmitter/ssf_transmitter.py).
    Attributes: issuer, origin, ca_file, token_file, token, audience. Methods:
    send_event(event, email=, subject=, payload=, claims=, tamper=) -> jti, acks(),
    wait_acked(jti), wait_set_err(jti) -> err object, streams(), wait_stream(),
    rotate_key(), configure(**), set_stream_status(), reset(), request()."""
    t = support.TransmitterProcess(str(tmp_path / "transmitter"),
                                   log_path=str(tmp_path / "transmitter.log"))
    t.start()
    yield t
    t.stop()


@pytest.fixture
def transmitter_factory(tmp_path):
    """Start extra transmitters with options: factory(issuer_path=..., alg=..., ...)."""
    started = []

    def make(name=None, **kw):
        name = name or f"transmitter{len(started) + 2}"
        t = support.TransmitterProcess(str(tmp_path / name), log_path=str(tmp_path / f"{name}.log"),
                                       **kw)
        started.append(t)
        return t.start()
    yield make
    for t in started:
        t.stop()


@pytest.fixture
def system_bus(tmp_path):
    """A private dbus-daemon (system-bus-like, allow everything). Value: the SystemBus
    object; .address is the address for DBUS_SYSTEM_BUS_ADDRESS, .env() the variable."""
    bus = support.SystemBus(str(tmp_path / "bus")).start()
    yield bus
    bus.stop()


@pytest.fixture
def logind(system_bus, tmp_path):
    """python-dbusmock's logind on system_bus, patched so TerminateSession and friends
    really remove sessions (recorded). Methods: add_session(id, uid, user, remote=True,
    service="sshd", type="tty") -> object path; sessions() -> [(id, uid, user)];
    terminated() -> [id]; calls(method); set_session_properties(id, **props)."""
    m = support.LogindMock(system_bus, str(tmp_path / "logind")).start()
    yield m
    m.stop()


@pytest.fixture
def users(tmp_path):
    """nss_wrapper passwd/group files (root, alice 2001 in staff, bob 2002, carol 2003 in
    admins). .env() -> LD_PRELOAD / NSS_WRAPPER_PASSWD / NSS_WRAPPER_GROUP."""
    return support.NssUsers(str(tmp_path / "nss")).write()


@pytest.fixture
def daemon_factory(build_dir, transmitter, logind, users, tmp_path):
    """daemon_factory(rules=INI, extra=INI, transmitter_opts={}, section_opts={},
    env={}, start=True, wait=True) -> support.Daemon, started (unless start=False) with
    DBUS_SYSTEM_BUS_ADDRESS of the logind mock and the nss_wrapper users. Methods:
    ctl(*args, json=True), stop() -> exit code, log(), add_hook(name, script);
    attributes config_path, hooks_dir, state_dir, socket, snapshot."""
    started = []

    def make(rules=None, extra="", transmitter_opts=None, section_opts=None, env=None,
             start=True, wait=True, name=None, config_text=None, tx=None, args=()):
        name = name or ("daemon" if not started else f"daemon{len(started) + 1}")
        e = {}
        e.update(logind.env())
        e.update(users.env())
        e.update(env or {})
        d = support.Daemon(build_dir, str(tmp_path / name), tx or transmitter, env=e, rules=rules,
                           extra=extra, transmitter_opts=transmitter_opts,
                           section_opts=section_opts, config_text=config_text, args=args)
        started.append(d)
        if start:
            d.start(wait_socket=wait)
        return d
    yield make
    for d in started:
        if d.running():
            try:
                d.stop()
            except AssertionError:
                pass  # killed; the test itself reports daemon misbehaviour


class _Pam:
    """The real pam_ssf.so under pam_wrapper, through tests/integration/pam_support.py,
    with files under the test's tmp_path."""

    def __init__(self, module, tmp_path):
        self.support = module
        self.tmp = tmp_path

    def run(self, lines, user, **kw):
        """run_pam(): PAM steps for user against a service made of `lines` ({module} is
        replaced by the module path). Returns a PamRun (.code, .errors, .infos)."""
        return self.support.run_pam(self.tmp, lines, user, **kw)

    def run_module(self, group, args, user, **kw):
        """run_module(): pam_ssf.so alone in `group`; codes are the module's own."""
        return self.support.run_module(self.tmp, group, args, user, **kw)

    def account(self, daemon, user, args="", **kw):
        """account phase against `daemon` (a support.Daemon): its socket and snapshot."""
        line = f"account required {{module}} socket={daemon.socket} snapshot={daemon.snapshot} {args}"
        kw.setdefault("env", daemon.nss_env())
        return self.run([line.strip()], user, **kw)


@pytest.fixture
def pam(build_dir, tmp_path):
    """PAM helper (real pam_ssf.so under pam_wrapper): .run(lines, user, ...),
    .run_module(group, args, user), .account(daemon, user, args); .support is the
    pam_support module (constants, FakeDaemon, ...)."""
    try:
        import pam_support
    except ImportError as e:
        pytest.fail(f"tests/integration/pam_support.py is not available: {e}")
    return _Pam(pam_support, tmp_path)


def run(cmd, env=None, **kw):
    """subprocess.run with text output and a bound on time (for tests)."""
    kw.setdefault("timeout", 60)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, **kw)
