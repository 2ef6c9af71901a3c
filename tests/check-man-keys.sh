#!/bin/sh
# Fails when a key of ssf-sessiond/shared/config.c's table (config_items[]) is not documented in
# man/ssf-sessiond.conf.5 as ".It Cm KEY" under its section's ".Ss [SECTION]" heading.
# Usage: tests/check-man-keys.sh [SOURCE-TOP]
set -eu

top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
src=$top/ssf-sessiond/shared/config.c
man=$top/man/ssf-sessiond.conf.5

[ -r "$src" ] || { echo "check-man-keys: cannot read $src" >&2; exit 1; }
[ -r "$man" ] || { echo "check-man-keys: cannot read $man" >&2; exit 1; }

# "        { SECTION_TRANSMITTER, "issuer", parse_…" -> "transmitter issuer"
keys=$(sed -n 's/^ *{ SECTION_\([A-Z]*\), "\([a-z0-9_-]*\)",.*/\1 \2/p' "$src" | tr '[:upper:]' '[:lower:]')
if [ -z "$keys" ]; then
        echo "check-man-keys: no keys found in $src (table format changed?)" >&2
        exit 1
fi

# The man page's keys, each prefixed by the section it is documented in.
documented=$(awk '
        /^\.Ss \[/ { s = $2; sub(/^\[/, "", s); sub(/[] ].*$/, "", s); sub(/\\&$/, "", s); next }
        /^\.Sh / { s = "" }
        /^\.It Cm / && s != "" { print s, $3 }
' "$man")

missing=0
n=0
echo "$keys" | {
        while read -r section key; do
                n=$((n + 1))
                if ! printf '%s\n' "$documented" | grep -qx "$section $key"; then
                        echo "check-man-keys: [$section] $key is not documented in $man" >&2
                        missing=$((missing + 1))
                fi
        done
        if [ "$missing" -gt 0 ]; then
                echo "check-man-keys: $missing of $n keys undocumented" >&2
                exit 1
        fi
        echo "check-man-keys: all $n keys documented"
}
