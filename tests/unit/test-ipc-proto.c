/* SPDX-License-Identifier: MIT */
/* The IPC wire format (common/ipc-proto.c) and framed I/O (common/ipc-io.c): round trips, every
 * malformed-frame case the decoder must reject, and deadline/size behaviour on real sockets. */
#include <endian.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "level.h"
#include "macro.h"
#include "ssf-ipc.h"

/* SsfIpcMsg has plain char * members; the tests point them at literals. */
#define STR(s) ((char *) (uintptr_t) (s))

/* ---- a tiny frame builder, independent of the encoder under test ---- */

typedef struct Frame {
        uint8_t b[SSF_IPC_MAX_FRAME + 64];
        size_t n;
} Frame;

static void put16(Frame *f, uint16_t v) {
        f->b[f->n++] = (uint8_t) (v >> 8);
        f->b[f->n++] = (uint8_t) v;
}

static void put32(Frame *f, uint32_t v) {
        put16(f, (uint16_t) (v >> 16));
        put16(f, (uint16_t) v);
}

static void frame_start(Frame *f, uint32_t magic, uint16_t version, uint16_t type) {
        f->n = 0;
        put32(f, magic);
        put16(f, version);
        put16(f, type);
        put32(f, 0); /* fixed by frame_end() */
}

static void frame_tlv(Frame *f, uint16_t tag, const void *v, uint16_t len) {
        put16(f, tag);
        put16(f, len);
        memcpy(f->b + f->n, v, len);
        f->n += len;
}

static void frame_str(Frame *f, uint16_t tag, const char *s) {
        frame_tlv(f, tag, s, (uint16_t) strlen(s));
}

static void frame_i32(Frame *f, uint16_t tag, int32_t v) {
        uint32_t be = htobe32((uint32_t) v);
        frame_tlv(f, tag, &be, 4);
}

static void frame_u8(Frame *f, uint16_t tag, uint8_t v) {
        frame_tlv(f, tag, &v, 1);
}

static void frame_end(Frame *f) {
        uint32_t len = htobe32((uint32_t) (f->n - SSF_IPC_HEADER_SIZE));
        memcpy(f->b + 8, &len, 4);
}

static void frame_reply(Frame *f) {
        frame_start(f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_REPLY);
        frame_i32(f, SSF_TAG_STATUS, 0);
        frame_u8(f, SSF_TAG_LEVEL, RISK_HIGH);
}

static int decode(const Frame *f) {
        SsfIpcMsg m;
        int r = ssf_ipc_decode(f->b, f->n, &m);
        if (r < 0) {
                /* On failure *ret is left zeroed. */
                assert_null(m.user);
                assert_null(m.message);
                assert_int_equal(m.type, 0);
                assert_int_equal(m.has_status, 0);
        }
        ssf_ipc_msg_done(&m);
        return r;
}

/* ---- round trips ---- */

static void roundtrip(const SsfIpcMsg *in, SsfIpcMsg *out) {
        uint8_t buf[SSF_IPC_MAX_FRAME];
        int n = ssf_ipc_encode(in, buf, sizeof(buf));
        assert_true(n >= (int) SSF_IPC_HEADER_SIZE);
        assert_int_equal(ssf_ipc_decode(buf, (size_t) n, out), 0);
        assert_int_equal(out->type, in->type);
}

static void test_roundtrip_pam_query(void **state) {
        SsfIpcMsg in = { .type = SSF_IPC_PAM_QUERY, .user = STR("alice"), .service = STR("sshd"),
                         .rhost = STR("198.51.100.7"), .tty = STR("ssh"),
                         /* not valid for the type: must not be written */
                         .verb = STR("status"), .has_level = 1, .level = 3 };
        SsfIpcMsg out;

        roundtrip(&in, &out);
        assert_string_equal(out.user, "alice");
        assert_string_equal(out.service, "sshd");
        assert_string_equal(out.rhost, "198.51.100.7");
        assert_string_equal(out.tty, "ssh");
        assert_null(out.verb);
        assert_int_equal(out.has_level, 0);
        ssf_ipc_msg_done(&out);
        assert_null(out.user);

        SsfIpcMsg minimal = { .type = SSF_IPC_PAM_QUERY, .user = STR("bob") };
        roundtrip(&minimal, &out);
        assert_string_equal(out.user, "bob");
        assert_null(out.service);
        assert_null(out.rhost);
        assert_null(out.tty);
        ssf_ipc_msg_done(&out);
}

