/* safetensors.c — safetensors reader (validating), writer (atomic) and
 * pl_flat save/load. See include/peerless/safetensors.h for the contract. */
#include "peerless/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/strbuf.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host (the file format is little-endian)"
#endif

/* Largest integer a double (and so cJSON) represents exactly. */
#define ST_MAX_JSON_INT ((uint64_t)1 << 53)

/* ------------------------------------------------------------------ dtypes */

/* src: n elements of the dtype (unaligned, little-endian); dst: n floats. */
typedef void (*st_to_f32_fn)(const unsigned char *src, float *dst, size_t n);

static void f32_to_f32(const unsigned char *src, float *dst, size_t n)
{
    memcpy(dst, src, n * sizeof(float));
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    } else {
        /* zero or subnormal: man * 2^-24 is exact in float */
        float f = ldexpf((float)man, -24);
        return sign ? -f : f;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void f16_to_f32(const unsigned char *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = half_to_float(h);
    }
}

static void bf16_to_f32(const unsigned char *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        uint32_t bits = (uint32_t)h << 16;
        memcpy(&dst[i], &bits, sizeof bits);
    }
}

static void i64_to_f32(const unsigned char *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t v;
        memcpy(&v, src + 8 * i, 8);
        dst[i] = (float)v;
    }
}

static void i32_to_f32(const unsigned char *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int32_t v;
        memcpy(&v, src + 4 * i, 4);
        dst[i] = (float)v;
    }
}

static void u8_to_f32(const unsigned char *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)src[i];
}

typedef struct st_dtype_info {
    const char *name;
    size_t size;
    st_to_f32_fn to_f32;
} st_dtype_info;

/* Indexed by pl_st_dtype. */
static const st_dtype_info st_dtypes[PL_ST_NDTYPES] = {
    {"F32", 4, f32_to_f32},  {"F16", 2, f16_to_f32}, {"BF16", 2, bf16_to_f32},
    {"I64", 8, i64_to_f32},  {"I32", 4, i32_to_f32}, {"U8", 1, u8_to_f32},
};

static int dtype_valid(pl_st_dtype dt) { return (int)dt >= 0 && (int)dt < PL_ST_NDTYPES; }

const char *pl_st_dtype_name(pl_st_dtype dt) { return dtype_valid(dt) ? st_dtypes[dt].name : "?"; }

size_t pl_st_dtype_size(pl_st_dtype dt) { return dtype_valid(dt) ? st_dtypes[dt].size : 0; }

static int dtype_parse(const char *s, pl_st_dtype *out)
{
    for (int i = 0; i < PL_ST_NDTYPES; i++) {
        if (strcmp(s, st_dtypes[i].name) == 0) {
            *out = (pl_st_dtype)i;
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ helpers */

/* Index of the first byte that is not valid UTF-8 (RFC 3629: no overlongs,
 * no surrogates, max U+10FFFF), or n if all valid. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xbf;   /* allowed range of the 2nd byte */
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            lo = c == 0xe0 ? 0xa0 : 0x80;
            hi = c == 0xed ? 0x9f : 0xbf;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            lo = c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xf4 ? 0x8f : 0xbf;
        } else {
            return i;
        }
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf)
                return i;
        i += len;
    }
    return n;
}

/* Non-negative integer JSON number that a double holds exactly. */
static int json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    if (!(d >= 0) || d > (double)ST_MAX_JSON_INT || d != floor(d))
        return 0;
    *out = (uint64_t)d;
    return 1;
}

/* Describe a JSON value that failed json_uint, for an error message. */
static const char *json_uint_problem(const cJSON *v)
{
    if (!cJSON_IsNumber(v))
        return "not a number";
    double d = v->valuedouble;
    if (d < 0)
        return "negative";
    if (d != floor(d))
        return "not an integer";
    return "too large (above 2^53)";
}

static char *st_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static char *dims_str(int ndim, const int64_t *dim, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? ", " : "", (long long)dim[i]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
    return buf;
}

/* ------------------------------------------------------------------ reader */

struct pl_st_reader {
    char *label;                 /* owned: path or caller's label */
    unsigned char *owned;        /* owned file copy, or NULL when borrowed */
    const unsigned char *data;   /* start of the data buffer */
    size_t data_len;
    cJSON *json;                 /* owned; names and metadata point into it */
    pl_st_tensor *tensors;       /* owned, data order */
    int ntensors;
    const pl_st_tensor **by_name;  /* owned, sorted by name */
    const cJSON **meta;          /* owned array of borrowed string items */
    int nmeta;
};

void pl_st_close(pl_st_reader *r)
{
    if (!r)
        return;
    cJSON_Delete(r->json);
    free(r->tensors);
    free(r->by_name);
    free(r->meta);
    free(r->owned);
    free(r->label);
    free(r);
}

