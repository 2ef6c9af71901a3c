/* SPDX-License-Identifier: MIT */
/* Compact JWS parsing, base64url decoding and verification against a fixed key set. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jwks.h"
#include "jws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 8037 A.1 Ed25519 key (no kid) and RFC 7515 A.3 P-256 key (kid "ec"). */
static const char jwks_json[] =
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"},"
        "{\"kty\":\"EC\",\"kid\":\"ec\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
        "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static Jwks *keys;
        Jws *jws = NULL;
        uint8_t *out = NULL;
        size_t out_len;

        if (!keys && jwks_parse(jwks_json, strlen(jwks_json), &keys) < 0)
                abort();

        if (jws_parse((const char *) data, size, &jws) == 0) {
                (void) jws_verify(jws, keys);
                jws_free(jws);
        }
        if (size <= 4096 && base64url_decode((const char *) data, size, &out, &out_len) == 0) {
                char *enc = NULL;
                /* Decoding is canonical: re-encoding gives back the input. */
                if (base64url_encode(out, out_len, &enc) < 0 || strlen(enc) != size ||
                    memcmp(enc, data, size) != 0)
                        abort();
                free(enc);
                free(out);
        }
        return 0;
}
