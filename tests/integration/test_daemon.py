# SPDX-License-Identifier: MIT
"""ssf-sessiond behaviour beyond the seed scenario: replay, unmapped subjects, level-carrying
events, out-of-order delivery, restarts, reload, shutdown, --check-config."""

import os
import signal
import time

from pam_support import PAM_PERM_DENIED, PAM_SUCCESS, run_pam
import support
from support import wait_for

RULES = support.LOGOUT_HIGH_RULES


def pam_account(tmp_path, d, user, args=""):
    # A real stack: pam_ssf, then pam_permit standing in for pam_unix (a stack of only
    # PAM_IGNORE answers is a denial in libpam).
    return run_pam(tmp_path, [f"account required {{module}} socket={d.socket} "
                              f"snapshot={d.snapshot} {args}", "account required pam_permit.so"],
                   user, env=d.nss_env()).code


def test_replayed_jti_is_acknowledged_once_applied(daemon_factory, transmitter, logind, users):
    d = daemon_factory(rules=RULES)
    logind.add_session("c1", users.uid("alice"), "alice")
    out = transmitter.send_event_full("session-revoked", email="alice@example.com")
    transmitter.wait_acked(out["jti"])
    logind.wait_terminated("c1")
    logind.add_session("c2", users.uid("alice"), "alice")
    # The same SET again (a redelivery): acknowledged, not applied twice.
    transmitter.reset()
    transmitter.send_raw(out["jti"], out["token"])
    transmitter.wait_acked(out["jti"])
    wait_for(lambda: d.ctl("status")["counters"]["sets_duplicate"] >= 1, 20,
             "the duplicate to be counted")
    assert "c2" not in logind.terminated()
    assert len(d.ctl("history", "alice")["entries"]) == 1


def test_unmapped_subject_acknowledged_and_recorded(daemon_factory, transmitter, logind, users):
    d = daemon_factory(rules=RULES)
    j1 = transmitter.send_event("session-revoked", email="mallory@other.example")
    j2 = transmitter.send_event("session-revoked", email="nosuchuser@example.com")
    transmitter.wait_acked(j1)
    transmitter.wait_acked(j2)
    st = d.ctl("status")
    assert st["counters"]["subjects_unmapped"] == 2
    # (the verification the daemon asks for at start is in history too, about nobody)
    results = [e["result"] for e in d.ctl("history")["entries"] if e.get("jti") in (j1, j2)]
    assert len(results) == 2 and all(r.startswith("unmapped") for r in results), results
    assert d.ctl("users")["users"] == []


def test_risk_level_change_carries_level_up_and_down(daemon_factory, transmitter, users,
                                                     tmp_path):
    d = daemon_factory(rules="[rule record]\naction = none\n")
    j = transmitter.send_event("risk-level-change", email="bob@example.com",
                               payload={"principal": "USER", "current_level": "HIGH"})
    transmitter.wait_acked(j)
    assert d.ctl("risk", "bob")["level"] == "high"
    assert pam_account(tmp_path, d, "bob") == PAM_PERM_DENIED
    j = transmitter.send_event("risk-level-change", email="bob@example.com",
                               payload={"principal": "USER", "current_level": "LOW"})
    transmitter.wait_acked(j)
    assert d.ctl("risk", "bob")["level"] == "low"
    assert pam_account(tmp_path, d, "bob") == PAM_SUCCESS
    # An older event (event_timestamp in the past) does not override the newer one.
    j = transmitter.send_event("risk-level-change", email="bob@example.com",
                               payload={"principal": "USER", "current_level": "HIGH",
                                        "event_timestamp": 1000000000})
    transmitter.wait_acked(j)
    assert d.ctl("risk", "bob")["level"] == "low"
    assert d.ctl("history", "bob")["entries"][0]["result"].startswith("stale")


