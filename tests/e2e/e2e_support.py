# SPDX-License-Identifier: MIT
"""Helpers of the end-to-end tests: the test transmitter inside the container's network
namespace, ssh and su sessions, the installed daemon's configuration, ssfctl and the journal."""

import concurrent.futures
import ctypes
import json
import os
import shlex
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.append(os.path.join(TOP, "tests", "integration"))

from support import TransmitterProcess  # noqa: E402  (the integration tests' client)


CLONE_NEWNET = 0x40000000

# MESSAGE_IDs of ssf-sessiond's structured journal records (ssf-sessiond/shared/log.h).
MESSAGE_SET_RECEIVED = "5b0e1a1c7d4e4a55a1a6f0f2c3d4e501"
MESSAGE_SET_REJECTED = "5b0e1a1c7d4e4a55a1a6f0f2c3d4e502"
MESSAGE_RISK_CHANGED = "5b0e1a1c7d4e4a55a1a6f0f2c3d4e503"
MESSAGE_ACTION = "5b0e1a1c7d4e4a55a1a6f0f2c3d4e504"
MESSAGE_STREAM = "5b0e1a1c7d4e4a55a1a6f0f2c3d4e505"

PUSH_DELIVERY = "urn:ietf:rfc:8935"  # RFC 8935 push, the stream's delivery method

DENIAL_TEXT = "Access denied: your account's security risk is"

MULTIARCH = subprocess.run(["gcc", "-print-multiarch"], capture_output=True,
                           text=True).stdout.strip() or "x86_64-linux-gnu"
PAM_DIR = f"/lib/{MULTIARCH}/security"

RULES_TEMPLATE = """[rule logout-high]
groups = *
detections = *
levels = high
action = logout
sessions = all
reset = {reset}

[rule notify-medium]
levels = medium
action = workflow
workflow = e2e-record
"""

# The test's workflow hook: records its environment and standard input where the test can
# read them, then runs the shipped example hook (which logs to the journal).
RECORD_HOOK = """#!/bin/sh
set -eu
out=/var/lib/ssf-e2e/hook-$(printf '%s' "$SSF_JTI" | tr -c 'A-Za-z0-9_-' _)
env | sort > "$out.env.tmp"
cat > "$out.stdin"
id -u > "$out.uid"
mv "$out.env.tmp" "$out.env"
echo "recorded $SSF_USER $SSF_RISK_LEVEL"
exec /etc/ssf/hooks.d/notify-admin < /dev/null
"""

# What an admin adds so that a hook may write outside the daemon's state directory
# (see the comment at the top of ssf-sessiond.service).
HOOK_DROPIN = """[Service]
ReadWritePaths=/var/lib/ssf-e2e
"""

SSHD_DROPIN = """# end-to-end tests: keyboard-interactive logins (they show PAM's messages to the user)
KbdInteractiveAuthentication yes
UsePAM yes
"""


class NetnsExecutor:
    """One worker thread that lives in another network namespace: sockets it opens are the
    namespace's, so the tests' HTTP client reaches 127.0.0.1 inside the container."""

    def __init__(self, pid):
        self.fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=2,
                                                          initializer=self._enter)

    def _enter(self):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(self.fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"setns(net): {os.strerror(e)}")

    def call(self, fn, *args, **kw):
        return self.pool.submit(fn, *args, **kw).result()

    def close(self):
        self.pool.shutdown(wait=True)
        os.close(self.fd)


class ContainerTransmitter(TransmitterProcess):
    """The local SSF transmitter (tests/transmitter/ssf_transmitter.py), a host process that
    runs in the container's network namespace only: the daemon inside reaches it at
    127.0.0.1, nothing outside the container can."""

    def __init__(self, container, state_dir, **kw):
        super().__init__(state_dir, **kw)
        self.container = container
        self.args = ["nsenter", "-t", str(container.leader), "-n", "--", *self.args, "--quiet"]
        self.netns = NetnsExecutor(container.leader)

    def request(self, *args, **kw):
        return self.netns.call(super().request, *args, **kw)

    def stop(self):
        rc = super().stop()
        self.netns.close()
        return rc


