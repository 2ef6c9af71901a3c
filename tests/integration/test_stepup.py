# SPDX-License-Identifier: MIT
"""Risk-adaptive PAM (PRODUCT.md "Risk-adaptive PAM (step-up)") and CAEP reason_user in the
denial message (PRODUCT.md "Actions"): the real pam_ssf.so under a real libpam (pam_wrapper),
with a real second factor, pam_matrix.so from pam_wrapper, after `pam_ssf.so below=medium`:

    auth     required                    pam_permit.so          (the first factor)
    auth     [success=1 default=ignore]  pam_ssf.so below=medium
    auth     required                    pam_matrix.so          (the second factor)
    account  required                    pam_ssf.so deny=high

against a scripted daemon (FakeDaemon: hostile bytes, audit mode, exact replies) and against
the real ssf-sessiond fed by the local transmitter."""

import glob
import os
import sqlite3
import struct
from syslog import LOG_ERR, LOG_INFO, LOG_WARNING

import pytest

from pam_support import (PAM_AUTHINFO_UNAVAIL, PAM_IGNORE, PAM_PERM_DENIED, PAM_REPLY, PAM_SERVICE_ERR, PAM_SUCCESS,
                         TAG_DETECTION, TAG_LEVEL, TAG_MESSAGE, TAG_STATUS, TAG_USER, LEVELS,
                         FakeDaemon, encode_frame, harness_path, module_path, run_module, run_pam)

pytestmark = pytest.mark.skipif(not module_path().exists() or not harness_path().exists(),
                                reason="build pam_ssf.so and helpers/pam-harness first")

PAM_AUTH_ERR = 7
TAG_DRY_RUN, TAG_REASON_USER = 13, 14
SECRET = "correct horse battery staple"
SNAPSHOT_HEADER = "# ssf-sessiond pam-snapshot v2"
GENERIC = "Access denied. Contact your administrator."


def matrix_module():
    """pam_matrix.so of pam_wrapper (Debian: libpam-wrapper, scripts/install-deps.sh)."""
    found = sorted(glob.glob("/usr/lib/*/pam_wrapper/pam_matrix.so") +
                   glob.glob("/usr/lib/pam_wrapper/pam_matrix.so"))
    assert found, "pam_matrix.so (package libpam-wrapper) is not installed"
    return found[0]


def reply(level, detection=None, message=None, reason_user=None, dry_run=False):
    """A PAM_REPLY; reason_user may be bytes (anything a hostile daemon could send)."""
    tlvs = [(TAG_STATUS, struct.pack(">i", 0)), (TAG_LEVEL, bytes([LEVELS[level]]))]
    if message is not None:
        tlvs.append((TAG_MESSAGE, message.encode()))
    if detection is not None:
        tlvs.append((TAG_DETECTION, detection.encode()))
    if dry_run:
        tlvs.append((TAG_DRY_RUN, b""))
    if reason_user is not None:
        ru = reason_user if isinstance(reason_user, bytes) else reason_user.encode()
        tlvs.append((TAG_REASON_USER, ru))
    return encode_frame(PAM_REPLY, tlvs)


def scripted(replies):
    """A FakeDaemon handler: {user: frame}; others get level none."""
    def handler(tlvs):
        return replies.get(tlvs.get(TAG_USER, b"").decode(), reply("none"))
    return handler


def denial(level, detection):
    return (f"Access denied: your account's security risk is {level} ({detection}). "
            "Contact your administrator.")


