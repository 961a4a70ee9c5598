/* test_safetensors.c — safetensors reader/writer: dtype round trips against
 * IEEE bit patterns, every validation error (status + key phrase), every
 * truncation of a valid file, atomic writes, and pl_flat save/load. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peerless/safetensors.h"
#include "test.h"

static char g_path[512];

static const char *tmp_path(const char *name)
{
    snprintf(g_path, sizeof g_path, "%s/st_%s.safetensors", pl_test_tmpdir(), name);
    return g_path;
}

/* A file: u64 length + header (with ' turned into ") + data_len zero bytes.
 * Returned buffer is malloc'd to the exact size so ASan sees overreads. */
static unsigned char *make_file(const char *header, size_t data_len, size_t *len)
{
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    unsigned char *b = calloc(1, *len);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    for (size_t i = 0; i < h; i++)
        b[8 + i] = header[i] == '\'' ? '"' : (unsigned char)header[i];
    return b;
}

/* Open `header` + data_len bytes from memory; expect failure `status` whose
 * message contains `phrase`. */
static void expect_bad(const char *header, size_t data_len, int status, const char *phrase)
{
    size_t len;
    unsigned char *b = make_file(header, data_len, &len);
    pl_st_reader *r = NULL;
    pl_err err = {0};
    int rc = pl_st_open_memory(&r, b, len, "bad.st", &err);
    PL_CHECK(rc == status, "header %s: status %d, want %d (%s)", header, rc, status, err.msg);
    PL_CHECK(strstr(err.msg, phrase) != NULL, "header %s: message '%s' lacks '%s'", header, err.msg,
             phrase);
    PL_CHECK(strncmp(err.msg, "bad.st: ", 8) == 0, "message '%s' does not name the input", err.msg);
    PL_CHECK(r == NULL, "reader returned on failure");
    pl_st_close(r);
    free(b);
}

