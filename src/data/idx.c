/* idx.c — the IDX file format (MNIST, Fashion-MNIST), gzipped or raw.
 *
 * Layout: 4-byte big-endian magic 0x000008NN (NN = number of dims; 0x08 =
 * uint8 data), NN big-endian uint32 dims, then exactly prod(dims) bytes.
 */
#include "data_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAGIC_IMAGES 0x00000803u
/* Reject headers that promise more than 4 GiB: no IDX dataset is that big and
 * a corrupt header must not turn into a huge allocation. */
#define IDX_MAX_PAYLOAD ((uint64_t)1 << 32)

/* A byte source that is either a raw FILE or a gzip stream. */
typedef struct src {
    FILE *raw;
    gzFile gz;
    const char *path;
} src;

static int src_open(src *s, const char *path, pl_err *err)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    FILE *f = fopen(path, "rb");
    if (!f)
        return pl_err_set(err, PL_ERR_IO, "%s: cannot open for reading", path);
    unsigned char m[2] = {0, 0};
    size_t got = fread(m, 1, 2, f);
    if (got == 2 && m[0] == 0x1f && m[1] == 0x8b) {
        fclose(f);
        s->gz = gzopen(path, "rb");
        if (!s->gz)
            return pl_err_set(err, PL_ERR_IO, "%s: cannot open gzip stream", path);
        return PL_OK;
    }
    rewind(f);
    s->raw = f;
    return PL_OK;
}

static void src_close(src *s)
{
    if (s->raw)
        fclose(s->raw);
    if (s->gz)
        gzclose(s->gz);
}

/* Read up to n bytes; returns the count read (< n only at end of data), or
 * -1 on a read/decompression error (message in err). */
static int64_t src_read(src *s, void *buf, size_t n, pl_err *err)
{
    size_t done = 0;
    while (done < n) {
        size_t want = n - done > (1u << 30) ? (1u << 30) : n - done;
        size_t got;
        if (s->raw) {
            got = fread((char *)buf + done, 1, want, s->raw);
            if (got < want && ferror(s->raw)) {
                pl_err_set(err, PL_ERR_IO, "%s: read error at offset %zu", s->path, done);
                return -1;
            }
        } else {
            int r = gzread(s->gz, (char *)buf + done, (unsigned)want);
            if (r < 0) {
                int code;
                const char *msg = gzerror(s->gz, &code);
                pl_err_set(err, PL_ERR_FORMAT, "%s: gzip error after %zu bytes: %s", s->path,
                           done, msg);
                return -1;
            }
            got = (size_t)r;
        }
        done += got;
        if (got < want)
            break;
    }
    return (int64_t)done;
}

