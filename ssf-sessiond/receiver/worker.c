/* SPDX-License-Identifier: MIT */
/*
 * The network worker process (worker.h): drops privileges, applies its seccomp filter
 * (sandbox.c), then runs poll or push delivery until root says stop. Runs in the network
 * worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "link-client.h"
#include "log.h"
#include "macro.h"
#include "oauth2.h"
#include "poller.h"
#include "privsep.h"
#include "push.h"
#include "sandbox.h"
#include "secret.h"
#include "stream.h"
#include "worker.h"

static int drop_privileges(void) {
        uid_t uid;
        gid_t gid;
        int r;

        if (geteuid() != 0)
                return 0; /* already unprivileged (development runs) */

        /* The daemon checked this before it started us; the account may have gone since. */
        r = worker_user(&uid, &gid);
        if (r < 0) {
                worker_user_log_error(r);
                log_error("Refusing to talk to the network as root");
                return r;
        }
        if (uid == 0 || gid == 0) {
                log_error("The network worker user must not be root");
                return -EPERM;
        }
        if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
                return log_error_errno(errno, "Cannot drop privileges to uid %u: %m",
                                       (unsigned) uid);
        if (setuid(0) == 0 || seteuid(0) == 0) {
                log_error("Privileges could be regained after dropping them, refusing to run");
                return -EPERM;
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return log_error_errno(errno, "PR_SET_NO_NEW_PRIVS: %m");
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        log_debug("Network worker running as uid %u gid %u", (unsigned) uid, (unsigned) gid);
        return 0;
}

/* What one served transmitter needs, read as root before the drop. */
typedef struct Served {
        Config *config; /* its own copy: its Link takes it */
        const TransmitterConfig *tc;
        char *authorization, *push_authorization;
        OAuth2Client *oauth2;
        HttpClient *http;
        Link *link;
} Served;

static void served_done(Served *s) {
        if (s->link)
                link_free(s->link); /* frees config */
        else
                config_free(s->config);
        http_client_free(s->http);
        oauth2_client_free(s->oauth2);
        erase_and_free(s->authorization);
        erase_and_free(s->push_authorization);
        *s = (Served) {};
}

/* Loads the configuration and the transmitter's credentials and HTTPS client (its ca_file,
 * client certificate, proxy). Returns 0 or -errno (logged). */
static int served_load(const char *config_path, const char *name, Served *s) {
        int level = log_get_max_level(), r;

        /* The daemon loaded and checked the same configuration a moment ago and logged its
         * warnings: only errors here. */
        log_set_max_level(MIN(level, LOG_ERR));
        r = config_load(config_path, false, &s->config);
        log_set_max_level(level);
        if (r < 0)
                return r;
        /* Root names the transmitter; without a name, the only one. */
        s->tc = name ? config_transmitter(s->config, name) : config_transmitter_main(s->config);
        if (!s->tc) {
                log_error("No transmitter named '%s' (or several and none named default) in %s",
                          name ? name : "(none)", config_path);
                return -ENOENT;
        }
        if (s->tc->stream == STREAM_NONE)
                /* No stream API: no credentials for one; the exact Authorization the
                 * transmitter's pushes carry instead. */
                r = secret_read_header_file(s->tc->push_authorization_file,
                                            "push authorization file", &s->push_authorization);
        else
                r = stream_load_authorization(s->tc, &s->authorization);
        if (r >= 0 && s->tc->stream != STREAM_NONE && s->tc->auth == AUTH_OAUTH2)
                r = oauth2_client_new(s->tc, &s->oauth2); /* reads the client secret */
        if (r >= 0) {
                r = http_client_new(s->tc->ca_file, &s->http); /* reads ca_file */
                if (r < 0)
                        log_error_errno(r, "Cannot create the HTTPS client: %m");
        }
        if (r >= 0 && s->tc->tls_client_cert && s->tc->tls_client_key)
                /* reads the client certificate and key (logs its errors) */
                r = http_client_set_client_cert(s->http, s->tc->tls_client_cert,
                                                s->tc->tls_client_key);
        if (r >= 0) {
                r = http_client_set_proxy(s->http, s->tc->proxy);
                if (r < 0)
                        log_error_errno(r, "Cannot use the proxy '%s': %m", s->tc->proxy);
        }
        return r;
}

int worker_main(const char *config_path, char *const *names, size_t n_names) {
        Served served[TRANSMITTERS_MAX] = {};
        PushTransmitter pt[TRANSMITTERS_MAX];
        PushServer *push = NULL;
        size_t n = MAX(n_names, (size_t) 1);
        int type = 0, r = 0;
        socklen_t len = sizeof(type);

        if (n > TRANSMITTERS_MAX)
                return 2;
        for (size_t i = 0; i < n; i++)
                if (getsockopt(LINK_FD + (int) i, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
                    type != SOCK_SEQPACKET) {
                        log_error("--network-worker is started by ssf-sessiond itself, with its "
                                  "channels on fd %d and up, one per --transmitter", LINK_FD);
                        return 2;
                }
        for (size_t i = 0; i < n; i++)
                (void) fcntl(LINK_FD + (int) i, F_SETFD, FD_CLOEXEC);
        if (chdir("/") < 0)
                return log_error_errno(errno, "chdir: %m"), 1;

        /* Everything that needs root happens before the drop. */
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = served_load(config_path, n_names > 0 ? names[i] : NULL, &served[i]);
                /* Several transmitters in one worker: the push transmitters, sharing the one
                 * listener. A poll transmitter has a worker of its own. */
                if (r >= 0 && n > 1 && served[i].tc->delivery != DELIVERY_PUSH) {
                        log_error("Transmitter '%s' does not use push: one worker serves several "
                                  "transmitters only when they share the push listener",
                                  served[i].tc->name);
                        r = -EINVAL;
                }
        }
        if (r >= 0 && served[0].tc->delivery == DELIVERY_PUSH) {
                /* reads push_cert and push_key, binds push_listen (ports < 1024 work) */
                r = push_server_new(served[0].config, &push);
                if (r < 0)
                        log_error_errno(r, "Cannot set up the push listener: %m");
        }
        if (r >= 0)
                r = drop_privileges();
        if (r >= 0)
                /* From here on: no new files for writing, no programs, no processes. */
                r = sandbox_apply();
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = link_new(LINK_FD + (int) i, served[i].config, served[i].tc,
                             &served[i].link); /* takes config */
                if (r < 0)
                        log_error_errno(r, "Cannot set up the channel to the daemon: %m");
        }
        if (r < 0) {
                push_server_free(push);
                for (size_t i = 0; i < n; i++)
                        served_done(&served[i]);
                return 1;
        }
        if (push) {
                for (size_t i = 0; i < n; i++)
                        pt[i] = (PushTransmitter) {
                                .link = served[i].link,
                                .http = TAKE_PTR(served[i].http),
                                .authorization = served[i].authorization,
                                .oauth2 = served[i].oauth2,
                                .push_authorization = served[i].push_authorization,
                        };
                r = push_run(push, pt, n); /* takes push and each http */
        } else
                r = poller_run(served[0].link, TAKE_PTR(served[0].http), served[0].authorization,
                               served[0].oauth2); /* takes http */
        for (size_t i = 0; i < n; i++)
                served_done(&served[i]);
        return r < 0 ? 1 : 0;
}