class Stack:
    """The step-up stack of the module docstring against a socket and a snapshot."""

    def __init__(self, tmp_path, users, sock, snapshot):
        self.tmp = tmp_path
        self.users = users
        self.sock = sock
        self.snapshot = snapshot
        self.passdb = str(tmp_path / "matrix-passdb")
        with open(self.passdb, "w") as f:
            for name in ("root", "alice", "bob", "carol"):
                f.write(f"{name}:{SECRET}:ssf-test\n")

    def lines(self, below_args="", account_args="deny=high"):
        where = f"socket={self.sock} snapshot={self.snapshot}"
        return [
            "auth required pam_permit.so",
            f"auth [success=1 default=ignore] {{module}} {where} below=medium {below_args}".rstrip(),
            f"auth required {matrix_module()} passdb={self.passdb}",
            f"account required {{module}} {where} {account_args}".rstrip(),
            "account required pam_permit.so",
        ]

    def login(self, user, answer=None, below_args="", account_args="deny=high",
              steps=("auth", "account")):
        return run_pam(self.tmp, self.lines(below_args, account_args), user, steps=steps,
                       answer=answer, env=self.users.env())

    def write_snapshot(self, entries=(), policy="min_uid 1000\nmax_uid 60000\nprotect root\n"):
        """entries: (user, level) pairs, written keyed by uid as the daemon does."""
        body = "".join(f"{self.users.uid(u)} {lvl} 0\n" for u, lvl in entries)
        with open(self.snapshot, "w") as f:
            f.write(SNAPSHOT_HEADER + "\n" + policy + body)
        os.chmod(self.snapshot, 0o600)


@pytest.fixture
def stack(tmp_path, users):
    return Stack(tmp_path, users, str(tmp_path / "ssf.sock"), str(tmp_path / "pam-snapshot"))


def module(stack, group, args, user, **kw):
    """pam_ssf.so alone: its own return code (PAM_IGNORE too)."""
    kw.setdefault("env", stack.users.env())
    return run_module(stack.tmp, group,
                      f"socket={stack.sock} snapshot={stack.snapshot} {args}", user, **kw)


# ---- the branch against a scripted daemon ----------------------------------------------------

@pytest.mark.parametrize("level", ["none", "low"])
def test_below_medium_is_not_asked(stack, level):
    with FakeDaemon(stack.sock, handler=scripted({"alice": reply(level, "x")})) as d:
        run = stack.login("alice")
    assert run.results == {"auth": PAM_SUCCESS, "account": PAM_SUCCESS}
    assert run.prompts == []  # pam_matrix.so never asked for its password
    assert run.messages == []
    assert d.queries[0][TAG_USER] == "alice"


def test_medium_is_asked_and_passes_only_with_the_right_answer(stack):
    with FakeDaemon(stack.sock, handler=scripted({"alice": reply("medium", "credential-change")})):
        right = stack.login("alice", answer=SECRET)
        wrong = stack.login("alice", answer="not the secret")
        empty = stack.login("alice")
    assert len(right.prompts) == 1
    assert right.results == {"auth": PAM_SUCCESS, "account": PAM_SUCCESS}
    assert len(wrong.prompts) == 1
    assert wrong.results["auth"] == PAM_AUTH_ERR
    assert empty.results["auth"] == PAM_AUTH_ERR
    # The branch tells the user nothing, and logs why the factor is asked.
    assert right.errors == [] and right.infos == []
    assert right.logged(LOG_INFO, r"User 'alice' has risk level medium \(detection "
                                  r"'credential-change'\), not below medium: the next factor")


def test_high_is_asked_then_refused_by_account(stack):
    frame = reply("high", "session-revoked", message=denial("high", "session-revoked"),
                  reason_user="Your laptop was reported stolen.")
    with FakeDaemon(stack.sock, handler=scripted({"alice": frame})):
        run = stack.login("alice", answer=SECRET)
    assert len(run.prompts) == 1
    assert run.results == {"auth": PAM_SUCCESS, "account": PAM_PERM_DENIED}
    # account names level, detection and reason_user.
    assert run.errors == [denial("high", "session-revoked") + " Your laptop was reported stolen."]