static void test_malformed_headers(void)
{
    expect_bad("[1, 2]", 0, PL_ERR_FORMAT, "header is not a JSON object");
    expect_bad("{'a': ", 0, PL_ERR_FORMAT, "header is not valid JSON");
    expect_bad("{} x", 0, PL_ERR_FORMAT, "unexpected bytes after the JSON value");
    expect_bad("{'a\xff':1}", 0, PL_ERR_FORMAT, "not valid UTF-8 (header byte 3)");
    expect_bad("{'x':3}", 0, PL_ERR_FORMAT, "tensor 'x': entry is not a JSON object");
    expect_bad("{'x':{'shape':[2],'data_offsets':[0,8]}}", 8, PL_ERR_FORMAT, "tensor 'x': missing \"dtype\"");
    expect_bad("{'x':{'dtype':'F32','data_offsets':[0,8]}}", 8, PL_ERR_FORMAT, "tensor 'x': missing \"shape\"");
    expect_bad("{'x':{'dtype':'F32','shape':[2]}}", 8, PL_ERR_FORMAT, "tensor 'x': missing \"data_offsets\"");
    expect_bad("{'x':{'dtype':4,'shape':[2],'data_offsets':[0,8]}}", 8, PL_ERR_FORMAT,
               "\"dtype\" is not a string");
    expect_bad("{'x':{'dtype':'F32','shape':2,'data_offsets':[0,8]}}", 8, PL_ERR_FORMAT,
               "\"shape\" is not an array");
    expect_bad("{'x':{'dtype':'F32','shape':[2],'data_offsets':[0]}}", 8, PL_ERR_FORMAT,
               "\"data_offsets\" is not an array of 2 integers");
    expect_bad("{'x':{'dtype':'F32','shape':[2],'data_offsets':[0,'8']}}", 8, PL_ERR_FORMAT,
               "data_offsets[1] is not a number");
    expect_bad("{'x':{'dtype':'F64','shape':[1],'data_offsets':[0,8]}}", 8, PL_ERR_UNSUPPORTED,
               "tensor 'x': dtype 'F64' is not supported");
    expect_bad("{'x':{'dtype':'F32','shape':[2,-1],'data_offsets':[0,8]}}", 8, PL_ERR_FORMAT,
               "tensor 'x': shape[1] is negative");
    expect_bad("{'x':{'dtype':'F32','shape':[1.5],'data_offsets':[0,8]}}", 8, PL_ERR_FORMAT,
               "shape[0] is not an integer");
    expect_bad("{'x':{'dtype':'F32','shape':['2'],'data_offsets':[0,8]}}", 8, PL_ERR_FORMAT,
               "shape[0] is not a number");
    expect_bad("{'x':{'dtype':'F32','shape':[1e300],'data_offsets':[0,8]}}", 8, PL_ERR_FORMAT,
               "shape[0] is too large");
    expect_bad("{'x':{'dtype':'F32','shape':[1,1,1,1,1,1,1,1,1],'data_offsets':[0,4]}}", 4,
               PL_ERR_UNSUPPORTED, "9 dims");
    expect_bad("{'x':{'dtype':'F32','shape':[0],'data_offsets':[8,0]}}", 8, PL_ERR_FORMAT,
               "data_offsets [8, 0] have begin > end");
    expect_bad("{'x':{'dtype':'F32','shape':[4],'data_offsets':[0,16]}}", 8, PL_ERR_FORMAT,
               "tensor 'x': data_offsets [0, 16] point past the end of the data (8 bytes)");
    expect_bad("{'x':{'dtype':'F32','shape':[3],'data_offsets':[0,8]}}", 8, PL_ERR_FORMAT,
               "hold 8 bytes but F32 shape [3] needs");
    expect_bad("{'x':{'dtype':'F32','shape':[1099511627776,1099511627776],'data_offsets':[0,8]}}", 8,
               PL_ERR_FORMAT, "more than 2^64 bytes");
    expect_bad("{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
               "'b':{'dtype':'U8','shape':[8],'data_offsets':[4,12]}}", 12, PL_ERR_FORMAT,
               "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
    expect_bad("{'a':{'dtype':'U8','shape':[2],'data_offsets':[0,2]},"
               "'a':{'dtype':'U8','shape':[2],'data_offsets':[2,4]}}", 4, PL_ERR_FORMAT,
               "duplicate tensor name 'a'");
    expect_bad("{'__metadata__':{'k':1}}", 0, PL_ERR_FORMAT, "metadata value for key 'k' is not a string");
    expect_bad("{'__metadata__':[]}", 0, PL_ERR_FORMAT, "\"__metadata__\" is not a JSON object");
}

/* Bad length prefixes need hand-made bytes. */
static void test_bad_prefix(void)
{
    unsigned char b[16] = {0};
    pl_st_reader *r = NULL;
    pl_err err = {0};
    int rc = pl_st_open_memory(&r, b, 7, "p.st", &err);
    PL_CHECK(rc == PL_ERR_FORMAT && strstr(err.msg, "p.st: file is 7 bytes, shorter than the 8-byte"),
             "short file: %d %s", rc, err.msg);
    b[0] = 9;
    rc = pl_st_open_memory(&r, b, 16, "p.st", &err);
    PL_CHECK(rc == PL_ERR_FORMAT && strstr(err.msg, "header length 9 is larger than the 8 bytes"),
             "long header: %d %s", rc, err.msg);
    b[0] = 0;
    b[3] = 0x07;   /* 0x07000000 = 117440512 > 100 MB */
    rc = pl_st_open_memory(&r, b, 16, "p.st", &err);
    PL_CHECK(rc == PL_ERR_FORMAT && strstr(err.msg, "exceeds the limit of 104857600 bytes"),
             "huge header: %d %s", rc, err.msg);
    memset(b, 0xff, 8);
    rc = pl_st_open_memory(&r, b, 16, "p.st", &err);
    PL_CHECK(rc == PL_ERR_FORMAT, "u64 max header: %d %s", rc, err.msg);
    rc = pl_st_open(&r, tmp_path("does_not_exist_dir/x"), &err);
    PL_CHECK(rc == PL_ERR_IO && strstr(err.msg, "cannot open"), "missing file: %d %s", rc, err.msg);
}

/* Known IEEE encodings (from the standards, not from our code). */
static const uint16_t f16_bits[] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x3555, 0x8000, 0x7c00};
static const float f16_vals[] = {1.0f, -2.0f, 65504.0f, 5.9604644775390625e-8f,
                                 6.103515625e-5f, 0.333251953125f, -0.0f, INFINITY};
