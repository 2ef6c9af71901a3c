/* SPDX-License-Identifier: MIT */
/* SSF §7.2 discovery URLs, the event vocabulary a stream asks for, and the parsers of what the
 * transmitter's management API answers: metadata, stream configurations, stream status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "stream.h"
#include "strv.h"

#define TR "https://tr.example.com"
#define OKTA "https://example.okta.com"
#define RP "https://rp.example.com"
#define PUSH_URL RP "/ssf/push"

static void expect_url(const char *issuer, const char *config_url, const char *want) {
        TransmitterConfig c = { .issuer = UNCONST(issuer),
                     .config_url = UNCONST(config_url) };
        char *url = NULL;

        assert_int_equal(stream_discovery_url(&c, &url), 0);
        assert_string_equal(url, want);
        free(url);
}

static void test_discovery_url(void **state) {
        /* The well-known segment goes between host and path; a trailing '/' is dropped. */
        expect_url("https://tr.example.com", NULL, "https://tr.example.com/.well-known/ssf-configuration");
        expect_url("https://tr.example.com/", NULL, "https://tr.example.com/.well-known/ssf-configuration");
        expect_url("https://tr.example.com/issuer1", NULL,
                   "https://tr.example.com/.well-known/ssf-configuration/issuer1");
        expect_url("https://tr.example.com:8443/a/b/", NULL,
                   "https://tr.example.com:8443/.well-known/ssf-configuration/a/b");
        /* The vendor's "SSF Well-Known URL" is used as given. */
        expect_url("https://tr.example.com", "https://tr.example.com/.well-known/ssf-configuration/x",
                   "https://tr.example.com/.well-known/ssf-configuration/x");
}

static void test_discovery_url_needs_https(void **state) {
        TransmitterConfig c = { .issuer = UNCONST("http://tr.example.com") };
        char *url = NULL;

        assert_int_equal(stream_discovery_url(&c, &url), -EINVAL);
        assert_null(url);
}

static void test_events_requested(void **state) {
        char *names[] = { UNCONST("opt-out"), UNCONST("session-revoked"), NULL };
        char *none[] = { UNCONST("verification"), NULL };
        json_t *all = stream_events_requested(NULL), *some = stream_events_requested(names);
        json_t *empty = stream_events_requested(none);
        size_t i;
        json_t *v;

        /* events = all: every detection, and nothing that is not one (Okta's ip-change). */
        assert_non_null(all);
        assert_int_equal(json_array_size(all), 24);
        json_array_foreach(all, i, v)
                assert_null(strstr(json_string_value(v), "ip-change"));
        assert_string_equal(json_string_value(json_array_get(all, 0)),
                            "https://schemas.openid.net/secevent/caep/event-type/session-revoked");
        /* A name and a family, in the table's order. */
        assert_non_null(some);
        assert_int_equal(json_array_size(some), 4);
        assert_string_equal(json_string_value(json_array_get(some, 0)),
                            "https://schemas.openid.net/secevent/caep/event-type/session-revoked");
        assert_string_equal(json_string_value(json_array_get(some, 1)),
                            "https://schemas.openid.net/secevent/risc/event-type/opt-out-initiated");
        assert_string_equal(json_string_value(json_array_get(some, 3)),
                            "https://schemas.openid.net/secevent/risc/event-type/opt-out-effective");
        assert_int_equal(json_array_size(empty), 0);
        json_decref(all);
        json_decref(some);
        json_decref(empty);
}

/* ---- stream_parse_json ---------------------------------------------------------------------- */

static int parse(const char *text, bool want_array, json_t **ret) {
        return stream_parse_json(text, text ? strlen(text) : 0, want_array, ret);
}

