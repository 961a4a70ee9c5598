/* function.c — `peerless function` (the Lambda custom runtime serving
 * compute_gradient and process_input, docs/serverless.md) and
 * `peerless package-function` (a provided.al2023 deployment zip). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "peerless/backend.h"
#include "peerless/function.h"

int pl_cmd_function(int argc, char **argv)
{
    pl_fn_config cfg = {getenv("PEERLESS_STORE"), "fast"};
    int threads = -1;
    pl_flag flags[] = {
        {"store", PL_FLAG_STR, &cfg.store_url, 0, -1, "URL", "default store for events without 'store' (default: $PEERLESS_STORE)", 0},
        {"threads", PL_FLAG_INT, &threads, 0, 1024, "N", "compute threads (default: $PEERLESS_THREADS, else memory / 1769 MB)", 0},
        {"backend", PL_FLAG_STR, &cfg.backend, 0, -1, "NAME", "compute backend: fast (default) or ref", 0},
    };
    int nflags = (int)(sizeof flags / sizeof flags[0]), help = 0;
    pl_err err = {0, ""};
    int st = pl_args_parse("function", flags, nflags, argc, argv, &help, &err);
    if (!st && help) {
        pl_args_usage("function", "Lambda custom runtime: serve compute_gradient / process_input events from "
                                  "$AWS_LAMBDA_RUNTIME_API (docs/serverless.md).", flags, nflags);
        return 0;
    }
    if (!st) {
        pl_backend_set_threads(threads >= 0 ? threads : pl_fn_threads_from_env());
        st = pl_fn_runtime_loop(getenv("AWS_LAMBDA_RUNTIME_API"), &cfg, &err);
    }
    fprintf(stderr, "peerless function: %s\n", err.msg[0] ? err.msg : pl_status_str(st));
    return 1;
}

/* ---- package-function ---- */

/* Libraries every Amazon Linux 2023 image has (glibc); everything else the
 * binary links is bundled under lib/. */
static const char *const system_libs[] = {"linux-vdso", "ld-linux", "libc.so", "libm.so", "libpthread.so",
                                          "libdl.so", "librt.so", "libresolv.so", "libutil.so"};

static int is_system_lib(const char *name)
{
    for (size_t i = 0; i < sizeof system_libs / sizeof system_libs[0]; i++)
        if (!strncmp(name, system_libs[i], strlen(system_libs[i])))
            return 1;
    return 0;
}

static int copy_file(const char *from, const char *to, mode_t mode, long long *bytes, pl_err *err)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[1 << 16];
    size_t n;
    int st = in && out ? PL_OK : pl_err_set(err, PL_ERR_IO, "cannot copy '%s' to '%s'", from, to);
    while (!st && (n = fread(buf, 1, sizeof buf, in)) > 0) {
        *bytes += (long long)n;
        if (fwrite(buf, 1, n, out) != n)
            st = pl_err_set(err, PL_ERR_IO, "writing '%s'", to);
    }
    if (!st && ferror(in))
        st = pl_err_set(err, PL_ERR_IO, "reading '%s'", from);
    if (out && fclose(out) && !st)
        st = pl_err_set(err, PL_ERR_IO, "writing '%s'", to);
    if (in)
        fclose(in);
    if (!st && chmod(to, mode))
        st = pl_err_set(err, PL_ERR_IO, "chmod '%s'", to);
    return st;
}

/* Copy the non-system libraries `ldd bin` lists into dir/lib. */
static int copy_libs(const char *bin, const char *dir, int *nlibs, long long *bytes, pl_err *err)
{
    char cmd[4400], line[4400], dst[4400];
    snprintf(cmd, sizeof cmd, "ldd '%s'", bin);
    FILE *p = popen(cmd, "r");
    if (!p)
        return pl_err_set(err, PL_ERR_IO, "cannot run ldd on '%s'", bin);
    int st = PL_OK;
    while (!st && fgets(line, sizeof line, p)) {
        char name[512], arrow[8], path[4096];
        if (sscanf(line, " %511s %7s %4095s", name, arrow, path) != 3 || strcmp(arrow, "=>") || is_system_lib(name))
            continue;
        if (!strcmp(path, "not"))
            st = pl_err_set(err, PL_ERR_NOTFOUND, "ldd '%s': library %s not found", bin, name);
        snprintf(dst, sizeof dst, "%s/lib/%s", dir, name);
        if (!st && !(st = copy_file(path, dst, 0644, bytes, err)))
            (*nlibs)++;
    }
    if (pclose(p) != 0 && !st)
        st = pl_err_set(err, PL_ERR_IO, "ldd '%s' failed (is it a dynamic executable?)", bin);
    return st;
}

static const char bootstrap[] =
    "#!/bin/sh\n"
    "# Lambda custom runtime (provided.al2023): peerless function on the Runtime API.\n"
    "ROOT=\"${LAMBDA_TASK_ROOT:-$(dirname \"$0\")}\"\n"
    "export LD_LIBRARY_PATH=\"$ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\"\n"
    "exec \"$ROOT/peerless\" function\n";

