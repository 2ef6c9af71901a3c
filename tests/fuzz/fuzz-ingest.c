/* SPDX-License-Identifier: MIT */
/* The privileged daemon's parsers of what the network worker sends it: a channel datagram is
 * decoded as JSON (as link_recv() does) and its "request" member as an IngestRequest; the same
 * bytes are read as the binary records of an ingest-batch frame's attachment (ingest.h), one
 * after the other. A compromised worker controls these bytes completely. Whatever either
 * accepts is written again and read back the same, and passes the worker's own check of a
 * record (ingest_check()), which must never refuse what root takes. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ingest.h"
#include "link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const IngestRequest *a, const IngestRequest *b) {
        return a->kind == b->kind && strcmp(a->jti, b->jti) == 0 && strcmp(a->iss, b->iss) == 0 &&
               a->iat == b->iat && a->event_time == b->event_time &&
               !a->claims_json == !b->claims_json &&
               (!a->claims_json || strcmp(a->claims_json, b->claims_json) == 0) &&
               !a->event == !b->event && (!a->event || json_equal(a->event, b->event)) &&
               !a->subject == !b->subject && (!a->subject || json_equal(a->subject, b->subject));
}

static void binary_records(const uint8_t *data, size_t size) {
        const char *p = (const char *) data;
        size_t left = size;

        while (left > 0) {
                IngestRequest r = {}, back = {};
                size_t before = left, len = 0;
                int k = ingest_record_take(&p, &left, &r);

                if (k != 0 && k != -E2BIG && k != -EBADMSG && k != -ENOMEM)
                        abort();
                if (k == 0 || k == -E2BIG) {
                        /* It used its bytes, and nothing past them. */
                        if (left >= before || p != (const char *) data + (size - left))
                                abort();
                }
                if (k == 0) {
                        size_t cap = 2 * before + 4096;
                        char *buf = malloc(cap);
                        const char *q = buf;
                        size_t qleft;

                        if (ingest_check(&r) != 0)
                                abort();
                        if (buf && ingest_record_put(&r, buf, cap, &len) == 0) {
                                qleft = len;
                                if (ingest_record_take(&q, &qleft, &back) != 0 || qleft != 0 ||
                                    !same(&r, &back))
                                        abort();
                                ingest_request_done(&back);
                        }
                        free(buf);
                        ingest_request_done(&r);
                }
                if (k != 0 && k != -E2BIG)
                        return;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        IngestRequest r = {};
        json_t *j, *again;

        if (size > LINK_MAX_FRAME)
                return 0;
        binary_records(data, size);
        j = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, NULL);
        if (!j)
                return 0;
        if (ingest_from_json(json_object_get(j, "request"), &r) >= 0) {
                /* Whatever was accepted serialises and parses back to the same record. */
                IngestRequest r2 = {};

                if (ingest_check(&r) != 0)
                        abort();
                again = ingest_to_json(&r);
                if (!again || ingest_from_json(again, &r2) < 0)
                        abort();
                if (strcmp(r.jti, r2.jti) != 0 || r.kind != r2.kind ||
                    !json_equal(r.event, r2.event) != !r.event ||
                    (r.subject && !json_equal(r.subject, r2.subject)))
                        abort();
                ingest_request_done(&r2);
                json_decref(again);
                ingest_request_done(&r);
        }
        json_decref(j);
        return 0;
}
