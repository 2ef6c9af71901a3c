/* SPDX-License-Identifier: MIT */
/*
 * Containing a hook's processes (hook-tree.h): a cgroup of its own when the daemon's cgroup is
 * delegated, else an intermediate subreaper. Runs in the root daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "hook-tree.h"
#include "killas.h"
#include "log.h"
#include "macro.h"

#define CGROUP_EMPTY_WAIT_USEC (2ULL * 1000000ULL)
#define REAPER_LAST_RESORT_USEC (2ULL * 1000000ULL)
#define CHILDREN_MAX 1024

static atomic_uint run_counter;

static uint64_t mono_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static void sleep_usec(uint64_t usec) {
        struct timespec ts = { .tv_sec = (time_t) (usec / 1000000ULL),
                               .tv_nsec = (long) (usec % 1000000ULL) * 1000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* ---- finding the daemon's cgroup ---- */

/* Undoes mountinfo's octal escapes (\040 for a space…) in place. */
static void unescape_octal(char *s) {
        char *w = s;

        for (const char *p = s; *p;) {
                if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
                    p[3] >= '0' && p[3] <= '7') {
                        *w++ = (char) (((p[1] - '0') << 6) | ((p[2] - '0') << 3) | (p[3] - '0'));
                        p += 4;
                } else
                        *w++ = *p++;
        }
        *w = 0;
}

/* The cgroup2 mount whose root contains path; *ret_sub is path below that root. */
static int find_cgroup2_mount(const char *path, char **ret_mnt, const char **ret_sub) {
        _cleanup_free_ char *line = NULL;
        size_t size = 0;
        FILE *f;
        int r = -ENOENT;

        f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return -errno;
        while (getline(&line, &size, f) > 0) {
                char *fields[6] = {}, *save = NULL, *p, *sep;
                size_t n = 0, l;

                sep = strstr(line, " - ");
                if (!sep || !startswith(sep + 3, "cgroup2 "))
                        continue;
                *sep = 0;
                for (p = strtok_r(line, " ", &save); p && n < ARRAY_SIZE(fields);
                     p = strtok_r(NULL, " ", &save))
                        fields[n++] = p;
                if (n < 5)
                        continue;
                unescape_octal(fields[3]); /* root of the mount within the hierarchy */
                unescape_octal(fields[4]); /* mount point */
                l = strlen(fields[3]);
                if (streq(fields[3], "/"))
                        l = 0;
                else if (strncmp(path, fields[3], l) != 0 || (path[l] != '/' && path[l] != 0))
                        continue;
                *ret_mnt = strdup(fields[4]);
                if (!*ret_mnt) {
                        r = -ENOMEM;
                        break;
                }
                *ret_sub = path + l;
                r = 0;
                break;
        }
        fclose(f);
        return r;
}

int hook_tree_own_cgroup(char **ret) {
        _cleanup_free_ char *line = NULL, *path = NULL, *mnt = NULL;
        size_t size = 0;
        const char *sub = NULL;
        FILE *f;
        int r;

        f = fopen("/proc/self/cgroup", "re");
        if (!f)
                return -errno;
        while (getline(&line, &size, f) > 0) {
                const char *p = startswith(line, "0::");

                if (!p)
                        continue;
                path = strndup(p, strcspn(p, "\n"));
                break;
        }
        fclose(f);
        if (!path)
                return -ENOENT;
        if (path[0] != '/' || strstr(path, "/.."))
                return -ENOENT; /* e.g. "/../.." outside our cgroup namespace */

        r = find_cgroup2_mount(path, &mnt, &sub);
        if (r < 0)
                return r;
        if (asprintf(ret, "%s%s", streq(mnt, "/") ? "" : mnt, streq(sub, "/") ? "" : sub) < 0)
                return -ENOMEM;
        return 0;
}

bool hook_tree_cgroup_is_delegated(const char *dir) {
        static const char *const names[] = { "trusted.delegate", "user.delegate" };

        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                char v[8] = "";
                ssize_t n = getxattr(dir, names[i], v, sizeof(v) - 1);

                if (n > 0 && v[0] == '1')
                        return true;
        }
        return false;
}

