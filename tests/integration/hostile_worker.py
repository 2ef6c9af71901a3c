#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A compromised network worker, for the tests only: the root daemon built for tests
(build/helpers/ssf-sessiond-test) runs this instead of its real worker when SSF_TEST_WORKER
names it. It appends its pid to $SSF_TEST_SCRIPT.starts. Once $SSF_TEST_SCRIPT.go exists it
sends the frames listed in the JSON file $SSF_TEST_SCRIPT on the channel (fd 3, or the one a
frame's "channel" index names), one by one,
and appends each reply root sends back to $SSF_TEST_SCRIPT.replies (one JSON object per line,
null when root closed the channel). It does so once: started again (root restarts a worker it
killed), it only lingers. Its arguments go to $SSF_TEST_SCRIPT.argv (a JSON list a line).

The script is either that list of frames, or an object {"frames": [...], "mode": M, "count": N}
where M says what it does after the frames (first start only), writing $SSF_TEST_SCRIPT.M when
it is at it:
  "linger"    closes the channel and lingers, never exiting (root must kill it)
  "pipeline"  sends N requests (kv-get) without reading any reply, then lingers without reading
  "flood"     sends small "facts" messages as fast as the channel takes them, until root closes it
  "ingest"    sends N ingest requests built from the first frame's "request" (its jti and
              suffix -1 … -N), each answered before the next, with each
              reply appended to the replies file as above"""

import json
import os
import socket
import sys
import time

LINK_FD = 3


def mark(script, mode, text=""):
    with open(script + "." + mode, "w") as f:
        f.write(text)


def linger(ch, read=True):
    """Lingers as a worker would, until root stops or kills us."""
    while True:
        if not read:
            time.sleep(3600)
            continue
        try:
            data = ch.recv(1 << 20)
        except socket.timeout:
            continue
        except OSError:
            break
        if not data:
            break
        if json.loads(data).get("type") == "stop":
            break


CHANNELS = {}


def channel(ch, frame):
    """The channel a frame goes on: fd 3, or fd 3 + frame["channel"] (a worker that serves
    several push transmitters has a channel each, in the order of its --transmitter
    arguments); "channel" itself is not sent."""
    i = frame.pop("channel", 0)
    if i == 0:
        return ch
    if i not in CHANNELS:
        CHANNELS[i] = socket.socket(fileno=LINK_FD + i)
        CHANNELS[i].settimeout(10)
    return CHANNELS[i]


def send_frames(ch, frames, out):
    for frame in frames:
        frame = dict(frame)
        c = channel(ch, frame)
        c.send(json.dumps(frame, separators=(",", ":")).encode())
        if "id" in frame:
            try:
                data = c.recv(1 << 20)
            except (socket.timeout, OSError):
                data = b""
            out.write((data.decode(errors="replace") or "null") + "\n")
            if not data:
                return False  # root closed the channel (it kills a worker that breaks the protocol)
    return True


def main():
    script = os.environ["SSF_TEST_SCRIPT"]
    with open(script) as f:
        spec = json.load(f)
    if isinstance(spec, list):
        spec = {"frames": spec}
    frames, mode, count = spec.get("frames", []), spec.get("mode"), spec.get("count", 0)
    with open(script + ".starts", "a") as f:
        f.write(f"{os.getpid()}\n")
    with open(script + ".argv", "a") as f:
        f.write(json.dumps(sys.argv[1:]) + "\n")
    ch = socket.socket(fileno=LINK_FD)
    ch.settimeout(10)
    done = os.path.exists(script + ".replies")
    deadline = time.monotonic() + 60
    while not done and not os.path.exists(script + ".go") and time.monotonic() < deadline:
        time.sleep(0.05)
    if done:
        linger(ch)
        return 0
    out = open(script + ".replies", "a", buffering=1)
    alive = send_frames(ch, [] if mode == "ingest" else frames, out)
    if alive and mode == "linger":
        ch.close()
        mark(script, mode, str(os.getpid()))
        while True:
            time.sleep(3600)
    if alive and mode == "pipeline":
        ch.settimeout(None)
        try:
            for i in range(count):
                ch.send(json.dumps({"type": "kv-get", "id": i + 1, "key": "stream_id"}).encode())
        except OSError:
            pass
        mark(script, mode, str(os.getpid()))
        linger(ch, read=False)
    if alive and mode == "flood":
        ch.settimeout(None)
        mark(script, mode, str(os.getpid()))
        msg = b'{"type":"facts"}'
        try:
            while True:
                ch.send(msg)
        except OSError:
            pass
        linger(ch, read=False)
    if alive and mode == "ingest":
        base = frames[0]["request"]
        batch = []
        for i in range(count):
            req = json.loads(json.dumps(base))
            req["jti"] = f"{base['jti']}-{i + 1}"
            batch.append({"type": "ingest", "id": i + 1, "request": req})
        mark(script, mode, str(os.getpid()))
        send_frames(ch, batch, out)
    out.write('"done"\n')
    linger(ch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