static void test_roundtrip_pam_reply(void **state) {
        for (int l = RISK_NONE; l < _RISK_MAX; l++) {
                SsfIpcMsg in = { .type = SSF_IPC_PAM_REPLY, .has_status = 1, .status = 0, .has_level = 1,
                                 .level = (uint8_t) l, .message = STR("Access denied."),
                                 .detection = STR("session-revoked") };
                SsfIpcMsg out;

                roundtrip(&in, &out);
                assert_int_equal(out.has_status, 1);
                assert_int_equal(out.status, 0);
                assert_int_equal(out.has_level, 1);
                assert_int_equal(out.level, l);
                assert_string_equal(out.message, "Access denied.");
                assert_string_equal(out.detection, "session-revoked");
                ssf_ipc_msg_done(&out);
        }

        SsfIpcMsg err = { .type = SSF_IPC_PAM_REPLY, .has_status = 1, .status = -EIO, .has_level = 1 };
        SsfIpcMsg out;
        roundtrip(&err, &out);
        assert_int_equal(out.status, -EIO);
        assert_null(out.message);
        assert_null(out.reason_user);
        ssf_ipc_msg_done(&out);

        /* REASON_USER: an optional string of PAM_REPLY only. */
        SsfIpcMsg why = { .type = SSF_IPC_PAM_REPLY, .has_status = 1, .has_level = 1,
                          .level = RISK_HIGH, .reason_user = STR("Your laptop is not compliant."),
                          .dry_run = 1 };
        roundtrip(&why, &out);
        assert_string_equal(out.reason_user, "Your laptop is not compliant.");
        assert_int_equal(out.dry_run, 1);
        ssf_ipc_msg_done(&out);
        assert_null(out.reason_user);

        SsfIpcMsg ctl = { .type = SSF_IPC_CTL_REPLY, .has_status = 1, .reason_user = STR("x") };
        roundtrip(&ctl, &out);
        assert_null(out.reason_user); /* not valid for the type: not written */
        ssf_ipc_msg_done(&out);
}

static void test_roundtrip_ctl(void **state) {
        SsfIpcMsg req = { .type = SSF_IPC_CTL_REQUEST, .verb = STR("risk"),
                          .args = STR("{\"user\":\"alice\"}") };
        SsfIpcMsg out;

        roundtrip(&req, &out);
        assert_string_equal(out.verb, "risk");
        assert_string_equal(out.args, "{\"user\":\"alice\"}");
        ssf_ipc_msg_done(&out);

        /* A body of the maximum JSON size, and an empty optional string. */
        char *body = malloc(SSF_IPC_MAX_JSON + 1);
        assert_non_null(body);
        memset(body, 'x', SSF_IPC_MAX_JSON);
        body[SSF_IPC_MAX_JSON] = 0;
        SsfIpcMsg rep = { .type = SSF_IPC_CTL_REPLY, .has_status = 1, .status = -ENOENT, .body = body,
                          .message = STR("") };
        roundtrip(&rep, &out);
        assert_int_equal(out.status, -ENOENT);
        assert_int_equal(strlen(out.body), SSF_IPC_MAX_JSON);
        assert_string_equal(out.message, "");
        ssf_ipc_msg_done(&out);
        free(body);
}