def test_compliant_again_clears_the_detection(daemon_factory, transmitter, users):
    d = daemon_factory(rules="[rule record]\naction = none\n")
    j = transmitter.send_event("device-compliance-change", email="bob@example.com")
    transmitter.wait_acked(j)
    assert d.ctl("risk", "bob")["level"] == "high"
    j = transmitter.send_event("device-compliance-change", email="bob@example.com",
                               payload={"previous_status": "not-compliant",
                                        "current_status": "compliant"})
    transmitter.wait_acked(j)
    assert d.ctl("risk", "bob")["level"] == "none"


def test_invalid_claims_reported_in_seterrs(daemon_factory, transmitter, users):
    d = daemon_factory(rules=RULES)
    cases = {
        "aud": ({"claims": {"aud": "https://someone-else.example/ssf"}}, "invalid_audience"),
        "iss": ({"claims": {"iss": "https://evil.example"}}, "invalid_issuer"),
        "exp": ({"claims": {"exp": 4102444800}}, "invalid_request"),
        "typ": ({"tamper": "typ"}, "invalid_request"),
        "none": ({"tamper": "alg-none"}, None),
        # (an unknown kid is invalid_key only after a fresh JWKS fetch: test_defer.py)
        # Signed, but nothing the daemon could record: reported, not delivered forever.
        "jti": ({"claims": {"jti": "ctl\tjti"}}, "invalid_request"),
    }
    for name, (kw, want) in cases.items():
        jti = transmitter.send_event("session-revoked", email="alice@example.com", **kw)
        err = transmitter.wait_set_err(jti)
        if want:
            assert err["err"] == want, (name, err)
    assert d.ctl("risk", "alice")["level"] == "none"
    assert d.ctl("status")["counters"]["sets_rejected"] == len(cases)
    # A txn with a control character is only left out.
    jti = transmitter.send_event("session-revoked", email="alice@example.com",
                                 claims={"txn": "t\u0001"})
    transmitter.wait_acked(jti)
    assert d.ctl("risk", "alice")["level"] == "high"
    entry = [e for e in d.ctl("history", "alice")["entries"] if e["jti"] == jti][0]
    assert entry["txn"] is None, entry


def test_state_and_stream_survive_restart(daemon_factory, transmitter, users, tmp_path):
    d = daemon_factory(rules="[rule record]\naction = none\n")
    j = transmitter.send_event("credential-compromise", email="alice@example.com",
                               payload={"credential_type": "password"})
    transmitter.wait_acked(j)
    stream_id = d.ctl("status")["stream"]["stream_id"]
    assert d.stop() == 0
    # Daemon down: PAM falls back to the snapshot and still refuses alice.
    assert pam_account(tmp_path, d, "alice") == PAM_PERM_DENIED
    assert pam_account(tmp_path, d, "bob") != PAM_PERM_DENIED
    d.start()
    assert d.ctl("risk", "alice")["level"] == "high"
    wait_for(lambda: d.ctl("status")["stream"]["stream_id"] == stream_id, 20,
             "the daemon to reuse its stream")
    assert len(transmitter.streams()) == 1


