# SPDX-License-Identifier: MIT
"""A bounded store (PRODUCT.md "Limits, retention and protection of the login gate"): a flood
of distinct jtis is bounded by replay_cache_max — past it new SETs are deferred, never
acknowledged, not dropped — and history is pruned to history_max_rows by the periodic
pruning, while PAM keeps answering."""

import os
import sqlite3
import time

from support import wait_for
from test_root_trust import CAEP, email, hostile_daemon, record, replies

PAM_SUCCESS, PAM_PERM_DENIED = 0, 6
EBUSY = 16


def rows(d, table):
    """Row count of a table of the daemon's state database, read without writing."""
    db = sqlite3.connect(f"file:{os.path.join(d.state_dir, 'state.db')}?mode=ro", uri=True,
                         timeout=10)
    try:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        db.close()


def test_flood_of_distinct_jtis_is_bounded(daemon_factory, build_dir, tmp_path, pam):
    frames = [{"type": "ingest", "id": 0,
               "request": record("flood", CAEP + "session-revoked", email("bob@example.com"))}]
    d, script = hostile_daemon(daemon_factory, build_dir, tmp_path,
                               {"mode": "ingest", "count": 60, "frames": frames}, rules="",
                               section_opts={"daemon": {"replay_cache_max": "40",
                                                        "history_max_rows": "20"}})
    with open(script + ".go", "w"):
        pass
    wait_for(lambda: replies(script)[-1:] == ["done"], 60, "the 60 SETs to be answered")
    r = replies(script)[:-1]
    assert len(r) == 60, r
    # The first 40 are committed; the rest are deferred: a local failure (no setErr), which
    # the worker leaves unacknowledged, and nothing of them is stored.
    assert [x["status"] for x in r[:40]] == [0] * 40, r[:40]
    for x in r[40:]:
        assert x["status"] == -EBUSY and "err" not in x, x
    assert "deferring new SETs" in d.log()
    assert rows(d, "jti") == 40
    assert d.ctl("risk", "bob")["level"] == "high"
    assert pam.account(d, "alice", "failmode=closed").code == PAM_SUCCESS
    assert pam.account(d, "bob", "failmode=closed").code == PAM_PERM_DENIED
    # history: 40 rows, pruned to the newest 20 by the periodic pruning (first run a minute
    # after the start).
    wait_for(lambda: rows(d, "history") <= 20, 150, "history to be pruned to history_max_rows")
    assert rows(d, "history") == 20
    newest = d.ctl("history", "bob", "-n", "1")["entries"][0]
    assert newest["jti"] == "flood-40", newest
    assert pam.account(d, "alice", "failmode=closed").code == PAM_SUCCESS


def test_deferred_sets_are_not_acknowledged(daemon_factory, transmitter, pam):
    # verify_interval = 0: no verification SET of the daemon's own takes one of the ten
    # places, whenever it would arrive.
    d = daemon_factory(rules="", section_opts={"daemon": {"replay_cache_max": "10"}},
                       transmitter_opts={"verify_interval": "0"})
    sent = [transmitter.send_event("session-revoked", email=f"{u}@example.com")
            for u in ("alice", "bob") * 6]
    wait_for(lambda: len(set(sent) & set(transmitter.acks()["acked"])) >= 10, 30,
             "ten SETs to be acknowledged")
    wait_for(lambda: "deferring new SETs" in d.log(), 20, "the daemon to defer SETs")
    polls = transmitter.acks()["polls"]
    transmitter.wait_polls(polls + 3, timeout=60)
    a = transmitter.acks()
    acked = [j for j in sent if j in a["acked"]]
    assert len(acked) == 10, a
    # The other two are neither acknowledged nor reported: the transmitter keeps them.
    for j in sent:
        if j not in acked:
            assert j not in a["set_errs"], a
    assert rows(d, "jti") == 10
    assert "Could not record SET" in d.log()
    assert pam.account(d, "carol", "failmode=closed").code == PAM_SUCCESS