static void test_parse_json(void **state) {
        json_t *j = NULL;
        char *big;

        assert_int_equal(parse("{\"a\":1}", false, &j), 0);
        assert_true(json_is_object(j));
        json_decref(j);
        j = NULL;
        assert_int_equal(parse("[{}]", true, &j), 0);
        assert_true(json_is_array(j));
        json_decref(j);
        j = NULL;

        assert_int_equal(parse(NULL, false, &j), -EBADMSG);
        assert_int_equal(parse("", false, &j), -EBADMSG);
        assert_int_equal(parse("[]", false, &j), -EBADMSG);
        assert_int_equal(parse("{}", true, &j), -EBADMSG);
        assert_int_equal(parse("\"x\"", false, &j), -EBADMSG);
        assert_int_equal(parse("{\"a\":1,\"a\":2}", false, &j), -EBADMSG);
        assert_int_equal(parse("{\"a\":1", false, &j), -EBADMSG);
        assert_int_equal(parse("<html></html>", false, &j), -EBADMSG);
        assert_null(j);

        /* 256 KiB at most. */
        big = malloc(256u * 1024u + 2);
        assert_non_null(big);
        memset(big, ' ', 256u * 1024u + 1);
        big[0] = '{';
        big[256u * 1024u - 1] = '}';
        big[256u * 1024u + 1] = 0;
        assert_int_equal(stream_parse_json(big, 256u * 1024u, false, &j), 0);
        json_decref(j);
        j = NULL;
        big[256u * 1024u - 1] = ' ';
        big[256u * 1024u] = '}';
        assert_int_equal(stream_parse_json(big, 256u * 1024u + 1, false, &j), -EBADMSG);
        assert_null(j);
        free(big);
}

/* ---- stream_parse_metadata ------------------------------------------------------------------ */

#define OURS_METADATA                                                                             \
        "{\"spec_version\":\"1_0\",\"issuer\":\"" TR "\",\"jwks_uri\":\"" TR "/ssf/jwks.json\","   \
        "\"delivery_methods_supported\":[\"urn:ietf:rfc:8936\",\"urn:ietf:rfc:8935\"],"             \
        "\"configuration_endpoint\":\"" TR "/ssf/stream\",\"status_endpoint\":\"" TR "/ssf/status\"," \
        "\"verification_endpoint\":\"" TR "/ssf/verify\",\"default_subjects\":\"ALL\""

static int metadata(const char *text, const char *expected, Transmitter *t) {
        json_t *md = NULL;
        int r;

        r = parse(text, false, &md);
        if (r < 0)
                return r;
        r = stream_parse_metadata(md, expected, t);
        json_decref(md);
        return r;
}

static void test_metadata_ours(void **state) {
        Transmitter t = {};

        assert_int_equal(metadata(OURS_METADATA ",\"critical_subject_members\":[\"user\",\"tenant\","
                                  "\"user\"]}", TR, &t), 0);
        assert_string_equal(t.issuer, TR);
        assert_string_equal(t.jwks_uri, TR "/ssf/jwks.json");
        assert_string_equal(t.configuration_endpoint, TR "/ssf/stream");
        assert_string_equal(t.status_endpoint, TR "/ssf/status");
        assert_string_equal(t.verification_endpoint, TR "/ssf/verify");
        /* Duplicates dropped, order kept. */
        assert_int_equal(strv_length(t.critical_subject_members), 2);
        assert_string_equal(t.critical_subject_members[0], "user");
        assert_string_equal(t.critical_subject_members[1], "tenant");
        assert_non_null(t.metadata);
        assert_int_equal(json_array_size(json_object_get(t.metadata, "delivery_methods_supported")), 2);

        /* Read again (a restart of the setup): replaced, critical members gone. */
        assert_int_equal(metadata(OURS_METADATA "}", NULL, &t), 0);
        assert_null(t.critical_subject_members);
        transmitter_done(&t);
}

