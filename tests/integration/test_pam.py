# SPDX-License-Identifier: MIT
"""pam_ssf.so under a real libpam (pam_wrapper) against a fake ssf-sessiond."""

import os
import socket
import time
from syslog import LOG_DEBUG, LOG_ERR, LOG_NOTICE, LOG_WARNING

import pytest

from pam_support import (PAM_AUTHINFO_UNAVAIL, PAM_IGNORE, PAM_PERM_DENIED, PAM_SERVICE_ERR,
                         PAM_SESSION_ERR, PAM_SUCCESS, PAM_USER_UNKNOWN, TAG_RHOST, TAG_SERVICE,
                         TAG_TTY, TAG_USER, FakeDaemon, encode_frame, harness_path, module_path,
                         pam_reply, run_module, run_pam, PAM_REPLY, TAG_STATUS, TAG_LEVEL)

pytestmark = pytest.mark.skipif(not module_path().exists() or not harness_path().exists(),
                                reason="build pam_ssf.so and helpers/pam-harness first")

SNAPSHOT_HEADER = "# ssf-sessiond pam-snapshot v2"


@pytest.fixture
def env(tmp_path, users):
    class Env:
        sock = str(tmp_path / "ssf.sock")
        snapshot = str(tmp_path / "pam-snapshot")
        missing_snapshot = str(tmp_path / "no-such-snapshot")

        def module(self, group, args="", user="alice", **kw):
            # The module resolves the user with NSS (nss_wrapper's accounts): the snapshot is
            # keyed by uid.
            kw.setdefault("env", users.env())
            return run_module(tmp_path, group, f"socket={self.sock} snapshot={self.snapshot} {args}",
                              user, **kw)

        def account(self, args="", user="alice", **kw):
            return self.module("account", args, user, **kw)

        def write_snapshot(self, body, mode=0o600, policy="min_uid 1000\nmax_uid 60000\nprotect root\n"):
            """body's entries may name a test account; they are written keyed by its uid."""
            lines = []
            for line in body.splitlines():
                f = line.split(" ")
                if f and f[0] in [u[0] for u in users.users]:
                    f[0] = str(users.uid(f[0]))
                lines.append(" ".join(f))
            with open(self.snapshot, "w") as f:
                f.write(SNAPSHOT_HEADER + "\n" + policy + "".join(l + "\n" for l in lines))
            os.chmod(self.snapshot, mode)

    return Env()


def test_high_risk_is_denied_with_message(env):
    with FakeDaemon(env.sock, {"alice": ("high", "device-compliance-change")}) as d:
        run = env.account()
    assert run.code == PAM_PERM_DENIED
    assert run.errors == ["Access denied: your account's security risk is high "
                          "(device-compliance-change). Contact your administrator."]
    assert d.queries[0][TAG_USER] == "alice"
    assert d.queries[0][TAG_SERVICE] == "ssf-test"
    assert run.logged(LOG_NOTICE, r"Access denied for user 'alice': risk level high "
                                  r"\(detection 'device-compliance-change'\)")
    assert not any(lv == LOG_DEBUG for lv, _ in run.logs)  # debug lines only with `debug`


def test_daemon_message_is_shown(env):
    with FakeDaemon(env.sock, {"alice": ("high", "session-revoked", "Your session was revoked.\x1b[2J")}):
        run = env.account()
    assert run.code == PAM_PERM_DENIED
    # Control characters from the daemon never reach the terminal.
    assert run.errors == ["Your session was revoked.?[2J"]


def test_quiet_suppresses_message(env):
    with FakeDaemon(env.sock, {"alice": "high"}):
        run = env.account("quiet")
    assert run.code == PAM_PERM_DENIED
    assert run.messages == []
    assert run.logged(LOG_NOTICE, "Access denied for user 'alice'")


@pytest.mark.parametrize("user,levels", [("alice", {"alice": "none"}), ("bob", {"alice": "high"})])
def test_none_or_unknown_user_is_admitted(env, user, levels):
    with FakeDaemon(env.sock, levels):
        run = env.account(user=user)
    assert run.code == PAM_SUCCESS
    assert run.messages == []


