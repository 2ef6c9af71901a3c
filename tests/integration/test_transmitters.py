# SPDX-License-Identifier: MIT
"""Several transmitters: [transmitter NAME] sections, each with its own stream, keys, counters
and network worker; root knows which transmitter a SET came from by the worker's channel;
`ssfctl transmitters`, `--transmitter`, the status and stream JSON shapes; rules with
`transmitters =`."""

import json
import signal

from pam_support import PAM_PERM_DENIED, PAM_SUCCESS, run_pam
from support import wait_for


def pam_account(tmp_path, d, user):
    # pam_ssf, then pam_permit standing in for pam_unix.
    return run_pam(tmp_path, [f"account required {{module}} socket={d.socket} "
                              f"snapshot={d.snapshot}", "account required pam_permit.so"],
                   user, env=d.nss_env()).code


def second_section(t, name="mdm"):
    """A [transmitter NAME] section for the local transmitter t (poll, bearer)."""
    return (f"[transmitter {name}]\nissuer = {t.issuer}\naudience = {t.audience}\nauth = bearer\n"
            f"token_file = {t.token_file}\nca_file = {t.ca_file}\ndelivery = poll\n"
            f"poll_wait = 2s\nevents = all\n")


def test_two_transmitters_one_down(daemon_factory, transmitter, transmitter_factory):
    mdm = transmitter_factory("mdm")
    assert mdm.issuer != transmitter.issuer
    d = daemon_factory(rules="[rule record]\naction = none\n", extra=second_section(mdm))
    transmitter.wait_stream()
    mdm.wait_stream()

    # Each transmitter's SET applies, through its own stream.
    j1 = transmitter.send_event("session-revoked", email="alice@example.com")
    j2 = mdm.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(j1)
    mdm.wait_acked(j2)
    assert d.ctl("risk", "alice")["level"] == "high"
    assert d.ctl("risk", "bob")["level"] == "high"
    # History records which transmitter each SET came from (root's knowledge: the channel).
    assert [e["transmitter"] for e in d.ctl("history", "alice")["entries"] if e["jti"] == j1] == \
        ["default"]
    assert [e["transmitter"] for e in d.ctl("history", "bob")["entries"] if e["jti"] == j2] == \
        ["mdm"]

    # `ssfctl transmitters`: both, in configuration order, with their own streams and counters.
    def listed():
        ts = d.ctl("transmitters")["transmitters"]
        return ts if all(t["stream_id"] and t["counters"]["sets_acknowledged"] >= 1
                         for t in ts) else None
    ts = wait_for(listed, 20, "both transmitters' streams and acknowledgements")
    assert [t["name"] for t in ts] == ["default", "mdm"]
    assert [t["issuer"] for t in ts] == [transmitter.issuer, mdm.issuer]
    for t in ts:
        assert set(t) == {"name", "issuer", "delivery", "stream_id", "status", "counters"}
        assert t["status"] == "enabled"
        assert t["counters"]["sets_received"] >= 1
    assert ts[0]["stream_id"] == transmitter.streams()[0]["stream_id"]
    assert ts[1]["stream_id"] == mdm.streams()[0]["stream_id"]

    # status: "stream" describes default, "transmitters" lists both.
    st = d.ctl("status")
    assert st["stream"]["issuer"] == transmitter.issuer
    assert [t["name"] for t in st["transmitters"]] == ["default", "mdm"]

    # stream verbs: --transmitter is required with several, and must name one.
    rc, out, err = d.ctl("stream", check=False)
    assert rc != 0 and "default, mdm" in err, err
    rc, out, err = d.ctl("stream", "--transmitter", "nosuch", check=False)
    assert rc != 0 and "nosuch" in err and "mdm" in err, err
    s = d.ctl("stream", "--transmitter", "mdm")
    assert set(s) == {"transmitter", "stream_id", "status", "configuration"}
    assert s["transmitter"] == "mdm"
    assert s["stream_id"] == ts[1]["stream_id"]
    assert s["configuration"]["iss"] == mdm.issuer
    out = d.ctl("verify", "--transmitter", "mdm", check=False)
    assert out[0] == 0, out

    # One transmitter down: the other's SETs still arrive and apply.
    mdm.stop()
    j3 = transmitter.send_event("session-revoked", email="carol@example.com")
    transmitter.wait_acked(j3)
    assert d.ctl("risk", "carol")["level"] == "high"
    assert d.running()


