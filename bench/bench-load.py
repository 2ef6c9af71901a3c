#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The login gate under load, catch-up, memory and start-up, against the real ssf-sessiond.

Starts the same private stack as bench-pam.py (local transmitter, private D-Bus with the
logind stand-in, nss_wrapper users with 1,000 extra accounts u0000..u0999, the real daemon at
--log-level info) and measures, each against a baseline taken in the same run:

  1. idle       RSS of the root and worker processes once the stream is up; PAM latency
                (bench-pam --sample-ms: pam_ssf.so in process under pam_wrapper, one account
                check of bob after another with 1 ms between two), the baseline of 3 and 4;
                then its controls: a second idle sample (idle against idle: the noise of the
                measurement), and PAM while two busy loops at nice 0 that do no ssf work keep
                both CPUs busy (the machine's own floor for "PAM while the CPUs are busy");
  2. catch-up   the daemon is stopped, N RS256 SETs for the 1,000 users (N = 100,000; --quick
                1,000; --sets N) are queued on the
                transmitter (signed before the clock starts), the daemon is started with
                poll_max_events = 1000 and the drain is timed by the transmitter (from its
                answer to the first poll that delivered SETs to its receipt of the last
                acknowledgement); the transmitter's serving rate (SETs delivered per second
                of its time spent answering those polls) and the CPU time per SET of root and
                of the worker are printed alongside; the raw verify
                rate is 1e6 / the EVP floor of RS256 that bench-jws measured in this run
                (--verify-floor-us), for a key of the same size (checked: 2048 bits);
  3. ingesting  the same again with 30,000 fresh SETs (--quick: 1,000; --sets N below 30,000:
                N; 1.5-2 s here, a p99 over 1,000-1,500 logins) while PAM latency is
                sampled: p99 / idle p99;
                its controls: N more SETs sampled with pam_permit.so logins (the daemon is not
                on their path), over their idle p99: the machine's share of the ratio; and N
                more with pam_ssf.so logins answered by bench-stub (answers at once, does
                nothing else): the share of a login that sleeps once for an answer (4 too);
  4. history    the daemon is stopped, 100,000 history rows are written into its state.db with
                sqlite3, it is restarted, idle PAM is sampled again, then `ssfctl history -n
                100000` runs in a loop while PAM latency is sampled: p99 / that idle p99;
  3b. logout   signal to logout, poll then push: for each of N users (one at a time, the
                daemon idle in its long poll) a logind session is added and a session-revoked SET
                queued; the time from the transmitter making the SET available (its own stamp,
                "available" in the control answer) to the logind stand-in receiving
                TerminateSession (its call stamps, time.time() to the microsecond), p50/p99,
                next to the bare HTTPS round trip of the same poll request (the daemon's shape,
                maxEvents 0, a kept-alive connection) to the same transmitter in the same run.
                Push: the same on a second transmitter and a second daemon with delivery = push
                (the transmitter pushes on a kept-alive connection), next to the bare round trip
                of the same POST to the push listener (a SET of the same size whose signature
                fails: 400 from the worker, nothing reaches root, the connection is kept);
  5. 100k users the daemon is stopped, 100,000 users at high (detections) with a history row
                each are written into state.db; time from exec to the first answered PAM query
                (bench-ipc --wait-ready), then RSS of both processes, then PAM p99 / the idle
                p99 of 1.

    bench/bench-load.py --build build --bench-bin build/bench --verify-floor-us US
                        [--quick] [--json FILE] [--only logout|ingesting] [--sets N]
                        [--catch-up-only]

