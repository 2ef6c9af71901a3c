# SPDX-License-Identifier: MIT
"""Detections derived from event claims and [subjects] device_scope (PRODUCT.md "Additions"),
through the daemon and the bundled transmitter: an Okta-style MFA enrolment is recorded at
level none and runs only the workflow that names it, a revoke is the usual credential-change,
a section's detection raises and is cleared, a phone's compliance change does or does not reach
its owner depending on device_scope, and --check-config reports the sections' errors."""

import os
import re

import support
from support import wait_for

EXAMPLE_CONFIG = os.path.join(support.REPO, "conf", "ssf-sessiond.conf")

# Writes the hook's SSF_ environment where the test waits for it, complete once it is there.
HOOK = """#!/bin/sh
env | grep '^SSF_' | sort > "@HOOK@.tmp" && mv "@HOOK@.tmp" "@HOOK@.env"
"""


def example_detection_sections():
    """The [detection NAME] sections of the example configuration, as they are shipped."""
    with open(EXAMPLE_CONFIG) as f:
        text = f.read()
    blocks = re.findall(r"^\[detection [^\]]+\]\n(?:[a-z_]+ = .*\n)+", text, re.M)
    assert blocks, "the example configuration has no active [detection NAME] section"
    return "\n".join(blocks)


# The routine enrolment is the example's own section; a catch-all rule first, which a
# detection at level none must not run ("*" does not name it).
MFA_RULES = example_detection_sections() + """
[rule catch-all]
detections = *
action = logout

[rule mfa-workflow]
detections = mfa-enrolled
action = workflow
workflow = mfa-enrolled
"""

USUAL_RULES = example_detection_sections() + """
[rule mfa-workflow]
detections = mfa-enrolled
action = workflow
workflow = mfa-enrolled
""" + support.DEFAULT_RULES

OKTA_ENROL = {"credential_type": "fido2", "change_type": "create",
              "friendly_name": "YubiKey 5", "fido2_aaguid": "cb69481e-8ff7-4039-93ec-0a2729a154a8"}


def history(d, user):
    return d.ctl("history", user)["entries"]


def entry_for(d, user, jti):
    found = [e for e in history(d, user) if e["jti"] == jti]
    assert len(found) == 1, history(d, user)
    return found[0]


def okta_subject(user):
    # Okta: a complex subject without "format".
    return {"user": {"format": "email", "email": f"{user}@example.com"}}


def test_mfa_enrolment_is_recorded_at_none_and_runs_its_named_workflow(daemon_factory, transmitter,
                                                                        logind, users):
    d = daemon_factory(rules=MFA_RULES)
    hook = d.add_hook("mfa-enrolled", HOOK)
    logind.add_session("c1", users.uid("alice"), "alice")

    jti = transmitter.send_event("credential-change", subject=okta_subject("alice"),
                                 payload=OKTA_ENROL)
    transmitter.wait_acked(jti)
    wait_for(lambda: os.path.exists(hook + ".env"), 20, "the mfa-enrolled workflow to run")
    with open(hook + ".env") as f:
        env = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    assert env["SSF_DETECTION"] == "mfa-enrolled", env
    assert env["SSF_USER"] == "alice"
    assert env["SSF_RULE"] == "mfa-workflow"
    assert env["SSF_RISK_LEVEL"] == "none"

    # Recorded under the derived name, no risk: the level stays none, nothing is stored, the
    # catch-all rule (detections = *) did not run, no session ended.
    e = entry_for(d, "alice", jti)
    assert e["event"] == "credential-change"
    assert e["detection"] == "mfa-enrolled", e
    assert e["level_before"] == "none" and e["level_after"] == "none", e
    assert e["rule"] == "mfa-workflow" and e["action"] == "workflow", e
    risk = d.ctl("risk", "alice")
    assert risk["level"] == "none"
    assert risk["detections"] == []
    assert logind.terminated() == []
    assert [s[0] for s in logind.sessions()] == ["c1"]


def test_mfa_revoke_is_the_default_credential_change(daemon_factory, transmitter, logind, users):
    d = daemon_factory(rules=USUAL_RULES)
    mfa_hook = d.add_hook("mfa-enrolled", HOOK)
    notify = d.add_hook("notify-admin", HOOK)

    jti = transmitter.send_event("credential-change", subject=okta_subject("bob"),
                                 payload={**OKTA_ENROL, "change_type": "revoke"})
    transmitter.wait_acked(jti)
    # The event's own detection at its default level, and the usual rule for medium.
    wait_for(lambda: os.path.exists(notify + ".env"), 20, "the notify-admin workflow to run")
    with open(notify + ".env") as f:
        env = f.read()
    assert "SSF_DETECTION=credential-change\n" in env, env
    assert "SSF_RULE=notify-medium\n" in env, env
    risk = d.ctl("risk", "bob")
    assert risk["level"] == "medium"
    assert [x["detection"] for x in risk["detections"]] == ["credential-change"]
    e = entry_for(d, "bob", jti)
    assert e["detection"] == "credential-change" and e["level_after"] == "medium", e
    assert e["rule"] == "notify-medium", e
    assert not os.path.exists(mfa_hook + ".env")


# A section at a level of its own: raises under its name, and the event that clears its event's
# detection clears it too.
LAPTOP_RULES = """
[detection laptop-noncompliant]
event = device-compliance-change
claims = current_status=not-compliant device_type=laptop,desktop
level = medium

[rule logout-laptop]
detections = laptop-noncompliant
action = logout
"""


