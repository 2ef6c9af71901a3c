# SPDX-License-Identifier: MIT
"""End to end on a real system: the installed product under systemd in a systemd-nspawn
container, with real logind sessions (sshd, su -l), real PAM in sshd, the real journal, and
the local transmitter delivering Security Event Tokens over HTTPS.

Each scenario asserts what a user or an admin would see: the ssh client's connection
closing, PAM's message on the ssh client's terminal, `ssfctl` output, journal records."""

import json
import os
import threading
import time

from container import wait_for
from e2e_support import (DENIAL_TEXT, MESSAGE_ACTION, MESSAGE_RISK_CHANGED,
                         MESSAGE_SET_RECEIVED, MESSAGE_STREAM, PAM_DIR, PUSH_DELIVERY,
                         RULES_TEMPLATE, closed_by_server, journal_records, ssfctl, user_sessions,
                         wait_exit)
from ssf_transmitter import make_tls_files

NOT_COMPLIANT = {"previous_status": "compliant", "current_status": "not-compliant"}
# Push delivery: an unprivileged port (the unit grants no CAP_NET_BIND_SERVICE) on the
# container's loopback, where the transmitter (in its network namespace) reaches it.
PUSH_PORT = 8443
PUSH_URL = f"https://127.0.0.1:{PUSH_PORT}/ssf/events"


def login_works(system, user):
    r = system.s.ssh(user, "echo logged-in-as-$(id -un)")
    return r.returncode == 0 and f"logged-in-as-{user}" in r.stdout, r


def assert_refused_publickey(r):
    """What an ssh user sees when sshd's account stack refuses a publickey login."""
    assert r.returncode == 255, f"ssh exited {r.returncode}: {r.stderr}"
    assert "Connection closed by 127.0.0.1" in r.stderr, r.stderr


def open_alice_sessions(system):
    """alice over ssh and through su -l: two live logind sessions."""
    ssh, ssh_out = system.s.ssh_background("alice")
    su = system.s.su_background("alice", "e2e-su-alice")

    def both():
        sess = user_sessions(system.c, "alice")
        services = sorted(v.get("Service") for v in sess.values())
        return services == ["sshd", "su-l"] and sess
    sessions = wait_for("alice's ssh and su -l sessions in loginctl", both, 20)
    by_service = {v["Service"]: v for v in sessions.values()}
    assert by_service["sshd"]["Remote"] == "yes"
    assert by_service["su-l"]["Remote"] == "no"
    wait_for("the ssh session's shell", lambda: b"ssh-session-up" in open(ssh_out, "rb").read(),
             20)
    return ssh, ssh_out, su


def send_noncompliant(system):
    return system.transmitter.send_event("device-compliance-change", email="alice@example.com",
                                         payload=NOT_COMPLIANT)


def logout_entry(system, jti):
    def done():
        for e in system.history("alice"):
            if e.get("jti") == jti and e.get("action") == "logout" and \
                    e.get("result") not in (None, "", "pending"):
                return e
        return None
    return wait_for("the logout's result in `ssfctl history alice`", done, 30)