def test_one_transmitters_keys_never_verify_anothers(daemon_factory, transmitter,
                                                      transmitter_factory):
    mdm = transmitter_factory("mdm")
    d = daemon_factory(rules="[rule record]\naction = none\n", extra=second_section(mdm))
    transmitter.wait_stream()
    mdm.wait_stream()

    # mdm's key, default's iss, on mdm's stream: refused (not mdm's issuer).
    out = mdm.send_event_full("session-revoked", email="alice@example.com",
                              claims={"iss": transmitter.issuer})
    err = mdm.wait_set_err(out["jti"])
    assert err["err"] == "invalid_issuer", err
    # The same token on default's stream: its iss is default's, its key is not.
    # (an unknown kid is final once default's JWKS was fetched after the SET arrived: after
    # the JWKS refresh limit, 30 s)
    transmitter.send_raw(out["jti"], out["token"])
    err = transmitter.wait_set_err(out["jti"], timeout=60)
    assert err["err"] == "invalid_key", err
    assert d.ctl("risk", "alice")["level"] == "none"
    # Each rejection is counted with the transmitter that delivered it (reported with the
    # worker's next poll).
    wait_for(lambda: all(t["counters"]["sets_rejected"] >= 1
                         for t in d.ctl("transmitters")["transmitters"]), 20,
             "each transmitter's rejection counted")


def test_rule_transmitters(daemon_factory, transmitter, transmitter_factory, logind, users):
    """The seed's picture: the device signal from the device manager, session-revoked from
    the identity provider; a rule that names the device manager acts only on its SETs."""
    mdm = transmitter_factory("mdm")
    rules = ("[rule device]\ntransmitters = mdm\nlevels = high\naction = logout\n"
             "sessions = all\n\n[rule record]\naction = none\n")
    d = daemon_factory(rules=rules, extra=second_section(mdm))
    logind.add_session("c1", users.uid("alice"), "alice")
    logind.add_session("c2", users.uid("bob"), "bob")
    transmitter.wait_stream()
    mdm.wait_stream()

    j = transmitter.send_event("session-revoked", email="alice@example.com")
    transmitter.wait_acked(j)
    assert d.ctl("risk", "alice")["level"] == "high"
    j = mdm.send_event("device-compliance-change", email="bob@example.com",
                       payload={"previous_status": "compliant", "current_status": "not-compliant"})
    mdm.wait_acked(j)
    logind.wait_terminated("c2")
    assert d.ctl("risk", "bob")["level"] != "none"
    # alice's signal came from default: the mdm-only rule did not act on it.
    assert "c1" in [s[0] for s in logind.sessions()]


def test_unnamed_section_is_default_and_state_carries_over(daemon_factory, transmitter,
                                                           transmitter_factory):
    """An existing single-transmitter state directory: adding a named transmitter keeps the
    unnamed one's stream (it is default's)."""
    d = daemon_factory(rules="[rule record]\naction = none\n")
    stream_id = wait_for(lambda: d.ctl("status")["stream"]["stream_id"], 20, "the stream")
    assert [t["name"] for t in d.ctl("transmitters")["transmitters"]] == ["default"]
    assert d.ctl("stream")["transmitter"] == "default"
    assert d.stop() == 0

    mdm = transmitter_factory("mdm")
    d.write_config(d.config_text + "\n" + second_section(mdm))
    d.start()
    ts = wait_for(lambda: (lambda t: t if all(x["stream_id"] for x in t) else None)(
        d.ctl("transmitters")["transmitters"]), 20, "both streams")
    assert ts[0]["name"] == "default" and ts[0]["stream_id"] == stream_id
    assert len(transmitter.streams()) == 1
    assert json.dumps(ts[1]["stream_id"]) != json.dumps(stream_id)


def test_hung_transmitter_delays_nothing(daemon_factory, transmitter, transmitter_factory,
                                          tmp_path):
    """A transmitter that stops answering (SIGSTOP: connections are accepted by the kernel,
    nothing is ever answered) holds up neither the other's SETs nor the login gate."""
    mdm = transmitter_factory("mdm")
    d = daemon_factory(rules="[rule record]\naction = none\n", extra=second_section(mdm))
    transmitter.wait_stream()
    mdm.wait_stream()
    mdm.proc.send_signal(signal.SIGSTOP)
    try:
        for user in ("alice", "bob"):
            j = transmitter.send_event("session-revoked", email=f"{user}@example.com")
            transmitter.wait_acked(j)
            assert d.ctl("risk", user)["level"] == "high"
        assert pam_account(tmp_path, d, "alice") == PAM_PERM_DENIED
        assert pam_account(tmp_path, d, "carol") == PAM_SUCCESS
        assert d.ctl("transmitters")["transmitters"][0]["status"] == "enabled"
    finally:
        mdm.proc.send_signal(signal.SIGCONT)
    # Once it answers again, its SETs flow too.
    j = mdm.send_event("session-revoked", email="carol@example.com")
    mdm.wait_acked(j, timeout=60)
    assert d.ctl("risk", "carol")["level"] == "high"
