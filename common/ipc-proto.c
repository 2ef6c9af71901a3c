/* SPDX-License-Identifier: MIT */
/*
 * Pure encoding and decoding of ssf IPC frames (format in ssf-ipc.h). No I/O, no logging.
 * The decoder sees bytes from the other end of a socket and is fuzzed: every length is checked
 * against the frame before it is used, and nothing is allocated before the header and the
 * TLV's length have been validated.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "level.h"
#include "macro.h"
#include "ssf-ipc.h"

#define TLV_HEADER_SIZE 4u

typedef enum TlvKind {
        TLV_STRING,
        TLV_I32,
        TLV_U8,
        TLV_FLAG, /* no value: present or not */
} TlvKind;

typedef struct TagInfo {
        TlvKind kind;
        size_t max;     /* strings: maximum length in bytes */
        bool nonempty;  /* strings: an empty value is malformed */
        size_t offset;  /* strings: offsetof(SsfIpcMsg, member) */
} TagInfo;

#define STR_TAG(member, limit, ne) \
        { .kind = TLV_STRING, .max = (limit), .nonempty = (ne), .offset = offsetof(SsfIpcMsg, member) }

static const TagInfo tag_info[_SSF_TAG_MAX] = {
        [SSF_TAG_USER] = STR_TAG(user, SSF_IPC_MAX_USER, true),
        [SSF_TAG_SERVICE] = STR_TAG(service, SSF_IPC_MAX_SHORT, false),
        [SSF_TAG_RHOST] = STR_TAG(rhost, SSF_IPC_MAX_SHORT, false),
        [SSF_TAG_TTY] = STR_TAG(tty, SSF_IPC_MAX_SHORT, false),
        [SSF_TAG_STATUS] = { .kind = TLV_I32 },
        [SSF_TAG_LEVEL] = { .kind = TLV_U8 },
        [SSF_TAG_MESSAGE] = STR_TAG(message, SSF_IPC_MAX_MESSAGE, false),
        [SSF_TAG_DETECTION] = STR_TAG(detection, SSF_IPC_MAX_SHORT, false),
        [SSF_TAG_VERB] = STR_TAG(verb, SSF_IPC_MAX_SHORT, true),
        [SSF_TAG_ARGS] = STR_TAG(args, SSF_IPC_MAX_JSON, false),
        [SSF_TAG_BODY] = STR_TAG(body, SSF_IPC_MAX_JSON, false),
        [SSF_TAG_MORE] = { .kind = TLV_FLAG, .offset = offsetof(SsfIpcMsg, more) },
        [SSF_TAG_DRY_RUN] = { .kind = TLV_FLAG, .offset = offsetof(SsfIpcMsg, dry_run) },
        [SSF_TAG_REASON_USER] = STR_TAG(reason_user, SSF_IPC_MAX_SHORT, false),
};

#define TAG_BIT(t) (UINT32_C(1) << (t))

typedef struct TypeInfo {
        uint32_t allowed;
        uint32_t required;
} TypeInfo;

static const TypeInfo type_info[] = {
        [SSF_IPC_PAM_QUERY] = {
                .allowed = TAG_BIT(SSF_TAG_USER) | TAG_BIT(SSF_TAG_SERVICE) | TAG_BIT(SSF_TAG_RHOST) |
                           TAG_BIT(SSF_TAG_TTY),
                .required = TAG_BIT(SSF_TAG_USER),
        },
        [SSF_IPC_PAM_REPLY] = {
                .allowed = TAG_BIT(SSF_TAG_STATUS) | TAG_BIT(SSF_TAG_LEVEL) | TAG_BIT(SSF_TAG_MESSAGE) |
                           TAG_BIT(SSF_TAG_DETECTION) | TAG_BIT(SSF_TAG_DRY_RUN) |
                           TAG_BIT(SSF_TAG_REASON_USER),
                .required = TAG_BIT(SSF_TAG_STATUS) | TAG_BIT(SSF_TAG_LEVEL),
        },
        [SSF_IPC_CTL_REQUEST] = {
                .allowed = TAG_BIT(SSF_TAG_VERB) | TAG_BIT(SSF_TAG_ARGS),
                .required = TAG_BIT(SSF_TAG_VERB),
        },
        [SSF_IPC_CTL_REPLY] = {
                .allowed = TAG_BIT(SSF_TAG_STATUS) | TAG_BIT(SSF_TAG_BODY) | TAG_BIT(SSF_TAG_MESSAGE) |
                           TAG_BIT(SSF_TAG_MORE),
                .required = TAG_BIT(SSF_TAG_STATUS),
        },
};