# ------------------------------------------------------------------------------------------
def test_install_layout_and_units(system):
    """make install DESTDIR= put everything at Debian's paths with safe modes; the units
    are known to systemd and the socket activates the service."""
    c = system.c
    st = c.run(["stat", "-c", "%n %a %U:%G %F",
                "/usr/sbin/ssf-sessiond", "/usr/bin/ssfctl", f"{PAM_DIR}/pam_ssf.so",
                "/etc/ssf", "/etc/ssf/hooks.d", "/etc/ssf/ssf-sessiond.conf.d",
                "/etc/ssf/ssf-sessiond.conf", "/etc/ssf/hooks.d/notify-admin",
                "/lib/systemd/system/ssf-sessiond.service",
                "/lib/systemd/system/ssf-sessiond.socket",
                "/usr/share/man/man8/ssf-sessiond.8", "/usr/share/man/man8/pam_ssf.8",
                "/usr/share/man/man8/ssfctl.8", "/usr/share/man/man5/ssf-sessiond.conf.5",
                "/usr/lib/sysusers.d/ssf-sessiond.conf",
                "/usr/share/doc/ssf/pam.d-ssf.example",
                "/usr/share/doc/ssf/examples/ssf-sessiond.conf"]
               ).stdout
    modes = {ln.split()[0]: ln.split()[1:] for ln in st.splitlines()}
    for path, (mode, owner, *_) in modes.items():
        assert owner == "root:root", f"{path} is owned by {owner}"
        assert int(mode, 8) & 0o022 == 0, f"{path} is group/world-writable ({mode})"
    assert modes["/usr/sbin/ssf-sessiond"][0] == "755"
    assert modes[f"{PAM_DIR}/pam_ssf.so"][0] == "644"
    assert modes["/etc/ssf/hooks.d/notify-admin"][0] == "755"
    # systemd-sysusers created the network worker's user from the installed sysusers.d file.
    pw = c.run(["getent", "passwd", "ssf-sessiond"], check=False).stdout.strip().split(":")
    assert len(pw) == 7 and pw[2] != "0" and pw[6] in ("/usr/sbin/nologin", "/sbin/nologin"), pw
    # The installed binaries find their libraries in a stock Debian 12.
    for b in ("/usr/sbin/ssf-sessiond", "/usr/bin/ssfctl"):
        assert c.run([b, "--version"], check=False).returncode == 0, f"{b} --version failed"

    # The installed units, with the installed binary, as systemd on the target sees them.
    r = c.run(["systemd-analyze", "verify", "--man=no", "ssf-sessiond.service",
               "ssf-sessiond.socket"], check=False)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr

    system.configure_daemon(RULES_TEMPLATE.format(reset="no"))
    c.systemctl("daemon-reload")
    c.systemctl("enable", "--now", "ssf-sessiond.socket")
    c.systemctl("enable", "ssf-sessiond.service")
    assert c.systemctl("is-enabled", "ssf-sessiond.socket").stdout.strip() == "enabled"
    assert c.systemctl("is-active", "ssf-sessiond.service", check=False).stdout.strip() \
        == "inactive"
    assert c.run("stat -c '%a %F' /run/ssf-sessiond/socket").stdout.strip() == "666 socket"
    # The first client (PAM in sshd) activates the service through the socket.
    ok, r = login_works(system, "bob")
    assert ok, f"bob's ssh login failed while the service was being activated: {r.stderr}"
    system.wait_active()
    assert c.systemctl("show", "-p", "Type", "--value", "ssf-sessiond.service"
                       ).stdout.strip() == "notify"
    assert c.systemctl("show", "-p", "WatchdogUSec", "--value", "ssf-sessiond.service"
                       ).stdout.strip() == "30s"
    # State and runtime directories as the unit declares them.
    assert c.run("stat -c '%a %U' /var/lib/ssf-sessiond").stdout.strip() == "700 root"
    assert ssfctl(c, "risk", "bob")["level"] == "none"
    # Privilege separation under the real unit: the daemon is root, its network worker runs
    # as the sysusers-created user, inside the service's cgroup.
    main = c.systemctl("show", "-p", "MainPID", "--value", "ssf-sessiond.service").stdout.strip()
    ps = c.run(["ps", "-o", "pid=,ppid=,user:20=,args=", "--ppid", main], check=False).stdout
    workers = [ln.split(None, 3) for ln in ps.splitlines() if "--network-worker" in ln]
    assert len(workers) == 1, ps
    assert workers[0][2] == "ssf-sessiond", workers
    assert c.run(["ps", "-o", "user=", "-p", main]).stdout.strip() == "root"