def test_module_codes_and_setcred(stack):
    with FakeDaemon(stack.sock, handler=scripted({"alice": reply("medium", "x"),
                                                  "bob": reply("low", "y"),
                                                  "carol": reply("high", "z")})):
        assert module(stack, "auth", "below=medium", "alice").code == PAM_IGNORE
        assert module(stack, "auth", "below=medium", "bob").code == PAM_SUCCESS
        assert module(stack, "auth", "below=high", "alice").code == PAM_SUCCESS
        assert module(stack, "auth", "below=low", "bob").code == PAM_IGNORE
        high = module(stack, "auth", "below=medium explain", "carol")
        # In account too (a branch there works the same way).
        assert module(stack, "account", "below=medium", "bob").code == PAM_SUCCESS
        assert module(stack, "account", "below=medium", "alice").code == PAM_IGNORE
    # Never a denial, never a word to the user, even with explain.
    assert high.code == PAM_IGNORE
    assert high.messages == []
    # setcred on a branch line is ignored, so that the jump skips no factor's credentials;
    # a deny line keeps answering success.
    # (pam_debug.so after it answers setcred with PAM_NO_MODULE_DATA, 18: reached only when
    # pam_ssf.so ignored the call.)
    def setcred(args):
        lines = [f"auth [success=done ignore=ignore default=die] {{module}} socket={stack.sock} "
                 f"{args}", "auth required pam_debug.so cred=no_module_data"]
        return run_pam(stack.tmp, lines, "alice", steps=("setcred",), env=stack.users.env()).code
    assert setcred("below=medium") == 18
    assert setcred("deny=high") == PAM_SUCCESS


def test_below_and_deny_on_one_line_are_refused(stack):
    with FakeDaemon(stack.sock, handler=scripted({"alice": reply("none")})) as d:
        run = module(stack, "auth", "below=medium deny=high", "alice")
        asked = len(d.queries)
        # In the step-up stack the broken line is skipped: the next factor is asked.
        login = stack.login("alice", answer=SECRET, below_args="deny=high")
    assert run.code == PAM_SERVICE_ERR
    assert run.logged(LOG_ERR, r"below= and deny= exclude each other .* at 'deny=high'")
    assert asked == 0  # refused before asking anyone
    assert len(login.prompts) == 1
    assert login.results == {"auth": PAM_SUCCESS, "account": PAM_SUCCESS}


def test_audit_mode_does_not_skip_the_factor(stack):
    """[daemon] dry_run admits whom PAM would refuse; a branch refuses nobody, so the second
    factor is still asked at medium (and account still admits at high, logging it)."""
    with FakeDaemon(stack.sock, handler=scripted({"alice": reply("medium", "x", dry_run=True),
                                                  "carol": reply("high", "y", dry_run=True)})):
        medium = stack.login("alice", answer=SECRET)
        high = stack.login("carol", answer=SECRET)
    assert len(medium.prompts) == 1
    assert medium.results == {"auth": PAM_SUCCESS, "account": PAM_SUCCESS}
    assert len(high.prompts) == 1
    assert high.results == {"auth": PAM_SUCCESS, "account": PAM_SUCCESS}
    assert high.errors == []


# ---- the daemon unreachable --------------------------------------------------------------------

@pytest.mark.parametrize("failmode,asked", [("failmode=closed", True), ("failmode=open", False),
                                            ("", False)])
def test_daemon_down_unknown_level(stack, failmode, asked):
    """No daemon, no snapshot: the level is unknown; closed asks the factor, open does not."""
    run = stack.login("alice", answer=SECRET, below_args=failmode, account_args="deny=high")
    assert len(run.prompts) == (1 if asked else 0)
    assert run.results["auth"] == PAM_SUCCESS
    assert run.logged(LOG_WARNING, "level unknown; failmode=%s: answering %s"
                      % ("closed" if asked else "open", "not below" if asked else "below"))
    code = module(stack, "auth", f"below=medium {failmode}", "alice").code
    assert code == (PAM_IGNORE if asked else PAM_SUCCESS)


@pytest.mark.parametrize("failmode", ["failmode=closed", "failmode=open"])
def test_daemon_down_user_not_in_snapshot(stack, failmode):
    """A snapshot that does not list the user does not make the level known."""
    stack.write_snapshot([("bob", "high")])
    code = module(stack, "auth", f"below=medium {failmode}", "alice").code
    assert code == (PAM_IGNORE if failmode == "failmode=closed" else PAM_SUCCESS)


@pytest.mark.parametrize("failmode", ["failmode=closed", "failmode=open"])
def test_daemon_down_snapshot_decides(stack, failmode):
    """A level the snapshot lists is known: failmode does not matter."""
    stack.write_snapshot([("alice", "medium"), ("bob", "low")])
    alice = stack.login("alice", answer=SECRET, below_args=failmode)
    bob = stack.login("bob", answer=SECRET, below_args=failmode)
    assert len(alice.prompts) == 1 and alice.results["auth"] == PAM_SUCCESS
    assert bob.prompts == [] and bob.results["auth"] == PAM_SUCCESS
    assert alice.logged(LOG_WARNING, "lists user 'alice' at risk level medium: not below medium")


