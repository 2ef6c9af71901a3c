/* SPDX-License-Identifier: MIT */
/*
 * Workflow hooks (hooks.h): checking and running an admin's hook as its user, bounded in
 * time, with a fixed environment. Runs in the root daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/poll.h> /* not <poll.h>: ssf-sessiond/poll.h shadows it */
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "hook-tree.h"
#include "hooks.h"
#include "killas.h"
#include "log.h"
#include "macro.h"
#include "utf8.h"

#define HOOK_PATH_ENV "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
#define HOOK_DEFAULT_TIMEOUT_USEC (30ULL * 1000000ULL)
#define HOOK_KILL_GRACE_USEC (1ULL * 1000000ULL)
#define HOOK_REAPER_LAST_RESORT_USEC (2ULL * 1000000ULL)
#define HOOK_NAME_MAX 128
#define HOOK_CLAIMS_MAX (1024U * 1024U)
#define HOOK_GROUPS_MAX 65536

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static int hook_name_is_valid(const char *name) {
        if (isempty(name) || name[0] == '.' || strlen(name) > HOOK_NAME_MAX)
                return 0;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '-' || *p == '_' || *p == '.' || *p == '@' || *p == '+'))
                        return 0;
        return 1;
}

/* Opens dir/name (O_PATH, not following a symlink) and checks it: the fd that was checked is
 * the one that runs. */
