/* SPDX-License-Identifier: MIT */
#pragma once

/* ssf-sessiond.conf: INI (libinih) main file plus ssf-sessiond.conf.d/ *.conf drop-ins in
 * lexical order, parsed through one static table of { section, key, parser, offset }.
 * Linked by both processes. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "level.h"
#include "macro.h"

#define SSF_DEFAULT_CONFIG "/etc/ssf/ssf-sessiond.conf"

typedef enum AuthMode { AUTH_BEARER, AUTH_OAUTH2, AUTH_NONE } AuthMode;
typedef enum DeliveryMode { DELIVERY_POLL, DELIVERY_PUSH } DeliveryMode;
/* How the OAuth 2.0 client authenticates to the token endpoint. */
typedef enum OAuth2ClientAuth {
        OAUTH2_CLIENT_AUTH_BASIC,           /* client_secret_basic (RFC 6749 §2.3.1) */
        OAUTH2_CLIENT_AUTH_POST,            /* client_secret_post: id and secret in the body */
        OAUTH2_CLIENT_AUTH_PRIVATE_KEY_JWT, /* RFC 7523 client assertion signed with a key */
        _OAUTH2_CLIENT_AUTH_MAX,
} OAuth2ClientAuth;
/* managed: discover, create or reuse, verify and keep the stream active; none: push-only,
 * without a stream API (the admin registers the push URL at the transmitter). */
typedef enum StreamMode { STREAM_MANAGED, STREAM_NONE } StreamMode;
typedef enum SubjectMap {
        SUBJECT_MAP_EMAIL_LOCALPART,
        SUBJECT_MAP_EMAIL,
        SUBJECT_MAP_ISS_SUB,
        SUBJECT_MAP_OPAQUE,
        SUBJECT_MAP_FILE,
} SubjectMap;
typedef enum RuleAction { ACTION_NONE, ACTION_LOGOUT, ACTION_WORKFLOW, ACTION_LOCK } RuleAction;
typedef enum DeviceScope { DEVICE_SCOPE_ANY, DEVICE_SCOPE_THIS_HOST } DeviceScope;
typedef enum SessionScope {
        SESSIONS_ALL,
        SESSIONS_REMOTE,
        SESSIONS_LOCAL,
        SESSIONS_GRAPHICAL,
} SessionScope;

/* One [rule NAME] section. Pattern lists are NULL-terminated strv; "*" matches anything;
 * groups entries may start with '!' (exclude). levels holds a bit per RiskLevel (1u << l). */
typedef struct Rule {
        char *name;
        char **groups;
        char **detections;
        unsigned levels;
        RuleAction action;
        SessionScope sessions;
        bool reset;
        uint64_t warn_usec; /* logout only: warn the sessions' terminals this long before */
        char *workflow;
        char **transmitters; /* names; NULL: any ("*") */
        char *file; /* where it was defined, for messages */
        unsigned line;
} Rule;

/* [detections]: detection name -> level overrides. */
typedef struct DetectionLevel {
        char *detection;
        RiskLevel level;
} DetectionLevel;

/* One term of a [detection NAME] section's claims: the event member and its glob patterns
 * (pattern.h), any of which may match. */
typedef struct ClaimTerm {
        char *member;
        char **patterns;
} ClaimTerm;

/* One [detection NAME] section (PRODUCT.md "Detections derived from event claims"), in file
 * order: the first whose event and claims match names the detection. */
typedef struct DetectionDef {
        char *name;
        char *event;       /* a built-in detection name (events.h) */
        ClaimTerm *claims; /* all must match */
        size_t n_claims;
        RiskLevel level;   /* none: recorded, and only rules naming it run */
        char *file;        /* where it was defined, for messages */
        unsigned line;
} DetectionDef;

#define TRANSMITTER_NAME_MAX 32U
#define TRANSMITTERS_MAX 64U

/* One [transmitter NAME] section; the unnamed [transmitter] is the one named "default". */
typedef struct TransmitterConfig {
        char *name;
        char *issuer;
        char *config_url;
        char *audience;
        StreamMode stream;
        char *jwks_uri;                /* stream = none: where the keys are */
        char *push_authorization_file; /* stream = none: the exact Authorization value */
        AuthMode auth;
        char *token_file;
        char *oauth2_token_url, *oauth2_client_id, *oauth2_client_secret_file, *oauth2_scope;
        /* client authentication, mTLS, proxy */
        OAuth2ClientAuth oauth2_client_auth;
        char *oauth2_private_key;   /* private_key_jwt: PEM private key file (root-only) */
        char *oauth2_key_id;        /* private_key_jwt: "kid" of the assertion, or NULL */
        char *tls_client_cert;      /* mutual TLS (RFC 8705): PEM certificate (chain) file */
        char *tls_client_key;       /*   and its PEM private key file (root-only) */
        char *proxy;                /* "http://host:port" or "https://host:port", or NULL */
        char *ca_file;
        DeliveryMode delivery;
        char *push_listen, *push_url, *push_cert, *push_key;
        char *stream_id;
        bool subjects_local;      /* subjects = local: add this host's users' subjects */
        char **events;            /* short names, or NULL for "all" */
        unsigned poll_max_events; /* 1..1000 */
        uint64_t poll_wait_usec;  /* 0 = returnImmediately */
        uint64_t verify_interval_usec;
} TransmitterConfig;