@pytest.mark.parametrize("failmode,expected", [("failmode=closed", PAM_IGNORE),
                                               ("failmode=open", PAM_SUCCESS)])
def test_user_name_too_long_is_an_unknown_level(stack, failmode, expected):
    with FakeDaemon(stack.sock) as d:
        run = module(stack, "auth", f"below=medium {failmode}", "x" * 300)
    assert run.code == expected
    assert d.queries == []
    assert run.logged(LOG_WARNING, "User name too long")


def test_daemon_down_protected_account_is_below(stack):
    """root is never acted upon (the snapshot's protect and min_uid): below, with any failmode."""
    stack.write_snapshot([])
    run = stack.login("root", answer=SECRET, below_args="failmode=closed")
    assert run.prompts == []
    assert run.results["auth"] == PAM_SUCCESS
    assert module(stack, "auth", "below=low failmode=closed", "root").code == PAM_SUCCESS


# ---- reason_user in the denial message ---------------------------------------------------------

HOSTILE = (b"\x1b[2J\x1b]0;pwned\x07Your account\nis\tlocked\r\n\xe2\x80\xae" b"evil\xe2\x80\xac "
           b"\xff\xfe\xc0\xaf\xed\xa0\x80call \x1b[31m555\x1b[0m-0100\x9b" + b"A" * 10240)
HOSTILE_SHOWN = ("Your account is locked evil call 555-0100" + "A" * 200)[:200]
HOSTILE_JSON = ("\x1b[2J\x1b]0;pwned\x07Your account\nis\tlocked\r\n\u202eevil\u202c call "
                "\x1b[31m555\x1b[0m-0100\u009b" + "A" * 10240)


@pytest.mark.parametrize("group,args,shown", [
    ("account", "deny=high", "all"),
    ("session", "deny=high", "all"),
    ("auth", "deny=high", "generic"),
    ("auth", "deny=high explain", "all"),
    ("account", "deny=high quiet", "nothing"),
])
def test_hostile_reason_user_shown_safely(stack, group, args, shown):
    frame = reply("high", "session-revoked", message=denial("high", "session-revoked"),
                  reason_user=HOSTILE[:1024])
    with FakeDaemon(stack.sock, handler=scripted({"alice": frame})):
        run = module(stack, group, args, "alice")
    assert run.code == PAM_PERM_DENIED
    if shown == "nothing":
        assert run.messages == []
        return
    assert len(run.errors) == 1
    text = run.errors[0]
    if shown == "generic":
        # auth without explain: neither level, detection nor reason_user.
        assert text == GENERIC
        return
    assert text == denial("high", "session-revoked") + " " + HOSTILE_SHOWN
    assert not any(ord(ch) < 0x20 or 0x7f <= ord(ch) <= 0x9f or ch in "\u202e\u202c"
                   for ch in text)


def test_oversized_reason_user_is_a_malformed_reply(stack):
    """More than the protocol's limit: the reply is rejected whole (failmode decides)."""
    frame = reply("high", "x", reason_user=HOSTILE)
    with FakeDaemon(stack.sock, handler=scripted({"alice": frame})):
        run = module(stack, "account", "deny=high failmode=closed", "alice")
    assert run.code == PAM_AUTHINFO_UNAVAIL
    assert run.logged(LOG_WARNING, "malformed reply")


# ---- against the real daemon -------------------------------------------------------------------

RECORD_ONLY = "[rule record]\naction = none\n"


def risk(transmitter, user, level, reason_user=None):
    payload = {"principal": "USER", "current_level": level}
    if reason_user is not None:
        payload["reason_user"] = reason_user
    j = transmitter.send_event("risk-level-change", email=f"{user}@example.com", payload=payload)
    transmitter.wait_acked(j)