def test_snapshot_journal_after_many_changes_and_kill(daemon_factory, transmitter, users, tmp_path):
    # Each change is appended to the snapshot's journal before it is acknowledged: with the
    # daemon killed (no clean shutdown, no rewrite), PAM's fallback sees the last levels.
    d = daemon_factory(rules="[rule record]\naction = none\n")
    final = {}
    for i in range(40):
        user = ("alice", "bob", "carol")[i % 3]
        if i % 4 == 3:
            d.ctl("reset", user)
            final[user] = "none"
        else:
            d.ctl("set-risk", user, ("low", "high", "medium")[i % 3])
            final[user] = ("low", "high", "medium")[i % 3]
    for user, level in (("alice", "medium"), ("carol", "high"), ("bob", "none")):
        d.ctl("reset", user) if level == "none" else d.ctl("set-risk", user, level)
        final[user] = level
    assert {u: d.ctl("risk", u)["level"] for u in final} == final
    with open(d.snapshot + ".journal") as f:
        journal = f.read()
    assert journal.startswith("# ssf-sessiond pam-journal v1\n") and journal.count("\n") > 40
    d.kill()
    # With pam_ssf.so's default deny=high, carol (high) is refused, alice (medium) and bob
    # (none) are let in; with deny=medium alice is refused too.
    assert pam_account(tmp_path, d, "carol") == PAM_PERM_DENIED
    assert pam_account(tmp_path, d, "alice") != PAM_PERM_DENIED
    assert pam_account(tmp_path, d, "alice", args="deny=medium") == PAM_PERM_DENIED
    assert pam_account(tmp_path, d, "bob", args="deny=low") != PAM_PERM_DENIED
    # A torn last line (a crash mid-append) makes the snapshot unusable: failmode decides,
    # never a half-read file.
    with open(d.snapshot + ".journal", "a") as f:
        f.write("2003 no")
    rc = pam_account(tmp_path, d, "carol", args="failmode=open")
    assert rc != PAM_PERM_DENIED
    assert pam_account(tmp_path, d, "carol", args="failmode=closed") != PAM_SUCCESS
    # At start the daemon rebuilds both files from state.db. (The killed daemon left its
    # socket behind: start() waits for a new one.)
    os.unlink(d.socket)
    d.start()
    assert d.ctl("risk", "carol")["level"] == "high"
    d.stop()
    assert pam_account(tmp_path, d, "carol", args="failmode=open") == PAM_PERM_DENIED


def test_poll_answer_committed_as_one_batch(daemon_factory, transmitter, logind, users):
    # 50 SETs waiting when the daemon starts come in one poll answer: all are applied (in one
    # transaction) and acknowledged together in the next request, each exactly once.
    d = daemon_factory(rules="[rule record]\naction = none\n")
    transmitter.wait_acked(transmitter.send_event("session-revoked", email="carol@example.com"))
    assert d.stop() == 0  # its stream is kept: the SETs below wait on it
    names = ("alice", "bob", "carol")
    jtis = {}
    for i in range(50):
        user = names[i % 3]
        jtis[transmitter.send_event("session-revoked", email=f"{user}@example.com")] = user
    d.start()
    for jti in jtis:
        transmitter.wait_acked(jti)

    # The transmitter records acknowledgements when a request arrives and logs the request once
    # it has answered it: the poll that carried them may still be being answered (or held as a
    # long poll) when the last one is recorded.
    def logged():
        a = transmitter.acks()
        polls = [r for r in a["requests"] if r["path"].startswith("/ssf/poll/")]
        big = max(r.get("sets", 0) for r in polls)
        return (a, polls, big) if any(r.get("acks") == big for r in polls) else None
    try:
        a, polls, big = wait_for(logged, 20, "the poll that carried the acknowledgements")
    except support.WaitTimeout:
        a = transmitter.acks()
        polls = [r for r in a["requests"] if r["path"].startswith("/ssf/poll/")]
        raise AssertionError([(r.get("sets"), r.get("acks")) for r in polls]) from None
    # (The long poll the stopped daemon left may have taken the first SET; the transmitter
    # delivers it again.)
    assert big >= 49, [(r.get("sets"), r.get("acks")) for r in polls]
    assert sorted(j for j in a["acked"] if j in jtis) == sorted(jtis)
    entries = d.ctl("history", "-n", "1000")["entries"]
    by_jti = {}
    for e in entries:
        by_jti.setdefault(e["jti"], []).append(e)
    for jti, user in jtis.items():
        assert len(by_jti.get(jti, [])) == 1 and by_jti[jti][0]["user"] == user, (jti, by_jti.get(jti))
    status = d.ctl("status")["counters"]
    assert status["sets_duplicate"] == 0
    assert all(d.ctl("risk", u)["level"] == "high" for u in names)