static const TypeInfo *type_lookup(uint16_t type) {
        if (type == 0 || type >= ARRAY_SIZE(type_info))
                return NULL;
        return &type_info[type];
}

/* The STATUS TLV carries 0 or -errno. */
#define STATUS_MIN (-4095)

static char **msg_string(SsfIpcMsg *m, size_t offset) {
        return (char **) ((uint8_t *) m + offset);
}

static const char *msg_string_const(const SsfIpcMsg *m, size_t offset) {
        return *(char *const *) ((const uint8_t *) m + offset);
}

void ssf_ipc_msg_done(SsfIpcMsg *m) {
        if (!m)
                return;
        free(m->user);
        free(m->service);
        free(m->rhost);
        free(m->tty);
        free(m->message);
        free(m->detection);
        free(m->reason_user);
        free(m->verb);
        free(m->args);
        free(m->body);
        *m = (SsfIpcMsg) {};
}

static void put_u16(uint8_t *p, uint16_t v) {
        v = htobe16(v);
        memcpy(p, &v, sizeof(v));
}

static void put_u32(uint8_t *p, uint32_t v) {
        v = htobe32(v);
        memcpy(p, &v, sizeof(v));
}

static uint16_t get_u16(const uint8_t *p) {
        uint16_t v;
        memcpy(&v, p, sizeof(v));
        return be16toh(v);
}

static uint32_t get_u32(const uint8_t *p) {
        uint32_t v;
        memcpy(&v, p, sizeof(v));
        return be32toh(v);
}

/* Appends one TLV at *pos. Returns 0, or -ENOBUFS when it does not fit. */
static int put_tlv(uint8_t *buf, size_t bufsize, size_t *pos, uint16_t tag, const void *value,
                   size_t len) {
        if (len > UINT16_MAX)
                return -EINVAL;
        if (*pos > bufsize || bufsize - *pos < TLV_HEADER_SIZE + len)
                return -ENOBUFS;
        put_u16(buf + *pos, tag);
        put_u16(buf + *pos + 2, (uint16_t) len);
        if (len > 0)
                memcpy(buf + *pos + TLV_HEADER_SIZE, value, len);
        *pos += TLV_HEADER_SIZE + len;
        return 0;
}

static bool tag_present(const SsfIpcMsg *m, uint16_t tag) {
        const TagInfo *ti = &tag_info[tag];

        switch (ti->kind) {
        case TLV_STRING:
                return msg_string_const(m, ti->offset) != NULL;
        case TLV_I32:
                return m->has_status;
        case TLV_U8:
                return m->has_level;
        case TLV_FLAG:
                return *(const int *) ((const uint8_t *) m + ti->offset) != 0;
        }
        return false;
}

int ssf_ipc_encode(const SsfIpcMsg *m, uint8_t *buf, size_t bufsize) {
        const TypeInfo *type;
        size_t pos = SSF_IPC_HEADER_SIZE;
        int r;

        if (!m || !buf)
                return -EINVAL;
        type = type_lookup(m->type);
        if (!type)
                return -EINVAL;

        /* Validate everything before writing a byte. */
        for (uint16_t tag = 1; tag < _SSF_TAG_MAX; tag++) {
                const TagInfo *ti = &tag_info[tag];
                bool present;

                if (!(type->allowed & TAG_BIT(tag)))
                        continue;
                present = tag_present(m, tag);
                if (!present) {
                        if (type->required & TAG_BIT(tag))
                                return -EINVAL;
                        continue;
                }
                if (ti->kind == TLV_STRING) {
                        size_t l = strlen(msg_string_const(m, ti->offset));
                        if (l > ti->max || (ti->nonempty && l == 0))
                                return -EINVAL;
                } else if (ti->kind == TLV_I32) {
                        if (m->status > 0 || m->status < STATUS_MIN)
                                return -EINVAL;
                } else if (ti->kind == TLV_U8 && m->level >= _RISK_MAX)
                        return -EINVAL;
        }

        if (bufsize < SSF_IPC_HEADER_SIZE)
                return -ENOBUFS;

        for (uint16_t tag = 1; tag < _SSF_TAG_MAX; tag++) {
                const TagInfo *ti = &tag_info[tag];

                if (!(type->allowed & TAG_BIT(tag)) || !tag_present(m, tag))
                        continue;

                switch (ti->kind) {
                case TLV_STRING: {
                        const char *s = msg_string_const(m, ti->offset);
                        r = put_tlv(buf, bufsize, &pos, tag, s, strlen(s));
                        break;
                }
                case TLV_I32: {
                        uint8_t v[4];
                        put_u32(v, (uint32_t) m->status);
                        r = put_tlv(buf, bufsize, &pos, tag, v, sizeof(v));
                        break;
                }
                case TLV_U8:
                        r = put_tlv(buf, bufsize, &pos, tag, &m->level, 1);
                        break;
                case TLV_FLAG:
                        r = put_tlv(buf, bufsize, &pos, tag, NULL, 0);
                        break;
                default:
                        r = -EINVAL;
                }
                if (r < 0)
                        return r;
        }

        if (pos > SSF_IPC_MAX_FRAME)
                return -EINVAL;

        put_u32(buf, SSF_IPC_MAGIC);
        put_u16(buf + 4, SSF_IPC_VERSION);
        put_u16(buf + 6, m->type);
        put_u32(buf + 8, (uint32_t) (pos - SSF_IPC_HEADER_SIZE));
        return (int) pos;
}