static uint64_t read_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Check the length prefix; *hlen receives N. */
static int check_prefix(const pl_st_reader *r, size_t len, const unsigned char *buf,
                        uint64_t *hlen, pl_err *err)
{
    if (len < 8)
        return pl_err_set(err, PL_ERR_FORMAT,
                          "%s: file is %zu bytes, shorter than the 8-byte header length",
                          r->label, len);
    uint64_t n = read_le64(buf);
    if (n > PL_ST_MAX_HEADER)
        return pl_err_set(err, PL_ERR_FORMAT,
                          "%s: header length %llu exceeds the limit of %llu bytes", r->label,
                          (unsigned long long)n, (unsigned long long)PL_ST_MAX_HEADER);
    if (n > len - 8)
        return pl_err_set(err, PL_ERR_FORMAT,
                          "%s: header length %llu is larger than the %zu bytes after the length field",
                          r->label, (unsigned long long)n, len - 8);
    *hlen = n;
    return PL_OK;
}

/* Parse the header text (n bytes at h) into r->json. */
static int parse_json(pl_st_reader *r, const unsigned char *h, size_t n, pl_err *err)
{
    size_t bad = utf8_invalid_at(h, n);
    if (bad < n)
        return pl_err_set(err, PL_ERR_FORMAT, "%s: header is not valid UTF-8 (header byte %zu)",
                          r->label, bad);
    /* cJSON wants a NUL-terminated string; an embedded NUL then shows up as
     * trailing garbage below. */
    char *text = malloc(n + 1);
    if (!text)
        return pl_err_set(err, PL_ERR_NOMEM, "%s: out of memory for a %zu-byte header", r->label, n);
    memcpy(text, h, n);
    text[n] = '\0';
    const char *end = NULL;
    r->json = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    size_t pos = end ? (size_t)(end - text) : 0;
    while (r->json && pos < n && text[pos] && strchr(" \t\r\n", text[pos]))
        pos++;
    free(text);
    if (!r->json)
        return pl_err_set(err, PL_ERR_FORMAT, "%s: header is not valid JSON (error at header byte %zu)",
                          r->label, pos);
    if (pos < n)
        return pl_err_set(err, PL_ERR_FORMAT,
                          "%s: header has unexpected bytes after the JSON value (header byte %zu)",
                          r->label, pos);
    if (!cJSON_IsObject(r->json))
        return pl_err_set(err, PL_ERR_FORMAT, "%s: header is not a JSON object", r->label);
    return PL_OK;
}

static int parse_metadata(pl_st_reader *r, const cJSON *m, pl_err *err)
{
    if (r->meta)
        return pl_err_set(err, PL_ERR_FORMAT, "%s: duplicate \"__metadata__\" entry", r->label);
    if (!cJSON_IsObject(m))
        return pl_err_set(err, PL_ERR_FORMAT, "%s: \"__metadata__\" is not a JSON object", r->label);
    int n = cJSON_GetArraySize(m);
    r->meta = malloc((size_t)(n ? n : 1) * sizeof *r->meta);
    if (!r->meta)
        return pl_err_set(err, PL_ERR_NOMEM, "%s: out of memory for %d metadata entries", r->label, n);
    for (const cJSON *c = m->child; c; c = c->next) {
        if (!cJSON_IsString(c))
            return pl_err_set(err, PL_ERR_FORMAT, "%s: metadata value for key '%s' is not a string",
                              r->label, c->string ? c->string : "");
        r->meta[r->nmeta++] = c;
    }
    return PL_OK;
}

static int parse_dtype(const pl_st_reader *r, const cJSON *obj, pl_st_tensor *t, pl_err *err)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(obj, "dtype");
    if (!d)
        return pl_err_set(err, PL_ERR_FORMAT, "%s: tensor '%s': missing \"dtype\"", r->label, t->name);
    if (!cJSON_IsString(d))
        return pl_err_set(err, PL_ERR_FORMAT, "%s: tensor '%s': \"dtype\" is not a string",
                          r->label, t->name);
    if (!dtype_parse(d->valuestring, &t->dtype))
        return pl_err_set(err, PL_ERR_UNSUPPORTED,
                          "%s: tensor '%s': dtype '%s' is not supported (expected F32, F16, BF16, I64, I32 or U8)",
                          r->label, t->name, d->valuestring);
    return PL_OK;
}

static int parse_shape(const pl_st_reader *r, const cJSON *obj, pl_st_tensor *t, pl_err *err)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(obj, "shape");
    if (!s)
        return pl_err_set(err, PL_ERR_FORMAT, "%s: tensor '%s': missing \"shape\"", r->label, t->name);
    if (!cJSON_IsArray(s))
        return pl_err_set(err, PL_ERR_FORMAT, "%s: tensor '%s': \"shape\" is not an array",
                          r->label, t->name);
    int nd = cJSON_GetArraySize(s);
    if (nd > PL_ST_MAX_DIMS)
        return pl_err_set(err, PL_ERR_UNSUPPORTED, "%s: tensor '%s': %d dims, at most %d supported",
                          r->label, t->name, nd, PL_ST_MAX_DIMS);
    t->ndim = 0;
    for (const cJSON *c = s->child; c; c = c->next) {
        uint64_t v;
        if (!json_uint(c, &v))
            return pl_err_set(err, PL_ERR_FORMAT,
                              "%s: tensor '%s': shape[%d] is %s, expected a non-negative integer",
                              r->label, t->name, t->ndim, json_uint_problem(c));
        t->shape[t->ndim++] = (int64_t)v;
    }
    return PL_OK;
}