/* Count the bytes left in s (to report trailing garbage precisely). */
static int64_t src_count_rest(src *s, pl_err *err)
{
    char buf[65536];
    int64_t total = 0, got;
    while ((got = src_read(s, buf, sizeof buf, err)) > 0)
        total += got;
    return got < 0 ? -1 : total;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Read header of an IDX file with `ndim` dims and magic `magic` into dims. */
static int read_header(src *s, uint32_t magic, int ndim, uint32_t *dims, pl_err *err)
{
    unsigned char h[16];
    size_t hlen = 4 + 4 * (size_t)ndim;
    int64_t got = src_read(s, h, hlen, err);
    if (got < 0)
        return err ? err->status : PL_ERR_IO;
    if ((size_t)got < hlen)
        return pl_err_set(err, PL_ERR_FORMAT,
                          "%s: truncated IDX header: expected %zu bytes, got %lld", s->path, hlen,
                          (long long)got);
    uint32_t m = be32(h);
    if (m != magic)
        return pl_err_set(err, PL_ERR_FORMAT,
                          "%s: bad IDX magic 0x%08x at offset 0 (expected 0x%08x: uint8 %s "
                          "with %d dims)",
                          s->path, m, magic, ndim == 3 ? "images" : "labels", ndim);
    for (int i = 0; i < ndim; i++) {
        dims[i] = be32(h + 4 + 4 * i);
        if (dims[i] == 0)
            return pl_err_set(err, PL_ERR_FORMAT, "%s: IDX dim %d at offset %d is 0", s->path, i,
                              4 + 4 * i);
    }
    return PL_OK;
}

/* Read exactly `n` payload bytes after a header of hlen bytes, and require
 * end of file right after them. */
static int read_payload(src *s, size_t hlen, uint8_t *dst, size_t n, pl_err *err)
{
    int64_t got = src_read(s, dst, n, err);
    if (got < 0)
        return err ? err->status : PL_ERR_IO;
    if ((size_t)got < n)
        return pl_err_set(err, PL_ERR_FORMAT,
                          "%s: truncated IDX payload: expected %zu data bytes after the %zu-byte "
                          "header (%zu total), got %lld",
                          s->path, n, hlen, n + hlen, (long long)got);
    int64_t rest = src_count_rest(s, err);
    if (rest < 0)
        return err ? err->status : PL_ERR_IO;
    if (rest > 0)
        return pl_err_set(err, PL_ERR_FORMAT,
                          "%s: %lld bytes of trailing data: expected exactly %zu bytes "
                          "(%zu header + %zu data), got %lld",
                          s->path, (long long)rest, n + hlen, hlen, n,
                          (long long)(n + hlen + (size_t)rest));
    return PL_OK;
}

static int read_images(const char *name, const char *path, int num_classes, pl_dataset **out,
                       pl_err *err)
{
    src s;
    int rc = src_open(&s, path, err);
    uint32_t d[3] = {0, 0, 0};
    if (rc == PL_OK)
        rc = read_header(&s, IDX_MAGIC_IMAGES, 3, d, err);
    if (rc == PL_OK && (uint64_t)d[0] * d[1] * d[2] > IDX_MAX_PAYLOAD)
        rc = pl_err_set(err, PL_ERR_FORMAT, "%s: IDX dims %u x %u x %u exceed the %llu-byte limit",
                        path, d[0], d[1], d[2], (unsigned long long)IDX_MAX_PAYLOAD);
    if (rc == PL_OK && (d[1] > 65535 || d[2] > 65535 || d[0] > INT32_MAX))
        rc = pl_err_set(err, PL_ERR_FORMAT, "%s: IDX dims %u x %u x %u out of range", path, d[0],
                        d[1], d[2]);
    if (rc == PL_OK)
        rc = pl_dataset_alloc_(name, d[0], 1, (int)d[1], (int)d[2], num_classes, out, err);
    if (rc == PL_OK)
        rc = read_payload(&s, 16, (*out)->images, (size_t)d[0] * d[1] * d[2], err);
    src_close(&s);
    return rc;
}

static int read_labels(const char *path, pl_dataset *ds, pl_err *err)
{
    src s;
    int rc = src_open(&s, path, err);
    uint32_t n = 0;
    if (rc == PL_OK)
        rc = read_header(&s, IDX_MAGIC_LABELS, 1, &n, err);
    if (rc == PL_OK && n != ds->n)
        rc = pl_err_set(err, PL_ERR_FORMAT,
                        "%s: %u labels but the image file holds %lld images (counts must agree)",
                        path, n, (long long)ds->n);
    if (rc == PL_OK)
        rc = read_payload(&s, 8, ds->labels, n, err);
    src_close(&s);
    for (uint32_t i = 0; rc == PL_OK && i < n; i++)
        if (ds->labels[i] >= ds->num_classes)
            rc = pl_err_set(err, PL_ERR_FORMAT,
                            "%s: label %d at offset %u (item %u) is not in [0, %d)", path,
                            ds->labels[i], 8 + i, i, ds->num_classes);
    return rc;
}

int pl_idx_load_pair_(const char *name, const char *images_path, const char *labels_path,
                      int num_classes, pl_dataset **out, pl_err *err)
{
    *out = NULL;
    int rc = read_images(name, images_path, num_classes, out, err);
    if (rc == PL_OK)
        rc = read_labels(labels_path, *out, err);
    if (rc != PL_OK) {
        pl_dataset_destroy(*out);
        *out = NULL;
        return pl_err_wrap(err, rc, "loading dataset %s", name);
    }
    return PL_OK;
}