@pytest.mark.parametrize("deny,level,expected", [
    ("medium", "medium", PAM_PERM_DENIED),
    ("medium", "low", PAM_SUCCESS),
    ("medium", "high", PAM_PERM_DENIED),
    ("low", "low", PAM_PERM_DENIED),
    ("high", "medium", PAM_SUCCESS),
    (None, "medium", PAM_SUCCESS),
    (None, "high", PAM_PERM_DENIED),
])
def test_deny_threshold(env, deny, level, expected):
    with FakeDaemon(env.sock, {"alice": level}):
        run = env.account(f"deny={deny}" if deny else "")
    assert run.code == expected
    if expected == PAM_PERM_DENIED:
        assert f"security risk is {level}" in run.errors[0]


def test_query_carries_rhost_and_tty(env):
    with FakeDaemon(env.sock) as d:
        run = env.account(rhost="198.51.100.7", tty="ssh")
    assert run.code == PAM_SUCCESS
    assert d.queries[0][TAG_RHOST] == "198.51.100.7"
    assert d.queries[0][TAG_TTY] == "ssh"


@pytest.mark.parametrize("failmode,expected", [("", PAM_IGNORE), ("failmode=open", PAM_IGNORE),
                                               ("failmode=closed", PAM_AUTHINFO_UNAVAIL)])
def test_daemon_down(env, failmode, expected):
    run = env.account(failmode)
    assert run.code == expected
    assert run.messages == []
    mode = "closed: refusing" if expected == PAM_AUTHINFO_UNAVAIL else "open: ignoring"
    assert run.logged(LOG_WARNING, rf"unavailable \(connect: No such file.*user 'alice': user not in "
                                   rf"snapshot; failmode={mode}")


def test_daemon_down_snapshot_lists_user_high(env):
    env.write_snapshot("alice high 0\nbob low 0\n")
    run = env.account("failmode=open")
    assert run.code == PAM_PERM_DENIED
    assert run.errors == ["Access denied: your account's security risk is high. "
                          "Contact your administrator."]
    assert run.logged(LOG_WARNING, r"snapshot '.*' lists user 'alice' at risk level high "
                                   r"\(deny=high\): access denied")
    # bob's last known level is below deny: failmode decides.
    assert env.account("failmode=closed", user="bob").code == PAM_AUTHINFO_UNAVAIL
    assert env.account("failmode=open deny=low", user="bob").code == PAM_PERM_DENIED


def test_daemon_down_protected_accounts_admitted_on_their_own(env):
    # The daemon is down and failmode=closed refuses the unknown; but the snapshot says who is
    # never acted upon (min_uid, max_uid, protect), and the module resolves the user itself.
    env.write_snapshot("alice high 0\n", policy="min_uid 1000\nmax_uid 60000\nprotect carol\n")
    run = env.account("failmode=closed", user="root")  # uid 0 < min_uid
    assert run.code == PAM_SUCCESS
    assert run.logged(LOG_NOTICE, r"user 'root' \(uid 0\) is never acted upon")
    assert env.account("failmode=closed", user="carol").code == PAM_SUCCESS  # in protect
    # Not protected: failmode decides, and alice's known level still refuses her.
    assert env.account("failmode=closed", user="bob").code == PAM_AUTHINFO_UNAVAIL
    assert env.account("failmode=open", user="alice").code == PAM_PERM_DENIED
    # A snapshot without the policy lines protects nobody on its own.
    env.write_snapshot("alice high 0\n", policy="")
    assert env.account("failmode=closed", user="root").code == PAM_AUTHINFO_UNAVAIL


def test_daemon_down_snapshot_entry_expired(env):
    env.write_snapshot(f"alice high {int(time.time()) - 3600}\n")
    assert env.account("failmode=open").code == PAM_IGNORE
    env.write_snapshot(f"alice high {int(time.time()) + 3600}\n")
    assert env.account("failmode=open").code == PAM_PERM_DENIED


@pytest.mark.parametrize("mode", [0o620, 0o602])
def test_daemon_down_untrusted_snapshot_is_ignored(env, mode):
    env.write_snapshot("alice high 0\n", mode=mode)
    run = env.account("failmode=open")
    assert run.code == PAM_IGNORE
    assert run.logged(LOG_WARNING, r"snapshot '.*' unusable: Operation not permitted; failmode=open")
    assert env.account("failmode=closed").code == PAM_AUTHINFO_UNAVAIL


