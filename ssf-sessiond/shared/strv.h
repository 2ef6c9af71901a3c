/* SPDX-License-Identifier: MIT */
#pragma once

/* NULL-terminated string vectors (char **), as systemd has them. Linked by both processes. */

#include <stddef.h>

#include "macro.h"

/* strv_free is NULL-safe and returns NULL. */
char **strv_free(char **l);
size_t strv_length(char *const *l);
/* Appends a copy of s. Returns 0 or -ENOMEM (l unchanged). */
int strv_extend(char ***l, const char *s);
/* Takes ownership of s (freed on failure). */
int strv_consume(char ***l, char *s);
int strv_contains(char *const *l, const char *s);

static inline void strv_freep(char ***l) {
        strv_free(*l);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)
