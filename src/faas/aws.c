/* aws.c — SigV4-signed AWS Lambda Invoke and Step Functions clients
 * (include/peerless/aws.h). Signing reuses src/store/sigv4.c. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "peerless/aws.h"
#include "store/sigv4.h"

#define AWS_CONNECT_MS 10000L
#define AWS_TIMEOUT_MS 900000L

/* Where and as whom a request goes. Strings malloc'd. */
typedef struct aws_target {
    char region[64];
    char endpoint[512]; /* scheme://host[:port] */
    char host[512];     /* Host header */
    char *ak, *sk, *tok;
    long timeout_ms;
} aws_target;

typedef struct aws_post {
    const char *service;      /* "lambda", "states" */
    const char *path;         /* already URI-encoded absolute path */
    const char *amz_target;   /* X-Amz-Target or NULL */
    const char *content_type;
    const void *body;
    size_t len;
} aws_post;

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static void target_free(aws_target *t)
{
    free(t->ak);
    free(t->sk);
    free(t->tok);
}

static int parse_endpoint(aws_target *t, const char *ep, pl_err *err)
{
    const char *h = !strncmp(ep, "https://", 8) ? ep + 8 : !strncmp(ep, "http://", 7) ? ep + 7 : NULL;
    size_t n = h ? strcspn(h, "/?#@") : 0;
    if (!h || !n || (h[n] && strcmp(h + n, "/") != 0) || strlen(ep) >= sizeof t->endpoint)
        return pl_err_set(err, PL_ERR_ARG, "AWS endpoint '%s': expected http[s]://HOST[:PORT] without a path", ep);
    snprintf(t->endpoint, sizeof t->endpoint, "%.*s", (int)(h - ep + (ptrdiff_t)n), ep);
    snprintf(t->host, sizeof t->host, "%.*s", (int)n, h);
    return PL_OK;
}

static int target_setup(const pl_aws_opts *o, const char *service, aws_target *t, pl_err *err)
{
    memset(t, 0, sizeof *t);
    const char *region = o && o->region ? o->region : env("AWS_REGION");
    region = region ? region : env("AWS_DEFAULT_REGION") ? env("AWS_DEFAULT_REGION") : "us-east-1";
    if (!*region || strlen(region) >= sizeof t->region ||
        strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(region))
        return pl_err_set(err, PL_ERR_ARG, "AWS region '%s': expected a name such as us-east-1", region);
    snprintf(t->region, sizeof t->region, "%s", region);
    t->timeout_ms = o && o->timeout_ms > 0 ? o->timeout_ms : AWS_TIMEOUT_MS;
    char dflt[160];
    snprintf(dflt, sizeof dflt, "https://%s.%s.amazonaws.com", service, t->region);
    int st = parse_endpoint(t, o && o->endpoint ? o->endpoint : dflt, err);
    if (!st)
        st = pl_aws_credentials(&t->ak, &t->sk, &t->tok, err);
    return st;
}

static size_t on_body(char *d, size_t s, size_t n, void *arg)
{
    pl_aws_response *r = arg;
    char *b = realloc(r->body, r->len + s * n + 1);
    if (!b)
        return 0;
    memcpy(b + r->len, d, s * n);
    r->body = b;
    r->len += s * n;
    b[r->len] = '\0';
    return s * n;
}

static void header_value(const char *line, size_t n, const char *name, char **dst)
{
    size_t k = strlen(name);
    if (*dst || n <= k + 1 || strncasecmp(line, name, k) || line[k] != ':')
        return;
    size_t i = k + 1, j = n;
    while (i < j && line[i] == ' ')
        i++;
    while (j > i && (line[j - 1] == '\r' || line[j - 1] == '\n' || line[j - 1] == ' '))
        j--;
    *dst = strndup(line + i, j - i);
}

static size_t on_header(char *d, size_t s, size_t n, void *arg)
{
    pl_aws_response *r = arg;
    header_value(d, s * n, "X-Amz-Function-Error", &r->function_error);
    header_value(d, s * n, "x-amzn-ErrorType", &r->error_type);
    return s * n;
}