def test_next_poll_is_sent_while_a_backlog_is_verified(daemon_factory, transmitter, logind,
                                                        users):
    # A backlog: as soon as an answer says there is more, the next poll goes out, and the
    # transmitter serves it while the worker verifies the SETs of the answer. That poll
    # acknowledges what was committed when it went out, so never a SET of the answer just
    # before it (a poll made after them would: with 1,000 SETs an answer fills four hand-overs
    # to root, and the fourth waits for root's answer to the first). Nothing is lost or
    # acknowledged before its commit, nothing applied twice.
    d = daemon_factory(rules="[rule record]\naction = none\n",
                       transmitter_opts={"poll_max_events": 1000})
    transmitter.wait_acked(transmitter.send_event("session-revoked", email="carol@example.com"))
    assert d.stop() == 0  # its stream is kept: the SETs below wait on it
    transmitter.configure(log_jtis=True)
    names = ("alice", "bob", "carol")
    events = [{"event": "session-revoked", "email": f"{names[i % 3]}@example.com"}
              for i in range(2600)]
    jtis = [o["jti"] for o in transmitter.control("POST", "events", {"events": events})["events"]]
    started = transmitter.acks()["now"]
    d.start()
    want = set(jtis)

    def polls_of(a):
        # (The long poll the stopped daemon left may have taken SETs: delivered again later.)
        return [r for r in a["requests"] if r["path"].startswith("/ssf/poll/")
                and "sets_jtis" in r and r["time"] >= started]

    def drained():
        # Acknowledged, and the polls that delivered them logged (once answered).
        a = transmitter.acks()
        delivered = {j for r in polls_of(a) for j in r["sets_jtis"]}
        return a if want <= set(a["acked"]) and want <= delivered else None
    a = wait_for(drained, 60, "the backlog to be acknowledged", interval=0.2)
    polls = polls_of(a)
    full = [(p, q) for p, q in zip(polls, polls[1:]) if len(p["sets_jtis"]) == 1000]
    assert len(full) >= 2, [(r["sets"], r["acks"]) for r in polls]
    for p, q in full:
        assert not set(q["acked_jtis"]) & set(p["sets_jtis"]), \
            [(r["sets"], r["acks"]) for r in polls]
    delivered = [j for r in polls for j in r["sets_jtis"] if j in want]
    assert sorted(delivered) == sorted(want)  # each delivered once: none left to redelivery
    assert want <= set(a["acked"])
    status = d.ctl("status")["counters"]
    assert status["sets_duplicate"] == 0
    history = d.ctl("history", "-n", "5000")["entries"]
    assert sorted(e["jti"] for e in history if e["jti"] in want) == sorted(want)


def test_logind_mock_stamps_calls_to_the_microsecond(daemon_factory, transmitter, logind, users):
    # What bench/ times signal to logout with: the stand-in's own stamp of the call, taken as it
    # arrives, between the SET being queued and the test seeing the session gone.
    d = daemon_factory(rules=RULES)
    logind.add_session("m1", users.uid("alice"), "alice")
    t0 = time.time()
    transmitter.send_event("session-revoked", email="alice@example.com")
    logind.wait_terminated("m1")
    t1 = time.time()
    stamps = logind.call_times("TerminateSession")
    assert [s for _, s in stamps] == ["m1"], stamps
    assert t0 <= stamps[0][0] <= t1
    assert d.running()


def test_sighup_with_bad_config_keeps_running(daemon_factory, transmitter, users):
    d = daemon_factory(rules=RULES)
    # The network worker reads the same file when it starts: let it start on the good one.
    transmitter.wait_stream()
    good = d.config_text
    d.write_config(good + "\n[rule broken]\nlevels = high\n")  # no action
    d.signal(signal.SIGHUP)
    wait_for(lambda: "keeping the running one" in d.log(), 20, "the reload to be refused")
    assert d.running()
    j = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(j)
    assert d.ctl("risk", "bob")["level"] == "high"


