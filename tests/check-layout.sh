#!/bin/bash
# SPDX-License-Identifier: MIT
# Checks that the tree keeps its process boundary (README, "Layout"), and says in words what
# crosses it. The Makefile already compiles each folder with only the include paths it may use;
# this names the offending #include before a compiler error would, and checks what the compiler
# cannot:
#  * every #include "…" of a folder resolves in a folder it may see:
#      ssf-sessiond/receiver/  the network worker: common/, ssf-sessiond/shared/, itself
#      ssf-sessiond/daemon/    the root daemon:    common/, ssf-sessiond/shared/, itself
#      ssf-sessiond/shared/    both processes:     common/, itself
#      ssf-sessiond/main.c     the entry point:    all three, to start either process
#      ssfctl/                 the CLI:            common/, itself
#      pam_ssf/                the PAM module:     common/, itself
#      common/                 everything above:   itself
#  * the built libraries: the worker's calls no SQLite, D-Bus or event loop (it holds no state
#    and acts on nothing); root's calls no libcurl, TLS or JOSE crypto (it never parses network
#    bytes); the CLI's and the shared code call neither side's libraries.
#  * every source file opens with a comment that says which process runs it.
# Usage: tests/check-layout.sh [--sources] [BUILD-DIR]
# --sources checks the sources only (make check runs it before building, so a wrong #include is
# named here rather than only as a compiler error).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sources_only=""
[ "${1:-}" = "--sources" ] && { sources_only=1; shift; }
B=${1:-build}
fail=0
SD=ssf-sessiond

say() {
        echo "check-layout: $*" >&2
        fail=1
}

describe() { # folder -> what runs it
        case "$1" in
        $SD/receiver) echo "the unprivileged network worker" ;;
        $SD/daemon) echo "the root daemon" ;;
        $SD/shared) echo "code both ssf-sessiond processes link" ;;
        $SD) echo "ssf-sessiond's entry point" ;;
        ssfctl) echo "the ssfctl CLI" ;;
        pam_ssf) echo "pam_ssf.so (inside sshd, login, su)" ;;
        common) echo "code linked into pam_ssf.so, ssf-sessiond and ssfctl" ;;
        *) echo "$1" ;;
        esac
}

allowed() { # folder -> the folders whose headers it may include
        case "$1" in
        $SD/receiver) echo "$SD/receiver $SD/shared common" ;;
        $SD/daemon) echo "$SD/daemon $SD/shared common" ;;
        $SD/shared) echo "$SD/shared common" ;;
        $SD) echo "$SD/daemon $SD/receiver $SD/shared common" ;;
        ssfctl) echo "ssfctl common" ;;
        pam_ssf) echo "pam_ssf common" ;;
        common) echo "common" ;;
        esac
}

all_dirs="$SD/receiver $SD/daemon $SD/shared ssfctl pam_ssf common"

for f in $SD/*.c $SD/*/*.[ch] ssfctl/*.[ch] pam_ssf/*.[ch] common/*.[ch]; do
        dir=$(dirname "$f")
        ok_dirs=$(allowed "$dir")
        if [ -z "$ok_dirs" ]; then
                say "$f is in $dir/, which is no part of the layout (README, \"Layout\")"
                continue
        fi
        while IFS= read -r inc; do
                found=""
                for d in $ok_dirs; do
                        [ -e "$d/$inc" ] && { found=$d; break; }
                done
                [ -n "$found" ] && continue
                owner=""
                for d in $all_dirs; do
                        [ -e "$d/$inc" ] && { owner=$d; break; }
                done
                if [ -n "$owner" ]; then
                        say "$f includes \"$inc\", a header of $owner/ ($(describe "$owner")):" \
                            "$(describe "$dir") may include only headers of ${ok_dirs// /\/, }/"
                else
                        say "$f includes \"$inc\", which no folder of the tree has"
                fi
        done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")

        # The opening comment (the lines before the first #include or declaration) names the
        # process that runs the file.
        opening=$(awk 'NR > 1 && /^(#include|typedef|struct|static|int|void|bool|const|char|extern|#define)/ { exit } { print }' "$f" | tr -s ' \n*' ' ')
        case "$dir" in
        $SD/receiver) want="network worker" ;;
        $SD/daemon) want="root daemon" ;;
        $SD/shared) want="both processes" ;;
        ssfctl) want="ssfctl" ;;
        *) want="" ;;
        esac
        if ! grep -q '[A-Za-z]' <<<"${opening#*SPDX-License-Identifier: MIT }"; then
                say "$f does not open with a comment saying what it is for"
        elif [ -n "$want" ] && ! grep -qi "$want" <<<"$opening"; then
                say "$f's opening comment does not say that $(describe "$dir") runs it (\"$want\")"
        fi
done

if [ -n "$sources_only" ]; then
        [ $fail -eq 0 ] && echo "check-layout: sources ok"
        exit $fail
fi

# What each library calls, by the prefix of the symbols it leaves undefined.
forbid() { # library what-it-is regex-of-forbidden-prefixes what-they-are
        local lib=$B/$1 hits
        if [ ! -e "$lib" ]; then
                say "$lib is missing (build it first: make tests)"
                return
        fi
        hits=$(nm -u "$lib" 2>/dev/null | awk '{print $2}' | grep -E "^($3)" | sort -u | head -5 | tr '\n' ' ')
        [ -z "$hits" ] || say "$lib ($2) calls $4: $hits"
}
forbid libsessiond-receiver.a "the network worker" 'sqlite3_|sd_bus_|sd_event_' \
        "SQLite, D-Bus or the event loop, which only root may use"
forbid libsessiond-daemon.a "the root daemon" 'curl_|SSL_|EVP_|OSSL_|BIO_' \
        "libcurl or OpenSSL, which only the network worker may use"
forbid libsessiond-shared.a "code both processes link" 'sqlite3_|sd_bus_|sd_event_|curl_|SSL_|EVP_' \
        "one side's libraries"
forbid libssfctl-core.a "ssfctl" 'sqlite3_|sd_|curl_|SSL_|EVP_' "the daemon's libraries"

[ $fail -eq 0 ] && echo "check-layout: ok"
exit $fail