static int parse_offsets(const pl_st_reader *r, const cJSON *obj, const pl_st_tensor *t,
                         uint64_t *begin, uint64_t *end, pl_err *err)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(obj, "data_offsets");
    if (!o)
        return pl_err_set(err, PL_ERR_FORMAT, "%s: tensor '%s': missing \"data_offsets\"",
                          r->label, t->name);
    if (!cJSON_IsArray(o) || cJSON_GetArraySize(o) != 2)
        return pl_err_set(err, PL_ERR_FORMAT,
                          "%s: tensor '%s': \"data_offsets\" is not an array of 2 integers",
                          r->label, t->name);
    const cJSON *item[2] = {o->child, o->child->next};
    uint64_t *dst[2] = {begin, end};
    for (int i = 0; i < 2; i++)
        if (!json_uint(item[i], dst[i]))
            return pl_err_set(err, PL_ERR_FORMAT,
                              "%s: tensor '%s': data_offsets[%d] is %s, expected a non-negative integer",
                              r->label, t->name, i, json_uint_problem(item[i]));
    if (*begin > *end)
        return pl_err_set(err, PL_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] have begin > end",
                          r->label, t->name, (unsigned long long)*begin, (unsigned long long)*end);
    if (*end > r->data_len)
        return pl_err_set(err, PL_ERR_FORMAT,
                          "%s: tensor '%s': data_offsets [%llu, %llu] point past the end of the data (%zu bytes)",
                          r->label, t->name, (unsigned long long)*begin, (unsigned long long)*end,
                          r->data_len);
    return PL_OK;
}

/* numel * dtype size must equal end - begin, computed without overflow. */
static int check_size(const pl_st_reader *r, pl_st_tensor *t, uint64_t begin, uint64_t end,
                      pl_err *err)
{
    uint64_t numel = 1, size = st_dtypes[t->dtype].size;
    int overflow = 0, has_zero = 0;
    for (int i = 0; i < t->ndim; i++)
        has_zero |= t->shape[i] == 0;
    for (int i = 0; i < t->ndim && !has_zero && !overflow; i++) {
        uint64_t d = (uint64_t)t->shape[i];
        overflow = numel > UINT64_MAX / d;
        numel *= d;
    }
    if (has_zero)
        numel = 0;
    overflow |= numel > UINT64_MAX / size;
    char sb[160];
    if (overflow || numel * size != end - begin)
        return pl_err_set(err, PL_ERR_FORMAT,
                          "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but %s shape %s needs %s",
                          r->label, t->name, (unsigned long long)begin, (unsigned long long)end,
                          (unsigned long long)(end - begin), st_dtypes[t->dtype].name,
                          dims_str(t->ndim, t->shape, sb, sizeof sb),
                          overflow ? "more than 2^64 bytes" : "a different size");
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)(end - begin);
    t->data = r->data + begin;
    return PL_OK;
}

static int parse_tensor(const pl_st_reader *r, const cJSON *obj, pl_st_tensor *t, pl_err *err)
{
    memset(t, 0, sizeof *t);
    t->name = obj->string ? obj->string : "";
    if (!cJSON_IsObject(obj))
        return pl_err_set(err, PL_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object",
                          r->label, t->name);
    uint64_t begin = 0, end = 0;
    int rc = parse_dtype(r, obj, t, err);
    if (rc == PL_OK)
        rc = parse_shape(r, obj, t, err);
    if (rc == PL_OK)
        rc = parse_offsets(r, obj, t, &begin, &end, err);
    if (rc == PL_OK)
        rc = check_size(r, t, begin, end, err);
    return rc;
}

