/* file.c — the file:// store backend: one file per key under a directory.
 *
 * Puts write a temporary file ".pl-tmp-XXXXXX" next to the target, fsync it,
 * rename it over the target and fsync the directory, so readers see the old
 * or the new object and a crash never leaves a partial one under the key.
 * Because objects are files, a key cannot be both an object and the prefix
 * of another object ("a" and "a/b"); such a put fails with PL_ERR_ARG.
 */
#include "store/store_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct file_store {
    char *dir; /* absolute, no trailing '/' */
} file_store;

/* malloc'd "a/b" (or "a" when b is empty); NULL when out of memory. */
static char *join(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *p = malloc(na + nb + 2);
    if (!p)
        return NULL;
    memcpy(p, a, na);
    if (nb) {
        p[na] = '/';
        memcpy(p + na + 1, b, nb + 1);
    } else {
        p[na] = '\0';
    }
    return p;
}

/* mkdir -p for `path`, whose first `keep` bytes already exist. */
static int make_dirs(char *path, size_t keep, const char *what, pl_err *err)
{
    for (char *p = path + keep + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int bad = mkdir(path, 0755) != 0 && errno != EEXIST;
        struct stat sb;
        if (!bad && (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))) {
            int st = pl_err_set(err, PL_ERR_ARG,
                                "%s: '%s' exists and is not a directory (a "
                                "key cannot be both an object and a prefix)",
                                what, path);
            *p = '/';
            return st;
        }
        if (bad) {
            int st = pl_err_set(err, PL_ERR_IO, "%s: mkdir '%s': %s", what,
                                path, strerror(errno));
            *p = '/';
            return st;
        }
        *p = '/';
    }
    return PL_OK;
}

