/* SPDX-License-Identifier: MIT */
/* SET claims validation (the input as a payload) and the full pipeline (the input as a
 * token), then detection classification of whatever validates: with the built-in levels, and
 * with [detection NAME] sections whose claims globs match the event's members. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "jwks.h"
#include "log.h"
#include "risk.h"
#include "set.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char jwks_json[] =
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";

/* Sections for the events the corpus carries, with patterns that backtrack. */
static const char detections_conf[] =
        "[transmitter]\nissuer = https://tr.example.test\nauth = none\n"
        "[subjects]\ndomains = *\n"
        "[detection d1]\nevent = credential-change\n"
        "claims = change_type=*e*e*e*,c[a-z]?* credential_type=*\nlevel = none\n"
        "[detection d2]\nevent = device-compliance-change\n"
        "claims = current_status=n*t-*c*o*m*p*l*i*a*n*t previous_status=[!x]*\nlevel = low\n"
        "[detection d3]\nevent = session-revoked\nclaims = event_timestamp=1* reason_admin=*\n"
        "level = medium\n";

static void check(SsfSet *s) {
        static Config *defs;
        Config c = {};
        Detection d;

        if (!defs) {
                log_set_max_level(LOG_CRIT);
                if (config_load_buffer("fuzz.conf", detections_conf, strlen(detections_conf), &defs) < 0)
                        abort();
        }

        if (!s->jti || !*s->jti || !s->iss || !s->event_uri || !json_is_object(s->event))
                abort();
        if (s->event_time > s->iat)
                abort();
        if (risk_classify(s->event_uri, s->event, &c, &d) == 0 && (d.level < 0 || d.level >= _RISK_MAX))
                abort();
        if (risk_classify(s->event_uri, s->event, defs, &d) == 0 &&
            (d.level < 0 || d.level >= _RISK_MAX || (d.defined && !config_detection_def(defs, d.name)) ||
             (d.explicit_only && d.effect != DETECTION_RECORD)))
                abort();
        ssf_set_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static Jwks *keys;
        const SetExpect expect = {
                .issuer = "https://tr.example.test",
                .audience = "https://host1.example.test/ssf",
                .now_sec = 1700000010,
                .max_skew_sec = 300,
        };
        SsfSet *s = NULL;
        SetError err = {};
        int r;

        if (!keys && jwks_parse(jwks_json, strlen(jwks_json), &keys) < 0)
                abort();

        r = set_validate_claims((const char *) data, size, &expect, &s, &err);
        if (r == 0)
                check(s);
        else if ((r == -EBADMSG || r == -EPROTO) && (!err.err || strlen(err.description) >= sizeof err.description))
                abort();
        s = NULL;
        if (set_verify((const char *) data, size, keys, &expect, NULL, &s, &err) == 0)
                check(s);
        return 0;
}