class Sessions:
    """ssh and su -l sessions into the container, tracked so that teardown ends them."""

    SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "ConnectTimeout=10",
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]

    def __init__(self, container, workdir):
        self.c = container
        self.workdir = workdir
        self.procs = []
        self.keys = {}
        self.askpass = os.path.join(workdir, "askpass")
        self.passwords = {}

    def add_user(self, user, password=None):
        """A local user with an ssh key made for this run (and a password, for the
        keyboard-interactive logins that show PAM's messages)."""
        key = os.path.join(self.workdir, f"id_{user}")
        if not os.path.exists(key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{user}@e2e",
                            "-f", key], check=True)
        with open(key + ".pub") as f:
            pub = f.read()
        self.c.run(["useradd", "--create-home", "--shell", "/bin/bash", user])
        self.c.write_file(f"/home/{user}/.ssh/authorized_keys", pub, mode=0o600,
                          owner=f"{user}:{user}")
        self.c.run(f"chown {user}: /home/{user}/.ssh && chmod 0700 /home/{user}/.ssh")
        if password:
            self.c.run(["chpasswd"], input=f"{user}:{password}\n")
            self.passwords[user] = password
        self.keys[user] = key
        return self.c.run(["id", "-u", user]).stdout.strip()

    def _ssh_cmd(self, user, command, kbdint=False):
        if kbdint:
            # The server's messages (PAM's conversation) arrive as the instruction of a
            # keyboard-interactive request, which ssh prints at LogLevel INFO.
            auth = ["-o", "PreferredAuthentications=keyboard-interactive",
                    "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
                    "-o", "LogLevel=INFO"]
        else:
            auth = ["-i", self.keys[user], "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                    "-o", "PreferredAuthentications=publickey", "-o", "LogLevel=INFO"]
        return ["ssh", *self.SSH_OPTS, *auth, f"{user}@127.0.0.1", command]

    def _ssh_env(self, user, kbdint):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": self.workdir}
        if kbdint:
            with open(self.askpass, "w") as f:
                f.write(f"#!/bin/sh\necho {shlex.quote(self.passwords[user])}\n")
            os.chmod(self.askpass, 0o700)
            env.update(SSH_ASKPASS=self.askpass, SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
        return env

    def ssh(self, user, command="true", kbdint=False, timeout=30):
        """One ssh login running command; returns the CompletedProcess."""
        return self.c.run_in_netns(self._ssh_cmd(user, command, kbdint), check=False,
                                   timeout=timeout, env=self._ssh_env(user, kbdint),
                                   stdin=subprocess.DEVNULL, start_new_session=True)

    def ssh_background(self, user, command="echo ssh-session-up; exec sleep 600"):
        """An interactive-like ssh session kept open; returns (Popen, output path)."""
        out = os.path.join(self.workdir, f"ssh-{user}-{len(self.procs)}.out")
        f = open(out, "wb")
        p = self.c.popen_in_netns(self._ssh_cmd(user, command), stdin=subprocess.DEVNULL,
                                  stdout=f, stderr=subprocess.STDOUT,
                                  env=self._ssh_env(user, False), start_new_session=True)
        f.close()
        self.procs.append(p)
        return p, out

    def su_background(self, user, unit):
        """su -l USER inside the container, started as a transient service so that it lives
        in the container's cgroup tree (pam_systemd moves it into a logind session scope).
        The host process exits when su does."""
        p = self.c.popen(["systemd-run", "--quiet", "--wait", "--pipe", f"--unit={unit}",
                          "--service-type=exec", "su", "-l", user, "-c", "exec sleep 600"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(p)
        return p

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    pass


def logind_sessions(c):
    """{session id: {property: value}} of the container's logind."""
    out = {}
    r = c.run(["loginctl", "list-sessions", "--no-legend"], check=False)
    for line in r.stdout.splitlines():
        if not line.split():
            continue
        sid = line.split()[0]
        props = c.run(["loginctl", "show-session", sid, "-p", "Name", "-p", "Remote",
                       "-p", "Service", "-p", "State", "-p", "Class", "-p", "Leader"],
                      check=False).stdout
        p = dict(x.split("=", 1) for x in props.splitlines() if "=" in x)
        if p:
            out[sid] = p
    return out


def user_sessions(c, user):
    return {k: v for k, v in logind_sessions(c).items()
            if v.get("Name") == user and v.get("State") != "closing"}


def ssfctl(c, *args, check=True):
    r = c.run(["ssfctl", "--json", *args], check=False, timeout=30)
    if check and r.returncode != 0:
        raise AssertionError(f"ssfctl {' '.join(args)} exited {r.returncode}: {r.stderr}")
    return json.loads(r.stdout) if r.stdout.strip() else None


def daemon_config(transmitter, rules, poll_wait="5s", push=None):
    """The daemon's configuration: poll delivery, or push delivery when push = {"listen",
    "url", "cert", "key"} (paths inside the container)."""
    if push:
        delivery = (f"delivery = push\npush_listen = {push['listen']}\n"
                    f"push_url = {push['url']}\npush_cert = {push['cert']}\n"
                    f"push_key = {push['key']}")
    else:
        delivery = f"delivery = poll\npoll_wait = {poll_wait}"
    return f"""# ssf-sessiond configuration written by the end-to-end tests
[transmitter]
issuer = {transmitter.issuer}
audience = {transmitter.audience}
auth = bearer
token_file = /etc/ssf/token
ca_file = /etc/ssf/transmitter-ca.pem
{delivery}
events = all

[subjects]
map = email-localpart
domains = example.com

[risk]
ttl = 24h

{rules}

[hooks]
dir = /etc/ssf/hooks.d
timeout = 20s
user = root
"""


def journal_records(c, message_id, **fields):
    """The ssf-sessiond journal records with MESSAGE_ID and every FIELD=value given."""
    out = []
    for e in c.journal(f"MESSAGE_ID={message_id}"):
        if e.get("_SYSTEMD_UNIT") != "ssf-sessiond.service":
            continue
        if all(e.get(k) == v for k, v in fields.items()):
            out.append(e)
    return out


def wait_exit(proc, timeout, what):
    """Waits (bounded) for a host process to exit; returns its status."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


# What OpenSSH's client prints when the server side of its connection goes away: "Connection
# to HOST closed by remote host." when it reads the end first; "client_loop: send disconnect:
# Broken pipe" (or a reset) when it was writing at that moment — a pty session's client may be.
SSH_CLOSED_BY_SERVER = ("closed by remote host", "send disconnect: Broken pipe",
                        "Connection reset by peer")


def closed_by_server(out):
    """True if an ssh client's output says the server ended its connection."""
    return any(s in out for s in SSH_CLOSED_BY_SERVER)
