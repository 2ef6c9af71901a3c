/* SPDX-License-Identifier: MIT */
/* hooks.c: runs real hook scripts written at test time into a temporary, root-owned hooks
 * directory. The hooks must be root-owned, so most tests need root and are skipped otherwise. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "hook-tree.h"
#include "hooks.h"
#include "macro.h"

typedef struct Fixture {
        char dir[64];
} Fixture;

static int need_root(void) {
        if (geteuid() == 0)
                return 1;
        print_message("not root: skipping (hooks must be root-owned)\n");
        return 0;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        const char *tmp = getenv("TMPDIR");

        if (!f)
                return -1;
        if (isempty(tmp) || strlen(tmp) > 40)
                tmp = "/tmp";
        snprintf(f->dir, sizeof(f->dir), "%s/ssf-hooks-XXXXXX", tmp);
        if (!mkdtemp(f->dir)) {
                free(f);
                return -1;
        }
        *state = f;
        return 0;
}

/* The cgroup test's own cgroup and where it came from, undone here also when it failed. */
static char cg_test[512], cg_back[512];

static void cgroup_test_undo(void) {
        char cmd[1700];

        if (!cg_test[0])
                return;
        snprintf(cmd, sizeof(cmd), "echo %d > '%s/cgroup.procs'; rmdir '%s'/hook-* '%s' 2>/dev/null",
                 (int) getpid(), cg_back, cg_test, cg_test);
        (void) !system(cmd);
        cg_test[0] = 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        char cmd[128];

        cgroup_test_undo();

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0)
                return -1;
        free(f);
        return 0;
}

static void pathf(char *buf, size_t size, const Fixture *f, const char *name) {
        snprintf(buf, size, "%s/%s", f->dir, name);
}

/* Writes a hook script; "@DIR@" in text is replaced by the fixture directory. */
static void write_hook(const Fixture *f, const char *name, mode_t mode, const char *text) {
        char path[256];
        FILE *fp;

        pathf(path, sizeof(path), f, name);
        (void) unlink(path);
        fp = fopen(path, "we");
        assert_non_null(fp);
        for (const char *p = text; *p; p++) {
                if (startswith(p, "@DIR@")) {
                        fputs(f->dir, fp);
                        p += strlen("@DIR@") - 1;
                } else
                        fputc(*p, fp);
        }
        assert_int_equal(fclose(fp), 0);
        assert_int_equal(chmod(path, mode), 0);
}

static char *read_file(const Fixture *f, const char *name) {
        char path[256];
        char *buf = NULL;
        size_t size = 0;
        FILE *fp;

        pathf(path, sizeof(path), f, name);
        fp = fopen(path, "re");
        if (!fp)
                return NULL;
        buf = malloc(1024 * 1024);
        assert_non_null(buf);
        size = fread(buf, 1, 1024 * 1024 - 1, fp);
        buf[size] = 0;
        fclose(fp);
        return buf;
}

static pid_t read_pid(const Fixture *f, const char *name) {
        _cleanup_free_ char *s = read_file(f, name);

        assert_non_null(s);
        return (pid_t) strtol(s, NULL, 10);
}