static int write_bootstrap(const char *dir, long long *bytes, pl_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/bootstrap", dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(bootstrap, f) < 0 || fclose(f) || chmod(path, 0755))
        return pl_err_set(err, PL_ERR_IO, "writing '%s'", path);
    *bytes += (long long)strlen(bootstrap);
    return PL_OK;
}

/* Newest GLIBC_2.x symbol version the binary asks for (AL2023 has 2.34). */
static int glibc_minor(const char *bin)
{
    FILE *f = fopen(bin, "rb");
    int best = 0, c, state = 0, v = 0;
    static const char tag[] = "GLIBC_2.";
    while (f && (c = fgetc(f)) != EOF) {
        if (state < 8) {
            state = c == tag[state] ? state + 1 : c == 'G';
            v = 0;
        } else if (c >= '0' && c <= '9') {
            v = v * 10 + (c - '0');
        } else {
            best = v > best && v < 100 ? v : best;
            state = c == 'G';
        }
    }
    if (f)
        fclose(f);
    return best;
}

static int package(const char *binary, const char *out, pl_err *err)
{
    char bin[4096];
    if (!realpath(binary, bin))
        return pl_err_set(err, PL_ERR_NOTFOUND, "--binary '%s': no such file", binary);
    if (strchr(bin, '\'') || strchr(out, '\''))
        return pl_err_set(err, PL_ERR_ARG, "paths with a single quote are not supported");
    char dir[] = "/tmp/peerless-pkg-XXXXXX", sub[4200], cmd[8600], abs_out[4200];
    if (strlen(out) > 2048 || (out[0] != '/' && !getcwd(sub, 2048)))
        return pl_err_set(err, PL_ERR_ARG, "--out '%.64s': path too long", out);
    snprintf(abs_out, sizeof abs_out, "%.2048s%s%.2048s", out[0] == '/' ? "" : sub, out[0] == '/' ? "" : "/", out);
    if (!mkdtemp(dir))
        return pl_err_set(err, PL_ERR_IO, "cannot create a staging directory in /tmp");
    long long bytes = 0;
    int nlibs = 0;
    snprintf(sub, sizeof sub, "%s/lib", dir);
    int st = mkdir(sub, 0755) ? pl_err_set(err, PL_ERR_IO, "mkdir '%s'", sub) : PL_OK;
    snprintf(sub, sizeof sub, "%s/peerless", dir);
    if (!st)
        st = copy_file(bin, sub, 0755, &bytes, err);
    if (!st)
        st = copy_libs(bin, dir, &nlibs, &bytes, err);
    if (!st)
        st = write_bootstrap(dir, &bytes, err);
    snprintf(cmd, sizeof cmd, "rm -f '%s' && cd '%s' && zip -q -r -X '%s' bootstrap peerless lib", abs_out, dir,
             abs_out);
    if (!st && system(cmd) != 0)
        st = pl_err_set(err, PL_ERR_IO, "zip failed writing '%s' (is the zip package installed?)", abs_out);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0 && !st)
        st = pl_err_set(err, PL_ERR_IO, "cannot remove the staging directory %s", dir);
    struct stat sb;
    if (!st && stat(abs_out, &sb))
        st = pl_err_set(err, PL_ERR_IO, "'%s' was not written", abs_out);
    if (st)
        return st;
    int g = glibc_minor(bin);
    if (g > 34)
        fprintf(stderr, "peerless package-function: warning: %s needs GLIBC_2.%d but Amazon Linux 2023 has 2.34; "
                        "build the packaged binary on Amazon Linux 2023 (docs/aws.md)\n", bin, g);
    if (bytes > 250LL << 20)
        fprintf(stderr, "peerless package-function: warning: %lld bytes unzipped exceeds Lambda's 250 MB\n", bytes);
    printf("{\"zip\":\"%s\",\"zip_bytes\":%lld,\"unzipped_bytes\":%lld,\"libraries\":%d,\"glibc_required\":\"2.%d\"}\n",
           abs_out, (long long)sb.st_size, bytes, nlibs, g);
    return PL_OK;
}

int pl_cmd_package_function(int argc, char **argv)
{
    const char *out = "function.zip", *bin = "/proc/self/exe";
    pl_flag flags[] = {
        {"out", PL_FLAG_STR, &out, 0, -1, "FILE", "the deployment package (default function.zip)", 0},
        {"binary", PL_FLAG_STR, &bin, 0, -1, "FILE", "the peerless binary to package (default: this one)", 0},
    };
    int nflags = (int)(sizeof flags / sizeof flags[0]), help = 0;
    pl_err err = {0, ""};
    int st = pl_args_parse("package-function", flags, nflags, argc, argv, &help, &err);
    if (!st && help) {
        pl_args_usage("package-function", "Build a Lambda deployment zip (provided.al2023): bootstrap, the peerless "
                                          "binary and the shared libraries it needs under lib/.", flags, nflags);
        return 0;
    }
    if (!st)
        st = package(bin, out, &err);
    if (st) {
        fprintf(stderr, "peerless package-function: %s\n", err.msg[0] ? err.msg : pl_status_str(st));
        return 1;
    }
    return 0;
}