static void test_metadata_okta(void **state) {
        Transmitter t = {};

        assert_int_equal(metadata("{\"issuer\":\"" OKTA "\",\"jwks_uri\":\"" OKTA "/oauth2/v1/keys\","
                                  "\"configuration_endpoint\":\"" OKTA "/api/v1/ssf/stream\","
                                  "\"status_endpoint\":\"" OKTA "/api/v1/ssf/stream/status\","
                                  "\"verification_endpoint\":\"" OKTA "/api/v1/ssf/stream/verification\","
                                  "\"delivery_methods_supported\":[\"https://schemas.openid.net/secevent/"
                                  "risc/delivery-method/push\",\"urn:ietf:rfc:8935\"]}", OKTA, &t), 0);
        assert_string_equal(t.configuration_endpoint, OKTA "/api/v1/ssf/stream");
        assert_string_equal(t.status_endpoint, OKTA "/api/v1/ssf/stream/status");
        assert_string_equal(t.verification_endpoint, OKTA "/api/v1/ssf/stream/verification");
        transmitter_done(&t);

        /* Only issuer and jwks_uri are required; null endpoints are absent ones. */
        assert_int_equal(metadata("{\"issuer\":\"" TR "\",\"jwks_uri\":\"" TR "/j\","
                                  "\"status_endpoint\":null,\"configuration_endpoint\":null}", TR, &t),
                         0);
        assert_null(t.configuration_endpoint);
        assert_null(t.status_endpoint);
        assert_null(t.verification_endpoint);
        transmitter_done(&t);
}

static void test_metadata_refused(void **state) {
        Transmitter t = {};

        t.issuer = strdup(TR);
        t.jwks_uri = strdup(TR "/old-jwks");
        assert_non_null(t.issuer);
        assert_non_null(t.jwks_uri);

        /* SSF §7.2.4: identical to the issuer we used, byte for byte. */
        assert_int_equal(metadata(OURS_METADATA "}", TR "/", &t), -EPROTO);
        assert_int_equal(metadata(OURS_METADATA "}", OKTA, &t), -EPROTO);
        assert_int_equal(metadata("{\"issuer\":\"http://tr.example.com\",\"jwks_uri\":\"" TR "/j\"}",
                                  NULL, &t), -EBADMSG);
        assert_int_equal(metadata("{\"issuer\":\"https://\",\"jwks_uri\":\"" TR "/j\"}", NULL, &t),
                         -EBADMSG);
        assert_int_equal(metadata("{\"jwks_uri\":\"" TR "/j\"}", NULL, &t), -EBADMSG);
        assert_int_equal(metadata("{\"issuer\":[\"" TR "\"],\"jwks_uri\":\"" TR "/j\"}", NULL, &t),
                         -EBADMSG);
        /* Endpoints: https URLs or nothing. */
        assert_int_equal(metadata("{\"issuer\":\"" TR "\"}", TR, &t), -EBADMSG);
        assert_int_equal(metadata("{\"issuer\":\"" TR "\",\"jwks_uri\":null}", TR, &t), -EBADMSG);
        assert_int_equal(metadata("{\"issuer\":\"" TR "\",\"jwks_uri\":\"http://tr.example.com/j\"}",
                                  TR, &t), -EBADMSG);
        assert_int_equal(metadata(OURS_METADATA ",\"status_endpoint\":443}", TR, &t), -EBADMSG);
        assert_int_equal(metadata("{\"issuer\":\"" TR "\",\"jwks_uri\":\"" TR "/j\","
                                  "\"configuration_endpoint\":\"ftp://tr.example.com/s\"}", TR, &t),
                         -EBADMSG);
        assert_int_equal(metadata("{\"issuer\":\"" TR "\",\"jwks_uri\":\"" TR "/j\","
                                  "\"verification_endpoint\":\"\"}", TR, &t), -EBADMSG);
        /* Not JSON objects. */
        assert_int_equal(metadata("[" OURS_METADATA "}]", TR, &t), -EBADMSG);
        assert_int_equal(stream_parse_metadata(NULL, TR, &t), -EBADMSG);

        /* Nothing of it was taken. */
        assert_string_equal(t.issuer, TR);
        assert_string_equal(t.jwks_uri, TR "/old-jwks");
        assert_null(t.configuration_endpoint);
        assert_null(t.status_endpoint);
        assert_null(t.metadata);
        transmitter_done(&t);
}

