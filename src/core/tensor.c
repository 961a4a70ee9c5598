/* tensor.c — shapes, aligned allocation, flat vectors with named views. */
#include "peerless/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *pl_alloc(size_t bytes)
{
    void *p = NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0)
        rounded = 64;
    if (posix_memalign(&p, 64, rounded) != 0)
        return NULL;
    return p;
}

void *pl_calloc(size_t bytes)
{
    void *p = pl_alloc(bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void pl_free(void *p) { free(p); }

pl_shape pl_shape_make(int ndim, const int64_t *dims)
{
    pl_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = ndim;
    for (int i = 0; i < ndim && i < PL_MAX_DIMS; i++)
        s.dim[i] = dims[i];
    return s;
}

pl_shape pl_shape4(int64_t n, int64_t c, int64_t h, int64_t w)
{
    int64_t d[4] = {n, c, h, w};
    return pl_shape_make(4, d);
}

pl_shape pl_shape2(int64_t n, int64_t c)
{
    int64_t d[2] = {n, c};
    return pl_shape_make(2, d);
}

pl_shape pl_shape1(int64_t n) { return pl_shape_make(1, &n); }

int64_t pl_shape_numel(const pl_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->dim[i];
    return n;
}

int pl_shape_eq(const pl_shape *a, const pl_shape *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dim[i] != b->dim[i])
            return 0;
    return 1;
}

char *pl_shape_str(const pl_shape *s, char *buf, size_t len)
{
    size_t used = 0;
    if (len == 0)
        return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < s->ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? ", " : "", (long long)s->dim[i]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
    return buf;
}

void pl_flat_init(pl_flat *f) { memset(f, 0, sizeof *f); }

void pl_flat_free(pl_flat *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->nviews; i++)
        free(f->views[i].name);
    free(f->views);
    pl_free(f->data);
    memset(f, 0, sizeof *f);
}

int pl_flat_add(pl_flat *f, const char *name, pl_shape shape, pl_view_kind kind, pl_err *err)
{
    if (f->data)
        return pl_err_set(err, PL_ERR_ARG, "flat vector: cannot add view '%s' after allocation", name);
    if (pl_flat_find(f, name) >= 0)
        return pl_err_set(err, PL_ERR_ARG, "flat vector: duplicate view name '%s'", name);
    if (f->nviews == f->cap) {
        int cap = f->cap ? f->cap * 2 : 16;
        pl_view *v = realloc(f->views, (size_t)cap * sizeof *v);
        if (!v)
            return pl_err_set(err, PL_ERR_NOMEM, "flat vector: out of memory adding '%s'", name);
        f->views = v;
        f->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return pl_err_set(err, PL_ERR_NOMEM, "flat vector: out of memory adding '%s'", name);
    pl_view *v = &f->views[f->nviews];
    v->name = copy;
    v->offset = f->count;
    v->shape = shape;
    v->kind = kind;
    f->count += (size_t)pl_shape_numel(&shape);
    return f->nviews++;
}

int pl_flat_alloc(pl_flat *f, pl_err *err)
{
    pl_free(f->data);
    f->data = pl_calloc(f->count * sizeof(float));
    if (!f->data)
        return pl_err_set(err, PL_ERR_NOMEM, "flat vector: cannot allocate %zu floats", f->count);
    return PL_OK;
}

int pl_flat_find(const pl_flat *f, const char *name)
{
    for (int i = 0; i < f->nviews; i++)
        if (strcmp(f->views[i].name, name) == 0)
            return i;
    return -1;
}

float *pl_flat_ptr(const pl_flat *f, int i) { return f->data + f->views[i].offset; }

void pl_flat_zero(pl_flat *f)
{
    if (f->data)
        memset(f->data, 0, f->count * sizeof(float));
}

uint64_t pl_hash_bytes(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t pl_flat_checksum(const pl_flat *f)
{
    return pl_hash_bytes(PL_FNV_OFFSET, f->data, f->count * sizeof(float));
}
