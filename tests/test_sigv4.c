/* test_sigv4.c — SigV4 signing against the examples AWS publishes in the S3
 * API reference ("Signature Calculations for the Authorization Header:
 * Transferring Payload in a Single Chunk"): the canonical request, the
 * string to sign, the signature and the Authorization header, byte for byte.
 * Credentials there: AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY,
 * 20130524T000000Z, us-east-1, bucket examplebucket (virtual-hosted).
 */
#include <stdlib.h>
#include <string.h>

#include "store/sigv4.h"
#include "test.h"

#define EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define HOST "examplebucket.s3.amazonaws.com"
#define DATE "20130524T000000Z"
#define SCOPE "20130524/us-east-1/s3/aws4_request"

static const pl_sigv4_key aws_key = {
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "us-east-1", "s3"};

typedef struct vector {
    const char *name;
    pl_sigv4_request req;
    const char *canonical;
    const char *string_to_sign;
    const char *signature;
    const char *signed_headers;
} vector;

static void check_vector(const vector *v)
{
    pl_sigv4_result r;
    pl_err err = {0};
    int st = pl_sigv4_sign(&v->req, &aws_key, DATE, &r, &err);
    PL_CHECK(st == PL_OK, "%s: sign failed: %s", v->name, err.msg);
    if (st)
        return;
    PL_CHECK(strcmp(r.canonical_request, v->canonical) == 0,
             "%s: canonical request\n got:\n%s\n want:\n%s", v->name,
             r.canonical_request, v->canonical);
    PL_CHECK(strcmp(r.string_to_sign, v->string_to_sign) == 0,
             "%s: string to sign\n got:\n%s\n want:\n%s", v->name,
             r.string_to_sign, v->string_to_sign);
    PL_CHECK(strcmp(r.signature, v->signature) == 0,
             "%s: signature got %s want %s", v->name, r.signature, v->signature);
    char auth[512];
    snprintf(auth, sizeof auth,
             "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/" SCOPE
             ",SignedHeaders=%s,Signature=%s", v->signed_headers, v->signature);
    PL_CHECK(strcmp(r.authorization, auth) == 0, "%s: authorization got %s",
             v->name, r.authorization);
    pl_sigv4_result_free(&r);
}

static void test_get_object(void)
{
    /* Header names in mixed case and padded values, as a client might
     * write them: canonicalisation must lower-case and trim. */
    static const pl_sigv4_pair h[] = {
        {"Host", HOST}, {"Range", "bytes=0-9 "},
        {"x-amz-content-sha256", EMPTY}, {"X-Amz-Date", " " DATE}};
    vector v = {
        "GET object", {"GET", "/test.txt", NULL, 0, h, 4, EMPTY},
        "GET\n/test.txt\n\nhost:" HOST "\nrange:bytes=0-9\n"
        "x-amz-content-sha256:" EMPTY "\nx-amz-date:" DATE "\n\n"
        "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY,
        "AWS4-HMAC-SHA256\n" DATE "\n" SCOPE "\n"
        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        "host;range;x-amz-content-sha256;x-amz-date"};
    check_vector(&v);
}

