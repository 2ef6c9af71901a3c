/* SPDX-License-Identifier: MIT */
/*
 * Subject identifiers (RFC 9493, SSF §3) -> local Unix users, per [subjects] (PRODUCT.md
 * "Subjects"): map_file lines first, then the configured map; only names the passwd database
 * knows are kept.
 * Runs in the root daemon.
 */
#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "strv.h"
#include "subject.h"
#include "users.h"

#define MAP_FILE_MAX (1024u * 1024u)
#define SUBJECT_MAX_DEPTH 3     /* complex -> aliases -> simple */
#define SUBJECT_MAX_ALIASES 32u
#define USER_NAME_MAX 256u
#define HOST_WIDE_MAX_USERS 65536u
#define DESCRIPTION_MAX 512u

typedef struct Resolver {
        const Config *c;
        char *const *critical; /* the transmitter's critical_subject_members, or NULL */
        char **users;
        bool host_wide;
        bool discarded;
        char not_here[DESCRIPTION_MAX]; /* device_scope = this-host: why it is not this host */
        char *map;          /* map_file contents, loaded on first use (NUL-terminated) */
        bool map_loaded;
        char desc[DESCRIPTION_MAX];
} Resolver;

/* A name useradd/systemd would accept, plus '@' for fully qualified names (SSSD, winbind)
 * when allow_at. Never "", ".", "..", a leading '-', all digits, or anything with '/' or
 * whitespace. */
static bool valid_user_name(const char *s, bool allow_at) {
        size_t n = 0;
        bool digits_only = true;

        if (isempty(s) || s[0] == '-' || streq(s, ".") || streq(s, ".."))
                return false;
        for (const char *p = s; *p; p++, n++) {
                char ch = *p;
                bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                          ch == '_' || ch == '.' || ch == '-' || (allow_at && ch == '@') ||
                          (ch == '$' && p[1] == 0 && p != s);
                if (!ok)
                        return false;
                if (ch < '0' || ch > '9')
                        digits_only = false;
        }
        return n <= USER_NAME_MAX && !digits_only;
}

/* Whether the passwd database knows name. Returns 1, 0, or -errno. */
static int user_exists(const char *name) {
        LocalUser u;
        int r = local_user_resolve(name, &u);

        if (r == -ESRCH || r == -EINVAL)
                return 0;
        return r < 0 ? r : 1;
}

static int add_user(Resolver *r, const char *name, bool allow_at) {
        int k;

        if (!valid_user_name(name, allow_at)) {
                log_debug("subject: '%s' is not a valid user name, dropped", name);
                return 0;
        }
        if (strv_contains(r->users, name))
                return 0;
        k = user_exists(name);
        if (k < 0)
                return k;
        if (k == 0) {
                log_debug("subject: no local user '%s', dropped", name);
                return 0;
        }
        return strv_extend(&r->users, name);
}

