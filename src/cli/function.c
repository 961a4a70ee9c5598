/* function.c — `peerless function` (the Lambda custom runtime serving
 * compute_gradient and process_input, docs/serverless.md) and
 * `peerless package-function` (a provided.al2023 deployment zip). */
#include <elf.h>
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

/* Amazon Linux 2023 (provided.al2023) has glibc 2.34: nothing in the
 * package may need a newer GLIBC_2.x symbol version. */
#define AL2023_GLIBC_MINOR 34

/* The lean function build of this tree (cmake/lambda_package.cmake). */
#ifdef PL_LAMBDA_BINARY
static const char *const default_binary = PL_LAMBDA_BINARY;
#else
static const char *const default_binary = NULL;
#endif

/* Libraries every Amazon Linux 2023 image has (glibc); everything else the
 * binary links is bundled under lib/. */
static const char *const system_libs[] = {"linux-vdso", "ld-linux", "libc.so", "libm.so", "libmvec.so",
                                          "libpthread.so", "libdl.so", "librt.so", "libresolv.so", "libutil.so"};

static int is_system_lib(const char *name)
{
    for (size_t i = 0; i < sizeof system_libs / sizeof system_libs[0]; i++)
        if (!strncmp(name, system_libs[i], strlen(system_libs[i])))
            return 1;
    return 0;
}

/* Newest GLIBC_2.x version (x, into *minor; 0 if none) the ELF64 file
 * `path` needs, from its version-needed section (what `objdump -T` shows
 * as (GLIBC_2.x)). */
static int elf_glibc_minor(const char *path, int *minor, pl_err *err)
{
    *minor = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return pl_err_set(err, PL_ERR_IO, "cannot open '%s'", path);
    unsigned char *b = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n > 0 && n < (1L << 30) && fseek(f, 0, SEEK_SET) == 0 && (b = malloc((size_t)n)) &&
        fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (!b)
        return pl_err_set(err, PL_ERR_IO, "cannot read '%s'", path);
    size_t len = (size_t)n;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)b;
    int st = PL_OK;
    if (len < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > len ||
        (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > len - eh->e_shoff)
        st = pl_err_set(err, PL_ERR_FORMAT, "'%s': not an x86-64 ELF file with section headers", path);
    const Elf64_Shdr *sh = st ? NULL : (const Elf64_Shdr *)(b + eh->e_shoff);
    for (int i = 0; !st && i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_GNU_verneed)
            continue;
        if (sh[i].sh_link >= eh->e_shnum || sh[i].sh_offset > len || sh[i].sh_size > len - sh[i].sh_offset) {
            st = pl_err_set(err, PL_ERR_FORMAT, "'%s': bad version-needed section", path);
            break;
        }
        const Elf64_Shdr *strs = &sh[sh[i].sh_link];
        size_t off = sh[i].sh_offset, end = off + sh[i].sh_size;
        for (;;) {
            if (off > end - sizeof(Elf64_Verneed) || off > len - sizeof(Elf64_Verneed))
                break;
            const Elf64_Verneed *vn = (const Elf64_Verneed *)(b + off);
            size_t aux = off + vn->vn_aux;
            for (int k = 0; k < vn->vn_cnt && aux <= len - sizeof(Elf64_Vernaux); k++) {
                const Elf64_Vernaux *va = (const Elf64_Vernaux *)(b + aux);
                size_t name = strs->sh_offset + va->vna_name;
                int v;
                if (strs->sh_offset < len && va->vna_name < strs->sh_size && name < len &&
                    memchr(b + name, 0, len - name) && sscanf((const char *)b + name, "GLIBC_2.%d", &v) == 1)
                    *minor = v > *minor ? v : *minor;
                if (!va->vna_next)
                    break;
                aux += va->vna_next;
            }
            if (!vn->vn_next)
                break;
            off += vn->vn_next;
        }
    }
    free(b);
    return st;
}

/* Fails when `path` needs a newer glibc than Amazon Linux 2023's; *newest
 * keeps the maximum seen. */
static int check_glibc(const char *path, const char *what, int *newest, pl_err *err)
{
    int g;
    int st = elf_glibc_minor(path, &g, err);
    if (st)
        return st;
    if (g > AL2023_GLIBC_MINOR)
        return pl_err_set(err, PL_ERR_UNSUPPORTED,
                          "%s '%s' needs GLIBC_2.%d but Amazon Linux 2023 has 2.%d; build the function on "
                          "Amazon Linux 2023 (docs/aws.md)",
                          what, path, g, AL2023_GLIBC_MINOR);
    *newest = g > *newest ? g : *newest;
    return PL_OK;
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

/* Copy the non-system libraries `ldd bin` lists (every level) into
 * dir/lib, each checked against Amazon Linux 2023's glibc. */
static int copy_libs(const char *bin, const char *dir, int *nlibs, long long *bytes, int *glibc, pl_err *err)
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
        if (!st)
            st = check_glibc(path, "library", glibc, err);
        if (!st && !(st = copy_file(path, dst, 0644, bytes, err)))
            (*nlibs)++;
    }
    if (pclose(p) != 0 && !st)
        st = pl_err_set(err, PL_ERR_IO, "ldd '%s' failed (is it a dynamic executable?)", bin);
    return st;
}