static void test_roundtrip_limits(void **state) {
        char user[SSF_IPC_MAX_USER + 1];
        SsfIpcMsg out;

        memset(user, 'u', SSF_IPC_MAX_USER);
        user[SSF_IPC_MAX_USER] = 0;
        SsfIpcMsg in = { .type = SSF_IPC_PAM_QUERY, .user = user };
        roundtrip(&in, &out);
        assert_int_equal(strlen(out.user), SSF_IPC_MAX_USER);
        ssf_ipc_msg_done(&out);
}

/* ---- encoder errors ---- */

static void test_encode_errors(void **state) {
        uint8_t buf[SSF_IPC_MAX_FRAME];
        char big[SSF_IPC_MAX_MESSAGE + 2];

        memset(big, 'm', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;

        /* Unknown type, missing required members. */
        assert_int_equal(ssf_ipc_encode(&(SsfIpcMsg) { .type = 0, .user = STR("a") }, buf, sizeof(buf)),
                         -EINVAL);
        assert_int_equal(ssf_ipc_encode(&(SsfIpcMsg) { .type = 99 }, buf, sizeof(buf)), -EINVAL);
        assert_int_equal(ssf_ipc_encode(&(SsfIpcMsg) { .type = SSF_IPC_PAM_QUERY }, buf, sizeof(buf)),
                         -EINVAL);
        assert_int_equal(ssf_ipc_encode(&(SsfIpcMsg) { .type = SSF_IPC_PAM_QUERY, .user = STR("") }, buf,
                                        sizeof(buf)),
                         -EINVAL);
        assert_int_equal(ssf_ipc_encode(&(SsfIpcMsg) { .type = SSF_IPC_PAM_REPLY, .has_status = 1 }, buf,
                                        sizeof(buf)),
                         -EINVAL);
        assert_int_equal(ssf_ipc_encode(&(SsfIpcMsg) { .type = SSF_IPC_PAM_REPLY, .has_level = 1 }, buf,
                                        sizeof(buf)),
                         -EINVAL);
        assert_int_equal(ssf_ipc_encode(&(SsfIpcMsg) { .type = SSF_IPC_CTL_REQUEST }, buf, sizeof(buf)),
                         -EINVAL);
        assert_int_equal(ssf_ipc_encode(&(SsfIpcMsg) { .type = SSF_IPC_CTL_REPLY }, buf, sizeof(buf)),
                         -EINVAL);

        /* Out-of-range values and oversize strings. */
        assert_int_equal(ssf_ipc_encode(&(SsfIpcMsg) { .type = SSF_IPC_PAM_REPLY, .has_status = 1,
                                                       .has_level = 1, .level = _RISK_MAX },
                                        buf, sizeof(buf)),
                         -EINVAL);
        assert_int_equal(ssf_ipc_encode(&(SsfIpcMsg) { .type = SSF_IPC_PAM_REPLY, .has_status = 1,
                                                       .status = 1, .has_level = 1 },
                                        buf, sizeof(buf)),
                         -EINVAL);
        assert_int_equal(ssf_ipc_encode(&(SsfIpcMsg) { .type = SSF_IPC_PAM_REPLY, .has_status = 1,
                                                       .has_level = 1, .message = big },
                                        buf, sizeof(buf)),
                         -EINVAL);
        big[SSF_IPC_MAX_USER + 1] = 0;
        assert_int_equal(ssf_ipc_encode(&(SsfIpcMsg) { .type = SSF_IPC_PAM_QUERY, .user = big }, buf,
                                        sizeof(buf)),
                         -EINVAL);

        /* Too small a buffer. */
        SsfIpcMsg q = { .type = SSF_IPC_PAM_QUERY, .user = STR("alice") };
        int n = ssf_ipc_encode(&q, buf, sizeof(buf));
        assert_int_equal(n, SSF_IPC_HEADER_SIZE + 4 + 5);
        assert_int_equal(ssf_ipc_encode(&q, buf, (size_t) n - 1), -ENOBUFS);
        assert_int_equal(ssf_ipc_encode(&q, buf, 4), -ENOBUFS);
        assert_int_equal(ssf_ipc_encode(&q, buf, (size_t) n), n);
        assert_int_equal(ssf_ipc_encode(NULL, buf, sizeof(buf)), -EINVAL);
}

static void test_encode_wire_format(void **state) {
        static const uint8_t expected[] = {
                0x53, 0x53, 0x46, 0x31, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0d, /* header */
                0x00, 0x05, 0x00, 0x04, 0xff, 0xff, 0xff, 0xfb,                         /* STATUS -5 */
                0x00, 0x06, 0x00, 0x01, 0x02,                                           /* LEVEL medium */
        };
        uint8_t buf[64];
        SsfIpcMsg m = { .type = SSF_IPC_PAM_REPLY, .has_status = 1, .status = -5, .has_level = 1,
                        .level = RISK_MEDIUM };

        assert_int_equal(ssf_ipc_encode(&m, buf, sizeof(buf)), sizeof(expected));
        assert_memory_equal(buf, expected, sizeof(expected));
}

/* ---- malformed frames ---- */

static void test_decode_header_errors(void **state) {
        Frame f;

        frame_reply(&f);
        frame_end(&f);
        assert_int_equal(decode(&f), 0);

        /* Every truncation of a valid frame is rejected. */
        for (size_t n = 0; n < f.n; n++) {
                SsfIpcMsg m;
                int r = ssf_ipc_decode(f.b, n, &m);
                assert_true(r == -EBADMSG || r == -EPROTO);
        }

        frame_start(&f, SSF_IPC_MAGIC ^ 1, SSF_IPC_VERSION, SSF_IPC_PAM_REPLY);
        frame_end(&f);
        assert_int_equal(decode(&f), -EPROTO);

        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION + 1, SSF_IPC_PAM_REPLY);
        frame_end(&f);
        assert_int_equal(decode(&f), -EPROTO);
        frame_start(&f, SSF_IPC_MAGIC, 0, SSF_IPC_PAM_REPLY);
        frame_end(&f);
        assert_int_equal(decode(&f), -EPROTO);

        /* Unknown types. */
        for (uint16_t t = 0; t < 8; t++) {
                if (t >= SSF_IPC_PAM_QUERY && t <= SSF_IPC_CTL_REPLY)
                        continue;
                frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, t);
                frame_end(&f);
                assert_int_equal(decode(&f), -EBADMSG);
        }

        /* len field disagreeing with the datagram size, either way. */
        frame_reply(&f);
        frame_end(&f);
        f.b[11]++;
        assert_int_equal(decode(&f), -EBADMSG);
        f.b[11] -= 2;
        assert_int_equal(decode(&f), -EBADMSG);

        /* Trailing byte after a valid frame. */
        frame_reply(&f);
        frame_end(&f);
        f.b[f.n++] = 0;
        assert_int_equal(decode(&f), -EBADMSG);

        /* Oversize frame. */
        memset(&f, 0, sizeof(f));
        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_CTL_REPLY);
        f.n = SSF_IPC_MAX_FRAME + 1;
        frame_end(&f);
        assert_int_equal(decode(&f), -EMSGSIZE);

        SsfIpcMsg m;
        assert_int_equal(ssf_ipc_decode(NULL, 0, &m), -EBADMSG);
        assert_int_equal(ssf_ipc_decode(f.b, 12, NULL), -EINVAL);
}

