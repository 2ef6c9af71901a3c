# SPDX-License-Identifier: MIT
"""The transmitter's critical_subject_members (SSF 1.0 sections 3.6 and 7.1): an event whose
complex subject carries a critical member this receiver does not interpret is discarded --
acknowledged, not applied, and recorded so an admin sees why."""

from support import wait_for

RULES = "[rule record]\naction = none\n"

ALICE_IN_TENANT = {"format": "complex",
                   "user": {"format": "email", "email": "alice@example.com"},
                   "tenant": {"format": "opaque", "id": "t1"}}


def results(d, user=None):
    args = ("history", user) if user else ("history",)
    return [e["result"] for e in d.ctl(*args)["entries"]]


def test_critical_member_not_understood_is_discarded(daemon_factory, transmitter, users):
    transmitter.configure(critical_subject_members=["tenant"])
    d = daemon_factory(rules=RULES)
    j = transmitter.send_event("device-compliance-change", subject=ALICE_IN_TENANT)
    transmitter.wait_acked(j)
    assert d.ctl("risk", "alice")["level"] == "none"
    assert d.ctl("users")["users"] == []
    # Only that SET's entry: the stream verification the daemon asks for at start may be
    # recorded too, before or after it.
    got = [e["result"] for e in d.ctl("history")["entries"] if e.get("jti") == j]
    assert len(got) == 1, got
    assert got[0] == "unmapped: discarded: critical subject member 'tenant' not understood", got
    wait_for(lambda: "is discarded, not applied" in d.log(), 10, "the discard to be logged")
    # The same member when the subject does not carry it, or a simple subject: applied.
    j = transmitter.send_event("device-compliance-change", email="alice@example.com")
    transmitter.wait_acked(j)
    assert d.ctl("risk", "alice")["level"] == "high"


def test_critical_member_understood_is_applied(daemon_factory, transmitter, users):
    transmitter.configure(critical_subject_members=["user"])
    d = daemon_factory(rules=RULES)
    j = transmitter.send_event("device-compliance-change", subject=ALICE_IN_TENANT)
    transmitter.wait_acked(j)
    assert d.ctl("risk", "alice")["level"] == "high"
    assert not any("discarded" in r for r in results(d)), results(d)


def test_critical_device_without_device_id_is_discarded(daemon_factory, transmitter, users):
    # Without [subjects] device_id this host cannot tell whether a device is itself.
    transmitter.configure(critical_subject_members=["user", "device"])
    d = daemon_factory(rules=RULES)
    subject = {"format": "complex",
               "user": {"format": "email", "email": "alice@example.com"},
               "device": {"format": "opaque", "id": "laptop-7"}}
    j = transmitter.send_event("device-compliance-change", subject=subject)
    transmitter.wait_acked(j)
    assert d.ctl("risk", "alice")["level"] == "none"
    assert any("critical subject member 'device'" in r for r in results(d)), results(d)


def test_invalid_critical_members_are_ignored(daemon_factory, transmitter, users):
    transmitter.configure(critical_subject_members="tenant")  # not an array
    d = daemon_factory(rules=RULES)
    j = transmitter.send_event("device-compliance-change", subject=ALICE_IN_TENANT)
    transmitter.wait_acked(j)
    assert d.ctl("risk", "alice")["level"] == "high"
    assert "critical_subject_members" in d.log()
