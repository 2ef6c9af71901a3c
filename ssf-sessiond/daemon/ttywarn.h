/* SPDX-License-Identifier: MIT */
#pragma once

/* Warnings on a session's terminal before a logout (rule key warn = DURATION), written the way
 * shutdown(8) and wall(1) write theirs: the terminal is opened with
 * O_WRONLY|O_NOCTTY|O_NONBLOCK|O_NOFOLLOW|O_CLOEXEC, only when it is a character device that is
 * a terminal, under /dev and reached without following any symlink, and owned by the session's
 * user, who is also whom the daemon opens it as (its file system uid, setfsuid()): it writes
 * nowhere that user could not. The write is bounded in time and never blocks (a terminal that
 * does not drain, e.g. stopped with ^S, is given up).
 *
 * Which names are written to: the TTY property logind gives a session, "pts/N" or "ttyNAME"
 * (tty1, ttyS0, ttyUSB0), with or without "/dev/" in front. Anything else (empty, another
 * directory, "..", a name that is no terminal device) is not a terminal this daemon writes to.
 * Runs in the root daemon (the logind lane of actions.c). */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The longest text ttywarn_format() writes, its terminating NUL included. */
#define TTYWARN_MESSAGE_MAX 1536U
/* The longest reason_user text shown (PRODUCT.md "Actions"); longer text is cut. */
#define TTYWARN_REASON_MAX 200U
/* How long one terminal may take to accept the warning. */
#define TTYWARN_WRITE_TIMEOUT_USEC (300ULL * 1000ULL)

/* Writes to ret (size bytes) the device name tty denotes, relative to /dev ("pts/3", "tty1").
 * Returns 0, -EINVAL when tty is not a terminal name this daemon writes to, -ENAMETOOLONG. */
int ttywarn_device_name(const char *tty, char *ret, size_t size);

/* Writes the len bytes of msg to the terminal tty names (see above), which owner (the session's
 * uid) must own, giving up after timeout_usec. Returns 0 when all was written; -EINVAL (not a
 * terminal name), -ELOOP (a symlink on the way), -EACCES (owner may not open it), -ENOTTY (not
 * a character device, or not a terminal), -EPERM (owned by someone else), -ETIMEDOUT (the
 * terminal did not take it all in time), or another -errno of open/write. */
int ttywarn_write(const char *tty, uid_t owner, const char *msg, size_t len, uint64_t timeout_usec);

/* The warning, in wall's layout:
 *
 *   \r\n\aBroadcast message from ssf-sessiond@HOST (Sun 2026-12-06 01:20:00 UTC):\r\n\r\n
 *   ssf: DETECTION -- you will be logged out in N seconds.\r\n
 *   REASON_USER\r\n          (only when reason_user is given: the SET's CAEP reason_user)
 *   \r\n
 *
 * Every fact is made printable first: control characters (C0, DEL, C1), escape sequences and
 * invalid UTF-8 become '?'; reason_user is cut at TTYWARN_REASON_MAX characters. seconds is
 * rounded up. Writes at most size bytes (NUL included; TTYWARN_MESSAGE_MAX is enough).
 * Returns the length written. */
size_t ttywarn_format(char *buf, size_t size, const char *host, uint64_t now_usec,
                      const char *detection, uint64_t warn_usec, const char *reason_user);
