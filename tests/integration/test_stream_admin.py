# SPDX-License-Identifier: MIT
"""Stream and subject administration through ssfctl (PRODUCT.md "Several transmitters", SSF
§8.1): the receiver's status update (pause, resume, disable), deleting and creating the stream,
adding and removing subjects (a local user's, or one given as JSON), `subjects = local` against
a transmitter with default_subjects = NONE, refusals of unprivileged callers, and the
transmitter's errors as the admin sees them."""

import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

import support
from support import wait_for

RULES = support.LOGOUT_HIGH_RULES


@pytest.fixture
def sockdir():
    """A socket directory everyone may traverse (tmp_path is private to root), so that
    ssfctl running as an unprivileged user reaches the 0666 socket."""
    d = tempfile.mkdtemp(prefix="ssf-admin-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def ctl_as(d, uid, *args):
    cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", d.ssfctl, "--json",
           "--socket", d.socket, *args]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=d.full_env())
    return cp.returncode, cp.stderr


def the_stream(transmitter):
    streams = transmitter.wait_stream()
    assert len(streams) == 1, streams
    return streams[0]


def requests_to(transmitter, method, path):
    return [r for r in transmitter.acks()["requests"]
            if r["method"] == method and r["path"] == path]


def start(daemon_factory, transmitter, **kw):
    d = daemon_factory(rules=RULES, **kw)
    the_stream(transmitter)
    wait_for(lambda: d.ctl("status")["stream"]["status"] == "enabled", 20, "the stream enabled")
    return d


def test_pause_resume_disable(daemon_factory, transmitter):
    d = start(daemon_factory, transmitter)
    sid = the_stream(transmitter)["stream_id"]

    out = d.ctl("stream", "pause", "--reason", "maintenance window")
    assert out["transmitter"] == "default" and "paused" in out["result"]
    st = the_stream(transmitter)
    assert st["status"] == "paused" and st["reason"] == "maintenance window"
    body = requests_to(transmitter, "POST", "/ssf/status")[-1]["body"]
    assert body == {"stream_id": sid, "status": "paused", "reason": "maintenance window"}
    assert d.ctl("stream")["status"] == "paused"
    assert d.ctl("status")["stream"]["status"] == "paused"
    # The text output says what the transmitter answered.
    cp = d.ctl("stream", "resume", json=False)
    assert cp.returncode == 0 and "enabled" in cp.stdout, cp
    assert the_stream(transmitter)["status"] == "enabled"
    assert requests_to(transmitter, "POST", "/ssf/status")[-1]["body"] == {
        "stream_id": sid, "status": "enabled"}
    assert d.ctl("stream")["status"] == "enabled"
    # Enabled again: SETs flow.
    jti = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(jti)

    d.ctl("stream", "disable")
    assert the_stream(transmitter)["status"] == "disabled"
    assert d.ctl("stream")["status"] == "disabled"
    assert d.ctl("status")["stream"]["status"] == "disabled"


def test_delete_then_create(daemon_factory, transmitter):
    d = start(daemon_factory, transmitter)
    old = the_stream(transmitter)["stream_id"]

    out = d.ctl("stream", "delete")
    assert old in out["result"]
    assert transmitter.streams() == []
    deletes = requests_to(transmitter, "DELETE", "/ssf/stream")
    assert len(deletes) == 1 and deletes[0]["status"] == 204
    rc, _, err = d.ctl("stream", check=False)
    assert rc != 0 and "deleted" in err
    assert d.ctl("status")["stream"]["status"] == "deleted"
    assert d.ctl("status")["stream"]["stream_id"] is None
    # Idle: no request of any kind reaches the transmitter (a window of a few poll_waits).
    after = transmitter.acks()["now"]
    time.sleep(5)
    late = [r for r in transmitter.acks()["requests"] if r["time"] > after]
    assert late == [], late
    # Nothing to pause or verify without a stream.
    rc, _, err = d.ctl("stream", "pause", check=False)
    assert rc != 0 and "deleted" in err
    # A reload restarts the worker: it stays idle, it creates nothing.
    d.signal(__import__("signal").SIGHUP)
    time.sleep(3)
    assert transmitter.streams() == []

    out = d.ctl("stream", "create")
    new = the_stream(transmitter)["stream_id"]
    assert new != old and new in out["result"]
    wait_for(lambda: d.ctl("status")["stream"]["status"] == "enabled", 20, "enabled again")
    assert d.ctl("stream")["stream_id"] == new
    jti = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(jti)
    # One stream exists: another create is refused, clearly.
    rc, _, err = d.ctl("stream", "create", check=False)
    assert rc != 0 and "already" in err


