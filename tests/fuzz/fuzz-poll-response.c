/* SPDX-License-Identifier: MIT */
/* The RFC 8936 poll response the network worker parses (poller.c): {"sets": {jti: SET, …},
 * "moreAvailable": bool}, and the check of each delivered member before it is verified. The
 * transmitter (or whoever answers at its endpoint) controls these bytes completely. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jws.h"
#include "poller.h"
#include "set.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        PollResponse pr = { .more = true }, g = { .more = true };
        const char *jti, *why;
        json_t *v;
        int r, k;

        r = poller_parse_response((const char *) data, size, &pr);
        /* The common shape is read without jansson's lexer: the answer must be json_loadb()'s. */
        k = poller_parse_response_general((const char *) data, size, &g);
        if (k != r || (r >= 0 && (!json_equal(pr.root, g.root) || pr.more != g.more)))
                abort();
        poll_response_done(&g);
        if (r < 0) {
                if ((r != -EBADMSG && r != -EFBIG) || pr.root || pr.sets || !pr.more)
                        abort();
                return 0;
        }
        if (!json_is_object(pr.root) || !json_is_object(pr.sets) ||
            json_object_get(pr.root, "sets") != pr.sets ||
            pr.more != json_is_true(json_object_get(pr.root, "moreAvailable")))
                abort();

        json_object_foreach(pr.sets, jti, v) {
                why = NULL;
                r = poller_check_entry(jti, v, &why);
                if (r >= 0) {
                        /* What goes to set_verify() and into ack. */
                        if (strlen(jti) == 0 || strlen(jti) > SET_MAX_JTI || !json_is_string(v) ||
                            json_string_length(v) > JWS_MAX_SIZE ||
                            strlen(json_string_value(v)) != json_string_length(v))
                                abort();
                        for (const unsigned char *p = (const unsigned char *) jti; *p; p++)
                                if (*p < 0x20 || *p == 0x7f)
                                        abort();
                } else if (r != -EBADMSG || !why || strlen(why) == 0)
                        abort();
        }
        poll_response_done(&pr);
        if (pr.root || pr.sets)
                abort();
        return 0;
}