typedef struct Config {
        /* [transmitter] and [transmitter NAME], in order of first appearance */
        TransmitterConfig *transmitters;
        size_t n_transmitters;

        /* [push], else the first push transmitter's: the one listener of every push
         * transmitter (NULL without push transmitters) */
        char *push_listen, *push_cert, *push_key;

        /* [subjects] */
        SubjectMap map;
        char **domains;
        char *map_file;
        char *device_id;
        unsigned min_uid, max_uid; /* accounts outside are never acted upon */
        char **protect;            /* accounts never acted upon (default: root) */
        DeviceScope device_scope;  /* this-host: a user+device subject applies only when the
                                      device is device_id */

        /* [risk] */
        uint64_t ttl_usec;
        uint64_t max_clock_skew_usec;

        /* [detections] */
        DetectionLevel *detection_levels;
        size_t n_detection_levels;

        /* [detection NAME] sections, in file order */
        DetectionDef *detection_defs;
        size_t n_detection_defs;

        /* rules, in file order */
        Rule *rules;
        size_t n_rules;

        /* [hooks] */
        char *hooks_dir;
        uint64_t hooks_timeout_usec;
        char *hooks_user;

        /* [daemon] */
        char *state_dir;
        char *socket_path;
        char *snapshot_path;
        uint64_t max_event_age_usec; /* older SETs are refused; jtis kept at least this long */
        uint64_t history_retention_usec; /* older history and finished actions are pruned */
        unsigned history_max_rows;   /* and so are the oldest beyond this many */
        unsigned replay_cache_max;   /* past this many jtis, new SETs are deferred */
        bool dry_run;                /* audit mode: decide and record, act on nothing */
} Config;

/* Loads path and its ".d" drop-in directory (path + ".d/ *.conf"). With check_perms, files must
 * be regular, root-owned, not group/world-writable, and secret files (token_file,
 * oauth2_client_secret_file, oauth2_private_key, tls_client_key) not group/world-readable.
 * Every error is reported through log_error() as "FILE:LINE: message", and all errors of the
 * file are reported before failing. Returns 0 and a new Config, or -EINVAL (bad config) /
 * -errno. */
int config_load(const char *path, bool check_perms, Config **ret);
/* config_load() at a reload, with running the configuration in force (or NULL): warnings that
 * stand for a state rather than a mistake are not repeated for what running already had. So far
 * one: a transmitter whose issuer comes from the metadata because its config_url is not of the
 * SSF form is warned about once per transmitter name and config_url, and again only when that
 * changes. */
int config_reload(const char *path, bool check_perms, const Config *running, Config **ret);
Config *config_free(Config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free)

/* Parses one configuration held in memory (no drop-ins, no permission checks), e.g. for the
 * fuzzer and tests. name is used in messages. Same return values as config_load(). */
int config_load_buffer(const char *name, const char *data, size_t size, Config **ret);

/* The transmitter named name, or NULL. */
const TransmitterConfig *config_transmitter(const Config *c, const char *name);
/* The transmitter a single-transmitter view describes: "default", else the only one; NULL
 * when there are several and none is named "default". */
const TransmitterConfig *config_transmitter_main(const Config *c);
/* The issuer a transmitter configuration URL stands for, by the SSF well-known rule (SSF 1.0
 * §7.2): the URL is the issuer, its terminating '/' removed, with "/.well-known/ssf-configuration"
 * inserted between the host and the path. So https://h/.well-known/ssf-configuration is
 * https://h, and https://h/.well-known/ssf-configuration/p is https://h/p; since a terminating
 * '/' was removed, the issuer may as well be that plus "/" (config_issuer_spelling()). Returns 0
 * with *ret a new string; -EADDRNOTAVAIL when config_url does not have that form (a vendor's
 * well-known name, a query or fragment, a path ending in '/'): the URL stands for no issuer, and
 * without a configured one the transmitter's is the one its metadata names (config checking
 * warns); -ENOMEM. */
int config_url_issuer(const char *config_url, char **ret);
/* Whether iss is one of the two spellings of the issuer a config_url stands for: issuer itself,
 * or issuer + "/". */
bool config_issuer_spelling(const char *issuer, const char *iss);
/* The issuer transmitter t's metadata and SETs must name: its configured issuer, else the one
 * its config_url stands for (config_url_issuer(), either spelling). Same return values. */
int config_transmitter_issuer(const TransmitterConfig *t, char **ret);
/* Whether name is a valid transmitter name: [a-z0-9-], 1..TRANSMITTER_NAME_MAX. */
bool config_transmitter_name_valid(const char *name);
/* Whether rule r applies to SETs from transmitter (its transmitters = list). */
bool rule_matches_transmitter(const Rule *r, const char *transmitter);

/* Whether name is a detection of PRODUCT.md's vocabulary (the event URI's last segment). */
bool config_detection_is_known(const char *name);

/* Parses a duration such as "30s", "5m", "24h", "7d", "250ms", or a bare number of seconds.
 * Returns 0 or -EINVAL / -ERANGE. */
int config_parse_duration(const char *s, uint64_t *ret_usec);

/* The configured level of a detection: [detections] override, else the built-in default of
 * PRODUCT.md. Returns _RISK_INVALID for level-carrying detections without an override
 * (risk-level-change, user-risk-change, device-risk-change) and for unknown names. */
RiskLevel config_detection_level(const Config *c, const char *detection);

/* The [detection NAME] section called name, or NULL. */
const DetectionDef *config_detection_def(const Config *c, const char *name);

const char *rule_action_to_string(RuleAction a);
/* "basic", "post", "private_key_jwt"; NULL when out of range. */
const char *oauth2_client_auth_to_string(OAuth2ClientAuth a);
const char *session_scope_to_string(SessionScope s);
