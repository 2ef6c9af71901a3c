/* SPDX-License-Identifier: MIT */
#pragma once

/* Local users for the unit tests of the root daemon's code, which resolves every user through
 * NSS: the test program runs itself again under nss_wrapper (as the integration tests run the
 * daemon) with these accounts:
 *
 *   root 0, daemon 1, nobody 65534, alice 2001, bob 2002, carol 2003,
 *   alias 2001 (a second name of alice's account), Dave 2004 (a capitalised name)
 *
 * The files live in a temporary directory that the first process removes when the test
 * program under nss_wrapper has ended; it exits with that program's status.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NSS_FIXTURE_LIB "libnss_wrapper.so"

static inline void nss_fixture_exec(char **argv) {
        static const char passwd[] =
                "root:x:0:0:root:/root:/bin/sh\n"
                "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                "alice:x:2001:2001:Alice:/home/alice:/bin/sh\n"
                "bob:x:2002:2002:Bob:/home/bob:/bin/sh\n"
                "carol:x:2003:2003:Carol:/home/carol:/bin/sh\n"
                "alias:x:2001:2001:Alice again:/home/alice:/bin/sh\n"
                "Dave:x:2004:2004:Dave:/home/dave:/bin/sh\n"
                "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
        static const char group[] =
                "root:x:0:\ndaemon:x:1:\nalice:x:2001:\nbob:x:2002:\ncarol:x:2003:\n"
                "Dave:x:2004:\nstaff:x:3000:alice\nnogroup:x:65534:\n";
        char dir[] = "/tmp/ssf-test-nss-XXXXXX", p[64], g[64];
        FILE *f;

        if (getenv("NSS_WRAPPER_PASSWD"))
                return; /* already under nss_wrapper */
        if (!mkdtemp(dir))
                goto fail;
        snprintf(p, sizeof(p), "%s/passwd", dir);
        snprintf(g, sizeof(g), "%s/group", dir);
        f = fopen(p, "we");
        if (!f || fputs(passwd, f) < 0 || fclose(f) != 0)
                goto fail;
        f = fopen(g, "we");
        if (!f || fputs(group, f) < 0 || fclose(f) != 0)
                goto fail;
        if (setenv("NSS_WRAPPER_PASSWD", p, 1) < 0 || setenv("NSS_WRAPPER_GROUP", g, 1) < 0 ||
            setenv("LD_PRELOAD", NSS_FIXTURE_LIB, 1) < 0)
                goto fail;
        {
                /* Under ASan (make asan) the preloaded library comes before its runtime. */
                const char *o = getenv("ASAN_OPTIONS");
                char opts[1024];

                snprintf(opts, sizeof(opts), "%s%sverify_asan_link_order=0", o ? o : "",
                         o && *o ? ":" : "");
                if (setenv("ASAN_OPTIONS", opts, 1) < 0)
                        goto fail;
        }
        {
                pid_t pid = fork();
                int status;

                if (pid < 0)
                        goto fail;
                if (pid == 0) {
                        execv("/proc/self/exe", argv);
                        fprintf(stderr, "cannot run under nss_wrapper: %s\n", strerror(errno));
                        _exit(127);
                }
                while (waitpid(pid, &status, 0) < 0)
                        if (errno != EINTR)
                                goto fail;
                (void) unlink(p);
                (void) unlink(g);
                (void) rmdir(dir);
                exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        }
fail:
        fprintf(stderr, "cannot run under nss_wrapper: %s\n", strerror(errno));
        exit(1);
}
