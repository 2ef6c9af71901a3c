/* SPDX-License-Identifier: MIT */
#pragma once

/* Helpers the unit tests share. Include after <cmocka.h>. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"

#define TEST_DATA_MAX (1024u * 1024u - 1u)

/* Reads tests/data/DIR/NAME (e.g. "jose", "jwks.json") from the source tree: $SSF_TEST_DATA, the
 * working directory (make check runs from the top), or relative to the test binary
 * (B/tests/test-x). Fails the test when it cannot. Returns the NUL-terminated contents (to be
 * freed) and their length in *ret_len. */
static inline char *test_data_read(const char *dir, const char *name, size_t *ret_len) {
        const char *env = getenv("SSF_TEST_DATA");
        char path[8192], exe[2048];
        char *buf = NULL;
        ssize_t n;
        int r = -ENOENT;

        if (env) {
                snprintf(path, sizeof path, "%s/%s/%s", env, dir, name);
                r = read_full_file(path, 0, (uid_t) -1, TEST_DATA_MAX, &buf, ret_len);
        }
        if (r < 0) {
                snprintf(path, sizeof path, "tests/data/%s/%s", dir, name);
                r = read_full_file(path, 0, (uid_t) -1, TEST_DATA_MAX, &buf, ret_len);
        }
        if (r < 0 && (n = readlink("/proc/self/exe", exe, sizeof exe - 1)) > 0) {
                char *slash;

                exe[n] = 0;
                slash = strrchr(exe, '/');
                if (slash)
                        *slash = 0;
                snprintf(path, sizeof path, "%s/../../tests/data/%s/%s", exe, dir, name);
                r = read_full_file(path, 0, (uid_t) -1, TEST_DATA_MAX, &buf, ret_len);
        }
        if (r < 0)
                fail_msg("cannot read test data %s/%s: %s", dir, name, strerror(-r));
        return buf;
}