def test_stepup_and_reason_user_through_the_daemon(daemon_factory, transmitter, users, tmp_path):
    d = daemon_factory(rules=RECORD_ONLY)
    stack = Stack(tmp_path, users, d.socket, d.snapshot)
    # reason_user in several languages: English is shown.
    risk(transmitter, "alice", "MEDIUM",
         {"fr": "Connexion inhabituelle.", "en": "Unusual sign-in from a new country."})
    # Only other languages: the first.
    risk(transmitter, "bob", "LOW", {"de": "Ungewöhnliche Anmeldung.", "fr": "Connexion."})
    # Escape sequences, newlines, bidi controls, a C1 CSI and 10 kB (JSON cannot carry
    # invalid UTF-8: that case is the scripted daemon's above).
    risk(transmitter, "carol", "HIGH", HOSTILE_JSON)
    assert d.ctl("risk", "carol")["level"] == "high"
    # The admin sees what the user is told.
    assert d.ctl("risk", "alice")["detections"][0]["reason_user"] == \
        "Unusual sign-in from a new country."
    shown = d.ctl("risk", "alice", json=False).stdout
    assert "reason_user Unusual sign-in from a new country." in shown

    # bob (low) is not asked; alice (medium) is, and passes only with the right answer.
    bob = stack.login("bob", below_args="failmode=closed")
    assert bob.prompts == [] and bob.results == {"auth": PAM_SUCCESS, "account": PAM_SUCCESS}
    alice = stack.login("alice", answer=SECRET)
    assert len(alice.prompts) == 1
    assert alice.results == {"auth": PAM_SUCCESS, "account": PAM_SUCCESS}
    assert stack.login("alice", answer="guess").results["auth"] == PAM_AUTH_ERR
    # carol (high) is asked, then refused by account with her reason_user, sanitised by root.
    carol = stack.login("carol", answer=SECRET)
    assert len(carol.prompts) == 1
    assert carol.results == {"auth": PAM_SUCCESS, "account": PAM_PERM_DENIED}
    assert carol.errors == [denial("high", "risk-level-change") + " " + HOSTILE_SHOWN]
    # The protected root: level none, never asked, even with failmode=closed.
    root = stack.login("root", below_args="failmode=closed", account_args="deny=low")
    assert root.prompts == [] and root.results == {"auth": PAM_SUCCESS, "account": PAM_SUCCESS}

    # A deny line in auth: reason_user only with explain; account and session always.
    def deny(user, group, args):
        return module(stack, group, args, user)
    assert deny("alice", "auth", "deny=medium").errors == [GENERIC]
    assert deny("alice", "auth", "deny=medium explain").errors == [
        denial("medium", "risk-level-change") + " Unusual sign-in from a new country."]
    assert deny("alice", "account", "deny=medium").errors == [
        denial("medium", "risk-level-change") + " Unusual sign-in from a new country."]
    assert deny("bob", "session", "deny=low").errors == [
        denial("low", "risk-level-change") + " Ungewöhnliche Anmeldung."]

    # A later SET without reason_user at another level: the message has none.
    risk(transmitter, "bob", "MEDIUM")
    assert deny("bob", "account", "deny=low").errors == [denial("medium", "risk-level-change")]

    # Kept in the store: the same after a restart.
    assert d.stop() == 0
    d.start()
    assert deny("alice", "account", "deny=medium").errors == [
        denial("medium", "risk-level-change") + " Unusual sign-in from a new country."]
    with sqlite3.connect(os.path.join(d.state_dir, "state.db")) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] >= 5  # reason_user (schema 5)
        stored = db.execute("SELECT reason_user FROM detections WHERE uid = ?",
                            (users.uid("carol"),)).fetchone()[0]
    assert stored == HOSTILE_SHOWN  # sanitised before it was stored

    # The daemon gone: the snapshot knows alice's level (asked with either failmode) and
    # the protected accounts.
    assert d.stop() == 0
    for fm in ("failmode=open", "failmode=closed"):
        run = stack.login("alice", answer=SECRET, below_args=fm)
        assert len(run.prompts) == 1 and run.results["auth"] == PAM_SUCCESS
    root = stack.login("root", below_args="failmode=closed", steps=("auth",))
    assert root.prompts == [] and root.results["auth"] == PAM_SUCCESS
