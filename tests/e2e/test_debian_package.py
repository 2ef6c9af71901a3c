# SPDX-License-Identifier: MIT
"""The Debian package (`make deb`), installed the way a Debian admin installs a PAM module:
`apt-get install ./ssf_VERSION_ARCH.deb`, the configuration written by hand, `pam-auth-update
--enable ssf`; then the seed's universal logout over ssh, an upgrade in place, `apt-get
remove` (logins keep working) and `apt-get purge` (no state left)."""

import io
import os
import re
import subprocess
import tarfile

from container import wait_for
from e2e_support import (DENIAL_TEXT, PAM_DIR, RULES_TEMPLATE, TOP, closed_by_server,
                         user_sessions, wait_exit)
from test_e2e import (NOT_COMPLIANT, assert_refused_publickey, login_works, logout_entry,
                      open_alice_sessions)

CONFIG = "/etc/ssf/ssf-sessiond.conf"
PAM_LINE = re.compile(r"^account\s+required\s+pam_ssf\.so\s*$")
UNITS = ("ssf-sessiond.service", "ssf-sessiond.socket")


def deb_field(deb, field):
    return subprocess.run(["dpkg-deb", "-f", deb, field], capture_output=True, text=True,
                          check=True).stdout.strip()


def apt(c, *args):
    """apt-get as an admin runs it (no network in the container: every dependency of the
    package is in the root already)."""
    return c.run(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-y",
                  "--no-install-recommends", *args], timeout=120)


def package_status(c):
    r = c.run(["dpkg-query", "-W", "-f=${Status}", "ssf"], check=False)
    return r.stdout.strip() if r.returncode == 0 else "not known to dpkg"


def common_account(c):
    return c.read_file("/etc/pam.d/common-account").splitlines()


def pam_ssf_lines(c):
    """Every line naming pam_ssf in /etc/pam.d (file: line)."""
    r = c.run(["grep", "-rn", "pam_ssf", "/etc/pam.d"], check=False)
    return r.stdout.splitlines()


def unit_state(c, unit):
    return c.systemctl("show", "-p", "ActiveState", "-p", "ConditionResult", "-p",
                       "UnitFileState", unit).stdout


def test_package_contents(deb_package, build_dir):
    """One binary package; dependencies from shlibs and debhelper (plus pam-auth-update's
    libpam-runtime); the files at Debian's paths; no /etc/ssf/ssf-sessiond.conf; the hook a
    conffile; the pam-auth-update profile as the product specifies it."""
    with open(os.path.join(TOP, "Makefile")) as f:
        version = re.search(r"^VERSION := (\S+)$", f.read(), re.M).group(1)
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert os.path.basename(deb_package) == f"ssf_{version}_{arch}.deb"
    built = sorted(n for n in os.listdir(os.path.join(build_dir, "deb")) if n.endswith(".deb"))
    assert built == [f"ssf_{version}_{arch}.deb"], built  # no -dbgsym or other package
    assert deb_field(deb_package, "Package") == "ssf"

    depends = [d.strip() for d in deb_field(deb_package, "Depends").split(",")]
    names = {re.split(r"[ (]", alt.strip())[0] for d in depends for alt in d.split("|")}
    # From ${shlibs:Depends} (the ELF files' libraries), ${misc:Depends} (dh_installsysusers),
    # and libpam-runtime, whose pam-auth-update the maintainer scripts run.
    assert {"libc6", "libpam0g", "libcurl4", "libssl3", "libsystemd0", "libsqlite3-0",
            "libjansson4", "libpam-runtime", "systemd"} <= names, depends
    with open(os.path.join(TOP, "debian", "control")) as f:
        control = f.read()
    binary = next(p for p in control.split("\n\n") if p.startswith("Package: ssf\n"))
    hand = re.search(r"^Depends:\n((?: .*\n)+)", binary + "\n", re.M).group(1)
    assert sorted(x.strip().rstrip(",") for x in hand.splitlines()) == \
        ["${misc:Depends}", "${shlibs:Depends}", "libpam-runtime (>= 1.0.1-6)"], hand

    listing = subprocess.run(["dpkg-deb", "-c", deb_package], capture_output=True, text=True,
                             check=True).stdout
    files = {}
    for line in listing.splitlines():
        mode, owner, _size, _date, _time, path = line.split(None, 5)
        files[path.split(" -> ")[0].lstrip(".").rstrip("/") or "/"] = (mode, owner)
    expect = {
        "/usr/sbin/ssf-sessiond": "-rwxr-xr-x", "/usr/bin/ssfctl": "-rwxr-xr-x",
        f"{PAM_DIR}/pam_ssf.so": "-rw-r--r--",
        "/lib/systemd/system/ssf-sessiond.service": "-rw-r--r--",
        "/lib/systemd/system/ssf-sessiond.socket": "-rw-r--r--",
        "/usr/lib/sysusers.d/ssf-sessiond.conf": "-rw-r--r--",
        "/usr/share/pam-configs/ssf": "-rw-r--r--",
        "/usr/share/doc/ssf/examples/ssf-sessiond.conf": "-rw-r--r--",
        "/usr/share/doc/ssf/copyright": "-rw-r--r--",
        "/etc/ssf/hooks.d/notify-admin": "-rwxr-xr-x",
        "/etc/ssf/ssf-sessiond.conf.d": "drwxr-xr-x",
        "/usr/share/man/man8/pam_ssf.8.gz": "-rw-r--r--",
        "/usr/share/man/man8/ssf-sessiond.8.gz": "-rw-r--r--",
        "/usr/share/man/man8/ssfctl.8.gz": "-rw-r--r--",
        "/usr/share/man/man5/ssf-sessiond.conf.5.gz": "-rw-r--r--",
    }
    for path, mode in expect.items():
        assert path in files, f"{path} is not in the package:\n{listing}"
        assert files[path] == (mode, "root/root"), (path, files[path])
    assert CONFIG not in files, "the package ships /etc/ssf/ssf-sessiond.conf"
    assert not [p for p in files if p.startswith("/usr/lib/debug")], listing
    etc = sorted(p for p in files if p.startswith("/etc/") and not files[p][0].startswith("d"))
    assert etc == ["/etc/ssf/hooks.d/notify-admin"], etc

    ctrl = subprocess.run(["dpkg-deb", "--info", deb_package, "conffiles"], capture_output=True,
                          text=True, check=True).stdout.split()
    assert ctrl == ["/etc/ssf/hooks.d/notify-admin"], ctrl

    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb_package], capture_output=True,
                         check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        def text(p):
            return t.extractfile("." + p).read().decode()
        prof = text("/usr/share/pam-configs/ssf")
        units = {u: text(f"/lib/systemd/system/{u}") for u in UNITS}
    fields = dict(ln.split(":", 1) for ln in prof.splitlines() if ln and not ln[0].isspace())
    assert fields["Default"].strip() == "no", prof
    assert fields["Account-Type"].strip() == "Additional", prof
    assert re.search(r"^Account:\n\s+required\s+pam_ssf\.so\s*$", prof, re.M), prof
    assert not [k for k in fields if k.split("-")[0] in ("Auth", "Session", "Password")], prof
    for u, body in units.items():
        assert f"ConditionPathExists={CONFIG}" in body.splitlines(), f"{u}:\n{body}"