static void test_decode_tlv_errors(void **state) {
        Frame f;
        char s[SSF_IPC_MAX_MESSAGE + 1];

        /* A TLV header cut short, and a TLV value running past the end. */
        frame_reply(&f);
        put16(&f, SSF_TAG_MESSAGE);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_reply(&f);
        put16(&f, SSF_TAG_MESSAGE);
        put16(&f, 10);
        f.b[f.n++] = 'x';
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        /* Duplicate tag. */
        frame_reply(&f);
        frame_u8(&f, SSF_TAG_LEVEL, RISK_LOW);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_QUERY);
        frame_str(&f, SSF_TAG_USER, "alice");
        frame_str(&f, SSF_TAG_TTY, "a");
        frame_str(&f, SSF_TAG_TTY, "b");
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        /* Unknown tags. */
        uint16_t unknown[] = { 0, _SSF_TAG_MAX, 31, 32, 0xffff };
        for (size_t i = 0; i < ARRAY_SIZE(unknown); i++) {
                frame_reply(&f);
                frame_str(&f, unknown[i], "x");
                frame_end(&f);
                assert_int_equal(decode(&f), -EBADMSG);
        }

        /* Tags foreign to the type. */
        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_QUERY);
        frame_str(&f, SSF_TAG_USER, "alice");
        frame_u8(&f, SSF_TAG_LEVEL, RISK_NONE);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_reply(&f);
        frame_str(&f, SSF_TAG_BODY, "{}");
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_CTL_REQUEST);
        frame_str(&f, SSF_TAG_VERB, "status");
        frame_str(&f, SSF_TAG_USER, "alice");
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_CTL_REPLY);
        frame_i32(&f, SSF_TAG_STATUS, 0);
        frame_u8(&f, SSF_TAG_LEVEL, 0);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        /* Missing required TLVs. */
        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_QUERY);
        frame_str(&f, SSF_TAG_SERVICE, "sshd");
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_REPLY);
        frame_i32(&f, SSF_TAG_STATUS, 0);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_REPLY);
        frame_u8(&f, SSF_TAG_LEVEL, 0);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_CTL_REQUEST);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        /* Embedded NUL, empty required strings, overlong strings. */
        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_QUERY);
        frame_tlv(&f, SSF_TAG_USER, "al\0ce", 5);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_QUERY);
        frame_tlv(&f, SSF_TAG_USER, "alice\0", 6);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_QUERY);
        frame_str(&f, SSF_TAG_USER, "");
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_CTL_REQUEST);
        frame_str(&f, SSF_TAG_VERB, "");
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        memset(s, 'u', sizeof(s));
        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_QUERY);
        frame_tlv(&f, SSF_TAG_USER, s, SSF_IPC_MAX_USER + 1);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_QUERY);
        frame_str(&f, SSF_TAG_USER, "alice");
        frame_tlv(&f, SSF_TAG_RHOST, s, SSF_IPC_MAX_SHORT + 1);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_reply(&f);
        frame_tlv(&f, SSF_TAG_MESSAGE, s, SSF_IPC_MAX_MESSAGE + 1);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_reply(&f);
        frame_tlv(&f, SSF_TAG_MESSAGE, s, SSF_IPC_MAX_MESSAGE);
        frame_end(&f);
        assert_int_equal(decode(&f), 0);

        /* REASON_USER: at most SSF_IPC_MAX_SHORT bytes, once, no NUL, PAM_REPLY only. */
        frame_reply(&f);
        frame_tlv(&f, SSF_TAG_REASON_USER, s, SSF_IPC_MAX_SHORT);
        frame_end(&f);
        assert_int_equal(decode(&f), 0);

        frame_reply(&f);
        frame_tlv(&f, SSF_TAG_REASON_USER, s, SSF_IPC_MAX_SHORT + 1);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_reply(&f);
        frame_str(&f, SSF_TAG_REASON_USER, "a");
        frame_str(&f, SSF_TAG_REASON_USER, "b");
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_reply(&f);
        frame_tlv(&f, SSF_TAG_REASON_USER, "a\0b", 3);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_QUERY);
        frame_str(&f, SSF_TAG_USER, "alice");
        frame_str(&f, SSF_TAG_REASON_USER, "x");
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_CTL_REPLY);
        frame_i32(&f, SSF_TAG_STATUS, 0);
        frame_str(&f, SSF_TAG_REASON_USER, "x");
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);
}

