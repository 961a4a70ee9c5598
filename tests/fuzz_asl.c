/* fuzz_asl.c — libFuzzer harness for the state-machine definition parser.
 *
 * Build and run with scripts/fuzz-asl.sh. For every input:
 *   - pl_asl_parse either fails with a message and no machine, or succeeds
 *     with at least one state and a StartAt that names one;
 *   - an accepted definition parses again identically (same state count).
 * Definitions are not executed (Wait states could sleep). A broken property
 * aborts (this is a test harness, not library code). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peerless/asl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                      \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz property failed: %s (line %d)\n", #cond,     \
                    __LINE__);                                                 \
            abort();                                                           \
        }                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pl_err err = {0, ""};
    pl_asl_machine *m = NULL;
    int rc = pl_asl_parse((const char *)data, size, &m, &err);
    if (rc != PL_OK) {
        FUZZ_ASSERT(rc < 0 && m == NULL && err.status == rc && err.msg[0] != '\0');
        return 0;
    }
    FUZZ_ASSERT(m != NULL && pl_asl_state_count(m) >= 1 && pl_asl_start_at(m) != NULL);
    pl_asl_machine *m2 = NULL;
    FUZZ_ASSERT(pl_asl_parse((const char *)data, size, &m2, &err) == PL_OK);
    FUZZ_ASSERT(pl_asl_state_count(m2) == pl_asl_state_count(m));
    pl_asl_destroy(m2);
    pl_asl_destroy(m);
    return 0;
}