def test_universal_logout_keeps_risk(system):
    """The seed's first demonstration, reset = no."""
    c, t = system.c, system.transmitter
    system.configure_daemon(RULES_TEMPLATE.format(reset="no"))
    system.enable_and_start()
    ok, r = login_works(system, "alice")
    assert ok, f"alice cannot log in before any signal: {r.stderr}"

    ssh, ssh_out, su = open_alice_sessions(system)
    bob_ssh, _ = system.s.ssh_background("bob")
    wait_for("bob's ssh session", lambda: user_sessions(c, "bob"), 20)

    jti = send_noncompliant(system)
    t.wait_acked(jti, timeout=30)

    # Both of alice's sessions end: her ssh client sees the connection closed.
    rc = wait_exit(ssh, 30, "alice's ssh client to exit after the logout")
    out = open(ssh_out, "rb").read().decode(errors="replace")
    assert rc == 255, f"ssh exited {rc}, expected 255 (connection closed): {out}"
    assert closed_by_server(out), out
    wait_exit(su, 30, "alice's su -l session to end")
    wait_for("alice to have no logind session left",
             lambda: not user_sessions(c, "alice"), 20)
    # bob was not touched.
    assert bob_ssh.poll() is None, "bob's ssh session ended too"
    assert user_sessions(c, "bob")

    # ssfctl history alice: received -> risk high -> rule -> logout.
    e = logout_entry(system, jti)
    assert e["event"] == "device-compliance-change", e
    assert e["detection"] == "device-compliance-change", e
    assert (e["level_before"], e["level_after"]) == ("none", "high"), e
    assert (e["rule"], e["action"]) == ("logout-high", "logout"), e
    assert e["result"].startswith("ok"), e
    assert "2 of 2" in e["result"], e
    plain = c.run(["ssfctl", "history", "alice"]).stdout
    assert "logout-high" in plain and "device-compliance-change" in plain, plain

    risk = system.risk("alice")
    assert risk["level"] == "high", risk
    assert [d["detection"] for d in risk["detections"]] == ["device-compliance-change"]
    assert risk["detections"][0]["jti"] == jti

    # The journal holds the structured records.
    wait_for("the SET-received journal record",
             lambda: journal_records(c, MESSAGE_SET_RECEIVED, SSF_JTI=jti), 10)
    rec = journal_records(c, MESSAGE_SET_RECEIVED, SSF_JTI=jti)[0]
    assert rec["SSF_EVENT"].endswith("/device-compliance-change"), rec
    risk_recs = journal_records(c, MESSAGE_RISK_CHANGED, SSF_JTI=jti, SSF_USER="alice")
    assert risk_recs, "no risk-changed journal record for alice"
    r = risk_recs[0]
    assert (r["SSF_LEVEL"], r["SSF_PREVIOUS_LEVEL"]) == ("high", "none"), r
    assert (r["SSF_RULE"], r["SSF_ACTION"]) == ("logout-high", "logout"), r
    act = wait_for("the logout action journal record",
                   lambda: journal_records(c, MESSAGE_ACTION, SSF_JTI=jti, SSF_USER="alice"), 10)
    assert (act[0]["SSF_RULE"], act[0]["SSF_ACTION"]) == ("logout-high", "logout"), act[0]
    assert act[0]["SSF_RESULT"].startswith("ok"), act[0]

    # reset = no: a new login is refused, and the user is told why.
    r = system.s.ssh("alice", kbdint=True)
    assert r.returncode != 0, "alice logged in again although her risk is high"
    assert DENIAL_TEXT in r.stderr and "high" in r.stderr, \
        f"the PAM message did not reach alice's ssh client: {r.stderr!r}"
    # publickey: sshd only closes the connection; the journal says why.
    r = system.s.ssh("alice")
    assert_refused_publickey(r)
    logs = c.run(["journalctl", "--no-pager", "-t", "sshd"]).stdout
    assert "Access denied for user alice by PAM account configuration" in logs, logs
    assert "pam_ssf(sshd:account): Access denied for user 'alice'" in logs, logs
    # bob still gets in.
    ok, r = login_works(system, "bob")
    assert ok, r.stderr


