/* asl_choice.c — Choice rules: parse (with validation) and evaluate.
 *
 * Comparators are one table: operand kind, comparison, and whether the
 * operand is a path ("...Path" forms). Timestamps compare as strings, which
 * is exact for RFC 3339 UTC ("Z") timestamps of the same precision. */
#include <stdlib.h>
#include <string.h>

#include "faas/asl_internal.h"

typedef enum { K_STR, K_NUM, K_BOOL, K_TS, K_TYPE } op_kind;
typedef enum { C_EQ, C_LT, C_GT, C_LE, C_GE, C_MATCH, C_PRESENT, C_NULL, C_ISNUM, C_ISSTR, C_ISBOOL, C_ISTS } op_cmp;

static const struct {
    const char *name;
    op_kind kind;
    op_cmp cmp;
    int path;
} ops[] = {
    {"StringEquals", K_STR, C_EQ, 0}, {"StringEqualsPath", K_STR, C_EQ, 1},
    {"StringLessThan", K_STR, C_LT, 0}, {"StringLessThanPath", K_STR, C_LT, 1},
    {"StringGreaterThan", K_STR, C_GT, 0}, {"StringGreaterThanPath", K_STR, C_GT, 1},
    {"StringLessThanEquals", K_STR, C_LE, 0}, {"StringLessThanEqualsPath", K_STR, C_LE, 1},
    {"StringGreaterThanEquals", K_STR, C_GE, 0}, {"StringGreaterThanEqualsPath", K_STR, C_GE, 1},
    {"StringMatches", K_STR, C_MATCH, 0},
    {"NumericEquals", K_NUM, C_EQ, 0}, {"NumericEqualsPath", K_NUM, C_EQ, 1},
    {"NumericLessThan", K_NUM, C_LT, 0}, {"NumericLessThanPath", K_NUM, C_LT, 1},
    {"NumericGreaterThan", K_NUM, C_GT, 0}, {"NumericGreaterThanPath", K_NUM, C_GT, 1},
    {"NumericLessThanEquals", K_NUM, C_LE, 0}, {"NumericLessThanEqualsPath", K_NUM, C_LE, 1},
    {"NumericGreaterThanEquals", K_NUM, C_GE, 0}, {"NumericGreaterThanEqualsPath", K_NUM, C_GE, 1},
    {"BooleanEquals", K_BOOL, C_EQ, 0}, {"BooleanEqualsPath", K_BOOL, C_EQ, 1},
    {"TimestampEquals", K_TS, C_EQ, 0}, {"TimestampEqualsPath", K_TS, C_EQ, 1},
    {"TimestampLessThan", K_TS, C_LT, 0}, {"TimestampLessThanPath", K_TS, C_LT, 1},
    {"TimestampGreaterThan", K_TS, C_GT, 0}, {"TimestampGreaterThanPath", K_TS, C_GT, 1},
    {"TimestampLessThanEquals", K_TS, C_LE, 0}, {"TimestampLessThanEqualsPath", K_TS, C_LE, 1},
    {"TimestampGreaterThanEquals", K_TS, C_GE, 0}, {"TimestampGreaterThanEqualsPath", K_TS, C_GE, 1},
    {"IsPresent", K_TYPE, C_PRESENT, 0}, {"IsNull", K_TYPE, C_NULL, 0}, {"IsNumeric", K_TYPE, C_ISNUM, 0},
    {"IsString", K_TYPE, C_ISSTR, 0}, {"IsBoolean", K_TYPE, C_ISBOOL, 0}, {"IsTimestamp", K_TYPE, C_ISTS, 0},
};
#define NOPS ((int)(sizeof ops / sizeof ops[0]))

static int op_find(const char *name)
{
    for (int i = 0; i < NOPS; i++)
        if (!strcmp(ops[i].name, name))
            return i;
    return -1;
}

void asl_rule_free(asl_rule *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->nsubs; i++)
        asl_rule_free(&r->subs[i]);
    free(r->subs);
    asl_path_free(&r->variable);
    asl_path_free(&r->value_path);
    memset(r, 0, sizeof *r);
}

