#!/bin/sh
# pam_ssf.so must export only pam_sm_* and link only libc and libpam (plus the loader).
set -eu
so=${1:?usage: check-exports.sh pam_ssf.so}
bad=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | grep -v '^pam_sm_' || true)
if [ -n "$bad" ]; then
        echo "FAIL: $so exports non-PAM symbols: $bad"
        exit 1
fi
n=$(nm -D --defined-only "$so" | awk '$2 == "T" {print $3}' | grep -c '^pam_sm_' || true)
if [ "$n" -lt 6 ]; then
        echo "FAIL: $so exports $n pam_sm_* functions, expected 6"
        exit 1
fi
libs=$(readelf -d "$so" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
for l in $libs; do
        case "$l" in
        libc.so.*|libpam.so.*) ;;
        *) echo "FAIL: $so links $l (only libc and libpam are allowed)"; exit 1 ;;
        esac
done
echo "ok: $so exports only pam_sm_* ($n) and links: $libs"
