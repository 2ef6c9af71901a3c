#!/bin/bash
# SPDX-License-Identifier: MIT
# End-to-end tests: the build in $SSF_BUILD (absolute path), installed with
# `make install DESTDIR=` into a Debian 12 root booted with systemd-nspawn (real systemd,
# journald, logind, dbus, sshd), driven by the local SSF transmitter. The root is built once
# with debootstrap and cached (tests/e2e/build-root.sh). Extra arguments go to pytest
# (e.g. -k restart). Needs root, systemd-nspawn, debootstrap, nsenter, ssh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

if [ -z "${SSF_BUILD:-}" ]; then
        echo "e2e: SSF_BUILD (absolute build directory) is not set" >&2
        exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
        echo "e2e: must run as root (systemd-nspawn, debootstrap)" >&2
        exit 1
fi
for tool in systemd-nspawn debootstrap nsenter ssh ssh-keygen flock; do
        if ! command -v "$tool" >/dev/null; then
                echo "e2e: $tool is missing (scripts/install-deps.sh installs it)" >&2
                exit 1
        fi
done

start=$(date +%s)
SSF_E2E_ROOT=$("$here/build-root.sh")
export SSF_E2E_ROOT SSF_BUILD
echo "e2e: container root $SSF_E2E_ROOT (ready after $(($(date +%s) - start)) s)"

cd "$top"
rc=0
PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest -q -p no:cacheprovider \
        --rootdir="$here" "$here" "$@" || rc=$?
[ $rc -eq 5 ] && rc=1 # no tests collected is a failure
echo "e2e: finished in $(($(date +%s) - start)) s"
exit $rc