def test_delete_then_restart_creates_one(daemon_factory, transmitter):
    d = start(daemon_factory, transmitter)
    old = the_stream(transmitter)["stream_id"]
    d.ctl("stream", "delete")
    assert transmitter.streams() == []
    assert d.stop() == 0
    d.start()
    new = the_stream(transmitter)["stream_id"]
    assert new != old


def test_subjects_add_remove(daemon_factory, transmitter, users):
    d = start(daemon_factory, transmitter,
              section_opts={"subjects": {"domains": "example.com example.org"}})
    sid = the_stream(transmitter)["stream_id"]
    alice = [{"format": "email", "email": "alice@example.com"},
             {"format": "email", "email": "alice@example.org"}]

    out = d.ctl("subjects", "add", "alice")
    assert "2 subject" in out["result"]
    assert the_stream(transmitter)["subjects"] == alice
    adds = requests_to(transmitter, "POST", "/ssf/subjects:add")
    assert [r["body"] for r in adds] == [{"stream_id": sid, "subject": s, "verified": True}
                                         for s in alice]

    opaque = {"format": "opaque", "id": "device-42"}
    d.ctl("subjects", "add", json.dumps(opaque))
    assert the_stream(transmitter)["subjects"] == alice + [opaque]
    # As given: no verified flag for a subject the admin wrote.
    assert requests_to(transmitter, "POST", "/ssf/subjects:add")[-1]["body"] == {
        "stream_id": sid, "subject": opaque}

    d.ctl("subjects", "remove", "alice")
    assert the_stream(transmitter)["subjects"] == [opaque]
    removes = requests_to(transmitter, "POST", "/ssf/subjects:remove")
    assert [r["body"] for r in removes] == [{"stream_id": sid, "subject": s} for s in alice]
    d.ctl("subjects", "remove", json.dumps(opaque))
    assert the_stream(transmitter)["subjects"] == []

    n = len(transmitter.acks()["requests"])
    for bad, why in ((json.dumps({"format": "bogus", "id": "x"}), "unknown subject format"),
                     ('{"format": "email"}', "needs a non-empty string \"email\""),
                     ('{"format": "email", "email": "a@b", "format": "opaque"}', "not valid JSON"),
                     ('{"format": "opaque", "id": "' + "x" * 5000 + '"}', "bytes"),
                     ("nosuchuser", "no such user"),
                     ("root", "never acted upon")):
        rc, _, err = d.ctl("subjects", "add", bad, check=False)
        assert rc != 0 and why in err, (bad, err)
    # None of these reached the transmitter.
    assert not [r for r in transmitter.acks()["requests"][n:] if "subjects" in r["path"]]


def test_subjects_user_needs_explicit_domains(daemon_factory, transmitter):
    d = start(daemon_factory, transmitter, section_opts={"subjects": {"domains": "*"}})
    rc, _, err = d.ctl("subjects", "add", "alice", check=False)
    assert rc != 0 and "domains" in err


def test_subjects_from_map_file(daemon_factory, transmitter, tmp_path):
    mf = tmp_path / "map"
    mf.write_text("alice.smith@corp.example alice\nacct:alice@corp.example alice\n"
                  "00u1abcd alice\nbob@example.com bob\n")
    os.chmod(mf, 0o644)
    d = start(daemon_factory, transmitter, section_opts={"subjects": {"map_file": str(mf)}})
    d.ctl("subjects", "add", "alice")
    assert the_stream(transmitter)["subjects"] == [
        {"format": "email", "email": "alice.smith@corp.example"},
        {"format": "account", "uri": "acct:alice@corp.example"},
        {"format": "opaque", "id": "00u1abcd"}]