static int operand_ok(int op, const cJSON *v)
{
    if (ops[op].path)
        return cJSON_IsString(v);
    switch (ops[op].kind) {
    case K_STR: case K_TS: return cJSON_IsString(v);
    case K_NUM: return cJSON_IsNumber(v);
    default: return cJSON_IsBool(v);
    }
}

static int parse_subs(const cJSON *j, asl_rule *r, int op, const char *where, pl_err *err)
{
    int n = op == ASL_OP_NOT ? 1 : cJSON_GetArraySize(j);
    if (op != ASL_OP_NOT && (!cJSON_IsArray(j) || n == 0))
        return pl_err_set(err, PL_ERR_FORMAT, "%s: %s must be a non-empty array of rules", where, j->string);
    if (op == ASL_OP_NOT && !cJSON_IsObject(j))
        return pl_err_set(err, PL_ERR_FORMAT, "%s: Not must be a rule object", where);
    r->op = op;
    r->subs = calloc((size_t)n, sizeof *r->subs);
    if (!r->subs)
        return pl_err_set(err, PL_ERR_NOMEM, "%s: out of memory", where);
    r->nsubs = n;
    for (int i = 0; i < n; i++) {
        const cJSON *s = op == ASL_OP_NOT ? j : cJSON_GetArrayItem(j, i);
        if (!cJSON_IsObject(s))
            return pl_err_set(err, PL_ERR_FORMAT, "%s: %s[%d] must be a rule object", where, j->string, i);
        int st = asl_rule_parse(s, &r->subs[i], 0, where, err);
        if (st)
            return st;
    }
    return PL_OK;
}

static int parse_comparison(const cJSON *j, asl_rule *r, const char *where, pl_err *err)
{
    const cJSON *var = cJSON_GetObjectItemCaseSensitive(j, "Variable");
    r->op = -100;
    const cJSON *c;
    cJSON_ArrayForEach(c, j) {
        int op = op_find(c->string);
        if (op < 0)
            continue;
        if (r->op != -100)
            return pl_err_set(err, PL_ERR_FORMAT, "%s: rule has two comparisons ('%s' and '%s')", where,
                              ops[r->op].name, c->string);
        r->op = op;
        r->value = c;
    }
    if (r->op == -100)
        return pl_err_set(err, PL_ERR_FORMAT, "%s: rule has no comparison operator (e.g. StringEquals) and no And/Or/Not",
                          where);
    if (!cJSON_IsString(var))
        return pl_err_set(err, PL_ERR_FORMAT, "%s: %s rule needs a Variable path string", where, ops[r->op].name);
    int st = asl_path_compile(var->valuestring, &r->variable, err);
    if (st)
        return pl_err_wrap(err, st, "%s: Variable", where);
    if (!operand_ok(r->op, r->value))
        return pl_err_set(err, PL_ERR_FORMAT, "%s: %s has a value of the wrong type", where, ops[r->op].name);
    if (ops[r->op].path && (st = asl_path_compile(r->value->valuestring, &r->value_path, err)))
        return pl_err_wrap(err, st, "%s: %s", where, ops[r->op].name);
    return PL_OK;
}

static int check_fields(const cJSON *j, int top, const char *where, pl_err *err)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, j) {
        const char *k = c->string;
        int ok = !strcmp(k, "Variable") || !strcmp(k, "Comment") || !strcmp(k, "And") || !strcmp(k, "Or") ||
                 !strcmp(k, "Not") || op_find(k) >= 0 || (top && !strcmp(k, "Next"));
        if (!ok)
            return pl_err_set(err, PL_ERR_FORMAT, "%s: unknown field '%s' in choice rule", where, k);
    }
    return PL_OK;
}

