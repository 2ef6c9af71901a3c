/* SPDX-License-Identifier: MIT */
/*
 * What the transmitter's management API answers, as the network worker parses it
 * (stream.c): the metadata document (SSF §7.1), a stream configuration (SSF §8.1.1), the list
 * of streams read after a 409, and the stream status (SSF §8.1.2.1). The rest of the input is
 * the response body; its first byte selects what it is taken for:
 *
 *   bits 0-1  0 metadata, 1 stream configuration, 2 list of streams, 3 status
 *   bits 2-3  metadata: the issuer we expect (none, or one of ISSUERS[1..3]);
 *             streams: the receiver's configuration (CONFIGS[])
 *   bit  4    streams: the transmitter's issuer (ISSUERS[1] or ISSUERS[2])
 *
 * e.g. '@' metadata, expecting no particular issuer; 'D' metadata from ISSUERS[1]; 'A' a poll
 * stream without configured audience; 'E' poll with audience; 'I' push; 'Q' a poll stream from
 * ISSUERS[2]; 'B' a list; 'C' a status.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "macro.h"
#include "stream.h"
#include "strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const ISSUERS[] = {
        NULL,
        "https://tr.example.com",
        "https://example.okta.com",
        "https://tr.example.com/",
};

#define RP_AUDIENCE "https://rp.example.com"
#define RP_PUSH_URL "https://rp.example.com/ssf/push"

static const TransmitterConfig CONFIGS[] = {
        { .delivery = DELIVERY_POLL },
        { .delivery = DELIVERY_POLL, .audience = UNCONST(RP_AUDIENCE) },
        { .delivery = DELIVERY_PUSH, .audience = UNCONST(RP_AUDIENCE), .push_url = UNCONST(RP_PUSH_URL) },
        { .delivery = DELIVERY_PUSH, .push_url = UNCONST(RP_PUSH_URL) },
};

static bool https(const char *s) {
        return s && strncmp(s, "https://", 8) == 0 && s[8];
}

static void check_metadata(const uint8_t *body, size_t len, const char *expected) {
        Transmitter t = {};
        json_t *md = NULL;
        char *const *m;
        int r;

        if (stream_parse_json((const char *) body, len, false, &md) < 0)
                return;
        if (!json_is_object(md))
                abort();
        /* What a failure must leave alone. */
        t.issuer = strdup("https://before.example.com");
        t.jwks_uri = strdup("https://before.example.com/jwks");
        if (!t.issuer || !t.jwks_uri)
                abort();

        r = stream_parse_metadata(md, expected, &t);
        if (r >= 0) {
                if (!https(t.issuer) || (expected && strcmp(t.issuer, expected) != 0) ||
                    !https(t.jwks_uri) || t.metadata != md)
                        abort();
                if ((t.configuration_endpoint && !https(t.configuration_endpoint)) ||
                    (t.status_endpoint && !https(t.status_endpoint)) ||
                    (t.verification_endpoint && !https(t.verification_endpoint)))
                        abort();
                if (strv_length(t.critical_subject_members) > 32)
                        abort();
                for (m = t.critical_subject_members; m && *m; m++) {
                        size_t n = strlen(*m);
                        if (n == 0 || n > 64 || strv_contains(m + 1, *m))
                                abort();
                        for (const unsigned char *p = (const unsigned char *) *m; *p; p++)
                                if (*p <= 0x20 || *p >= 0x7f)
                                        abort();
                }
        } else {
                if (r != -EBADMSG && r != -EPROTO && r != -ENOMEM)
                        abort();
                if (strcmp(t.issuer, "https://before.example.com") != 0 ||
                    strcmp(t.jwks_uri, "https://before.example.com/jwks") != 0 ||
                    t.configuration_endpoint || t.status_endpoint || t.verification_endpoint ||
                    t.critical_subject_members || t.metadata)
                        abort();
        }
        transmitter_done(&t);
        json_decref(md);
}

/* One stream configuration, as stream_ensure() adopts it. */
static void check_stream(json_t *s, const TransmitterConfig *c, const char *issuer) {
        Transmitter t = {};
        const char *id;
        int r;

        t.issuer = strdup(issuer);
        if (!t.issuer)
                abort();
        r = stream_adopt(c, &t, s);
        if (r >= 0) {
                id = json_string_value(json_object_get(s, "stream_id"));
                if (!id || !t.stream_id || strcmp(id, t.stream_id) != 0 ||
                    strlen(t.stream_id) == 0 || strlen(t.stream_id) > 256)
                        abort();
                if (strcmp(json_string_value(json_object_get(s, "iss")), issuer) != 0)
                        abort();
                if (!https(t.endpoint_url) || !t.audience ||
                    (c->audience && strcmp(t.audience, c->audience) != 0))
                        abort();
                if (c->delivery == DELIVERY_PUSH && strcmp(t.endpoint_url, c->push_url) != 0)
                        abort();
                if (t.min_verification_interval > 366u * 24u * 3600u ||
                    t.inactivity_timeout_usec > 366ull * 24u * 3600u * 1000000u ||
                    t.inactivity_timeout_usec % 1000000u != 0 || t.stream != s)
                        abort();
        } else if (r != -EBADMSG && r != -EPROTO && r != -ENOMEM)
                abort();
        else if (r != -ENOMEM && (t.stream || t.stream_id || t.endpoint_url))
                abort();
        transmitter_done(&t);
}

static void check_streams(const uint8_t *body, size_t len, bool list, const TransmitterConfig *c,
                          const char *issuer) {
        json_t *j = NULL, *v;
        size_t i;

        if (stream_parse_json((const char *) body, len, list, &j) < 0)
                return;
        if (list ? !json_is_array(j) : !json_is_object(j))
                abort();
        if (!list)
                check_stream(j, c, issuer);
        else
                json_array_foreach(j, i, v)
                        check_stream(v, c, issuer);
        json_decref(j);
}

static void check_status(const uint8_t *body, size_t len) {
        char *status = (char *) 1, *reason = (char *) 1;
        json_t *o = NULL;
        int r;

        if (stream_parse_json((const char *) body, len, false, &o) < 0)
                return;
        r = stream_parse_status(o, &status, &reason);
        if (r >= 0) {
                if (!status || (strcmp(status, "enabled") != 0 && strcmp(status, "paused") != 0 &&
                                strcmp(status, "disabled") != 0))
                        abort();
                if (reason && (strlen(reason) > 256 || strpbrk(reason, "\r\n\t")))
                        abort();
                free(status);
                free(reason);
        } else if (r != -EBADMSG && r != -ENOMEM)
                abort();
        json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        unsigned sel;

        if (size < 1)
                return 0;
        log_set_max_level(LOG_CRIT); /* refusals are logged as errors; keep the output quiet */
        sel = data[0];
        data++;
        size--;

        switch (sel & 3u) {
        case 0:
                check_metadata(data, size, ISSUERS[(sel >> 2) & 3u]);
                break;
        case 1:
        case 2:
                check_streams(data, size, (sel & 3u) == 2, &CONFIGS[(sel >> 2) & 3u],
                              ISSUERS[1 + ((sel >> 4) & 1u)]);
                break;
        default:
                check_status(data, size);
                break;
        }
        return 0;
}