def test_subjects_local_with_default_subjects_none(daemon_factory, transmitter, users):
    transmitter.configure(default_subjects="NONE")
    d = daemon_factory(rules=RULES, transmitter_opts={"subjects": "local"})
    local = [{"format": "email", "email": f"{u}@example.com"} for u in ("alice", "bob", "carol")]

    def added():
        s = transmitter.streams()
        return s and sorted(s[0]["subjects"], key=json.dumps) == local
    wait_for(added, 30, "the local users' subjects added")
    sid = the_stream(transmitter)["stream_id"]
    # root (protected), nobody and the daemon's account (outside min_uid…max_uid) are not.
    for r in requests_to(transmitter, "POST", "/ssf/subjects:add"):
        assert r["body"]["stream_id"] == sid and r["body"]["verified"] is True
    # A SET about a local user arrives; one about someone else is not even sent.
    jti = transmitter.send_event("session-revoked", email="alice@example.com")
    transmitter.wait_acked(jti)
    out = transmitter.control("POST", "events", {"event": "session-revoked",
                                                 "email": "mallory@example.com"})
    assert out["streams"] == []
    # Removing a user: its SETs stop.
    d.ctl("subjects", "remove", "bob")
    out = transmitter.control("POST", "events", {"event": "session-revoked",
                                                 "email": "bob@example.com"})
    assert out["streams"] == []
    # A new stream (delete, create) gets the subjects again.
    d.ctl("stream", "delete")
    d.ctl("stream", "create")
    wait_for(added, 30, "the local users' subjects added to the new stream")
    assert the_stream(transmitter)["stream_id"] != sid


def test_non_root_refused(daemon_factory, transmitter, users, sockdir):
    path = os.path.join(sockdir, "socket")
    d = daemon_factory(rules=RULES, start=False, section_opts={"daemon": {"socket": path}})
    d.socket = path
    d.start()
    the_stream(transmitter)
    n = len(transmitter.acks()["requests"])
    for args in (("stream", "pause"), ("stream", "delete"), ("stream", "create"),
                 ("subjects", "add", "alice"), ("subjects", "remove", '{"format":"opaque","id":"x"}')):
        rc, err = ctl_as(d, users.uid("alice"), *args)
        assert rc != 0 and "permission denied" in err, (args, err)
    assert not [r for r in transmitter.acks()["requests"][n:]
                if r["method"] in ("DELETE", "PUT", "PATCH") or "subjects" in r["path"]
                or (r["method"] == "POST" and r["path"] in ("/ssf/status", "/ssf/stream"))]
    assert len(transmitter.streams()) == 1 and transmitter.streams()[0]["status"] == "enabled"


def test_transmitter_errors_reported(daemon_factory, transmitter):
    d = start(daemon_factory, transmitter)
    transmitter.configure(fail={"path_prefix": "/ssf/status", "method": "POST", "status": 403,
                                "count": 1, "body": '{"err": "access_denied", '
                                                    '"description": "not for \x1b[31mthis client"}'})
    cp = d.ctl("stream", "pause", json=False)
    assert cp.returncode != 0
    assert "HTTP 403" in cp.stderr and "not for ?[31mthis client" in cp.stderr, cp.stderr
    assert "\x1b" not in cp.stderr
    assert the_stream(transmitter)["status"] == "enabled"
    assert d.ctl("stream")["status"] == "enabled"

    # A long body is cut short.
    transmitter.configure(fail={"path_prefix": "/ssf/subjects:add", "status": 400, "count": 1,
                                "body": {"err": "invalid_request", "description": "y" * 5000}})
    rc, _, err = d.ctl("subjects", "add", '{"format":"opaque","id":"x"}', check=False)
    assert rc != 0 and "HTTP 400" in err and "..." in err and len(err) < 600, err

    transmitter.configure(fail={"path_prefix": "/ssf/stream", "method": "DELETE", "status": 404,
                                "count": 1})
    rc, _, err = d.ctl("stream", "delete", check=False)
    assert rc != 0 and "HTTP 404" in err
    # Not deleted: still in use.
    assert d.ctl("status")["stream"]["status"] == "enabled"
    jti = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(jti)


