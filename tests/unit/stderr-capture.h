/* SPDX-License-Identifier: MIT */
#pragma once

/* What the code under test writes to stderr (log.c's messages, the FILE:LINE of each
 * configuration error), captured so that a unit test can assert on it: capture_begin(DIR)
 * sends stderr to DIR/stderr.txt, capture_end() puts the real stderr back and returns what
 * was written meanwhile (calloc'd, at most 64 KiB; free it). Include after <cmocka.h>. */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char capture_path[256];
static int capture_saved_stderr = -1;

static inline void capture_begin(const char *dir) {
        int n, fd;

        fflush(stderr);
        n = snprintf(capture_path, sizeof capture_path, "%s/stderr.txt", dir);
        assert_true(n > 0 && (size_t) n < sizeof capture_path);
        fd = open(capture_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        capture_saved_stderr = dup(STDERR_FILENO);
        assert_true(capture_saved_stderr >= 0);
        assert_true(dup2(fd, STDERR_FILENO) >= 0);
        close(fd);
}

static inline char *capture_end(void) {
        char *buf = calloc(1, 65536);
        FILE *f;

        fflush(stderr);
        assert_true(dup2(capture_saved_stderr, STDERR_FILENO) >= 0);
        close(capture_saved_stderr);
        capture_saved_stderr = -1;
        assert_non_null(buf);
        f = fopen(capture_path, "re");
        assert_non_null(f);
        buf[fread(buf, 1, 65535, f)] = '\0';
        fclose(f);
        return buf;
}