/* Gone, or a zombie waiting for a reaper that is not us: either way no longer running. */
static int process_is_gone(pid_t pid) {
        char path[64], buf[512];
        const char *p;
        FILE *fp;
        size_t n;

        if (kill(pid, 0) < 0 && errno == ESRCH)
                return 1;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        fp = fopen(path, "re");
        if (!fp)
                return 1;
        n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        buf[n] = 0;
        p = strrchr(buf, ')');
        return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

static int count_fds(void) {
        char path[64];
        int n = 0;

        for (int fd = 0; fd < 1024; fd++) {
                snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
                if (access(path, F_OK) == 0)
                        n++;
        }
        return n;
}

static HookFacts sample_facts(void) {
        return (HookFacts) {
                .user = "alice",
                .uid = 2001,
                .risk_level = "high",
                .previous_risk_level = "low",
                .detection = "device-compliance-change",
                .event_type = "https://schemas.openid.net/secevent/caep/event-type/device-compliance-change",
                .jti = "jti-42",
                .issuer = "https://idp.example.com",
                .rule = "logout-high",
                .reason = NULL, /* -> empty */
                .txn = "txn-7",
                .claims_json = "{\"iss\":\"https://idp.example.com\",\"jti\":\"jti-42\","
                               "\"events\":{\"x\":{\"a\":1}}}",
        };
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void test_environment(void **state) {
        Fixture *f = *state;
        HookFacts facts = sample_facts();
        HookResult res;
        _cleanup_free_ char *env = NULL;
        char *lines[64], *save = NULL;
        size_t n = 0;
        static const char *const expected[] = {
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                "SSF_DETECTION=device-compliance-change",
                ("SSF_EVENT_TYPE=https://schemas.openid.net/secevent/caep/event-type/"
                 "device-compliance-change"),
                "SSF_ISSUER=https://idp.example.com",
                "SSF_JTI=jti-42",
                "SSF_PREVIOUS_RISK_LEVEL=low",
                "SSF_REASON=",
                "SSF_RISK_LEVEL=high",
                "SSF_RULE=logout-high",
                "SSF_UID=2001",
                "SSF_USER=alice",
        };

        if (!need_root())
                skip();
        /* The shell's initial environment, exactly as execve() passed it. */
        write_hook(f, "env", 0755, "#!/bin/sh\ntr '\\0' '\\n' < /proc/$$/environ > @DIR@/env.out\n");
        assert_int_equal(setenv("SSF_TEST_LEAK", "must-not-reach-the-hook", 1), 0);
        assert_int_equal(hooks_run(f->dir, "env", "root", 10 * 1000000ULL, &facts, &res), 0);
        unsetenv("SSF_TEST_LEAK");
        assert_int_equal(res.exit_status, 0);
        assert_false(res.timed_out);

        env = read_file(f, "env.out");
        assert_non_null(env);
        for (char *l = strtok_r(env, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                assert_true(n < ARRAY_SIZE(lines));
                lines[n++] = l;
        }
        qsort(lines, n, sizeof(char *), cmp_str);
        assert_int_equal(n, ARRAY_SIZE(expected));
        for (size_t i = 0; i < n; i++)
                assert_string_equal(lines[i], expected[i]);
}

static void test_stdin_json(void **state) {
        Fixture *f = *state;
        HookFacts facts = sample_facts();
        HookResult res;
        _cleanup_free_ char *in = NULL;
        json_t *o, *claims;
        json_error_t err;
        static const char *const keys[] = { "user", "uid", "risk_level", "previous_risk_level", "detection",
                                            "event_type", "jti", "issuer", "rule", "reason", "txn",
                                            "claims" };

        if (!need_root())
                skip();
        write_hook(f, "stdin", 0755, "#!/bin/sh\ncat > @DIR@/stdin.out\n");
        assert_int_equal(hooks_run(f->dir, "stdin", NULL, 10 * 1000000ULL, &facts, &res), 0);
        assert_int_equal(res.exit_status, 0);

        in = read_file(f, "stdin.out");
        assert_non_null(in);
        o = json_loads(in, JSON_REJECT_DUPLICATES, &err);
        assert_non_null(o);
        assert_true(json_is_object(o));
        assert_int_equal(json_object_size(o), ARRAY_SIZE(keys));
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
                assert_non_null(json_object_get(o, keys[i]));

        assert_string_equal(json_string_value(json_object_get(o, "user")), "alice");
        assert_int_equal(json_integer_value(json_object_get(o, "uid")), 2001);
        assert_string_equal(json_string_value(json_object_get(o, "risk_level")), "high");
        assert_string_equal(json_string_value(json_object_get(o, "previous_risk_level")), "low");
        assert_string_equal(json_string_value(json_object_get(o, "detection")), "device-compliance-change");
        assert_string_equal(json_string_value(json_object_get(o, "jti")), "jti-42");
        assert_string_equal(json_string_value(json_object_get(o, "issuer")), "https://idp.example.com");
        assert_string_equal(json_string_value(json_object_get(o, "rule")), "logout-high");
        assert_string_equal(json_string_value(json_object_get(o, "reason")), "");
        assert_string_equal(json_string_value(json_object_get(o, "txn")), "txn-7");

        claims = json_object_get(o, "claims");
        assert_true(json_is_object(claims));
        assert_string_equal(json_string_value(json_object_get(claims, "iss")), "https://idp.example.com");
        claims = json_object_get(json_object_get(claims, "events"), "x");
        assert_int_equal(json_integer_value(json_object_get(claims, "a")), 1);
        json_decref(o);

        /* Claims that are not JSON become null rather than breaking the object. */
        facts.claims_json = "{not json";
        assert_int_equal(hooks_run(f->dir, "stdin", NULL, 10 * 1000000ULL, &facts, &res), 0);
        free(in);
        in = read_file(f, "stdin.out");
        assert_non_null(in);
        o = json_loads(in, JSON_REJECT_DUPLICATES, &err);
        assert_non_null(o);
        assert_true(json_is_null(json_object_get(o, "claims")));
        json_decref(o);
}

static void test_exit_status_and_output(void **state) {
        Fixture *f = *state;
        HookFacts facts = sample_facts();
        HookResult res;

        if (!need_root())
                skip();
        write_hook(f, "notify-admin", 0700,
                   "#!/bin/sh\necho \"first line $SSF_USER\"\necho second >&2\nexit 7\n");
        assert_int_equal(hooks_run(f->dir, "notify-admin", "root", 10 * 1000000ULL, &facts, &res), 0);
        assert_int_equal(res.exit_status, 7);
        assert_false(res.timed_out);
        assert_true(res.duration_ms >= 0);
        assert_string_equal(res.output, "first line alice\nsecond\n");
        print_message("summary: %s\n", res.summary);
        assert_true(startswith(res.summary, "exit 7 in "));
        assert_non_null(strstr(res.summary, " ms: first line alice"));

        write_hook(f, "quiet", 0755, "#!/bin/sh\nexit 0\n");
        assert_int_equal(hooks_run(f->dir, "quiet", "root", 10 * 1000000ULL, &facts, &res), 0);
        assert_int_equal(res.exit_status, 0);
        assert_string_equal(res.output, "");
        assert_null(strchr(res.summary, ':'));

        write_hook(f, "signal", 0755, "#!/bin/sh\necho bye\nkill -USR1 $$\nsleep 5\n");
        assert_int_equal(hooks_run(f->dir, "signal", "root", 10 * 1000000ULL, &facts, &res), 0);
        assert_int_equal(res.exit_status, 128 + SIGUSR1);
        assert_false(res.timed_out);
        assert_true(startswith(res.summary, "killed by signal 10 in "));

        /* Control bytes and invalid UTF-8 do not reach the journal. */
        write_hook(f, "binary", 0755, "#!/bin/sh\nprintf 'a\\033[31mb\\377c\\n'\n");
        assert_int_equal(hooks_run(f->dir, "binary", "root", 10 * 1000000ULL, &facts, &res), 0);
        assert_string_equal(res.output, "a?[31mb?c\n");

        /* Nor do C1 controls (U+009B CSI, U+009D OSC as UTF-8), DEL, bidirectional overrides
         * (U+202E RLO) or invalid UTF-8, on stdout and stderr, in the output and its summary. */
        write_hook(f, "hostile", 0755,
                   "#!/bin/sh\nprintf 'x\\302\\23331my\\302\\2350;t\\007\\177z\\342\\200\\256gpj.exe\\300\\257\\n'\n"
                   "printf 'err\\001\\302\\205\\342\\201\\246\\r\\n' >&2\n");
        assert_int_equal(hooks_run(f->dir, "hostile", "root", 10 * 1000000ULL, &facts, &res), 0);
        assert_string_equal(res.output, "x?31my?0;t??z?gpj.exe??\nerr????\n");
        assert_non_null(strstr(res.summary, " ms: x?31my?0;t??z?gpj.exe??"));
}

static void test_summary_cut_on_character(void **state) {
        Fixture *f = *state;
        HookFacts facts = sample_facts();
        HookResult res;
        const char *colon;
        size_t l;

        if (!f)
                skip();
        /* A first line of 2-byte characters, longer than the summary keeps of it (255 bytes):
         * the cut falls inside a character unless it is made on a boundary. */
        write_hook(f, "long", 0755,
                   "#!/bin/sh\ni=0; while [ $i -lt 300 ]; do printf '\\303\\251'; i=$((i+1)); done; echo\n");
        assert_int_equal(hooks_run(f->dir, "long", "root", 10 * 1000000ULL, &facts, &res), 0);
        colon = strstr(res.summary, ": \xc3");
        assert_non_null(colon);
        l = strlen(colon + 2);
        assert_true(l > 200);
        /* Whole characters only. */
        assert_int_equal(l % 2, 0);
        for (size_t i = 2; i < 2 + l; i += 2)
                assert_memory_equal(colon + i, "\xc3\xa9", 2);
}

static void test_output_flood(void **state) {
        Fixture *f = *state;
        HookFacts facts = sample_facts();
        HookResult res;

        if (!need_root())
                skip();
        /* 10 MB on stdout, then a line on stderr: drained without deadlock, first KiB kept. */
        write_hook(f, "flood", 0755,
                   "#!/bin/sh\nhead -c 10000000 /dev/zero | tr '\\0' x\necho tail >&2\nexit 3\n");
        assert_int_equal(hooks_run(f->dir, "flood", "root", 60 * 1000000ULL, &facts, &res), 0);
        assert_false(res.timed_out);
        assert_int_equal(res.exit_status, 3);
        assert_int_equal(strlen(res.output), sizeof(res.output) - 1);
        assert_int_equal(strspn(res.output, "x"), sizeof(res.output) - 1);
        assert_true(strlen(res.summary) < sizeof(res.summary));
}

static void test_stdin_not_read(void **state) {
        Fixture *f = *state;
        HookFacts facts = sample_facts();
        HookResult res;
        _cleanup_free_ char *claims = NULL;
        size_t size = 900 * 1024;
        sigset_t pending;

        if (!need_root())
                skip();
        /* Far more input than a pipe holds, and a hook that never reads it. */
        claims = malloc(size + 32);
        assert_non_null(claims);
        strcpy(claims, "{\"pad\":\"");
        memset(claims + 8, 'p', size);
        strcpy(claims + 8 + size, "\"}");
        facts.claims_json = claims;

        write_hook(f, "noread", 0755, "#!/bin/sh\necho ignored\nexit 0\n");
        assert_int_equal(hooks_run(f->dir, "noread", "root", 10 * 1000000ULL, &facts, &res), 0);
        assert_int_equal(res.exit_status, 0);
        assert_false(res.timed_out);
        assert_string_equal(res.output, "ignored\n");

        /* Closes stdin early, then keeps running. */
        write_hook(f, "closein", 0755, "#!/bin/sh\nexec 0<&-\nsleep 0.2\necho done\n");
        assert_int_equal(hooks_run(f->dir, "closein", "root", 10 * 1000000ULL, &facts, &res), 0);
        assert_int_equal(res.exit_status, 0);
        assert_string_equal(res.output, "done\n");

        /* We are alive (no SIGPIPE death) and no SIGPIPE was left pending. */
        sigemptyset(&pending);
        assert_int_equal(sigpending(&pending), 0);
        assert_false(sigismember(&pending, SIGPIPE));
}

static void test_timeout_kills(void **state) {
        Fixture *f = *state;
        HookFacts facts = sample_facts();
        HookResult res;
        pid_t pid, child;

        if (!need_root())
                skip();
        /* The hook and a background child of it: the whole process group goes. */
        write_hook(f, "slow", 0755,
                   "#!/bin/sh\nsleep 30 &\necho $! > @DIR@/child.pid\necho $$ > @DIR@/hook.pid\n"
                   "echo started\nwait\n");
        assert_int_equal(hooks_run(f->dir, "slow", "root", 300 * 1000ULL, &facts, &res), 0);
        assert_true(res.timed_out);
        assert_int_equal(res.exit_status, 128 + SIGTERM);
        assert_string_equal(res.output, "started\n");
        print_message("summary: %s\n", res.summary);
        assert_true(startswith(res.summary, "timed out, killed by signal TERM in "));

        pid = read_pid(f, "hook.pid");
        child = read_pid(f, "child.pid");
        assert_true(pid > 1);
        assert_true(child > 1);
        assert_true(process_is_gone(pid));
        /* The background child got the SIGTERM too; give its reaper a moment. */
        for (int i = 0; i < 200 && !process_is_gone(child); i++)
                usleep(10000);
        assert_true(process_is_gone(child));
}

static void test_sigterm_ignored(void **state) {
        Fixture *f = *state;
        HookFacts facts = sample_facts();
        HookResult res;
        pid_t pid;

        if (!need_root())
                skip();
        write_hook(f, "stubborn", 0755,
                   "#!/bin/sh\ntrap '' TERM\necho $$ > @DIR@/hook.pid\nwhile :; do sleep 0.05; done\n");
        assert_int_equal(hooks_run(f->dir, "stubborn", "root", 200 * 1000ULL, &facts, &res), 0);
        assert_true(res.timed_out);
        assert_int_equal(res.exit_status, 128 + SIGKILL);
        assert_true(startswith(res.summary, "timed out, killed by signal KILL in "));
        pid = read_pid(f, "hook.pid");
        assert_true(pid > 1);
        assert_true(process_is_gone(pid));
}

static void test_unsafe_hooks(void **state) {
        Fixture *f = *state;
        HookFacts facts = sample_facts();
        HookResult res;
        char path[256], marker[256];
        static const char marker_hook[] = "#!/bin/sh\ntouch @DIR@/ran\n";

        if (!need_root())
                skip();
        pathf(path, sizeof(path), f, "h");
        pathf(marker, sizeof(marker), f, "ran");

        write_hook(f, "h", 0755, marker_hook);
        assert_int_equal(hooks_check(f->dir, "h"), 0);

        assert_int_equal(chmod(path, 0775), 0); /* group-writable */
        assert_int_equal(hooks_check(f->dir, "h"), -EPERM);
        assert_int_equal(hooks_run(f->dir, "h", "root", 1000000ULL, &facts, &res), -EPERM);
        assert_int_equal(res.exit_status, -1);
        assert_true(startswith(res.summary, "could not be run: "));
        assert_int_equal(access(marker, F_OK), -1);

        assert_int_equal(chmod(path, 0757), 0); /* world-writable */
        assert_int_equal(hooks_check(f->dir, "h"), -EPERM);

        assert_int_equal(chmod(path, 0644), 0); /* not executable */
        assert_int_equal(hooks_check(f->dir, "h"), -EPERM);
        assert_int_equal(hooks_run(f->dir, "h", "root", 1000000ULL, &facts, &res), -EPERM);
        assert_int_equal(access(marker, F_OK), -1);

        assert_int_equal(chmod(path, 0755), 0);
        assert_int_equal(chown(path, 65534, 65534), 0); /* not root's */
        assert_int_equal(hooks_check(f->dir, "h"), -EPERM);
        assert_int_equal(hooks_run(f->dir, "h", "root", 1000000ULL, &facts, &res), -EPERM);
        assert_int_equal(access(marker, F_OK), -1);
        assert_int_equal(chown(path, 0, 0), 0);
        assert_int_equal(chmod(path, 0755), 0); /* chown cleared nothing we rely on, but be explicit */

        /* A symlink to a perfectly good hook. */
        pathf(path, sizeof(path), f, "link");
        assert_int_equal(symlink("h", path), 0);
        assert_int_equal(hooks_check(f->dir, "link"), -EPERM);
        assert_int_equal(hooks_run(f->dir, "link", "root", 1000000ULL, &facts, &res), -EPERM);
        assert_int_equal(access(marker, F_OK), -1);

        /* Not a regular file. */
        pathf(path, sizeof(path), f, "subdir");
        assert_int_equal(mkdir(path, 0755), 0);
        assert_int_equal(hooks_check(f->dir, "subdir"), -EPERM);

        assert_int_equal(hooks_check(f->dir, "missing"), -ENOENT);
        assert_int_equal(hooks_run(f->dir, "missing", "root", 1000000ULL, &facts, &res), -ENOENT);

        /* Names. */
        assert_int_equal(hooks_check(f->dir, "subdir/h"), -EINVAL);
        assert_int_equal(hooks_check(f->dir, "../h"), -EINVAL);
        assert_int_equal(hooks_check(f->dir, ".h"), -EINVAL);
        assert_int_equal(hooks_check(f->dir, "."), -EINVAL);
        assert_int_equal(hooks_check(f->dir, ""), -EINVAL);
        assert_int_equal(hooks_check(f->dir, NULL), -EINVAL);
        assert_int_equal(hooks_check(f->dir, "a b"), -EINVAL);
        assert_int_equal(hooks_check("relative/dir", "h"), -EINVAL);
        assert_int_equal(hooks_run(f->dir, "subdir/h", "root", 1000000ULL, &facts, &res), -EINVAL);

        /* An unsafe directory. */
        assert_int_equal(hooks_check(f->dir, "h"), 0);
        assert_int_equal(chmod(f->dir, 0770), 0);
        assert_int_equal(hooks_check(f->dir, "h"), -EPERM);
        assert_int_equal(chmod(f->dir, 0700), 0);

        /* After all that, the good hook runs. */
        assert_int_equal(hooks_run(f->dir, "h", "root", 10 * 1000000ULL, &facts, &res), 0);
        assert_int_equal(res.exit_status, 0);
        assert_int_equal(access(marker, F_OK), 0);
}

static void test_run_as_nobody(void **state) {
        Fixture *f = *state;
        HookFacts facts = sample_facts();
        HookResult res;

        if (!need_root())
                skip();
        assert_int_equal(chmod(f->dir, 0755), 0); /* nobody must reach the hook */
        write_hook(f, "whoami", 0755, "#!/bin/sh\nid -u\nid -g\nid -G\n");
        assert_int_equal(hooks_run(f->dir, "whoami", "nobody", 10 * 1000000ULL, &facts, &res), 0);
        assert_int_equal(res.exit_status, 0);
        print_message("output: %s", res.output);
        assert_string_equal(res.output, "65534\n65534\n65534\n");

        assert_int_equal(hooks_run(f->dir, "whoami", "root", 10 * 1000000ULL, &facts, &res), 0);
        assert_true(startswith(res.output, "0\n0\n"));

        assert_int_equal(hooks_run(f->dir, "whoami", "no-such-user-ssf", 10 * 1000000ULL, &facts, &res),
                         -ESRCH);
        assert_int_equal(res.exit_status, -1);
        assert_int_equal(chmod(f->dir, 0700), 0);
}

static void test_child_setup(void **state) {
        Fixture *f = *state;
        HookFacts facts = sample_facts();
        HookResult res;
        int fd;
        char expect[64];

        if (!need_root())
                skip();
        /* An fd without O_CLOEXEC in the daemon must not reach the hook. */
        fd = open("/dev/null", O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(dup2(fd, 200), 200);
        close(fd);
        /* Own session: the session id (field 6 of stat) is the hook's pid. Working directory /. */
        write_hook(f, "setup", 0755,
                   "#!/bin/sh\n"
                   "if [ -e /proc/$$/fd/200 ]; then echo leaked; else echo closed; fi\n"
                   "[ \"$(cut -d' ' -f6 /proc/$$/stat)\" = \"$$\" ] && echo own-session\n"
                   "pwd\n");
        assert_int_equal(hooks_run(f->dir, "setup", "root", 10 * 1000000ULL, &facts, &res), 0);
        close(200);
        snprintf(expect, sizeof(expect), "closed\nown-session\n/\n");
        assert_string_equal(res.output, expect);

        /* The hook cannot be executed: an error, not an exit status. */
        write_hook(f, "badinterp", 0755, "#!/nonexistent/interpreter\n");
        assert_int_equal(hooks_run(f->dir, "badinterp", "root", 10 * 1000000ULL, &facts, &res), -ENOENT);
        assert_int_equal(res.exit_status, -1);

        assert_int_equal(hooks_run(f->dir, "setup", "root", 1000000ULL, NULL, &res), -EINVAL);
}

static void test_no_fd_leak(void **state) {
        Fixture *f = *state;
        HookFacts facts = sample_facts();
        HookResult res;
        int before;

        if (!need_root())
                skip();
        write_hook(f, "ok", 0755, "#!/bin/sh\necho ok\n");
        write_hook(f, "badinterp", 0755, "#!/nonexistent/interpreter\n");
        write_hook(f, "slow", 0755, "#!/bin/sh\nsleep 30\n");
        before = count_fds();
        for (int i = 0; i < 3; i++) {
                assert_int_equal(hooks_run(f->dir, "ok", "root", 10 * 1000000ULL, &facts, &res), 0);
                assert_int_equal(hooks_run(f->dir, "badinterp", "root", 1000000ULL, &facts, &res), -ENOENT);
                assert_int_equal(hooks_run(f->dir, "missing", "root", 1000000ULL, &facts, &res), -ENOENT);
        }
        assert_int_equal(hooks_run(f->dir, "slow", "root", 100 * 1000ULL, &facts, &res), 0);
        assert_true(res.timed_out);
        assert_int_equal(count_fds(), before);
}

/* Fully gone: not even a zombie (whoever reaped it). */
static int wait_gone(pid_t pid) {
        for (int i = 0; i < 300 && !process_is_gone(pid); i++)
                usleep(10000);
        return process_is_gone(pid);
}

/* A hook that starts a sleeper which leaves its session (setsid -f: forked, so its parent exits
 * at once and it is an orphan in a session of its own), waits until the sleeper wrote its pid,
 * prints whether the sleeper's session differs from its own, and then either sleeps (so that the
 * timeout ends it) or exits. */
#define SETSID_HOOK(tail)                                                                     \
        "#!/bin/sh\n"                                                                         \
        "setsid -f sh -c 'echo $$ > @DIR@/sleeper.pid; exec sleep 60' </dev/null >/dev/null 2>&1\n" \
        "while [ ! -s @DIR@/sleeper.pid ]; do sleep 0.01; done\n"                            \
        "s=$(cat @DIR@/sleeper.pid)\n"                                                        \
        "[ \"$(cut -d' ' -f6 /proc/$s/stat)\" != \"$(cut -d' ' -f6 /proc/$$/stat)\" ] && echo other-session\n" \
        "cat /proc/self/cgroup | grep '^0::'\n" tail

static void run_setsid_hooks(Fixture *f, const char *expect_cgroup_prefix) {
        HookFacts facts = sample_facts();
        HookResult res;
        pid_t sleeper;
        char path[256];

        /* At the timeout. */
        write_hook(f, "escape", 0755, SETSID_HOOK("exec sleep 60\n"));
        assert_int_equal(hooks_run(f->dir, "escape", "root", 1000 * 1000ULL, &facts, &res), 0);
        print_message("summary: %s\n", res.summary);
        assert_true(res.timed_out);
        assert_true(startswith(res.output, "other-session\n0::"));
        if (expect_cgroup_prefix)
                assert_non_null(strstr(res.output, expect_cgroup_prefix));
        sleeper = read_pid(f, "sleeper.pid");
        assert_true(sleeper > 1);
        assert_true(wait_gone(sleeper));

        /* When the hook exits on its own, what it left running is stopped too. */
        pathf(path, sizeof(path), f, "sleeper.pid");
        assert_int_equal(unlink(path), 0);
        write_hook(f, "escape", 0755, SETSID_HOOK("echo done\n"));
        assert_int_equal(hooks_run(f->dir, "escape", "root", 30 * 1000000ULL, &facts, &res), 0);
        print_message("summary: %s\n", res.summary);
        assert_false(res.timed_out);
        assert_int_equal(res.exit_status, 0);
        assert_non_null(strstr(res.output, "other-session\n"));
        assert_non_null(strstr(res.output, "done\n"));
        sleeper = read_pid(f, "sleeper.pid");
        assert_true(sleeper > 1);
        assert_true(wait_gone(sleeper));
}

/* No delegated cgroup here (the test runs where it was started): the reaper stops the
 * descendants, and reaps them (they are its children once orphaned). */
static void test_setsid_descendants_reaper(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *own = NULL;

        if (!need_root())
                skip();
        if (hook_tree_own_cgroup(&own) >= 0 && hook_tree_cgroup_is_delegated(own)) {
                print_message("running in a delegated cgroup: the reaper is not used here\n");
                skip();
        }
        run_setsid_hooks(f, NULL);
}

/* The cgroup path, where this machine allows it: a cgroup created by the test under its own,
 * marked delegated as systemd marks one (trusted.delegate), with this process moved into it. */
static void test_setsid_descendants_cgroup(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *own = NULL, *test_cg = NULL, *procs = NULL, *own_procs = NULL;
        char expect[128], line[32];
        DIR *d;
        struct dirent *de;
        int fd, hook_dirs = 0;

        if (!need_root())
                skip();
        if (hook_tree_own_cgroup(&own) < 0) {
                print_message("no cgroup v2 here: skipping\n");
                skip();
        }
        assert_true(asprintf(&test_cg, "%s/ssf-test-%d", own, (int) getpid()) > 0);
        if (mkdir(test_cg, 0755) < 0) {
                print_message("cannot create a cgroup in %s (%s): skipping\n", own, strerror(errno));
                skip();
        }
        if (setxattr(test_cg, "trusted.delegate", "1", 1, 0) < 0) {
                print_message("no xattrs on cgroups here (%s): skipping\n", strerror(errno));
                assert_int_equal(rmdir(test_cg), 0);
                skip();
        }
        snprintf(cg_test, sizeof(cg_test), "%s", test_cg);
        snprintf(cg_back, sizeof(cg_back), "%s", own);
        assert_true(asprintf(&procs, "%s/cgroup.procs", test_cg) > 0);
        assert_true(asprintf(&own_procs, "%s/cgroup.procs", own) > 0);
        fd = open(procs, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        snprintf(line, sizeof(line), "%d", (int) getpid());
        assert_int_equal(write(fd, line, strlen(line)), (ssize_t) strlen(line));
        close(fd);

        /* The hooks run in hook-PID-N below the test's cgroup. */
        snprintf(expect, sizeof(expect), "/ssf-test-%d/hook-%d-", (int) getpid(), (int) getpid());
        run_setsid_hooks(f, expect);

        /* Each hook's cgroup was removed. */
        d = opendir(test_cg);
        assert_non_null(d);
        while ((de = readdir(d)))
                if (startswith(de->d_name, "hook-"))
                        hook_dirs++;
        closedir(d);

        fd = open(own_procs, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, line, strlen(line)), (ssize_t) strlen(line));
        close(fd);
        assert_int_equal(rmdir(test_cg), 0);
        cg_test[0] = 0;
        assert_int_equal(hook_dirs, 0);
}

static int swaps;

/* Runs between the check and the execution: puts another, equally well-formed hook at the path. */
static void swap_hook(const char *dir, const char *name) {
        char from[256], to[256];

        snprintf(from, sizeof(from), "%s/swapped-in", dir);
        snprintf(to, sizeof(to), "%s/%s", dir, name);
        assert_int_equal(rename(from, to), 0);
        swaps++;
}

/* The file that was checked is the one that runs, whatever is at the path by then: a "#!"
 * script (the interpreter reads the checked file as /dev/fd/N) and an ELF binary. */
static void test_runs_the_checked_file(void **state) {
        Fixture *f = *state;
        HookFacts facts = sample_facts();
        HookResult res;
        _cleanup_free_ char *out = NULL;
        char path[256], cmd[600];

        if (!need_root())
                skip();
        write_hook(f, "h", 0755, "#!/bin/sh\necho checked $0\n");
        write_hook(f, "swapped-in", 0755, "#!/bin/sh\necho swapped\ntouch @DIR@/swapped-ran\n");
        swaps = 0;
        hooks_test_checked = swap_hook;
        assert_int_equal(hooks_run(f->dir, "h", "root", 10 * 1000000ULL, &facts, &res), 0);
        hooks_test_checked = NULL;
        assert_int_equal(swaps, 1);
        print_message("output: %s", res.output);
        assert_int_equal(res.exit_status, 0);
        assert_true(startswith(res.output, "checked /dev/fd/"));
        pathf(path, sizeof(path), f, "swapped-ran");
        assert_int_equal(access(path, F_OK), -1);
        /* The path now names the other one, which runs next time. */
        assert_int_equal(hooks_run(f->dir, "h", "root", 10 * 1000000ULL, &facts, &res), 0);
        assert_string_equal(res.output, "swapped\n");
        assert_int_equal(access(path, F_OK), 0);

        /* An ELF binary, swapped for a script after the check: the binary runs. */
        pathf(path, sizeof(path), f, "bin");
        snprintf(cmd, sizeof(cmd), "cp /usr/bin/printenv '%s' && chmod 0755 '%s'", path, path);
        assert_int_equal(system(cmd), 0);
        write_hook(f, "swapped-in", 0755, "#!/bin/sh\necho swapped\n");
        hooks_test_checked = swap_hook;
        assert_int_equal(hooks_run(f->dir, "bin", "root", 10 * 1000000ULL, &facts, &res), 0);
        hooks_test_checked = NULL;
        assert_int_equal(res.exit_status, 0);
        assert_non_null(strstr(res.output, "SSF_USER=alice\n"));
        assert_null(strstr(res.output, "swapped"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_environment, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stdin_json, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exit_status_and_output, setup, teardown),
                cmocka_unit_test_setup_teardown(test_summary_cut_on_character, setup, teardown),
                cmocka_unit_test_setup_teardown(test_output_flood, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stdin_not_read, setup, teardown),
                cmocka_unit_test_setup_teardown(test_timeout_kills, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sigterm_ignored, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unsafe_hooks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_run_as_nobody, setup, teardown),
                cmocka_unit_test_setup_teardown(test_child_setup, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_fd_leak, setup, teardown),
                cmocka_unit_test_setup_teardown(test_setsid_descendants_reaper, setup, teardown),
                cmocka_unit_test_setup_teardown(test_setsid_descendants_cgroup, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runs_the_checked_file, setup, teardown),
        };

        return cmocka_run_group_tests_name("hooks", tests, NULL, NULL);
}