int ssf_ipc_decode(const uint8_t *buf, size_t len, SsfIpcMsg *ret) {
        SsfIpcMsg m = {};
        const TypeInfo *type;
        uint32_t seen = 0;
        unsigned n_tlvs = 0;
        size_t pos;
        int r;

        if (!ret)
                return -EINVAL;
        *ret = (SsfIpcMsg) {};
        if (!buf && len > 0)
                return -EINVAL;

        if (len > SSF_IPC_MAX_FRAME)
                return -EMSGSIZE;
        if (len < SSF_IPC_HEADER_SIZE)
                return -EBADMSG;
        if (get_u32(buf) != SSF_IPC_MAGIC || get_u16(buf + 4) != SSF_IPC_VERSION)
                return -EPROTO;

        m.type = get_u16(buf + 6);
        type = type_lookup(m.type);
        if (!type)
                return -EBADMSG;
        if (get_u32(buf + 8) != len - SSF_IPC_HEADER_SIZE)
                return -EBADMSG;

        for (pos = SSF_IPC_HEADER_SIZE; pos < len;) {
                uint16_t tag, l;
                const uint8_t *value;
                const TagInfo *ti;

                if (++n_tlvs > SSF_IPC_MAX_TLVS || len - pos < TLV_HEADER_SIZE) {
                        r = -EBADMSG;
                        goto fail;
                }
                tag = get_u16(buf + pos);
                l = get_u16(buf + pos + 2);
                value = buf + pos + TLV_HEADER_SIZE;
                if (len - pos - TLV_HEADER_SIZE < l) {
                        r = -EBADMSG;
                        goto fail;
                }
                pos += TLV_HEADER_SIZE + l;

                /* Unknown, foreign to the type, or repeated. */
                if (tag == 0 || tag >= _SSF_TAG_MAX || !(type->allowed & TAG_BIT(tag)) ||
                    (seen & TAG_BIT(tag))) {
                        r = -EBADMSG;
                        goto fail;
                }
                seen |= TAG_BIT(tag);
                ti = &tag_info[tag];

                switch (ti->kind) {
                case TLV_STRING: {
                        char *s;

                        if (l > ti->max || (ti->nonempty && l == 0) || memchr(value, 0, l)) {
                                r = -EBADMSG;
                                goto fail;
                        }
                        s = malloc((size_t) l + 1);
                        if (!s) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        if (l > 0)
                                memcpy(s, value, l);
                        s[l] = 0;
                        *msg_string(&m, ti->offset) = s;
                        break;
                }
                case TLV_I32: {
                        int32_t v;

                        if (l != 4) {
                                r = -EBADMSG;
                                goto fail;
                        }
                        v = (int32_t) get_u32(value);
                        if (v > 0 || v < STATUS_MIN) {
                                r = -EBADMSG;
                                goto fail;
                        }
                        m.status = v;
                        m.has_status = 1;
                        break;
                }
                case TLV_U8:
                        if (l != 1 || value[0] >= _RISK_MAX) {
                                r = -EBADMSG;
                                goto fail;
                        }
                        m.level = value[0];
                        m.has_level = 1;
                        break;
                case TLV_FLAG:
                        if (l != 0) {
                                r = -EBADMSG;
                                goto fail;
                        }
                        *(int *) ((uint8_t *) &m + ti->offset) = 1;
                        break;
                }
        }

        if ((seen & type->required) != type->required) {
                r = -EBADMSG;
                goto fail;
        }

        *ret = m;
        return 0;

fail:
        ssf_ipc_msg_done(&m);
        return r;
}
