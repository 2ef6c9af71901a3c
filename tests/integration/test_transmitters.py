# SPDX-License-Identifier: MIT
"""Several transmitters: [transmitter NAME] sections, each with its own stream, keys, counters
and network worker; root knows which transmitter a SET came from by the worker's channel;
`ssfctl transmitters`, `--transmitter`, the status and stream JSON shapes; rules with
`transmitters =`."""

import json
import signal

import support
from pam_support import PAM_PERM_DENIED, PAM_SUCCESS, run_pam
from support import wait_for

RECORD = support.RECORD_RULES


def pam_account(tmp_path, d, user):
    # pam_ssf, then pam_permit standing in for pam_unix.
    return run_pam(tmp_path, [f"account required {{module}} socket={d.socket} "
                              f"snapshot={d.snapshot}", "account required pam_permit.so"],
                   user, env=d.nss_env()).code


def with_mdm(daemon_factory, transmitter, mdm, rules=RECORD):
    """A daemon with the unnamed transmitter and mdm (both polled), once both streams exist."""
    d = daemon_factory(rules=rules, extra=support.transmitter_section(mdm, "mdm"))
    transmitter.wait_stream()
    mdm.wait_stream()
    return d


def test_two_transmitters_one_down(daemon_factory, transmitter, transmitter_factory):
    mdm = transmitter_factory("mdm")
    assert mdm.issuer != transmitter.issuer
    d = with_mdm(daemon_factory, transmitter, mdm)

    # Each transmitter's SET applies, through its own stream, and history records which
    # transmitter each came from (root's knowledge: the channel).
    support.each_transmitter_applies(d, [(transmitter, "alice", "default"), (mdm, "bob", "mdm")])

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
    d = with_mdm(daemon_factory, transmitter, mdm)

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
    d = with_mdm(daemon_factory, transmitter, mdm, rules=rules)
    logind.add_session("c1", users.uid("alice"), "alice")
    logind.add_session("c2", users.uid("bob"), "bob")

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
    d = daemon_factory(rules=RECORD)
    stream_id = wait_for(lambda: d.ctl("status")["stream"]["stream_id"], 20, "the stream")
    assert [t["name"] for t in d.ctl("transmitters")["transmitters"]] == ["default"]
    assert d.ctl("stream")["transmitter"] == "default"
    assert d.stop() == 0

    mdm = transmitter_factory("mdm")
    d.write_config(d.config_text + "\n" + support.transmitter_section(mdm, "mdm"))
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
    d = with_mdm(daemon_factory, transmitter, mdm)
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


def test_stream_none_push_only(daemon_factory, transmitter, transmitter_factory, tmp_path):
    """stream = none: issuer, jwks_uri, audience and the exact Authorization value configured;
    no discovery and no stream API call; a push with another Authorization gets 401 and
    nothing is applied. Beside it, the unnamed transmitter polls as before."""
    okta = transmitter_factory("okta")
    ca, cert, key = support.push_tls(tmp_path / "push-tls")
    port = support.free_port()
    url = f"https://127.0.0.1:{port}/ssf/okta"
    auth_file = support.write_secret(tmp_path / "okta-push-auth", "SSWS s3cret-value-of-the-admin")
    section = (f"[push]\npush_listen = 127.0.0.1:{port}\npush_cert = {cert}\npush_key = {key}\n\n"
               + support.static_push_section(okta, "okta", url, auth_file))
    d = daemon_factory(rules=RECORD, extra=section)
    okta.configure(push_ca=ca)
    transmitter.wait_stream()
    wait_for(lambda: d.ctl("transmitters")["transmitters"][1]["status"] == "enabled", 20,
             "the push-only transmitter ready")

    # The admin registers the push URL with the right Authorization: SETs apply.
    okta.control("POST", "static-push", {"endpoint_url": url,
                                         "authorization_header": "SSWS s3cret-value-of-the-admin"})
    j = okta.send_event("session-revoked", email="alice@example.com")
    okta.wait_acked(j)
    assert d.ctl("risk", "alice")["level"] == "high"
    assert support.history_transmitters(d, "alice", j) == ["okta"]

    # The receiver never used a stream API or discovery at this transmitter; only its JWKS.
    counters = okta.acks()["counters"]
    assert "GET /ssf/jwks.json" in counters, counters
    assert not any(k.startswith(("POST /ssf/stream", "GET /ssf/stream", "GET /.well-known",
                                 "POST /ssf/poll", "GET /ssf/status")) for k in counters), counters

    # Another Authorization: 401, nothing applied.
    okta.reset(streams=True)
    okta.control("POST", "static-push", {"endpoint_url": url,
                                         "authorization_header": "SSWS wrong"})
    j = okta.send_event("session-revoked", email="bob@example.com")
    wait_for(lambda: any(r["jti"] == j and r["status"] == 401
                         for r in okta.acks()["push_results"]), 20, "a 401 for the push")
    assert d.ctl("risk", "bob")["level"] == "none"

    s = d.ctl("stream", "--transmitter", "okta", check=False)
    assert s[0] != 0 and "no stream" in s[2], s