--only logout runs part 3b alone (poll and push), on a fresh stack; --only ingesting runs idle
PAM and part 3 alone (the SETs raise the levels, its control's bring them down);
--catch-up-only stops after parts 1 and 2.

Prints tables; with --json writes the keys it measured into FILE (a JSON object). Exits non-zero
when a benchmark cannot run. Nothing outside a temporary directory is touched. Not pinned to a
CPU: the point is whether work elsewhere in the daemon delays PAM answers, and the daemon's
threads (and the transmitter) need the second CPU for that to be a fair question.
"""

import argparse
import base64
import concurrent.futures
import json
import os
import shutil
import signal
import sqlite3
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

DAEMON_ARGS = ("--log-level", "info")
N_USERS = 1000
QUEUE_CHUNK = 500        # SETs per request when a backlog is queued
# The transmitter holds a long poll at most this long: after the daemon stops, a poll it left
# behind is answered (to nobody) within it, so nothing is queued before that (a SET handed to
# a dead connection waits for its redelivery).
LONG_POLL_MAX = 2
HISTORY_ROWS = 100000
BIG_USERS = 100000
# The CPU control of 1: as many busy loops as the machine the benchmark is made for has CPUs.
CPU_HOGS = 2
# Only the ingestion is measured: a high level matches a rule that does nothing.
# session-revoked (the signal-to-logout part only) ends the user's sessions; the catch-up's
# device-compliance SETs only record.
RULES = """[rule bench-logout]
detections = session-revoked
action = logout
sessions = all

[rule bench-high]
levels = high
action = none
"""


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(d))
    return out


def daemon_pids(d):
    """(root pid, worker pid): the worker is the root's child running --network-worker."""
    root = d.proc.pid
    for c in children(root):
        try:
            with open(f"/proc/{c}/cmdline", "rb") as f:
                if b"--network-worker" in f.read():
                    return root, c
        except OSError:
            pass
    raise RuntimeError("no network worker under the daemon")


def wait_worker(d):
    return support.wait_for(lambda: _try(daemon_pids, d), 20, "the network worker")


def _try(fn, *a):
    try:
        return fn(*a)
    except (RuntimeError, OSError):
        return None


class Bench:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.build = os.path.abspath(args.build)
        self.procs = []
        self.results = {}
        q = args.quick
        self.idle_ms = 1500 if q else 4000
        # The catch-up drains a large backlog (the figure is its steady rate); the ingestion
        # under PAM sampling lasts long enough for a p99 of thousands of logins (30,000 SETs:
        # 1.5-2 s here; with 5,000 it was over in 0.3 s, and its p99 was the 5th slowest of
        # some 500 logins).
        self.catch_up_sets = args.sets or (1000 if q else 100000)
        self.n_sets = min(args.sets or 30000, 1000 if q else 30000)
        self.history_runs = 1 if q else 3

    # -- stack --------------------------------------------------------------------------------
    def start_stack(self):
        tmp = self.tmp
        # A SET delivered and not acknowledged comes again after 30 s: longer than a batch of
        # 1,000 takes to commit (no redelivery of SETs still in flight), and a SET left
        # unacknowledged shows in the figures (the table counts those).
        self.tx = support.TransmitterProcess(os.path.join(tmp, "transmitter"),
                                             log_path=os.path.join(tmp, "transmitter.log"),
                                             redelivery_delay=30,
                                             long_poll_max=LONG_POLL_MAX).start()
        self.procs.append(self.tx)
        self.bus = support.SystemBus(os.path.join(tmp, "bus")).start()
        self.procs.append(self.bus)
        self.logind = support.LogindMock(self.bus, os.path.join(tmp, "logind")).start()
        self.procs.append(self.logind)
        users = list(support.DEFAULT_USERS)
        users += [(f"u{i:04d}", 10000 + i, 10000 + i, f"U{i}", f"/home/u{i:04d}", "/bin/sh")
                  for i in range(N_USERS)]
        self.users = support.NssUsers(os.path.join(tmp, "nss"), users=users).write()
        env = {**self.logind.env(), **self.users.env()}
        self.d = support.Daemon(self.build, os.path.join(tmp, "daemon"), self.tx, env=env,
                                rules=RULES, args=DAEMON_ARGS,
                                transmitter_opts={"poll_max_events": 1000, "poll_wait": "10s"})
        self.procs.append(self.d)
        line = f"account required {{module}} socket={self.d.socket} snapshot={self.d.snapshot}"
        svc_dir = pam_support.write_service(os.path.join(tmp, "pam.d"), "bench-ssf", [line])
        # The controls' stacks: the same logins without pam_ssf.so, no daemon on their path;
        # and pam_ssf.so asking bench-stub, which answers at once and does nothing else.
        pam_support.write_service(svc_dir, "bench-permit", ["account required pam_permit.so"])
        self.stub = Stub(os.path.join(self.args.bench_bin, "bench-stub"),
                         os.path.join(tmp, "stub.sock"))
        self.procs.append(self.stub)
        pam_support.write_service(svc_dir, "bench-stub", [
            f"account required {{module}} socket={self.stub.socket} snapshot={self.d.snapshot}"])
        self.penv = dict(os.environ)
        self.penv.update({"LD_PRELOAD": pam_support.pam_wrapper_lib(), "PAM_WRAPPER": "1",
                          "PAM_WRAPPER_SERVICE_DIR": str(svc_dir)})

    def start_daemon(self):
        assert not self.d.running()
        self.d.start()
        self.tx.wait_stream()
        return wait_worker(self.d)

    # -- PAM latency ----------------------------------------------------------------------------
    def stop_daemon(self):
        self.d.stop()
        time.sleep(LONG_POLL_MAX + 0.5)  # the stopped worker's long poll is over

    def pam_sampler(self, max_ms, service="bench-ssf"):
        return subprocess.Popen([os.path.join(self.args.bench_bin, "bench-pam"), "--ssf",
                                 service, "--user", "bob", "--sample-ms", str(max_ms)],
                                env=self.penv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    @staticmethod
    def pam_result(p, stop=True):
        if stop and p.poll() is None:
            p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
        if p.returncode != 0:
            raise SystemExit(f"bench-load: bench-pam failed ({p.returncode}): {out}{err}")
        f = out.split()
        return {f[i]: float(f[i + 1]) for i in range(0, len(f) - 1, 2)}

    def pam_idle(self, service="bench-ssf"):
        return self.pam_result(self.pam_sampler(self.idle_ms, service), stop=False)

    def pam_controls(self, idle):
        """The floors the ratios of 3 and 4 are read against, on the same idle daemon: a second
        idle sample (idle against idle: the noise of the measurement itself), then PAM while
        two busy loops at nice 0 that do no ssf work keep both CPUs busy (what any CPU load of
        that shape does to PAM on this machine)."""
        r = self.results
        again = self.pam_idle()
        r["pam_p99_idle_ratio"] = round(again["p99_us"] / idle["p99_us"], 3)
        r["pam_p50_idle_ratio"] = round(again["p50_us"] / idle["p50_us"], 3)
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(CPU_HOGS)]
        try:
            time.sleep(0.3)
            hog = self.pam_idle()
        finally:
            for h in hogs:
                h.kill()
                h.wait()
        r["pam_p99_cpu_hog_ratio"] = round(hog["p99_us"] / idle["p99_us"], 3)
        r["pam_p50_cpu_hog_ratio"] = round(hog["p50_us"] / idle["p50_us"], 3)
        print(f"Idle again: PAM p50 {again['p50_us']:.0f} µs, p99 {again['p99_us']:.0f} µs (p99 "
              f"ratio {r['pam_p99_idle_ratio']}); with {CPU_HOGS} busy loops at nice 0 and no ssf "
              f"work: p50 {hog['p50_us']:.0f} µs, p99 {hog['p99_us']:.0f} µs, max "
              f"{hog['max_us']:.0f} µs; p99 ratio {r['pam_p99_cpu_hog_ratio']}, p50 ratio "
              f"{r['pam_p50_cpu_hog_ratio']}", flush=True)

    def load_control(self, name, loaded, kind="permit"):
        """A control of pam_p99_<name>_ratio. kind "permit": pam_p99_<name>_permit_ratio, PAM
        p99 of pam_permit.so logins (no daemon on their path) while loaded(service) runs the
        same load again (it returns the sampler's figures), over their idle p99 just before:
        the part of the pam_ssf.so ratio that is the machine's. kind "stub": pam_p99_<name>_stub_ratio, the same with pam_ssf.so logins
        answered by bench-stub, a process that does nothing but answer: what a login that
        sleeps once for another process's answer pays under that load (a pam_permit.so login
        never sleeps while it is timed)."""
        r = self.results
        service, what = (("bench-permit", "pam_permit.so logins") if kind == "permit" else
                         ("bench-stub", "pam_ssf.so logins answered by bench-stub"))
        idle = self.pam_idle(service)
        p = loaded(service)
        r[f"pam_p99_{name}_{kind}_ratio"] = round(p["p99_us"] / idle["p99_us"], 3)
        r[f"pam_p50_{name}_{kind}_ratio"] = round(p["p50_us"] / idle["p50_us"], 3)
        print(f"  control, {what} under the same load: idle p99 "
              f"{idle['p99_us']:.0f} µs; during p50 {p['p50_us']:.0f} µs, p99 {p['p99_us']:.0f} "
              f"µs over {p['samples']:.0f} logins; p99 ratio "
              f"{r[f'pam_p99_{name}_{kind}_ratio']}, p50 ratio "
              f"{r[f'pam_p50_{name}_{kind}_ratio']}", flush=True)

    # -- the backlog ----------------------------------------------------------------------------
    def queue_backlog(self, n, tag, pause=False, back=False):
        """Queue n SETs (device not compliant → high; back=True: compliant again) for the 1,000
        users, with the daemon stopped, or with the stream paused (pause=True)."""
        was, now = ("not-compliant", "compliant") if back else ("compliant", "not-compliant")
        if pause:
            self.tx.set_stream_status("paused")
        def chunk(lo):
            events = [{"event": "device-compliance-change",
                       "email": f"u{i % N_USERS:04d}@example.com",
                       "payload": {"previous_status": was, "current_status": now,
                                   "reason_admin": {"en": f"{tag} {i}"}}}
                      for i in range(lo, min(lo + QUEUE_CHUNK, n))]
            out = self.tx.control("POST", "events", {"events": events})["events"]
            if not all(o["streams"] for o in out):
                raise SystemExit("bench-load: a SET of the backlog was queued on no stream")
            return [o["jti"] for o in out]
        # Many SETs per request (the transmitter signs each, with jwcrypto): 100,000 are
        # queued in about a minute rather than several.
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            return [j for part in ex.map(chunk, range(0, n, QUEUE_CHUNK)) for j in part]

    def drain(self, jtis, sampler_ms=None, service="bench-ssf"):
        """Returns the drain figures of a queued backlog (and PAM latency during it when
        sampler_ms is set): a stopped daemon is started on it; a running one is fed by enabling
        the paused stream (queue_backlog(pause=True)) once the PAM sampler runs."""
        want = set(jtis)
        # Acknowledged at the end: as many more as were queued (each jti is new). Until then
        # the transmitter is asked for counts only: its full record is megabytes of JSON,
        # made under its lock, which would hold up its polls and load the CPU being measured.
        before = self.tx.ack_count()
        t_start = before["now"]
        acked0 = before["acked"]
        sampler = self.pam_sampler(sampler_ms, service) if sampler_ms else None
        restart = not self.d.running()
        if not restart:
            time.sleep(0.3)  # the sampler's warm-up
            self.tx.set_stream_status("enabled")
        else:
            self.d.start()
        root, worker = wait_worker(self.d)
        c0 = (cpu_ticks(root), cpu_ticks(worker), time.monotonic())

        errs_seen = [before["set_errs"]]

        def done():
            n = self.tx.ack_count()
            if n["acked"] < acked0 + len(want) and n["set_errs"] == errs_seen[0]:
                return None
            # Everything acknowledged, or a new setErrs entry: the full record (megabytes,
            # made and read at a cost to the CPUs being measured), once per new entry.
            a = self.tx.acks()
            errs_seen[0] = len(a["set_errs"])
            bad = want & set(a["set_errs"])
            if bad:
                raise AssertionError(f"SETs reported as errors: {[a['set_errs'][j] for j in bad][:3]}")
            return a if want <= set(a["acked"]) else None
        try:
            a = support.wait_for(done, 120 if self.args.quick else 300,
                                 f"{len(want)} SETs to be acknowledged", interval=0.25)
        except support.WaitTimeout:
            a = self.tx.acks()
            if sampler:
                sampler.kill()
            queued = [len(st["queue"]) for st in self.tx.streams()]
            raise SystemExit(f"bench-load: {len(want & set(a['acked']))} of {len(want)} SETs "
                             f"acknowledged; SETs queued per stream {queued}"
                             f"\ndaemon log:\n{self.d.log()[-4000:]}") from None
        pam = self.pam_result(sampler) if sampler else None
        tick = os.sysconf("SC_CLK_TCK")
        wall = time.monotonic() - c0[2]
        cpu_s = ((cpu_ticks(root) - c0[0]) / tick, (cpu_ticks(worker) - c0[1]) / tick)
        cpu = (cpu_s[0] / wall, cpu_s[1] / wall)
        # A restarted daemon's polls arrive after t_start; a running one's long poll may have
        # been waiting since before, and is answered after it.
        def logged(a):
            return [r for r in a["requests"] if r["path"].startswith("/ssf/poll/") and "sets" in r
                    and (r["time"] if restart else r["done"]) >= t_start]
        polls = logged(a)
        if restart:
            # The transmitter logs a request when it answers it: the poll that carried the last
            # acknowledgements may be a long poll still held. Its arrival is the end of the
            # catch-up; wait until it is logged.
            def all_logged():
                b = self.tx.acks()
                return b if sum(r["acks"] for r in logged(b)) >= len(want) else None
            try:
                a = support.wait_for(all_logged, LONG_POLL_MAX + 10, "the last acknowledgements",
                                     interval=0.1)
                polls = logged(a)
            except support.WaitTimeout:
                pass
        delivering = [r for r in polls if r["sets"] > 0]
        if not delivering:
            raise SystemExit("bench-load: no poll delivered a SET")
        # From the first SETs handed over (a long poll may have been waiting since before)
        t0 = delivering[0]["done"]
        # The transmitter's receipt of the last acknowledgement (an acknowledgement sent again,
        # after a long poll the worker ended early, changes nothing).
        t1 = max(a["acked_at"][j] for j in want)
        acks = sum(r["acks"] for r in polls)
        delivered = sum(r["sets"] for r in delivering)
        again = sum(1 for j in want if a["deliveries"].get(j, 0) > 1)
        if again:
            missed = [j for j in want if a["deliveries"].get(j, 0) > 1][:3]
            with open(self.d.log_path, encoding="utf-8", errors="replace") as f:
                log = f.read()
            print(f"  ({again} SETs were delivered more than once; daemon log lines naming the "
                  f"first: {[ln for ln in log.splitlines() if missed[0] in ln][:4]}; its "
                  f"warnings and errors: "
                  f"{[ln for ln in log.splitlines() if ': warning: ' in ln or ': error: ' in ln][:8]})")
        # The transmitter's own time per full batch: a poll answered with poll_max_events SETs
        # did not wait for any (a long poll returns as soon as anything is ready).
        busy = [r for r in delivering if r["sets"] >= 1000]
        served = sum(r["done"] - r["time"] for r in busy)
        return {"rate": len(want) / (t1 - t0), "seconds": t1 - t0, "polls": len(delivering),
                "again": again, "acks": acks,
                "tx_rate": sum(r["sets"] for r in busy) / served if served > 0 else float("nan"),
                "delivered": delivered, "cpu": cpu, "cpu_s": cpu_s, "pam": pam}

    # -- the store ------------------------------------------------------------------------------
    def fill_store(self, history=0, users=0):
        db = sqlite3.connect(os.path.join(self.d.state_dir, "state.db"))
        now = int(time.time())
        with db:
            if history:
                db.executemany(
                    "INSERT INTO history (time, user, uid, jti, event, detection, level_before,"
                    " level_after, rule, action, result, duration_ms, txn)"
                    " VALUES (?, ?, ?, ?, ?, ?, 0, 3, 'bench-high', 'none', 'ok', 1, NULL)",
                    ((now - history + i, f"u{i % N_USERS:04d}", 10000 + i % N_USERS,
                      f"bench-h-{i}", "device-compliance-change", "device-compliance")
                     for i in range(history)))
            if users:
                db.executemany(
                    "INSERT INTO detections (uid, detection, level, since, updated, expires,"
                    " event_time, jti, reason) VALUES (?, 'bench', 3, ?, ?, ?, ?, ?, 'bench')",
                    ((100000 + i, now, now, now + 86400, now, f"bench-d-{i}")
                     for i in range(users)))
                db.executemany(
                    "INSERT INTO history (time, user, uid, jti, event, detection, level_before,"
                    " level_after, rule, action, result, duration_ms, txn)"
                    " VALUES (?, ?, ?, ?, 'device-compliance-change', 'bench', 0, 3,"
                    " 'bench-high', 'none', 'ok', 1, NULL)",
                    ((now, f"big{i}", 100000 + i, f"bench-d-{i}") for i in range(users)))
        db.close()

    def history_load(self, runs):
        """Runs `ssfctl history -n 100000` `runs` times; returns (seconds per run, rows)."""
        times, rows = [], 0
        for _ in range(runs):
            t = time.monotonic()
            cp = self.d.ctl("history", "-n", str(HISTORY_ROWS), json=False, timeout=300)
            times.append(time.monotonic() - t)
            if cp.returncode != 0:
                raise SystemExit(f"bench-load: ssfctl history: {cp.returncode} {cp.stderr}")
            rows = max(rows, cp.stdout.count("\n"))
        return times, rows

    # -- the run --------------------------------------------------------------------------------
    def run(self):
        r = self.results
        self.start_stack()
        root, worker = self.start_daemon()
        time.sleep(1.0)
        rss = (rss_kib(root), rss_kib(worker))
        r["rss_idle_kib"] = max(rss)
        idle = self.pam_idle()
        print(f"Idle: RSS root {rss[0]} KiB, worker {rss[1]} KiB; PAM (pam_ssf.so, bob) "
              f"p50 {idle['p50_us']:.0f} µs, p99 {idle['p99_us']:.0f} µs over "
              f"{idle['samples']:.0f} logins", flush=True)
        self.pam_controls(idle)

        # 2. catch-up, nothing else running
        rsa_bits = [len(base64.urlsafe_b64decode(k["n"] + "==")) * 8
                    for k in self.tx.jwks()["keys"] if k.get("kty") == "RSA"]
        self.stop_daemon()
        t = time.monotonic()
        jtis = self.queue_backlog(self.catch_up_sets, "catch-up")
        print(f"Queued {len(jtis)} RS256 SETs for {N_USERS} users in {time.monotonic() - t:.1f} s "
              f"(signing, not measured)", flush=True)
        c = self.drain(jtis)
        r["catch_up_sets_per_s"] = round(c["rate"], 1)
        raw = 1e6 / self.args.verify_floor_us if self.args.verify_floor_us else None
        r["catch_up_ratio"] = round(c["rate"] / raw, 4) if raw and rsa_bits == [2048] else None
        # CPU time per SET of each process over the whole drain: what the code costs, which the
        # neighbours' load moves much less than the wall clock.
        r["catch_up_root_cpu_us_per_set"] = round(c["cpu_s"][0] / len(jtis) * 1e6, 1)
        r["catch_up_worker_cpu_us_per_set"] = round(c["cpu_s"][1] / len(jtis) * 1e6, 1)
        r["catch_up_tx_sets_per_s"] = round(c["tx_rate"]) if c["tx_rate"] == c["tx_rate"] else None
        print(f"Catch-up: {len(jtis)} SETs in {c['seconds']:.2f} s = {c['rate']:.0f} SETs/s "
              f"({c['polls']} polls); raw RS256 verify (EVP floor, one core) "
              f"{raw or 0:.0f}/s → ratio {r['catch_up_ratio']}; transmitter serving rate "
              f"{c['tx_rate']:.0f} SETs/s of its own time; CPU root {c['cpu'][0]:.0%}, "
              f"worker {c['cpu'][1]:.0%}; CPU per SET root "
              f"{r['catch_up_root_cpu_us_per_set']} µs, worker "
              f"{r['catch_up_worker_cpu_us_per_set']} µs", flush=True)
        if self.args.catch_up_only:
            return

        # 3. PAM while ingesting (the devices are compliant again: levels go back down), on the
        # daemon that caught up; its controls take them up and down again, so that 3b starts
        # with the levels down.
        self.ingesting(idle, back=True)

        # 3b. signal to logout: poll on the running daemon, then push on a second stack
        self.signal_to_logout(100 if self.args.quick else 1000)
        self.push_signal_to_logout(100 if self.args.quick else 1000)

        # 4. PAM while `ssfctl history -n 100000` runs
        self.stop_daemon()
        self.fill_store(history=HISTORY_ROWS)
        self.start_daemon()
        idle_h = self.pam_idle()
        sampler = self.pam_sampler(600000)
        times, rows = self.history_load(self.history_runs)
        p = self.pam_result(sampler)
        if rows < HISTORY_ROWS:
            raise SystemExit(f"bench-load: ssfctl history -n {HISTORY_ROWS} printed {rows} lines")
        r["pam_p99_history_ratio"] = round(p["p99_us"] / idle_h["p99_us"], 3)
        r["pam_p50_history_ratio"] = round(p["p50_us"] / idle_h["p50_us"], 3)
        print(f"PAM while `ssfctl history -n {HISTORY_ROWS}` runs ({len(times)} runs, median "
              f"{statistics.median(times):.2f} s, {rows} lines): idle p99 {idle_h['p99_us']:.0f} "
              f"µs; during p50 {p['p50_us']:.0f} µs, p99 {p['p99_us']:.0f} µs, max "
              f"{p['max_us']:.0f} µs over {p['samples']:.0f} logins; p99 ratio "
              f"{r['pam_p99_history_ratio']}, p50 ratio {r['pam_p50_history_ratio']}", flush=True)

        def control_history(service):
            sampler = self.pam_sampler(600000, service)
            self.history_load(self.history_runs)
            return self.pam_result(sampler)
        self.load_control("history", control_history)
        self.load_control("history", control_history, "stub")

        # 5. 100,000 users at risk with history
        self.stop_daemon()
        self.fill_store(users=BIG_USERS)
        t0 = time.monotonic_ns()
        self.d.start(wait_socket=False)
        cp = subprocess.run([os.path.join(self.args.bench_bin, "bench-ipc"), "--socket",
                             self.d.socket, "--wait-ready", "60000"], capture_output=True,
                            text=True, timeout=90)
        if cp.returncode != 0:
            raise SystemExit(f"bench-load: {cp.stderr}\n{self.d.log()[-3000:]}")
        ready = int(cp.stdout.split()[1])
        r["startup_100k_ms"] = round((ready - t0) / 1e6, 1)
        self.tx.wait_stream()
        root, worker = wait_worker(self.d)
        time.sleep(2.0)
        rss = (rss_kib(root), rss_kib(worker))
        r["rss_100k_kib"] = max(rss)
        p = self.pam_idle()
        r["pam_p99_100k_ratio"] = round(p["p99_us"] / idle["p99_us"], 3)
        print(f"{BIG_USERS} users at high with history: exec → first PAM answer "
              f"{r['startup_100k_ms']} ms; RSS root {rss[0]} KiB, worker {rss[1]} KiB; PAM p99 "
              f"{p['p99_us']:.0f} µs ({r['pam_p99_100k_ratio']} × the empty store's)", flush=True)
        if not self.d.running():
            raise SystemExit("bench-load: ssf-sessiond died:\n" + self.d.log()[-3000:])

    @staticmethod
    def quantiles(v):
        q = statistics.quantiles(v, n=100, method="inclusive")
        return statistics.median(v), q[98]

    @staticmethod
    def settle(d):
        """Waits (at most 10 s) for d's stream verification at start-up: it interrupts the long
        poll, and a SET the transmitter had just handed to that poll comes again only after the
        redelivery delay (30 s here), which is not what an isolated signal costs."""
        try:
            support.wait_for(lambda: "Received verification" in d.log(), 10, "the verification")
        except support.WaitTimeout:
            pass

    def logout_latencies(self, tx, d, tag, n):
        """ms from each SET being available on tx to TerminateSession of the session it ends,
        for n users one at a time (d idle between two); and the last SET's token."""
        self.settle(d)
        lat = []
        token = None
        for i in range(n):
            user = f"u{i % N_USERS:04d}"
            sid = f"{tag}{i}"
            self.logind.add_session(sid, 10000 + i % N_USERS, user)
            out = tx.send_event_full("session-revoked", email=f"{user}@example.com", wait_stream=0)
            # The transmitter's own stamp of the moment a poll or its push thread could take
            # the SET (older transmitters: the control call returning).
            t_avail = out.get("available") or time.time()
            token = out["token"]

            def stamped():
                for t, s in self.logind.call_times("TerminateSession"):
                    if s == sid:
                        return t
                return None
            # The stamp is the stand-in's: asking for it only later keeps this process, the bus
            # and the stand-in quiet while most signals are on their way.
            time.sleep(0.03)
            try:
                t_term = support.wait_for(stamped, 30, f"TerminateSession({sid})", interval=0.01)
            except support.WaitTimeout as e:
                raise SystemExit(f"bench-load: {e}\n--- daemon log:\n{d.log()[-4000:]}\n"
                                 f"--- transmitter log:\n{tx.log()[-3000:]}") from None
            lat.append((t_term - t_avail) * 1e3)
            # The user goes back to none, so that the next SET for them raises again; then the
            # daemon finishes with this one (the acknowledgement, the action's record) before
            # the next: each signal is an isolated one.
            d.ctl("reset", user)
            time.sleep(0.05)
        return lat, token

    # Requests timed on one connection before a new one is opened: fewer than the push
    # listener serves on one (PUSH_MAX_REQUESTS_PER_CONN, 1,000), so that no timed request
    # pays for a handshake.
    RTT_PER_CONN = 500

    @classmethod
    def round_trips(cls, connect, n, method, path, body, hdrs, status):
        """ms of n round trips of the same request on kept-alive connections made by connect()
        (10 more first on each, not counted: the TLS handshake and warm-up)."""
        out = []
        while len(out) < n:
            conn = connect()
            k = min(cls.RTT_PER_CONN, n - len(out))
            for i in range(k + 10):
                t = time.perf_counter()
                conn.request(method, path, body, hdrs)
                resp = conn.getresponse()
                resp.read()
                if i >= 10:
                    out.append((time.perf_counter() - t) * 1e3)
                if resp.status != status:
                    raise SystemExit(f"bench-load: {method} {path} answered {resp.status}, "
                                     f"not {status}")
                if resp.will_close:
                    raise SystemExit(f"bench-load: {method} {path}: the connection was not kept")
            conn.close()
        return out

    def poll_rtt(self, n):
        """ms of the bare HTTPS round trip of a poll request to the daemon's stream (the
        daemon's poll shape: ack and setErrs empty, maxEvents and returnImmediately; maxEvents 0
        so that nothing is delivered) on one kept-alive connection."""
        import http.client
        import ssl
        sid = self.tx.streams()[0]["stream_id"]
        ctx = ssl.create_default_context(cafile=self.tx.ca_file)
        host = self.tx.origin.split("://", 1)[1]
        body = json.dumps({"ack": [], "setErrs": {}, "maxEvents": 0, "returnImmediately": True})
        hdrs = {"Authorization": "Bearer " + self.tx.token, "Content-Type": "application/json",
                "Accept": "application/json"}
        return self.round_trips(lambda: http.client.HTTPSConnection(host, context=ctx, timeout=10),
                                n, "POST", f"/ssf/poll/{sid}", body, hdrs, 200)

    def report_signal_to_logout(self, kind, what, n, lat, rtt):
        """Records and prints the quantiles of n signal-to-logout latencies lat (ms) and of the
        bare HTTPS round trips rtt (ms) of the same delivery; kind ("poll", "push") names the
        keys, what the delivery in the line printed."""
        r = self.results
        (l50, l99), (r50, r99) = self.quantiles(lat), self.quantiles(rtt)
        r[f"{kind}_signal_to_logout_p50_ms"] = round(l50, 2)
        r[f"{kind}_signal_to_logout_p99_ms"] = round(l99, 2)
        r[f"{kind}_rtt_p50_ms"] = round(r50, 2)
        r[f"{kind}_rtt_p99_ms"] = round(r99, 2)
        r[f"{kind}_signal_to_logout_p99_over_rtt_ms"] = round(l99 - r99, 2)
        print(f"Signal to logout ({what}, {n} events): p50 {r[f'{kind}_signal_to_logout_p50_ms']} "
              f"ms, p99 {r[f'{kind}_signal_to_logout_p99_ms']} ms; bare HTTPS {kind} round trip p50 "
              f"{r[f'{kind}_rtt_p50_ms']} ms, p99 {r[f'{kind}_rtt_p99_ms']} ms; p99 over it "
              f"{r[f'{kind}_signal_to_logout_p99_over_rtt_ms']} ms", flush=True)

    def signal_to_logout(self, n):
        lat, _ = self.logout_latencies(self.tx, self.d, "stl", n)
        rtt = self.poll_rtt(n)
        self.report_signal_to_logout("poll", "long poll", n, lat, rtt)

    def start_push_stack(self):
        """A second transmitter and a second daemon with delivery = push (its listener on a
        free loopback port, its own TLS certificate), sharing the bus, logind and the users."""
        import socket
        from ssf_transmitter import make_tls_files
        tmp = self.tmp
        tx = support.TransmitterProcess(os.path.join(tmp, "transmitter-push"),
                                        log_path=os.path.join(tmp, "transmitter-push.log"),
                                        redelivery_delay=30, long_poll_max=LONG_POLL_MAX).start()
        self.procs.append(tx)
        tls = os.path.join(tmp, "push-tls")
        os.makedirs(tls)
        ca, cert, key = make_tls_files(tls, hosts=("localhost",), ips=("127.0.0.1",))
        os.chmod(key, 0o600)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        path = "/ssf/events"
        tx.configure(push_ca=ca)
        env = {**self.logind.env(), **self.users.env()}
        d = support.Daemon(self.build, os.path.join(tmp, "daemon-push"), tx, env=env,
                           rules=RULES, args=DAEMON_ARGS,
                           transmitter_opts={"delivery": "push", "push_listen": f"127.0.0.1:{port}",
                                             "push_url": f"https://127.0.0.1:{port}{path}",
                                             "push_cert": cert, "push_key": key,
                                             "poll_wait": None})
        self.procs.append(d)
        d.start()
        wait_worker(d)

        def stream():
            for st in tx.streams():
                if st["delivery"].get("method") == "urn:ietf:rfc:8935":
                    return st
            return None
        st = support.wait_for(stream, 20, "a push stream on the second transmitter")
        return tx, d, st, ca, port, path

    def push_rtt(self, n, ca, port, path, auth, token):
        """ms of the bare HTTPS round trip of the same POST the transmitter pushes (its
        headers, a SET of the same size) to the daemon's push listener, on one kept-alive
        connection: the SET's signature is altered, so the worker answers 400 after verifying
        it, and nothing reaches root."""
        import http.client
        import ssl
        head, payload, sig = token.split(".")
        sig = ("B" if sig[0] == "A" else "A") + sig[1:]
        ctx = ssl.create_default_context(cafile=ca)
        hdrs = {"Content-Type": "application/secevent+jwt", "Accept": "application/json",
                "Authorization": auth}
        return self.round_trips(lambda: http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                                                    context=ctx),
                                n, "POST", path, f"{head}.{payload}.{sig}".encode(), hdrs, 400)

    def push_signal_to_logout(self, n):
        tx, d, st, ca, port, path = self.start_push_stack()
        try:
            lat, token = self.logout_latencies(tx, d, "stp", n)
            rtt = self.push_rtt(n, ca, port, path, st["delivery"]["authorization_header"], token)
            pushes = tx.acks()["push_results"]
        finally:
            for p in (d, tx):
                p.stop()
                self.procs.remove(p)
        other = [p for p in pushes if p["status"] != 202]
        if other:
            print(f"  ({len(other)} of {len(pushes)} pushes not answered 202, e.g. {other[-1]})")
        self.report_signal_to_logout("push", "push", n, lat, rtt)

    def run_logout(self):
        """Part 3b alone (--only logout): poll, then push."""
        n = 100 if self.args.quick else 1000
        self.start_stack()
        self.start_daemon()
        time.sleep(1.0)
        self.signal_to_logout(n)
        self.push_signal_to_logout(n)

    def run_ingesting(self):
        """Part 3 alone (--only ingesting): idle PAM, then PAM while N SETs raise the levels of
        the 1,000 users, then its pam_permit.so control while N more bring them down."""
        self.start_stack()
        self.start_daemon()
        time.sleep(1.0)
        idle = self.pam_idle()
        print(f"Idle: PAM (pam_ssf.so, bob) p50 {idle['p50_us']:.0f} µs, p99 "
              f"{idle['p99_us']:.0f} µs over {idle['samples']:.0f} logins", flush=True)
        self.ingesting(idle, back=False)

    def ingesting(self, idle, back):
        """Part 3: PAM while N SETs are ingested (back: they bring the levels down, else up),
        over idle; then its controls: the same ingestion the other way sampled with
        pam_permit.so logins, which never reach the daemon (what that load alone does to any
        login on this machine), and once more the first way with logins that ask bench-stub
        (what it does to a login that waits for another process's answer)."""
        r = self.results
        jtis = self.queue_backlog(self.n_sets, "ingest", pause=True, back=back)
        c = self.drain(jtis, sampler_ms=600000)
        p = c["pam"]
        r["pam_p99_ingesting_ratio"] = round(p["p99_us"] / idle["p99_us"], 3)
        r["pam_p50_ingesting_ratio"] = round(p["p50_us"] / idle["p50_us"], 3)
        print(f"PAM while {len(jtis)} SETs are ingested ({c['rate']:.0f} SETs/s): p50 "
              f"{p['p50_us']:.0f} µs, p99 {p['p99_us']:.0f} µs, max {p['max_us']:.0f} µs over "
              f"{p['samples']:.0f} logins; p99 ratio {r['pam_p99_ingesting_ratio']}, p50 ratio "
              f"{r['pam_p50_ingesting_ratio']}", flush=True)
        self.load_control("ingesting", lambda service: self.drain(
            self.queue_backlog(self.n_sets, "ingest-permit", pause=True, back=not back),
            sampler_ms=600000, service=service)["pam"])
        self.load_control("ingesting", lambda service: self.drain(
            self.queue_backlog(self.n_sets, "ingest-stub", pause=True, back=back),
            sampler_ms=600000, service=service)["pam"], "stub")

    def stop(self):
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception:
                pass