int pl_store_file_open(const char *rest, void **impl, char **url, pl_err *err)
{
    if (!*rest)
        return pl_err_set(err, PL_ERR_ARG,
                          "store URL 'file://': missing directory");
    /* "DIR/." so that make_dirs, which creates every directory before a
     * '/', also creates DIR itself. */
    char *tmp = join(rest, ".");
    if (!tmp)
        return pl_err_set(err, PL_ERR_NOMEM, "opening store '%s'", rest);
    int st = make_dirs(tmp, 0, "opening store", err);
    free(tmp);
    if (st)
        return st;
    file_store *fs = calloc(1, sizeof *fs);
    char *abs = realpath(rest, NULL);
    if (!fs || !abs) {
        st = abs ? pl_err_set(err, PL_ERR_NOMEM, "opening store '%s'", rest)
                 : pl_err_set(err, PL_ERR_IO, "store directory '%s': %s",
                              rest, strerror(errno));
        free(fs);
        free(abs);
        return st;
    }
    struct stat sb;
    if (stat(abs, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        st = pl_err_set(err, PL_ERR_ARG, "store directory '%s' is not a "
                        "directory", abs);
        free(fs);
        free(abs);
        return st;
    }
    fs->dir = abs;
    *url = malloc(strlen(abs) + 8);
    if (!*url) {
        free(abs);
        free(fs);
        return pl_err_set(err, PL_ERR_NOMEM, "opening store '%s'", rest);
    }
    sprintf(*url, "file://%s", abs);
    *impl = fs;
    return PL_OK;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len) {
        size_t chunk = len < ((size_t)1 << 30) ? len : ((size_t)1 << 30);
        ssize_t w = write(fd, p, chunk);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Writes `data` to a temporary file in the directory of `path` and renames
 * it over `path`. */
static int atomic_write(const char *path, const char *key, const void *data,
                        size_t len, pl_err *err)
{
    const char *slash = strrchr(path, '/');
    size_t dn = (size_t)(slash - path);
    char *tmp = malloc(dn + 20);
    if (!tmp)
        return pl_err_set(err, PL_ERR_NOMEM, "put '%s'", key);
    memcpy(tmp, path, dn);
    memcpy(tmp + dn, "/.pl-tmp-XXXXXX", 16);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int st = pl_err_set(err, PL_ERR_IO, "put '%s': creating '%s': %s",
                            key, tmp, strerror(errno));
        free(tmp);
        return st;
    }
    const char *step = "write";
    int ok = write_all(fd, data, len) == 0;
    if (ok && !(ok = fchmod(fd, 0644) == 0 && fsync(fd) == 0))
        step = "fsync";
    if (close(fd) != 0 && ok) {
        ok = 0;
        step = "close";
    }
    if (ok && !(ok = rename(tmp, path) == 0))
        step = "rename";
    int st = PL_OK;
    if (!ok) {
        st = pl_err_set(err, PL_ERR_IO, "put '%s': %s '%s' (%zu bytes): %s",
                        key, step, path, len, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    if (ok) {
        /* The rename is durable only once the directory entry is synced. */
        tmp = strndup(path, dn);
        int dfd = tmp ? open(tmp, O_RDONLY | O_DIRECTORY) : -1;
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(tmp);
    }
    return st;
}

static int file_put(void *impl, const char *key, const void *data, size_t len,
                    pl_err *err)
{
    file_store *fs = impl;
    char *path = join(fs->dir, key);
    if (!path)
        return pl_err_set(err, PL_ERR_NOMEM, "put '%s'", key);
    char what[64];
    snprintf(what, sizeof what, "put '%.40s'", key);
    int st = make_dirs(path, strlen(fs->dir), what, err);
    if (!st)
        st = atomic_write(path, key, data, len, err);
    free(path);
    return st;
}

static int read_exact(int fd, unsigned char *p, size_t len)
{
    while (len) {
        size_t chunk = len < ((size_t)1 << 30) ? len : ((size_t)1 << 30);
        ssize_t r = read(fd, p, chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -1 : -2;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

static int file_get(void *impl, const char *key, void **data, size_t *len,
                    pl_err *err)
{
    file_store *fs = impl;
    char *path = join(fs->dir, key);
    if (!path)
        return pl_err_set(err, PL_ERR_NOMEM, "get '%s'", key);
    int st = PL_OK;
    unsigned char *buf = NULL;
    struct stat sb;
    int fd = open(path, O_RDONLY);
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        int missing = fd < 0 ? (errno == ENOENT || errno == ENOTDIR) : 1;
        st = missing ? pl_err_set(err, PL_ERR_NOTFOUND,
                                  "get '%s': no such object in %s", key, fs->dir)
                     : pl_err_set(err, PL_ERR_IO, "get '%s': open '%s': %s",
                                  key, path, strerror(errno));
        goto done;
    }
    size_t n = (size_t)sb.st_size;
    buf = malloc(n ? n : 1);
    if (!buf) {
        st = pl_err_set(err, PL_ERR_NOMEM, "get '%s': %zu bytes", key, n);
        goto done;
    }
    int r = read_exact(fd, buf, n);
    if (r != 0) {
        st = pl_err_set(err, PL_ERR_IO, "get '%s': read '%s': %s", key, path,
                        r == -2 ? "file shorter than its size" : strerror(errno));
        free(buf);
        buf = NULL;
        goto done;
    }
    *data = buf;
    *len = n;
done:
    if (fd >= 0)
        close(fd);
    free(path);
    return st;
}

/* Recursively appends the keys under `dir`/`rel` that start with `prefix`. */
static int walk(const char *dir, const char *rel, const char *prefix,
                pl_store_keylist *out, pl_err *err)
{
    char *path = join(dir, rel);
    if (!path)
        return pl_err_set(err, PL_ERR_NOMEM, "listing '%s'", prefix);
    DIR *d = opendir(path);
    if (!d) {
        int st = (errno == ENOENT || errno == ENOTDIR)
                     ? PL_OK
                     : pl_err_set(err, PL_ERR_IO, "listing '%s': %s", path,
                                  strerror(errno));
        free(path);
        return st;
    }
    int st = PL_OK;
    size_t np = strlen(prefix);
    struct dirent *e;
    while (!st && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' ||
            strcmp(e->d_name, "..") == 0 || strncmp(e->d_name, ".pl-", 4) == 0))
            continue;
        char *child = join(rel, e->d_name);
        char *full = child ? join(dir, child) : NULL;
        struct stat sb;
        if (!child || !full) {
            st = pl_err_set(err, PL_ERR_NOMEM, "listing '%s'", prefix);
        } else if (lstat(full, &sb) != 0) {
            if (errno != ENOENT) /* deleted while we list: not an error */
                st = pl_err_set(err, PL_ERR_IO, "listing '%s': %s", full,
                                strerror(errno));
        } else {
            size_t nc = strlen(child);
            size_t m = nc < np ? nc : np;
            if (S_ISDIR(sb.st_mode) && strncmp(child, prefix, m) == 0)
                st = walk(dir, child, prefix, out, err);
            else if (S_ISREG(sb.st_mode) && nc >= np &&
                     strncmp(child, prefix, np) == 0)
                st = pl_store_keylist_push(out, child, nc, err);
        }
        free(full);
        free(child);
    }
    closedir(d);
    free(path);
    return st;
}

static int file_list(void *impl, const char *prefix, pl_store_keylist *out,
                     pl_err *err)
{
    file_store *fs = impl;
    /* Start at the deepest directory the prefix names completely. */
    const char *slash = strrchr(prefix, '/');
    char *start = strndup(prefix, slash ? (size_t)(slash - prefix) : 0);
    if (!start)
        return pl_err_set(err, PL_ERR_NOMEM, "listing '%s'", prefix);
    int st = walk(fs->dir, start, prefix, out, err);
    free(start);
    return st;
}

static int file_del(void *impl, const char *key, pl_err *err)
{
    file_store *fs = impl;
    char *path = join(fs->dir, key);
    if (!path)
        return pl_err_set(err, PL_ERR_NOMEM, "delete '%s'", key);
    int st = PL_OK;
    if (unlink(path) != 0 && errno != ENOENT && errno != ENOTDIR &&
        errno != EISDIR)
        st = pl_err_set(err, PL_ERR_IO, "delete '%s': unlink '%s': %s", key,
                        path, strerror(errno));
    free(path);
    return st;
}

static int file_stat(void *impl, const char *key, int *exists, size_t *size,
                     pl_err *err)
{
    file_store *fs = impl;
    char *path = join(fs->dir, key);
    if (!path)
        return pl_err_set(err, PL_ERR_NOMEM, "stat '%s'", key);
    struct stat sb;
    int st = PL_OK;
    if (stat(path, &sb) == 0) {
        *exists = S_ISREG(sb.st_mode);
        *size = *exists ? (size_t)sb.st_size : 0;
    } else if (errno != ENOENT && errno != ENOTDIR) {
        st = pl_err_set(err, PL_ERR_IO, "stat '%s': '%s': %s", key, path,
                        strerror(errno));
    }
    free(path);
    return st;
}

static void file_close(void *impl)
{
    file_store *fs = impl;
    if (!fs)
        return;
    free(fs->dir);
    free(fs);
}

const pl_store_vtable pl_store_file_vtable = {
    "file", file_put, file_get, file_list, file_del, file_stat, file_close,
};