def test_root_refuses_an_iss_not_the_channels(daemon_factory, build_dir, tmp_path, transmitter):
    """A compromised worker (hostile_worker.py as the real root daemon's worker) that hands
    over a record with another issuer: root refuses it (invalid_issuer), records nothing; the
    same record with its transmitter's issuer applies."""
    from test_root_trust import CAEP, CONFIGURED_ISS, email, hostile_daemon, record, replies

    frames = [{"type": "ingest", "id": 1,
               "request": record("w1", CAEP + "session-revoked", email("alice@example.com"),
                                 iss="https://another-transmitter.example")},
              {"type": "ingest", "id": 2,
               "request": record("w2", CAEP + "session-revoked", email("alice@example.com"),
                                 iss=CONFIGURED_ISS)}]
    d, script = hostile_daemon(daemon_factory, build_dir, tmp_path,
                               frames, rules=RECORD)
    with open(script + ".go", "w"):
        pass
    wait_for(lambda: len(replies(script)) >= 2, 30, "both records answered")
    r = replies(script)
    assert r[0]["err"] == "invalid_issuer" and r[0]["status"] < 0, r
    assert r[1]["status"] == 0, r
    assert [e["jti"] for e in d.ctl("history", "alice")["entries"]] == ["w2"]


def revoked(i, jti, address, iss):
    """A hostile worker's ingest frame i: a session-revoked record for address from iss."""
    from test_root_trust import CAEP, email, record
    return {"type": "ingest", "id": i,
            "request": record(jti, CAEP + "session-revoked", email(address), iss=iss)}


def run_config_url_only(daemon_factory, build_dir, tmp_path, url, frames):
    """A daemon whose transmitter has config_url alone, under a compromised worker
    (hostile_worker.py) that sends frames; returns (the daemon, root's replies to the records),
    once every record is answered."""
    from test_root_trust import hostile_daemon, replies
    d, script = hostile_daemon(daemon_factory, build_dir, tmp_path, frames,
                               rules="[rule record]\naction = none\n",
                               transmitter_opts={"issuer": None, "config_url": url})
    with open(script + ".go", "w"):
        pass
    n = sum(f["type"] == "ingest" for f in frames)
    wait_for(lambda: len(replies(script)) >= n, 30, f"the {n} records answered")
    return d, replies(script)


def test_root_derives_the_issuer_from_config_url(daemon_factory, build_dir, tmp_path,
                                                  transmitter):
    """A transmitter configured with config_url alone: root takes its issuer from the URL by
    the SSF well-known rule, not from its worker. A compromised worker (hostile_worker.py)
    that reports a stream with another issuer and hands over records with it is refused
    (invalid_issuer); the one issuer config_url stands for applies, spelt with or without a
    terminating '/'."""
    url = "https://wk.invalid/.well-known/ssf-configuration/tenant1"
    reported = "https://reported.invalid"
    frames = [{"type": "facts", "stream": {"issuer": reported, "status": "enabled"}},
              revoked(1, "r1", "alice@example.com", reported),
              revoked(2, "r2", "alice@example.com", "https://wk.invalid/tenant1x"),
              revoked(3, "r3", "alice@example.com", "https://wk.invalid/tenant1"),
              revoked(4, "r4", "bob@example.com", "https://wk.invalid/tenant1/")]
    d, r = run_config_url_only(daemon_factory, build_dir, tmp_path, url, frames)
    assert r[0]["err"] == "invalid_issuer" and r[0]["status"] < 0, r
    assert r[1]["err"] == "invalid_issuer" and r[1]["status"] < 0, r
    assert r[2]["status"] == 0, r
    assert r[3]["status"] == 0, r
    assert [e["jti"] for e in d.ctl("history", "alice")["entries"]] == ["r3"]
    assert [e["jti"] for e in d.ctl("history", "bob")["entries"]] == ["r4"]


