# SPDX-License-Identifier: MIT
"""SETs shaped the way real transmitters send them, through the whole daemon: Okta's (no
sub_id, the subject inside the event, sometimes complex without "format", event_timestamp
in milliseconds, lowercase levels, iss_sub subjects with Okta user ids), Omnissa's
(complex device + user subject, a numeric txn from before SSF made it a string) and Google's
RISC (subject_type instead of format). Each is acknowledged and acts on the right user."""

import os
import shutil
import tempfile

import support
from support import wait_for

OKTA = "https://schemas.okta.com/secevent/okta/event-type/"

RULES = support.LOGOUT_HIGH_RULES


def risk(d, user):
    return d.ctl("risk", user)


def test_okta_session_revoked_and_credential_change(daemon_factory, transmitter, logind, users):
    # Okta's subjects are its user ids (iss_sub): the admin maps them in map_file, which the
    # unprivileged network worker reads (so not under the test's private tmp_path).
    map_dir = tempfile.mkdtemp(prefix="ssf-map-")
    os.chmod(map_dir, 0o755)
    map_file = os.path.join(map_dir, "users.map")
    with open(map_file, "w") as f:
        f.write("00u1okta2bob3 bob\n")
    os.chmod(map_file, 0o644)
    try:
        okta_scenario(daemon_factory, transmitter, logind, users, map_file)
    finally:
        shutil.rmtree(map_dir)


def okta_scenario(daemon_factory, transmitter, logind, users, map_file):
    d = daemon_factory(rules=RULES, section_opts={"subjects": {"map_file": map_file}})
    logind.add_session("a1", users.uid("alice"), "alice")
    logind.add_session("b1", users.uid("bob"), "bob")

    # session-revoked, complex subject without "format", ms timestamp, Okta's extra members.
    j1 = transmitter.send_event(
        "session-revoked", claims={"sub_id": None},
        payload={"subject": {"user": {"format": "email", "email": "alice@example.com"}},
                 "reason_admin": {"en": "Policy Violation: C076E822"},
                 "reason_user": {"en": "This device is no longer compliant."},
                 "current_ip": "192.0.2.7", "last_known_ip": "198.51.100.3",
                 "event_timestamp": 1615304991643})
    transmitter.wait_acked(j1)
    logind.wait_terminated("a1")
    assert risk(d, "alice")["level"] == "high"
    assert "b1" not in logind.terminated()

    # credential-change with a simple iss_sub subject naming an Okta user id, and a
    # credential_type outside CAEP's list.
    j2 = transmitter.send_event(
        "credential-change", claims={"sub_id": None},
        payload={"subject": {"format": "iss_sub", "iss": transmitter.issuer,
                             "sub": "00u1okta2bob3"},
                 "credential_type": "OKTA_VERIFY_PUSH", "change_type": "revoke",
                 "friendly_name": "PASSWORD_AS_FACTOR", "initiating_entity": "user",
                 "event_timestamp": 1615304991643})
    transmitter.wait_acked(j2)
    r = risk(d, "bob")
    assert r["level"] == "medium", r
    assert r["detections"][0]["detection"] == "credential-change"
    assert "b1" not in logind.terminated()  # medium: no rule matches


def test_okta_user_risk_change_levels_and_order(daemon_factory, transmitter, logind, users):
    d = daemon_factory(rules=RULES)
    logind.add_session("a1", users.uid("alice"), "alice")

    def send(current, previous, ts):
        jti = transmitter.send_event(
            OKTA + "user-risk-change", claims={"sub_id": None},
            payload={"subject": {"user": {"format": "email", "email": "alice@example.com"}},
                     "current_level": current, "previous_level": previous,
                     "event_timestamp": ts})
        transmitter.wait_acked(jti)
        return jti

    t0 = 1767225600000  # ms, as Okta sends them
    send("medium", "low", t0)
    assert risk(d, "alice")["level"] == "medium"
    send("high", "medium", t0 + 60000)
    assert risk(d, "alice")["level"] == "high"
    logind.wait_terminated("a1")
    # Down again, then an older event arriving late changes nothing.
    send("low", "high", t0 + 120000)
    assert risk(d, "alice")["level"] == "low"
    late = send("high", "low", t0 + 90000)
    assert risk(d, "alice")["level"] == "low"
    entry = [e for e in d.ctl("history", "alice")["entries"] if e["jti"] == late][0]
    assert entry["level_after"] == "low", entry
    # Okta's "secure" is none.
    send("secure", "low", t0 + 180000)
    assert risk(d, "alice")["level"] == "none"


def test_omnissa_device_compliance_with_numeric_txn(daemon_factory, transmitter, logind, users):
    d = daemon_factory(rules=RULES)
    logind.add_session("c1", users.uid("carol"), "carol")
    jti = transmitter.send_event(
        "device-compliance-change",
        subject={"format": "complex",
                 "device": {"format": "opaque", "id": "udid-0f3e5a"},
                 "tenant": {"format": "opaque", "id": "omnissa-tenant-1"},
                 "user": {"format": "email", "email": "carol@example.com"}},
        claims={"txn": 8675309},
        payload={"previous_status": "compliant", "current_status": "not-compliant",
                 "initiating_entity": "policy", "event_timestamp": 1767225600})
    transmitter.wait_acked(jti)
    logind.wait_terminated("c1")
    assert risk(d, "carol")["level"] == "high"
    entry = [e for e in d.ctl("history", "carol")["entries"] if e["jti"] == jti][0]
    assert entry["txn"] is None, entry  # a number is not an SSF txn: ignored, not refused


def test_google_risc_subject_type(daemon_factory, transmitter, logind, users):
    d = daemon_factory(rules=RULES)
    logind.add_session("b1", users.uid("bob"), "bob")
    jti = transmitter.send_event(
        "account-disabled", claims={"sub_id": None},
        payload={"subject": {"subject_type": "email", "email": "bob@example.com"},
                 "reason": "hijacking"})
    transmitter.wait_acked(jti)
    logind.wait_terminated("b1")
    r = risk(d, "bob")
    assert r["level"] == "high" and r["detections"][0]["detection"] == "account-disabled", r
    wait_for(lambda: d.ctl("status")["counters"]["sets_acknowledged"] >= 1, 10,
             "the acknowledgement to be counted")