static void test_metadata_critical_invalid(void **state) {
        static const char *const bad[] = {
                "\"user\"",
                "[\"user\",\"has space\"]",
                "[\"user\",\"\"]",
                "[\"user\",7]",
                "[\"user\",\"\\u00e9\"]",
                "[\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\","
                "\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\","
                "\"x\",\"x\",\"x\"]", /* 33 */
        };
        Transmitter t = {};
        char text[1024], name[66];

        /* The transmitter's critical members are then unknown: accepted, without them. */
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                snprintf(text, sizeof(text), OURS_METADATA ",\"critical_subject_members\":%s}", bad[i]);
                assert_int_equal(metadata(text, TR, &t), 0);
                assert_null(t.critical_subject_members);
                transmitter_done(&t);
        }
        assert_int_equal(metadata(OURS_METADATA ",\"critical_subject_members\":[]}", TR, &t), 0);
        assert_null(t.critical_subject_members);
        transmitter_done(&t);
        /* Member names: 1..64 bytes. */
        memset(name, 'm', sizeof(name) - 1);
        name[65] = 0;
        snprintf(text, sizeof(text), OURS_METADATA ",\"critical_subject_members\":[\"%s\"]}", name);
        assert_int_equal(metadata(text, TR, &t), 0);
        assert_null(t.critical_subject_members);
        transmitter_done(&t);
        name[64] = 0;
        snprintf(text, sizeof(text), OURS_METADATA ",\"critical_subject_members\":[\"%s\"]}", name);
        assert_int_equal(metadata(text, TR, &t), 0);
        assert_int_equal(strv_length(t.critical_subject_members), 1);
        assert_int_equal(strlen(t.critical_subject_members[0]), 64);
        transmitter_done(&t);
}

/* ---- stream_adopt --------------------------------------------------------------------------- */

#define STREAM_HEAD "{\"stream_id\":\"f67e39a0\",\"iss\":\"" TR "\","
#define POLL_DELIVERY "\"delivery\":{\"method\":\"urn:ietf:rfc:8936\",\"endpoint_url\":\"" TR "/poll/f67e39a0\"}"

static const TransmitterConfig poll_any = { .delivery = DELIVERY_POLL };
static const TransmitterConfig poll_rp = { .delivery = DELIVERY_POLL, .audience = UNCONST(RP) };
static const TransmitterConfig push_rp = { .delivery = DELIVERY_PUSH, .audience = UNCONST(RP),
                                .push_url = UNCONST(PUSH_URL) };

static int adopt(const TransmitterConfig *c, const char *text, Transmitter *t) {
        json_t *s = NULL;
        int r;

        if (!t->issuer)
                t->issuer = strdup(TR);
        assert_non_null(t->issuer);
        r = parse(text, false, &s);
        assert_int_equal(r, 0);
        r = stream_adopt(c, t, s);
        if (r >= 0)
                assert_ptr_equal(t->stream, s);
        json_decref(s);
        return r;
}