static void test_decode_value_errors(void **state) {
        Frame f;

        /* LEVEL: exactly one byte, a known level. */
        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_REPLY);
        frame_i32(&f, SSF_TAG_STATUS, 0);
        frame_u8(&f, SSF_TAG_LEVEL, _RISK_MAX);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_REPLY);
        frame_i32(&f, SSF_TAG_STATUS, 0);
        frame_tlv(&f, SSF_TAG_LEVEL, "\x01\x01", 2);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_REPLY);
        frame_i32(&f, SSF_TAG_STATUS, 0);
        frame_tlv(&f, SSF_TAG_LEVEL, "", 0);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        /* STATUS: exactly four bytes, 0 or -errno. */
        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_REPLY);
        frame_tlv(&f, SSF_TAG_STATUS, "\0\0\0", 3);
        frame_u8(&f, SSF_TAG_LEVEL, 0);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_REPLY);
        frame_i32(&f, SSF_TAG_STATUS, 1);
        frame_u8(&f, SSF_TAG_LEVEL, 0);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_REPLY);
        frame_i32(&f, SSF_TAG_STATUS, INT32_MIN);
        frame_u8(&f, SSF_TAG_LEVEL, 0);
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);

        /* TLV order on the wire does not matter. */
        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_REPLY);
        frame_u8(&f, SSF_TAG_LEVEL, RISK_LOW);
        frame_str(&f, SSF_TAG_DETECTION, "opt-out");
        frame_i32(&f, SSF_TAG_STATUS, -ENOENT);
        frame_end(&f);
        SsfIpcMsg m;
        assert_int_equal(ssf_ipc_decode(f.b, f.n, &m), 0);
        assert_int_equal(m.level, RISK_LOW);
        assert_int_equal(m.status, -ENOENT);
        assert_string_equal(m.detection, "opt-out");
        ssf_ipc_msg_done(&m);
}

