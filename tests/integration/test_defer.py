# SPDX-License-Identifier: MIT
"""Defer, don't reject: a valid SET that cannot be checked yet (the transmitter rotated its
signing key since our last JWKS fetch, and the fetch is rate-limited) is neither acknowledged
nor reported in setErrs, but checked again when a fetch is allowed; only a kid still unknown
in a JWKS fetched after the SET arrived is invalid_key. A 429/503 with Retry-After holds every
request to the transmitter back until then. A SET right after a delivery is fetched by the
poll that carries the acknowledgement, without the anti-spin pause.

Times in assertions are the transmitter's own (time.monotonic() of its process, when each
request arrived); they are only ever bounded from below."""

import time

import support
from support import wait_for

RULES = support.LOGOUT_HIGH_RULES
JWKS = "/ssf/jwks.json"
REFRESH_MIN = 30.0  # JWKS_REFRESH_MIN_USEC
EPS = 0.05          # the transmitter's clock is read a little after a request arrives


def requests(transmitter, path=None, prefix=None):
    out = transmitter.acks()["requests"]
    if path:
        out = [r for r in out if r["path"] == path]
    if prefix:
        out = [r for r in out if r["path"].startswith(prefix)]
    return out


def wait_transmitter_time(transmitter, when):
    """Wait until the transmitter's clock has passed `when`."""
    wait_for(lambda: transmitter.acks()["now"] >= when, 30, f"transmitter time {when:.1f}",
             interval=0.1)


def test_rotated_key_is_deferred_not_rejected(daemon_factory, transmitter, logind, users):
    d = daemon_factory(rules=RULES)
    fetches = wait_for(lambda: requests(transmitter, JWKS), 20, "the daemon's JWKS fetch")
    first = fetches[0]["time"]
    old_kid = transmitter.jwks()["keys"][0]["kid"]
    jti0 = transmitter.send_event("session-established", email="carol@example.com")
    transmitter.wait_acked(jti0)

    # 2 s after the daemon fetched the JWKS, the transmitter rotates to a new key (ES256,
    # so that a SET can still be signed with the old RS256 key, which stays published).
    wait_transmitter_time(transmitter, first + 2)
    rotated = transmitter.rotate_key(alg="ES256")
    assert rotated["kid"] != old_kid

    # Three SETs in one poll answer: signed with the new key, with a kid the transmitter
    # never published, and with the old key.
    transmitter.set_stream_status("paused")
    new_key = transmitter.send_event("session-revoked", email="bob@example.com")
    unknown = transmitter.send_event("session-revoked", email="alice@example.com",
                                     tamper="kid-unknown")
    old_key = transmitter.send_event("credential-change", email="carol@example.com",
                                     sign_alg="RS256")
    transmitter.set_stream_status("enabled")

    # The SET after the deferred ones is acknowledged at once...
    transmitter.wait_acked(old_key)
    a = transmitter.acks()
    # ...while those two are neither acknowledged nor reported: within 30 s of the first
    # fetch, the JWKS is not fetched again for them.
    for jti in (new_key, unknown):
        assert jti not in a["acked"] and jti not in a["set_errs"], (jti, a)
    assert len(requests(transmitter, JWKS)) == 1
    assert d.ctl("risk", "bob")["level"] == "none"
    deferred_at = a["now"]

    # Once a fetch is allowed: the new key is found and the SET applied; the kid the fresh
    # JWKS does not have either is invalid_key.
    transmitter.wait_acked(new_key, timeout=REFRESH_MIN + 20)
    err = transmitter.wait_set_err(unknown, timeout=20)
    assert err["err"] == "invalid_key", err
    assert d.ctl("risk", "bob")["level"] == "high"
    assert d.ctl("risk", "alice")["level"] == "none"

    fetches = requests(transmitter, JWKS)
    assert len(fetches) == 2, fetches  # one refresh for both
    assert fetches[1]["time"] >= first + REFRESH_MIN - EPS, (first, fetches)
    a = transmitter.acks()
    assert a["violations"] == [], a["violations"]
    assert new_key not in a["set_errs"]
    # While the two waited, the transmitter delivered them again and again; the daemon did
    # not spin on them (a busy loop would poll thousands of times in these seconds).
    polls = [r for r in requests(transmitter, prefix="/ssf/poll/")
             if deferred_at <= r["time"] <= fetches[1]["time"]]
    seconds = fetches[1]["time"] - deferred_at
    assert len(polls) <= 3 * seconds + 5, (len(polls), seconds)
    assert "deferring it" in d.log()


