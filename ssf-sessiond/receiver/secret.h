/* SPDX-License-Identifier: MIT */
#pragma once

/* Secrets kept in files (the bearer token, the OAuth 2.0 client secret).
 * Runs in the network worker. */

#define SECRET_FILE_MAX (16u * 1024u)

/* Reads the one-line secret in path: opened with O_NOFOLLOW, it must be a regular file owned by
 * root, not accessible to group or others, and at most SECRET_FILE_MAX bytes; trailing
 * whitespace is dropped and the rest must be non-empty without blanks or line breaks. what
 * names the file in messages ("token file"); the content is never logged. Logs the failure and
 * returns -errno (-EPERM unsafe file, -EFBIG too large, -EINVAL not one line); on success *ret
 * is the secret, to be freed with erase_and_free(). */
int secret_read_file(const char *path, const char *what, char **ret);
/* The same for a file holding an HTTP header value (push_authorization_file: "Bearer X",
 * "SSWS X"): printable ASCII on one line, single spaces allowed inside. */
int secret_read_header_file(const char *path, const char *what, char **ret);