static void test_adopt_poll(void **state) {
        Transmitter t = {};

        /* Our transmitter: aud as a string, intervals. */
        assert_int_equal(adopt(&poll_rp, STREAM_HEAD "\"aud\":\"" RP "\"," POLL_DELIVERY ","
                               "\"events_delivered\":[],\"min_verification_interval\":15,"
                               "\"inactivity_timeout\":3600}", &t), 0);
        assert_string_equal(t.stream_id, "f67e39a0");
        assert_string_equal(t.endpoint_url, TR "/poll/f67e39a0");
        assert_string_equal(t.audience, RP);
        assert_int_equal(t.min_verification_interval, 15);
        assert_int_equal(t.inactivity_timeout_usec, 3600ull * 1000000u);
        transmitter_done(&t);

        /* aud as an array: it must contain the configured audience … */
        assert_int_equal(adopt(&poll_rp, STREAM_HEAD "\"aud\":[\"https://other\",\"" RP "\"],"
                               POLL_DELIVERY "}", &t), 0);
        assert_string_equal(t.audience, RP);
        assert_int_equal(t.min_verification_interval, 0);
        assert_int_equal(t.inactivity_timeout_usec, 0);
        transmitter_done(&t);
        /* … or, without one configured, its first member is the one SETs must carry. */
        assert_int_equal(adopt(&poll_any, STREAM_HEAD "\"aud\":[\"https://first\",\"" RP "\"],"
                               POLL_DELIVERY "}", &t), 0);
        assert_string_equal(t.audience, "https://first");
        transmitter_done(&t);
        /* No aud at all: the configured audience. */
        assert_int_equal(adopt(&poll_rp, STREAM_HEAD POLL_DELIVERY "}", &t), 0);
        assert_string_equal(t.audience, RP);
        transmitter_done(&t);

        /* Legacy (RISC, SSE) poll method URIs. */
        assert_int_equal(adopt(&poll_any, STREAM_HEAD "\"aud\":\"" RP "\",\"delivery\":{\"method\":"
                               "\"https://schemas.openid.net/secevent/risc/delivery-method/poll\","
                               "\"endpoint_url\":\"" TR "/poll\"}}", &t), 0);
        transmitter_done(&t);
        assert_int_equal(adopt(&poll_any, STREAM_HEAD "\"aud\":\"" RP "\",\"delivery\":{\"method\":"
                               "\"https://schemas.openid.net/secevent/sse/delivery-method/poll\","
                               "\"endpoint_url\":\"" TR "/poll\"}}", &t), 0);
        transmitter_done(&t);

        /* Intervals out of range or of the wrong type are ignored, not refused. */
        assert_int_equal(adopt(&poll_rp, STREAM_HEAD POLL_DELIVERY ",\"min_verification_interval\":-1,"
                               "\"inactivity_timeout\":1000000000000}", &t), 0);
        assert_int_equal(t.min_verification_interval, 0);
        assert_int_equal(t.inactivity_timeout_usec, 0);
        transmitter_done(&t);
        assert_int_equal(adopt(&poll_rp, STREAM_HEAD POLL_DELIVERY ",\"min_verification_interval\":"
                               "\"15\",\"inactivity_timeout\":31622400}", &t), 0);
        assert_int_equal(t.min_verification_interval, 0);
        assert_int_equal(t.inactivity_timeout_usec, 31622400ull * 1000000u);
        transmitter_done(&t);
}

static void test_adopt_push(void **state) {
        Transmitter t = {};

        assert_int_equal(adopt(&push_rp, STREAM_HEAD "\"aud\":\"" RP "\",\"delivery\":{\"method\":"
                               "\"urn:ietf:rfc:8935\",\"endpoint_url\":\"" PUSH_URL "\","
                               "\"authorization_header\":\"Bearer s\"}}", &t), 0);
        assert_string_equal(t.endpoint_url, PUSH_URL);
        transmitter_done(&t);
        /* Okta's legacy RISC push method. */
        assert_int_equal(adopt(&push_rp, STREAM_HEAD "\"aud\":\"" RP "\",\"delivery\":{\"method\":"
                               "\"https://schemas.openid.net/secevent/risc/delivery-method/push\","
                               "\"endpoint_url\":\"" PUSH_URL "\"}}", &t), 0);
        transmitter_done(&t);
        /* Push to another URL, or poll, is not what we asked for. */
        assert_int_equal(adopt(&push_rp, STREAM_HEAD "\"aud\":\"" RP "\",\"delivery\":{\"method\":"
                               "\"urn:ietf:rfc:8935\",\"endpoint_url\":\"" RP "/other\"}}", &t),
                         -EPROTO);
        assert_int_equal(adopt(&push_rp, STREAM_HEAD "\"aud\":\"" RP "\"," POLL_DELIVERY "}", &t),
                         -EPROTO);
        assert_int_equal(adopt(&poll_rp, STREAM_HEAD "\"aud\":\"" RP "\",\"delivery\":{\"method\":"
                               "\"urn:ietf:rfc:8935\",\"endpoint_url\":\"" PUSH_URL "\"}}", &t),
                         -EPROTO);
        assert_null(t.stream_id);
        transmitter_done(&t);
}