static void test_put_object(void)
{
    const char *body = "Welcome to Amazon S3.";
    char hash[65];
    pl_sigv4_sha256_hex(body, strlen(body), hash);
    PL_CHECK(strcmp(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42"
                          "034a8b803f8b072") == 0, "payload hash %s", hash);
    static const pl_sigv4_pair h[] = {
        {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
        {"Date", "Fri, 24 May 2013 00:00:00 GMT"}, {"Host", HOST},
        {"x-amz-date", DATE}, {"x-amz-content-sha256", NULL}};
    pl_sigv4_pair hh[5];
    memcpy(hh, h, sizeof h);
    hh[4].value = hash;
    vector v = {
        "PUT object", {"PUT", "/test$file.text", NULL, 0, hh, 5, hash},
        "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n"
        "host:" HOST "\nx-amz-content-sha256:"
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
        "x-amz-date:" DATE "\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
        "AWS4-HMAC-SHA256\n" DATE "\n" SCOPE "\n"
        "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class"};
    check_vector(&v);
}

static const pl_sigv4_pair bucket_headers[] = {
    {"host", HOST}, {"x-amz-date", DATE}, {"x-amz-content-sha256", EMPTY}};

static void test_get_lifecycle(void)
{
    static const pl_sigv4_pair q[] = {{"lifecycle", ""}};
    vector v = {
        "GET bucket lifecycle",
        {"GET", "/", q, 1, bucket_headers, 3, EMPTY},
        "GET\n/\nlifecycle=\nhost:" HOST "\nx-amz-content-sha256:" EMPTY
        "\nx-amz-date:" DATE "\n\nhost;x-amz-content-sha256;x-amz-date\n" EMPTY,
        "AWS4-HMAC-SHA256\n" DATE "\n" SCOPE "\n"
        "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        "host;x-amz-content-sha256;x-amz-date"};
    check_vector(&v);
}

static void test_list_objects(void)
{
    /* Given out of order: the canonical query must sort by name. */
    static const pl_sigv4_pair q[] = {{"prefix", "J"}, {"max-keys", "2"}};
    vector v = {
        "GET bucket (list objects)",
        {"GET", "/", q, 2, bucket_headers, 3, EMPTY},
        "GET\n/\nmax-keys=2&prefix=J\nhost:" HOST "\nx-amz-content-sha256:"
        EMPTY "\nx-amz-date:" DATE "\n\nhost;x-amz-content-sha256;x-amz-date\n"
        EMPTY,
        "AWS4-HMAC-SHA256\n" DATE "\n" SCOPE "\n"
        "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        "host;x-amz-content-sha256;x-amz-date"};
    check_vector(&v);
}

/* RFC 3986 encoding rules that S3 applies (AWS docs' UriEncode). */
static void test_encoding(void)
{
    struct { const char *in; int keep; const char *want; } c[] = {
        {"a/b c+d=e&f", 1, "a/b%20c%2Bd%3De%26f"},
        {"a/b", 0, "a%2Fb"},
        {"AZaz09-_.~", 0, "AZaz09-_.~"},
        {"$%!*'()", 1, "%24%25%21%2A%27%28%29"},
        {"\xc3\xa9", 0, "%C3%A9"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char *e = pl_sigv4_uri_encode(c[i].in, c[i].keep);
        PL_CHECK(e && strcmp(e, c[i].want) == 0, "encode '%s': got '%s' want "
                 "'%s'", c[i].in, e ? e : "(null)", c[i].want);
        free(e);
    }
    pl_sigv4_pair q[] = {{"prefix", "runs/a b"}, {"list-type", "2"},
                         {"continuation-token", "1/x+y="}, {"uploads", ""}};
    char *s = pl_sigv4_query(q, 4);
    const char *want = "continuation-token=1%2Fx%2By%3D&list-type=2&"
                       "prefix=runs%2Fa%20b&uploads=";
    PL_CHECK(s && strcmp(s, want) == 0, "query: got '%s' want '%s'",
             s ? s : "(null)", want);
    free(s);
}

static void test_bad_date(void)
{
    static const pl_sigv4_pair q[] = {{"lifecycle", ""}};
    pl_sigv4_request req = {"GET", "/", q, 1, bucket_headers, 3, EMPTY};
    pl_sigv4_result r;
    pl_err err = {0};
    PL_CHECK(pl_sigv4_sign(&req, &aws_key, "2013-05-24", &r, &err) == PL_ERR_ARG,
             "a malformed date must be rejected");
    PL_CHECK(strstr(err.msg, "2013-05-24") != NULL, "message: %s", err.msg);
}

int main(void)
{
    test_get_object();
    test_put_object();
    test_get_lifecycle();
    test_list_objects();
    test_encoding();
    test_bad_date();
    PL_TEST_MAIN();
}
