# SPDX-License-Identifier: MIT
"""Helpers for tests that drive the real pam_ssf.so through a real libpam under pam_wrapper.

* The ssf IPC wire format (common/ssf-ipc.h): encode_frame(), decode_frame(), pam_reply().
* FakeDaemon: a scripted ssf-sessiond on a SOCK_SEQPACKET socket at a temporary path.
* run_pam(): runs PAM steps in a subprocess (build/helpers/pam-harness with
  LD_PRELOAD=libpam_wrapper.so) and returns a PamRun with the codes and the conversation text;
  run_module() runs pam_ssf.so alone and reports the module's own return code, PAM_IGNORE too.

Usage:

    with FakeDaemon(sock_path, levels={"alice": ("high", "device-compliance-change")}) as d:
        run = run_module(tmp_path, "account", "socket=" + sock_path, "alice")
        assert run.code == PAM_PERM_DENIED
        assert "high" in run.errors[0]
"""

import ctypes.util
import os
import re
import select
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# PAM return codes (Linux-PAM <security/_pam_types.h>).
PAM_SUCCESS = 0
PAM_SERVICE_ERR = 3
PAM_PERM_DENIED = 6
PAM_USER_UNKNOWN = 10
PAM_SESSION_ERR = 14
PAM_AUTHINFO_UNAVAIL = 9
PAM_IGNORE = 25

# IPC protocol (common/ssf-ipc.h).
MAGIC = 0x53534631
VERSION = 1
HEADER = struct.Struct(">IHHI")
MAX_FRAME = 64 * 1024
PAM_QUERY, PAM_REPLY, CTL_REQUEST, CTL_REPLY = 1, 2, 3, 4
TAG_USER, TAG_SERVICE, TAG_RHOST, TAG_TTY = 1, 2, 3, 4
TAG_STATUS, TAG_LEVEL, TAG_MESSAGE, TAG_DETECTION = 5, 6, 7, 8
TAG_VERB, TAG_ARGS, TAG_BODY = 9, 10, 11
LEVELS = {"none": 0, "low": 1, "medium": 2, "high": 3}


def build_dir():
    return Path(os.environ.get("SSF_BUILD", REPO / "build")).resolve()


def module_path():
    return build_dir() / "pam_ssf.so"


def harness_path():
    return build_dir() / "helpers" / "pam-harness"


def encode_frame(msg_type, tlvs, version=VERSION, magic=MAGIC, length=None):
    """tlvs: list of (tag, bytes). length overrides the header's len field."""
    body = b"".join(struct.pack(">HH", tag, len(value)) + value for tag, value in tlvs)
    return HEADER.pack(magic, version, msg_type, len(body) if length is None else length) + body


def decode_frame(data):
    """Returns (type, {tag: bytes}). Raises ValueError on anything malformed."""
    if len(data) < HEADER.size:
        raise ValueError("short frame")
    magic, version, msg_type, length = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or length != len(data) - HEADER.size:
        raise ValueError("bad header")
    tlvs, pos = {}, HEADER.size
    while pos < len(data):
        if len(data) - pos < 4:
            raise ValueError("short TLV")
        tag, tlen = struct.unpack_from(">HH", data, pos)
        pos += 4
        if tlen > len(data) - pos or tag in tlvs:
            raise ValueError("bad TLV")
        tlvs[tag] = data[pos:pos + tlen]
        pos += tlen
    return msg_type, tlvs


def pam_query(user, service=None, rhost=None, tty=None):
    tlvs = [(TAG_USER, user.encode())]
    for tag, v in ((TAG_SERVICE, service), (TAG_RHOST, rhost), (TAG_TTY, tty)):
        if v is not None:
            tlvs.append((tag, v.encode()))
    return encode_frame(PAM_QUERY, tlvs)


def pam_reply(level="none", status=0, message=None, detection=None):
    tlvs = [(TAG_STATUS, struct.pack(">i", status)), (TAG_LEVEL, bytes([LEVELS[level]]))]
    if message is not None:
        tlvs.append((TAG_MESSAGE, message.encode()))
    if detection is not None:
        tlvs.append((TAG_DETECTION, detection.encode()))
    return encode_frame(PAM_REPLY, tlvs)


