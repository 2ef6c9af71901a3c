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

int worker_main(const char *config_path, const char *transmitter_name) {
        _cleanup_erase_free_ char *authorization = NULL, *push_authorization = NULL;
        _cleanup_(oauth2_client_freep) OAuth2Client *oauth2 = NULL;
        HttpClient *http = NULL;
        PushServer *push = NULL;
        const TransmitterConfig *tc = NULL;
        Config *config = NULL;
        Link *link = NULL;
        int type = 0, r;
        socklen_t len = sizeof(type);

        if (getsockopt(LINK_FD, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET) {
                log_error("--network-worker is started by ssf-sessiond itself, with its channel "
                          "on fd %d", LINK_FD);
                return 2;
        }
        (void) fcntl(LINK_FD, F_SETFD, FD_CLOEXEC);
        if (chdir("/") < 0)
                return log_error_errno(errno, "chdir: %m"), 1;

        /* Everything that needs root happens before the drop. The daemon loaded and checked the
         * same configuration a moment ago and logged its warnings: only errors here. */
        {
                int level = log_get_max_level();

                log_set_max_level(MIN(level, LOG_ERR));
                r = config_load(config_path, false, &config);
                log_set_max_level(level);
        }
        if (r < 0)
                return 1;
        /* Root names the transmitter this worker serves; without a name, the only one. */
        tc = transmitter_name ? config_transmitter(config, transmitter_name)
                              : config_transmitter_main(config);
        if (!tc) {
                log_error("No transmitter named '%s' (or several and none named default) in %s",
                          transmitter_name ? transmitter_name : "(none)",
                          config_path);
                config_free(config);
                return 1;
        }
        if (tc->stream == STREAM_NONE)
                /* No stream API: no credentials for one; the exact Authorization the
                 * transmitter's pushes carry instead. */
                r = secret_read_header_file(tc->push_authorization_file, "push authorization file",
                                            &push_authorization);
        else
                r = stream_load_authorization(tc, &authorization);
        if (r >= 0 && tc->stream != STREAM_NONE && tc->auth == AUTH_OAUTH2)
                r = oauth2_client_new(tc, &oauth2); /* reads the client secret */
        if (r >= 0) {
                r = http_client_new(tc->ca_file, &http); /* reads ca_file */
                if (r < 0)
                        log_error_errno(r, "Cannot create the HTTPS client: %m");
        }
        if (r >= 0 && tc->tls_client_cert && tc->tls_client_key)
                /* reads the client certificate and key (logs its errors) */
                r = http_client_set_client_cert(http, tc->tls_client_cert, tc->tls_client_key);
        if (r >= 0) {
                r = http_client_set_proxy(http, tc->proxy);
                if (r < 0)
                        log_error_errno(r, "Cannot use the proxy '%s': %m", tc->proxy);
        }
        if (r >= 0 && tc->delivery == DELIVERY_PUSH) {
                /* reads push_cert and push_key, binds push_listen (ports < 1024 work) */
                r = push_server_new(tc, &push);
                if (r < 0)
                        log_error_errno(r, "Cannot set up the push listener: %m");
        }
        if (r < 0) {
                http_client_free(http);
                config_free(config);
                return 1;
        }
        r = drop_privileges();
        if (r >= 0)
                /* From here on: no new files for writing, no programs, no processes. */
                r = sandbox_apply();
        if (r < 0) {
                push_server_free(push);
                http_client_free(http);
                config_free(config);
                return 1;
        }

        r = link_new(LINK_FD, config, tc, &link); /* takes config */
        if (r < 0) {
                log_error_errno(r, "Cannot set up the channel to the daemon: %m");
                push_server_free(push);
                http_client_free(http);
                config_free(config);
                return 1;
        }
        if (push)
                r = push_run(link, http, authorization, oauth2, push,
                             push_authorization); /* takes http, push */
        else
                r = poller_run(link, http, authorization, oauth2); /* takes http */
        link_free(link);
        return r < 0 ? 1 : 0;
}
