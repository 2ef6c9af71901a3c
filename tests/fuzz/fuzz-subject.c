/* SPDX-License-Identifier: MIT */
/* Subject identifier -> local users (no map_file: the input is the subject JSON), and the
 * check of a subject an admin gives (subject_parse_admin()). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "config.h"
#include "subject.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char *domains[] = { (char *) (uintptr_t) "example.com", NULL };
        static char *critical[] = { (char *) (uintptr_t) "user", (char *) (uintptr_t) "device",
                                    (char *) (uintptr_t) "tenant", NULL };
        static const SubjectMap maps[] = { SUBJECT_MAP_EMAIL_LOCALPART, SUBJECT_MAP_EMAIL, SUBJECT_MAP_ISS_SUB,
                                           SUBJECT_MAP_OPAQUE };
        json_t *j;
        char error[256];

        if (size > 64 * 1024)
                return 0;
        /* The same bytes as an admin's `ssfctl subjects add '{…}'`. */
        error[0] = 0;
        if (subject_parse_admin((const char *) data, size, &j, error, sizeof(error)) == 0) {
                if (!json_is_object(j))
                        abort();
                json_decref(j);
        } else if (!error[0])
                abort();
        j = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, NULL);
        if (!j)
                return 0;
        for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
                Config c = { .map = maps[i], .domains = domains, .device_id = (char *) (uintptr_t) "host-1",
                             .device_scope = i % 2 ? DEVICE_SCOPE_THIS_HOST : DEVICE_SCOPE_ANY };
                SubjectMatch m = {};

                if (subject_resolve(&c, j, &m) == 0) {
                        if (!m.users || !m.description || m.discarded)
                                abort();
                        /* Another device than this host's: only with device_scope = this-host. */
                        if (m.not_here && (c.device_scope != DEVICE_SCOPE_THIS_HOST || m.host_wide))
                                abort();
                        subject_match_done(&m);
                }
                /* The same with critical members (SSF §3.6); a device_id-less config too. */
                if (i % 2)
                        c.device_id = NULL;
                if (subject_resolve_critical(&c, j, critical, &m) == 0) {
                        if (!m.users || !m.description || (m.discarded && (m.users[0] || m.host_wide)))
                                abort();
                        subject_match_done(&m);
                }
        }
        json_decref(j);
        return 0;
}