class FakeDaemon:
    """A scripted ssf-sessiond answering PAM_QUERY frames on a SOCK_SEQPACKET socket.

    levels: {user: level} or {user: (level, detection)} or {user: (level, detection, message)};
    unknown users get level none. mode: "reply" (default), "silent" (accept, read, never
    answer), "garbage" (answer with `garbage` bytes), "close" (close without answering),
    "error" (STATUS -EIO). Queries received are kept in .queries as {tag: str} dicts."""

    def __init__(self, path, levels=None, mode="reply", garbage=b"\x00garbage\xff" * 3,
                 handler=None):
        self.path = str(path)
        self.levels = levels or {}
        self.mode = mode
        self.garbage = garbage
        self.handler = handler
        self.queries = []
        self._stop = threading.Event()
        self._thread = None
        self._sock = None
        self._held = []

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock.bind(self.path)
        self._sock.listen(16)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        for c in self._held:
            c.close()
        if self._sock:
            self._sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def reply_for(self, tlvs):
        if self.handler:
            return self.handler(tlvs)
        if self.mode == "error":
            return pam_reply("none", status=-5)
        user = tlvs.get(TAG_USER, b"").decode(errors="replace")
        entry = self.levels.get(user, "none")
        if isinstance(entry, str):
            entry = (entry,)
        level, detection, message = (tuple(entry) + (None, None))[:3]
        return pam_reply(level, detection=detection, message=message)

    def _serve(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self._sock], [], [], 0.05)
            if not r:
                continue
            conn, _ = self._sock.accept()
            try:
                self._handle(conn)
            except OSError:
                conn.close()

    def _handle(self, conn):
        r, _, _ = select.select([conn], [], [], 5)
        if not r:
            conn.close()
            return
        data = conn.recv(MAX_FRAME + 1)
        try:
            msg_type, tlvs = decode_frame(data)
        except ValueError:
            conn.close()
            return
        self.queries.append({t: v.decode(errors="replace") for t, v in tlvs.items()} |
                            {"type": msg_type})
        if self.mode == "silent":
            self._held.append(conn)  # the client must give up on its own deadline
            return
        if self.mode == "close":
            conn.close()
            return
        if self.mode == "garbage":
            conn.send(self.garbage)
        else:
            out = self.reply_for(tlvs)
            if out is not None:
                conn.send(out)
        conn.close()


@dataclass
class PamRun:
    results: dict = field(default_factory=dict)   # step -> PAM code
    steps: list = field(default_factory=list)     # [(step, code)] in order
    errors: list = field(default_factory=list)    # PAM_ERROR_MSG texts
    infos: list = field(default_factory=list)     # PAM_TEXT_INFO texts
    prompts: list = field(default_factory=list)   # PAM_PROMPT_ECHO_OFF/ON texts
    logs: list = field(default_factory=list)      # [(syslog level, text)] from pam_syslog()
    stdout: str = ""
    stderr: str = ""

    @property
    def code(self):
        """The code of the last step run."""
        return self.steps[-1][1]

    @property
    def messages(self):
        return self.errors + self.infos + self.prompts

    def logged(self, level, pattern):
        """Whether a log line at `level` (syslog.LOG_*) matches the regular expression."""
        return any(lv == level and re.search(pattern, text) for lv, text in self.logs)


def pam_wrapper_lib():
    for cand in ("libpam_wrapper.so", ctypes.util.find_library("pam_wrapper")):
        if not cand:
            continue
        for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib", "/lib/x86_64-linux-gnu"):
            p = Path(d) / cand
            if p.exists():
                return str(p)
    return "libpam_wrapper.so"


def write_service(service_dir, name, lines, module=None):
    """Writes a PAM service file; '{module}' in lines becomes the module's absolute path."""
    service_dir = Path(service_dir)
    service_dir.mkdir(parents=True, exist_ok=True)
    module = str(module or module_path())
    text = "\n".join(line.replace("{module}", module) for line in lines) + "\n"
    (service_dir / name).write_text(text)
    other = service_dir / "other"
    if not other.exists():
        other.write_text("auth required pam_deny.so\naccount required pam_deny.so\n"
                         "password required pam_deny.so\nsession required pam_deny.so\n")
    return service_dir


_SYSLOG_LINE = re.compile(r"SYSLOG\((\d+)\): (.*)")