static const uint16_t bf16_bits[] = {0x3f80, 0xc000, 0x4049, 0x7f7f, 0x0001, 0xff80};
static const float bf16_vals[] = {1.0f, -2.0f, 3.140625f, 3.3895313892515355e38f,
                                  9.183549615799121e-41f, -INFINITY};

static void check_tensor(const pl_st_reader *r, const char *name, pl_st_dtype dt, int ndim,
                         const int64_t *shape, const void *bytes, size_t nbytes, const float *want)
{
    const pl_st_tensor *t = pl_st_find(r, name);
    PL_CHECK(t != NULL, "tensor %s not found", name);
    if (!t)
        return;
    PL_CHECK(t->dtype == dt && t->ndim == ndim && t->nbytes == nbytes, "%s: dtype/ndim/nbytes", name);
    for (int i = 0; i < ndim && i < t->ndim; i++)
        PL_CHECK(t->shape[i] == shape[i], "%s: dim %d", name, i);
    PL_CHECK(memcmp(t->data, bytes, nbytes) == 0, "%s: bytes differ", name);
    float got[16];
    pl_st_tensor_to_f32(t, got);
    for (int64_t i = 0; i < t->numel && i < 16; i++)
        PL_CHECK(memcmp(&got[i], &want[i], 4) == 0 || got[i] == want[i], "%s[%lld]: %g want %g", name,
                 (long long)i, (double)got[i], (double)want[i]);
}

/* The file on disk equals the in-memory serialisation; header padded to 8. */
static void check_serialisation(const char *path, const void *mem, size_t mlen)
{
    FILE *f = fopen(path, "rb");
    unsigned char *fb = malloc(mlen + 1);
    size_t got = f ? fread(fb, 1, mlen + 1, f) : 0;
    if (f)
        fclose(f);
    PL_CHECK(got == mlen && memcmp(fb, mem, mlen) == 0, "file and memory serialisations differ");
    free(fb);
    const char *h = (const char *)mem + 8;
    uint64_t hl = 0, j;
    memcpy(&hl, mem, 8);
    for (j = hl; j > 0 && h[j - 1] == ' '; j--)
        ;
    PL_CHECK(hl % 8 == 0 && j > 0 && h[j - 1] == '}' && hl - j < 8,
             "header of %llu bytes is not the JSON object padded with < 8 spaces", (unsigned long long)hl);
}

/* Every proper prefix of a valid file must fail cleanly (exact-size copies
 * so that ASan catches any overread). */
static void check_truncations(const void *mem, size_t mlen)
{
    int all_fail = 1;
    for (size_t len = 0; len < mlen; len++) {
        unsigned char *cut = malloc(len ? len : 1);
        memcpy(cut, mem, len);
        pl_st_reader *rr = NULL;
        pl_err e2 = {0};
        int rc = pl_st_open_memory(&rr, cut, len, "cut", &e2);
        if (rc == PL_OK || rr || e2.msg[0] == '\0')
            all_fail = 0;
        pl_st_close(rr);
        free(cut);
    }
    PL_CHECK(all_fail, "some truncation of a %zu-byte file was accepted", mlen);
}