static void describe(Resolver *r, const char *format, const char *value) {
        size_t o = strlen(r->desc);

        if (o > 0 && o + 2 < sizeof r->desc) {
                memcpy(r->desc + o, ", ", 3);
                o += 2;
        }
        if (value)
                (void) snprintf(r->desc + o, sizeof r->desc - o, "%s %s", format, value);
        else
                (void) snprintf(r->desc + o, sizeof r->desc - o, "%s", format);
        /* Network text goes to logs: no control characters. */
        for (char *p = r->desc + o; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
}

/* Reads map_file with the rules for root-owned configuration: regular, not a symlink,
 * root-owned, not group/world-writable, at most MAP_FILE_MAX bytes, no NUL byte. */
static int map_file_read(const char *path, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r;

        r = read_full_file(path, FILE_NOFOLLOW | FILE_NONBLOCK | FILE_REGULAR | FILE_OWNER | FILE_NO_WRITE,
                           (uid_t) -1, MAP_FILE_MAX, &buf, &len);
        if (r < 0)
                return r;
        if (memchr(buf, 0, len))
                return -EBADMSG;
        *ret = TAKE_PTR(buf);
        return 0;
}

static bool email_equal(const char *a, const char *b) {
        const char *at_a = strrchr(a, '@'), *at_b = strrchr(b, '@');

        if (!at_a || !at_b)
                return streq(a, b);
        /* Local part as is, domain case-insensitively. */
        return at_a - a == at_b - b && strncmp(a, b, (size_t) (at_a - a)) == 0 &&
               strcasecmp(at_a, at_b) == 0;
}

/* Calls f(key, user, userdata) for each mapping line of map, "KEY USER [# comment]", in order;
 * blank lines, comments and malformed lines are skipped (config checking reports those). map is cut
 * up in place. Returns f's first negative return, else 0. */
static int map_foreach(char *map, int (*f)(const char *key, const char *user, void *userdata),
                       void *userdata) {
        char *line, *save = NULL;
        int k;

        for (line = strtok_r(map, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *key, *user, *extra, *p = NULL;

                key = strtok_r(line, " \t\r", &p);
                if (!key || key[0] == '#')
                        continue;
                user = strtok_r(NULL, " \t\r", &p);
                extra = strtok_r(NULL, " \t\r", &p);
                if (!user || (extra && extra[0] != '#'))
                        continue;
                k = f(key, user, userdata);
                if (k < 0)
                        return k;
        }
        return 0;
}

typedef struct MapLookup {
        Resolver *r;
        const char *value;
        bool is_email;
        bool matched;
} MapLookup;

static int map_lookup_line(const char *key, const char *user, void *userdata) {
        MapLookup *m = userdata;

        if (!(m->is_email ? email_equal(key, m->value) : streq(key, m->value)))
                return 0;
        m->matched = true;
        return add_user(m->r, user, true);
}

/* Looks value up in map_file. Returns 1 when at least one line names it (its users, if they
 * exist, are added), 0 when none does, or -errno. */
static int map_file_lookup(Resolver *r, const char *value, bool is_email) {
        MapLookup m = { .r = r, .value = value, .is_email = is_email };
        int k;

        if (!r->c->map_file)
                return 0;
        if (!r->map_loaded) {
                k = map_file_read(r->c->map_file, &r->map);
                if (k < 0)
                        return log_debug_errno(k, "subject: cannot use map_file %s: %m", r->c->map_file);
                r->map_loaded = true;
        }

        _cleanup_free_ char *copy = strdup(r->map);
        if (!copy)
                return -ENOMEM;
        k = map_foreach(copy, map_lookup_line, &m);
        if (k < 0)
                return k;
        return m.matched;
}

static bool domain_allowed(const Config *c, const char *domain) {
        if (strv_length(c->domains) == 0 || streq(c->domains[0], "*"))
                return true; /* every domain: no list (other maps), or "*" said explicitly */
        for (char **d = c->domains; *d; d++)
                if (strcasecmp(*d, domain) == 0)
                        return true;
        return false;
}

/* A member that must be a non-empty string. */
static const char *required(json_t *s, const char *name) {
        json_t *v = json_object_get(s, name);
        return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

static int resolve(Resolver *r, json_t *s, unsigned depth);

static int resolve_email(Resolver *r, const char *email, bool lookup) {
        const char *at = strrchr(email, '@');
        int k;

        k = lookup ? map_file_lookup(r, email, true) : 0;
        if (k != 0)
                return k < 0 ? k : 0;

        if (r->c->map != SUBJECT_MAP_EMAIL_LOCALPART && r->c->map != SUBJECT_MAP_EMAIL)
                return 0;
        if (!at || at == email || !at[1])
                return 0; /* not an address we can map */
        if (!domain_allowed(r->c, at + 1)) {
                log_debug("subject: domain of %s is not in [subjects] domains", email);
                return 0;
        }
        if (r->c->map == SUBJECT_MAP_EMAIL)
                return add_user(r, email, true);

        _cleanup_free_ char *local = strndup(email, (size_t) (at - email));
        if (!local)
                return -ENOMEM;
        return add_user(r, local, false);
}

static int resolve_simple(Resolver *r, json_t *s, const char *format) {
        const char *v;
        int k;

        if (streq(format, "email")) {
                v = required(s, "email");
                if (!v)
                        return -EBADMSG;
                describe(r, format, v);
                return resolve_email(r, v, true);
        }
        if (streq(format, "account")) {
                v = required(s, "uri");
                if (!v)
                        return -EBADMSG;
                describe(r, format, v);
                k = map_file_lookup(r, v, false);
                if (k != 0)
                        return k < 0 ? k : 0;
                /* acct:user@host is an address too (RFC 7565). */
                if (strncasecmp(v, "acct:", 5) == 0)
                        return resolve_email(r, v + 5, false);
                return 0;
        }
        if (streq(format, "iss_sub")) {
                if (!required(s, "iss"))
                        return -EBADMSG;
                v = required(s, "sub");
                if (!v)
                        return -EBADMSG;
                describe(r, format, v);
                k = map_file_lookup(r, v, false);
                if (k != 0)
                        return k < 0 ? k : 0;
                return r->c->map == SUBJECT_MAP_ISS_SUB ? add_user(r, v, false) : 0;
        }
        if (streq(format, "opaque")) {
                v = required(s, "id");
                if (!v)
                        return -EBADMSG;
                describe(r, format, v);
                k = map_file_lookup(r, v, false);
                if (k != 0)
                        return k < 0 ? k : 0;
                return r->c->map == SUBJECT_MAP_OPAQUE ? add_user(r, v, false) : 0;
        }

        /* Formats only map_file can map. */
        const char *member = streq(format, "uri")            ? "uri"
                             : streq(format, "did")          ? "url"
                             : streq(format, "phone_number") ? "phone_number"
                                                             : NULL;
        if (member) {
                v = required(s, member);
                if (!v)
                        return -EBADMSG;
                describe(r, format, v);
                k = map_file_lookup(r, v, false);
                return k < 0 ? k : 0;
        }

        /* jwt_id, saml_assertion_id, ip-addresses, proprietary formats: nothing to map. */
        describe(r, format, NULL);
        return 0;
}

static int add_all_local_users(Resolver *r) {
        long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
        size_t bufsize = sz > 0 ? (size_t) sz : 4096;
        _cleanup_free_ char *buf = NULL;
        struct passwd pw, *res;
        unsigned n = 0;
        int k = 0;

        bufsize = MAX(bufsize, (size_t) 16384);
        buf = malloc(bufsize);
        if (!buf)
                return -ENOMEM;

        setpwent();
        while (getpwent_r(&pw, buf, bufsize, &res) == 0 && res) {
                if (pw.pw_uid < r->c->min_uid || pw.pw_uid > r->c->max_uid ||
                    pw.pw_uid == (uid_t) -1)
                        continue; /* system accounts and nobody: never acted upon */
                if (++n > HOST_WIDE_MAX_USERS)
                        break;
                if (!valid_user_name(pw.pw_name, true) || strv_contains(r->users, pw.pw_name))
                        continue;
                k = strv_extend(&r->users, pw.pw_name);
                if (k < 0)
                        break;
        }
        endpwent();
        return k;
}

static const char *const complex_members[] = {
        "user", "device", "session", "application", "tenant", "org_unit", "group",
};

static bool looks_complex(json_t *s) {
        for (size_t i = 0; i < ARRAY_SIZE(complex_members); i++)
                if (json_is_object(json_object_get(s, complex_members[i])))
                        return true;
        return false;
}

/* Whether this receiver interprets complex-subject member name (SSF §3.6). */
static bool member_interpreted(const Resolver *r, const char *name) {
        if (streq(name, "user"))
                return true;
        /* Without device_id there is nothing to compare a device with. */
        return streq(name, "device") && r->c->device_id;
}

/* Returns true (and describes why) when s has a critical member we do not interpret. */
static bool critical_member_unknown(Resolver *r, json_t *s) {
        const char *key;
        json_t *v;

        if (!r->critical)
                return false;
        json_object_foreach(s, key, v) {
                if (streq(key, "format") || !strv_contains(r->critical, key) ||
                    member_interpreted(r, key))
                        continue;
                r->desc[0] = 0;
                (void) snprintf(r->desc, sizeof r->desc,
                                "discarded: critical subject member '%s' not understood", key);
                for (char *p = r->desc; *p; p++)
                        if ((unsigned char) *p < 0x20 || *p == 0x7f)
                                *p = '?';
                r->discarded = true;
                return true;
        }
        return false;
}

/* The device's identifier: id (opaque), sub (iss_sub), uri/url; NULL when it has none. */
static const char *device_identifier(json_t *device) {
        static const char *const members[] = { "id", "sub", "uri", "url" };
        const char *id = NULL;

        for (size_t i = 0; i < ARRAY_SIZE(members) && !id; i++)
                id = required(device, members[i]);
        return id;
}

/* [subjects] device_scope = this-host: a subject naming a user and a device concerns this host
 * only when the device is device_id. Fills r->not_here when it is another device. */
static void check_device_scope(Resolver *r, json_t *device) {
        const char *id = device_identifier(device);

        if (r->c->device_scope != DEVICE_SCOPE_THIS_HOST)
                return;
        if (id && r->c->device_id && streq(id, r->c->device_id))
                return;
        if (id)
                (void) snprintf(r->not_here, sizeof r->not_here,
                                "device '%.200s' is not this host (device_id '%.100s')", id,
                                strempty(r->c->device_id));
        else
                (void) snprintf(r->not_here, sizeof r->not_here,
                                "the device has no identifier to compare with device_id");
        for (char *p = r->not_here; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
}

static int resolve_complex(Resolver *r, json_t *s, unsigned depth) {
        json_t *user = json_object_get(s, "user"), *device = json_object_get(s, "device");

        if (critical_member_unknown(r, s))
                return 0; /* SSF §3.6: the event is discarded, nothing is mapped */

        if (user) {
                if (!json_is_object(user))
                        return -EBADMSG;
                /* The user it names; with device_scope = this-host, only for this host's
                 * device (the user is still mapped, so that the record names them). */
                if (device) {
                        if (!json_is_object(device))
                                return -EBADMSG;
                        check_device_scope(r, device);
                }
                return resolve(r, user, depth + 1);
        }
        if (device) {
                const char *id;

                if (!json_is_object(device))
                        return -EBADMSG;
                id = device_identifier(device);
                describe(r, "device", id);
                if (id && r->c->device_id && streq(id, r->c->device_id)) {
                        r->host_wide = true;
                        return add_all_local_users(r);
                }
                return 0;
        }
        describe(r, "complex", "(no user or device)");
        return 0;
}

static int resolve(Resolver *r, json_t *s, unsigned depth) {
        const char *format;
        json_t *f;

        if (!json_is_object(s) || depth > SUBJECT_MAX_DEPTH)
                return -EBADMSG;

        f = json_object_get(s, "format");
        if (!f)
                f = json_object_get(s, "subject_type"); /* Google RISC */
        if (f && !json_is_string(f))
                return -EBADMSG;
        format = json_string_value(f);
        if (!format) {
                /* Okta sends complex subjects without "format". */
                if (looks_complex(s))
                        return resolve_complex(r, s, depth);
                return -EBADMSG;
        }
        if (streq(format, "iss-sub"))
                format = "iss_sub";
        else if (streq(format, "phone"))
                format = "phone_number";

        if (streq(format, "complex"))
                return resolve_complex(r, s, depth);

        if (streq(format, "aliases")) {
                json_t *ids = json_object_get(s, "identifiers"), *e;
                size_t i;

                if (!json_is_array(ids) || json_array_size(ids) == 0 ||
                    json_array_size(ids) > SUBJECT_MAX_ALIASES)
                        return -EBADMSG;
                /* Each alias in turn; the first that maps decides. */
                json_array_foreach(ids, i, e) {
                        const char *ef;
                        int k;

                        if (!json_is_object(e))
                                return -EBADMSG;
                        ef = json_string_value(json_object_get(e, "format"));
                        if (ef && (streq(ef, "aliases") || streq(ef, "complex")))
                                return -EBADMSG; /* no nesting (RFC 9493 §3.2.8) */
                        k = resolve(r, e, depth + 1);
                        if (k < 0)
                                return k;
                        if (r->users && r->users[0])
                                break;
                }
                return 0;
        }

        return resolve_simple(r, s, format);
}

int subject_resolve(const Config *c, json_t *subject, SubjectMatch *ret) {
        return subject_resolve_critical(c, subject, NULL, ret);
}

int subject_resolve_critical(const Config *c, json_t *subject, char *const *critical,
                             SubjectMatch *ret) {
        Resolver r = { .c = c, .critical = critical };
        int k;

        if (!c || !ret)
                return -EINVAL;

        if (subject)
                k = resolve(&r, subject, 0);
        else {
                describe(&r, "none", NULL);
                k = 0;
        }
        free(r.map);
        if (k < 0) {
                strv_free(r.users);
                return k;
        }
        if (r.discarded)
                r.users = strv_free(r.users); /* nothing applies, not even what came first */
        if (!r.users) {
                r.users = calloc(1, sizeof(char *));
                if (!r.users)
                        return -ENOMEM;
        }
        char *desc = strdup(r.desc);
        char *not_here = r.not_here[0] && !r.discarded ? strdup(r.not_here) : NULL;
        if (!desc || (r.not_here[0] && !r.discarded && !not_here)) {
                strv_free(r.users);
                free(desc);
                return -ENOMEM;
        }
        *ret = (SubjectMatch) {
                .users = r.users,
                .host_wide = r.host_wide && !r.discarded,
                .description = desc,
                .discarded = r.discarded,
                .not_here = not_here,
        };
        return 0;
}

void subject_match_done(SubjectMatch *m) {
        if (!m)
                return;
        m->users = strv_free(m->users);
        free(m->description);
        m->description = NULL;
        free(m->not_here);
        m->not_here = NULL;
        m->host_wide = false;
        m->discarded = false;
}

/* ---- the other way: a local user -> the subjects that map to it (subjects = local,
 * `ssfctl subjects add USER`) ------------------------------------------------------------- */

/* The subject identifier for a map_file VALUE, by its shape: "acct:…" account, "did:…" did,
 * "+digits" phone_number, an address with '@' and no ':' email, another "scheme:…" uri, else
 * opaque. (An iss_sub's sub has no issuer in map_file: such users are added as opaque ids.) */
static json_t *subject_for_value(const char *v) {
        const char *colon = strchr(v, ':');

        if (strncasecmp(v, "acct:", 5) == 0)
                return json_pack("{s:s, s:s}", "format", "account", "uri", v);
        if (strncmp(v, "did:", 4) == 0)
                return json_pack("{s:s, s:s}", "format", "did", "url", v);
        if (v[0] == '+' && v[1] && strspn(v + 1, "0123456789") == strlen(v + 1))
                return json_pack("{s:s, s:s}", "format", "phone_number", "phone_number", v);
        if (strchr(v, '@') && !colon)
                return json_pack("{s:s, s:s}", "format", "email", "email", v);
        if (colon && colon != v)
                return json_pack("{s:s, s:s}", "format", "uri", "uri", v);
        return json_pack("{s:s, s:s}", "format", "opaque", "id", v);
}

static int append_unique(json_t *a, json_t *v) {
        size_t i;
        json_t *e;

        if (!v)
                return -ENOMEM;
        json_array_foreach(a, i, e)
                if (json_equal(e, v)) {
                        json_decref(v);
                        return 0;
                }
        return json_array_append_new(a, v) < 0 ? -ENOMEM : 0;
}

typedef struct MapSubjects {
        const LocalUser *u;
        const char *given;
        json_t *a;
        int n;
} MapSubjects;

static int map_subjects_line(const char *key, const char *user, void *userdata) {
        MapSubjects *m = userdata;
        int k;

        if (!streq(user, m->u->name) && !streq(user, m->given))
                return 0;
        k = append_unique(m->a, subject_for_value(key));
        if (k < 0)
                return k;
        m->n++;
        return 0;
}

/* map_file lines naming user (or its canonical name) as subjects appended to a. Returns the
 * number appended, or -errno. */
static int map_file_subjects(const Config *c, const LocalUser *u, const char *given, json_t *a) {
        _cleanup_free_ char *map = NULL;
        MapSubjects m = { .u = u, .given = given, .a = a };
        int k;

        if (!c->map_file)
                return 0;
        k = map_file_read(c->map_file, &map);
        if (k < 0)
                return k;
        k = map_foreach(map, map_subjects_line, &m);
        if (k < 0)
                return k;
        return m.n;
}

int subject_for_user(const Config *c, const LocalUser *u, const char *given, json_t *subjects,
                     char *error, size_t size) {
        int k;

        k = map_file_subjects(c, u, given, subjects);
        if (k < 0) {
                (void) snprintf(error, size, "cannot use map_file %s: %s", c->map_file,
                                strerror(-k));
                return k;
        }
        if (k > 0)
                return 0;
        if (strv_length(c->domains) == 0 || streq(c->domains[0], "*")) {
                (void) snprintf(error, size, "user '%s' has no map_file entry and [subjects] "
                                "domains is not an explicit list of domains: its email subjects "
                                "are unknown", u->name);
                return -EADDRNOTAVAIL;
        }
        for (char **d = c->domains; *d; d++) {
                _cleanup_free_ char *email = NULL;

                if (asprintf(&email, "%s@%s", u->name, *d) < 0)
                        return -ENOMEM;
                k = append_unique(subjects, json_pack("{s:s, s:s}", "format", "email", "email",
                                                      email));
                if (k < 0)
                        return k;
        }
        return 0;
}

int subject_local_subjects(const Config *c, json_t **ret, char *error, size_t size) {
        long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
        size_t bufsize = MAX(sz > 0 ? (size_t) sz : 4096, (size_t) 16384);
        _cleanup_(json_decrefp) json_t *a = json_array();
        _cleanup_free_ char *buf = malloc(bufsize);
        struct passwd pw, *res;
        unsigned n = 0;
        int k = 0;

        if (!a || !buf)
                return -ENOMEM;
        setpwent();
        while (k >= 0 && getpwent_r(&pw, buf, bufsize, &res) == 0 && res) {
                LocalUser u = { .uid = pw.pw_uid };
                char why[128];

                if (!valid_user_name(pw.pw_name, true) ||
                    strlen(pw.pw_name) >= sizeof(u.name))
                        continue;
                (void) snprintf(u.name, sizeof(u.name), "%s", pw.pw_name);
                if (local_user_protected(c, &u, why, sizeof(why)))
                        continue; /* outside min_uid…max_uid, or protect = */
                if (++n > LOCAL_SUBJECTS_MAX_USERS) {
                        log_warning("subjects = local: more than %u local accounts, adding the "
                                    "subjects of the first %u", LOCAL_SUBJECTS_MAX_USERS,
                                    LOCAL_SUBJECTS_MAX_USERS);
                        break;
                }
                k = subject_for_user(c, &u, u.name, a, error, size);
        }
        endpwent();
        if (k < 0)
                return k;
        *ret = TAKE_PTR(a);
        return 0;
}

/* ---- a subject identifier an admin gives (`ssfctl subjects add '{"format":…}'`) ----------- */

/* The required members of each known format (RFC 9493 §3.2, SSF §3.5): non-empty strings,
 * except ip-addresses (a non-empty array of strings); aliases and complex are checked below. */
static const struct {
        const char *format;
        const char *members[2];
} known_formats[] = {
        { "account", { "uri" } },
        { "email", { "email" } },
        { "iss_sub", { "iss", "sub" } },
        { "opaque", { "id" } },
        { "phone_number", { "phone_number" } },
        { "did", { "url" } },
        { "uri", { "uri" } },
        { "jwt_id", { "iss", "jti" } },
        { "saml_assertion_id", { "issuer", "assertion_id" } },
        { "ip-addresses", { NULL } },
};

static int check_identifier(json_t *s, unsigned depth, char *error, size_t size) {
        const char *format = json_string_value(json_object_get(s, "format"));

        if (!json_is_object(s) || !format) {
                (void) snprintf(error, size, "a subject is a JSON object with a string \"format\"");
                return -EINVAL;
        }
        if (streq(format, "aliases") || streq(format, "complex")) {
                json_t *ids = json_object_get(s, "identifiers"), *v;
                const char *key;
                size_t i, n = 0;
                int k;

                if (depth > 0) {
                        (void) snprintf(error, size, "\"%s\" subjects do not nest", format);
                        return -EINVAL;
                }
                if (streq(format, "aliases")) {
                        if (!json_is_array(ids) || json_array_size(ids) == 0 ||
                            json_array_size(ids) > SUBJECT_MAX_ALIASES) {
                                (void) snprintf(error, size, "an aliases subject needs 1 to %u "
                                                "identifiers", SUBJECT_MAX_ALIASES);
                                return -EINVAL;
                        }
                        json_array_foreach(ids, i, v) {
                                k = check_identifier(v, depth + 1, error, size);
                                if (k < 0)
                                        return k;
                        }
                        return 0;
                }
                json_object_foreach(s, key, v) {
                        if (streq(key, "format"))
                                continue;
                        k = check_identifier(v, depth + 1, error, size);
                        if (k < 0)
                                return k;
                        n++;
                }
                if (n == 0) {
                        (void) snprintf(error, size, "a complex subject needs a member (user, "
                                        "device, …)");
                        return -EINVAL;
                }
                return 0;
        }
        for (size_t i = 0; i < ARRAY_SIZE(known_formats); i++) {
                if (!streq(format, known_formats[i].format))
                        continue;
                if (!known_formats[i].members[0]) {
                        json_t *a = json_object_get(s, format), *v;
                        size_t j;

                        if (!json_is_array(a) || json_array_size(a) == 0)
                                goto missing;
                        json_array_foreach(a, j, v)
                                if (!json_is_string(v) || json_string_length(v) == 0)
                                        goto missing;
                        return 0;
                }
                for (size_t m = 0; m < ARRAY_SIZE(known_formats[i].members); m++) {
                        const char *name = known_formats[i].members[m];

                        if (name && !required(s, name)) {
                                (void) snprintf(error, size, "a \"%s\" subject needs a non-empty "
                                                "string \"%s\"", format, name);
                                return -EINVAL;
                        }
                }
                return 0;
        missing:
                (void) snprintf(error, size, "a \"%s\" subject needs a non-empty array of "
                                "strings \"%s\"", format, format);
                return -EINVAL;
        }
        (void) snprintf(error, size, "unknown subject format \"%.64s\" (account, email, iss_sub, "
                        "opaque, phone_number, did, uri, aliases, complex, jwt_id, "
                        "saml_assertion_id, ip-addresses)", format);
        for (char *p = error; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
        return -EINVAL;
}

int subject_parse_admin(const char *text, size_t len, json_t **ret, char *error, size_t size) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        json_error_t e;
        int k;

        if (len > SUBJECT_ADMIN_MAX) {
                (void) snprintf(error, size, "the subject is longer than %u bytes",
                                SUBJECT_ADMIN_MAX);
                return -E2BIG;
        }
        j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
        if (!j) {
                (void) snprintf(error, size, "the subject is not valid JSON (%s)", e.text);
                for (char *p = error; *p; p++)
                        if ((unsigned char) *p < 0x20 || *p == 0x7f)
                                *p = '?';
                return -EINVAL;
        }
        k = check_identifier(j, 0, error, size);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(j);
        return 0;
}
