/* SPDX-License-Identifier: MIT */
/*
 * Preparing the record for one verified SET (ingest-prepare.h): the facts root derives the
 * rest from, checked to be what root will take. Runs in the unprivileged network worker.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ingest-prepare.h"
#include "log.h"
#include "macro.h"
#include "strv.h"

/* An optional, informational string (txn, a stream-updated reason) the daemon would not
 * record: left out rather than have the whole event refused. */
static const char *recordable_or_null(const char *s, const char *what, const char *jti) {
        if (s && (strlen(s) > INGEST_MAX_STRING || !ingest_printable(s))) {
                log_debug("SET '%s': %s too long or with control characters, left out", jti,
                          what);
                return NULL;
        }
        return s;
}

static int dup_opt(const char *s, char **ret) {
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int ingest_prepare(const Config *c, char *const *critical, const SsfSet *set, IngestRequest *ret,
                   SetError *err) {
        IngestRequest r = {};
        int k;

        if (dup_opt(set->jti, &r.jti) < 0 || dup_opt(set->iss, &r.iss) < 0 ||
            dup_opt(recordable_or_null(set->txn, "txn", set->jti), &r.txn) < 0 ||
            dup_opt(set->event_uri, &r.event_uri) < 0)
                goto oom;
        r.iat = set->iat;
        r.event_time = set->event_time;
        /* The text that was signed, when the claims are still what it says; else they were
         * rewritten (set.c) and are serialised as they are now. */
        r.claims_json = set->claims_text ? strdup(set->claims_text)
                                         : json_dumps(set->claims, JSON_COMPACT);
        if (!r.claims_json)
                goto oom;

        if (streq(set->event_uri, SSF_EVENT_VERIFICATION) ||
            streq(set->event_uri, SSF_EVENT_STREAM_UPDATED)) {
                const char *id = json_string_value(json_object_get(set->subject, "id"));

                if (dup_opt(id, &r.stream_id) < 0)
                        goto oom;
                if (streq(set->event_uri, SSF_EVENT_VERIFICATION)) {
                        r.kind = INGEST_VERIFICATION;
                        if (dup_opt(json_string_value(json_object_get(set->event, "state")),
                                    &r.state) < 0)
                                goto oom;
                } else {
                        const char *status = json_string_value(json_object_get(set->event,
                                                                               "status"));
                        r.kind = INGEST_STREAM_UPDATED;
                        if (!status || (!streq(status, "enabled") && !streq(status, "paused") &&
                                        !streq(status, "disabled"))) {
                                err->err = "invalid_request";
                                (void) snprintf(err->description, sizeof(err->description),
                                                "stream-updated without a valid status");
                                ingest_request_done(&r);
                                return -EBADMSG;
                        }
                        if (dup_opt(status, &r.status) < 0 ||
                            dup_opt(recordable_or_null(json_string_value(json_object_get(
                                                                       set->event, "reason")),
                                                               "reason", set->jti),
                                    &r.reason) < 0)
                                goto oom;
                }
                goto done;
        }

        /* A subject event: its members and subject as they are; root classifies the event
         * and maps the subject itself. */
        r.kind = INGEST_SUBJECT;
        r.event = json_incref(set->event);
        r.subject = json_incref(set->subject);
        for (char *const *m = critical; m && *m; m++)
                if (strv_extend(&r.critical, *m) < 0)
                        goto oom;
done:
        /* What the daemon would refuse (a jti with control characters, say) is refused here,
         * as the SET's fault: else it would come back again and again. */
        k = ingest_check(&r);
        if (k < 0) {
                err->err = "invalid_request";
                (void) snprintf(err->description, sizeof(err->description),
                                k == -E2BIG ? INGEST_PAST_BOUNDS
                                            : "a claim this receiver records is too long or has "
                                              "control characters");
                ingest_request_done(&r);
                return k;
        }
        *ret = r;
        return 0;
oom:
        ingest_request_done(&r);
        return -ENOMEM;
}