def test_universal_logout_then_reset(system):
    """The seed's first demonstration, reset = yes: her risk is none right after the
    logout, and ssh admits her again."""
    c, t = system.c, system.transmitter
    system.configure_daemon(RULES_TEMPLATE.format(reset="yes"))
    system.enable_and_start()
    ssh, ssh_out, su = open_alice_sessions(system)

    jti = send_noncompliant(system)
    t.wait_acked(jti, timeout=30)
    rc = wait_exit(ssh, 30, "alice's ssh client to exit after the logout")
    assert rc == 255, open(ssh_out, "rb").read()
    wait_exit(su, 30, "alice's su -l session to end")
    wait_for("alice to have no logind session left",
             lambda: not user_sessions(c, "alice"), 20)
    e = logout_entry(system, jti)
    assert e["result"].startswith("ok") and "2 of 2" in e["result"], e
    wait_for("alice's risk to be reset after the logout",
             lambda: system.risk("alice")["level"] == "none", 20)
    events = [x["event"] for x in system.history("alice")]
    assert events[0] == "reset" and "device-compliance-change" in events, events
    ok, r = login_works(system, "alice")
    assert ok, f"alice was not admitted after the reset: {r.stderr}"


def listener_owners(c, port):
    """`user pid args` of the container's processes holding a TCP socket listening on
    port (IPv4)."""
    script = f"""
inode=$(awk 'NR > 1 && $4 == "0A" && $2 ~ /:{port:04X}$/ {{ print $10 }}' /proc/net/tcp)
[ -n "$inode" ] || exit 0
for fd in /proc/[0-9]*/fd/*; do
        [ "$(readlink "$fd" 2>/dev/null)" = "socket:[$inode]" ] || continue
        pid=${{fd#/proc/}}; pid=${{pid%%/*}}
        ps -o user:20=,pid=,args= -p "$pid"
done | sort -u
"""
    return [ln.split(None, 2) for ln in c.run(script).stdout.splitlines() if ln.strip()]


