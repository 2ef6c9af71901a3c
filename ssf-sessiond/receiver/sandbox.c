/* SPDX-License-Identifier: MIT */
/*
 * The network worker's seccomp allow-list (sandbox.h). Runs in the network worker: worker.c
 * applies it once the configuration, the credentials and the CA file are read, the push
 * listener is open and privileges are dropped, so it holds whoever started the daemon, under
 * the shipped systemd unit (whose own SystemCallFilter= is wider: root needs more) or not.
 *
 * What is left is what receiving SETs needs: memory, threads (the channel's reader, libcurl's
 * resolver), futexes, time and sleeping, signals to itself, reading files (the trust store,
 * /etc/hosts and the resolver's files, /dev/urandom), UNIX, IP and routing-netlink sockets
 * (HTTPS, DNS, getaddrinfo()'s interface check, the journal), accept() on the push listener,
 * poll, signalfd and getrandom. A configured proxy needs nothing more: a CONNECT tunnel (and
 * TLS to an https:// proxy) is the same connect(), read and write. Anything else kills the
 * process (SIGSYS; the daemon restarts the worker with backoff and logs how it died): executing
 * a program (execve, execveat), creating a process (fork, vfork, clone without CLONE_THREAD),
 * ptrace, mount, setuid and the other identity calls, changing files (unlink, rename, chmod,
 * …), kill() of another process, listen(), new executable memory (anonymous PROT_EXEC,
 * writable+executable mappings, mprotect() to PROT_EXEC; mapping a file executable stays
 * allowed because glibc may dlopen an NSS module for getaddrinfo()).
 * A few calls that libraries probe or may try fail with an errno instead of killing: clone3
 * (ENOSYS: glibc falls back to clone(), whose flags a filter can read), opening a file for
 * writing or creating one (EPERM), other socket families (EAFNOSUPPORT), memfd_create (EPERM:
 * sd_journal_send() then sends the message inline), setting a resource limit (EPERM) and
 * prctl() (EPERM).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "sandbox.h"

/* The sanitizers' runtimes (make asan, make fuzz) need more: at exit LeakSanitizer stops the
 * world from a tracer it starts with clone(CLONE_VM | CLONE_UNTRACED, no CLONE_THREAD), which
 * ptrace()s the threads, and a report runs the symbolizer program. In those builds only (known
 * at compile time), the tracer and what it does are allowed, and the other calls that would
 * kill (fork, exec, kill, ptrace(PTRACE_TRACEME)) fail with EPERM instead, so a report is not
 * lost. The product build has none of this. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#  define SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#    define SANDBOX_SANITIZER 1
#  endif
#endif
#ifndef SANDBOX_SANITIZER
#  define SANDBOX_SANITIZER 0
#endif

/* Allowed whatever their arguments. */
static const char *const allow_always[] = {
        /* memory (mmap, mprotect and pkey_mprotect are conditional, below) */
        "brk", "munmap", "mremap", "madvise", "mincore", "membarrier",
        /* threads, futexes, scheduling */
        "futex", "futex_waitv", "set_robust_list", "get_robust_list", "set_tid_address", "rseq",
        "sched_yield", "sched_getaffinity", "sched_getparam", "sched_getscheduler", "exit",
        "exit_group", "restart_syscall",
        /* signals (to itself: tgkill is conditional, below) */
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "rt_sigpending",
        "sigaltstack", "signalfd", "signalfd4",
        /* time */
        "clock_gettime", "clock_getres", "clock_nanosleep", "gettimeofday", "time", "nanosleep",
        /* identity and the system, read only */
        "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getresuid",
        "getresgid", "getgroups", "getrlimit", "getrusage", "uname", "sysinfo", "getcwd",
        "getrandom",
        /* descriptors: I/O on what is open, waiting */
        "read", "readv", "pread64", "preadv", "preadv2", "write", "writev", "pwrite64", "pwritev",
        "pwritev2", "close", "close_range", "dup", "dup2", "dup3", "fcntl", "lseek", "pipe",
        "pipe2", "eventfd2", "poll", "ppoll", "select", "pselect6", "epoll_create",
        "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
        /* files, read only (open and openat are conditional, below) */
        "fstat", "stat", "lstat", "newfstatat", "statx", "fstatfs", "statfs", "access",
        "faccessat", "faccessat2", "readlink", "readlinkat", "getdents", "getdents64",
        /* sockets (socket and socketpair are conditional, below; listen() is not allowed: the
         * push listener listens already) */
        "connect", "bind", "accept", "accept4", "getsockname", "getpeername", "getsockopt",
        "setsockopt", "sendto", "sendmsg", "sendmmsg", "recvfrom", "recvmsg", "recvmmsg",
        "shutdown",
};

