# SPDX-License-Identifier: MIT
"""A booted systemd-nspawn container for the end-to-end tests.

The container boots the cached Debian root with --volatile=overlay (every change is thrown away
at shutdown), its own network namespace (--private-network: only loopback) and real systemd,
journald, logind, dbus and sshd. Commands run inside through nsenter into all namespaces of
the container's PID 1 (the "leader"); host programs that must talk to the container over the
network (ssh, the test transmitter) run in its network namespace only.
"""

import os
import shlex
import signal
import subprocess
import tarfile
import time

BOOT_TIMEOUT = 60
STOP_TIMEOUT = 30


class ContainerError(Exception):
    pass


def wait_for(what, predicate, timeout, interval=0.1):
    """Polls predicate() until it returns a true value; raises with `what` after timeout s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Container:
    def __init__(self, root, workdir, name=None):
        self.root = root
        self.workdir = workdir
        self.name = name or f"ssf-e2e-{os.getpid()}"
        self.proc = None
        self.leader = None
        self.log_path = os.path.join(workdir, "nspawn.log")

    # -- life cycle --------------------------------------------------------------------
    def start(self):
        self._log = open(self.log_path, "wb")
        cmd = [
            "systemd-nspawn", "-D", self.root, f"--machine={self.name}",
            "--register=no", "--keep-unit", "--private-network",
            "--console=read-only", "--volatile=overlay", "-b",
        ]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self.leader = wait_for("the container's init process", self._find_leader, 20)
            state = wait_for("the container to boot (systemctl is-system-running)",
                             self._booted, BOOT_TIMEOUT, 0.2)
            if state == "degraded":
                failed = self.run(["systemctl", "--failed", "--no-legend"], check=False).stdout
                print(f"container booted degraded:\n{failed}")
        except BaseException:
            self.stop()
            raise

    def _find_leader(self):
        if self.proc.poll() is not None:
            raise ContainerError(f"systemd-nspawn exited with {self.proc.returncode}:\n"
                                 + self.log_tail())
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                kids = f.read().split()
        except FileNotFoundError:
            return None
        for k in kids:
            try:
                with open(f"/proc/{k}/comm") as f:
                    if f.read().strip() == "systemd":
                        return int(k)
            except FileNotFoundError:
                pass
        return None

    def _booted(self):
        if self.proc.poll() is not None:
            raise ContainerError(f"systemd-nspawn exited with {self.proc.returncode}:\n"
                                 + self.log_tail())
        r = self.run(["systemctl", "is-system-running"], check=False, timeout=10)
        state = r.stdout.strip()
        return state if state in ("running", "degraded") else None

    def stop(self):
        """Shuts the container down; always safe to call (also after a failed start)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)  # nspawn: orderly shutdown of the guest
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
        self.proc = None

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    # -- commands ------------------------------------------------------------------------
    def _nsenter(self, cmd, netns_only=False):
        ns = ["-n"] if netns_only else ["-a"]
        return ["nsenter", "-t", str(self.leader), *ns, "--", *cmd]

    def run(self, cmd, check=True, input=None, timeout=60, env=None):
        """Runs cmd (a list, or a string for sh -c) inside the container."""
        if isinstance(cmd, str):
            cmd = ["/bin/sh", "-c", cmd]
        r = subprocess.run(self._nsenter(cmd), input=input, capture_output=True, text=True,
                           timeout=timeout, env=env)
        if check and r.returncode != 0:
            raise ContainerError(f"{shlex.join(cmd)} exited {r.returncode}\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def popen(self, cmd, **kw):
        return subprocess.Popen(self._nsenter(cmd), **kw)

    def run_in_netns(self, cmd, check=True, timeout=60, **kw):
        """Runs a host program in the container's network namespace only."""
        r = subprocess.run(self._nsenter(cmd, netns_only=True), capture_output=True, text=True,
                           timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise ContainerError(f"{shlex.join(cmd)} exited {r.returncode}\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def popen_in_netns(self, cmd, **kw):
        return subprocess.Popen(self._nsenter(cmd, netns_only=True), **kw)

    # -- files -----------------------------------------------------------------------------
    def write_file(self, path, data, mode=0o644, owner="root:root"):
        """Writes a file inside the container (through the container's own path resolution)."""
        if isinstance(data, str):
            data = data.encode()
        d = os.path.dirname(path)
        self.run(f"mkdir -p {shlex.quote(d)} && cat > {shlex.quote(path)}.tmp && "
                 f"chown {owner} {shlex.quote(path)}.tmp && chmod {mode:o} {shlex.quote(path)}.tmp && "
                 f"mv -f {shlex.quote(path)}.tmp {shlex.quote(path)}", input=data.decode())

    def read_file(self, path):
        return self.run(["cat", path]).stdout

    def exists(self, path):
        return self.run(["test", "-e", path], check=False).returncode == 0

    def copy_in(self, src, dest, mode=0o644):
        """Copies the host file src to dest inside the container (bytes as they are)."""
        with open(src, "rb") as f:
            r = subprocess.run(self._nsenter(["/bin/sh", "-c", f'cat > "$1" && chmod {mode:o} "$1"',
                                              "sh", dest]),
                               stdin=f, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise ContainerError(f"copying {src} to {dest} in the container failed: {r.stderr}")

    def install_tree(self, stage):
        """Copies a staged DESTDIR tree into the container's /, keeping the guest's directory
        symlinks (/lib -> usr/lib) and the metadata of directories that already exist."""
        tar_path = os.path.join(self.workdir, "install.tar")
        with tarfile.open(tar_path, "w") as t:
            t.add(stage, arcname=".")
        with open(tar_path, "rb") as f:
            r = subprocess.run(self._nsenter(["tar", "-C", "/", "--keep-directory-symlink",
                                              "--no-overwrite-dir", "--no-same-owner", "-xf", "-"]),
                               stdin=f, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise ContainerError(f"installing into the container failed: {r.stderr}")

    # -- systemd -------------------------------------------------------------------------
    def systemctl(self, *args, check=True):
        return self.run(["systemctl", *args], check=check)

    def journal(self, *args):
        """journalctl -o json lines, parsed."""
        import json
        r = self.run(["journalctl", "--no-pager", "-o", "json", *args], check=False)
        out = []
        for line in r.stdout.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out