static void test_decode_too_many_tlvs(void **state) {
        Frame f;

        /* A long run of TLVs is cut off (a tag may appear once, and at most SSF_IPC_MAX_TLVS). */
        frame_start(&f, SSF_IPC_MAGIC, SSF_IPC_VERSION, SSF_IPC_PAM_QUERY);
        for (unsigned i = 0; i <= SSF_IPC_MAX_TLVS; i++)
                frame_str(&f, SSF_TAG_USER, "a");
        frame_end(&f);
        assert_int_equal(decode(&f), -EBADMSG);
}

/* ---- I/O ---- */

static void seqpacket_pair(int fds[2]) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds), 0);
}

static void test_io_roundtrip(void **state) {
        int fds[2];
        SsfIpcMsg in = { .type = SSF_IPC_PAM_QUERY, .user = STR("alice"), .tty = STR("pts/1") };
        SsfIpcMsg out;

        seqpacket_pair(fds);
        assert_int_equal(ssf_ipc_send(fds[0], &in, ssf_now_usec() + 1000000), 0);
        assert_int_equal(ssf_ipc_recv(fds[1], &out, ssf_now_usec() + 1000000), 0);
        assert_int_equal(out.type, SSF_IPC_PAM_QUERY);
        assert_string_equal(out.user, "alice");
        assert_string_equal(out.tty, "pts/1");
        ssf_ipc_msg_done(&out);

        /* An invalid message is not sent. */
        assert_int_equal(ssf_ipc_send(fds[0], &(SsfIpcMsg) { .type = SSF_IPC_PAM_QUERY }, ssf_now_usec() + 1000),
                         -EINVAL);
        close(fds[0]);
        close(fds[1]);
}

static void test_io_timeout_and_eof(void **state) {
        int fds[2];
        SsfIpcMsg out;

        seqpacket_pair(fds);
        /* Nothing to read: the deadline ends the wait. A deadline in the past times out at once. */
        assert_int_equal(ssf_ipc_recv(fds[1], &out, ssf_now_usec() + 50000), -ETIMEDOUT);
        assert_int_equal(ssf_ipc_recv(fds[1], &out, 0), -ETIMEDOUT);
        assert_null(out.user);

        /* The peer hangs up without an answer. */
        close(fds[0]);
        assert_int_equal(ssf_ipc_recv(fds[1], &out, ssf_now_usec() + 1000000), -ECONNRESET);

        /* Sending to a closed peer: an error, not SIGPIPE. */
        assert_int_equal(ssf_ipc_send(fds[1], &(SsfIpcMsg) { .type = SSF_IPC_PAM_QUERY, .user = STR("a") },
                                      ssf_now_usec() + 1000000),
                         -EPIPE);
        close(fds[1]);

        assert_int_equal(ssf_ipc_recv(-1, &out, ssf_now_usec()), -EBADF);
}