def test_vendor_config_url_takes_the_issuer_from_the_metadata(daemon_factory, transmitter):
    """A vendor's "SSF Well-Known URL" of its own form (here with a query) stands for no issuer:
    --check-config accepts it alone with a warning recommending issuer, and the daemon takes
    the issuer from the transmitter's metadata; its SETs apply end to end, one with another
    iss is refused."""
    url = transmitter.origin + "/.well-known/ssf-configuration?tenant=acme"
    d = daemon_factory(rules="[rule record]\naction = none\n", start=False,
                       transmitter_opts={"issuer": None, "config_url": url})
    cp = d.check_config()
    assert cp.returncode == 0, cp.stderr
    assert (f"'config_url' {url} is not the SSF well-known URL of an issuer" in cp.stderr
            and "the issuer will be taken from the transmitter's metadata" in cp.stderr
            and "setting 'issuer'" in cp.stderr), cp.stderr
    d.start()
    transmitter.wait_stream()
    jti = transmitter.send_event("session-revoked", email="alice@example.com")
    transmitter.wait_acked(jti)
    assert d.ctl("risk", "alice")["level"] == "high"
    assert wait_for(lambda: d.ctl("status")["stream"]["issuer"] == transmitter.issuer, 20,
                    "the discovered issuer reported")
    out = transmitter.send_event_full("session-revoked", email="bob@example.com",
                                      claims={"iss": "https://elsewhere.invalid"})
    err = transmitter.wait_set_err(out["jti"])
    assert err["err"] == "invalid_issuer", err
    assert d.ctl("risk", "bob")["level"] == "none"


def test_vendor_config_url_warning_once_across_reloads(daemon_factory, transmitter):
    """The warning about a config_url that stands for no issuer is logged once for a
    transmitter and its config_url: not again at reloads that keep them, again when the
    config_url changes."""
    url = transmitter.origin + "/.well-known/ssf-configuration?tenant=acme"
    d = daemon_factory(rules="[rule record]\naction = none\n",
                       transmitter_opts={"issuer": None, "config_url": url})
    transmitter.wait_stream()

    def warnings(u):
        return d.log().count(f"'config_url' {u} is not the SSF well-known URL of an issuer")

    def reload(n):
        d.signal(signal.SIGHUP)
        wait_for(lambda: d.log().count("Configuration reloaded") == n, 20, f"reload {n}")

    assert warnings(url) == 1
    reload(1)
    reload(2)
    assert warnings(url) == 1

    other = transmitter.origin + "/.well-known/ssf-configuration?tenant=other"
    d.write_config(d.config_text.replace(url, other))
    reload(3)
    reload(4)
    assert warnings(other) == 1
    assert warnings(url) == 1


def test_vendor_config_url_root_takes_only_the_reported_issuer(daemon_factory, build_dir,
                                                                tmp_path, transmitter):
    """For a config_url that stands for no issuer, root takes the issuer the worker reported
    from discovery: before any is reported every record is refused, then only that issuer
    applies (hostile_worker.py)."""
    url = "https://idp.invalid/.well-known/risc-configuration"
    reported = "https://idp.invalid/"
    frames = [revoked(1, "r1", "alice@example.com", reported),
              {"type": "facts", "stream": {"issuer": reported, "status": "enabled"}},
              revoked(2, "r2", "alice@example.com", "https://other.invalid"),
              revoked(3, "r3", "alice@example.com", reported)]
    d, r = run_config_url_only(daemon_factory, build_dir, tmp_path, url, frames)
    assert r[0]["err"] == "invalid_issuer" and r[0]["status"] < 0, r
    assert r[1]["err"] == "invalid_issuer" and r[1]["status"] < 0, r
    assert r[2]["status"] == 0, r
    assert [e["jti"] for e in d.ctl("history", "alice")["entries"]] == ["r3"]


def test_ssf_config_url_issuer_with_a_terminating_slash(daemon_factory, transmitter):
    """config_url of the SSF form https://HOST/.well-known/ssf-configuration stands for
    https://HOST, or https://HOST/ (the rule removed a terminating '/'): a transmitter whose
    metadata, stream and SETs name https://HOST/ works end to end."""
    slashed = transmitter.origin + "/"
    transmitter.configure(issuer_override=slashed)
    d = daemon_factory(rules="[rule record]\naction = none\n",
                       transmitter_opts={"issuer": None,
                                         "config_url": transmitter.origin +
                                         "/.well-known/ssf-configuration"})
    transmitter.wait_stream()
    jti = transmitter.send_event("session-revoked", email="alice@example.com")
    transmitter.wait_acked(jti)
    assert d.ctl("risk", "alice")["level"] == "high"
    assert d.ctl("status")["stream"]["issuer"] == slashed


def test_ssf_config_url_metadata_of_another_issuer_is_refused(daemon_factory, transmitter):
    """The worker refuses transmitter metadata whose issuer is neither spelling of the one its
    SSF-form config_url stands for, and says which two it expected; no stream is created."""
    transmitter.configure(issuer_override="https://elsewhere.invalid")
    want = transmitter.origin
    d = daemon_factory(rules="[rule record]\naction = none\n",
                       transmitter_opts={"issuer": None,
                                         "config_url": want + "/.well-known/ssf-configuration"})
    wait_for(lambda: (f"'https://elsewhere.invalid' is neither '{want}' nor '{want}/'"
                      in d.log()), 30, "the metadata refused, both spellings named")
    assert transmitter.streams() == []
