/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The local IPC protocol between ssf-sessiond and its clients (pam_ssf.so, ssfctl).
 *
 * Transport: AF_UNIX SOCK_SEQPACKET at /run/ssf-sessiond/socket. One request frame, one reply
 * frame (for a long ssfctl answer: several CTL_REPLY frames, all but the last with MORE), then
 * the client closes. The daemon takes the caller's uid/pid from SO_PEERCRED, never
 * from the payload; the client checks that the peer is root (or the daemon's own uid).
 *
 * Frame (all integers big-endian):
 *
 *   +--------+---------+------+-----+======================+
 *   | magic  | version | type | len | TLV ... (len bytes)  |
 *   |  u32   |   u16   | u16  | u32 |                      |
 *   +--------+---------+------+-----+======================+
 *
 *   magic   SSF_IPC_MAGIC ("SSF1")
 *   version SSF_IPC_VERSION; a decoder rejects any other
 *   type    one of SsfIpcType
 *   len     length of the TLV area; header + len must equal the datagram size and be at most
 *           SSF_IPC_MAX_FRAME
 *
 * TLV: { u16 tag; u16 len; u8 value[len] }. Strings carry no NUL on the wire; the decoder
 * rejects embedded NULs and hands out NUL-terminated copies. A tag may appear at most once;
 * unknown tags, a TLV running past the end, more than SSF_IPC_MAX_TLVS TLVs, or a string longer
 * than its tag's limit are errors (-EBADMSG).
 *
 * Messages:
 *   PAM_QUERY  (client→daemon)  USER (req), SERVICE, RHOST, TTY (opt)
 *   PAM_REPLY  (daemon→client)  STATUS (req, i32: 0 or -errno), LEVEL (req, u8 RiskLevel),
 *                               MESSAGE (opt: text for the user), DETECTION (opt),
 *                               DRY_RUN (opt, empty: the daemon is in audit mode; the module
 *                               admits whom it would refuse and logs "would refuse"),
 *                               REASON_USER (opt: the CAEP reason_user of the SET that set
 *                               the level, sanitised; the module sanitises it again and ends
 *                               the denial message with it)
 *   CTL_REQUEST (ssfctl→daemon) VERB (req), ARGS (opt: JSON object text)
 *   CTL_REPLY  (daemon→ssfctl)  STATUS (req, i32: 0 or -errno), BODY (opt: JSON text),
 *                               MESSAGE (opt: human-readable error), MORE (opt, empty: another
 *                               CTL_REPLY follows; a streamed `history` sends each frame's
 *                               BODY as {"entries": [...]}, newest first, the client joins them)
 */

#include <stddef.h>
#include <stdint.h>

#define SSF_IPC_MAGIC UINT32_C(0x53534631) /* "SSF1" */
#define SSF_IPC_VERSION UINT16_C(1)
#define SSF_IPC_HEADER_SIZE 12u
#define SSF_IPC_MAX_FRAME (64u * 1024u)
#define SSF_IPC_MAX_TLVS 16u
#define SSF_IPC_MAX_USER 256u     /* LOGIN_NAME_MAX is 256 on Linux */
#define SSF_IPC_MAX_SHORT 1024u   /* SERVICE, RHOST, TTY, VERB, DETECTION, REASON_USER */
#define SSF_IPC_MAX_MESSAGE 2048u /* MESSAGE */
#define SSF_IPC_MAX_JSON (SSF_IPC_MAX_FRAME - 64u) /* ARGS, BODY */

#define SSF_IPC_DEFAULT_SOCKET "/run/ssf-sessiond/socket"
#define SSF_IPC_DEFAULT_SNAPSHOT "/var/lib/ssf-sessiond/pam-snapshot"

typedef enum SsfIpcType {
        SSF_IPC_PAM_QUERY = 1,
        SSF_IPC_PAM_REPLY = 2,
        SSF_IPC_CTL_REQUEST = 3,
        SSF_IPC_CTL_REPLY = 4,
} SsfIpcType;

typedef enum SsfIpcTag {
        SSF_TAG_USER = 1,
        SSF_TAG_SERVICE = 2,
        SSF_TAG_RHOST = 3,
        SSF_TAG_TTY = 4,
        SSF_TAG_STATUS = 5,    /* i32 */
        SSF_TAG_LEVEL = 6,     /* u8 */
        SSF_TAG_MESSAGE = 7,
        SSF_TAG_DETECTION = 8,
        SSF_TAG_VERB = 9,
        SSF_TAG_ARGS = 10,
        SSF_TAG_BODY = 11,
        SSF_TAG_MORE = 12,     /* empty: a flag */
        SSF_TAG_DRY_RUN = 13,  /* empty: a flag */
        SSF_TAG_REASON_USER = 14,
        _SSF_TAG_MAX,
} SsfIpcTag;

/* A decoded message. String members are NULL when absent; has_* say whether an integer was
 * present. Free with ssf_ipc_msg_done(). */
typedef struct SsfIpcMsg {
        uint16_t type;
        char *user, *service, *rhost, *tty;
        char *message, *detection, *reason_user;
        char *verb, *args, *body;
        int has_status, has_level, more, dry_run;
        int32_t status;
        uint8_t level;
} SsfIpcMsg;

void ssf_ipc_msg_done(SsfIpcMsg *m);

/* Pure encoding: writes a frame for m (only members valid for m->type are written; required
 * ones must be set) into buf. Returns the frame length, or -EINVAL (missing/oversized field),
 * -ENOBUFS (does not fit in bufsize). */
int ssf_ipc_encode(const SsfIpcMsg *m, uint8_t *buf, size_t bufsize);

/* Pure decoding of one frame of exactly len bytes. On success fills *ret (caller calls
 * ssf_ipc_msg_done()) and returns 0; on malformed input returns -EBADMSG (or -EPROTO for a
 * wrong magic/version, -EMSGSIZE for an oversize frame) and leaves *ret zeroed. Checks that the
 * required TLVs of the type are present and no TLV foreign to the type appears. */
int ssf_ipc_decode(const uint8_t *buf, size_t len, SsfIpcMsg *ret);

/* I/O with a deadline (CLOCK_MONOTONIC, µs, as from ssf_now_usec()). Non-blocking fd, poll()
 * retried on EINTR against the remaining time, send(MSG_NOSIGNAL). Return 0 or -errno
 * (-ETIMEDOUT when the deadline passes). */
uint64_t ssf_now_usec(void);
int ssf_ipc_send(int fd, const SsfIpcMsg *m, uint64_t deadline_usec);
int ssf_ipc_recv(int fd, SsfIpcMsg *ret, uint64_t deadline_usec);

/* Client side: connects a SOCK_SEQPACKET|SOCK_CLOEXEC|SOCK_NONBLOCK socket to path before the
 * deadline, moves it off fds 0-2, and checks the path is a socket owned by root (or
 * allowed_uid) and that SO_PEERCRED's uid is root or allowed_uid. Returns the fd or -errno
 * (-EPERM when the peer is not trusted). allowed_uid may be (uid_t) -1. */
#include <sys/types.h>
int ssf_ipc_connect(const char *path, uid_t allowed_uid, uint64_t deadline_usec);