static void test_io_garbage_and_oversize(void **state) {
        int fds[2];
        SsfIpcMsg out;
        uint8_t *big;

        seqpacket_pair(fds);
        assert_int_equal(send(fds[0], "garbage!garbage!", 16, 0), 16);
        assert_int_equal(ssf_ipc_recv(fds[1], &out, ssf_now_usec() + 1000000), -EPROTO);

        /* A datagram larger than SSF_IPC_MAX_FRAME whose first bytes are a valid frame. */
        int sz = 256 * 1024;
        assert_int_equal(setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)), 0);
        big = calloc(1, SSF_IPC_MAX_FRAME + 100);
        assert_non_null(big);
        int n = ssf_ipc_encode(&(SsfIpcMsg) { .type = SSF_IPC_PAM_QUERY, .user = STR("a") }, big,
                               SSF_IPC_MAX_FRAME);
        assert_true(n > 0);
        assert_int_equal(send(fds[0], big, SSF_IPC_MAX_FRAME + 100, 0), SSF_IPC_MAX_FRAME + 100);
        assert_int_equal(ssf_ipc_recv(fds[1], &out, ssf_now_usec() + 1000000), -EMSGSIZE);

        /* Exactly SSF_IPC_MAX_FRAME is fine for the transport (the decoder then judges it). */
        assert_int_equal(send(fds[0], big, SSF_IPC_MAX_FRAME, 0), SSF_IPC_MAX_FRAME);
        assert_int_equal(ssf_ipc_recv(fds[1], &out, ssf_now_usec() + 1000000), -EBADMSG);
        free(big);
        close(fds[0]);
        close(fds[1]);
}

/* ---- connect ---- */

typedef struct Listener {
        char dir[64];
        char path[128];
        int fd;
} Listener;

static void listener_start(Listener *l) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        snprintf(l->dir, sizeof(l->dir), "/tmp/test-ipc-XXXXXX");
        assert_non_null(mkdtemp(l->dir));
        snprintf(l->path, sizeof(l->path), "%s/sock", l->dir);
        l->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        assert_true(l->fd >= 0);
        strcpy(sa.sun_path, l->path);
        assert_int_equal(bind(l->fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(l->fd, 4), 0);
}

static void listener_stop(Listener *l) {
        close(l->fd);
        unlink(l->path);
        rmdir(l->dir);
}

static void test_connect(void **state) {
        Listener l;
        int fd, c;

        listener_start(&l);

        fd = ssf_ipc_connect(l.path, (uid_t) -1, ssf_now_usec() + 1000000);
        if (geteuid() == 0) {
                /* Root-owned socket, root peer: trusted. Exchange one frame over it. */
                SsfIpcMsg out;
                assert_true(fd >= 3);
                c = accept4(l.fd, NULL, NULL, SOCK_CLOEXEC);
                assert_true(c >= 0);
                assert_int_equal(ssf_ipc_send(fd, &(SsfIpcMsg) { .type = SSF_IPC_PAM_QUERY, .user = STR("z") },
                                              ssf_now_usec() + 1000000),
                                 0);
                assert_int_equal(ssf_ipc_recv(c, &out, ssf_now_usec() + 1000000), 0);
                assert_string_equal(out.user, "z");
                ssf_ipc_msg_done(&out);
                close(c);
                close(fd);

                /* Our own uid allowed explicitly works too. */
                fd = ssf_ipc_connect(l.path, geteuid(), ssf_now_usec() + 1000000);
                assert_true(fd >= 3);
                close(fd);

                /* A socket file not owned by root (or allowed_uid) is refused before connecting. */
                assert_int_equal(chown(l.path, 65534, 65534), 0);
                assert_int_equal(ssf_ipc_connect(l.path, (uid_t) -1, ssf_now_usec() + 1000000), -EPERM);
                fd = ssf_ipc_connect(l.path, 65534, ssf_now_usec() + 1000000);
                assert_true(fd >= 3); /* the path's owner is allowed, the peer is root */
                close(fd);
        } else
                assert_int_equal(fd, -EPERM); /* the socket file is ours, not root's */

        listener_stop(&l);
}

