#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The long fault campaign: nothing lost, nothing doubled over many random kills.

The same campaign as tests/integration/test_faults.py (tests/integration/faults.py), run
for N iterations (default 1000) in rounds of at most --round iterations, each round on a
fresh private stack (local transmitter, private D-Bus with the logind mock, nss_wrapper
users, the real ssf-sessiond) so that the transmitter's records stay small. Each round's seed
derives from the run's seed (printed); a failing round prints its seed, which replays it:

    bench/faults.py --build build --iterations 1000 [--seed N]
    SSF_FAULT_SEED=N SSF_FAULT_ITERATIONS=M pytest tests/integration/test_faults.py -k campaign

Prints one row per round and the totals; exits 1 when a check fails (its state directory is
kept and named), 2 on a usage error. Needs root (like the integration tests).
"""

import argparse
import os
import random
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import faults  # noqa: E402
import support  # noqa: E402

COLUMNS = [("round", 5), ("seed", 10), ("iters", 5), ("root kills", 10), ("worker kills", 12),
           ("SETs", 5), ("logouts", 7), ("hooks", 5), ("hook reruns", 11), ("dup acks", 8),
           ("restart p50 ms", 14), ("seconds", 7)]


def row(values):
    return "  ".join(f"{str(v):>{w}s}" for v, (_, w) in zip(values, COLUMNS))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.environ.get("B", "build"))
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--round", type=int, default=100, help="iterations per fresh stack")
    p.add_argument("--seed", type=int, default=None)
    a = p.parse_args()
    if a.iterations < 1 or a.round < 1:
        p.error("--iterations and --round must be positive")
    build = os.path.abspath(a.build)
    seed = a.seed if a.seed is not None else faults.seed_from_env()
    print(f"fault campaign: {a.iterations} iterations, seed {seed} "
          f"(replay: bench/faults.py --seed {seed} --iterations {a.iterations})")
    print(row([c for c, _ in COLUMNS]))
    master = random.Random(seed)
    totals = {"iterations": 0, "root_kills": 0, "worker_kills": 0, "sets": 0,
              "logouts_due": 0, "hooks": 0, "hook_reruns": 0, "duplicate_acks": 0}
    restart = []
    t_all = time.monotonic()
    n_round, left = 0, a.iterations
    while left > 0:
        n_round += 1
        its = min(a.round, left)
        rseed = master.randrange(1, 2**31)
        base = tempfile.mkdtemp(prefix="ssf-faults.")
        t0 = time.monotonic()
        try:
            with support.Stack(base, build) as s:
                c = faults.Campaign(s.transmitter, s.logind, s.users, s.start_daemon, rseed, its,
                                    log=lambda *x: None).setup()
                c.run()
                r = c.finish()
        except BaseException as e:
            print(f"\nround {n_round} FAILED (seed {rseed}, {its} iterations): {e}\n"
                  f"state kept in {base}; replay with SSF_FAULT_SEED={rseed} "
                  f"SSF_FAULT_ITERATIONS={its} on tests/integration/test_faults.py -k campaign",
                  file=sys.stderr)
            return 1
        shutil.rmtree(base, ignore_errors=True)
        for k in totals:
            totals[k] += r[k]
        restart += c.kill_ms
        print(row([n_round, rseed, r["iterations"], r["root_kills"], r["worker_kills"], r["sets"],
                   r["logouts_due"], r["hooks"], r["hook_reruns"], r["duplicate_acks"],
                   r["restart_ms_p50"], f"{time.monotonic() - t0:.0f}"]), flush=True)
        left -= its
    print(row(["all", seed, totals["iterations"], totals["root_kills"], totals["worker_kills"],
               totals["sets"], totals["logouts_due"], totals["hooks"], totals["hook_reruns"],
               totals["duplicate_acks"], faults._pct(restart, 50),
               f"{time.monotonic() - t_all:.0f}"]))
    print(f"fault campaign: passed: {totals['sets']} SETs acknowledged after commit and applied "
          f"once, {totals['logouts_due']} due logouts done, {totals['hooks']} hooks run "
          f"({totals['hook_reruns']} repeated after a kill interrupted them, none after "
          f"completion), over {totals['root_kills']} root and {totals['worker_kills']} "
          f"worker kills")
    return 0


if __name__ == "__main__":
    sys.exit(main())
