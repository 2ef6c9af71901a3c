/* SPDX-License-Identifier: MIT */
/*
 * The ssf-sessiond binary's entry point: parses the command line, then runs either the root
 * daemon (daemon/manager.c) or, with the internal --network-worker, the unprivileged network
 * worker (receiver/worker.c), which root starts by executing this same binary.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "hooks.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "privsep.h"
#include "worker.h"

static const char *arg_config = SSF_DEFAULT_CONFIG;
static bool arg_foreground = false;
static bool arg_check = false;
static bool arg_worker = false;
static char *arg_transmitters[TRANSMITTERS_MAX];
static size_t arg_n_transmitters = 0;

static void help(void) {
        printf("Usage: ssf-sessiond [OPTIONS]\n\n"
               "Receives OpenID Shared Signals Framework security events, keeps each local\n"
               "user's risk level, and enforces the entity risk policy.\n\n"
               "  -c --config PATH     configuration file (default " SSF_DEFAULT_CONFIG ")\n"
               "  -f --foreground      log to standard error instead of the journal\n"
               "     --check-config    validate the configuration and exit\n"
               "  -l --log-level LEVEL debug, info, notice, warning, err\n"
               "     --version         print the version and exit\n"
               "  -h --help            show this help\n");
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_CHECK = 0x100, ARG_VERSION, ARG_WORKER, ARG_TRANSMITTER };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "foreground", no_argument, NULL, 'f' },
                { "check-config", no_argument, NULL, ARG_CHECK },
                { "log-level", required_argument, NULL, 'l' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "help", no_argument, NULL, 'h' },
                { "network-worker", no_argument, NULL, ARG_WORKER }, /* internal */
                { "transmitter", required_argument, NULL, ARG_TRANSMITTER }, /* internal */
                {}
        };
        int c, l;

        while ((c = getopt_long(argc, argv, "c:fl:h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        arg_config = optarg;
                        break;
                case 'f':
                        arg_foreground = true;
                        break;
                case ARG_CHECK:
                        arg_check = true;
                        break;
                case 'l':
                        l = log_level_from_string(optarg);
                        if (l < 0) {
                                fprintf(stderr, "ssf-sessiond: unknown log level '%s'\n", optarg);
                                return -EINVAL;
                        }
                        log_set_max_level(l);
                        break;
                case ARG_WORKER:
                        arg_worker = true;
                        break;
                case ARG_TRANSMITTER:
                        if (!config_transmitter_name_valid(optarg)) {
                                fprintf(stderr, "ssf-sessiond: invalid transmitter name '%s'\n", optarg);
                                return -EINVAL;
                        }
                        if (arg_n_transmitters >= TRANSMITTERS_MAX) {
                                fprintf(stderr, "ssf-sessiond: too many --transmitter\n");
                                return -EINVAL;
                        }
                        /* Several: one worker serving the push transmitters, a channel each. */
                        arg_transmitters[arg_n_transmitters++] = optarg;
                        break;
                case ARG_VERSION:
                        printf("ssf-sessiond " SSF_VERSION "\n");
                        return 0;
                case 'h':
                        help();
                        return 0;
                default:
                        return -EINVAL;
                }
        if (arg_n_transmitters > 0 && !arg_worker) {
                fprintf(stderr, "ssf-sessiond: --transmitter is for the network worker only\n");
                return -EINVAL;
        }
        if (optind < argc) {
                fprintf(stderr, "ssf-sessiond: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static int check_readable_file(const char *path) {
        struct stat st;
        int fd, r = 0;

        if (!path)
                return -ENOENT;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                r = -errno;
        else if (!S_ISREG(st.st_mode))
                r = -EISDIR;
        safe_close(fd);
        return r;
}

/* What config_load() cannot know: unreadable push files, and (for --check-config only; at start
 * the config loader warns and the rule's result says why it failed) missing or unsafe hooks. */
static int check_config(const Config *c, bool hooks) {
        int errors = 0;

        for (size_t i = 0; i < c->n_rules; i++) {
                const Rule *r = &c->rules[i];
                int k;

                if (!hooks || r->action != ACTION_WORKFLOW)
                        continue;
                k = hooks_check(c->hooks_dir, r->workflow);
                if (k < 0) {
                        log_error("%s:%u: [rule %s] hook '%s/%s' is missing or unsafe: %s",
                                  strempty(r->file), r->line, r->name, c->hooks_dir,
                                  strempty(r->workflow), strerror(-k));
                        errors++;
                }
        }
        if (c->push_listen) {
                const char *const files[][2] = {
                        { "push_cert", c->push_cert },
                        { "push_key", c->push_key },
                };

                for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
                        int k = check_readable_file(files[i][1]);
                        if (k < 0) {
                                log_error("%s: %s '%s' is not a readable file: %s", arg_config,
                                          files[i][0], strempty(files[i][1]), strerror(-k));
                                errors++;
                        }
                }
        }
        return errors ? -EINVAL : 0;
}

/* Root runs the network worker as its own user, never as root or "nobody": without that user
 * there is no daemon. A development run as another user keeps its uid and needs none. */
static int check_worker_user(void) {
        uid_t uid;
        gid_t gid;
        int r;

        if (geteuid() != 0)
                return 0;
        r = worker_user(&uid, &gid);
        return r < 0 ? worker_user_log_error(r) : 0;
}

int main(int argc, char *argv[]) {
        Config *config = NULL;
        Manager *m = NULL;
        int r;

        log_setup(true);
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        log_setup(arg_foreground || arg_check);
        umask(0077);
        if (arg_worker)
                return worker_main(arg_config, arg_transmitters, arg_n_transmitters);

        r = config_load(arg_config, true, &config);
        if (r >= 0)
                r = check_config(config, arg_check);
        if (check_worker_user() < 0 && r >= 0)
                r = -ESRCH;
        if (arg_check) {
                if (r == -ESRCH) {
                        fprintf(stderr, "%s: configuration is valid, but user '%s' is missing\n",
                                arg_config, SSF_WORKER_USER);
                        config_free(config);
                        return 1;
                }
                if (r < 0) {
                        fprintf(stderr, "%s: configuration is invalid\n", arg_config);
                        config_free(config);
                        return 1;
                }
                printf("%s: configuration is valid\n", arg_config);
                config_free(config);
                return 0;
        }
        if (r < 0) {
                if (r == -ESRCH)
                        log_error("Refusing to start without the network worker's user '%s'",
                                  SSF_WORKER_USER);
                else
                        log_error("Refusing to start with an invalid configuration '%s'", arg_config);
                config_free(config);
                return 1;
        }

        r = manager_new(arg_config, config, &m);
        if (r < 0)
                return 1;
        m->foreground = arg_foreground;
        r = manager_run(m);
        manager_free(m);
        return r < 0 ? 1 : 0;
}