static void test_connect_fd_above_stdio(void **state) {
        Listener l;
        int saved, fd;

        if (geteuid() != 0)
                skip();
        listener_start(&l);

        /* With fd 0 closed, socket() returns 0; the connected fd must not stay there. */
        saved = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 10);
        assert_true(saved >= 0);
        close(STDIN_FILENO);
        fd = ssf_ipc_connect(l.path, (uid_t) -1, ssf_now_usec() + 1000000);
        assert_true(fd >= 3);
        /* And fd 0 is free again (nothing leaked there). */
        assert_int_equal(fcntl(STDIN_FILENO, F_GETFD), -1);
        close(fd);
        assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
        close(saved);

        listener_stop(&l);
}

static void test_connect_errors(void **state) {
        char dir[] = "/tmp/test-ipc-XXXXXX", path[128];
        char longpath[sizeof(((struct sockaddr_un *) NULL)->sun_path) + 8];
        int fd;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/missing", dir);
        assert_int_equal(ssf_ipc_connect(path, (uid_t) -1, ssf_now_usec() + 1000000), -ENOENT);

        /* A regular file is not a socket. */
        fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(ssf_ipc_connect(path, (uid_t) -1, ssf_now_usec() + 1000000), -ENOTSOCK);
        unlink(path);

        /* A bound socket with no listener. */
        if (geteuid() == 0) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
                assert_true(s >= 0);
                strcpy(sa.sun_path, path);
                assert_int_equal(bind(s, (struct sockaddr *) &sa, sizeof(sa)), 0);
                assert_int_equal(ssf_ipc_connect(path, (uid_t) -1, ssf_now_usec() + 1000000), -ECONNREFUSED);
                close(s);
                unlink(path);
        }

        memset(longpath, 'a', sizeof(longpath) - 1);
        longpath[0] = '/';
        longpath[sizeof(longpath) - 1] = 0;
        assert_int_equal(ssf_ipc_connect(longpath, (uid_t) -1, ssf_now_usec() + 1000000), -ENAMETOOLONG);
        assert_int_equal(ssf_ipc_connect("", (uid_t) -1, ssf_now_usec() + 1000000), -EINVAL);
        assert_int_equal(ssf_ipc_connect(NULL, (uid_t) -1, ssf_now_usec() + 1000000), -EINVAL);
        rmdir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip_pam_query),
                cmocka_unit_test(test_roundtrip_pam_reply),
                cmocka_unit_test(test_roundtrip_ctl),
                cmocka_unit_test(test_roundtrip_limits),
                cmocka_unit_test(test_encode_errors),
                cmocka_unit_test(test_encode_wire_format),
                cmocka_unit_test(test_decode_header_errors),
                cmocka_unit_test(test_decode_tlv_errors),
                cmocka_unit_test(test_decode_value_errors),
                cmocka_unit_test(test_decode_too_many_tlvs),
                cmocka_unit_test(test_io_roundtrip),
                cmocka_unit_test(test_io_timeout_and_eof),
                cmocka_unit_test(test_io_garbage_and_oversize),
                cmocka_unit_test(test_connect),
                cmocka_unit_test(test_connect_fd_above_stdio),
                cmocka_unit_test(test_connect_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
