/* args.c — flag parsing with validation and usage text. */
#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Compare a user-written flag (without dashes, up to len) to a table name,
 * treating '_' and '-' as equal. */
static int name_eq(const char *user, size_t len, const char *name)
{
    size_t i = 0;
    for (; i < len && name[i]; i++) {
        char a = user[i] == '_' ? '-' : user[i];
        if (a != name[i])
            return 0;
    }
    return i == len && name[i] == '\0';
}

static int parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "True")) {
        *out = 1;
        return 1;
    }
    if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "False")) {
        *out = 0;
        return 1;
    }
    return 0;
}

static int set_value(pl_flag *f, const char *v, pl_err *err)
{
    char *end = NULL;
    errno = 0;
    int ranged = f->min <= f->max;
    switch (f->type) {
    case PL_FLAG_STR:
        if (!*v)
            return pl_err_set(err, PL_ERR_ARG, "--%s needs a non-empty value", f->name);
        *(const char **)f->dst = v;
        return PL_OK;
    case PL_FLAG_BOOL:
        if (!parse_bool(v, (int *)f->dst))
            return pl_err_set(err, PL_ERR_ARG, "--%s expects true or false, got '%s'", f->name, v);
        return PL_OK;
    case PL_FLAG_INT: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || (ranged && (x < f->min || x > f->max)))
            goto bad_number;
        *(int *)f->dst = (int)x;
        return PL_OK;
    }
    case PL_FLAG_U64: {
        if (*v == '-')
            goto bad_number;
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || end == v || *end)
            goto bad_number;
        *(uint64_t *)f->dst = (uint64_t)x;
        return PL_OK;
    }
    case PL_FLAG_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x) || (ranged && (x < f->min || x > f->max)))
            goto bad_number;
        *(double *)f->dst = x;
        return PL_OK;
    }
    }
bad_number:
    if (ranged)
        return pl_err_set(err, PL_ERR_ARG, "--%s expects %s in [%g, %g], got '%s'", f->name,
                          f->type == PL_FLAG_DOUBLE ? "a number" : "an integer", f->min, f->max, v);
    return pl_err_set(err, PL_ERR_ARG, "--%s expects %s, got '%s'", f->name,
                      f->type == PL_FLAG_DOUBLE ? "a number" : "a non-negative integer", v);
}

int pl_args_parse(const char *cmd, pl_flag *flags, int n, int argc, char **argv, int *help, pl_err *err)
{
    *help = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = 1;
            return PL_OK;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
            return pl_err_set(err, PL_ERR_ARG, "unexpected argument '%s' (flags start with --; see peerless %s --help)", a, cmd);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        pl_flag *f = NULL;
        for (int j = 0; j < n && !f; j++)
            if (name_eq(name, len, flags[j].name))
                f = &flags[j];
        if (!f)
            return pl_err_set(err, PL_ERR_ARG, "unknown flag '--%.*s' (see peerless %s --help)",
                              (int)len, name, cmd);
        const char *v = eq ? eq + 1 : NULL;
        if (!v && f->type == PL_FLAG_BOOL) {
            int b;
            if (i + 1 < argc && parse_bool(argv[i + 1], &b))
                v = argv[++i];
            else
                v = "true";
        }
        if (!v) {
            if (i + 1 >= argc)
                return pl_err_set(err, PL_ERR_ARG, "--%s needs a value (%s)", f->name,
                                  f->metavar ? f->metavar : "value");
            v = argv[++i];
        }
        int st = set_value(f, v, err);
        if (st)
            return st;
        f->seen = 1;
    }
    return PL_OK;
}

void pl_args_usage(const char *cmd, const char *summary, const pl_flag *flags, int n)
{
    printf("usage: peerless %s [flags]\n\n%s\n\nflags:\n", cmd, summary);
    for (int i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s %s", flags[i].name,
                 flags[i].type == PL_FLAG_BOOL ? "" : (flags[i].metavar ? flags[i].metavar : "V"));
        printf("  %-28s %s\n", left, flags[i].help);
    }
}
