#!/bin/sh
# Lints every manual page with mandoc -Tlint -Wstyle. Cross references between the project's
# own pages resolve through a temporary manpath holding them.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/man5" "$tmp/man8"
for p in "$top"/man/*.[0-9]; do
        sec=${p##*.}
        mkdir -p "$tmp/man$sec"
        cp "$p" "$tmp/man$sec/"
done
makewhatis "$tmp" >/dev/null 2>&1 || true
ours=$(cd "$top/man" && ls *.[0-9] | sed 's/\.\([0-9]\)$/ \1/' | tr '\n' '|')
rc=0
for p in "$top"/man/*.[0-9]; do
        # Pages of other packages may be absent from a minimal machine: only references to
        # the project's own pages must resolve.
        out=$(MANPATH="$tmp" mandoc -Tlint -Wstyle "$p" 2>&1 |
                awk -v ours="|$ours" '
                        /referenced manual not found/ {
                                line = $0; sub(/ \([0-9]+ times\)$/, "", line)
                                n = split(line, f, " "); ref = f[n - 1] " " f[n]
                                if (index(ours, "|" ref "|") == 0) next
                        }
                        { print }') || true
        if [ -n "$out" ]; then
                echo "$out"
                rc=1
        fi
done
[ $rc -eq 0 ] && echo "ok: manual pages lint clean ($(ls "$top"/man/*.[0-9] | wc -l) pages)"
exit $rc
