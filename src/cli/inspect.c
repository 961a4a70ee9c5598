/* inspect.c — `peerless inspect FILE.safetensors`: validate a checkpoint and
 * list its metadata and tensors. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "peerless/safetensors.h"

int pl_cmd_inspect(int argc, char **argv)
{
    if (argc == 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        printf("usage: peerless inspect FILE.safetensors\n\nValidate a safetensors file and list its metadata and tensors.\n");
        return 0;
    }
    if (argc != 1 || !strncmp(argv[0], "--", 2)) {
        fprintf(stderr, "peerless inspect: expected one FILE.safetensors argument (see peerless inspect --help)\n");
        return 2;
    }
    pl_err err = {0, ""};
    pl_st_reader *r = NULL;
    if (pl_st_open(&r, argv[0], &err)) {
        fprintf(stderr, "peerless inspect: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < pl_st_metadata_count(r); i++) {
        const char *k, *v;
        if (pl_st_metadata_at(r, i, &k, &v) == PL_OK)
            printf("# %s = %s\n", k, v);
    }
    int64_t total = 0;
    for (int i = 0; i < pl_st_count(r); i++) {
        const pl_st_tensor *t = pl_st_tensor_at(r, i);
        printf("%-48s %-4s [", t->name, pl_st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            printf("%s%lld", d ? ", " : "", (long long)t->shape[d]);
        printf("]\n");
        total += t->numel;
    }
    printf("# %d tensors, %lld elements\n", pl_st_count(r), (long long)total);
    pl_st_close(r);
    return 0;
}
