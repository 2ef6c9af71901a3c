# SPDX-License-Identifier: MIT
"""The fault campaign: "nothing lost, nothing doubled" while the daemon is killed.

Shared by tests/integration/test_faults.py (a short run in make check) and bench/faults.py
(the long run, `bench/run.sh --faults N`). A stream of SETs for many users flows from the
local transmitter while the campaign SIGKILLs the root daemon or its network worker at
random points and restarts it; at each root kill (every process of the daemon gone) and at
the end it checks:

* never acknowledged before its commit: every SET the transmitter has seen acknowledged is
  in the state database's jti table at that moment (nothing commits while the daemon is dead);
* every SET acknowledged in the end, none reported in setErrs, no violation at the transmitter
  (an acknowledgement repeated after a restart is allowed: RFC 8936 acks are idempotent);
* applied exactly once: one history entry per jti (`ssfctl --json history -n N`);
* every due logout took effect: each session opened for a user before a high-risk SET for
  that user was sent got TerminateSession; the sessions of the other users did not;
* every hook ran at least once, at most once per daemon lifetime, and never after a
  completion was recorded: the hook appends "$SSF_JTI GENERATION" to a file, and the
  workflow actions recorded as done at each root kill must not run in a later generation.

Randomness comes from one seed (printed), so a failing run is replayed with the same seed.
Kill points are random (a random number of acknowledgements to wait for, or a random short
delay); every wait for an outcome is a bounded wait for a condition.
"""

import collections
import os
import random
import signal
import sqlite3
import time

import support
from support import wait_for

FIRST_UID = 5001

# The suite's default policy: high logs out, medium runs notify-admin.
RULES = support.DEFAULT_RULES

HIGH_EVENTS = ("session-revoked", "credential-compromise", "account-disabled")
MEDIUM_EVENTS = ("credential-change", "token-claims-change", "identifier-changed")

# The hook: one line per run, "JTI GENERATION", then a pause that widens the window in which
# a kill of the root daemon interrupts it (a run that may legitimately repeat).
HOOK = """#!/bin/sh
gen=$(cat '{gen}')
printf '%s %s\\n' "$SSF_JTI" "$gen" >> '{runs}'
sleep 0.05
echo "notified about $SSF_USER"
"""


def campaign_users(n_logout, n_hook):
    """(logout users, hook users) as nss_wrapper passwd rows."""
    rows = []
    for i in range(n_logout + n_hook):
        name = f"{'lo' if i < n_logout else 'wf'}{i:03d}"
        uid = FIRST_UID + i
        rows.append((name, uid, uid, name, f"/home/{name}", "/bin/sh"))
    return rows[:n_logout], rows[n_logout:]


