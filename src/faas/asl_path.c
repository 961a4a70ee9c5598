/* asl_path.c — the JSONPath subset of the Amazon States Language and
 * payload templates (Parameters, ItemSelector, ResultSelector).
 *
 * Grammar: ("$" | "$$") step*, step = "." name | "['" name "']" |
 * "[" digits "]" | "[*]". A name is any run of characters other than
 * '.', '[', ']', quotes and spaces. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "faas/asl_internal.h"

void asl_path_free(asl_path *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->nsteps; i++)
        free(p->steps[i].field);
    free(p->steps);
    memset(p, 0, sizeof *p);
}

static int add_step(asl_path *p, asl_step_kind kind, const char *name, size_t n, long index)
{
    asl_step *s = realloc(p->steps, (size_t)(p->nsteps + 1) * sizeof *s);
    if (!s)
        return -1;
    p->steps = s;
    s = &p->steps[p->nsteps];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->index = index;
    if (name) {
        s->field = malloc(n + 1);
        if (!s->field)
            return -1;
        memcpy(s->field, name, n);
        s->field[n] = '\0';
    }
    p->nsteps++;
    if (kind == ASL_STEP_ALL)
        p->wildcard = 1;
    return 0;
}

static int name_char(char c)
{
    return c && c != '.' && c != '[' && c != ']' && c != '\'' && c != '"' && !isspace((unsigned char)c);
}

/* One bracket step starting at text[*i] == '['. Returns 0, -1 (syntax),
 * -2 (out of memory). */
static int bracket_step(const char *text, size_t *i, asl_path *p)
{
    const char *s = text + *i + 1;
    if (s[0] == '*' && s[1] == ']') {
        *i += 3;
        return add_step(p, ASL_STEP_ALL, NULL, 0, 0) ? -2 : 0;
    }
    if (s[0] == '\'' || s[0] == '"') {
        const char *end = strchr(s + 1, s[0]);
        if (!end || end == s + 1 || end[1] != ']')
            return -1;
        *i += (size_t)(end - s) + 3;
        return add_step(p, ASL_STEP_FIELD, s + 1, (size_t)(end - s - 1), 0) ? -2 : 0;
    }
    if (!isdigit((unsigned char)s[0]))
        return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end != ']' || v > 1000000000L)
        return -1;
    *i += (size_t)(end - s) + 2;
    return add_step(p, ASL_STEP_INDEX, NULL, 0, v) ? -2 : 0;
}

int asl_path_compile(const char *text, asl_path *p, pl_err *err)
{
    memset(p, 0, sizeof *p);
    if (!text || text[0] != '$')
        return pl_err_set(err, PL_ERR_FORMAT, "path '%s' must start with '$'", text ? text : "");
    size_t i = 1;
    if (text[1] == '$') {
        p->context = 1;
        i = 2;
    }
    while (text[i]) {
        int rc = -1;
        if (text[i] == '.') {
            size_t n = 0;
            while (name_char(text[i + 1 + n]))
                n++;
            if (n > 0)
                rc = add_step(p, ASL_STEP_FIELD, text + i + 1, n, 0) ? -2 : 0;
            i += 1 + n;
        } else if (text[i] == '[') {
            rc = bracket_step(text, &i, p);
        }
        if (rc == -2) {
            asl_path_free(p);
            return pl_err_set(err, PL_ERR_NOMEM, "path '%s': out of memory", text);
        }
        if (rc) {
            asl_path_free(p);
            return pl_err_set(err, PL_ERR_FORMAT, "path '%s': syntax error at character %zu", text, i + 1);
        }
    }
    return PL_OK;
}

static const cJSON *step_child(const cJSON *node, const asl_step *s)
{
    if (s->kind == ASL_STEP_FIELD)
        return cJSON_IsObject(node) ? cJSON_GetObjectItemCaseSensitive(node, s->field) : NULL;
    if (!cJSON_IsArray(node) || s->index >= cJSON_GetArraySize(node))
        return NULL;
    return cJSON_GetArrayItem(node, (int)s->index);
}

static cJSON *get_from(const asl_path *p, int i, const cJSON *node)
{
    for (; i < p->nsteps && p->steps[i].kind != ASL_STEP_ALL; i++)
        if (!(node = step_child(node, &p->steps[i])))
            return NULL;
    if (i == p->nsteps)
        return cJSON_Duplicate(node, 1);
    if (!cJSON_IsArray(node) && !cJSON_IsObject(node))
        return NULL;
    cJSON *out = cJSON_CreateArray();
    const cJSON *c;
    cJSON_ArrayForEach(c, node) {
        if (!out)
            return NULL;
        /* Elements without the rest of the path are skipped, as in JSONPath. */
        cJSON *v = get_from(p, i + 1, c);
        if (v)
            cJSON_AddItemToArray(out, v);
    }
    return out;
}

cJSON *asl_path_get(const asl_path *p, const cJSON *root, const cJSON *ctx)
{
    const cJSON *start = p->context ? ctx : root;
    return start ? get_from(p, 0, start) : NULL;
}