@pytest.mark.parametrize("patch", [True, False], ids=["patch", "put"])
def test_changed_events_update_the_stream(daemon_factory, transmitter, patch):
    """The configured events differ from the remembered stream's: PATCH (SSF 8.1.1.3), or PUT
    (8.1.1.4) when the transmitter does not support PATCH."""
    d = start(daemon_factory, transmitter, transmitter_opts={"events": "session-revoked"})
    st = the_stream(transmitter)
    sid = st["stream_id"]
    assert [u.rsplit("/", 1)[1] for u in st["events_requested"]] == ["session-revoked"]
    assert d.stop() == 0
    if not patch:
        transmitter.configure(patch_unsupported=True)
    text = open(d.config_path).read().replace("events = session-revoked",
                                              "events = session-revoked credential-change")
    d.write_config(text)
    d.start()
    wait_for(lambda: len(the_stream(transmitter)["events_requested"]) == 2, 20,
             "the stream's events updated")
    st = the_stream(transmitter)
    assert st["stream_id"] == sid and len(transmitter.streams()) == 1  # the same stream
    updates = [r for r in transmitter.acks()["requests"] if r["method"] in ("PATCH", "PUT")]
    assert [r["method"] for r in updates] == (["PATCH"] if patch else ["PATCH", "PUT"])
    assert updates[-1]["status"] == 200
    assert updates[-1]["body"]["stream_id"] == st["stream_id"]
    assert updates[-1]["body"]["delivery"] == {"method": "urn:ietf:rfc:8936"}
    if not patch:
        assert updates[0]["status"] == 405
        assert updates[-1]["body"]["description"].startswith("ssf-sessiond on ")
    jti = transmitter.send_event("credential-change", email="bob@example.com",
                                 payload={"credential_type": "password", "change_type": "update"})
    transmitter.wait_acked(jti)


def test_requests_while_the_transmitter_is_unreachable(daemon_factory, transmitter):
    """No stream yet (discovery fails): stream commands are answered at once, and do not cut
    the worker's backoff short; create reports why the setup failed."""
    wk = "/.well-known/ssf-configuration"
    transmitter.configure(fail={"path_prefix": wk, "status": 500, "count": 100000})
    d = daemon_factory(rules=RULES)

    def discoveries():
        return [r for r in transmitter.acks()["requests"] if r["path"].startswith(wk)]
    wait_for(lambda: len(discoveries()) >= 2, 20, "discovery to fail twice")
    rc, _, err = d.ctl("stream", "pause", check=False)
    assert rc != 0 and "no stream yet" in err
    rc, _, err = d.ctl("subjects", "add", "alice", check=False)
    assert rc != 0 and "no stream yet" in err
    rc, _, err = d.ctl("stream", "create", check=False)
    assert rc != 0 and "stream setup failed" in err
    # The backoff goes on (1 s, 2 s, 4 s, …): a handful of attempts in a few seconds, not a
    # tight loop.
    n = len(discoveries())
    time.sleep(3)
    assert len(discoveries()) - n <= 3
    transmitter.configure(fail=None)
    the_stream(transmitter)


def test_push_stream_admin(daemon_factory, transmitter, tmp_path):
    """The same commands with push delivery: pause, subjects, delete (then no status reads),
    create (a new push stream, SETs pushed again)."""
    from test_push import Push
    p = Push(daemon_factory, transmitter, tmp_path)
    d = p.daemon
    wait_for(lambda: d.ctl("status")["stream"]["status"] == "enabled", 20, "the stream enabled")
    d.ctl("stream", "pause", "--reason", "push pause")
    assert the_stream(transmitter)["status"] == "paused"
    assert d.ctl("stream")["status"] == "paused"
    d.ctl("stream", "resume")
    d.ctl("subjects", "add", "bob")
    assert the_stream(transmitter)["subjects"] == [{"format": "email", "email": "bob@example.com"}]
    jti = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(jti)

    d.ctl("stream", "delete")
    assert transmitter.streams() == []
    assert d.ctl("status")["stream"]["status"] == "deleted"
    d.ctl("stream", "create")
    new = wait_for(p._push_stream, 20, "a new push stream")
    assert new["stream_id"] != p.stream["stream_id"]
    wait_for(lambda: d.ctl("status")["stream"]["status"] == "enabled", 20, "enabled again")
    jti = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(jti)


