/* test_store.c — the object store.
 *
 *   test_store        file:// backend + URL validation (no server needed)
 *   test_store s3     s3:// backend against the server at
 *                     PEERLESS_TEST_S3_ENDPOINT (bucket peerless-test, keys
 *                     S3RVER/S3RVER); run by tests/cli_s3.sh, which starts
 *                     and stops a local s3rver. Fails if the variable is unset.
 *
 * The same contract checks run on both backends; the S3 listing also checks
 * what the server itself reports as key names (so path encoding and XML
 * entity decoding are checked against the server, not against ourselves).
 */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peerless/store.h"
#include "test.h"

#define ODD_KEY "odd/a&b <c>=d+e f%g~h$i'j\"k;l,m@n!o(p)*q"

static unsigned char *pattern(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n ? n : 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
    return p;
}

static int get_equals(pl_store *s, const char *key, const void *want, size_t n)
{
    void *got = NULL;
    size_t len = 0;
    pl_err err = {0};
    int st = pl_store_get(s, key, &got, &len, &err);
    int ok = st == PL_OK && got && len == n && memcmp(got, want, n) == 0;
    if (st)
        fprintf(stderr, "get '%s': %s\n", key, err.msg);
    free(got);
    return ok;
}

static void test_round_trip(pl_store *s)
{
    size_t sizes[] = {0, 1, 1000, 100000};
    for (size_t i = 0; i < 4; i++) {
        char key[64];
        snprintf(key, sizeof key, "rt/size-%zu", sizes[i]);
        unsigned char *d = pattern(sizes[i], (unsigned)i + 1);
        pl_err err = {0};
        PL_CHECK(pl_store_put(s, key, d, sizes[i], &err) == PL_OK, "%s", err.msg);
        PL_CHECK(get_equals(s, key, d, sizes[i]), "round trip %zu bytes", sizes[i]);
        int exists = 0;
        size_t size = 7;
        PL_CHECK(pl_store_stat(s, key, &exists, &size, &err) == PL_OK &&
                 exists && size == sizes[i], "stat %s: %d %zu", key, exists, size);
        free(d);
    }
    pl_err err = {0};
    PL_CHECK(pl_store_put(s, ODD_KEY, "odd", 3, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(get_equals(s, ODD_KEY, "odd", 3), "odd key round trip");
}

static void test_overwrite_delete(pl_store *s)
{
    pl_err err = {0};
    PL_CHECK(pl_store_put(s, "ow/x", "first version", 13, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(pl_store_put(s, "ow/x", "second", 6, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(get_equals(s, "ow/x", "second", 6), "overwrite gives the new bytes");
    PL_CHECK(pl_store_delete(s, "ow/x", &err) == PL_OK, "%s", err.msg);
    int exists = 1;
    PL_CHECK(pl_store_stat(s, "ow/x", &exists, NULL, &err) == PL_OK && !exists,
             "deleted key still exists");
    void *d = (void *)1;
    size_t n = 1;
    memset(&err, 0, sizeof err);
    PL_CHECK(pl_store_get(s, "ow/x", &d, &n, &err) == PL_ERR_NOTFOUND,
             "get after delete: %s", err.msg);
    PL_CHECK(d == NULL && n == 0, "missing get leaves outputs empty");
    PL_CHECK(strstr(err.msg, "ow/x") != NULL, "message names the key: %s", err.msg);
    PL_CHECK(pl_store_delete(s, "ow/x", &err) == PL_OK,
             "deleting a missing key is not an error: %s", err.msg);
    PL_CHECK(pl_store_get(s, "never/was", &d, &n, &err) == PL_ERR_NOTFOUND,
             "missing key: %s", err.msg);
}

static int list_is(pl_store *s, const char *prefix, const char *const *want,
                   size_t nwant)
{
    char **keys = NULL;
    size_t n = 0;
    pl_err err = {0};
    int st = pl_store_list(s, prefix, &keys, &n, &err);
    int ok = st == PL_OK && n == nwant;
    for (size_t i = 0; ok && i < n; i++)
        ok = strcmp(keys[i], want[i]) == 0;
    if (!ok) {
        fprintf(stderr, "list '%s' (%s): got", prefix, st ? err.msg : "ok");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " [%s]", keys[i]);
        fprintf(stderr, "\n");
    }
    pl_store_keys_free(keys, n);
    return ok;
}

static void test_list(pl_store *s)
{
    /* Put in scrambled order; listing is sorted by byte value. */
    const char *put[] = {"ls/b", "ls/a/2", "ls/ab/x", "ls/a/10", "ls/a/sub/deep",
                         "ls/a/1", "ls/a-", "ls/B"};
    pl_err err = {0};
    for (size_t i = 0; i < 8; i++)
        PL_CHECK(pl_store_put(s, put[i], put[i], strlen(put[i]), &err) == PL_OK,
                 "%s", err.msg);
    const char *all[] = {"ls/B", "ls/a-", "ls/a/1", "ls/a/10", "ls/a/2",
                         "ls/a/sub/deep", "ls/ab/x", "ls/b"};
    PL_CHECK(list_is(s, "ls/", all, 8), "list everything sorted");
    PL_CHECK(list_is(s, "ls/a/", all + 2, 4), "list a directory prefix");
    PL_CHECK(list_is(s, "ls/a", all + 1, 6), "list a partial segment");
    const char *one[] = {"ls/a/1", "ls/a/10"};
    PL_CHECK(list_is(s, "ls/a/1", one, 2), "list a key prefix");
    PL_CHECK(list_is(s, "ls/zzz", NULL, 0), "empty list");
    PL_CHECK(list_is(s, "nothing/here/", NULL, 0), "missing directory");
    const char *odd[] = {ODD_KEY};
    PL_CHECK(list_is(s, "odd/", odd, 1), "special characters survive listing");
    char **keys = NULL;
    size_t n = 0;
    PL_CHECK(pl_store_list(s, "../", &keys, &n, &err) == PL_ERR_ARG,
             "a bad prefix is rejected");
}

static void test_invalid_keys(pl_store *s)
{
    const char *bad[] = {"", "/abs", "trailing/", "a//b", "..", "../up",
                         "a/../b", ".", "a/./b", "tab\there", "nl\n",
                         "\x80high", ".pl-tmp-x", "d/.pl-x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pl_err err = {0};
        int st = pl_store_put(s, bad[i], "x", 1, &err);
        PL_CHECK(st == PL_ERR_ARG, "key '%s' accepted (%d)", bad[i], st);
        PL_CHECK(strstr(err.msg, "invalid key") != NULL, "message: %s", err.msg);
        void *d;
        size_t n;
        PL_CHECK(pl_store_get(s, bad[i], &d, &n, NULL) == PL_ERR_ARG, "get '%s'", bad[i]);
        PL_CHECK(pl_store_delete(s, bad[i], NULL) == PL_ERR_ARG, "del '%s'", bad[i]);
    }
    pl_err err = {0};
    PL_CHECK(pl_store_put(s, "../../etc/x", "x", 1, &err) == PL_ERR_ARG &&
             strstr(err.msg, "../../etc/x"), "message names the key: %s", err.msg);
    char *longkey = malloc(PL_STORE_KEY_MAX + 2);
    memset(longkey, 'k', PL_STORE_KEY_MAX + 1);
    longkey[PL_STORE_KEY_MAX + 1] = '\0';
    PL_CHECK(pl_store_put(s, longkey, "x", 1, NULL) == PL_ERR_ARG, "long key");
    longkey[PL_STORE_KEY_MAX] = '\0';
    PL_CHECK(pl_store_key_check(longkey, NULL) == PL_OK, "max-length key");
    free(longkey);
}

static void test_large(pl_store *s)
{
    size_t n = (size_t)64 << 20;
    unsigned char *d = pattern(n, 99);
    pl_err err = {0};
    PL_CHECK(pl_store_put(s, "large/64mb", d, n, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(get_equals(s, "large/64mb", d, n), "64 MB round trip");
    free(d);
    pl_store_delete(s, "large/64mb", NULL);
}

typedef struct worker {
    pl_store *s;
    int id, failures;
} worker;

static void *put_many(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 16; i++) {
        char key[64];
        snprintf(key, sizeof key, "conc/t%d/%02d", w->id, i);
        unsigned char *d = pattern(65536, (unsigned)(w->id * 100 + i));
        if (pl_store_put(w->s, key, d, 65536, NULL) != PL_OK)
            w->failures++;
        free(d);
    }
    return NULL;
}

static void test_concurrent(pl_store *s)
{
    worker w[2] = {{s, 0, 0}, {s, 1, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, put_many, &w[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    PL_CHECK(w[0].failures == 0 && w[1].failures == 0, "concurrent put failed");
    int ok = 1;
    for (int id = 0; id < 2; id++)
        for (int i = 0; i < 16; i++) {
            char key[64];
            snprintf(key, sizeof key, "conc/t%d/%02d", id, i);
            unsigned char *d = pattern(65536, (unsigned)(id * 100 + i));
            ok &= get_equals(s, key, d, 65536);
            free(d);
        }
    PL_CHECK(ok, "every concurrently written object is intact");
    char **keys;
    size_t n;
    PL_CHECK(pl_store_list(s, "conc/", &keys, &n, NULL) == PL_OK && n == 32,
             "32 keys listed");
    pl_store_keys_free(keys, n);
}

static void test_contract(pl_store *s)
{
    test_round_trip(s);
    test_overwrite_delete(s);
    test_list(s);
    test_invalid_keys(s);
    test_concurrent(s);
    test_large(s);
}

/* ---- file:// only -------------------------------------------------------- */

typedef struct reader {
    pl_store *s;
    volatile int stop;
    int reads, torn;
} reader;

/* Each version is `len` bytes all equal to `c`; a torn read mixes them. */
static void *read_loop(void *arg)
{
    reader *r = arg;
    while (!r->stop) {
        void *d;
        size_t n;
        if (pl_store_get(r->s, "atomic/obj", &d, &n, NULL) != PL_OK)
            continue;
        const unsigned char *p = d;
        size_t want = p[0] == 'A' ? (1u << 20) : (2u << 20);
        int ok = n == want && (p[0] == 'A' || p[0] == 'B');
        for (size_t i = 0; ok && i < n; i += 4093)
            ok = p[i] == p[0];
        ok = ok && p[n - 1] == p[0];
        r->torn += !ok;
        r->reads++;
        free(d);
    }
    return NULL;
}

static int count_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += strncmp(e->d_name, ".pl-", 4) == 0;
    if (d)
        closedir(d);
    return n;
}

static void test_file_atomic(pl_store *s, const char *dir)
{
    unsigned char *a = malloc(1u << 20), *b = malloc(2u << 20);
    memset(a, 'A', 1u << 20);
    memset(b, 'B', 2u << 20);
    pl_store_put(s, "atomic/obj", a, 1u << 20, NULL);
    reader r = {s, 0, 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, read_loop, &r);
    int fails = 0;
    for (int i = 0; i < 40; i++)
        fails += pl_store_put(s, "atomic/obj", i % 2 ? a : b,
                              i % 2 ? (1u << 20) : (2u << 20), NULL) != PL_OK;
    r.stop = 1;
    pthread_join(t, NULL);
    PL_CHECK(fails == 0, "overwrites failed");
    PL_CHECK(r.torn == 0, "%d of %d reads saw a partial object", r.torn, r.reads);
    PL_CHECK(r.reads > 0, "reader never read");
    char sub[1100];
    snprintf(sub, sizeof sub, "%s/atomic", dir);
    PL_CHECK(count_temp_files(sub) == 0, "temporary files left behind");
    free(a);
    free(b);
}

static void test_file_specific(const char *dir)
{
    pl_store *s = NULL, *s2 = NULL;
    pl_err err = {0};
    char url[1100];
    snprintf(url, sizeof url, "file://%s", dir);
    PL_CHECK(pl_store_open(url, NULL, &s, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(pl_store_open(dir, NULL, &s2, &err) == PL_OK, "plain path: %s", err.msg);
    if (!s || !s2)
        return;
    PL_CHECK(strncmp(pl_store_url(s), "file:///", 8) == 0, "url %s", pl_store_url(s));
    PL_CHECK(strcmp(pl_store_url(s), pl_store_url(s2)) == 0, "same canonical url");
    PL_CHECK(pl_store_put(s, "shared/k", "v", 1, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(get_equals(s2, "shared/k", "v", 1), "both handles see one directory");
    PL_CHECK(pl_store_put(s, "obj", "x", 1, &err) == PL_OK, "%s", err.msg);
    memset(&err, 0, sizeof err);
    PL_CHECK(pl_store_put(s, "obj/child", "y", 1, &err) == PL_ERR_ARG,
             "object used as a prefix: %s", err.msg);
    PL_CHECK(strstr(err.msg, "obj") != NULL, "message: %s", err.msg);
    test_file_atomic(s, dir);
    pl_store_close(s);
    pl_store_close(s2);
    pl_store_close(NULL);
}

/* ---- URL validation ------------------------------------------------------ */

static void expect_open_error(const char *url, const pl_store_opts *o,
                              int want, const char *needle)
{
    pl_store *s = (pl_store *)1;
    pl_err err = {0};
    int st = pl_store_open(url, o, &s, &err);
    PL_CHECK(st == want && s == NULL, "open '%s': status %d want %d (%s)", url,
             st, want, err.msg);
    PL_CHECK(strstr(err.msg, needle) != NULL, "open '%s': message '%s' lacks "
             "'%s'", url, err.msg, needle);
    if (st == PL_OK)
        pl_store_close(s);
}

static void test_urls(void)
{
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    expect_open_error("", NULL, PL_ERR_ARG, "empty");
    expect_open_error("ftp://host/x", NULL, PL_ERR_ARG, "unknown scheme 'ftp'");
    expect_open_error("file://", NULL, PL_ERR_ARG, "missing directory");
    expect_open_error("s3://", NULL, PL_ERR_ARG, "missing bucket");
    expect_open_error("s3:///prefix", NULL, PL_ERR_ARG, "missing bucket");
    expect_open_error("s3://Bad_Bucket/x", NULL, PL_ERR_ARG, "invalid bucket name 'Bad_Bucket'");
    expect_open_error("s3://ab", NULL, PL_ERR_ARG, "invalid bucket");
    expect_open_error("s3://bucket/a/../b", NULL, PL_ERR_ARG, "bad prefix");
    expect_open_error("s3://bucket/a//b", NULL, PL_ERR_ARG, "bad prefix");
    const char *bad_ep[][2] = {
        {"localhost:9000", "expected http://"}, {"http://", "host"},
        {"http://h:99999", "port"}, {"http://h:", "port"},
        {"http://h/path", "only scheme://HOST[:PORT]"},
        {"http://user@h", "only scheme"}, {"http://h?x=1", "only scheme"},
        {"http://bad host", "host"}};
    for (size_t i = 0; i < sizeof bad_ep / sizeof bad_ep[0]; i++) {
        pl_store_opts o = {.s3_endpoint = bad_ep[i][0]};
        expect_open_error("s3://bucket", &o, PL_ERR_ARG, bad_ep[i][1]);
    }
    pl_store_opts r = {.region = "US East"};
    expect_open_error("s3://bucket", &r, PL_ERR_ARG, "region 'US East'");
    pl_store_opts ok = {.s3_endpoint = "http://127.0.0.1:4569/"};
    pl_store *s = NULL;
    pl_err err = {0};
    PL_CHECK(pl_store_open("s3://my-bucket/runs/x/", &ok, &s, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(s && strcmp(pl_store_url(s), "s3://my-bucket/runs/x") == 0, "url %s",
             s ? pl_store_url(s) : "");
    pl_store_close(s);
    /* No credentials anywhere: a clear error naming where we looked. */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    expect_open_error("s3://bucket", &ok, PL_ERR_ARG, "no AWS credentials");
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
}

/* ---- s3:// ----------------------------------------------------------------- */

static void write_credentials(const char *path)
{
    FILE *f = fopen(path, "w");
    fprintf(f, "[default]\naws_access_key_id = WRONGKEY\naws_secret_access_key = x\n\n"
               "# comment\n[test-profile]\naws_access_key_id=S3RVER\n"
               "aws_secret_access_key = S3RVER\n");
    fclose(f);
}

static void test_s3_errors(const char *ep, const char *prefix)
{
    pl_store_opts o = {.s3_endpoint = ep, .retries = -1};
    pl_store *s = NULL;
    pl_err err = {0};
    char url[256];
    /* A bucket that does not exist. */
    PL_CHECK(pl_store_open("s3://no-such-bucket-x", &o, &s, &err) == PL_OK, "%s", err.msg);
    memset(&err, 0, sizeof err);
    PL_CHECK(pl_store_put(s, "k", "v", 1, &err) == PL_ERR_ARG, "missing bucket: %s", err.msg);
    PL_CHECK(strstr(err.msg, "NoSuchBucket") && strstr(err.msg, "no-such-bucket-x") &&
             strstr(err.msg, "404"), "message: %s", err.msg);
    pl_store_close(s);
    /* A missing object names the key and S3's code. */
    snprintf(url, sizeof url, "s3://peerless-test/%s", prefix);
    PL_CHECK(pl_store_open(url, &o, &s, &err) == PL_OK, "%s", err.msg);
    void *d;
    size_t n;
    memset(&err, 0, sizeof err);
    PL_CHECK(pl_store_get(s, "missing/key", &d, &n, &err) == PL_ERR_NOTFOUND, "%s", err.msg);
    PL_CHECK(strstr(err.msg, "NoSuchKey") && strstr(err.msg, "missing/key"), "%s", err.msg);
    pl_store_close(s);
    /* Credentials from a credentials file: the profile chosen by
     * AWS_PROFILE works, [default] holds a key the server does not know. */
    char cred[512];
    snprintf(cred, sizeof cred, "%s/s3-credentials", pl_test_tmpdir());
    write_credentials(cred);
    char *id = strdup(getenv("AWS_ACCESS_KEY_ID")), *sec = strdup(getenv("AWS_SECRET_ACCESS_KEY"));
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
    setenv("AWS_PROFILE", "test-profile", 1);
    PL_CHECK(pl_store_open(url, &o, &s, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(pl_store_put(s, "cred/k", "v", 1, &err) == PL_OK, "profile creds: %s", err.msg);
    pl_store_close(s);
    unsetenv("AWS_PROFILE");
    PL_CHECK(pl_store_open(url, &o, &s, &err) == PL_OK, "%s", err.msg);
    memset(&err, 0, sizeof err);
    PL_CHECK(pl_store_put(s, "cred/k", "v", 1, &err) == PL_ERR_IO, "wrong key accepted");
    PL_CHECK(strstr(err.msg, "403") && strstr(err.msg, "InvalidAccessKeyId"), "%s", err.msg);
    pl_store_close(s);
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    setenv("AWS_ACCESS_KEY_ID", id, 1);
    setenv("AWS_SECRET_ACCESS_KEY", sec, 1);
    free(id);
    free(sec);
    /* Nothing listening: a bounded failure after the retries. */
    pl_store_opts dead = {.s3_endpoint = "http://127.0.0.1:1", .retries = 2,
                          .connect_timeout_ms = 2000};
    PL_CHECK(pl_store_open(url, &dead, &s, &err) == PL_OK, "%s", err.msg);
    memset(&err, 0, sizeof err);
    PL_CHECK(pl_store_put(s, "k", "v", 1, &err) == PL_ERR_IO, "dead endpoint");
    PL_CHECK(strstr(err.msg, "after 3 attempts") && strstr(err.msg, "127.0.0.1"),
             "%s", err.msg);
    pl_store_close(s);
}

static void test_s3_paging_timeout(const char *ep, const char *prefix)
{
    char url[256];
    snprintf(url, sizeof url, "s3://peerless-test/%s/paging", prefix);
    pl_store_opts o = {.s3_endpoint = ep, .list_page_size = 2};
    pl_store *s = NULL;
    pl_err err = {0};
    PL_CHECK(pl_store_open(url, &o, &s, &err) == PL_OK, "%s", err.msg);
    const char *keys[] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6"};
    for (int i = 6; i >= 0; i--)
        pl_store_put(s, keys[i], "x", 1, NULL);
    PL_CHECK(list_is(s, "", keys, 7), "7 keys over 4 pages of 2");
    pl_store_close(s);
    /* A 1 ms total timeout cannot move 16 MB: an error, never a short object. */
    o = (pl_store_opts){.s3_endpoint = ep, .timeout_ms = 1, .retries = -1};
    PL_CHECK(pl_store_open(url, &o, &s, &err) == PL_OK, "%s", err.msg);
    unsigned char *d = pattern(16u << 20, 5);
    memset(&err, 0, sizeof err);
    PL_CHECK(pl_store_put(s, "slow", d, 16u << 20, &err) == PL_ERR_IO, "timeout");
    PL_CHECK(strstr(err.msg, "imeout") || strstr(err.msg, "timed out"), "%s", err.msg);
    free(d);
    pl_store_close(s);
}

static int run_s3(void)
{
    const char *ep = getenv("PEERLESS_TEST_S3_ENDPOINT");
    PL_CHECK(ep && *ep, "PEERLESS_TEST_S3_ENDPOINT is not set (run tests/cli_s3.sh)");
    if (!ep || !*ep)
        PL_TEST_MAIN();
    char prefix[64], url[128];
    snprintf(prefix, sizeof prefix, "run-%d", (int)getpid());
    snprintf(url, sizeof url, "s3://peerless-test/%s/", prefix);
    pl_store_opts o = {.s3_endpoint = ep};
    pl_store *s = NULL;
    pl_err err = {0};
    PL_CHECK(pl_store_open(url, &o, &s, &err) == PL_OK, "%s", err.msg);
    if (s) {
        test_contract(s);
        pl_store_close(s);
    }
    test_s3_errors(ep, prefix);
    test_s3_paging_timeout(ep, prefix);
    PL_TEST_MAIN();
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "s3") == 0)
        return run_s3();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/store-%d", pl_test_tmpdir(), (int)getpid());
    pl_store *s = NULL;
    pl_err err = {0};
    PL_CHECK(pl_store_open(dir, NULL, &s, &err) == PL_OK, "%s", err.msg);
    if (s) {
        test_contract(s);
        pl_store_close(s);
    }
    test_file_specific(dir);
    test_urls();
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    PL_CHECK(system(cmd) == 0, "cleanup");
    PL_TEST_MAIN();
}