/* The runtime's entry point, next to which the zip's files are (Lambda:
 * /var/task; found without running dirname: no extra process at cold
 * start). The binary finds lib/ through its RPATH
 * ($ORIGIN/lib) too; LD_LIBRARY_PATH also covers a --binary without one.
 * GNUTLS_NO_IMPLICIT_INIT: GnuTLS is only linked through librtmp (libcurl
 * uses OpenSSL and never RTMP); this skips its load-time initialisation
 * (a few tenths of a ms of every cold start). */
static const char bootstrap[] =
    "#!/bin/sh\n"
    "# Lambda custom runtime (provided.al2023): peerless function on the Runtime API.\n"
    "case \"$0\" in */*) ROOT=\"${0%/*}\" ;; *) ROOT=. ;; esac\n"
    "export LD_LIBRARY_PATH=\"$ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\"\n"
    "export GNUTLS_NO_IMPLICIT_INIT=1\n"
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

/* Stage bootstrap, the binary and lib/ in dir, then zip them into abs_out. */
static int stage_and_zip(const char *bin, const char *dir, const char *abs_out, long long *bytes, int *nlibs,
                         int *glibc, pl_err *err)
{
    char sub[4200], cmd[8600];
    snprintf(sub, sizeof sub, "%s/lib", dir);
    int st = mkdir(sub, 0755) ? pl_err_set(err, PL_ERR_IO, "mkdir '%s'", sub) : PL_OK;
    snprintf(sub, sizeof sub, "%s/peerless", dir);
    if (!st)
        st = check_glibc(bin, "--binary", glibc, err);
    if (!st)
        st = copy_file(bin, sub, 0755, bytes, err);
    if (!st)
        st = copy_libs(bin, dir, nlibs, bytes, glibc, err);
    if (!st)
        st = write_bootstrap(dir, bytes, err);
    snprintf(cmd, sizeof cmd, "rm -f '%s' && cd '%s' && zip -q -9 -r -X '%s' bootstrap peerless lib", abs_out, dir,
             abs_out);
    if (!st && system(cmd) != 0)
        st = pl_err_set(err, PL_ERR_IO, "zip failed writing '%s' (is the zip package installed?)", abs_out);
    return st;
}

static int package(const char *binary, const char *out, pl_err *err)
{
    char bin[4096];
    if (!binary)
        return pl_err_set(err, PL_ERR_ARG, "--binary is required: this build has no function build "
                                           "(configure with -DPL_LAMBDA_PACKAGE=ON)");
    if (!realpath(binary, bin)) {
        if (binary == default_binary)
            return pl_err_set(err, PL_ERR_NOTFOUND,
                              "the function binary '%s' is not built: run `cmake --build BUILD_DIR --target "
                              "peerless_lambda` (or pass --binary FILE)",
                              binary);
        return pl_err_set(err, PL_ERR_NOTFOUND, "--binary '%s': no such file", binary);
    }
    if (strchr(bin, '\'') || strchr(out, '\''))
        return pl_err_set(err, PL_ERR_ARG, "paths with a single quote are not supported");
    char dir[] = "/tmp/peerless-pkg-XXXXXX", cwd[2100], abs_out[4200], cmd[4300];
    if (strlen(out) > 2048 || (out[0] != '/' && !getcwd(cwd, 2048)))
        return pl_err_set(err, PL_ERR_ARG, "--out '%.64s': path too long", out);
    snprintf(abs_out, sizeof abs_out, "%.2048s%s%.2048s", out[0] == '/' ? "" : cwd, out[0] == '/' ? "" : "/", out);
    if (!mkdtemp(dir))
        return pl_err_set(err, PL_ERR_IO, "cannot create a staging directory in /tmp");
    long long bytes = 0;
    int nlibs = 0, glibc = 0;
    int st = stage_and_zip(bin, dir, abs_out, &bytes, &nlibs, &glibc, err);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0 && !st)
        st = pl_err_set(err, PL_ERR_IO, "cannot remove the staging directory %s", dir);
    struct stat sb;
    if (!st && stat(abs_out, &sb))
        st = pl_err_set(err, PL_ERR_IO, "'%s' was not written", abs_out);
    if (st)
        return st;
    if (bytes > 250LL << 20)
        fprintf(stderr, "peerless package-function: warning: %lld bytes unzipped exceeds Lambda's 250 MB\n", bytes);
    printf("{\"zip\":\"%s\",\"zip_bytes\":%lld,\"unzipped_bytes\":%lld,\"libraries\":%d,\"glibc_required\":\"2.%d\","
           "\"binary\":\"%s\"}\n",
           abs_out, (long long)sb.st_size, bytes, nlibs, glibc, bin);
    return PL_OK;
}

int pl_cmd_package_function(int argc, char **argv)
{
    const char *out = "function.zip", *bin = default_binary;
    pl_flag flags[] = {
        {"out", PL_FLAG_STR, &out, 0, -1, "FILE", "the deployment package (default function.zip)", 0},
        {"binary", PL_FLAG_STR, &bin, 0, -1, "FILE",
         "the function binary to package (default: this build's portable function build, "
         "BUILD_DIR/lambda/peerless)", 0},
    };
    int nflags = (int)(sizeof flags / sizeof flags[0]), help = 0;
    pl_err err = {0, ""};
    int st = pl_args_parse("package-function", flags, nflags, argc, argv, &help, &err);
    if (!st && help) {
        pl_args_usage("package-function", "Build a Lambda deployment zip (provided.al2023): bootstrap, the portable "
                                          "function binary (x86-64-v3, no oneDNN) and the shared libraries it "
                                          "needs under lib/, each checked against Amazon Linux 2023's glibc 2.34.",
                      flags, nflags);
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
