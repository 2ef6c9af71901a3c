#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Builds (once) the Debian 12 root the end-to-end tests boot with systemd-nspawn, and prints
# its path. The root is cached outside the work tree, under $SSF_E2E_CACHE (default
# /var/cache/ssf-e2e), in a directory named after a hash of what goes into it, so changing the
# package list builds a new one. A missing root is rebuilt; a concurrent builder waits on a lock;
# the root is built in a temporary directory and renamed into place only when complete, so a
# half-built root is never used.
#
# The mirror is read from this machine's apt sources at run time (deb822
# /etc/apt/sources.list.d/*.sources "URIs:" or a "deb URI bookworm" line of sources.list), or
# taken from $SSF_E2E_MIRROR.
#
# Usage: build-root.sh            print the root's path, building it first when missing
#        build-root.sh --rebuild  throw the cached root away and build it again
set -euo pipefail

SUITE=bookworm
CACHE=${SSF_E2E_CACHE:-/var/cache/ssf-e2e}
# The product's runtime libraries (ldd of ssf-sessiond and ssfctl) and what the scenarios use:
# logind + dbus, sshd with pam_systemd, su (util-linux), useradd (passwd).
INCLUDE="systemd,systemd-sysv,dbus,libpam-systemd,openssh-server,passwd,util-linux,procps"
INCLUDE="$INCLUDE,libcurl4,libjansson4,libsqlite3-0,libinih1,libsystemd0,libssl3,libpam0g,ca-certificates"
RECIPE_VERSION=1 # bump when the steps below change

log() { echo "build-root: $*" >&2; }
die() { log "$*"; exit 1; }

find_mirror() {
        local f uri
        if [ -n "${SSF_E2E_MIRROR:-}" ]; then
                echo "$SSF_E2E_MIRROR"
                return
        fi
        # deb822 sources: the first URIs: of a stanza whose Suites: names the release.
        for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
                [ -r "$f" ] || continue
                uri=$(awk -v suite="$SUITE" '
                        BEGIN { RS = ""; FS = "\n" }
                        {
                                u = ""; ok = 0
                                for (i = 1; i <= NF; i++) {
                                        if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); u = a[2] }
                                        if ($i ~ /^Suites:/ && $i ~ ("[ \t]" suite "([ \t]|$)")) ok = 1
                                }
                                if (ok && u != "" && u !~ /security/) { print u; exit }
                        }' "$f")
                if [ -n "$uri" ]; then
                        echo "$uri"
                        return
                fi
        done
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
                [ -r "$f" ] || continue
                uri=$(awk -v suite="$SUITE" '
                        $1 == "deb" {
                                i = 2
                                if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                                if ($(i + 1) == suite) { print $i; exit }
                        }' "$f")
                if [ -n "$uri" ]; then
                        echo "$uri"
                        return
                fi
        done
        return 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap)"
command -v debootstrap >/dev/null || die "debootstrap is not installed (scripts/install-deps.sh)"

rebuild=0
[ "${1:-}" = --rebuild ] && rebuild=1

key=$(printf '%s\n' "$SUITE" "$INCLUDE" "$RECIPE_VERSION" "$(uname -m)" | sha256sum | cut -c1-12)
root="$CACHE/$SUITE-$key"

mkdir -p "$CACHE"
chmod 0700 "$CACHE"
exec 9>"$CACHE/.lock"
if ! flock -w 900 9; then
        die "timed out waiting for another build of the root ($CACHE/.lock)"
fi

if [ $rebuild -eq 1 ] && [ -d "$root" ]; then
        log "removing $root"
        rm -rf --one-file-system "$root"
fi

if [ -d "$root" ] && [ -e "$root/.ssf-e2e-root" ]; then
        echo "$root"
        exit 0
fi

mirror=$(find_mirror) || die "no $SUITE mirror found in the apt sources (set SSF_E2E_MIRROR)"

# Leftovers of interrupted builds (we hold the lock, so nobody is building them).
rm -rf --one-file-system "$CACHE"/.tmp-* 2>/dev/null || true
[ -e "$root" ] && rm -rf --one-file-system "$root"

tmp=$(mktemp -d "$CACHE/.tmp-$SUITE-XXXXXX")
log "building $SUITE root from $mirror into $root (one-off, about a minute)"
start=$(date +%s)
if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$tmp" "$mirror" \
        >"$tmp.log" 2>&1; then
        tail -n 30 "$tmp.log" >&2
        rm -rf --one-file-system "$tmp"
        die "debootstrap failed (log above)"
fi

# Make the root boot quietly and quickly: no getty on the console, no machine-id conflicts
# (empty file: systemd generates a transient one at every boot), no apt caches.
rm -f "$tmp/etc/machine-id"
: >"$tmp/etc/machine-id"
echo ssf-e2e >"$tmp/etc/hostname"
chroot "$tmp" systemctl mask --quiet console-getty.service getty@.service \
        systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer 2>/dev/null || true
rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*
echo "$SUITE $INCLUDE $RECIPE_VERSION" >"$tmp/.ssf-e2e-root"
mv "$tmp.log" "$tmp/.ssf-e2e-debootstrap.log"
mv -T "$tmp" "$root"
log "built $root in $(($(date +%s) - start)) s ($(du -sh "$root" | cut -f1))"

# Roots of other package lists are not used by this checkout; remove those built more than a
# day ago (a run of another checkout may still be booting a recent one).
find "$CACHE" -mindepth 1 -maxdepth 1 -type d -name "$SUITE-*" ! -path "$root" -mtime +0 \
        -exec rm -rf --one-file-system {} + 2>/dev/null || true
echo "$root"