def test_daemon_down_snapshot_symlink_is_ignored(env, tmp_path):
    real = tmp_path / "real-snapshot"
    real.write_text(SNAPSHOT_HEADER + "\nalice high 0\n")
    os.chmod(real, 0o600)
    os.symlink(real, env.snapshot)
    assert env.account("failmode=open").code == PAM_IGNORE


def test_daemon_up_wins_over_snapshot(env):
    env.write_snapshot("alice high 0\n")
    with FakeDaemon(env.sock, {"alice": "none"}):
        assert env.account().code == PAM_SUCCESS


@pytest.mark.parametrize("failmode,expected", [("failmode=open", PAM_IGNORE),
                                               ("failmode=closed", PAM_AUTHINFO_UNAVAIL)])
def test_slow_daemon_times_out(env, failmode, expected):
    with FakeDaemon(env.sock, {"alice": "none"}, mode="silent") as d:
        run = env.account(f"timeout=200 {failmode}")
        assert d.queries, "the module should have sent its query"
    assert run.code == expected
    assert run.logged(LOG_WARNING, r"unavailable \(receive: timed out\)")


def test_slow_daemon_snapshot_decides(env):
    env.write_snapshot("alice high 0\n")
    with FakeDaemon(env.sock, mode="silent"):
        run = env.account("timeout=200 failmode=open")
    assert run.code == PAM_PERM_DENIED


@pytest.mark.parametrize("garbage", [
    b"\x00garbage\xff" * 3,
    encode_frame(PAM_REPLY, [(TAG_STATUS, b"\0\0\0\0")]),                         # no LEVEL
    encode_frame(PAM_REPLY, [(TAG_STATUS, b"\0\0\0\0"), (TAG_LEVEL, b"\x09")]),     # bad level
    encode_frame(PAM_REPLY, [(TAG_STATUS, b"\0\0\0\0"), (TAG_LEVEL, b"\x03")], version=2),
    encode_frame(PAM_REPLY, [(TAG_STATUS, b"\0\0\0\0"), (TAG_LEVEL, b"\x03")], length=3),
    encode_frame(PAM_REPLY, [(TAG_STATUS, b"\0\0\0\0"), (TAG_LEVEL, b"\x03"), (TAG_USER, b"x")]),
    encode_frame(1, [(TAG_USER, b"alice")]),                                       # a query
    pam_reply("high") + b"\0",                                                    # trailing byte
])
@pytest.mark.parametrize("failmode,expected", [("failmode=open", PAM_IGNORE),
                                               ("failmode=closed", PAM_AUTHINFO_UNAVAIL)])
def test_garbage_reply(env, garbage, failmode, expected):
    with FakeDaemon(env.sock, mode="garbage", garbage=garbage):
        run = env.account(failmode)
    assert run.code == expected
    assert run.logged(LOG_WARNING, r"unavailable \((receive|reply): malformed reply")


def test_oversize_reply(env):
    big = pam_reply("none") + b"x" * (64 * 1024)
    with FakeDaemon(env.sock, mode="garbage", garbage=big):
        assert env.account("failmode=closed").code == PAM_AUTHINFO_UNAVAIL


@pytest.mark.parametrize("mode", ["close", "error"])
def test_daemon_closes_or_reports_error(env, mode):
    with FakeDaemon(env.sock, {"alice": "none"}, mode=mode):
        assert env.account("failmode=closed").code == PAM_AUTHINFO_UNAVAIL
        assert env.account("failmode=open").code == PAM_IGNORE


@pytest.mark.parametrize("args", ["bogus", "deny=none", "deny=HIGH", "failmode=maybe", "timeout=abc",
                                  "timeout=0", "timeout=-5", "socket=relative", "snapshot=",
                                  "debug=1", "timeout=99999999999"])