class Stub:
    """bench-stub on its socket (bench/bench-stub.c), at the priority of this script."""

    def __init__(self, binary, sock):
        self.socket = sock
        self.p = subprocess.Popen([binary, sock], stdout=subprocess.PIPE, text=True)
        if self.p.stdout.readline().strip() != "ready":
            raise SystemExit("bench-load: bench-stub did not start")

    def stop(self):
        self.p.kill()
        self.p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--bench-bin", required=True, help="directory with bench-pam and bench-ipc")
    ap.add_argument("--verify-floor-us", type=float, default=0,
                    help="bench-jws's RS256 EVP floor (µs/op) measured in this run")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--catch-up-only", action="store_true",
                    help="stop after the catch-up (1 and 2): to compare two builds quickly")
    ap.add_argument("--sets", type=int, default=0,
                    help="N of the catch-up (default 100,000) and, up to 30,000, of the ingesting")
    ap.add_argument("--json", help="write the measured keys into this file (JSON object)")
    ap.add_argument("--only", choices=("logout", "ingesting"),
                    help="logout: only part 3b, signal to logout (poll and push); ingesting: only "
                         "part 3, PAM while ingesting, and its control")
    args = ap.parse_args()
    # SIGTERM (a stopped run) unwinds like an error: the stack is stopped, the directory removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ["SSF_BUILD"] = os.path.abspath(args.build)
    tmp = tempfile.mkdtemp(prefix="ssf-bench-load-")
    os.chmod(tmp, 0o755)
    b = Bench(args, tmp)
    try:
        {"logout": b.run_logout, "ingesting": b.run_ingesting}.get(args.only, b.run)()
    finally:
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(b.results, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
