/* SPDX-License-Identifier: MIT */
/*
 * A user database that is slow on demand, for the integration tests (never installed): an NSS
 * module that nss_wrapper loads (NSS_WRAPPER_MODULE_SO_PATH, NSS_WRAPPER_MODULE_FN_PREFIX
 * "ssfgate") next to its files. Looking up the name in $SSF_NSS_GATE_NAME waits until the file
 * named by $SSF_NSS_GATE_FILE exists (at most 60 s), then answers "no such user"; it appends
 * one line to $SSF_NSS_GATE_FILE.waiting when the wait starts, so that a test knows the lookup
 * is under way. Every other lookup answers "no such user" at once (the files answer those).
 * Runs in whatever process nss_wrapper is preloaded into (the daemon under test).
 */
#include <errno.h>
#include <fcntl.h>
#include <nss.h>
#include <pwd.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void gate_wait(const char *name) {
        const char *who = getenv("SSF_NSS_GATE_NAME"), *file = getenv("SSF_NSS_GATE_FILE");
        char waiting[4096];
        int fd;

        if (!who || !file || !name || strcmp(name, who) != 0)
                return;
        (void) snprintf(waiting, sizeof(waiting), "%s.waiting", file);
        fd = open(waiting, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
                (void) !write(fd, "1\n", 2);
                (void) close(fd);
        }
        for (int i = 0; i < 6000 && access(file, F_OK) < 0; i++)
                (void) nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
}

enum nss_status _nss_ssfgate_getpwnam_r(const char *name, struct passwd *pw, char *buf,
                                        size_t len, int *errnop);
enum nss_status _nss_ssfgate_getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t len,
                                        int *errnop);
enum nss_status _nss_ssfgate_setpwent(void);
enum nss_status _nss_ssfgate_getpwent_r(struct passwd *pw, char *buf, size_t len, int *errnop);
enum nss_status _nss_ssfgate_endpwent(void);
enum nss_status _nss_ssfgate_getgrnam_r(const char *name, struct group *gr, char *buf, size_t len,
                                        int *errnop);
enum nss_status _nss_ssfgate_getgrgid_r(gid_t gid, struct group *gr, char *buf, size_t len,
                                        int *errnop);
enum nss_status _nss_ssfgate_setgrent(void);
enum nss_status _nss_ssfgate_getgrent_r(struct group *gr, char *buf, size_t len, int *errnop);
enum nss_status _nss_ssfgate_endgrent(void);
enum nss_status _nss_ssfgate_initgroups_dyn(const char *user, gid_t group, long int *start,
                                            long int *size, gid_t **groups, long int limit,
                                            int *errnop);

enum nss_status _nss_ssfgate_getpwnam_r(const char *name, struct passwd *pw, char *buf,
                                        size_t len, int *errnop) {
        gate_wait(name);
        return NSS_STATUS_NOTFOUND;
}

enum nss_status _nss_ssfgate_getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t len,
                                        int *errnop) {
        return NSS_STATUS_NOTFOUND;
}

enum nss_status _nss_ssfgate_setpwent(void) {
        return NSS_STATUS_SUCCESS;
}

enum nss_status _nss_ssfgate_getpwent_r(struct passwd *pw, char *buf, size_t len, int *errnop) {
        return NSS_STATUS_NOTFOUND;
}

enum nss_status _nss_ssfgate_endpwent(void) {
        return NSS_STATUS_SUCCESS;
}

enum nss_status _nss_ssfgate_getgrnam_r(const char *name, struct group *gr, char *buf, size_t len,
                                        int *errnop) {
        return NSS_STATUS_NOTFOUND;
}

enum nss_status _nss_ssfgate_getgrgid_r(gid_t gid, struct group *gr, char *buf, size_t len,
                                        int *errnop) {
        return NSS_STATUS_NOTFOUND;
}

enum nss_status _nss_ssfgate_setgrent(void) {
        return NSS_STATUS_SUCCESS;
}

enum nss_status _nss_ssfgate_getgrent_r(struct group *gr, char *buf, size_t len, int *errnop) {
        return NSS_STATUS_NOTFOUND;
}

enum nss_status _nss_ssfgate_endgrent(void) {
        return NSS_STATUS_SUCCESS;
}

enum nss_status _nss_ssfgate_initgroups_dyn(const char *user, gid_t group, long int *start,
                                            long int *size, gid_t **groups, long int limit,
                                            int *errnop) {
        return NSS_STATUS_NOTFOUND;
}
