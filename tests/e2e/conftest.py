# SPDX-License-Identifier: MIT
"""Fixtures of the end-to-end tests: a Debian 12 root booted with systemd-nspawn (real
systemd, journald, logind, dbus, sshd), the build installed into it with `make install
DESTDIR=` (or its Debian package, built with `make deb`, for the admin to install), users with
ssh keys, sshd's PAM stack using pam_ssf.so, and the local transmitter in the container's
network namespace.

Every test gets a fresh container (--volatile=overlay: the cached root is never changed);
teardown always stops sessions, the transmitter and the container, also after a failure.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from container import Container, wait_for  # noqa: E402
from e2e_support import (HOOK_DROPIN, PUSH_DELIVERY, RECORD_HOOK, SSHD_DROPIN,  # noqa: E402
                         TOP, ContainerTransmitter, Sessions, daemon_config, ssfctl)

@pytest.fixture(scope="session")
def build_dir():
    b = os.environ.get("SSF_BUILD")
    if not b:
        pytest.fail("SSF_BUILD (absolute build directory) is not set; run tests/e2e/run.sh")
    b = os.path.abspath(b)
    missing = [n for n in ("ssf-sessiond", "ssfctl", "pam_ssf.so")
               if not os.path.isfile(os.path.join(b, n))]
    if missing:
        pytest.fail(f"build directory {b} lacks {', '.join(missing)}: run make first")
    return b


@pytest.fixture(scope="session")
def e2e_root():
    root = os.environ.get("SSF_E2E_ROOT")
    if not root:
        r = subprocess.run([os.path.join(HERE, "build-root.sh")], capture_output=True,
                           text=True)
        if r.returncode != 0:
            pytest.fail(f"building the container root failed:\n{r.stderr}")
        root = r.stdout.strip().splitlines()[-1]
    if not os.path.isfile(os.path.join(root, ".ssf-e2e-root")):
        pytest.fail(f"{root} is not a complete end-to-end root")
    return root


@pytest.fixture(scope="session")
def stage(build_dir, tmp_path_factory):
    """`make install DESTDIR=<stage>` of the build under test, once per run."""
    d = str(tmp_path_factory.mktemp("destdir"))
    r = subprocess.run(["make", "--no-print-directory", "-C", TOP, "install", f"B={build_dir}",
                        f"DESTDIR={d}"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"make install DESTDIR={d} failed:\n{r.stdout}\n{r.stderr}")
    return d


class System:
    """One booted container with the product installed, and what a test does with it."""

    def __init__(self, container, sessions, workdir):
        self.c = container
        self.s = sessions
        self.workdir = workdir
        self.transmitter = None
        self.push = None  # the push settings of configure_daemon, None for poll
        self.deb = None  # deb_system: the package file inside the container

    # -- set-up ----------------------------------------------------------------------------
    def start_transmitter(self):
        t = ContainerTransmitter(self.c, os.path.join(self.workdir, "transmitter"),
                                 log_path=os.path.join(self.workdir, "transmitter.log"),
                                 long_poll_max=5, redelivery_delay=2)
        self.transmitter = t
        t.start()
        return t

    def pam_sshd(self, args=""):
        """sshd's account stack: pam_ssf.so after Debian's common-account."""
        text = self.c.read_file("/etc/pam.d/sshd")
        lines = [ln for ln in text.splitlines() if "pam_ssf.so" not in ln]
        i = next(n for n, ln in enumerate(lines) if ln.startswith("@include common-account"))
        lines.insert(i + 1, f"account    required     pam_ssf.so {args}".rstrip())
        self.c.write_file("/etc/pam.d/sshd", "\n".join(lines) + "\n")

    def configure_daemon(self, rules, poll_wait="5s", push=None):
        """Installs the daemon's configuration; push = {"listen", "url", "cert", "key"}
        selects push delivery (the certificate and key must be installed already)."""
        t = self.transmitter
        self.push = push
        with open(t.ca_file) as f:
            self.c.write_file("/etc/ssf/transmitter-ca.pem", f.read(), mode=0o644)
        self.c.write_file("/etc/ssf/token", t.token + "\n", mode=0o600)
        self.c.write_file("/etc/ssf/ssf-sessiond.conf", daemon_config(t, rules, poll_wait, push),
                          mode=0o644)
        self.c.write_file("/etc/ssf/hooks.d/e2e-record", RECORD_HOOK, mode=0o755)
        self.c.run("mkdir -p /var/lib/ssf-e2e && chmod 0700 /var/lib/ssf-e2e")
        self.c.write_file("/etc/systemd/system/ssf-sessiond.service.d/e2e-hooks.conf",
                          HOOK_DROPIN)
        r = self.c.run(["ssf-sessiond", "--check-config", "--config",
                        "/etc/ssf/ssf-sessiond.conf"], check=False)
        assert r.returncode == 0, f"--check-config refused the test config:\n{r.stdout}{r.stderr}"

    def enable_and_start(self):
        """As an admin would: enable the socket and the service, start the socket; the
        first client activates the service."""
        self.c.systemctl("daemon-reload")
        self.c.systemctl("enable", "--now", "ssf-sessiond.socket")
        self.c.systemctl("enable", "ssf-sessiond.service")
        self.c.systemctl("start", "ssf-sessiond.service")
        self.wait_active()
        self.transmitter.wait_stream(timeout=30)
        if self.push:
            self.wait_push_stream()
        else:
            self.transmitter.wait_polls(1, timeout=30)  # the daemon is receiving

    def wait_push_stream(self, timeout=30):
        """Waits until the transmitter holds a push stream to the configured push_url;
        returns it."""
        def stream():
            for s in self.transmitter.streams():
                d = s.get("delivery", {})
                if d.get("method") == PUSH_DELIVERY and d.get("endpoint_url") == self.push["url"]:
                    return s
            return None
        return wait_for("a push stream to the daemon's push_url on the transmitter", stream,
                        timeout)

    def wait_active(self, timeout=30):
        def active():
            r = self.c.systemctl("is-active", "ssf-sessiond.service", check=False)
            state = r.stdout.strip()
            if state == "failed":
                raise AssertionError("ssf-sessiond.service failed:\n" + self.daemon_log())
            return state == "active"
        wait_for("ssf-sessiond.service to be active", active, timeout)

    # -- observation -------------------------------------------------------------------------
    def daemon_log(self, n=80):
        return self.c.run(["journalctl", "--no-pager", "-o", "short-monotonic", "-n", str(n),
                           "-u", "ssf-sessiond.service", "-u", "ssf-sessiond.socket"],
                          check=False).stdout

    def history(self, user=None, n=200):
        args = ["history"] + ([user] if user else []) + ["-n", str(n)]
        return ssfctl(self.c, *args)["entries"]

    def risk(self, user):
        return ssfctl(self.c, "risk", user)

    def main_pid(self):
        return self.c.systemctl("show", "-p", "MainPID", "--value", "ssf-sessiond.service"
                                ).stdout.strip()


def booted_system(e2e_root, workdir, request, install, pam=True):
    """Boots a container, runs install(System) (what puts the product on it), adds users
    alice and bob (ssh keys and passwords), lets sshd show PAM's messages, puts pam_ssf.so into
    sshd's PAM stack when pam is true, and starts the transmitter in the container's network
    namespace; yields the System. Teardown always stops sessions, the transmitter and the
    container, and prints diagnostics when the test failed."""
    c = Container(e2e_root, workdir)
    t0 = time.monotonic()
    c.start()
    s = Sessions(c, workdir)
    sysm = System(c, s, workdir)
    try:
        install(sysm)
        for u in ("alice", "bob"):
            s.add_user(u, password=f"e2e-{u}-pw")
        c.write_file("/etc/ssh/sshd_config.d/ssf-e2e.conf", SSHD_DROPIN)
        c.systemctl("reload-or-restart", "ssh.service")
        if pam:
            sysm.pam_sshd()
        sysm.start_transmitter()
        print(f"container {c.name} ready in {time.monotonic() - t0:.1f}s (leader {c.leader})")
        yield sysm
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed and c.leader:
            try:
                print("---- ssf-sessiond journal ----\n" + sysm.daemon_log(200))
                print("---- logind sessions ----\n"
                      + c.run(["loginctl", "list-sessions"], check=False).stdout)
                if sysm.transmitter:
                    print("---- transmitter log (tail) ----\n" + sysm.transmitter.log()[-4000:])
            except Exception as e:  # diagnostics must never hide the failure
                print(f"(collecting diagnostics failed: {e})")
        s.close()
        if sysm.transmitter:
            sysm.transmitter.stop()
        c.stop()
        s.close()


@pytest.fixture
def system(e2e_root, stage, tmp_path, request):
    """A booted container with the product installed (make install DESTDIR=), users alice
    and bob (ssh keys and passwords), sshd's PAM stack with pam_ssf.so, and the transmitter in
    its network namespace. The daemon is not configured yet (configure_daemon,
    enable_and_start)."""
    def install(sysm):
        sysm.c.install_tree(stage)
        # What a package's maintainer scripts would do after installing the files.
        sysm.c.run(["systemd-sysusers"])
    yield from booted_system(e2e_root, str(tmp_path), request, install)


@pytest.fixture(scope="session")
def deb_package(build_dir):
    """`make deb B=<build>`: the Debian package of the tree under test (built with
    dpkg-buildpackage in a copy of the tree, checked with lintian), once per run."""
    r = subprocess.run(["make", "--no-print-directory", "-C", TOP, "deb", f"B={build_dir}"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"make deb failed:\n{r.stdout[-6000:]}\n{r.stderr[-6000:]}")
    debs = [os.path.join(build_dir, n) for n in os.listdir(build_dir)
            if n.startswith("ssf_") and n.endswith(".deb")]
    if len(debs) != 1:
        pytest.fail(f"expected one ssf_*.deb in {build_dir}, found {debs}")
    return debs[0]


@pytest.fixture
def deb_system(e2e_root, deb_package, tmp_path, request):
    """A booted container with the package copied to /var/tmp/ but not installed (the test
    installs it as an admin does), users alice and bob, sshd's PAM stack as Debian ships it,
    and the transmitter. System.deb is the package's path inside the container."""
    def copy_package(sysm):
        sysm.deb = "/var/tmp/" + os.path.basename(deb_package)
        sysm.c.copy_in(deb_package, sysm.deb)
    yield from booted_system(e2e_root, str(tmp_path), request, copy_package, pam=False)


def pytest_configure(config):
    # SIGTERM (a CI timeout, make being stopped) unwinds like Ctrl-C, so that the fixtures'
    # teardown still stops every container.
    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)