static void test_adopt_refused(void **state) {
        Transmitter t = {};
        char text[1024];

        /* stream_id: 1..256 bytes. */
        assert_int_equal(adopt(&poll_rp, "{\"iss\":\"" TR "\"," POLL_DELIVERY "}", &t), -EBADMSG);
        assert_int_equal(adopt(&poll_rp, "{\"stream_id\":\"\",\"iss\":\"" TR "\"," POLL_DELIVERY "}", &t),
                         -EBADMSG);
        assert_int_equal(adopt(&poll_rp, "{\"stream_id\":7,\"iss\":\"" TR "\"," POLL_DELIVERY "}", &t),
                         -EBADMSG);
        assert_int_equal(adopt(&poll_rp, "{\"stream_id\":\"a\\u0001b\",\"iss\":\"" TR "\","
                                         POLL_DELIVERY "}", &t), -EBADMSG);
        snprintf(text, sizeof(text), "{\"stream_id\":\"%0257d\",\"iss\":\"" TR "\"," POLL_DELIVERY "}", 0);
        assert_int_equal(adopt(&poll_rp, text, &t), -EBADMSG);
        snprintf(text, sizeof(text), "{\"stream_id\":\"%0256d\",\"iss\":\"" TR "\"," POLL_DELIVERY "}", 0);
        assert_int_equal(adopt(&poll_rp, text, &t), 0);
        transmitter_done(&t);

        /* iss: the transmitter's issuer. */
        assert_int_equal(adopt(&poll_rp, "{\"stream_id\":\"s\",\"iss\":\"" OKTA "\"," POLL_DELIVERY "}",
                               &t), -EPROTO);
        assert_int_equal(adopt(&poll_rp, "{\"stream_id\":\"s\"," POLL_DELIVERY "}", &t), -EPROTO);
        /* delivery: poll to an https endpoint. */
        assert_int_equal(adopt(&poll_rp, STREAM_HEAD "\"delivery\":{\"method\":\"urn:ietf:rfc:8936\","
                               "\"endpoint_url\":\"http://tr.example.com/poll\"}}", &t), -EPROTO);
        assert_int_equal(adopt(&poll_rp, STREAM_HEAD "\"delivery\":{\"method\":\"urn:ietf:rfc:8936\"}}",
                               &t), -EPROTO);
        assert_int_equal(adopt(&poll_rp, STREAM_HEAD "\"delivery\":\"urn:ietf:rfc:8936\"}", &t), -EPROTO);
        assert_int_equal(adopt(&poll_rp, STREAM_HEAD "\"delivery\":{\"method\":\"urn:ietf:rfc:8936x\","
                               "\"endpoint_url\":\"" TR "/poll\"}}", &t), -EPROTO);
        /* aud: must contain the configured audience; without one, there must be one to take. */
        assert_int_equal(adopt(&poll_rp, STREAM_HEAD "\"aud\":\"https://other\"," POLL_DELIVERY "}", &t),
                         -EPROTO);
        assert_int_equal(adopt(&poll_rp, STREAM_HEAD "\"aud\":[\"https://other\",7]," POLL_DELIVERY "}",
                               &t), -EPROTO);
        assert_int_equal(adopt(&poll_any, STREAM_HEAD POLL_DELIVERY "}", &t), -EPROTO);
        assert_int_equal(adopt(&poll_any, STREAM_HEAD "\"aud\":[]," POLL_DELIVERY "}", &t), -EPROTO);
        assert_int_equal(adopt(&poll_any, STREAM_HEAD "\"aud\":[7,\"" RP "\"]," POLL_DELIVERY "}", &t),
                         -EPROTO);
        assert_null(t.stream_id);
        assert_null(t.stream);
        transmitter_done(&t);
}