static int hook_open(const char *dir, const char *name, int *ret_fd) {
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        struct stat st;

        if (isempty(dir) || dir[0] != '/')
                return -EINVAL;
        if (!hook_name_is_valid(name))
                return -EINVAL;

        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        if (fstat(dfd, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
                return -EPERM;

        /* O_PATH|O_NOFOLLOW opens a symlink itself, so that fstat() sees it and we refuse it. */
        fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EPERM;
        if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
                return -EPERM;
        if (!(st.st_mode & S_IXUSR))
                return -EPERM;
        if (ret_fd)
                *ret_fd = TAKE_FD(fd);
        return 0;
}

int hooks_check(const char *dir, const char *name) {
        return hook_open(dir, name, NULL);
}

void (*hooks_test_checked)(const char *dir, const char *name) = NULL;

/* ---- preparing the child's world before fork() ---- */

typedef struct HookExec {
        char *path;
        int exec_fd;  /* the checked hook (O_PATH): executed with execveat(), not by path */
        char *argv[2];
        char *envp[12];
        bool drop;
        uid_t uid;
        gid_t gid;
        gid_t *groups;
        size_t n_groups;
        char *input;
        size_t input_size;
} HookExec;

static void hook_exec_done(HookExec *e) {
        free(e->path);
        safe_close(e->exec_fd);
        for (size_t i = 0; i < ARRAY_SIZE(e->envp); i++)
                free(e->envp[i]);
        free(e->groups);
        free(e->input);
}

static int resolve_user(const char *run_as, HookExec *e) {
        _cleanup_free_ char *buf = NULL;
        struct passwd pw, *result = NULL;
        long bufsize;
        int ngroups, r;

        if (isempty(run_as))
                run_as = "root";

        bufsize = sysconf(_SC_GETPW_R_SIZE_MAX);
        if (bufsize < 4096)
                bufsize = 4096;
        for (;;) {
                buf = malloc((size_t) bufsize);
                if (!buf)
                        return -ENOMEM;
                r = getpwnam_r(run_as, &pw, buf, (size_t) bufsize, &result);
                if (r != ERANGE)
                        break;
                if (bufsize > 1024 * 1024)
                        return -ERANGE;
                bufsize *= 2;
                free(buf);
                buf = NULL;
        }
        if (r > 0)
                return -r;
        if (!result)
                return -ESRCH;

        e->uid = pw.pw_uid;
        e->gid = pw.pw_gid;
        if (geteuid() == pw.pw_uid) {
                /* Already that user: nothing to drop. */
                e->drop = false;
                return 0;
        }
        if (geteuid() != 0)
                return -EPERM;
        e->drop = true;

        /* initgroups() is not async-signal-safe: compute the supplementary groups here, apply
         * them with setgroups() in the child. */
        ngroups = 32;
        for (;;) {
                int n = ngroups;
                gid_t *g = reallocarray(e->groups, (size_t) n, sizeof(gid_t));

                if (!g)
                        return -ENOMEM;
                e->groups = g;
                if (getgrouplist(pw.pw_name, pw.pw_gid, e->groups, &n) >= 0) {
                        e->n_groups = (size_t) n;
                        return 0;
                }
                if (n <= ngroups) /* should not happen; be safe */
                        n = ngroups * 2;
                if (n > HOOK_GROUPS_MAX)
                        return -E2BIG;
                ngroups = n;
        }
}

static int build_env(const HookFacts *f, HookExec *e) {
        char uid[32] = "";
        size_t i = 0;

        if (f->uid != (uid_t) -1)
                snprintf(uid, sizeof(uid), "%" PRIu32, (uint32_t) f->uid);

#define ENV(name, value)                                                      \
        do {                                                                  \
                if (asprintf(&e->envp[i], "%s=%s", name, strempty(value)) < 0) { \
                        e->envp[i] = NULL;                                    \
                        return -ENOMEM;                                       \
                }                                                             \
                i++;                                                          \
        } while (0)

        e->envp[i] = strdup(HOOK_PATH_ENV);
        if (!e->envp[i++])
                return -ENOMEM;
        ENV("SSF_USER", f->user);
        ENV("SSF_UID", uid);
        ENV("SSF_RISK_LEVEL", f->risk_level);
        ENV("SSF_PREVIOUS_RISK_LEVEL", f->previous_risk_level);
        ENV("SSF_DETECTION", f->detection);
        ENV("SSF_EVENT_TYPE", f->event_type);
        ENV("SSF_JTI", f->jti);
        ENV("SSF_ISSUER", f->issuer);
        ENV("SSF_RULE", f->rule);
        ENV("SSF_REASON", f->reason);
#undef ENV
        e->envp[i] = NULL;
        return 0;
}

static int json_set_string(json_t *o, const char *key, const char *value) {
        json_t *v = json_string(strempty(value));

        /* Not UTF-8: pass the bytes on anyway rather than dropping the fact. */
        if (!v)
                v = json_stringn_nocheck(strempty(value), strlen(strempty(value)));
        if (!v || json_object_set_new(o, key, v) < 0)
                return -ENOMEM;
        return 0;
}

static int build_input(const HookFacts *f, HookExec *e) {
        _cleanup_(json_decrefp) json_t *o = NULL;
        json_t *claims = NULL;
        char *s;
        int r;

        o = json_object();
        if (!o)
                return -ENOMEM;
        if ((r = json_set_string(o, "user", f->user)) < 0 ||
            (r = json_set_string(o, "risk_level", f->risk_level)) < 0 ||
            (r = json_set_string(o, "previous_risk_level", f->previous_risk_level)) < 0 ||
            (r = json_set_string(o, "detection", f->detection)) < 0 ||
            (r = json_set_string(o, "event_type", f->event_type)) < 0 ||
            (r = json_set_string(o, "jti", f->jti)) < 0 ||
            (r = json_set_string(o, "issuer", f->issuer)) < 0 ||
            (r = json_set_string(o, "rule", f->rule)) < 0 ||
            (r = json_set_string(o, "reason", f->reason)) < 0 ||
            (r = json_set_string(o, "txn", f->txn)) < 0)
                return r;
        if (json_object_set_new(o, "uid", f->uid == (uid_t) -1 ? json_null()
                                                               : json_integer((json_int_t) f->uid)) < 0)
                return -ENOMEM;

        /* new reference, or NULL when missing, too big or not JSON: then "claims": null */
        if (f->claims_json && strlen(f->claims_json) <= HOOK_CLAIMS_MAX)
                claims = json_loads(f->claims_json, JSON_REJECT_DUPLICATES, NULL);
        if (json_object_set_new(o, "claims", claims ?: json_null()) < 0)
                return -ENOMEM;

        s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        if (!s)
                return -ENOMEM;
        e->input_size = strlen(s) + 1;
        s[e->input_size - 1] = '\n'; /* one JSON object, newline-terminated */
        e->input = s;
        return 0;
}

/* ---- the child, between fork() and execve(): async-signal-safe calls only ---- */

__attribute__((noreturn)) static void child_fail(int errfd, int error) {
        int v = error;

        (void) !write(errfd, &v, sizeof(v));
        _exit(127);
}

__attribute__((noreturn)) static void hook_child(const HookExec *e, int in_fd, int out_fd, int errfd) {
        struct sigaction sa = { .sa_handler = SIG_DFL };
        sigset_t none;

        /* The daemon may ignore or block signals (SIGPIPE, SIGTERM…): the hook starts clean. */
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, &sa, NULL);
        sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
                child_fail(errfd, errno);

        /* Own session and process group, so that the timeout can kill everything it started. */
        if (setsid() < 0)
                child_fail(errfd, errno);

        if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
            dup2(out_fd, STDERR_FILENO) < 0)
                child_fail(errfd, errno);

        /* Close everything else on exec; errfd (O_CLOEXEC) stays open until then. */
        if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                for (int fd = 3; fd < 65536; fd++)
                        if (fd != errfd && fd != e->exec_fd)
                                (void) close(fd);
        /* ...but the hook itself: for a "#!" script the kernel hands the interpreter
         * /dev/fd/N, which must still be open after the exec. */
        if (fcntl(e->exec_fd, F_SETFD, 0) < 0)
                child_fail(errfd, errno);

        if (e->drop) {
                if (setgroups(e->n_groups, e->groups) < 0)
                        child_fail(errfd, errno);
                if (setresgid(e->gid, e->gid, e->gid) < 0)
                        child_fail(errfd, errno);
                if (setresuid(e->uid, e->uid, e->uid) < 0)
                        child_fail(errfd, errno);
                /* Paranoia: there must be no way back. */
                if (e->uid != 0 && setuid(0) == 0)
                        child_fail(errfd, EPERM);
        }

        if (chdir("/") < 0)
                child_fail(errfd, errno);
        (void) umask(0022);

        /* The very file hook_open() checked, not whatever the path names by now. */
        (void) syscall(SYS_execveat, e->exec_fd, "", e->argv, e->envp, AT_EMPTY_PATH);
        child_fail(errfd, errno);
}