def test_push_delivery_under_the_unit(system):
    """RFC 8935 push under the shipped, hardened unit: the daemon listens on an unprivileged
    port with a certificate and key from /etc/ssf, the transmitter pushes the seed's
    device-compliance-change, and alice's real sessions end as they do over poll. (Like
    every scenario it has its own container: the poll configuration of the others is not
    touched.)"""
    c, t = system.c, system.transmitter
    tls = os.path.join(system.workdir, "push-tls")
    os.makedirs(tls)
    ca, cert, key = make_tls_files(tls, hosts=("localhost",), ips=("127.0.0.1",))
    # As an admin installs them: the chain world-readable, the key root's alone.
    with open(cert) as f:
        c.write_file("/etc/ssf/push-cert.pem", f.read(), mode=0o644)
    with open(key) as f:
        c.write_file("/etc/ssf/push-key.pem", f.read(), mode=0o600)
    t.configure(push_ca=ca)  # the transmitter verifies the daemon's listener against this CA
    system.configure_daemon(RULES_TEMPLATE.format(reset="no"), push={
        "listen": f"127.0.0.1:{PUSH_PORT}", "url": PUSH_URL,
        "cert": "/etc/ssf/push-cert.pem", "key": "/etc/ssf/push-key.pem"})
    system.enable_and_start()  # waits for the push stream to push_url at the transmitter
    main_pid = system.main_pid()
    stream = system.wait_push_stream()
    secret = stream["delivery"]["authorization_header"][len("Bearer "):]
    assert len(secret) > 40, stream["delivery"]

    # The listener belongs to the network worker, which runs as the unprivileged user.
    owners = wait_for(f"a process listening on 127.0.0.1:{PUSH_PORT}",
                      lambda: listener_owners(c, PUSH_PORT), 10)
    assert all(o[0] == "ssf-sessiond" and "--network-worker" in o[2] for o in owners), owners
    assert main_pid not in [o[1] for o in owners], owners

    # The daemon says how it receives: the journal, `ssfctl status`, `ssfctl stream`.
    rec = wait_for("the 'Receiving security events … by push' journal record",
                   lambda: [e for e in journal_records(c, MESSAGE_STREAM)
                            if "by push" in e.get("MESSAGE", "")], 10)[-1]
    assert rec["MESSAGE"].startswith("Receiving security events from ") and \
        PUSH_URL in rec["MESSAGE"] and f"127.0.0.1:{PUSH_PORT}" in rec["MESSAGE"], rec
    assert rec["SSF_STREAM"] == stream["stream_id"], rec
    st = ssfctl(c, "status")["stream"]
    assert (st["delivery"], st["endpoint_url"]) == (PUSH_DELIVERY, PUSH_URL), st
    assert st["stream_id"] == stream["stream_id"], st
    plain = c.run(["ssfctl", "status"]).stdout.splitlines()
    assert f"delivery: {PUSH_DELIVERY}" in plain and f"endpoint_url: {PUSH_URL}" in plain, plain
    shown = ssfctl(c, "stream")
    assert (shown["transmitter"], shown["stream_id"]) == ("default", stream["stream_id"]), shown
    cfg = shown["configuration"]
    assert cfg["delivery"]["method"] == PUSH_DELIVERY, cfg
    assert cfg["delivery"]["endpoint_url"] == PUSH_URL, cfg

    ssh, ssh_out, su = open_alice_sessions(system)
    jti = send_noncompliant(system)
    t.wait_acked(jti, timeout=30)
    pushes = [r for r in t.acks()["push_results"] if r["jti"] == jti]
    assert [r["status"] for r in pushes] == [202], pushes

    rc = wait_exit(ssh, 30, "alice's ssh client to exit after the logout")
    out = open(ssh_out, "rb").read().decode(errors="replace")
    assert rc == 255 and closed_by_server(out), f"ssh exited {rc}: {out}"
    wait_exit(su, 30, "alice's su -l session to end")
    wait_for("alice to have no logind session left",
             lambda: not user_sessions(c, "alice"), 20)
    e = logout_entry(system, jti)
    assert (e["rule"], e["action"]) == ("logout-high", "logout"), e
    assert e["result"].startswith("ok") and "2 of 2" in e["result"], e
    risk = system.risk("alice")
    assert risk["level"] == "high", risk
    assert [d["jti"] for d in risk["detections"]] == [jti], risk
    plain = c.run(["ssfctl", "risk", "alice"]).stdout
    assert plain.startswith("alice: high\n") and "device-compliance-change" in plain, plain
    wait_for("the SET-received journal record",
             lambda: journal_records(c, MESSAGE_SET_RECEIVED, SSF_JTI=jti), 10)
    r = system.s.ssh("alice")
    assert_refused_publickey(r)

    # Still the same, healthy service; the push secret is never shown nor logged.
    assert c.systemctl("is-active", "ssf-sessiond.service", check=False).stdout.strip() \
        == "active"
    assert system.main_pid() == main_pid
    assert c.systemctl("show", "-p", "NRestarts", "--value", "ssf-sessiond.service"
                       ).stdout.strip() == "0"
    assert secret not in json.dumps(ssfctl(c, "stream")) + c.run(["ssfctl", "status"]).stdout
    journal = c.run(["journalctl", "--no-pager", "-o", "json"]).stdout
    assert jti in journal and secret not in journal


