#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The cost a login pays for pam_ssf.so, against the real ssf-sessiond.

Starts the same private stack as `make demo` (local transmitter, private D-Bus with the logind
stand-in, nss_wrapper users, the real ssf-sessiond), raises alice to high with a real SET, then
runs, against that daemon:

  1. bench-ipc     PAM_QUERY round trips in process vs a trivial SEQPACKET echo server;
  2. bench-pam     pam_start/pam_acct_mgmt/pam_end in process through pam_ssf.so vs
                   pam_permit.so (pam_wrapper);
  3. whole logins  the pam-harness process (what the integration tests spawn) with either
                   stack, so that process start-up is in both sides.

    bench/bench-pam.py --build build --bench-bin build/bench [--quick]

Prints tables; exits non-zero when a benchmark cannot run. Nothing outside a temporary
directory is touched.

Everything (this script, hence the stack and the benchmark programs) is pinned to one CPU
unless --no-pin: on a small VM a wake-up of a process on another, idle vCPU costs tens of
microseconds and lands on the client/server pairs at random, which made unpinned round trips
bimodal (7 or 55 µs for the same echo exchange). Pinned, the figures are the CPU cost of the
exchange, comparable between the rows.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import pam_support  # noqa: E402
import support  # noqa: E402

# The daemon logs every PAM query at debug level; a production daemon runs at info.
DAEMON_ARGS = ("--log-level", "info")


def harness_round(harness, env, service, user, want):
    t0 = time.perf_counter()
    p = subprocess.run([harness, service, user, "account"], env=env, capture_output=True,
                       text=True, timeout=30)
    dt = time.perf_counter() - t0
    codes = [int(line.split()[2]) for line in p.stdout.splitlines() if line.startswith("result ")]
    if p.returncode != 0 or codes != [want]:
        raise SystemExit(f"bench-pam: pam-harness {service} {user}: rc {p.returncode}, "
                         f"codes {codes}, want [{want}]\n{p.stdout}{p.stderr}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--bench-bin", required=True, help="directory with bench-ipc and bench-pam")
    ap.add_argument("--quick", action="store_true", help="fewer rounds (smoke test)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin everything to one CPU")
    args = ap.parse_args()
    if not args.no_pin:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        print(f"(pinned to CPU {cpu}: daemon, clients and baselines share it)")
    build = os.path.abspath(args.build)
    os.environ["SSF_BUILD"] = build
    rounds, round_ms, spawns = ("3", "60", 8) if args.quick else ("7", "150", 30)

    tmp = tempfile.mkdtemp(prefix="ssf-bench-")
    os.chmod(tmp, 0o755)
    procs = []
    try:
        tx = support.TransmitterProcess(os.path.join(tmp, "transmitter"),
                                        log_path=os.path.join(tmp, "transmitter.log")).start()
        procs.append(tx)
        bus = support.SystemBus(os.path.join(tmp, "bus")).start()
        procs.append(bus)
        logind = support.LogindMock(bus, os.path.join(tmp, "logind")).start()
        procs.append(logind)
        users = support.NssUsers(os.path.join(tmp, "nss")).write()
        env = {**logind.env(), **users.env()}
        d = support.Daemon(build, os.path.join(tmp, "daemon"), tx, env=env, args=DAEMON_ARGS)
        d.start()
        procs.append(d)
        tx.wait_stream()
        jti = tx.send_event("device-compliance-change", email="alice@example.com",
                            payload={"previous_status": "compliant",
                                     "current_status": "not-compliant"})
        tx.wait_acked(jti)
        support.wait_for(lambda: d.ctl("risk", "alice")["level"] == "high", 20,
                         "alice's level to be high")

        # 1. IPC round trips.
        subprocess.run([os.path.join(args.bench_bin, "bench-ipc"), "--socket", d.socket,
                        "--user", "bob", "--user", "alice", "--rounds", rounds,
                        "--round-ms", round_ms], check=True)
        print(flush=True)

        # 2. In-process PAM.
        line = f"account required {{module}} socket={d.socket} snapshot={d.snapshot}"
        svc_dir = pam_support.write_service(os.path.join(tmp, "pam.d"), "bench-ssf", [line])
        pam_support.write_service(svc_dir, "bench-permit", ["account required pam_permit.so"])
        penv = dict(os.environ)
        penv.update({"LD_PRELOAD": pam_support.pam_wrapper_lib(), "PAM_WRAPPER": "1",
                     "PAM_WRAPPER_SERVICE_DIR": str(svc_dir)})
        denied = pam_support.PAM_PERM_DENIED
        subprocess.run([os.path.join(args.bench_bin, "bench-pam"), "--ssf", "bench-ssf",
                        "--permit", "bench-permit", "--user", "bob",
                        "--user", f"alice={denied}", "--rounds", rounds, "--round-ms", round_ms],
                       env=penv, check=True)
        print(flush=True)

        # 3. Whole processes: pam-harness per login, as the integration tests do.
        harness = str(pam_support.harness_path())
        t_permit, t_ssf, ratios = [], [], []
        for i in range(spawns + 2):
            # Alternate which side goes first, so neither always runs on a warmer cache.
            if i % 2:
                b = harness_round(harness, penv, "bench-ssf", "bob", pam_support.PAM_SUCCESS)
                a = harness_round(harness, penv, "bench-permit", "bob", pam_support.PAM_SUCCESS)
            else:
                a = harness_round(harness, penv, "bench-permit", "bob", pam_support.PAM_SUCCESS)
                b = harness_round(harness, penv, "bench-ssf", "bob", pam_support.PAM_SUCCESS)
            if i >= 2:  # the first two are warm-up
                t_permit.append(a)
                t_ssf.append(b)
                ratios.append(b / a)
        print(f"Whole logins: one pam-harness process per login (ms/login, median of {spawns} "
              f"pairs)")
        print(f"{'':28s} {'ms/login':>10s} {'ratio':>8s}")
        print(f"{'pam_permit.so (baseline)':28s} {statistics.median(t_permit) * 1e3:10.2f} "
              f"{1.0:8.2f}")
        print(f"{'pam_ssf.so bob (allowed)':28s} {statistics.median(t_ssf) * 1e3:10.2f} "
              f"{statistics.median(ratios):8.2f}")
        sys.stdout.flush()
        if not d.running():
            raise SystemExit("bench-pam: ssf-sessiond died during the benchmark:\n" + d.log()[-3000:])
        return 0
    except subprocess.CalledProcessError as e:
        print(f"bench-pam: {e}", file=sys.stderr)
        return 1
    finally:
        for p in reversed(procs):
            try:
                p.stop()
            except Exception:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