def children(pid):
    """Pids of pid's children (every thread's children file)."""
    out = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out.update(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def descendants(pid):
    out, todo = set(), [pid]
    while todo:
        for c in children(todo.pop()):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def worker_pid(daemon):
    """The network worker's pid (a child of the root daemon started with --network-worker),
    or None."""
    for c in children(daemon.proc.pid):
        if b"--network-worker" in cmdline(c) and alive(c):
            return c
    return None


class Campaign:
    """One campaign against a transmitter, a logind mock and nss users; make_daemon(**kw)
    returns a started support.Daemon (the pytest daemon_factory or Stack.start_daemon)."""

    def __init__(self, transmitter, logind, users, make_daemon, seed, iterations,
                 n_logout=8, n_hook=8, log=print):
        self.tx, self.logind, self.users = transmitter, logind, users
        self.make_daemon = make_daemon
        self.seed = seed
        self.rng = random.Random(seed)
        self.iterations = iterations
        self.log = log
        self.logout_users, self.hook_users = campaign_users(n_logout, n_hook)
        self.sent = []                       # (jti, user, kind) in order
        self.sessions = collections.defaultdict(list)  # user -> session ids it opened
        self.due_logout = set()              # session ids opened before a high SET was sent
        self.generation = 0
        self.done_at = {}                    # workflow jti -> first generation seen done
        self.stats = collections.Counter()
        self.kill_ms = []                    # root kill -> restarted and ready, ms
        self.daemon = None

    # -- set-up --------------------------------------------------------------------------------
    def setup(self):
        self.users.users = [u for u in self.users.users if u[1] < FIRST_UID] + \
            self.logout_users + self.hook_users
        self.users.write()
        # Unacknowledged SETs come back soon after a kill: keeps the campaign short.
        self.tx.configure(redelivery_delay=0.3)
        self.daemon = self.make_daemon(rules=RULES, start=False)
        self.gen_file = os.path.join(self.daemon.dir, "generation")
        self.runs_file = os.path.join(self.daemon.dir, "hook-runs")
        self.daemon.add_hook("notify-admin", HOOK.format(gen=self.gen_file, runs=self.runs_file))
        self.db_path = os.path.join(self.daemon.state_dir, "state.db")
        self._start()
        return self

    def _start(self):
        self.generation += 1
        with open(self.gen_file, "w") as f:
            f.write(f"{self.generation}\n")
        self.daemon.start()
        # The socket file a killed daemon leaves behind exists before the new one listens:
        # ready means a query is answered.
        wait_for(lambda: self.daemon.ctl("status", check=False)[0] == 0, 30,
                 "the restarted daemon to answer ssfctl status")

    # -- the stream ----------------------------------------------------------------------------
    def _send_one(self):
        if self.rng.random() < 0.5:
            name, uid = self.rng.choice(self.logout_users)[:2]
            sid = f"{name}s{len(self.sessions[name])}"
            self.logind.add_session(sid, uid, name)
            self.sessions[name].append(sid)
            self.due_logout.add(sid)
            event, kind = self.rng.choice(HIGH_EVENTS), "logout"
        else:
            name = self.rng.choice(self.hook_users)[0]
            event, kind = self.rng.choice(MEDIUM_EVENTS), "workflow"
        jti = self.tx.send_event(event, email=f"{name}@example.com")
        self.sent.append((jti, name, kind))
        return jti

    # -- faults --------------------------------------------------------------------------------
    def _kill_point(self, batch):
        """Wait for a random number of this batch's acknowledgements, or a random short
        delay: the moment of the kill is what is random, not an outcome."""
        if self.rng.random() < 0.5:
            want = self.rng.randint(0, len(batch))
            wait_for(lambda: len(set(batch) & set(self.tx.acks()["acked"])) >= want, 60,
                     f"{want} acknowledgements before the kill")
        else:
            time.sleep(self.rng.uniform(0, 0.3))

    def _kill_root(self):
        d = self.daemon
        procs = descendants(d.proc.pid)
        t0 = time.monotonic()
        d.kill()
        # Every process of the daemon (worker, hook reaper, hooks) goes with it.
        wait_for(lambda: not any(alive(p) for p in procs), 30,
                 f"the daemon's processes {sorted(procs)} to exit after its SIGKILL")
        self._check_dead_state()
        self._start()
        self.kill_ms.append((time.monotonic() - t0) * 1000)
        self.stats["root kills"] += 1

    def _kill_worker(self):
        d = self.daemon
        w = wait_for(lambda: worker_pid(d), 60, "the network worker to be running")
        os.kill(w, signal.SIGKILL)
        wait_for(lambda: (worker_pid(d) or w) != w, 90, "a new network worker after a SIGKILL")
        assert d.running(), f"the root daemon died when its worker was killed:\n{d.log()[-4000:]}"
        self.stats["worker kills"] += 1
        self._check_acked_committed()

    def _db(self, query):
        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
        try:
            return {r[0] for r in db.execute(query)}
        finally:
            db.close()

    def _check_acked_committed(self):
        """Every SET the transmitter has recorded as acknowledged is in the state database's
        jti table. The acknowledgements are read first: a SET acknowledged then was committed
        before, whether or not the daemon still runs."""
        acked = set(self.tx.acks()["acked"]) & {j for j, _, _ in self.sent}
        early = acked - self._db("SELECT jti FROM jti")
        assert not early, (f"seed {self.seed}: acknowledged but not committed: {sorted(early)}")
        self.stats["acks checked against the store"] += len(acked)

    def _check_dead_state(self):
        """While no process of the daemon runs: note which workflow actions are recorded as
        done (their hook must never run again)."""
        self._check_acked_committed()
        for j in self._db("SELECT jti FROM actions WHERE action = 'workflow' AND state = 1"):
            self.done_at.setdefault(j, self.generation)
        self.stats["checks while dead"] += 1

    def run(self):
        worker_streak = 0
        for _ in range(self.iterations):
            batch = [self._send_one() for _ in range(self.rng.randint(1, 5))]
            self._kill_point(batch)
            # The broker's restart backoff doubles with each worker death and is reset only
            # by a new root daemon: after three worker kills in a row, kill the root.
            if worker_streak < 3 and self.rng.random() < 0.5:
                self._kill_worker()
                worker_streak += 1
            else:
                self._kill_root()
                worker_streak = 0
            self.stats["iterations"] += 1
        return self

    # -- the end -------------------------------------------------------------------------------
    def history(self):
        return self.daemon.ctl("history", "-n", str(10 * len(self.sent) + 100))["entries"]

    def finish(self, timeout=120):
        """Wait until everything sent is acknowledged and every action finished, then check
        the outcome. Returns a summary dict."""
        jtis = [j for j, _, _ in self.sent]

        def all_acked():
            a = self.tx.acks()
            bad = {j: a["set_errs"][j] for j in jtis if j in a["set_errs"]}
            assert not bad, f"seed {self.seed}: SETs reported in setErrs: {bad}"
            assert not a["violations"], f"seed {self.seed}: {a['violations']}"
            return set(jtis) <= set(a["acked"])
        try:
            wait_for(all_acked, timeout, f"all {len(jtis)} SETs to be acknowledged", interval=0.2)
        except support.WaitTimeout as e:
            missing = set(jtis) - set(self.tx.acks()["acked"])
            raise AssertionError(f"seed {self.seed}: {e}; not acknowledged: {sorted(missing)}; "
                                 f"log tail:\n{self.daemon.log()[-6000:]}") from None

        def actions_done():
            h = [e for e in self.history() if e.get("jti") in set(jtis)]
            return h if all(e.get("result") not in (None, "pending") for e in h) else None
        entries = wait_for(actions_done, timeout, "every action to finish", interval=0.2)

        # Applied exactly once.
        count = collections.Counter(e["jti"] for e in entries)
        bad = {j: count[j] for j in jtis if count[j] != 1}
        assert not bad, f"seed {self.seed}: history entries per jti (want 1): {bad}"
        by_jti = {e["jti"]: e for e in entries}
        for jti, user, kind in self.sent:
            e = by_jti[jti]
            assert e["user"] == user and e["action"] == kind, (self.seed, e)
            assert e["result"].startswith("ok"), (self.seed, e)

        # Every due logout took effect; no other session was ended.
        def terminated():
            return set(self.logind.terminated()) >= self.due_logout
        wait_for(terminated, 30, "TerminateSession for every session of a user at high risk")
        term = self.logind.terminated()
        extra = set(term) - self.due_logout
        assert not extra, f"seed {self.seed}: sessions ended that were not due: {extra}"
        left = {s[0] for s in self.logind.sessions()} & self.due_logout
        assert not left, f"seed {self.seed}: sessions still open: {left}"

        # Hooks: at least once, at most once per daemon lifetime, never after completion.
        runs = collections.defaultdict(list)
        with open(self.runs_file) as f:
            for line in f:
                j, g = line.split()
                runs[j].append(int(g))
        wf = [j for j, _, k in self.sent if k == "workflow"]
        never = [j for j in wf if not runs.get(j)]
        assert not never, f"seed {self.seed}: hooks that never ran: {never}"
        unknown = set(runs) - set(wf)
        assert not unknown, f"seed {self.seed}: hook runs for jtis not sent: {unknown}"
        for j in wf:
            gens = runs[j]
            assert len(gens) == len(set(gens)), \
                f"seed {self.seed}: hook for {j} ran twice in one daemon lifetime: {gens}"
            if j in self.done_at:
                late = [g for g in gens if g > self.done_at[j]]
                assert not late, (f"seed {self.seed}: hook for {j} ran again in generation(s) "
                                  f"{late} after its completion was recorded in generation "
                                  f"{self.done_at[j]}")
        repeats = sum(len(runs[j]) - 1 for j in wf)
        return {"seed": self.seed, "iterations": self.stats["iterations"],
                "root_kills": self.stats["root kills"],
                "worker_kills": self.stats["worker kills"],
                "checks_while_dead": self.stats["checks while dead"],
                "acks_checked": self.stats["acks checked against the store"],
                "hooks_done_at_kills": len(self.done_at),
                "sets": len(jtis), "logouts_due": len(self.due_logout),
                "hooks": len(wf), "hook_reruns": repeats,
                "duplicate_acks": self.tx.acks()["counters"].get("duplicate_acks", 0),
                "restart_ms_p50": _pct(self.kill_ms, 50), "restart_ms_max": _pct(self.kill_ms, 100)}


def _pct(xs, p):
    if not xs:
        return None
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(len(s) * p / 100))], 1)


def seed_from_env(default=None):
    """SSF_FAULT_SEED or a fresh random seed."""
    v = os.environ.get("SSF_FAULT_SEED")
    if v:
        return int(v)
    return default if default is not None else random.SystemRandom().randrange(1, 2**31)