def test_medium_risk_runs_workflow_hook(system):
    """The seed's second demonstration: a medium-risk signal runs the hook with the
    documented environment and ends no session."""
    c, t = system.c, system.transmitter
    system.configure_daemon(RULES_TEMPLATE.format(reset="no"))
    system.enable_and_start()
    ssh, ssh_out, su = open_alice_sessions(system)
    uid = c.run(["id", "-u", "alice"]).stdout.strip()

    jti = t.send_event("credential-change", email="alice@example.com",
                       payload={"credential_type": "password", "change_type": "update"})
    t.wait_acked(jti, timeout=30)
    safe = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in jti)
    env_path = f"/var/lib/ssf-e2e/hook-{safe}.env"
    wait_for("the workflow hook to write its environment", lambda: c.exists(env_path), 30)
    env = dict(ln.split("=", 1) for ln in c.read_file(env_path).splitlines() if "=" in ln)
    assert env["SSF_USER"] == "alice"
    assert env["SSF_UID"] == uid
    assert env["SSF_RISK_LEVEL"] == "medium"
    assert env["SSF_PREVIOUS_RISK_LEVEL"] == "none"
    assert env["SSF_DETECTION"] == "credential-change"
    assert env["SSF_EVENT_TYPE"].endswith("/credential-change")
    assert env["SSF_JTI"] == jti
    assert env["SSF_ISSUER"] == t.issuer
    assert env["SSF_RULE"] == "notify-medium"
    assert env["PATH"] == "/usr/sbin:/usr/bin:/sbin:/bin"
    assert "SSF_REASON" in env
    stdin = json.loads(c.read_file(env_path.replace(".env", ".stdin")))
    assert json.dumps(stdin).find(jti) >= 0, stdin
    assert c.read_file(env_path.replace(".env", ".uid")).strip() == "0"  # [hooks] user = root

    # The shipped example hook (run by the test hook) logged to the journal.
    wait_for("the notify-admin hook's journal line",
             lambda: jti in c.run(["journalctl", "--no-pager", "-t", "ssf-notify-admin"],
                                  check=False).stdout, 20)

    def done():
        for e in system.history("alice"):
            if e.get("jti") == jti and e.get("result") not in (None, "", "pending"):
                return e
        return None
    e = wait_for("the workflow's result in history", done, 30)
    assert (e["rule"], e["action"]) == ("notify-medium", "workflow"), e
    assert e["result"].startswith("ok"), e
    assert journal_records(c, MESSAGE_ACTION, SSF_JTI=jti, SSF_ACTION="workflow")

    # Nobody was logged out and medium is below deny=high: alice still gets in.
    assert ssh.poll() is None, "alice's ssh session ended on a medium-risk signal"
    assert su.poll() is None, "alice's su -l session ended on a medium-risk signal"
    assert sorted(v["Service"] for v in user_sessions(c, "alice").values()) == ["sshd", "su-l"]
    ok, r = login_works(system, "alice")
    assert ok, r.stderr


