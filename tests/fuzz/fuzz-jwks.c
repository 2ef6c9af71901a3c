/* SPDX-License-Identifier: MIT */
/* JWKS parsing and key lookup. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "jwks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Jwks *j = NULL;

        if (jwks_parse((const char *) data, size, &j) < 0)
                return 0;
        if (jwks_count(j) == 0 || jwks_count(j) > JWKS_MAX_KEYS)
                abort();
        for (int a = 0; a < _JWS_ALG_MAX; a++) {
                const JwksKey *k = jwks_find(j, NULL, (JwsAlg) a);
                if (k && !k->pkey)
                        abort();
                (void) jwks_find(j, "rsa1", (JwsAlg) a);
                if (k && k->kid)
                        (void) jwks_find(j, k->kid, (JwsAlg) a);
        }
        jwks_free(j);
        return 0;
}