typedef struct HookChild {
        const HookExec *e;
        const HookTree *tree;
        int in_fd, out_fd, errfd;
} HookChild;

/* The forked hook process (cgroup mode: the daemon's child; reaper mode: the reaper's). */
__attribute__((noreturn)) static void hook_child_run(void *userdata) {
        const HookChild *c = userdata;
        int r = hook_tree_join(c->tree);

        if (r < 0)
                child_fail(c->errfd, -r);
        hook_child(c->e, c->in_fd, c->out_fd, c->errfd);
}

/* ---- the parent ---- */

static int fd_move_above_stdio(int fd) {
        int nfd;

        if (fd < 0 || fd > STDERR_FILENO)
                return fd;
        nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        (void) close(fd);
        return nfd < 0 ? -errno : nfd;
}

static int make_pipe(int fds[2], int flags) {
        if (pipe2(fds, O_CLOEXEC | flags) < 0)
                return -errno;
        fds[0] = fd_move_above_stdio(fds[0]);
        fds[1] = fd_move_above_stdio(fds[1]);
        if (fds[0] < 0 || fds[1] < 0) {
                int r = fds[0] < 0 ? fds[0] : fds[1];
                fds[0] = safe_close(fds[0]);
                fds[1] = safe_close(fds[1]);
                return r;
        }
        return 0;
}