/* The signed header list (name: value lines for curl) into hd. */
static int sign_headers(const aws_target *t, const aws_post *p, struct curl_slist **hd, pl_err *err)
{
    char date[17], hash[65], line[2048];
    pl_sigv4_now(date);
    pl_sigv4_sha256_hex(p->body, p->len, hash);
    pl_sigv4_pair h[6] = {{"host", t->host}, {"x-amz-date", date}, {"content-type", p->content_type},
                          {"x-amz-content-sha256", hash}};
    size_t nh = 4;
    if (p->amz_target)
        h[nh++] = (pl_sigv4_pair){"x-amz-target", p->amz_target};
    if (t->tok)
        h[nh++] = (pl_sigv4_pair){"x-amz-security-token", t->tok};
    pl_sigv4_request req = {"POST", p->path, NULL, 0, h, nh, hash};
    pl_sigv4_key key = {t->ak, t->sk, t->region, p->service};
    pl_sigv4_result sr;
    memset(&sr, 0, sizeof sr);
    int st = pl_sigv4_sign(&req, &key, date, &sr, err);
    for (size_t i = 1; !st && i <= nh; i++) { /* host is set by curl from the URL */
        if (i < nh)
            snprintf(line, sizeof line, "%s: %s", h[i].name, h[i].value);
        else
            snprintf(line, sizeof line, "Authorization: %s", sr.authorization);
        struct curl_slist *next = curl_slist_append(*hd, line);
        if (!next)
            st = pl_err_set(err, PL_ERR_NOMEM, "AWS request headers");
        else
            *hd = next;
    }
    pl_sigv4_result_free(&sr);
    return st;
}

static int aws_perform(const aws_target *t, const aws_post *p, pl_aws_response *res, pl_err *err)
{
    memset(res, 0, sizeof *res);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return pl_err_set(err, PL_ERR_IO, "curl_global_init failed");
    char url[2048];
    snprintf(url, sizeof url, "%s%s", t->endpoint, p->path);
    struct curl_slist *hd = curl_slist_append(NULL, "Expect:");
    CURL *h = curl_easy_init();
    int st = h && hd ? sign_headers(t, p, &hd, err) : pl_err_set(err, PL_ERR_NOMEM, "AWS request");
    if (!st) {
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, p->body ? (const char *)p->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->len);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, res);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, res);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, AWS_CONNECT_MS);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, t->timeout_ms);
        CURLcode rc = curl_easy_perform(h);
        if (rc != CURLE_OK)
            st = pl_err_set(err, PL_ERR_IO, "%s POST %s: %s", p->service, url, curl_easy_strerror(rc));
        else
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->http_status);
    }
    if (!st && !res->body && !(res->body = calloc(1, 1)))
        st = pl_err_set(err, PL_ERR_NOMEM, "AWS response");
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    if (st)
        pl_aws_response_free(res);
    return st;
}

void pl_aws_response_free(pl_aws_response *r)
{
    if (!r)
        return;
    free(r->body);
    free(r->function_error);
    free(r->error_type);
    memset(r, 0, sizeof *r);
}

int pl_aws_lambda_invoke(const pl_aws_opts *opts, const char *function, const void *payload, size_t len,
                         pl_aws_response *res, pl_err *err)
{
    memset(res, 0, sizeof *res);
    if (!function || !*function || strlen(function) > 256)
        return pl_err_set(err, PL_ERR_ARG, "Lambda invoke: function name or ARN must be 1..256 characters");
    aws_target t;
    int st = target_setup(opts, "lambda", &t, err);
    char *enc = st ? NULL : pl_sigv4_uri_encode(function, 0), path[1024];
    if (!st && !enc)
        st = pl_err_set(err, PL_ERR_NOMEM, "Lambda invoke");
    if (!st) {
        snprintf(path, sizeof path, "/2015-03-31/functions/%s/invocations", enc);
        aws_post p = {"lambda", path, NULL, "application/json", payload, len};
        st = aws_perform(&t, &p, res, err);
    }
    free(enc);
    target_free(&t);
    return st;
}