int asl_rule_parse(const cJSON *j, asl_rule *r, int top, const char *where, pl_err *err)
{
    memset(r, 0, sizeof *r);
    int st = check_fields(j, top, where, err);
    if (st)
        return st;
    const cJSON *nx = cJSON_GetObjectItemCaseSensitive(j, "Next");
    if (top && !cJSON_IsString(nx))
        return pl_err_set(err, PL_ERR_FORMAT, "%s: choice rule without a Next state name", where);
    r->next = top ? nx->valuestring : NULL;
    const char *names[3] = {"And", "Or", "Not"};
    const int codes[3] = {ASL_OP_AND, ASL_OP_OR, ASL_OP_NOT};
    for (int i = 0; i < 3; i++) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, names[i]);
        if (s)
            return parse_subs(s, r, codes[i], where, err);
    }
    return parse_comparison(j, r, where, err);
}

/* Glob with '*' (any run); "\\*" and "\\\\" are literal. */
static int glob(const char *p, const char *s)
{
    if (*p == '\0')
        return *s == '\0';
    if (*p == '*') {
        for (;; s++) {
            if (glob(p + 1, s))
                return 1;
            if (!*s)
                return 0;
        }
    }
    if (*p == '\\' && p[1])
        p++;
    return *s == *p && glob(p + 1, s + 1);
}

static int order(int c, op_cmp cmp)
{
    switch (cmp) {
    case C_EQ: return c == 0;
    case C_LT: return c < 0;
    case C_GT: return c > 0;
    case C_LE: return c <= 0;
    default: return c >= 0;
    }
}

static int looks_like_timestamp(const cJSON *v)
{
    return cJSON_IsString(v) && strlen(v->valuestring) >= 20 && v->valuestring[4] == '-' &&
           v->valuestring[10] == 'T';
}

static int type_test(op_cmp cmp, const cJSON *v)
{
    switch (cmp) {
    case C_PRESENT: return v != NULL;
    case C_NULL: return cJSON_IsNull(v);
    case C_ISNUM: return cJSON_IsNumber(v);
    case C_ISSTR: return cJSON_IsString(v);
    case C_ISBOOL: return cJSON_IsBool(v);
    default: return looks_like_timestamp(v);
    }
}

static int compare(int op, const cJSON *v, const cJSON *operand)
{
    op_cmp cmp = ops[op].cmp;
    if (ops[op].kind == K_TYPE)
        return type_test(cmp, v) == cJSON_IsTrue(operand);
    if (!v || !operand)
        return 0;
    switch (ops[op].kind) {
    case K_STR: case K_TS:
        if (!cJSON_IsString(v) || !cJSON_IsString(operand))
            return 0;
        if (cmp == C_MATCH)
            return glob(operand->valuestring, v->valuestring);
        return order(strcmp(v->valuestring, operand->valuestring), cmp);
    case K_NUM:
        if (!cJSON_IsNumber(v) || !cJSON_IsNumber(operand))
            return 0;
        return order(v->valuedouble < operand->valuedouble ? -1 : v->valuedouble > operand->valuedouble, cmp);
    default:
        return cJSON_IsBool(v) && cJSON_IsBool(operand) && cJSON_IsTrue(v) == cJSON_IsTrue(operand);
    }
}

int asl_rule_eval(const asl_rule *r, const cJSON *input, const cJSON *ctx)
{
    if (r->op == ASL_OP_NOT)
        return !asl_rule_eval(&r->subs[0], input, ctx);
    if (r->op == ASL_OP_AND || r->op == ASL_OP_OR) {
        for (int i = 0; i < r->nsubs; i++)
            if (asl_rule_eval(&r->subs[i], input, ctx) == (r->op == ASL_OP_OR))
                return r->op == ASL_OP_OR;
        return r->op == ASL_OP_AND;
    }
    cJSON *v = asl_path_get(&r->variable, input, ctx);
    cJSON *operand = ops[r->op].path ? asl_path_get(&r->value_path, input, ctx) : NULL;
    int m = compare(r->op, v, ops[r->op].path ? operand : r->value);
    cJSON_Delete(v);
    cJSON_Delete(operand);
    return m;
}