/* Child of cur for step s, created as an empty object when missing. */
static cJSON *walk_create(cJSON *cur, const asl_step *s)
{
    if (s->kind == ASL_STEP_FIELD) {
        if (!cJSON_IsObject(cur))
            return NULL;
        cJSON *c = cJSON_GetObjectItemCaseSensitive(cur, s->field);
        if (!c)
            c = cJSON_AddObjectToObject(cur, s->field);
        return c;
    }
    return (cJSON *)step_child(cur, s);
}

int asl_path_set(const asl_path *p, cJSON **root, cJSON *value)
{
    if (p->nsteps == 0) {
        cJSON_Delete(*root);
        *root = value;
        return 0;
    }
    cJSON *cur = *root;
    for (int i = 0; cur && i < p->nsteps - 1; i++)
        cur = walk_create(cur, &p->steps[i]);
    const asl_step *last = &p->steps[p->nsteps - 1];
    if (cur && last->kind == ASL_STEP_FIELD && cJSON_IsObject(cur)) {
        if (cJSON_GetObjectItemCaseSensitive(cur, last->field))
            cJSON_ReplaceItemInObjectCaseSensitive(cur, last->field, value);
        else
            cJSON_AddItemToObject(cur, last->field, value);
        return 0;
    }
    if (cur && last->kind == ASL_STEP_INDEX && cJSON_IsArray(cur) && last->index < cJSON_GetArraySize(cur)) {
        cJSON_ReplaceItemInArray(cur, (int)last->index, value);
        return 0;
    }
    cJSON_Delete(value);
    return -1;
}

static int is_dollar_key(const char *k)
{
    size_t n = strlen(k);
    return n >= 2 && k[n - 2] == '.' && k[n - 1] == '$';
}

static int template_check_node(const cJSON *t, const char *where, pl_err *err)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, t) {
        if (c->string && is_dollar_key(c->string)) {
            if (!cJSON_IsString(c))
                return pl_err_set(err, PL_ERR_FORMAT, "%s: field '%s' must be a path string", where, c->string);
            if (!strncmp(c->valuestring, "States.", 7))
                return pl_err_set(err, PL_ERR_UNSUPPORTED, "%s: field '%s': intrinsic functions are not supported",
                                  where, c->string);
            asl_path p;
            int st = asl_path_compile(c->valuestring, &p, err);
            asl_path_free(&p);
            if (st)
                return pl_err_wrap(err, st, "%s: field '%s'", where, c->string);
        } else if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && template_check_node(c, where, err)) {
            return err ? err->status : PL_ERR_FORMAT;
        }
    }
    return PL_OK;
}

int asl_template_check(const cJSON *tmpl, const char *where, pl_err *err)
{
    if (!cJSON_IsObject(tmpl))
        return pl_err_set(err, PL_ERR_FORMAT, "%s must be a JSON object", where);
    return template_check_node(tmpl, where, err);
}

static cJSON *apply_node(const cJSON *t, const cJSON *root, const cJSON *ctx, const char **bad);

static cJSON *apply_member(const cJSON *c, const cJSON *root, const cJSON *ctx, const char **bad)
{
    if (c->string && is_dollar_key(c->string) && cJSON_IsString(c)) {
        asl_path p;
        if (asl_path_compile(c->valuestring, &p, NULL)) {
            *bad = c->valuestring;
            return NULL;
        }
        cJSON *v = asl_path_get(&p, root, ctx);
        asl_path_free(&p);
        if (!v)
            *bad = c->valuestring;
        return v;
    }
    if (cJSON_IsObject(c) || cJSON_IsArray(c))
        return apply_node(c, root, ctx, bad);
    return cJSON_Duplicate(c, 1);
}

static cJSON *apply_node(const cJSON *t, const cJSON *root, const cJSON *ctx, const char **bad)
{
    cJSON *out = cJSON_IsArray(t) ? cJSON_CreateArray() : cJSON_CreateObject();
    const cJSON *c;
    cJSON_ArrayForEach(c, t) {
        if (!out)
            return NULL;
        cJSON *v = apply_member(c, root, ctx, bad);
        if (!v) {
            cJSON_Delete(out);
            return NULL;
        }
        if (cJSON_IsArray(t)) {
            cJSON_AddItemToArray(out, v);
            continue;
        }
        size_t n = strlen(c->string) - (is_dollar_key(c->string) ? 2 : 0);
        char *key = malloc(n + 1);
        if (!key) {
            cJSON_Delete(v);
            cJSON_Delete(out);
            return NULL;
        }
        memcpy(key, c->string, n);
        key[n] = '\0';
        cJSON_AddItemToObject(out, key, v);
        free(key);
    }
    return out;
}

cJSON *asl_template_apply(const cJSON *tmpl, const cJSON *root, const cJSON *ctx, const char **bad)
{
    *bad = NULL;
    return apply_node(tmpl, root, ctx, bad);
}
