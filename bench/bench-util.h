/* SPDX-License-Identifier: MIT */
#pragma once

/* Small helpers shared by the benchmark programs: a monotonic clock and medians. Everything a
 * benchmark reports is a median over rounds, and every ratio is paired (both sides measured in
 * the same round), so that a noisy neighbour on a shared machine shifts both sides alike. */

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define BENCH_MAX_ROUNDS 64

static inline uint64_t bench_now_ns(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (uint64_t) t.tv_sec * UINT64_C(1000000000) + (uint64_t) t.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

/* Sorts v in place. */
static inline double bench_median(double *v, int n) {
        qsort(v, (size_t) n, sizeof(double), bench_cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
