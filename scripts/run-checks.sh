#!/bin/bash
# Runs the test suites against the build directory $1. $2 selects one suite
# (unit | fuzz | static | integration | e2e); default: all of them.
set -u
B=${1:-build}
only=${2:-all}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
PY=/usr/bin/python3
passed=0
failed=0
failures=()

record() { # name rc
        if [ "$2" -eq 0 ]; then
                passed=$((passed + 1))
        else
                failed=$((failed + 1))
                failures+=("$1")
        fi
}
want() { [ "$only" = all ] || [ "$only" = "$1" ]; }

if want unit; then
        echo "== unit tests"
        for t in "$B"/tests/test-*; do
                [ -x "$t" ] || continue
                "$t"
                rc=$? # before anything else: a command substitution would reset $?
                record "unit:$(basename "$t")" $rc
        done
fi

if want fuzz; then
        echo "== fuzz corpora replay"
        for f in "$B"/fuzz/fuzz-*; do
                [ -x "$f" ] || continue
                name=$(basename "$f")
                corpus=tests/fuzz/corpus/${name#fuzz-}
                if [ ! -d "$corpus" ]; then
                        echo "missing corpus $corpus for $name"
                        record "fuzz:$name" 1
                        continue
                fi
                "$f" "$corpus"
                record "fuzz:$name" $?
        done
fi

if want static; then
        echo "== pam_ssf.so exports and links"
        tests/check-exports.sh "$B/pam_ssf.so"
        record "exports" $?
        echo "== layout: the process boundary (include paths, libraries, opening comments)"
        tests/check-layout.sh "$B"
        record "layout" $?
        echo "== manual pages"
        tests/check-man.sh
        record "man-lint" $?
        tests/check-man-keys.sh
        record "man-keys" $?
        echo "== systemd units"
        tests/check-units.sh
        record "units" $?
fi

if want integration; then
        # Each test has its own temporary directory, transmitter, bus and daemon, so the files
        # run side by side (pytest-xdist, a file per worker: a file's tests stay in order).
        # SSF_TEST_JOBS=1 runs them one after the other.
        jobs=${SSF_TEST_JOBS:-3}
        par=()
        if [ "$jobs" -gt 1 ]; then
                if $PY -c 'import xdist' 2>/dev/null; then
                        par=(-n "$jobs" --dist loadfile)
                else
                        echo "pytest-xdist is missing (scripts/install-deps.sh): one test at a time"
                fi
        fi
        echo "== integration tests (pytest${par[*]:+ ${par[*]}})"
        SSF_BUILD="$top/$B" $PY -m pytest -q -p no:cacheprovider "${par[@]}" tests/integration
        rc=$?
        [ $rc -eq 5 ] && rc=1 # no tests collected is a failure
        record "integration" $rc
fi

if want e2e; then
        echo "== end-to-end (systemd-nspawn: real logind, sshd, journald)"
        SSF_BUILD="$top/$B" tests/e2e/run.sh
        record "e2e" $?
fi

echo
if [ $failed -gt 0 ]; then
        printf 'FAILED: %s\n' "${failures[@]}"
fi
echo "check: $passed passed, $failed failed"
[ $failed -eq 0 ]