static int cmp_data_order(const void *a, const void *b)
{
    const pl_st_tensor *x = a, *y = b;
    const unsigned char *px = x->data, *py = y->data;
    if (px != py)
        return px < py ? -1 : 1;
    if (x->nbytes != y->nbytes)
        return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_name(const void *a, const void *b)
{
    const pl_st_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* Sort into data order and reject overlapping non-empty tensors. */
static int check_overlap(pl_st_reader *r, pl_err *err)
{
    if (r->ntensors > 1)
        qsort(r->tensors, (size_t)r->ntensors, sizeof *r->tensors, cmp_data_order);
    const pl_st_tensor *last = NULL;   /* non-empty tensor ending furthest */
    for (int i = 0; i < r->ntensors; i++) {
        const pl_st_tensor *t = &r->tensors[i];
        if (t->nbytes == 0)
            continue;
        const unsigned char *b = t->data;
        if (last && b < (const unsigned char *)last->data + last->nbytes) {
            size_t lb = (size_t)((const unsigned char *)last->data - r->data);
            size_t tb = (size_t)(b - r->data);
            return pl_err_set(err, PL_ERR_FORMAT,
                              "%s: tensors '%s' [%zu, %zu] and '%s' [%zu, %zu] overlap", r->label,
                              last->name, lb, lb + last->nbytes, t->name, tb, tb + t->nbytes);
        }
        if (!last || b + t->nbytes > (const unsigned char *)last->data + last->nbytes)
            last = t;
    }
    return PL_OK;
}

static int index_names(pl_st_reader *r, pl_err *err)
{
    r->by_name = malloc((size_t)(r->ntensors ? r->ntensors : 1) * sizeof *r->by_name);
    if (!r->by_name)
        return pl_err_set(err, PL_ERR_NOMEM, "%s: out of memory indexing %d tensors", r->label,
                          r->ntensors);
    for (int i = 0; i < r->ntensors; i++)
        r->by_name[i] = &r->tensors[i];
    if (r->ntensors > 1)
        qsort(r->by_name, (size_t)r->ntensors, sizeof *r->by_name, cmp_name);
    for (int i = 1; i < r->ntensors; i++)
        if (strcmp(r->by_name[i - 1]->name, r->by_name[i]->name) == 0)
            return pl_err_set(err, PL_ERR_FORMAT, "%s: duplicate tensor name '%s'", r->label,
                              r->by_name[i]->name);
    return PL_OK;
}

static int parse_entries(pl_st_reader *r, pl_err *err)
{
    int n = cJSON_GetArraySize(r->json);
    r->tensors = malloc((size_t)(n ? n : 1) * sizeof *r->tensors);
    if (!r->tensors)
        return pl_err_set(err, PL_ERR_NOMEM, "%s: out of memory for %d tensors", r->label, n);
    for (const cJSON *c = r->json->child; c; c = c->next) {
        int rc;
        if (c->string && strcmp(c->string, "__metadata__") == 0)
            rc = parse_metadata(r, c, err);
        else
            rc = parse_tensor(r, c, &r->tensors[r->ntensors++], err);
        if (rc != PL_OK)
            return rc;
    }
    int rc = check_overlap(r, err);
    return rc == PL_OK ? index_names(r, err) : rc;
}

/* Validate buf[0..len) into a new reader that takes `owned` (may be NULL). */
static int open_buffer(pl_st_reader **out, const unsigned char *buf, size_t len,
                       unsigned char *owned, const char *label, pl_err *err)
{
    *out = NULL;
    pl_st_reader *r = calloc(1, sizeof *r);
    char *lab = st_strdup(label ? label : "<memory>");
    if (!r || !lab) {
        free(r);
        free(lab);
        free(owned);
        return pl_err_set(err, PL_ERR_NOMEM, "safetensors: out of memory opening %s",
                          label ? label : "<memory>");
    }
    r->label = lab;
    r->owned = owned;
    uint64_t hlen = 0;
    int rc = check_prefix(r, len, buf, &hlen, err);
    if (rc == PL_OK) {
        r->data = buf + 8 + hlen;
        r->data_len = len - 8 - (size_t)hlen;
        rc = parse_json(r, buf + 8, (size_t)hlen, err);
    }
    if (rc == PL_OK)
        rc = parse_entries(r, err);
    if (rc != PL_OK) {
        pl_st_close(r);
        return rc;
    }
    *out = r;
    return PL_OK;
}

int pl_st_open_memory(pl_st_reader **out, const void *buf, size_t len, const char *label,
                      pl_err *err)
{
    if (!out || (!buf && len))
        return pl_err_set(err, PL_ERR_ARG, "safetensors: NULL argument opening %s",
                          label ? label : "<memory>");
    static const unsigned char empty[1];
    return open_buffer(out, buf ? buf : empty, len, NULL, label, err);
}

static int read_whole_file(const char *path, unsigned char **out, size_t *len, pl_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return pl_err_set(err, PL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return pl_err_set(err, PL_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return pl_err_set(err, PL_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    int rerr = ferror(f);
    fclose(f);
    if (got != n) {
        free(buf);
        return pl_err_set(err, PL_ERR_IO, "%s: short read (%zu of %zu bytes)%s", path, got, n,
                          rerr ? ": read error" : "");
    }
    *out = buf;
    *len = n;
    return PL_OK;
}

int pl_st_open(pl_st_reader **out, const char *path, pl_err *err)
{
    if (!out || !path)
        return pl_err_set(err, PL_ERR_ARG, "safetensors: NULL argument to pl_st_open");
    *out = NULL;
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = read_whole_file(path, &buf, &len, err);
    if (rc != PL_OK)
        return rc;
    return open_buffer(out, buf, len, buf, path, err);
}

int pl_st_count(const pl_st_reader *r) { return r ? r->ntensors : 0; }

const pl_st_tensor *pl_st_tensor_at(const pl_st_reader *r, int i)
{
    return r && i >= 0 && i < r->ntensors ? &r->tensors[i] : NULL;
}

const pl_st_tensor *pl_st_find(const pl_st_reader *r, const char *name)
{
    if (!r || !name || r->ntensors == 0)
        return NULL;
    pl_st_tensor key;
    key.name = name;
    const pl_st_tensor *kp = &key;
    const pl_st_tensor **hit =
        bsearch(&kp, r->by_name, (size_t)r->ntensors, sizeof *r->by_name, cmp_name);
    return hit ? *hit : NULL;
}

int pl_st_metadata_count(const pl_st_reader *r) { return r ? r->nmeta : 0; }

int pl_st_metadata_at(const pl_st_reader *r, int i, const char **key, const char **value)
{
    if (!r || i < 0 || i >= r->nmeta)
        return PL_ERR_ARG;
    if (key)
        *key = r->meta[i]->string ? r->meta[i]->string : "";
    if (value)
        *value = r->meta[i]->valuestring;
    return PL_OK;
}

const char *pl_st_metadata_get(const pl_st_reader *r, const char *key)
{
    for (int i = 0; r && key && i < r->nmeta; i++)
        if (r->meta[i]->string && strcmp(r->meta[i]->string, key) == 0)
            return r->meta[i]->valuestring;
    return NULL;
}

void pl_st_tensor_to_f32(const pl_st_tensor *t, float *dst)
{
    st_dtypes[t->dtype].to_f32(t->data, dst, (size_t)t->numel);
}

static int tensor_has_shape(const pl_st_tensor *t, const pl_shape *s)
{
    if (t->ndim != s->ndim)
        return 0;
    for (int i = 0; i < s->ndim; i++)
        if (t->shape[i] != s->dim[i])
            return 0;
    return 1;
}

/* PL_ERR_SHAPE unless t has shape *s; `what` says who expected it. */
static int check_shape(const pl_st_reader *r, const pl_st_tensor *t, const pl_shape *s,
                       const char *what, pl_err *err)
{
    if (tensor_has_shape(t, s))
        return PL_OK;
    char want[160], got[160];
    return pl_err_set(err, PL_ERR_SHAPE, "%s: tensor '%s': %s shape %s, file has %s", r->label,
                      t->name, what, dims_str(s->ndim, s->dim, want, sizeof want),
                      dims_str(t->ndim, t->shape, got, sizeof got));
}

int pl_st_read_f32(const pl_st_reader *r, const char *name, const pl_shape *expect, float *dst,
                   pl_err *err)
{
    if (!r || !name || !expect || (!dst && pl_shape_numel(expect) > 0))
        return pl_err_set(err, PL_ERR_ARG, "safetensors: NULL argument reading '%s'",
                          name ? name : "(null)");
    const pl_st_tensor *t = pl_st_find(r, name);
    if (!t)
        return pl_err_set(err, PL_ERR_NOTFOUND, "%s: no tensor named '%s'", r->label, name);
    int rc = check_shape(r, t, expect, "expected", err);
    if (rc != PL_OK)
        return rc;
    pl_st_tensor_to_f32(t, dst);
    return PL_OK;
}

/* ------------------------------------------------------------------ writer */

typedef struct st_entry {
    char *name;              /* owned */
    pl_st_dtype dtype;
    int ndim;
    int64_t shape[PL_ST_MAX_DIMS];
    const void *data;        /* borrowed, or == owned */
    void *owned;             /* data the writer converted and owns, or NULL */
    size_t nbytes;
} st_entry;

struct pl_st_writer {
    st_entry *e;             /* owned */
    int n, cap;
    char **mkey, **mval;     /* owned strings */
    int nmeta, metacap;
};

int pl_st_writer_create(pl_st_writer **out, pl_err *err)
{
    if (!out)
        return pl_err_set(err, PL_ERR_ARG, "safetensors writer: NULL argument");
    *out = calloc(1, sizeof **out);
    if (!*out)
        return pl_err_set(err, PL_ERR_NOMEM, "safetensors writer: out of memory");
    return PL_OK;
}

void pl_st_writer_destroy(pl_st_writer *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++) {
        free(w->e[i].name);
        free(w->e[i].owned);
    }
    for (int i = 0; i < w->nmeta; i++) {
        free(w->mkey[i]);
        free(w->mval[i]);
    }
    free(w->e);
    free(w->mkey);
    free(w->mval);
    free(w);
}

/* Checked byte count of a tensor; 0 on overflow sets *ok = 0. */
static size_t shape_nbytes(int ndim, const int64_t *shape, size_t elem, int *ok)
{
    size_t n = elem;
    *ok = 1;
    for (int i = 0; i < ndim; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (d != 0 && n > SIZE_MAX / d)
            *ok = 0;
        n = *ok ? n * (size_t)d : 0;
    }
    return n;
}

static int check_new_name(const pl_st_writer *w, const char *name, pl_err *err)
{
    if (!name || !*name || strcmp(name, "__metadata__") == 0)
        return pl_err_set(err, PL_ERR_ARG, "safetensors writer: invalid tensor name '%s'",
                          name ? name : "(null)");
    size_t len = strlen(name);
    if (utf8_invalid_at((const unsigned char *)name, len) < len)
        return pl_err_set(err, PL_ERR_ARG, "safetensors writer: tensor name '%s' is not valid UTF-8",
                          name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0)
            return pl_err_set(err, PL_ERR_ARG, "safetensors writer: duplicate tensor name '%s'", name);
    return PL_OK;
}

static int check_new_shape(const char *name, pl_st_dtype dtype, int ndim, const int64_t *shape,
                           size_t *nbytes, pl_err *err)
{
    if (!dtype_valid(dtype))
        return pl_err_set(err, PL_ERR_ARG, "safetensors writer: tensor '%s': invalid dtype %d",
                          name, (int)dtype);
    if (ndim < 0 || ndim > PL_ST_MAX_DIMS || (ndim > 0 && !shape))
        return pl_err_set(err, PL_ERR_ARG, "safetensors writer: tensor '%s': ndim %d outside [0, %d]",
                          name, ndim, PL_ST_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || (uint64_t)shape[i] > ST_MAX_JSON_INT)
            return pl_err_set(err, PL_ERR_ARG, "safetensors writer: tensor '%s': dim %d is %lld",
                              name, i, (long long)shape[i]);
    int ok;
    *nbytes = shape_nbytes(ndim, shape, st_dtypes[dtype].size, &ok);
    if (!ok)
        return pl_err_set(err, PL_ERR_ARG, "safetensors writer: tensor '%s': size overflows", name);
    return PL_OK;
}

int pl_st_writer_add(pl_st_writer *w, const char *name, pl_st_dtype dtype, int ndim,
                     const int64_t *shape, const void *data, pl_err *err)
{
    size_t nbytes = 0;
    int rc = check_new_name(w, name, err);
    if (rc == PL_OK)
        rc = check_new_shape(name, dtype, ndim, shape, &nbytes, err);
    if (rc != PL_OK)
        return rc;
    if (!data && nbytes)
        return pl_err_set(err, PL_ERR_ARG, "safetensors writer: tensor '%s': NULL data", name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        st_entry *e = realloc(w->e, (size_t)cap * sizeof *e);
        if (!e)
            return pl_err_set(err, PL_ERR_NOMEM, "safetensors writer: out of memory adding '%s'", name);
        w->e = e;
        w->cap = cap;
    }
    st_entry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    e->name = st_strdup(name);
    if (!e->name)
        return pl_err_set(err, PL_ERR_NOMEM, "safetensors writer: out of memory adding '%s'", name);
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        e->shape[i] = shape[i];
    e->data = data;
    e->nbytes = nbytes;
    w->n++;
    return PL_OK;
}

static int grow_meta(pl_st_writer *w)
{
    if (w->nmeta < w->metacap)
        return 1;
    int cap = w->metacap ? 2 * w->metacap : 8;
    char **k = realloc(w->mkey, (size_t)cap * sizeof *k);
    if (!k)
        return 0;
    w->mkey = k;
    char **v = realloc(w->mval, (size_t)cap * sizeof *v);
    if (!v)
        return 0;
    w->mval = v;
    w->metacap = cap;
    return 1;
}

int pl_st_writer_set_metadata(pl_st_writer *w, const char *key, const char *value, pl_err *err)
{
    if (!key || !value)
        return pl_err_set(err, PL_ERR_ARG, "safetensors writer: NULL metadata key or value");
    size_t kl = strlen(key), vl = strlen(value);
    if (utf8_invalid_at((const unsigned char *)key, kl) < kl ||
        utf8_invalid_at((const unsigned char *)value, vl) < vl)
        return pl_err_set(err, PL_ERR_ARG, "safetensors writer: metadata '%s' is not valid UTF-8", key);
    char *v = st_strdup(value);
    if (!v)
        return pl_err_set(err, PL_ERR_NOMEM, "safetensors writer: out of memory for metadata '%s'", key);
    for (int i = 0; i < w->nmeta; i++) {
        if (strcmp(w->mkey[i], key) == 0) {
            free(w->mval[i]);
            w->mval[i] = v;
            return PL_OK;
        }
    }
    char *k = st_strdup(key);
    if (!k || !grow_meta(w)) {
        free(k);
        free(v);
        return pl_err_set(err, PL_ERR_NOMEM, "safetensors writer: out of memory for metadata '%s'", key);
    }
    w->mkey[w->nmeta] = k;
    w->mval[w->nmeta++] = v;
    return PL_OK;
}


static void sb_u64(pl_sb *b, uint64_t v)
{
    char t[24];
    snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    pl_sb_str(b, t);
}

/* A JSON string literal: quotes, backslashes and control bytes escaped. */
static void sb_json_string(pl_sb *b, const char *s)
{
    pl_sb_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char t[8];
        if (*p == '"' || *p == '\\') {
            t[0] = '\\';
            t[1] = (char)*p;
            pl_sb_add(b, t, 2);
        } else if (*p < 0x20) {
            snprintf(t, sizeof t, "\\u%04x", *p);
            pl_sb_add(b, t, 6);
        } else {
            pl_sb_add(b, (const char *)p, 1);
        }
    }
    pl_sb_add(b, "\"", 1);
}

static void sb_entry(pl_sb *b, const st_entry *e, uint64_t begin)
{
    sb_json_string(b, e->name);
    pl_sb_str(b, ":{\"dtype\":\"");
    pl_sb_str(b, st_dtypes[e->dtype].name);
    pl_sb_str(b, "\",\"shape\":[");
    for (int i = 0; i < e->ndim; i++) {
        if (i)
            pl_sb_add(b, ",", 1);
        sb_u64(b, (uint64_t)e->shape[i]);
    }
    pl_sb_str(b, "],\"data_offsets\":[");
    sb_u64(b, begin);
    pl_sb_add(b, ",", 1);
    sb_u64(b, begin + e->nbytes);
    pl_sb_str(b, "]}");
}

/* Header JSON padded with spaces to a multiple of 8; *data_len = sum nbytes. */
static int build_header(const pl_st_writer *w, pl_sb *b, uint64_t *data_len, pl_err *err)
{
    memset(b, 0, sizeof *b);
    pl_sb_add(b, "{", 1);
    if (w->nmeta) {
        pl_sb_str(b, "\"__metadata__\":{");
        for (int i = 0; i < w->nmeta; i++) {
            if (i)
                pl_sb_add(b, ",", 1);
            sb_json_string(b, w->mkey[i]);
            pl_sb_add(b, ":", 1);
            sb_json_string(b, w->mval[i]);
        }
        pl_sb_add(b, "}", 1);
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        if (i || w->nmeta)
            pl_sb_add(b, ",", 1);
        sb_entry(b, &w->e[i], off);
        off += w->e[i].nbytes;
    }
    pl_sb_add(b, "}", 1);
    while (!b->failed && b->n % 8)
        pl_sb_add(b, " ", 1);
    *data_len = off;
    if (b->failed) {
        free(b->p);
        return pl_err_set(err, PL_ERR_NOMEM, "safetensors writer: out of memory building the header");
    }
    if (off > ST_MAX_JSON_INT || b->n > PL_ST_MAX_HEADER) {
        free(b->p);
        return pl_err_set(err, PL_ERR_ARG, "safetensors writer: file too large (%zu-byte header, %llu data bytes)",
                          b->n, (unsigned long long)off);
    }
    return PL_OK;
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

int pl_st_writer_to_memory(const pl_st_writer *w, void **out, size_t *len, pl_err *err)
{
    pl_sb hdr;
    uint64_t dlen;
    int rc = build_header(w, &hdr, &dlen, err);
    if (rc != PL_OK)
        return rc;
    size_t total = 8 + hdr.n + (size_t)dlen;
    unsigned char *buf = malloc(total);
    if (!buf) {
        free(hdr.p);
        return pl_err_set(err, PL_ERR_NOMEM, "safetensors writer: out of memory for %zu bytes", total);
    }
    put_le64(buf, hdr.n);
    memcpy(buf + 8, hdr.p, hdr.n);
    size_t off = 8 + hdr.n;
    for (int i = 0; i < w->n; i++) {
        if (w->e[i].nbytes)
            memcpy(buf + off, w->e[i].data, w->e[i].nbytes);
        off += w->e[i].nbytes;
    }
    free(hdr.p);
    *out = buf;
    *len = total;
    return PL_OK;
}

static int write_all(int fd, const void *buf, size_t n, const char *path, pl_err *err)
{
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return pl_err_set(err, PL_ERR_IO, "%s: write failed: %s", path,
                              k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
    }
    return PL_OK;
}

/* Write the whole file to an open fd, then fsync it. */
static int write_contents(const pl_st_writer *w, int fd, const char *tmp, pl_err *err)
{
    pl_sb hdr;
    uint64_t dlen;
    int rc = build_header(w, &hdr, &dlen, err);
    if (rc != PL_OK)
        return rc;
    unsigned char prefix[8];
    put_le64(prefix, hdr.n);
    rc = write_all(fd, prefix, 8, tmp, err);
    if (rc == PL_OK)
        rc = write_all(fd, hdr.p, hdr.n, tmp, err);
    free(hdr.p);
    for (int i = 0; i < w->n && rc == PL_OK; i++)
        rc = write_all(fd, w->e[i].data, w->e[i].nbytes, tmp, err);
    if (rc == PL_OK && fsync(fd) != 0)
        rc = pl_err_set(err, PL_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
    return rc;
}

/* fsync the directory holding `path` so the rename itself is durable. */
static int sync_parent_dir(const char *path, pl_err *err)
{
    char *dir = st_strdup(path);
    if (!dir)
        return pl_err_set(err, PL_ERR_NOMEM, "%s: out of memory", path);
    char *slash = strrchr(dir, '/');
    const char *d = dir;
    if (!slash)
        d = ".";
    else if (slash == dir)
        d = "/";
    else
        *slash = '\0';
    int fd = open(d, O_RDONLY | O_DIRECTORY);
    int rc = PL_OK;
    /* Some file systems cannot fsync directories (EINVAL); the data is
     * already durable then, so that is not an error. */
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL))
        rc = pl_err_set(err, PL_ERR_IO, "%s: cannot sync directory %s: %s", path, d, strerror(errno));
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

int pl_st_writer_write(const pl_st_writer *w, const char *path, pl_err *err)
{
    if (!w || !path)
        return pl_err_set(err, PL_ERR_ARG, "safetensors writer: NULL argument");
    size_t tl = strlen(path) + 32;
    char *tmp = malloc(tl);
    if (!tmp)
        return pl_err_set(err, PL_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, tl, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = pl_err_set(err, PL_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    int rc = write_contents(w, fd, tmp, err);
    if (close(fd) != 0 && rc == PL_OK)
        rc = pl_err_set(err, PL_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    if (rc == PL_OK && rename(tmp, path) != 0)
        rc = pl_err_set(err, PL_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (rc != PL_OK)
        unlink(tmp);
    free(tmp);
    return rc == PL_OK ? sync_parent_dir(path, err) : rc;
}

/* ------------------------------------------------------------------ flats */

/* int64 copy of an I64 view's floats (new buffer, caller frees). */
static int view_to_i64(const pl_flat *f, int vi, int64_t **out, pl_err *err)
{
    const pl_view *v = &f->views[vi];
    size_t n = (size_t)pl_shape_numel(&v->shape);
    int64_t *q = malloc((n ? n : 1) * sizeof *q);
    if (!q)
        return pl_err_set(err, PL_ERR_NOMEM, "saving '%s': out of memory", v->name);
    const float *src = pl_flat_ptr(f, vi);
    for (size_t i = 0; i < n; i++) {
        /* float -> int64 is undefined outside the int64 range */
        if (!(fabsf(src[i]) < 9.2e18f)) {
            free(q);
            return pl_err_set(err, PL_ERR_NUMERIC, "saving '%s': element %zu (%g) is not a valid int64",
                              v->name, i, (double)src[i]);
        }
        q[i] = (int64_t)llrintf(src[i]);
    }
    *out = q;
    return PL_OK;
}

int pl_st_writer_add_flat(pl_st_writer *w, const pl_flat *f, pl_err *err)
{
    if (!w || !f || (!f->data && f->count))
        return pl_err_set(err, PL_ERR_ARG, "safetensors writer: flat vector is NULL or not allocated");
    for (int i = 0; i < f->nviews; i++) {
        const pl_view *v = &f->views[i];
        if (v->kind != PL_VIEW_I64) {
            int rc = pl_st_writer_add(w, v->name, PL_ST_F32, v->shape.ndim, v->shape.dim,
                                      pl_flat_ptr(f, i), err);
            if (rc != PL_OK)
                return rc;
            continue;
        }
        int64_t *q = NULL;
        int rc = view_to_i64(f, i, &q, err);
        if (rc == PL_OK)
            rc = pl_st_writer_add(w, v->name, PL_ST_I64, v->shape.ndim, v->shape.dim, q, err);
        if (rc != PL_OK) {
            free(q);
            return rc;
        }
        w->e[w->n - 1].owned = q;
    }
    return PL_OK;
}

int pl_st_save_flats(const char *path, const pl_flat *const *flats, int n, pl_err *err)
{
    pl_st_writer *w = NULL;
    int rc = pl_st_writer_create(&w, err);
    for (int i = 0; i < n && rc == PL_OK; i++)
        rc = pl_st_writer_add_flat(w, flats[i], err);
    if (rc == PL_OK)
        rc = pl_st_writer_write(w, path, err);
    pl_st_writer_destroy(w);
    if (rc != PL_OK && path)
        return pl_err_wrap(err, rc, "saving %s", path);
    return rc;
}

/* Does any view of flats[0..n) have this name? */
static int flats_have(pl_flat *const *flats, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (pl_flat_find(flats[i], name) >= 0)
            return 1;
    return 0;
}

/* Every check of pl_st_load_flats, before anything is written. */
static int check_flats(const pl_st_reader *r, pl_flat *const *flats, int n, int strict, pl_err *err)
{
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < flats[i]->nviews; k++) {
            const pl_view *v = &flats[i]->views[k];
            const pl_st_tensor *t = pl_st_find(r, v->name);
            if (!t && strict)
                return pl_err_set(err, PL_ERR_NOTFOUND, "%s: strict load: view '%s' is missing from the file",
                                  r->label, v->name);
            int rc = t ? check_shape(r, t, &v->shape, "view expects", err) : PL_OK;
            if (rc != PL_OK)
                return rc;
        }
    }
    for (int j = 0; strict && j < r->ntensors; j++)
        if (!flats_have(flats, n, r->tensors[j].name))
            return pl_err_set(err, PL_ERR_FORMAT, "%s: strict load: unexpected tensor '%s' (no view has that name)",
                              r->label, r->tensors[j].name);
    return PL_OK;
}

int pl_st_load_flats(const pl_st_reader *r, pl_flat *const *flats, int n, int strict, int *loaded,
                     pl_err *err)
{
    if (loaded)
        *loaded = 0;
    if (!r || (n > 0 && !flats) || n < 0)
        return pl_err_set(err, PL_ERR_ARG, "safetensors: invalid arguments to pl_st_load_flats");
    for (int i = 0; i < n; i++)
        if (!flats[i] || (!flats[i]->data && flats[i]->count))
            return pl_err_set(err, PL_ERR_ARG, "%s: flat vector %d is NULL or not allocated", r->label, i);
    int rc = check_flats(r, flats, n, strict, err);
    if (rc != PL_OK)
        return rc;
    int count = 0;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < flats[i]->nviews; k++) {
            const pl_st_tensor *t = pl_st_find(r, flats[i]->views[k].name);
            if (t) {
                pl_st_tensor_to_f32(t, pl_flat_ptr(flats[i], k));
                count++;
            }
        }
    }
    if (loaded)
        *loaded = count;
    return PL_OK;
}

int pl_st_load_flats_file(const char *path, pl_flat *const *flats, int n, int strict, int *loaded,
                          pl_err *err)
{
    pl_st_reader *r = NULL;
    int rc = pl_st_open(&r, path, err);
    if (rc == PL_OK)
        rc = pl_st_load_flats(r, flats, n, strict, loaded, err);
    pl_st_close(r);
    return rc;
}