def run_pam(tmp_dir, lines, user, steps=("account",), service="ssf-test", rhost=None, tty=None,
            close_stdio=False, timeout=30, env=None, answer=None):
    """Runs the PAM steps for user against a service made of `lines` under pam_wrapper.
    Prompts are answered with `answer` (default: an empty string); they are in run.prompts.
    Returns a PamRun. Raises AssertionError if the harness itself fails."""
    service_dir = write_service(Path(tmp_dir) / "pam.d", service, lines)
    cmd = [str(harness_path())]
    if close_stdio:
        cmd.append("--close-stdio")
    if rhost:
        cmd += ["--rhost", rhost]
    if tty:
        cmd += ["--tty", tty]
    if answer is not None:
        cmd += ["--answer", answer]
    cmd += [service, user, *steps]
    e = dict(os.environ)
    # At debug level 4 pam_wrapper copies every pam_syslog() line to stderr as "SYSLOG(prio): …".
    e.update({"LD_PRELOAD": pam_wrapper_lib(), "PAM_WRAPPER": "1",
              "PAM_WRAPPER_SERVICE_DIR": str(service_dir), "PAM_WRAPPER_DEBUGLEVEL": "4"})
    if env:
        e.update(env)
    if "NSS_WRAPPER_PASSWD" in e:
        # The module resolves the user with NSS itself (the snapshot is keyed by uid).
        e["LD_PRELOAD"] = f"{pam_wrapper_lib()} libnss_wrapper.so"
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e)
    assert p.returncode == 0, f"pam-harness failed ({p.returncode}): {p.stdout}{p.stderr}"
    run = PamRun(stdout=p.stdout, stderr=p.stderr)
    for line in p.stdout.splitlines():
        parts = line.split(" ")
        if parts[0] == "result":
            run.results[parts[1]] = int(parts[2])
            run.steps.append((parts[1], int(parts[2])))
        elif parts[0] == "msg":
            text = "" if parts[2] == "-" else bytes.fromhex(parts[2]).decode(errors="replace")
            {"error": run.errors, "info": run.infos}.get(parts[1], run.prompts).append(text)
    for m in _SYSLOG_LINE.finditer(p.stderr):
        run.logs.append((int(m.group(1)) & 7, m.group(2)))
    assert run.steps, f"pam-harness ran no step: {p.stdout}{p.stderr}"
    return run


# pam_debug.so's name for each PAM management group, and the code it is told to return when
# pam_ssf.so ignored the call (a code pam_ssf.so never returns itself).
_DEBUG_KEY = {"auth": "auth", "account": "acct", "session": "open_session", "password": "chauthtok"}
PAM_NO_MODULE_DATA = 18


def probe_lines(group, args=""):
    """A stack that makes the module's own return code visible to the application: libpam turns
    a stack whose only module ignores the call into PAM_PERM_DENIED, so an ignore goes on to
    pam_debug.so returning PAM_NO_MODULE_DATA, which run_module() maps back to PAM_IGNORE."""
    return [f"{group} [success=done ignore=ignore default=die] {{module}} {args}".rstrip(),
            f"{group} required pam_debug.so {_DEBUG_KEY[group]}=no_module_data"]


def run_module(tmp_dir, group, args, user, steps=None, **kw):
    """Runs pam_ssf.so alone in `group` (auth, account, session) with `args` and returns a
    PamRun whose codes are the module's own (PAM_IGNORE included)."""
    if steps is None:
        steps = {"auth": ("auth",), "account": ("account",), "session": ("open_session",),
                 "password": ("chauthtok",)}[group]
    run = run_pam(tmp_dir, probe_lines(group, args), user, steps=steps, **kw)
    fix = {PAM_NO_MODULE_DATA: PAM_IGNORE}
    run.steps = [(s, fix.get(c, c)) for s, c in run.steps]
    run.results = {s: fix.get(c, c) for s, c in run.results.items()}
    # pam_debug.so announces itself through the conversation; that is not pam_ssf.so talking.
    marker = f"{_DEBUG_KEY[group]}=no_module_data"
    run.errors = [m for m in run.errors if m != marker]
    run.infos = [m for m in run.infos if m != marker]
    return run


def wait_for(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
