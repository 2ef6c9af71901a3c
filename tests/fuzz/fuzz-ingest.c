/* SPDX-License-Identifier: MIT */
/* The privileged daemon's parser of what the network worker sends it: a channel datagram is
 * decoded as JSON (as link_recv() does) and its "request" member as an IngestRequest. A
 * compromised worker controls these bytes completely. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ingest.h"
#include "link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        IngestRequest r = {};
        json_t *j, *again;

        if (size > LINK_MAX_FRAME)
                return 0;
        j = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, NULL);
        if (!j)
                return 0;
        if (ingest_from_json(json_object_get(j, "request"), &r) >= 0) {
                /* Whatever was accepted serialises and parses back to the same record. */
                IngestRequest r2 = {};
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
