/* asl_internal.h — the parsed state-machine graph shared by the parser
 * (asl_parse.c), paths (asl_path.c), the interpreter (asl_run.c) and the
 * history (asl_history.c). Every string and cJSON pointer in these structs
 * is borrowed from the definition tree owned by pl_asl_machine. */
#ifndef PEERLESS_FAAS_ASL_INTERNAL_H
#define PEERLESS_FAAS_ASL_INTERNAL_H

#include <cjson/cJSON.h>

#include "peerless/asl.h"

typedef enum asl_type {
    ASL_TASK, ASL_PASS, ASL_CHOICE, ASL_WAIT, ASL_SUCCEED, ASL_FAIL, ASL_PARALLEL, ASL_MAP
} asl_type;

/* ---- paths ---- */

typedef enum asl_step_kind { ASL_STEP_FIELD, ASL_STEP_INDEX, ASL_STEP_ALL } asl_step_kind;

typedef struct asl_step {
    asl_step_kind kind;
    char *field; /* owned (FIELD) */
    long index;  /* INDEX */
} asl_step;

typedef struct asl_path {
    int context; /* 1: "$$" (context object), 0: "$" */
    int nsteps;
    asl_step *steps; /* owned */
    int wildcard;    /* any ASL_STEP_ALL: evaluates to an array */
} asl_path;

/* Compile `text` into *p (zeroed on failure). Errors say what is wrong at
 * which character. */
int asl_path_compile(const char *text, asl_path *p, pl_err *err);
void asl_path_free(asl_path *p);
/* Evaluate against root ($) or ctx ($$). Returns a new tree (caller frees)
 * or NULL if the path does not match. */
cJSON *asl_path_get(const asl_path *p, const cJSON *root, const cJSON *ctx);
/* Set the node at reference path p (no wildcard, no $$) inside *root to
 * value (taken). Creates missing objects. Returns 0, or -1 when the path
 * walks through a non-object/array (value freed). */
int asl_path_set(const asl_path *p, cJSON **root, cJSON *value);

/* Validate a payload template (Parameters, ItemSelector, ResultSelector):
 * every "key.$" holds a valid path string. `where` prefixes messages. */
int asl_template_check(const cJSON *tmpl, const char *where, pl_err *err);
/* Instantiate a template against root/ctx. Returns a new tree, or NULL
 * with *bad set to the path that matched nothing. */
cJSON *asl_template_apply(const cJSON *tmpl, const cJSON *root, const cJSON *ctx, const char **bad);

/* ---- choice rules ---- */

typedef struct asl_rule {
    int op;            /* index into the comparator table, or ASL_OP_AND/OR/NOT */
    asl_path variable; /* for comparators */
    const cJSON *value; /* literal operand, or the path string for *Path operators */
    asl_path value_path;
    struct asl_rule *subs; /* owned: And/Or (nsubs), Not (1) */
    int nsubs;
    const char *next; /* top-level rules only */
} asl_rule;

enum { ASL_OP_AND = -1, ASL_OP_OR = -2, ASL_OP_NOT = -3 };

int asl_rule_parse(const cJSON *j, asl_rule *r, int top, const char *where, pl_err *err);
void asl_rule_free(asl_rule *r);
/* 1 if the rule matches input (and ctx), 0 if not. */
int asl_rule_eval(const asl_rule *r, const cJSON *input, const cJSON *ctx);

/* ---- states ---- */

typedef struct asl_retrier {
    const cJSON *errors; /* array of strings */
    double interval, backoff, max_delay; /* max_delay 0 = none */
    int max_attempts;
} asl_retrier;

typedef struct asl_catcher {
    const cJSON *errors;
    const char *next;
    int has_result_path, result_path_null;
    asl_path result_path;
} asl_catcher;

struct asl_graph;

typedef struct asl_state {
    const char *name;
    asl_type type;
    const char *next;
    int end;
    /* paths: has_* says the field was given; *_null: it was JSON null */
    int has_input_path, input_path_null, has_output_path, output_path_null, has_result_path, result_path_null;
    asl_path input_path, output_path, result_path;
    const cJSON *parameters, *result_selector, *result; /* or NULL */
    /* Task */
    const char *resource;
    double timeout; /* seconds; 0 = none */
    asl_retrier *retry;
    int nretry;
    asl_catcher *catch_;
    int ncatch;
    /* Choice */
    asl_rule *choices;
    int nchoices;
    const char *default_;
    /* Wait */
    double seconds;
    int has_seconds_path;
    asl_path seconds_path;
    /* Fail */
    const char *error, *cause;
    /* Map / Parallel */
    int has_items_path;
    asl_path items_path;
    int max_concurrency;
    struct asl_graph *branches; /* Parallel: nbranches; Map: 1 (the item processor) */
    int nbranches;
} asl_state;

typedef struct asl_graph {
    const char *start_at;
    asl_state *states; /* owned */
    int nstates;
    int start; /* index of start_at */
} asl_graph;

int asl_graph_find(const asl_graph *g, const char *name);

struct pl_asl_machine {
    cJSON *doc; /* owned definition tree */
    asl_graph top;
    int has_tasks;
};

/* ---- history ---- */

typedef struct asl_history asl_history;
int asl_history_create(asl_history **out);
void asl_history_destroy(asl_history *h);
/* Append an event; details (taken, may be NULL) is merged into the event.
 * Thread-safe. Out of memory drops the details but never the count. */
void asl_history_add(asl_history *h, const char *type, cJSON *details);
char *asl_history_json(asl_history *h);
int asl_history_count(asl_history *h, const char *type);
/* ISO-8601 UTC time with milliseconds into buf[32]. */
void asl_now_iso(char *buf, size_t len);

#endif