/* Fail with an errno instead of killing: called by libraries that cope with the failure. */
static const struct {
        const char *name;
        int error;
} errno_always[] = {
        { "clone3", ENOSYS },       /* glibc's pthread_create() then uses clone() */
        { "openat2", ENOSYS },      /* its flags are behind a pointer; glibc does not use it */
        { "memfd_create", EPERM },  /* sd_journal_send() for large messages */
        { "prctl", EPERM },
        { "setrlimit", EPERM },
};

static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
                    const struct scmp_arg_cmp *cmp) {
        int nr, r;

        nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR)
                return 0; /* not a system call on this architecture */
        r = seccomp_rule_add_array(ctx, action, nr, n, cmp);
        if (r < 0)
                return log_error_errno(r, "seccomp: cannot add a rule for %s: %m", name);
        return 0;
}

#define RULE(ctx, action, name, ...)                                                             \
        add_rule(ctx, action, name, ARRAY_SIZE(((const struct scmp_arg_cmp[]) { __VA_ARGS__ })), \
                 (const struct scmp_arg_cmp[]) { __VA_ARGS__ })

/* open() and openat() read only: no write access, no O_CREAT, O_TRUNC or O_TMPFILE. */
static int add_open_rules(scmp_filter_ctx ctx) {
        const unsigned long mask = O_ACCMODE | O_CREAT | O_TRUNC | (O_TMPFILE & ~O_DIRECTORY);
        const unsigned long refused[] = { O_WRONLY, O_RDWR, O_ACCMODE, O_CREAT, O_TRUNC,
                                          O_TMPFILE & ~O_DIRECTORY };
        static const struct {
                const char *name;
                unsigned arg;
        } calls[] = { { "open", 1 }, { "openat", 2 } };
        int r;

        for (size_t i = 0; i < ARRAY_SIZE(calls); i++) {
                r = RULE(ctx, SCMP_ACT_ALLOW, calls[i].name,
                         SCMP_CMP(calls[i].arg, SCMP_CMP_MASKED_EQ, mask, 0));
                if (r < 0)
                        return r;
                for (size_t j = 0; j < ARRAY_SIZE(refused); j++) {
                        unsigned long bits = (refused[j] & O_ACCMODE) ? O_ACCMODE : refused[j];

                        r = RULE(ctx, SCMP_ACT_ERRNO(EPERM), calls[i].name,
                                 SCMP_CMP(calls[i].arg, SCMP_CMP_MASKED_EQ, bits, refused[j]));
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* No new executable memory: a mapping may be executable only if it is not writable and maps
 * a file (the dynamic loader, for an NSS module); mprotect() never adds PROT_EXEC. */
static int add_memory_rules(scmp_filter_ctx ctx) {
        int r;

        r = RULE(ctx, SCMP_ACT_ALLOW, "mmap", SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
        if (r >= 0)
                r = RULE(ctx, SCMP_ACT_ALLOW, "mmap",
                         SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_EXEC),
                         SCMP_A3(SCMP_CMP_MASKED_EQ, MAP_ANONYMOUS, 0));
        if (r >= 0)
                r = RULE(ctx, SCMP_ACT_ALLOW, "mprotect", SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
        if (r >= 0)
                r = RULE(ctx, SCMP_ACT_ALLOW, "pkey_mprotect",
                         SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
        return r;
}

/* UNIX, IPv4, IPv6 and NETLINK_ROUTE sockets; other families fail with EAFNOSUPPORT. */
static int add_socket_rules(scmp_filter_ctx ctx) {
        int r;

        for (int family = 0; family < AF_MAX; family++) {
                bool ok = family == AF_UNIX || family == AF_INET || family == AF_INET6;

                if (family == AF_NETLINK) {
                        r = RULE(ctx, SCMP_ACT_ALLOW, "socket", SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
                                 SCMP_A2(SCMP_CMP_EQ, NETLINK_ROUTE));
                        if (r >= 0)
                                r = RULE(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket",
                                         SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
                                         SCMP_A2(SCMP_CMP_NE, NETLINK_ROUTE));
                } else
                        r = RULE(ctx, ok ? SCMP_ACT_ALLOW : SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket",
                                 SCMP_A0(SCMP_CMP_EQ, family));
                if (r < 0)
                        return r;
        }
        r = RULE(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", SCMP_A0(SCMP_CMP_GE, AF_MAX));
        if (r >= 0)
                r = RULE(ctx, SCMP_ACT_ALLOW, "socketpair", SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
        return r;
}

static int add_sanitizer_rules(scmp_filter_ctx ctx) {
        const unsigned long tracer = CLONE_VM | CLONE_UNTRACED, mask = tracer | CLONE_VFORK | CLONE_THREAD;
        static const char *const refused[] = { "execve", "execveat", "fork", "vfork", "kill" };
        int r;

        r = RULE(ctx, SCMP_ACT_ALLOW, "clone", SCMP_A0(SCMP_CMP_MASKED_EQ, mask, tracer));
        if (r >= 0) /* fork(), posix_spawn() */
                r = RULE(ctx, SCMP_ACT_ERRNO(EPERM), "clone",
                         SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD | CLONE_UNTRACED, 0));
        if (r >= 0)
                r = RULE(ctx, SCMP_ACT_ALLOW, "ptrace", SCMP_A0(SCMP_CMP_NE, PTRACE_TRACEME));
        if (r >= 0)
                r = RULE(ctx, SCMP_ACT_ERRNO(EPERM), "ptrace", SCMP_A0(SCMP_CMP_EQ, PTRACE_TRACEME));
        if (r >= 0)
                r = add_rule(ctx, SCMP_ACT_ALLOW, "wait4", 0, NULL);
        if (r >= 0)
                r = add_rule(ctx, SCMP_ACT_ALLOW, "prctl", 0, NULL);
        for (size_t i = 0; i < ARRAY_SIZE(refused) && r >= 0; i++)
                r = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), refused[i], 0, NULL);
        return r;
}

static int add_rules(scmp_filter_ctx ctx) {
        /* ioctl(): what stdio, libcurl and the resolver ask of a descriptor; TIOCSTI and the
         * rest are not allowed. The request is an int in most callers: compare 32 bits. */
        static const unsigned long ioctls[] = { TCGETS, TIOCGWINSZ, FIONREAD, FIONBIO, FIOCLEX,
                                                FIONCLEX };
        int r;

        for (size_t i = 0; i < ARRAY_SIZE(allow_always); i++) {
                r = add_rule(ctx, SCMP_ACT_ALLOW, allow_always[i], 0, NULL);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ARRAY_SIZE(errno_always); i++) {
                if (SANDBOX_SANITIZER && streq(errno_always[i].name, "prctl"))
                        continue; /* allowed in add_sanitizer_rules() */
                r = add_rule(ctx, SCMP_ACT_ERRNO(errno_always[i].error), errno_always[i].name, 0, NULL);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ARRAY_SIZE(ioctls); i++) {
                r = RULE(ctx, SCMP_ACT_ALLOW, "ioctl", SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctls[i]));
                if (r < 0)
                        return r;
        }

        /* Threads only: a clone() without CLONE_THREAD would be a new process. */
        r = RULE(ctx, SCMP_ACT_ALLOW, "clone", SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
        /* Signals to its own threads only (raise(), abort(), pthread_kill()). */
        if (r >= 0)
                r = RULE(ctx, SCMP_ACT_ALLOW, "tgkill", SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t) getpid()));
        /* Resource limits may be read, not set. */
        if (r >= 0)
                r = RULE(ctx, SCMP_ACT_ALLOW, "prlimit64", SCMP_A2(SCMP_CMP_EQ, 0));
        if (r >= 0)
                r = RULE(ctx, SCMP_ACT_ERRNO(EPERM), "prlimit64", SCMP_A2(SCMP_CMP_NE, 0));
        if (r >= 0)
                r = add_open_rules(ctx);
        if (r >= 0)
                r = add_memory_rules(ctx);
        if (r >= 0)
                r = add_socket_rules(ctx);
        if (r >= 0 && SANDBOX_SANITIZER)
                r = add_sanitizer_rules(ctx);
        return r;
}

bool sandbox_relaxed_for_sanitizer(void) {
        return SANDBOX_SANITIZER;
}

int sandbox_apply(void) {
        unsigned level;
        scmp_filter_ctx ctx;
        int r;

        /* Killing the whole process and applying the filter to every thread need the seccomp()
         * system call (libseccomp's API level 3, Linux 4.14). A service manager's own filter may
         * hide it (systemd's @system-service does not contain it): then there is no filter,
         * and no worker. */
        level = seccomp_api_get();
        if (level < 3) {
                log_error("seccomp: the seccomp() system call is not available (libseccomp API "
                          "level %u, 3 needed): the kernel is older than 4.14, or a filter of the "
                          "service manager refuses it (systemd: SystemCallFilter=seccomp); "
                          "refusing to run without the worker's filter", level);
                return -EOPNOTSUPP;
        }
        ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
        if (!ctx)
                return log_error_errno(ENOMEM, "seccomp: cannot create a filter: %m");
        /* Another architecture's system call numbers (an i386 int 0x80) kill, too. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        if (r >= 0)
                r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
        if (r >= 0)
                r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
        if (r < 0)
                log_error_errno(r, "seccomp: cannot set the filter's attributes: %m");
        else
                r = add_rules(ctx);
        if (r >= 0) {
                r = seccomp_load(ctx);
                if (r < 0)
                        log_error_errno(r, "seccomp: cannot load the filter: %m");
        }
        seccomp_release(ctx);
        if (r < 0)
                return r;
        if (SANDBOX_SANITIZER)
                log_debug("seccomp filter applied (sanitizer build: the sanitizer's calls fail "
                          "with EPERM instead of killing)");
        else
                log_debug("seccomp filter applied");
        return 0;
}