def test_admin_installs_enables_removes_and_purges(deb_system):
    """The admin's life cycle of the package on a stock Debian 12 with real systemd, logind
    and sshd."""
    system = deb_system
    c, t = system.c, system.transmitter
    assert package_status(c) == "not known to dpkg"
    before = set(c.run("find /etc /var/lib /run -xdev -name '*ssf*' -print").stdout.split())

    # 1. apt-get install ./ssf_VERSION_ARCH.deb
    apt(c, "install", system.deb)
    assert package_status(c) == "install ok installed"
    pw = c.run(["getent", "passwd", "ssf-sessiond"]).stdout.strip().split(":")
    assert int(pw[2]) < 1000 and pw[6] in ("/usr/sbin/nologin", "/sbin/nologin"), pw
    assert not c.exists(CONFIG), "the package installed /etc/ssf/ssf-sessiond.conf"
    assert c.exists("/usr/share/doc/ssf/examples/ssf-sessiond.conf")
    conffiles = c.run(["dpkg-query", "-W", "-f=${Conffiles}", "ssf"]).stdout
    assert "/etc/ssf/hooks.d/notify-admin" in conffiles, conffiles
    # Enabled, but without a configuration neither unit starts, and neither fails.
    for u in UNITS:
        st = unit_state(c, u)
        assert "UnitFileState=enabled" in st and "ActiveState=inactive" in st, (u, st)
        assert "ConditionResult=no" in st, (u, st)
    failed = c.systemctl("list-units", "--failed", "--no-legend", "--plain").stdout
    assert "ssf" not in failed, failed
    assert not c.exists("/run/ssf-sessiond/socket")
    # Default: no -- installing changed nothing in /etc/pam.d.
    assert not pam_ssf_lines(c)

    # 2. pam-auth-update --enable ssf: the account line, in the Additional block after pam_unix.
    c.run(["pam-auth-update", "--enable", "ssf"])
    lines = common_account(c)
    ours = [i for i, ln in enumerate(lines) if PAM_LINE.match(ln)]
    assert len(ours) == 1, lines
    unix = [i for i, ln in enumerate(lines) if "pam_unix.so" in ln and not ln.startswith("#")]
    permit = [i for i, ln in enumerate(lines) if "pam_permit.so" in ln and not ln.startswith("#")]
    end = lines.index("# end of pam-auth-update config")
    assert unix and permit and unix[-1] < permit[-1] < ours[0] < end, lines
    assert [ln.split(":", 1)[0] for ln in pam_ssf_lines(c)] == ["/etc/pam.d/common-account"]

    # Enabled but not configured yet: no socket, so PAM's connect fails at once and
    # failmode=open admits everyone (and says so in the journal).
    ok, r = login_works(system, "bob")
    assert ok, f"bob refused with the module enabled and the daemon unconfigured: {r.stderr}"
    logs = c.run(["journalctl", "--no-pager", "-t", "sshd", "-g", "pam_ssf"], check=False).stdout
    assert "unavailable" in logs and "failmode=open" in logs, logs

    # 3. The admin writes /etc/ssf/ssf-sessiond.conf and starts the (enabled) socket.
    system.configure_daemon(RULES_TEMPLATE.format(reset="no"))
    c.systemctl("daemon-reload")  # configure_daemon's drop-in for the test's hook
    c.systemctl("start", "ssf-sessiond.socket")
    assert c.run("stat -c '%a %F' /run/ssf-sessiond/socket").stdout.strip() == "666 socket"
    ok, r = login_works(system, "bob")  # the first client activates the service
    assert ok, r.stderr
    system.wait_active()
    t.wait_stream(timeout=30)
    t.wait_polls(1, timeout=30)

    # 4. The seed's universal logout, with the module where pam-auth-update put it.
    ssh, ssh_out, su = open_alice_sessions(system)
    jti = t.send_event("device-compliance-change", email="alice@example.com",
                       payload=NOT_COMPLIANT)
    t.wait_acked(jti, timeout=30)
    rc = wait_exit(ssh, 30, "alice's ssh client to exit after the logout")
    out = open(ssh_out, "rb").read().decode(errors="replace")
    assert rc == 255 and closed_by_server(out), f"ssh exited {rc}: {out}"
    wait_exit(su, 30, "alice's su -l session to end")
    wait_for("alice to have no logind session left", lambda: not user_sessions(c, "alice"), 20)
    e = logout_entry(system, jti)
    assert (e["rule"], e["action"]) == ("logout-high", "logout"), e
    assert e["result"].startswith("ok") and "2 of 2" in e["result"], e
    r = system.s.ssh("alice", kbdint=True)
    assert r.returncode != 0 and DENIAL_TEXT in r.stderr, r.stderr
    assert_refused_publickey(system.s.ssh("alice"))
    ok, r = login_works(system, "bob")
    assert ok, r.stderr

    # 5. An upgrade in place keeps the state, the PAM configuration and a running daemon.
    pid = system.main_pid()
    apt(c, "install", "--reinstall", system.deb)
    assert package_status(c) == "install ok installed"
    system.wait_active()
    wait_for("the daemon to be restarted by the upgrade",
             lambda: system.main_pid() not in ("0", pid), 30)
    assert len([ln for ln in common_account(c) if PAM_LINE.match(ln)]) == 1
    assert system.risk("alice")["level"] == "high"
    assert_refused_publickey(system.s.ssh("alice"))

    # 6. apt-get remove: the module leaves the PAM stack before its file goes; logins work,
    # alice's too (nothing refuses her any more); state and conffiles stay until purge.
    apt(c, "remove", "ssf")
    assert package_status(c) == "deinstall ok config-files"
    assert not pam_ssf_lines(c), pam_ssf_lines(c)
    assert not c.exists(f"{PAM_DIR}/pam_ssf.so")
    for u in UNITS:
        assert c.systemctl("is-active", u, check=False).stdout.strip() == "inactive", u
    for user in ("bob", "alice"):
        ok, r = login_works(system, user)
        assert ok, f"{user}'s ssh login failed after apt-get remove: {r.stderr}"
    assert c.exists("/var/lib/ssf-sessiond/pam-snapshot")
    assert c.exists("/etc/ssf/hooks.d/notify-admin")

    # 7. apt-get purge: no state, no conffile, no unit enablement left; the admin's own files
    # (the configuration, the token, the test's hook and drop-in) are the admin's to remove.
    apt(c, "purge", "ssf")
    assert package_status(c) in ("not known to dpkg", "unknown ok not-installed"), \
        package_status(c)
    for path in ("/var/lib/ssf-sessiond", "/run/ssf-sessiond", "/etc/ssf/hooks.d/notify-admin",
                 "/etc/ssf/ssf-sessiond.conf.d"):
        assert not c.exists(path), f"{path} is left after purge"
    left = set(c.run("find /etc /var/lib /run -xdev -name '*ssf*' -print").stdout.split())
    admins = {"/etc/ssf", "/etc/ssf/ssf-sessiond.conf",
              "/etc/systemd/system/ssf-sessiond.service.d",
              "/var/lib/ssf-e2e"}  # where the test's hook writes
    assert left - before <= admins, sorted(left - before - admins)
    etc_ssf = sorted(c.run("find /etc/ssf -type f").stdout.split())
    assert etc_ssf == sorted(["/etc/ssf/ssf-sessiond.conf", "/etc/ssf/token",
                              "/etc/ssf/transmitter-ca.pem", "/etc/ssf/hooks.d/e2e-record"]), \
        etc_ssf
    assert not pam_ssf_lines(c)
    for user in ("bob", "alice"):
        ok, r = login_works(system, user)
        assert ok, f"{user}'s ssh login failed after apt-get purge: {r.stderr}"