def test_restart_in_a_burst_applies_every_event_once(system):
    """systemctl restart ssf-sessiond in the middle of a burst of events: every event is
    applied exactly once, and PAM answers (failmode=closed) throughout."""
    c, t = system.c, system.transmitter
    users = [f"user{i}" for i in range(1, 7)]
    for u in users:
        c.run(["useradd", "--no-create-home", u])
    system.pam_sshd("failmode=closed timeout=5000")
    system.configure_daemon(RULES_TEMPLATE.format(reset="no"))
    system.enable_and_start()
    ssfctl(c, "set-risk", "alice", "high", "--reason", "e2e restart test")

    # PAM throughout: bob (risk none) must always get in, alice (high) never; with
    # failmode=closed an unanswered query would refuse bob.
    stop = threading.Event()
    results = []  # (user, ssh exit status, stderr, start, end) on the monotonic clock

    def logins():
        while not stop.is_set():
            for u in ("bob", "alice"):
                start = time.monotonic()
                r = system.s.ssh(u, "true")
                results.append((u, r.returncode, r.stderr.strip(), start, time.monotonic()))
    th = threading.Thread(target=logins, daemon=True)
    th.start()
    try:
        wait_for("the first logins", lambda: len(results) >= 2, 60)
        jtis = []
        first_pid = system.main_pid()
        for n in range(24):
            if n == 8:
                restart_begin = time.monotonic()
                c.systemctl("restart", "--no-block", "ssf-sessiond.service")
            u = users[n % len(users)]
            jtis.append(t.send_event("risk-level-change", email=f"{u}@example.com",
                                     payload={"principal": "USER", "current_level": "LOW"}))
        wait_for("the restarted service to be running",
                 lambda: system.main_pid() not in ("0", first_pid), 60)
        system.wait_active()
        restart_end = time.monotonic()
        wait_for("every SET of the burst to be acknowledged",
                 lambda: set(jtis) <= set(t.acks()["acked"]), 60)
        # A few more logins after the burst, then stop.
        n0 = len(results)
        wait_for("logins after the burst", lambda: len(results) >= n0 + 4, 60)
    finally:
        stop.set()
        th.join(60)

    errs = {j: e for j, e in t.acks()["set_errs"].items() if j in jtis}
    assert not errs, f"SETs of the burst reported as errors: {errs}"
    seen = {}
    for u in users:
        for e in system.history(u, n=1000):
            if e.get("jti") in jtis:
                seen[e["jti"]] = seen.get(e["jti"], 0) + 1
    missing = [j for j in jtis if j not in seen]
    twice = {j: k for j, k in seen.items() if k != 1}
    assert not missing, f"{len(missing)} events never applied: {missing}"
    assert not twice, f"events applied more than once: {twice}"
    for u in users:
        assert system.risk(u)["level"] == "low", (u, system.risk(u))

    bob = [r for r in results if r[0] == "bob"]
    alice = [r for r in results if r[0] == "alice"]
    assert bob and alice
    during = [r for r in results if r[3] <= restart_end and r[4] >= restart_begin]
    assert during, "no login overlapped the restart: the test proved nothing"
    print(f"{len(results)} logins, {len(during)} of them during the restart")
    bad_bob = [r for r in bob if r[1] != 0]
    assert not bad_bob, f"bob refused while the daemon restarted: {bad_bob[:3]}"
    bad_alice = [r for r in alice if r[1] == 0]
    assert not bad_alice, "alice (risk high) was admitted while the daemon restarted"
    assert not user_sessions(c, "alice")


def test_daemon_stopped_failmode_and_snapshot(system):
    """With the daemon and its socket stopped, PAM uses the last-known-risk snapshot for
    users at or above deny=, and failmode for everyone else."""
    c = system.c
    system.configure_daemon(RULES_TEMPLATE.format(reset="no"))
    system.enable_and_start()
    ssfctl(c, "set-risk", "alice", "high", "--reason", "e2e snapshot test")
    # Keyed by uid, with who is never acted upon (the module resolves names itself).
    uid = c.run("id -u alice").stdout.strip()
    # A change is appended to the snapshot's journal (compacted into the base file later).
    wait_for("the PAM snapshot to list alice",
             lambda: f"\n{uid} high " in c.run("cat /var/lib/ssf-sessiond/pam-snapshot "
                                               "/var/lib/ssf-sessiond/pam-snapshot.journal",
                                               check=False).stdout, 20)
    snap = c.run("cat /var/lib/ssf-sessiond/pam-snapshot").stdout
    assert "\nprotect root\n" in snap and "\nmin_uid " in snap, snap
    for f in ("pam-snapshot", "pam-snapshot.journal"):
        assert c.run(f"stat -c '%a %U' /var/lib/ssf-sessiond/{f}").stdout.strip() == "600 root"

    c.systemctl("stop", "ssf-sessiond.socket", "ssf-sessiond.service")
    assert not c.exists("/run/ssf-sessiond/socket")

    # failmode=open (default): bob is admitted, alice is still refused from the snapshot.
    ok, r = login_works(system, "bob")
    assert ok, f"failmode=open refused bob: {r.stderr}"
    r = system.s.ssh("alice", kbdint=True)
    assert r.returncode != 0, "alice admitted with the daemon down although the snapshot " \
        "says high"
    assert DENIAL_TEXT in r.stderr, r.stderr
    logs = c.run(["journalctl", "--no-pager", "-t", "sshd", "-g", "pam_ssf"]).stdout
    assert "snapshot" in logs and "lists user 'alice' at risk level high" in logs, logs
    assert "user 'bob': user not in snapshot; failmode=open" in logs, logs

    # failmode=closed: bob is refused as well.
    system.pam_sshd("failmode=closed")
    r = system.s.ssh("bob", "true")
    assert_refused_publickey(r)
    logs = c.run(["journalctl", "--no-pager", "-t", "sshd", "-g", "pam_ssf"]).stdout
    assert "failmode=closed: refusing access" in logs, logs

    # The socket back: the next login activates the daemon, which answers again.
    c.systemctl("start", "ssf-sessiond.socket")
    ok, r = login_works(system, "bob")
    assert ok, f"bob refused after the socket came back: {r.stderr}"
    system.wait_active()
    assert system.risk("alice")["level"] == "high"