def test_sigterm_exits_zero(daemon_factory, transmitter, users):
    d = daemon_factory(rules=RULES)
    transmitter.wait_polls(1)
    assert d.stop(timeout=5) == 0


def test_check_config_names_file_and_line(daemon_factory, transmitter, users):
    d = daemon_factory(rules=RULES, start=False)
    cp = d.check_config()
    assert cp.returncode == 0, cp.stderr
    d.write_config(d.config_text + "\n[rule bad]\nlevels = high\naction = explode\n")
    cp = d.check_config()
    assert cp.returncode == 1
    lines = d.config_text.count("\n")
    assert f"{d.config_path}:{lines}" in cp.stderr, cp.stderr


def _children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append((int(entry), [c.decode() for c in cmdline if c]))
    return out


def _status(pid):
    with open(f"/proc/{pid}/status") as f:
        return {k: v.strip() for k, v in (line.split(":", 1) for line in f if ":" in line)}


def _ids(pid):
    fields = _status(pid)
    return (fields["Uid"].split(), fields["Gid"].split(), fields["Groups"].split(),
            fields["NoNewPrivs"])


def test_network_bytes_are_parsed_unprivileged(daemon_factory, transmitter, users):
    """PRODUCT.md least privilege: the process that talks HTTP and parses JSON/JWS is not
    root, has no supplementary groups, cannot regain privileges and runs under its seccomp
    filter (receiver/sandbox.c); the daemon is root."""
    d = daemon_factory(rules=RULES)
    transmitter.wait_polls(1)
    workers = [(pid, argv) for pid, argv in _children(d.proc.pid) if "--network-worker" in argv]
    assert len(workers) == 1, _children(d.proc.pid)
    uid, gid, groups, nnp = _ids(workers[0][0])
    assert set(uid) == {str(users.uid("ssf-sessiond"))}, uid
    assert "0" not in gid and groups == [], (gid, groups)
    assert nnp == "1"
    # Seccomp mode 2 (a filter), applied by the worker itself: the daemon runs outside any
    # systemd unit here.
    assert _status(workers[0][0])["Seccomp"] == "2"
    assert _status(d.proc.pid)["Seccomp"] == "0"
    assert _ids(d.proc.pid)[0][0] == "0"
    assert "seccomp filter applied" in d.log()
    # And it still works end to end, with the same worker (not one the filter killed and the
    # daemon restarted).
    j = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(j)
    assert d.ctl("risk", "bob")["level"] == "high"
    assert [pid for pid, argv in _children(d.proc.pid) if "--network-worker" in argv] == \
        [workers[0][0]]
    assert "killed by signal" not in d.log()


def test_killed_worker_is_restarted(daemon_factory, transmitter, users, tmp_path):
    d = daemon_factory(rules=RULES)
    transmitter.wait_polls(1)
    (pid, _), = [c for c in _children(d.proc.pid) if "--network-worker" in c[1]]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: [c for c in _children(d.proc.pid) if "--network-worker" in c[1]
                      and c[0] != pid], 20, "a new network worker")
    # PAM answered meanwhile and events flow again.
    assert pam_account(tmp_path, d, "bob") == PAM_SUCCESS
    j = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(j, timeout=30)
    assert d.ctl("risk", "bob")["level"] == "high"