def test_retry_after_holds_admin_requests(daemon_factory, transmitter):
    d = start(daemon_factory, transmitter)
    transmitter.configure(fail={"path_prefix": "/ssf/status", "method": "POST", "status": 429,
                                "count": 1, "retry_after": "60"})
    rc, _, err = d.ctl("stream", "pause", check=False)
    assert rc != 0 and "HTTP 429" in err, err
    n = len(requests_to(transmitter, "POST", "/ssf/status"))
    # Held back: not even sent.
    rc, _, err = d.ctl("stream", "pause", check=False)
    assert rc != 0 and "retry later" in err, err
    assert len(requests_to(transmitter, "POST", "/ssf/status")) == n
    assert the_stream(transmitter)["status"] == "enabled"


def test_raw_requests(daemon_factory, transmitter):
    """What ssfctl never sends, straight on the socket: another transmitter's name, a bad
    status, a reason of the wrong type or too long, a subject that is not a string."""
    import struct
    from pam_support import CTL_REPLY, CTL_REQUEST, TAG_ARGS, TAG_MESSAGE, TAG_STATUS, TAG_VERB
    from pam_support import decode_frame, encode_frame
    from test_daemon_robustness import exchange

    d = start(daemon_factory, transmitter)

    def ctl(verb, args):
        frame = encode_frame(CTL_REQUEST, [(TAG_VERB, verb.encode()),
                                           (TAG_ARGS, json.dumps(args).encode())])
        msg_type, tlvs = decode_frame(exchange(d.socket, frame))
        assert msg_type == CTL_REPLY
        return struct.unpack(">i", tlvs[TAG_STATUS])[0], tlvs.get(TAG_MESSAGE, b"").decode()

    status, msg = ctl("stream-status", {"status": "paused", "transmitter": "okta"})
    assert status < 0 and "no transmitter is named 'okta'" in msg
    # The one transmitter there is has the name default.
    status, _ = ctl("stream-status", {"status": "paused", "transmitter": "default"})
    assert status == 0 and the_stream(transmitter)["status"] == "paused"
    for args in ({"status": "stopped"}, {"status": "enabled", "reason": 5},
                 {"status": "enabled", "reason": "x" * 1025}, {}):
        status, msg = ctl("stream-status", args)
        assert status < 0 and msg, args
    status, msg = ctl("subjects-add", {"subject": {"format": "opaque", "id": "x"}})
    assert status < 0 and "USER or a SUBJECT-JSON" in msg
    assert the_stream(transmitter)["status"] == "paused"
    assert the_stream(transmitter)["subjects"] == []


def test_subjects_local_removes_former_accounts(daemon_factory, transmitter, users):
    transmitter.configure(default_subjects="NONE")
    d = daemon_factory(rules=RULES, transmitter_opts={"subjects": "local"})

    def subjects():
        s = transmitter.streams()
        return sorted(e["email"] for e in s[0]["subjects"]) if s else None
    wait_for(lambda: subjects() == ["alice@example.com", "bob@example.com", "carol@example.com"],
             30, "the local users' subjects added")
    sid = the_stream(transmitter)["stream_id"]
    assert d.stop() == 0
    # carol's account is gone; the stream is reused at the next start.
    users.users = [u for u in users.users if u[0] != "carol"]
    users.write()
    d.start()
    wait_for(lambda: subjects() == ["alice@example.com", "bob@example.com"], 30,
             "carol's subject removed")
    assert the_stream(transmitter)["stream_id"] == sid
    removes = requests_to(transmitter, "POST", "/ssf/subjects:remove")
    assert [r["body"] for r in removes] == [
        {"stream_id": sid, "subject": {"format": "email", "email": "carol@example.com"}}]
    out = transmitter.control("POST", "events", {"event": "session-revoked",
                                                 "email": "carol@example.com"})
    assert out["streams"] == []