# A hook whose descendant leaves its session (setsid -f: an orphan in a session of its own),
# reports its cgroup, and then outlives its timeout.
ESCAPE_HOOK = """#!/bin/sh
pidfile=/var/lib/ssf-e2e/escape.pid
setsid -f sh -c "echo \\$\\$ > $pidfile; exec sleep 300" </dev/null >/dev/null 2>&1
while [ ! -s $pidfile ]; do sleep 0.05; done
grep '^0::' /proc/self/cgroup
exec sleep 300
"""


def test_hook_descendants_die_at_timeout_in_its_cgroup(system):
    """Under the shipped unit (Delegate=yes) each hook runs in a cgroup of its own below the
    service's; at the hook's timeout everything in it is killed, even a process that called
    setsid(), and the cgroup is removed."""
    c, t = system.c, system.transmitter
    c.write_file("/etc/ssf/hooks.d/e2e-escape", ESCAPE_HOOK, mode=0o755)
    system.configure_daemon(RULES_TEMPLATE.format(reset="no").replace(
        "workflow = e2e-record", "workflow = e2e-escape"))
    c.run(["sed", "-i", "s/^timeout = .*/timeout = 3s/", "/etc/ssf/ssf-sessiond.conf"])
    system.enable_and_start()

    jti = t.send_event("credential-change", email="alice@example.com",
                       payload={"credential_type": "password", "change_type": "update"})
    t.wait_acked(jti, timeout=30)
    wait_for("the hook's descendant to start",
             lambda: c.exists("/var/lib/ssf-e2e/escape.pid")
             and c.read_file("/var/lib/ssf-e2e/escape.pid").strip(), 30)
    pid = int(c.read_file("/var/lib/ssf-e2e/escape.pid"))

    def done():
        for e in system.history("alice"):
            if e.get("jti") == jti and e.get("result") not in (None, "", "pending"):
                return e
        return None
    e = wait_for("the hook's result in history", done, 30)
    assert e["result"].startswith("failed: timed out, killed by signal TERM"), e
    # It ran in hook-PID-N below the service's own cgroup...
    assert "/ssf-sessiond.service/hook-" in e["result"], e
    # ...its descendant in another session is gone (systemd, PID 1, reaped it)...
    wait_for(f"the hook's descendant {pid} to be gone",
             lambda: not c.exists(f"/proc/{pid}"), 15)
    # ...and so is the hook's cgroup; the daemon still runs in the service's.
    left = c.run(["sh", "-c", "find /sys/fs/cgroup -path '*ssf-sessiond.service/hook-*' "
                  "-maxdepth 6"], check=False).stdout.split()
    assert left == [], left
    assert system.main_pid()