def test_hung_worker_is_killed_without_cap_kill(daemon_factory, transmitter, users, tmp_path):
    """The unit grants no CAP_KILL; the daemon must still be able to kill a worker that hangs
    (here: stopped) when it replaces it."""
    d = daemon_factory(rules=RULES, start=False)
    wrapper = tmp_path / "no-cap-kill"
    wrapper.write_text(f"#!/bin/sh\nexec setpriv --bounding-set -kill -- {d.binary} \"$@\"\n")
    wrapper.chmod(0o755)
    d.binary = str(wrapper)
    d.start()
    with open(f"/proc/{d.proc.pid}/status") as f:
        capbnd = int(next(l for l in f if l.startswith("CapBnd:")).split()[1], 16)
    assert not capbnd & (1 << 5), "CAP_KILL should be dropped for this test"
    transmitter.wait_polls(1)
    (old, _), = [c for c in _children(d.proc.pid) if "--network-worker" in c[1]]
    os.kill(old, signal.SIGSTOP)  # hangs: it will not read its stop request
    d.signal(signal.SIGHUP)       # replaced: the old one gets a few seconds, then SIGKILL
    wait_for(lambda: not os.path.exists(f"/proc/{old}"), 20, f"the hung worker {old} to be killed")
    assert "did not stop in time" in d.log()
    j = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(j, timeout=30)
    assert d.ctl("risk", "bob")["level"] == "high"
    assert d.stop(timeout=5) == 0


def test_periodic_stream_verification(daemon_factory, transmitter, users):
    """[transmitter] verify_interval: the daemon asks for verification events by itself and
    records when the last one arrived."""
    d = daemon_factory(rules=RULES, transmitter_opts={"verify_interval": "2s"})

    def verified():
        st = d.ctl("status")["stream"]
        return st["last_verified"] and st
    first = wait_for(verified, 30, "a verification event requested by the daemon")["last_verified"]
    assert first
    wait_for(lambda: d.ctl("status")["stream"]["last_verified"] != first, 30,
             "a second verification a few seconds later")
    assert d.ctl("status")["counters"]["sets_rejected"] == 0


def test_ssfctl_verify_round_trip(daemon_factory, transmitter, users):
    d = daemon_factory(rules=RULES)
    wait_for(lambda: d.ctl("status")["stream"]["stream_id"], 20, "the stream")
    out = d.ctl("verify", timeout=60)
    assert out["received"] is True, out
    assert out["result"] == "received"
    # It is recorded as a stream event, not about anyone.
    events = [e["event"] for e in d.ctl("history")["entries"]]
    assert "verification" in events


def test_stream_status_read_at_setup(daemon_factory, transmitter, users):
    """A stream paused while the daemon was not looking (no stream-updated event reached it)
    shows as paused once the worker sets up again, and enabled after it is resumed."""
    d = daemon_factory(rules=RULES)
    stream_id = wait_for(lambda: d.ctl("status")["stream"]["stream_id"], 20, "the stream")
    assert d.ctl("status")["stream"]["status"] == "enabled"
    for status in ("paused", "enabled"):
        code, _, out = transmitter.request("POST", "/ssf/status",
                                           {"stream_id": stream_id, "status": status})
        assert code == 200, out
        d.signal(signal.SIGHUP)  # a new worker sets the stream up and reads its status
        wait_for(lambda: d.ctl("status")["stream"]["status"] == status, 20,
                 f"the daemon to report the stream {status}")
    assert "Transmitter reports stream" in d.log()


def test_stream_status_checked_while_polling(daemon_factory, transmitter, users):
    """A poll receiver reads the stream status every inactivity_timeout / 2 (here 2 s): a
    pause made without a stream-updated event shows without a reload, and so does the
    resume."""
    transmitter.configure(inactivity_timeout=4)
    d = daemon_factory(rules=RULES)
    stream_id = wait_for(lambda: d.ctl("status")["stream"]["stream_id"], 20, "the stream")
    for status in ("paused", "enabled"):
        code, _, out = transmitter.request("POST", "/ssf/status",
                                           {"stream_id": stream_id, "status": status})
        assert code == 200, out
        wait_for(lambda: d.ctl("status")["stream"]["status"] == status, 30,
                 f"the daemon to report the stream {status}")
    assert "enabled again" in d.log()
    assert "inactivity_pauses" not in transmitter.acks()["counters"]