/* ---- stream_parse_status -------------------------------------------------------------------- */

static int status(const char *text, char **ret_status, char **ret_reason) {
        json_t *o = NULL;
        int r;

        r = parse(text, false, &o);
        if (r < 0)
                return r;
        r = stream_parse_status(o, ret_status, ret_reason);
        json_decref(o);
        return r;
}

static void test_parse_status(void **state) {
        char *st = NULL, *reason = NULL, text[512];

        assert_int_equal(status("{\"stream_id\":\"s\",\"status\":\"enabled\"}", &st, &reason), 0);
        assert_string_equal(st, "enabled");
        assert_null(reason);
        free(st);
        assert_int_equal(status("{\"status\":\"paused\",\"reason\":\"maintenance\"}", &st, &reason), 0);
        assert_string_equal(st, "paused");
        assert_string_equal(reason, "maintenance");
        free(st);
        free(reason);
        /* A reason not worth showing is dropped, the status kept. */
        assert_int_equal(status("{\"status\":\"disabled\",\"reason\":\"a\\nb\"}", &st, &reason), 0);
        assert_string_equal(st, "disabled");
        assert_null(reason);
        free(st);
        assert_int_equal(status("{\"status\":\"disabled\",\"reason\":5}", &st, &reason), 0);
        assert_null(reason);
        free(st);
        snprintf(text, sizeof(text), "{\"status\":\"paused\",\"reason\":\"%0257d\"}", 0);
        assert_int_equal(status(text, &st, &reason), 0);
        assert_null(reason);
        free(st);
        snprintf(text, sizeof(text), "{\"status\":\"paused\",\"reason\":\"%0256d\"}", 0);
        assert_int_equal(status(text, &st, &reason), 0);
        assert_int_equal(strlen(reason), 256);
        free(st);
        free(reason);

        st = reason = NULL;
        assert_int_equal(status("{\"status\":\"on\"}", &st, &reason), -EBADMSG);
        assert_int_equal(status("{\"status\":\"Enabled\"}", &st, &reason), -EBADMSG);
        assert_int_equal(status("{\"status\":true}", &st, &reason), -EBADMSG);
        assert_int_equal(status("{}", &st, &reason), -EBADMSG);
        assert_int_equal(status("[{\"status\":\"enabled\"}]", &st, &reason), -EBADMSG);
        assert_null(st);
        assert_null(reason);
}

static int quiet(void **state) {
        log_set_max_level(LOG_CRIT); /* the refusals are logged as errors */
        return 0;
}

static void test_stream_id_url(void **state) {
        char *url = NULL;

        assert_int_equal(stream_id_url("https://t.example/ssf/stream", "f67e-39a0._~", &url), 0);
        assert_string_equal(url, "https://t.example/ssf/stream?stream_id=f67e-39a0._~");
        free(url);
        /* Other characters are percent-encoded; an endpoint with a query gets '&'. */
        assert_int_equal(stream_id_url("https://t.example/api/v1/ssf/stream?org=1", "a b/c&d=é",
                                       &url), 0);
        assert_string_equal(url, "https://t.example/api/v1/ssf/stream?org=1&stream_id="
                                 "a%20b%2Fc%26d%3D%C3%A9");
        free(url);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_discovery_url),
                cmocka_unit_test(test_discovery_url_needs_https),
                cmocka_unit_test(test_events_requested),
                cmocka_unit_test(test_stream_id_url),
                cmocka_unit_test(test_parse_json),
                cmocka_unit_test(test_metadata_ours),
                cmocka_unit_test(test_metadata_okta),
                cmocka_unit_test(test_metadata_refused),
                cmocka_unit_test(test_metadata_critical_invalid),
                cmocka_unit_test(test_adopt_poll),
                cmocka_unit_test(test_adopt_push),
                cmocka_unit_test(test_adopt_refused),
                cmocka_unit_test(test_parse_status),
        };
        return cmocka_run_group_tests(tests, quiet, NULL);
}