static void test_roundtrip_dtypes(void)
{
    const float f32[6] = {1.5f, -2.25f, 3e-38f, 1e30f, 0.0f, -7.0f};
    const int64_t i64[3] = {-3, (int64_t)1 << 40, 0};
    const float i64f[3] = {-3.0f, 1099511627776.0f, 0.0f};
    const int32_t i32[3] = {INT32_MIN, 7, -1};
    const float i32f[3] = {-2147483648.0f, 7.0f, -1.0f};
    const uint8_t u8[4] = {0, 1, 128, 255};
    const float u8f[4] = {0, 1, 128, 255};
    const float scalar = 42.0f;
    int64_t s23[2] = {2, 3}, s8[1] = {8}, s6[1] = {6}, s3[1] = {3}, s4[1] = {4}, s0[2] = {0, 5};
    pl_st_writer *w = NULL;
    pl_err err = {0};
    PL_CHECK(pl_st_writer_create(&w, &err) == PL_OK, "create");
    PL_CHECK(pl_st_writer_add(w, "f32", PL_ST_F32, 2, s23, f32, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(pl_st_writer_add(w, "f16", PL_ST_F16, 1, s8, f16_bits, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(pl_st_writer_add(w, "bf16", PL_ST_BF16, 1, s6, bf16_bits, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(pl_st_writer_add(w, "i64", PL_ST_I64, 1, s3, i64, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(pl_st_writer_add(w, "i32", PL_ST_I32, 1, s3, i32, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(pl_st_writer_add(w, "u8", PL_ST_U8, 1, s4, u8, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(pl_st_writer_add(w, "scalar", PL_ST_F32, 0, NULL, &scalar, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(pl_st_writer_add(w, "empty", PL_ST_F32, 2, s0, NULL, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(pl_st_writer_add(w, "quote\"d\n", PL_ST_U8, 1, s4, u8, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(pl_st_writer_set_metadata(w, "format", "pt", &err) == PL_OK, "%s", err.msg);
    PL_CHECK(pl_st_writer_set_metadata(w, "step", "1", &err) == PL_OK, "%s", err.msg);
    PL_CHECK(pl_st_writer_set_metadata(w, "step", "12", &err) == PL_OK, "%s", err.msg);

    /* writer rejects bad input */
    int64_t neg[1] = {-1};
    PL_CHECK(pl_st_writer_add(w, "f32", PL_ST_F32, 1, s3, f32, &err) == PL_ERR_ARG &&
             strstr(err.msg, "duplicate tensor name 'f32'"), "dup: %s", err.msg);
    PL_CHECK(pl_st_writer_add(w, "__metadata__", PL_ST_F32, 1, s3, f32, &err) == PL_ERR_ARG, "meta name");
    PL_CHECK(pl_st_writer_add(w, "neg", PL_ST_F32, 1, neg, f32, &err) == PL_ERR_ARG, "neg dim");

    const char *path = tmp_path("dtypes");
    PL_CHECK(pl_st_writer_write(w, path, &err) == PL_OK, "write: %s", err.msg);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    PL_CHECK(access(tmp, F_OK) != 0, "temp file %s left behind", tmp);
    void *mem = NULL;
    size_t mlen = 0;
    PL_CHECK(pl_st_writer_to_memory(w, &mem, &mlen, &err) == PL_OK, "to_memory: %s", err.msg);
    pl_st_writer_destroy(w);

    pl_st_reader *r = NULL;
    PL_CHECK(pl_st_open(&r, path, &err) == PL_OK, "open: %s", err.msg);
    if (!r)
        return;
    PL_CHECK(pl_st_count(r) == 9, "count %d", pl_st_count(r));
    check_tensor(r, "f32", PL_ST_F32, 2, s23, f32, sizeof f32, f32);
    check_tensor(r, "f16", PL_ST_F16, 1, s8, f16_bits, sizeof f16_bits, f16_vals);
    check_tensor(r, "bf16", PL_ST_BF16, 1, s6, bf16_bits, sizeof bf16_bits, bf16_vals);
    check_tensor(r, "i64", PL_ST_I64, 1, s3, i64, sizeof i64, i64f);
    check_tensor(r, "i32", PL_ST_I32, 1, s3, i32, sizeof i32, i32f);
    check_tensor(r, "u8", PL_ST_U8, 1, s4, u8, sizeof u8, u8f);
    check_tensor(r, "scalar", PL_ST_F32, 0, NULL, &scalar, 4, &scalar);
    check_tensor(r, "empty", PL_ST_F32, 2, s0, "", 0, NULL);
    check_tensor(r, "quote\"d\n", PL_ST_U8, 1, s4, u8, sizeof u8, u8f);
    PL_CHECK(pl_st_find(r, "nope") == NULL, "find missing");
    /* data order == order added, because the writer packs in that order */
    PL_CHECK(strcmp(pl_st_tensor_at(r, 0)->name, "f32") == 0, "first tensor");
    PL_CHECK(pl_st_metadata_count(r) == 2, "metadata count");
    const char *v = pl_st_metadata_get(r, "step");
    PL_CHECK(v && strcmp(v, "12") == 0, "metadata step=%s", v ? v : "(null)");

    float buf[6];
    pl_shape want = pl_shape2(2, 3), wrong = pl_shape2(3, 2);
    PL_CHECK(pl_st_read_f32(r, "f32", &want, buf, &err) == PL_OK && buf[1] == -2.25f, "read_f32");
    PL_CHECK(pl_st_read_f32(r, "f32", &wrong, buf, &err) == PL_ERR_SHAPE &&
             strstr(err.msg, "tensor 'f32': expected shape [3, 2], file has [2, 3]"), "shape msg: %s", err.msg);
    PL_CHECK(pl_st_read_f32(r, "zz", &want, buf, &err) == PL_ERR_NOTFOUND && strstr(err.msg, "'zz'"),
             "notfound: %s", err.msg);
    pl_st_close(r);

    check_serialisation(path, mem, mlen);
    check_truncations(mem, mlen);
    free(mem);
}

static void make_model(pl_flat *p, pl_flat *b, float seed)
{
    pl_err err = {0};
    pl_flat_init(p);
    pl_flat_init(b);
    pl_flat_add(p, "fc.weight", pl_shape2(2, 3), PL_VIEW_F32, &err);
    pl_flat_add(p, "fc.bias", pl_shape1(2), PL_VIEW_F32, &err);
    pl_flat_add(b, "bn.running_mean", pl_shape1(3), PL_VIEW_F32, &err);
    pl_flat_add(b, "bn.num_batches_tracked", pl_shape_make(0, NULL), PL_VIEW_I64, &err);
    pl_flat_alloc(p, &err);
    pl_flat_alloc(b, &err);
    pl_test_fill(p->data, p->count, (unsigned)seed, -1, 1);
    pl_test_fill(b->data, 3, (unsigned)seed + 1, -1, 1);
    b->data[3] = seed;
}

static void test_flats(void)
{
    pl_flat p, b, p2, b2;
    pl_err err = {0};
    make_model(&p, &b, 7);
    make_model(&p2, &b2, 9);
    const char *path = tmp_path("flat");
    const pl_flat *const save[2] = {&p, &b};
    PL_CHECK(pl_st_save_flats(path, save, 2, &err) == PL_OK, "save: %s", err.msg);

    pl_st_reader *r = NULL;
    PL_CHECK(pl_st_open(&r, path, &err) == PL_OK, "open: %s", err.msg);
    const pl_st_tensor *t = pl_st_find(r, "bn.num_batches_tracked");
    int64_t nbt = -1;
    if (t)
        memcpy(&nbt, t->data, 8);
    PL_CHECK(t && t->dtype == PL_ST_I64 && t->ndim == 0 && nbt == 7, "num_batches_tracked as I64 = 7");

    pl_flat *const load[2] = {&p2, &b2};
    int loaded = -1;
    PL_CHECK(pl_st_load_flats(r, load, 2, 1, &loaded, &err) == PL_OK && loaded == 4, "strict: %s", err.msg);
    PL_CHECK(memcmp(p.data, p2.data, p.count * 4) == 0 && memcmp(b.data, b2.data, b.count * 4) == 0,
             "strict load differs");

    /* params only, strictly: the buffers are unexpected */
    p2.data[0] = 123;
    PL_CHECK(pl_st_load_flats(r, load, 1, 1, &loaded, &err) == PL_ERR_FORMAT &&
             strstr(err.msg, "unexpected tensor 'bn.running_mean'"), "unexpected: %s", err.msg);
    PL_CHECK(p2.data[0] == 123, "failed strict load wrote data");
    PL_CHECK(pl_st_load_flats(r, load, 1, 0, &loaded, &err) == PL_OK && loaded == 2, "non-strict extra");
    PL_CHECK(p2.data[0] == p.data[0], "non-strict load");
    pl_st_close(r);

    /* a view missing from the file */
    pl_flat big, bb;
    make_model(&big, &bb, 3);
    pl_flat_free(&big);
    pl_flat_init(&big);
    pl_flat_add(&big, "fc.weight", pl_shape2(2, 3), PL_VIEW_F32, &err);
    pl_flat_add(&big, "fc.extra", pl_shape1(4), PL_VIEW_F32, &err);
    pl_flat_alloc(&big, &err);
    big.data[6] = 5;
    pl_flat *const load2[2] = {&big, &bb};
    PL_CHECK(pl_st_load_flats_file(path, load2, 2, 1, &loaded, &err) == PL_ERR_NOTFOUND &&
             strstr(err.msg, "view 'fc.extra' is missing"), "missing: %s", err.msg);
    PL_CHECK(pl_st_load_flats_file(path, load2, 2, 0, &loaded, &err) == PL_OK && loaded == 3,
             "non-strict missing: %s", err.msg);
    PL_CHECK(big.data[6] == 5 && big.data[0] == p.data[0] && bb.data[3] == 7, "non-strict values");

    /* wrong shape is an error in both modes */
    pl_flat ws;
    pl_flat_init(&ws);
    pl_flat_add(&ws, "fc.bias", pl_shape1(3), PL_VIEW_F32, &err);
    pl_flat_alloc(&ws, &err);
    pl_flat *const load3[1] = {&ws};
    PL_CHECK(pl_st_load_flats_file(path, load3, 1, 0, &loaded, &err) == PL_ERR_SHAPE &&
             strstr(err.msg, "tensor 'fc.bias': view expects shape [3], file has [2]"), "shape: %s", err.msg);

    /* duplicate names across flats cannot be saved; nothing is left behind */
    const pl_flat *const dup[2] = {&p, &p2};
    PL_CHECK(pl_st_save_flats(tmp_path("dup"), dup, 2, &err) == PL_ERR_ARG &&
             strstr(err.msg, "duplicate tensor name 'fc.weight'"), "dup save: %s", err.msg);
    PL_CHECK(access(tmp_path("dup"), F_OK) != 0, "failed save created the file");
    /* a NaN counter cannot become an int64 */
    b.data[3] = NAN;
    PL_CHECK(pl_st_save_flats(tmp_path("nan"), save, 2, &err) == PL_ERR_NUMERIC &&
             strstr(err.msg, "bn.num_batches_tracked"), "nan: %s", err.msg);
    PL_CHECK(pl_st_save_flats("/nonexistent-dir/x.safetensors", save, 1, &err) == PL_ERR_IO, "io");

    pl_flat *all[] = {&p, &b, &p2, &b2, &big, &bb, &ws};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        pl_flat_free(all[i]);
}

int main(void)
{
    test_bad_prefix();
    test_malformed_headers();
    test_roundtrip_dtypes();
    test_flats();
    PL_TEST_MAIN();
}