static void set_nonblock(int fd) {
        int fl = fcntl(fd, F_GETFL);

        if (fl >= 0)
                (void) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void format_summary(HookResult *r, int wstatus) {
        char first[256] = "";
        const char *nl;
        size_t l;
        int sig;

        /* First non-empty line of the output. */
        for (const char *p = r->output; *p; p = nl + 1) {
                nl = strchr(p, '\n');
                l = nl ? (size_t) (nl - p) : strlen(p);
                if (l > 0) {
                        /* Cut on a character boundary: the output is valid UTF-8. */
                        if (l > sizeof(first) - 1)
                                for (l = sizeof(first) - 1; l > 0 && ((uint8_t) p[l] & 0xc0) == 0x80; l--)
                                        ;
                        memcpy(first, p, l);
                        first[l] = 0;
                        break;
                }
                if (!nl)
                        break;
        }

        sig = wstatus != -1 && WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
        if (r->timed_out)
                l = (size_t) snprintf(r->summary, sizeof(r->summary),
                                      "timed out, killed by signal %s in %" PRIi64 " ms",
                                      sig == SIGKILL ? "KILL" : "TERM", r->duration_ms);
        else if (sig > 0)
                l = (size_t) snprintf(r->summary, sizeof(r->summary),
                                      "killed by signal %d in %" PRIi64 " ms", sig, r->duration_ms);
        else
                l = (size_t) snprintf(r->summary, sizeof(r->summary), "exit %d in %" PRIi64 " ms",
                                      r->exit_status, r->duration_ms);
        if (first[0] && l < sizeof(r->summary))
                snprintf(r->summary + l, sizeof(r->summary) - l, ": %s", first);
}

static int status_to_exit(int status) {
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return -1;
}

/* Feeds stdin, collects output and waits for the child until the deadline; then SIGTERM to
 * everything of the run, SIGKILL after the grace period (hook-tree.h). Always reaps. */
static int supervise(HookTree *t, int pidfd, int in_fd, int out_fd, int cancel_fd,
                     const HookExec *e, uint64_t timeout_usec, HookResult *res) {
        uint64_t start = now_usec(), deadline, kill_deadline = 0, last_resort = UINT64_MAX;
        size_t written = 0, kept = 0;
        bool exited = false, term_sent = false, kill_sent = false, out_eof = false;
        pid_t pid = t->pid;
        int status = 0;

        deadline = timeout_usec > UINT64_MAX - start ? UINT64_MAX : start + timeout_usec;
        if (in_fd >= 0)
                set_nonblock(in_fd);
        set_nonblock(out_fd);

        for (;;) {
                struct pollfd p[4];
                int n = 0, i_in = -1, i_out = -1, i_pid = -1, i_cancel = -1, timeout_ms;
                uint64_t now = now_usec(), until;

                if (exited && (out_eof || out_fd < 0))
                        break;

                if (!exited && (now >= deadline || res->cancelled) && !term_sent) {
                        if (!res->cancelled)
                                res->timed_out = 1;
                        hook_tree_terminate(t);
                        term_sent = true;
                        kill_deadline = now + HOOK_KILL_GRACE_USEC;
                }
                if (!exited && term_sent && !kill_sent && now >= kill_deadline) {
                        /* A reaper enforces the grace period itself; it only gets SIGKILL when
                         * it does not finish in time. */
                        hook_tree_kill(t);
                        kill_sent = true;
                        last_resort = now + HOOK_REAPER_LAST_RESORT_USEC;
                }
                if (!exited && kill_sent && now >= last_resort) {
                        hook_tree_kill_reaper(t);
                        last_resort = UINT64_MAX;
                }

                if (in_fd >= 0 && !exited) {
                        i_in = n;
                        p[n++] = (struct pollfd) { .fd = in_fd, .events = POLLOUT };
                }
                if (!out_eof) {
                        i_out = n;
                        p[n++] = (struct pollfd) { .fd = out_fd, .events = POLLIN };
                }
                if (pidfd >= 0 && !exited) {
                        i_pid = n;
                        p[n++] = (struct pollfd) { .fd = pidfd, .events = POLLIN };
                }
                if (cancel_fd >= 0 && !exited && !res->cancelled) {
                        i_cancel = n;
                        p[n++] = (struct pollfd) { .fd = cancel_fd, .events = POLLIN };
                }

                if (exited)
                        /* The hook is gone but something it started still holds the output
                         * pipe: take what is there and stop. */
                        timeout_ms = 0;
                else {
                        until = kill_sent ? MIN(now + 100000, last_resort)
                                : term_sent ? kill_deadline : deadline;
                        timeout_ms = until > now ? (int) MIN((until - now + 999) / 1000, (uint64_t) INT_MAX)
                                                 : 0;
                        if (pidfd < 0)
                                timeout_ms = MIN(timeout_ms, 20); /* no pidfd: poll waitpid() */
                }

                if (poll(p, (nfds_t) n, timeout_ms) < 0 && errno != EINTR)
                        break; /* cannot happen with valid fds; fall through to kill+reap */

                if (i_cancel >= 0 && (p[i_cancel].revents & POLLIN)) {
                        res->cancelled = 1; /* stopped like a timeout, on the next round */
                        continue;
                }

                if (i_in >= 0 && (p[i_in].revents & (POLLOUT | POLLERR | POLLHUP))) {
                        ssize_t k = write(in_fd, e->input + written, e->input_size - written);

                        if (k > 0)
                                written += (size_t) k;
                        if ((k < 0 && errno != EAGAIN && errno != EINTR) || written >= e->input_size ||
                            (p[i_in].revents & (POLLERR | POLLHUP)))
                                in_fd = safe_close(in_fd); /* done, or the hook stopped reading */
                }

                if (i_out >= 0 && (p[i_out].revents & (POLLIN | POLLERR | POLLHUP))) {
                        /* Drain what is there now; keep the first bytes, discard the rest. */
                        for (int rounds = 0; rounds < 64; rounds++) {
                                char buf[16384];
                                ssize_t k = read(out_fd, buf, sizeof(buf));

                                if (k == 0) {
                                        out_eof = true;
                                        break;
                                }
                                if (k < 0) {
                                        if (errno != EAGAIN && errno != EINTR)
                                                out_eof = true;
                                        break;
                                }
                                if (kept < sizeof(res->output) - 1) {
                                        size_t c = MIN((size_t) k, sizeof(res->output) - 1 - kept);
                                        memcpy(res->output + kept, buf, c);
                                        kept += c;
                                }
                        }
                }

                if (exited) {
                        out_eof = true;
                        continue;
                }

                if (i_pid < 0 || (p[i_pid].revents & POLLIN)) {
                        siginfo_t si = {};

                        /* Exited? Look without reaping, so that the process group id stays ours
                         * while we may still signal it. */
                        if (waitid(P_PID, (id_t) pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                            si.si_pid == pid)
                                exited = true;
                }
        }

        if (!exited) {
                /* Only reached if poll() failed: don't leave it running. */
                res->timed_out = 1;
                hook_tree_kill(t);
                hook_tree_kill_reaper(t);
        }
        /* Whatever the hook left behind goes with it (the reaper did so before it exited).
         * Before the reap, so that the process group id stays the hook's meanwhile. */
        if (t->mode == HOOK_TREE_CGROUP) {
                if (res->timed_out || res->cancelled)
                        hook_tree_kill(t);
                (void) hook_tree_cleanup(t);
        }

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        status = -1;
                        break;
                }

        res->exit_status = status == -1 ? -1 : status_to_exit(status);
        res->duration_ms = (int64_t) ((now_usec() - start) / 1000);
        /* Printable and valid UTF-8 for the journal and the history, by the rule of terminal
         * warnings and reason_user; newlines and tabs stay. */
        (void) ssf_utf8_make_printable(res->output, kept, "\n\t");
        safe_close(in_fd);
        return status;
}

int hooks_run(const char *dir, const char *name, const char *run_as, uint64_t timeout_usec,
              const HookFacts *facts, HookResult *ret) {
        return hooks_run_cancellable(dir, name, run_as, timeout_usec, -EBADF, facts, ret);
}

int hooks_run_cancellable(const char *dir, const char *name, const char *run_as,
                          uint64_t timeout_usec, int cancel_fd, const HookFacts *facts,
                          HookResult *ret) {
        _cleanup_(hook_exec_done) HookExec e = { .exec_fd = -EBADF };
        _cleanup_(hook_tree_done) HookTree tree = HOOK_TREE_NULL;
        _cleanup_close_ int pidfd = -EBADF;
        int in[2] = { -EBADF, -EBADF }, out[2] = { -EBADF, -EBADF }, err[2] = { -EBADF, -EBADF };
        HookResult res = { .exit_status = -1 };
        sigset_t pipe_set, old_set;
        bool pipe_was_pending;
        int r, child_errno = 0, wstatus;
        ssize_t k;
        pid_t pid;

        if (!facts || !ret)
                return -EINVAL;
        *ret = res;

        r = hook_open(dir, name, &e.exec_fd);
        if (r < 0)
                goto fail;
        /* Not 0-2, which the child's dup2() calls overwrite. */
        e.exec_fd = fd_move_above_stdio(e.exec_fd);
        if (e.exec_fd < 0) {
                r = e.exec_fd;
                goto fail;
        }
        if (hooks_test_checked)
                hooks_test_checked(dir, name);

        if (asprintf(&e.path, "%s/%s", dir, name) < 0) {
                e.path = NULL;
                r = -ENOMEM;
                goto fail;
        }
        e.argv[0] = e.path;
        e.argv[1] = NULL;
        if ((r = build_env(facts, &e)) < 0 || (r = build_input(facts, &e)) < 0 ||
            (r = resolve_user(run_as, &e)) < 0)
                goto fail;

        if (timeout_usec == 0)
                timeout_usec = HOOK_DEFAULT_TIMEOUT_USEC;

        if ((r = make_pipe(in, 0)) < 0 || (r = make_pipe(out, 0)) < 0 || (r = make_pipe(err, 0)) < 0)
                goto fail;
        r = hook_tree_prepare(&tree, e.uid, HOOK_KILL_GRACE_USEC);
        if (r < 0)
                goto fail;

        /* The hook may close stdin without reading it: keep SIGPIPE away from this thread while
         * we write, and swallow the one the write may raise before restoring the mask. The mask
         * is inherited by the child, which resets it. */
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        (void) pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
        {
                sigset_t pending;
                sigemptyset(&pending);
                (void) sigpending(&pending);
                pipe_was_pending = sigismember(&pending, SIGPIPE) == 1;
        }

        pid = fork();
        if (pid < 0) {
                r = -errno;
                (void) pthread_sigmask(SIG_SETMASK, &old_set, NULL);
                goto fail;
        }
        if (pid == 0) {
                HookChild c = { .e = &e, .tree = &tree, .in_fd = in[0], .out_fd = out[1],
                                .errfd = err[1] };

                /* Child: keep only our ends. */
                (void) close(in[1]);
                (void) close(out[0]);
                (void) close(err[0]);
                if (tree.mode == HOOK_TREE_REAPER)
                        hook_tree_reaper(&tree, err[1], hook_child_run, &c);
                hook_child_run(&c);
        }
        tree.pid = pid;

        in[0] = safe_close(in[0]);
        out[1] = safe_close(out[1]);
        err[1] = safe_close(err[1]);

        /* Did setup or execve() fail? EOF (close-on-exec) means the hook is running. */
        do
                k = read(err[0], &child_errno, sizeof(child_errno));
        while (k < 0 && errno == EINTR);
        err[0] = safe_close(err[0]);

        if (k == (ssize_t) sizeof(child_errno)) {
                int status;

                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                in[1] = safe_close(in[1]);
                out[0] = safe_close(out[0]);
                (void) pthread_sigmask(SIG_SETMASK, &old_set, NULL);
                res.exit_status = -1;
                snprintf(res.summary, sizeof(res.summary), "could not be run: %s",
                         strerror(child_errno > 0 ? child_errno : EIO));
                *ret = res;
                return child_errno > 0 ? -child_errno : -EIO;
        }

        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0)
                pidfd = -EBADF;

        wstatus = supervise(&tree, pidfd, in[1], out[0], cancel_fd, &e, timeout_usec, &res);
        in[1] = -EBADF; /* closed by supervise() */
        out[0] = safe_close(out[0]);

        if (!pipe_was_pending) {
                const struct timespec zero = {};
                while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
                        ;
        }
        (void) pthread_sigmask(SIG_SETMASK, &old_set, NULL);

        format_summary(&res, wstatus);
        *ret = res;
        return 0;

fail:
        for (size_t i = 0; i < 2; i++) {
                safe_close(in[i]);
                safe_close(out[i]);
                safe_close(err[i]);
        }
        snprintf(res.summary, sizeof(res.summary), "could not be run: %s", strerror(-r));
        *ret = res;
        return r;
}