/* POST a Step Functions JSON 1.0 action; PL_OK only for HTTP 200 with a JSON
 * object body (*out, caller deletes). */
static int sfn_call(const pl_aws_opts *opts, const char *action, cJSON *req, cJSON **out, pl_err *err)
{
    *out = NULL;
    char target[96], *body = req ? cJSON_PrintUnformatted(req) : NULL;
    snprintf(target, sizeof target, "AWSStepFunctions.%s", action);
    aws_target t;
    memset(&t, 0, sizeof t);
    pl_aws_response r;
    memset(&r, 0, sizeof r);
    int st = body ? target_setup(opts, "states", &t, err) : pl_err_set(err, PL_ERR_NOMEM, "Step Functions");
    if (!st) {
        aws_post p = {"states", "/", target, "application/x-amz-json-1.0", body, strlen(body)};
        st = aws_perform(&t, &p, &r, err);
        target_free(&t);
    }
    if (!st && r.http_status != 200) {
        cJSON *e = cJSON_Parse(r.body);
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(e, "__type"));
        const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(e, "message"));
        st = pl_err_set(err, r.http_status == 400 ? PL_ERR_ARG : PL_ERR_IO, "Step Functions %s at %s: HTTP %ld %s: %s",
                        action, t.endpoint, r.http_status, type ? type : "", msg ? msg : r.body);
        cJSON_Delete(e);
    }
    if (!st && !cJSON_IsObject(*out = cJSON_Parse(r.body)))
        st = pl_err_set(err, PL_ERR_FORMAT, "Step Functions %s: the answer is not a JSON object", action);
    if (st) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    pl_aws_response_free(&r);
    free(body);
    return st;
}

static char *dup_field(const cJSON *o, const char *name)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, name));
    return s ? strdup(s) : NULL;
}

int pl_aws_sfn_start_execution(const pl_aws_opts *opts, const char *state_machine_arn, const char *name,
                               const char *input_json, char **execution_arn, pl_err *err)
{
    *execution_arn = NULL;
    if (!state_machine_arn || !*state_machine_arn)
        return pl_err_set(err, PL_ERR_ARG, "StartExecution: the state machine ARN is empty");
    cJSON *req = cJSON_CreateObject(), *ans = NULL;
    if (req) {
        cJSON_AddStringToObject(req, "stateMachineArn", state_machine_arn);
        cJSON_AddStringToObject(req, "input", input_json ? input_json : "{}");
        if (name)
            cJSON_AddStringToObject(req, "name", name);
    }
    int st = sfn_call(opts, "StartExecution", req, &ans, err);
    if (!st && !(*execution_arn = dup_field(ans, "executionArn")))
        st = pl_err_set(err, PL_ERR_FORMAT, "StartExecution: no executionArn in the answer");
    cJSON_Delete(req);
    cJSON_Delete(ans);
    return st;
}

int pl_aws_sfn_describe_execution(const pl_aws_opts *opts, const char *execution_arn, pl_aws_execution *out,
                                  pl_err *err)
{
    memset(out, 0, sizeof *out);
    cJSON *req = cJSON_CreateObject(), *ans = NULL;
    if (req)
        cJSON_AddStringToObject(req, "executionArn", execution_arn ? execution_arn : "");
    int st = sfn_call(opts, "DescribeExecution", req, &ans, err);
    if (!st) {
        out->status = dup_field(ans, "status");
        out->output = dup_field(ans, "output");
        out->error = dup_field(ans, "error");
        out->cause = dup_field(ans, "cause");
        if (!out->status)
            st = pl_err_set(err, PL_ERR_FORMAT, "DescribeExecution: no status in the answer");
    }
    cJSON_Delete(req);
    cJSON_Delete(ans);
    if (st)
        pl_aws_execution_free(out);
    return st;
}

void pl_aws_execution_free(pl_aws_execution *e)
{
    if (!e)
        return;
    free(e->status);
    free(e->output);
    free(e->error);
    free(e->cause);
    memset(e, 0, sizeof *e);
}