def test_retry_after_holds_the_poller(daemon_factory, transmitter, users):
    d = daemon_factory(rules=RULES)
    transmitter.wait_stream()
    jti = transmitter.send_event("session-established", email="carol@example.com")
    transmitter.wait_acked(jti)

    transmitter.configure(fail={"path_prefix": "/ssf/poll/", "status": 429, "count": 1,
                                "retry_after": "2"})

    def refused():
        return [r for r in requests(transmitter, prefix="/ssf/poll/") if r["status"] == 429]

    t429 = wait_for(refused, 20, "a poll answered 429")[0]["time"]
    after = wait_for(lambda: [r for r in requests(transmitter) if r["time"] > t429
                              and r["path"] != JWKS], 20, "the next request")
    # No request to the transmitter (JWKS fetches excepted) within the 2 s it asked for.
    assert after[0]["time"] >= t429 + 2 - EPS, (t429, after[0])
    # And polling goes on: a SET is delivered and acknowledged.
    jti = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(jti)
    assert d.ctl("risk", "bob")["level"] == "high"
    assert "Retry-After: 2" in d.log()


def test_retry_after_http_date_on_a_503(daemon_factory, transmitter, users):
    """503 with an HTTP date: no request before that second (the date has 1 s granularity,
    so the hold ends at or after the whole second it names, measured from the answer)."""
    d = daemon_factory(rules=RULES)
    transmitter.wait_stream()
    wait_for(lambda: requests(transmitter, prefix="/ssf/poll/"), 20, "a first poll")
    when = time.time() + 6
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(when))
    transmitter.configure(fail={"path_prefix": "/ssf/poll/", "status": 503, "count": 1,
                                "retry_after": date})

    def refused():
        return [r for r in requests(transmitter, prefix="/ssf/poll/") if r["status"] == 503]

    t503 = wait_for(refused, 20, "a poll answered 503")[0]
    after = wait_for(lambda: [r for r in requests(transmitter) if r["time"] > t503["time"]
                              and r["path"] != JWKS], 20, "the next request")
    # At least 1 s (6 s ahead of when the test set it, minus the whole-second rounding and
    # the time until the next poll came in: a long poll lasts poll_wait = 2 s at most).
    assert after[0]["time"] >= t503["done"] + 1 - EPS, (t503, after[0])
    jti = transmitter.send_event("session-revoked", email="bob@example.com")
    transmitter.wait_acked(jti)
    assert "Retry-After: " + date in d.log()


def test_set_right_after_a_delivery_is_not_paused(daemon_factory, transmitter, users):
    """The poll that carries the acknowledgements is already the next long poll (the
    transmitter said no more was waiting), so a SET that arrives meanwhile is delivered by
    it, not after an anti-spin pause. The transmitter holds a long poll 3 s (not 10 s): the
    poll after a delivery is recorded only once answered, and the long poll the start-up
    verification interrupts (its answer goes nowhere; a SET it took would come again 2 s
    later, in another poll) ends sooner; the SETs below are sent once it has."""
    transmitter.configure(long_poll_max=3)
    d = daemon_factory(rules=RULES)
    transmitter.wait_stream()
    # The daemon asks for a verification SET at start (which interrupts a long poll): let
    # that settle first.
    wait_for(lambda: requests(transmitter, "/ssf/verify"), 20, "the start-up verification")
    wait_for(lambda: not transmitter.acks()["pending"], 20, "the verification SET acknowledged")

    def one_poll_open():
        a = transmitter.acks()
        answered = [r for r in a["requests"] if r["path"].startswith("/ssf/poll/")]
        return a["polls"] - len(answered) <= 1  # polls arrived, less those answered
    wait_for(one_poll_open, 20, "the interrupted long poll to end")
    first = transmitter.send_event("session-established", email="carol@example.com")
    transmitter.wait_acked(first)
    mark = len(requests(transmitter))
    checked = 0
    for event, user in (("session-revoked", "bob"), ("credential-change", "alice")):
        jti = transmitter.send_event(event, email=f"{user}@example.com")
        transmitter.wait_acked(jti)

        def after_delivery():
            polls = [r for r in requests(transmitter)[mark:]
                     if r["path"].startswith("/ssf/poll/")]
            delivered = [i for i, r in enumerate(polls) if r.get("sets")]
            return polls[delivered[-1] + 1:] if delivered else None

        # (a poll is recorded when answered: the next one is a long poll, up to poll_wait)
        nxt = wait_for(after_delivery, 20, "the poll after the delivery")[0]
        # It carried the acknowledgement and waited for events: a long poll, not a drain
        # poll followed by the anti-spin pause.
        assert nxt["acks"] == 1 and nxt["return_immediately"] is False, nxt
        mark = len(requests(transmitter))
        checked += 1
    assert checked == 2
    assert d.ctl("risk", "bob")["level"] == "high"
