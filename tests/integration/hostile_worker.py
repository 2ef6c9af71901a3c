#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A compromised network worker, for the tests only: the root daemon built for tests
(build/helpers/ssf-sessiond-test) runs this instead of its real worker when SSF_TEST_WORKER
names it. Once $SSF_TEST_SCRIPT.go exists it sends the frames listed in the JSON file
$SSF_TEST_SCRIPT on the channel (fd 3), one by one, and appends each reply root sends back to
$SSF_TEST_SCRIPT.replies (one JSON object per line, null when root closed the channel). It
does so once: started again (root restarts a worker it killed), it only lingers."""

import json
import os
import socket
import sys
import time

LINK_FD = 3


def main():
    script = os.environ["SSF_TEST_SCRIPT"]
    with open(script) as f:
        frames = json.load(f)
    ch = socket.socket(fileno=LINK_FD)
    ch.settimeout(10)
    done = os.path.exists(script + ".replies")
    deadline = time.monotonic() + 60
    while not done and not os.path.exists(script + ".go") and time.monotonic() < deadline:
        time.sleep(0.05)
    out = open(script + ".replies", "a", buffering=1)
    for frame in ([] if done else frames):
        ch.send(json.dumps(frame, separators=(",", ":")).encode())
        if "id" in frame:
            try:
                data = ch.recv(1 << 20)
            except (socket.timeout, OSError):
                data = b""
            out.write((data.decode(errors="replace") or "null") + "\n")
            if not data:
                break  # root closed the channel (it kills a worker that breaks the protocol)
    if not done:
        out.write('"done"\n')
    # Linger as a worker would, until root stops or kills us.
    while True:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