def test_defined_detection_raises_under_its_name_and_is_cleared(daemon_factory, transmitter,
                                                                 logind, users):
    d = daemon_factory(rules=LAPTOP_RULES)
    logind.add_session("c1", users.uid("carol"), "carol")
    jti = transmitter.send_event("device-compliance-change", email="carol@example.com",
                                 payload={"previous_status": "compliant",
                                          "current_status": "not-compliant",
                                          "device_type": "laptop"})
    transmitter.wait_acked(jti)
    logind.wait_terminated("c1")
    risk = d.ctl("risk", "carol")
    assert risk["level"] == "medium"  # the section's level, not the event's default (high)
    assert [x["detection"] for x in risk["detections"]] == ["laptop-noncompliant"]
    assert entry_for(d, "carol", jti)["rule"] == "logout-laptop"

    jti = transmitter.send_event("device-compliance-change", email="carol@example.com",
                                 payload={"previous_status": "not-compliant",
                                          "current_status": "compliant", "device_type": "laptop"})
    transmitter.wait_acked(jti)
    assert d.ctl("risk", "carol")["level"] == "none"
    assert d.ctl("risk", "carol")["detections"] == []
    e = entry_for(d, "carol", jti)
    assert e["level_before"] == "medium" and e["level_after"] == "none", e


def phone_subject(user, device):
    return {"format": "complex",
            "user": {"format": "email", "email": f"{user}@example.com"},
            "device": {"format": "opaque", "id": device}}


NONCOMPLIANT = {"previous_status": "compliant", "current_status": "not-compliant"}


def test_device_scope_this_host_ignores_another_device(daemon_factory, transmitter, logind,
                                                       users):
    d = daemon_factory(rules=support.LOGOUT_HIGH_RULES,
                       section_opts={"subjects": {"device_id": "host-1",
                                                  "device_scope": "this-host"}})
    logind.add_session("c1", users.uid("alice"), "alice")

    # Alice's phone falls out of compliance: recorded, not applied to this host.
    jti = transmitter.send_event("device-compliance-change",
                                 subject=phone_subject("alice", "phone-9"), payload=NONCOMPLIANT)
    transmitter.wait_acked(jti)
    e = entry_for(d, "alice", jti)
    assert e["result"].startswith("not this host: device 'phone-9' is not this host"), e
    assert "device_id 'host-1'" in e["result"], e
    assert e["level_before"] == "none" and e["level_after"] == "none", e
    assert e["action"] == "none", e
    assert d.ctl("risk", "alice")["level"] == "none"
    assert logind.terminated() == []

    # The same user on this host's device: it applies.
    jti = transmitter.send_event("device-compliance-change",
                                 subject=phone_subject("alice", "host-1"), payload=NONCOMPLIANT)
    transmitter.wait_acked(jti)
    logind.wait_terminated("c1")
    assert d.ctl("risk", "alice")["level"] == "high"
    assert entry_for(d, "alice", jti)["rule"] == "logout-high"


def test_device_scope_any_applies_whatever_the_device(daemon_factory, transmitter, logind, users):
    d = daemon_factory(rules=support.LOGOUT_HIGH_RULES,
                       section_opts={"subjects": {"device_id": "host-1"}})  # device_scope = any
    logind.add_session("c1", users.uid("alice"), "alice")
    jti = transmitter.send_event("device-compliance-change",
                                 subject=phone_subject("alice", "phone-9"), payload=NONCOMPLIANT)
    transmitter.wait_acked(jti)
    logind.wait_terminated("c1")
    assert d.ctl("risk", "alice")["level"] == "high"
    assert not entry_for(d, "alice", jti)["result"].startswith("not this host")


def check_errors(d, extra):
    d.write_config(d.config_text + extra)
    cp = d.check_config()
    assert cp.returncode == 1, cp.stderr
    return cp.stderr


def test_check_config_reports_detection_errors(daemon_factory, transmitter, users):
    d = daemon_factory(rules=USUAL_RULES, start=False)
    d.add_hook("mfa-enrolled", HOOK)
    d.add_hook("notify-admin", HOOK)
    base = d.config_text
    cp = d.check_config()
    assert cp.returncode == 0, cp.stderr  # the example's section, named by a rule

    n = base.count("\n")
    err = check_errors(d, "[detection typo]\nevent = credential-chnage\nclaims = a=b\nlevel = low\n")
    assert f"{d.config_path}:{n + 2}: 'event': unknown event 'credential-chnage'" in err, err

    d.write_config(base)
    err = check_errors(d, "[detection x]\nevent = credential-change\nclaims = change_type\n"
                          "level = low\n")
    assert f"{d.config_path}:{n + 3}: 'claims': invalid term 'change_type'" in err, err

    d.write_config(base)
    err = check_errors(d, "[detection x]\nevent = credential-change\nclaims = change_type=create\n")
    assert f"{d.config_path}:{n + 1}: Detection 'x' has no 'level'" in err, err

    d.write_config(base)
    err = check_errors(d, "[rule r]\ndetections = mfa-enroled\naction = none\n")
    assert (f"{d.config_path}:{n + 2}: 'detections': unknown detection 'mfa-enroled'") in err, err

    d.write_config(base)
    err = check_errors(d, "[detection session-revoked]\n")
    assert "'session-revoked' is a built-in detection name" in err, err

    # device_scope = this-host without device_id, and a daemon start refuses the same.
    d.write_config(base)
    err = check_errors(d, "[subjects]\ndevice_scope = this-host\n")
    assert "device_scope = this-host needs 'device_id'" in err, err
    d.start(wait_socket=False)
    wait_for(lambda: not d.running(), 20, "the daemon to refuse the configuration")
    assert d.proc.returncode != 0
    assert "device_scope = this-host needs 'device_id'" in d.log()