def test_bad_argument_is_service_error(env, args):
    with FakeDaemon(env.sock, {"alice": "none"}) as d:
        run = env.account(args)
    assert run.code == PAM_SERVICE_ERR
    assert d.queries == []
    assert run.logged(LOG_ERR, f"module argument '{args}'")


def test_debug_and_capped_timeout_are_accepted(env):
    with FakeDaemon(env.sock, {"alice": "none"}):
        run = env.account("debug timeout=60000")
    assert run.code == PAM_SUCCESS
    assert run.logged(LOG_DEBUG, r"checking user 'alice' \(deny=high, failmode=open, timeout=10000ms\)")
    assert run.logged(LOG_DEBUG, r"user 'alice' has risk level none")


def test_socket_path_not_a_socket(env, tmp_path):
    with open(env.sock, "w") as f:
        f.write("not a socket\n")
    assert env.account("failmode=open").code == PAM_IGNORE
    assert env.account("failmode=closed").code == PAM_AUTHINFO_UNAVAIL


def test_stale_socket_without_listener(env):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.bind(env.sock)
    s.close()
    assert env.account("failmode=closed").code == PAM_AUTHINFO_UNAVAIL


def test_fds_0_to_2_closed(env):
    with FakeDaemon(env.sock, {"alice": "high"}) as d:
        run = env.account(close_stdio=True)
    assert run.code == PAM_PERM_DENIED
    assert d.queries
    with FakeDaemon(env.sock, {"alice": "none"}):
        assert env.account(close_stdio=True).code == PAM_SUCCESS


GENERIC_DENIAL = "Access denied. Contact your administrator."


def test_auth_phase(env):
    with FakeDaemon(env.sock, {"alice": ("high", "credential-compromise"), "bob": "low"}):
        run = env.module("auth")
        assert run.code == PAM_PERM_DENIED
        assert run.errors == [GENERIC_DENIAL]
        assert env.module("auth", steps=("setcred",)).code == PAM_SUCCESS
        assert env.module("auth", user="bob").code == PAM_SUCCESS
    assert env.module("auth", "failmode=closed", user="bob").code == PAM_AUTHINFO_UNAVAIL
    assert env.module("auth", "failmode=open", user="bob").code == PAM_IGNORE


def test_auth_phase_names_nothing_without_explain(env):
    """PRODUCT.md, risk-adaptive PAM: before the user has proved anything (auth), the denial
    names neither the level nor the detection, nor the daemon's own text (which names both):
    a client must not learn who is at risk, or why. The log still says everything."""
    levels = {"alice": ("high", "credential-compromise",
                        "Access denied: your account's security risk is high "
                        "(credential-compromise). Contact your administrator."),
              "bob": ("medium", "device-compliance-change")}
    with FakeDaemon(env.sock, levels):
        for user in ("alice", "bob"):
            run = env.module("auth", "deny=medium", user=user)
            assert run.code == PAM_PERM_DENIED
            assert run.errors == [GENERIC_DENIAL], run.errors
            assert run.infos == []
            text = " ".join(run.messages).lower()
            for word in ("high", "medium", "risk", "compromise", "compliance"):
                assert word not in text, (word, run.messages)
            assert run.logged(LOG_NOTICE, rf"Access denied for user '{user}': risk level "
                                          rf"{levels[user][0]} \(detection '{levels[user][1]}'\)")
        # explain: the auth phase says it all, as account does.
        run = env.module("auth", "explain", user="alice")
        assert run.code == PAM_PERM_DENIED
        assert run.errors == [levels["alice"][2]]
        run = env.module("auth", "explain deny=medium", user="bob")
        assert run.errors == ["Access denied: your account's security risk is medium "
                              "(device-compliance-change). Contact your administrator."]
        # quiet wins over explain.
        run = env.module("auth", "explain quiet", user="alice")
        assert run.code == PAM_PERM_DENIED and run.messages == []
        # account and session always name them, explain or not.
        for group in ("account", "session"):
            run = env.module(group, user="alice")
            assert run.code == PAM_PERM_DENIED
            assert run.errors == [levels["alice"][2]]
            run = env.module(group, "deny=medium", user="bob")
            assert "medium" in run.errors[0] and "device-compliance-change" in run.errors[0]


