/* SPDX-License-Identifier: MIT */
/* The network worker's seccomp filter (receiver/sandbox.c): each case applies it in a forked
 * child, does one thing there and reports by its exit status, or dies of SIGSYS. */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netdb.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "macro.h"
#include "sandbox.h"

/* Exit statuses of a child that did its work; anything else is a failure it names. */
#define OK 0
#define GOT_EPERM 3

typedef int (*Case)(void *userdata);

/* Runs fn in a child under the filter; returns its wait status. */
static int run_sandboxed(Case fn, void *userdata) {
        int status = 0;
        pid_t pid;

        fflush(NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (sandbox_apply() < 0)
                        _exit(100);
                _exit(fn(userdata));
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return status;
}

static void assert_exit(int status, int code) {
        if (WIFSIGNALED(status))
                fail_msg("child killed by signal %d, expected exit %d", WTERMSIG(status), code);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), code);
}

/* What a forbidden call does: the kernel kills the process (SIGSYS); in a sanitizer build the
 * sanitizer's own calls (exec, fork, ptrace, kill) fail with EPERM instead (sandbox.c). */
static void assert_killed(int status) {
        if (WIFEXITED(status))
                fail_msg("child exited with %d, expected to be killed by SIGSYS", WEXITSTATUS(status));
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGSYS);
}

static void assert_refused(int status) {
        if (sandbox_relaxed_for_sanitizer())
                assert_exit(status, GOT_EPERM);
        else
                assert_killed(status);
}

/* A path that does not exist: were execve() allowed, it would fail with ENOENT (exit 10); a
 * program that did start would inherit the filter and could die of SIGSYS for its own reasons,
 * which would prove nothing. */
#define NO_PROGRAM "/nonexistent/ssf-test-sandbox"

static int do_execve(void *userdata) {
        char *argv[] = { UNCONST("x"), NULL };

        execve(NO_PROGRAM, argv, environ);
        return errno == EPERM ? GOT_EPERM : 10;
}

static int do_execveat(void *userdata) {
        char *argv[] = { UNCONST("x"), NULL };

        execveat(AT_FDCWD, NO_PROGRAM, argv, environ, 0);
        return errno == EPERM ? GOT_EPERM : 10;
}

static int do_fork(void *userdata) {
        pid_t pid = fork();

        if (pid == 0)
                _exit(0);
        return pid < 0 && errno == EPERM ? GOT_EPERM : 10;
}

static int do_posix_spawn(void *userdata) {
        char *argv[] = { UNCONST("x"), NULL };
        pid_t pid;
        int r;

        r = posix_spawn(&pid, NO_PROGRAM, NULL, NULL, argv, environ);
        return r == EPERM ? GOT_EPERM : 10;
}

static int do_ptrace(void *userdata) {
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0 && errno == EPERM)
                return GOT_EPERM;
        return 10;
}

static int do_kill_parent(void *userdata) {
        if (kill(getppid(), 0) < 0 && errno == EPERM)
                return GOT_EPERM;
        return 10;
}

static void test_no_programs_no_processes(void **state) {
        assert_refused(run_sandboxed(do_execve, NULL));
        assert_refused(run_sandboxed(do_execveat, NULL));
        assert_refused(run_sandboxed(do_fork, NULL));
        assert_refused(run_sandboxed(do_posix_spawn, NULL));
        assert_refused(run_sandboxed(do_ptrace, NULL));
        assert_refused(run_sandboxed(do_kill_parent, NULL));
}

static int do_setuid(void *userdata) {
        (void) !setuid(getuid());
        return 10;
}

static int do_unlink(void *userdata) {
        (void) unlink(userdata);
        return 10;
}

static int do_listen(void *userdata) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        if (fd < 0)
                return 11;
        (void) listen(fd, 1);
        return 10;
}

static int do_mmap_anon_exec(void *userdata) {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        return p == MAP_FAILED ? 11 : 10;
}

static int do_mmap_wx_file(void *userdata) {
        int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        void *p;

        if (fd < 0)
                return 11;
        p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE, fd, 0);
        return p == MAP_FAILED ? 12 : 10;
}

static int do_mprotect_exec(void *userdata) {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED)
                return 11;
        (void) mprotect(p, 4096, PROT_READ | PROT_EXEC);
        return 10;
}

static void test_killed_for_what_it_never_needs(void **state) {
        char path[] = "/tmp/test-sandbox-XXXXXX";
        int fd = mkstemp(path);
        struct stat st;

        assert_true(fd >= 0);
        close(fd);
        assert_killed(run_sandboxed(do_setuid, NULL));
        assert_killed(run_sandboxed(do_unlink, path));
        assert_int_equal(stat(path, &st), 0); /* still there */
        unlink(path);
        assert_killed(run_sandboxed(do_listen, NULL));
        /* No new executable memory. */
        assert_killed(run_sandboxed(do_mmap_anon_exec, NULL));
        assert_killed(run_sandboxed(do_mmap_wx_file, NULL));
        assert_killed(run_sandboxed(do_mprotect_exec, NULL));
}