int hook_tree_prepare(HookTree *t, uid_t uid, uint64_t grace_usec) {
        _cleanup_free_ char *own = NULL;
        int r;

        *t = HOOK_TREE_NULL;
        t->mode = HOOK_TREE_REAPER;
        t->uid = uid;
        t->grace_usec = grace_usec;
        t->daemon_pid = getpid();

        r = hook_tree_own_cgroup(&own);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || !hook_tree_cgroup_is_delegated(own))
                return 0;

        t->parent_fd = open(own, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (t->parent_fd < 0) {
                log_debug_errno(errno, "Cannot open the cgroup '%s', hooks run under a reaper: %m", own);
                return 0;
        }
        for (int attempt = 0;; attempt++) {
                snprintf(t->name, sizeof(t->name), "hook-%d-%u", (int) t->daemon_pid,
                         atomic_fetch_add(&run_counter, 1u));
                if (mkdirat(t->parent_fd, t->name, 0755) >= 0)
                        break;
                if (errno != EEXIST || attempt >= 3) {
                        log_warning_errno(errno, "Cannot create a cgroup for a hook in '%s', it runs "
                                          "under a reaper instead: %m", own);
                        t->parent_fd = safe_close(t->parent_fd);
                        return 0;
                }
        }
        t->cgroup_fd = openat(t->parent_fd, t->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (t->cgroup_fd >= 0)
                t->procs_fd = openat(t->cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
        if (t->cgroup_fd < 0 || t->procs_fd < 0) {
                log_warning_errno(errno, "Cannot open the hook cgroup '%s/%s': %m", own, t->name);
                hook_tree_done(t);
                *t = HOOK_TREE_NULL;
                t->mode = HOOK_TREE_REAPER;
                t->uid = uid;
                t->grace_usec = grace_usec;
                t->daemon_pid = getpid();
                return 0;
        }
        if (asprintf(&t->cgroup_path, "%s/%s", own, t->name) < 0) {
                t->cgroup_path = NULL;
                hook_tree_done(t);
                return -ENOMEM;
        }
        t->mode = HOOK_TREE_CGROUP;
        return 0;
}

int hook_tree_join(const HookTree *t) {
        if (t->mode != HOOK_TREE_CGROUP)
                return 0;
        if (write(t->procs_fd, "0", 1) != 1)
                return -errno;
        return 0;
}

/* ---- the cgroup, seen from the daemon ---- */

/* Reads a small file of the hook's cgroup into buf (NUL-terminated). */
static int cgroup_read(const HookTree *t, const char *file, char *buf, size_t size) {
        _cleanup_close_ int fd = openat(t->cgroup_fd, file, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        return (int) n;
}

static bool cgroup_populated(const HookTree *t) {
        char buf[256];
        const char *p;

        if (cgroup_read(t, "cgroup.events", buf, sizeof(buf)) < 0)
                return false; /* gone */
        p = strstr(buf, "populated ");
        return p && p[strlen("populated ")] == '1';
}

/* Sends sig to each process in the cgroup; returns how many there were. */
static int cgroup_signal_all(const HookTree *t, int sig) {
        _cleanup_close_ int fd = openat(t->cgroup_fd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
        FILE *f;
        long pid;
        int n = 0;

        if (fd < 0)
                return 0;
        f = fdopen(TAKE_FD(fd), "r");
        if (!f)
                return 0;
        while (fscanf(f, "%ld", &pid) == 1)
                if (pid > 0) {
                        (void) kill_as(t->uid, (pid_t) pid, sig);
                        n++;
                }
        fclose(f);
        return n;
}

static bool cgroup_wait_empty(const HookTree *t, uint64_t usec) {
        uint64_t end = mono_usec() + usec;

        for (;;) {
                if (!cgroup_populated(t))
                        return true;
                if (mono_usec() >= end)
                        return false;
                sleep_usec(10000);
        }
}

static void cgroup_kill(const HookTree *t) {
        _cleanup_close_ int fd = openat(t->cgroup_fd, "cgroup.kill", O_WRONLY | O_CLOEXEC);

        if (fd >= 0 && write(fd, "1", 1) == 1)
                return;
        /* Before Linux 5.14: one by one. A member that forks meanwhile is caught next round. */
        for (int round = 0; round < 50 && cgroup_signal_all(t, SIGKILL) > 0; round++)
                sleep_usec(2000);
}

/* ---- signals from the daemon ---- */

void hook_tree_terminate(HookTree *t) {
        if (t->pid <= 0)
                return;
        if (t->mode == HOOK_TREE_REAPER) {
                (void) kill(t->pid, SIGTERM);
                return;
        }
        (void) kill_as(t->uid, -t->pid, SIGTERM);
        (void) kill_as(t->uid, t->pid, SIGTERM);
        (void) cgroup_signal_all(t, SIGTERM); /* also those that left its process group */
}

void hook_tree_kill(HookTree *t) {
        if (t->pid <= 0 || t->mode == HOOK_TREE_REAPER)
                return;
        cgroup_kill(t);
        (void) kill_as(t->uid, t->pid, SIGKILL);
}

void hook_tree_kill_reaper(HookTree *t) {
        if (t->pid > 0 && t->mode == HOOK_TREE_REAPER) {
                log_warning("The reaper of a hook (pid %d) did not exit in time: killing it", (int) t->pid);
                (void) kill(t->pid, SIGKILL);
        }
}

int hook_tree_cleanup(HookTree *t) {
        int n = 0;

        if (t->mode != HOOK_TREE_CGROUP || t->cgroup_fd < 0)
                return 0;
        if (cgroup_populated(t)) {
                n = cgroup_signal_all(t, SIGTERM);
                if (!cgroup_wait_empty(t, t->grace_usec)) {
                        cgroup_kill(t);
                        if (!cgroup_wait_empty(t, CGROUP_EMPTY_WAIT_USEC))
                                log_warning("Processes of a hook are still in '%s' after SIGKILL",
                                            strempty(t->cgroup_path));
                }
        }
        t->cgroup_fd = safe_close(t->cgroup_fd);
        t->procs_fd = safe_close(t->procs_fd);
        if (unlinkat(t->parent_fd, t->name, AT_REMOVEDIR) < 0)
                log_warning_errno(errno, "Cannot remove the hook cgroup '%s': %m", strempty(t->cgroup_path));
        t->parent_fd = safe_close(t->parent_fd);
        return n;
}

void hook_tree_done(HookTree *t) {
        if (t->parent_fd >= 0 && t->name[0]) {
                t->cgroup_fd = safe_close(t->cgroup_fd);
                t->procs_fd = safe_close(t->procs_fd);
                (void) unlinkat(t->parent_fd, t->name, AT_REMOVEDIR);
        }
        t->cgroup_fd = safe_close(t->cgroup_fd);
        t->procs_fd = safe_close(t->procs_fd);
        t->parent_fd = safe_close(t->parent_fd);
        t->cgroup_path = mfree(t->cgroup_path);
        t->name[0] = 0;
}

/* ---- the reaper: a forked child of a threaded process, async-signal-safe calls only ---- */

static size_t fmt_uint(char *buf, unsigned long v) {
        char tmp[24];
        size_t n = 0, i = 0;

        do
                tmp[n++] = (char) ('0' + v % 10);
        while ((v /= 10) > 0);
        while (n > 0)
                buf[i++] = tmp[--n];
        buf[i] = 0;
        return i;
}

/* The reaper's direct children (the hook, and whatever was re-parented to it). Returns how many
 * (at most max), or -1 when the kernel does not list them. */
static int reaper_children(pid_t self, pid_t *pids, int max) {
        char path[64] = "/proc/self/task/", buf[4096];
        size_t l = strlen(path);
        unsigned long cur = 0;
        bool in_num = false;
        int fd, n = 0;
        ssize_t k;

        l += fmt_uint(path + l, (unsigned long) self);
        memcpy(path + l, "/children", sizeof("/children"));
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        while ((k = read(fd, buf, sizeof(buf))) > 0)
                for (ssize_t i = 0; i < k; i++) {
                        if (buf[i] >= '0' && buf[i] <= '9') {
                                cur = cur * 10 + (unsigned long) (buf[i] - '0');
                                in_num = true;
                        } else if (in_num) {
                                if (n < max && cur > 0)
                                        pids[n++] = (pid_t) cur;
                                cur = 0;
                                in_num = false;
                        }
                }
        if (in_num && n < max && cur > 0)
                pids[n++] = (pid_t) cur;
        (void) close(fd);
        return n;
}

static void reaper_signal(const HookTree *t, pid_t hook, int sig) {
        pid_t pids[CHILDREN_MAX];
        int n;

        /* The hook's process group (it may be gone while members are left) ... */
        if (kill(-hook, sig) < 0 && errno == EPERM)
                (void) kill_as(t->uid, -hook, sig);
        /* ... and every direct child, whatever session or group it moved to: the hook, and what
         * was re-parented to us when its parent died. Their own children come to us in turn. */
        n = reaper_children(getpid(), pids, CHILDREN_MAX);
        for (int i = 0; i < n; i++) {
                if (kill(pids[i], sig) < 0 && errno == EPERM)
                        (void) kill_as(t->uid, pids[i], sig);
                (void) kill(-pids[i], sig); /* its group, when it leads one */
        }
}

__attribute__((noreturn)) static void reaper_exit_like(int status) {
        struct sigaction sa = { .sa_handler = SIG_DFL };
        struct rlimit no_core = {};
        sigset_t one;
        int sig;

        if (WIFEXITED(status))
                _exit(WEXITSTATUS(status));
        if (!WIFSIGNALED(status))
                _exit(127);
        /* Die of the same signal, so that the daemon reads the hook's own status. */
        sig = WTERMSIG(status);
        (void) setrlimit(RLIMIT_CORE, &no_core);
        (void) sigaction(sig, &sa, NULL);
        sigemptyset(&one);
        sigaddset(&one, sig);
        (void) kill(getpid(), sig);
        (void) sigprocmask(SIG_UNBLOCK, &one, NULL);
        _exit(128 + sig);
}

void hook_tree_reaper(const HookTree *t, int errfd, void (*run_hook)(void *userdata), void *userdata) {
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigset_t all, waitset;
        uint64_t kill_at = 0;
        bool stopping = false, hook_done = false;
        int hook_status = 0, v;
        pid_t hook, w;

        /* Signals: default dispositions, everything blocked; SIGTERM (from the daemon, or when
         * the daemon's thread goes away) and SIGCHLD are taken with sigtimedwait(). */
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, &dfl, NULL);
        sigfillset(&all);
        (void) sigprocmask(SIG_SETMASK, &all, NULL);
        sigemptyset(&waitset);
        sigaddset(&waitset, SIGTERM);
        sigaddset(&waitset, SIGCHLD);

        /* Out of the daemon's session: a terminal's ^C reaches the daemon, not us. */
        (void) setsid();
        (void) prctl(PR_SET_NAME, (unsigned long) "ssf-hook-reaper", 0, 0, 0);
        if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ||
            prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0)
                goto fail;
        if (getppid() != t->daemon_pid) {
                errno = ESRCH; /* the daemon is already gone */
                goto fail;
        }

        hook = fork();
        if (hook < 0)
                goto fail;
        if (hook == 0) {
                run_hook(userdata);
                _exit(127);
        }
        /* Only the hook holds the error pipe now: EOF tells the daemon that it runs. */
        (void) close(errfd);

        for (;;) {
                struct timespec ts, *tsp = NULL;
                uint64_t now;
                int status, sig;

                while ((w = waitpid(-1, &status, WNOHANG)) > 0)
                        if (w == hook) {
                                hook_done = true;
                                hook_status = status;
                        }
                if (w < 0 && errno == ECHILD)
                        break; /* the hook and everything it left are gone */

                now = mono_usec();
                if (hook_done && !stopping) {
                        /* The hook exited: what it left behind is stopped too. */
                        stopping = true;
                        kill_at = now + t->grace_usec;
                        reaper_signal(t, hook, SIGTERM);
                }
                if (stopping && now >= kill_at)
                        reaper_signal(t, hook, SIGKILL);

                if (stopping) {
                        uint64_t d = now >= kill_at ? 20000 : MIN(kill_at - now, (uint64_t) 100000);
                        ts = (struct timespec) { .tv_sec = 0, .tv_nsec = (long) d * 1000L };
                        tsp = &ts;
                }
                sig = sigtimedwait(&waitset, NULL, tsp);
                if (sig == SIGTERM && !stopping) {
                        stopping = true;
                        kill_at = mono_usec() + t->grace_usec;
                        reaper_signal(t, hook, SIGTERM);
                }
        }
        if (!hook_done)
                _exit(127);
        reaper_exit_like(hook_status);

fail:
        v = errno;
        (void) !write(errfd, &v, sizeof(v));
        _exit(127);
}