def test_auth_phase_snapshot_denial_names_nothing(env):
    """The same when the daemon is down and the snapshot refuses."""
    env.write_snapshot("alice high 0\n")
    run = env.module("auth")
    assert run.code == PAM_PERM_DENIED
    assert run.errors == [GENERIC_DENIAL]
    run = env.module("auth", "explain")
    assert run.code == PAM_PERM_DENIED
    assert run.errors == ["Access denied: your account's security risk is high. "
                          "Contact your administrator."]
    run = env.module("account")
    assert "security risk is high" in run.errors[0]


def test_explain_is_a_plain_flag(env):
    with FakeDaemon(env.sock, {"alice": "high"}):
        run = env.module("auth", "explain=yes")
    assert run.code == PAM_SERVICE_ERR
    assert run.logged(LOG_ERR, "Unknown or invalid module argument 'explain=yes'")


def test_session_phase(env):
    with FakeDaemon(env.sock, {"alice": "high", "bob": "none"}):
        run = env.module("session")
        assert run.code == PAM_PERM_DENIED
        assert run.errors and "security risk is high" in run.errors[0]
        assert env.module("session", steps=("close_session",)).code == PAM_SUCCESS
        assert env.module("session", user="bob").code == PAM_SUCCESS
    assert env.module("session", "failmode=closed", user="bob").code == PAM_SESSION_ERR
    assert env.module("session", "failmode=open", user="bob").code == PAM_IGNORE
    # Closing a session never depends on the daemon.
    assert env.module("session", "failmode=closed", user="bob",
                      steps=("close_session",)).code == PAM_SUCCESS


def test_realistic_account_stack(env, tmp_path):
    """account required pam_ssf.so + pam_permit.so: fail-open lets the login through."""
    lines = [f"account required {{module}} socket={env.sock} snapshot={env.snapshot}",
             "account required pam_permit.so"]
    assert run_pam(tmp_path, lines, "alice").code == PAM_SUCCESS          # daemon down, open
    closed = [lines[0] + " failmode=closed", lines[1]]
    assert run_pam(tmp_path, closed, "alice").code == PAM_AUTHINFO_UNAVAIL
    with FakeDaemon(env.sock, {"alice": "high"}):
        run = run_pam(tmp_path, lines, "alice")
        assert run.code == PAM_PERM_DENIED
        assert len(run.errors) == 1
        assert run_pam(tmp_path, lines, "bob").code == PAM_SUCCESS


def test_chauthtok_is_ignored(env):
    with FakeDaemon(env.sock, {"alice": "high"}) as d:
        assert env.module("password").code == PAM_IGNORE
    assert d.queries == []


def test_overlong_user_is_refused(env):
    with FakeDaemon(env.sock) as d:
        run = env.account(user="a" * 300)
    assert run.code == PAM_USER_UNKNOWN
    assert d.queries == []


def test_untrusted_peer(env):
    """A daemon that dropped to nobody before listen(): SO_PEERCRED says 65534, not root."""
    if os.getuid() != 0:
        pytest.skip("needs root to change uid")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: bind as root, become nobody, answer "none" to everybody
        try:
            os.close(r)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.bind(env.sock)
            os.setgid(65534)
            os.setuid(65534)
            s.listen(4)
            os.write(w, b"x")
            s.settimeout(10)
            while True:
                c, _ = s.accept()
                c.settimeout(5)
                c.recv(65536)
                c.send(pam_reply("none"))
                c.close()
        finally:
            os._exit(0)
    os.close(w)
    try:
        assert os.read(r, 1) == b"x"
        run = env.account("failmode=closed")
        assert run.code == PAM_AUTHINFO_UNAVAIL
        assert run.logged(LOG_WARNING, "connect: socket or peer not owned by root")
        assert env.account("failmode=open").code == PAM_IGNORE
    finally:
        os.close(r)
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_socket_not_owned_by_root(env):
    if os.getuid() != 0:
        pytest.skip("needs root to chown")
    with FakeDaemon(env.sock, {"alice": "none"}) as d:
        os.chown(env.sock, 65534, 65534)
        assert env.account("failmode=closed").code == PAM_AUTHINFO_UNAVAIL
        assert d.queries == []
