# SPDX-License-Identifier: MIT
"""End to end, the humane actions (PRODUCT.md "Actions") against the container's real
systemd-logind, under the installed unit (its PrivateDevices= sandbox included):

* logout with warn = DURATION: the warning appears on the terminal of a real ssh session (an
  ssh client with a pseudo-terminal, `ssh -tt`), PAM in sshd refuses alice meanwhile, her
  session is still there; then the logout closes her connection.
* lock: logind's LockSession on alice's real session: logind emits the session's Lock signal
  (what screen lockers obey), and nothing ends."""

import os
import subprocess

from container import wait_for
from e2e_support import closed_by_server, user_sessions, wait_exit

NOT_COMPLIANT = {"previous_status": "compliant", "current_status": "not-compliant"}

WARN_RULES = """[rule logout-high]
levels = high
action = logout
warn = {warn}
"""

LOCK_RULES = """[rule lock-high]
levels = high
action = lock
"""


def ssh_with_pty(system, user, command="echo ssh-session-up; exec sleep 600"):
    """An ssh session with a pseudo-terminal on the server (ssh -tt); returns (Popen, output
    path): what the remote terminal shows arrives in that file."""
    s = system.s
    cmd = s._ssh_cmd(user, command)
    cmd.insert(1, "-tt")
    out = os.path.join(system.workdir, f"ssh-tty-{user}-{len(s.procs)}.out")
    with open(out, "wb") as f:
        p = system.c.popen_in_netns(cmd, stdin=subprocess.DEVNULL, stdout=f,
                                    stderr=subprocess.STDOUT, env=s._ssh_env(user, False),
                                    start_new_session=True)
    s.procs.append(p)
    return p, out


def read(path):
    with open(path, "rb") as f:
        return f.read().decode(errors="replace")


def session_tty(c, sid):
    return c.run(["loginctl", "show-session", sid, "-p", "TTY", "--value"]).stdout.strip()


def send_noncompliant(system):
    return system.transmitter.send_event("device-compliance-change", email="alice@example.com",
                                         payload=NOT_COMPLIANT)


def alice_entry(system, jti):
    for e in system.history("alice"):
        if e.get("jti") == jti and e.get("action") in ("logout", "lock"):
            return e
    return None


def test_warn_then_logout_of_a_real_ssh_session(system):
    c, t = system.c, system.transmitter
    system.configure_daemon(WARN_RULES.format(warn="10s"))
    system.enable_and_start()

    ssh, out = ssh_with_pty(system, "alice")
    sessions = wait_for("alice's ssh session in loginctl", lambda: user_sessions(c, "alice"), 20)
    wait_for("the ssh session's shell", lambda: "ssh-session-up" in read(out), 20)
    (sid,) = sessions
    tty = session_tty(c, sid)
    assert tty.startswith("pts/"), f"logind reports TTY={tty!r} for alice's ssh session"

    jti = send_noncompliant(system)
    t.wait_acked(jti, timeout=30)

    # The warning, on the terminal of her ssh session.
    wait_for("the warning on alice's ssh terminal",
             lambda: "you will be logged out in 10 seconds." in read(out), 30)
    text = read(out)
    assert "Broadcast message from ssf-sessiond@" in text, text
    assert "ssf: device-compliance-change -- you will be logged out in 10 seconds." in text, text
    # The wait: she is still logged in, and sshd's PAM already refuses her.
    assert ssh.poll() is None, "the ssh session ended before the wait"
    assert sid in user_sessions(c, "alice")
    r = system.s.ssh("alice", "echo logged-in")
    assert r.returncode == 255 and "logged-in" not in r.stdout, (r.returncode, r.stdout, r.stderr)
    e = alice_entry(system, jti)
    assert e and e["result"].startswith(f"pending: warned 1 of 1 session: {sid} ({tty})"), e

    # Then the logout: her connection closes.
    rc = wait_exit(ssh, 60, "alice's ssh client to exit after the warned logout")
    assert rc == 255, f"ssh exited {rc}: {read(out)}"
    assert closed_by_server(read(out)), read(out)
    wait_for("alice to have no logind session left", lambda: not user_sessions(c, "alice"), 20)
    e = wait_for("the logout's result",
                 lambda: (alice_entry(system, jti) or {}).get("result", "").startswith("ok") and
                 alice_entry(system, jti), 30)
    assert "terminated 1 of 1 session" in e["result"] and "after a 10 s warning" in e["result"], e
    assert read(out).count("Broadcast message") == 1


def test_lock_of_a_real_logind_session(system):
    c, t = system.c, system.transmitter
    system.configure_daemon(LOCK_RULES)
    system.enable_and_start()

    ssh, out = ssh_with_pty(system, "alice")
    sessions = wait_for("alice's ssh session in loginctl", lambda: user_sessions(c, "alice"), 20)
    wait_for("the ssh session's shell", lambda: "ssh-session-up" in read(out), 20)
    (sid,) = sessions
    path = c.run(["busctl", "call", "org.freedesktop.login1", "/org/freedesktop/login1",
                  "org.freedesktop.login1.Manager", "GetSession", "s", sid]).stdout.split()[1]
    path = path.strip('"')

    # What a screen locker in the session would see: logind's Lock signal on its object.
    mon_out = os.path.join(system.workdir, "busctl-monitor.out")
    with open(mon_out, "wb") as f:
        mon = c.popen(["busctl", "monitor", "--system",
                       "--match", "type='signal',interface='org.freedesktop.login1.Session',"
                                  "member='Lock'"],
                      stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                      start_new_session=True)
    system.s.procs.append(mon)
    wait_for("busctl monitor to be listening", lambda: "Monitoring bus message stream" in read(mon_out)
             or mon.poll() is not None, 20)
    assert mon.poll() is None, read(mon_out)

    jti = send_noncompliant(system)
    t.wait_acked(jti, timeout=30)
    e = wait_for("the lock's result",
                 lambda: (alice_entry(system, jti) or {}).get("result", "").startswith("ok") and
                 alice_entry(system, jti), 30)
    assert e["action"] == "lock" and f"locked 1 of 1 session: {sid}" in e["result"], e
    wait_for("logind's Lock signal on alice's session",
             lambda: "Member=Lock" in read(mon_out) and path in read(mon_out), 20)
    # Locking ends nothing.
    assert ssh.poll() is None, "the ssh session ended"
    assert sid in user_sessions(c, "alice")