static int do_open_for_writing(void *userdata) {
        const char *path = userdata;

        if (open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600) >= 0)
                return 10;
        if (errno != EPERM)
                return 11;
        if (open("/etc/hosts", O_RDWR | O_CLOEXEC) >= 0 || errno != EPERM)
                return 12;
        if (open("/etc/hosts", O_RDONLY | O_TRUNC | O_CLOEXEC) >= 0 || errno != EPERM)
                return 13;
        if (open("/tmp", O_TMPFILE | O_RDONLY, 0600) >= 0 || errno != EPERM)
                return 14;
        return OK;
}

static int do_other_sockets(void *userdata) {
        int fd;

        fd = socket(AF_PACKET, SOCK_RAW, 0);
        if (fd >= 0 || errno != EAFNOSUPPORT)
                return 10;
        fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
        if (fd >= 0 || errno != EAFNOSUPPORT)
                return 11;
        fd = socket(AF_BLUETOOTH, SOCK_STREAM, 0);
        if (fd >= 0 || errno != EAFNOSUPPORT)
                return 12;
        if (prlimit(0, RLIMIT_NOFILE, &(struct rlimit) { 1, 1 }, NULL) >= 0 || errno != EPERM)
                return 13;
        return OK;
}

static void test_refused_with_an_errno(void **state) {
        char dir[] = "/tmp/test-sandbox-XXXXXX", path[64];
        struct stat st;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/new", dir);
        assert_exit(run_sandboxed(do_open_for_writing, path), OK);
        assert_int_equal(stat(path, &st), -1); /* not created */
        rmdir(dir);
        assert_exit(run_sandboxed(do_other_sockets, NULL), OK);
}

static void *thread_main(void *userdata) {
        *(int *) userdata = 42;
        return NULL;
}

/* What the worker does all day: threads, memory, time, randomness, signals, reading files,
 * UNIX, IP and routing sockets, the resolver, executable mappings of a file (dlopen). */
static int do_normal_work(void *userdata) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
        struct timespec ts = { 0, 1000 };
        unsigned char rnd[16];
        int sv[2], fd, value = 0;
        pthread_t t;
        sigset_t ss;
        char buf[64];
        void *p;

        if (pthread_create(&t, NULL, thread_main, &value) != 0 || pthread_join(t, NULL) != 0 ||
            value != 42)
                return 10;
        p = malloc(1 << 20); /* an mmap in glibc */
        if (!p)
                return 11;
        memset(p, 1, 1 << 20);
        free(p);
        if (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL) != 0)
                return 12;
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd))
                return 13;
        sigemptyset(&ss);
        sigaddset(&ss, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0)
                return 14;
        fd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
        if (fd < 0)
                return 15;
        close(fd);
        fd = open("/etc/hosts", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || read(fd, buf, sizeof(buf)) < 0)
                return 16;
        close(fd);
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ||
            write(sv[0], "x", 1) != 1 || read(sv[1], buf, 1) != 1)
                return 17;
        fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return 18;
        close(fd);
        fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (fd < 0)
                return 19;
        close(fd);
        if (getaddrinfo("localhost", "443", &hints, &ai) != 0)
                return 20;
        freeaddrinfo(ai);
        fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 21;
        p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
                return 22;
        munmap(p, 4096);
        close(fd);
        if (raise(SIGHUP) != 0) /* blocked: to itself is allowed */
                return 23;
        return OK;
}

static void test_normal_work_goes_on(void **state) {
        assert_exit(run_sandboxed(do_normal_work, NULL), OK);
}

/* A thread that exists before the filter is applied is under it as well (TSYNC). */
static int gate[2];

static void *waiting_thread(void *userdata) {
        char c;
        char *argv[] = { UNCONST("x"), NULL };

        if (read(gate[0], &c, 1) != 1)
                _exit(30);
        execve(NO_PROGRAM, argv, environ);
        _exit(errno == EPERM ? GOT_EPERM : 31);
}

static void test_threads_from_before(void **state) {
        int status = 0;
        pthread_t t;
        pid_t pid;

        fflush(NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (pipe(gate) < 0 || pthread_create(&t, NULL, waiting_thread, NULL) != 0)
                        _exit(101);
                if (sandbox_apply() < 0)
                        _exit(100);
                if (write(gate[1], "x", 1) != 1)
                        _exit(102);
                pthread_join(t, NULL);
                _exit(103);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_refused(status);
}

static int do_status(void *userdata) {
        char buf[4096];
        ssize_t n;
        int fd;

        fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 10;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return 11;
        buf[n] = 0;
        if (!strstr(buf, "\nSeccomp:\t2\n"))
                return 12;
        if (!strstr(buf, "\nNoNewPrivs:\t1\n"))
                return 13;
        return OK;
}

static void test_status_shows_the_filter(void **state) {
        /* Filter mode (2) and no_new_privs, which libseccomp sets, even for an unprivileged
         * caller. */
        assert_exit(run_sandboxed(do_status, NULL), OK);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_programs_no_processes),
                cmocka_unit_test(test_killed_for_what_it_never_needs),
                cmocka_unit_test(test_refused_with_an_errno),
                cmocka_unit_test(test_normal_work_goes_on),
                cmocka_unit_test(test_threads_from_before),
                cmocka_unit_test(test_status_shows_the_filter),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
