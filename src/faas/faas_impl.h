/* faas_impl.h — private state of the local function platform.
 *
 * Locking: one mutex (pl_faas.mu) guards every function, environment and
 * invocation field below. Invoke-API threads wait on their invocation's
 * condition variable, Runtime-API /next threads on their environment's, and
 * the monitor thread (which forks every function process, so that
 * PR_SET_PDEATHSIG follows a long-lived thread) on pl_faas.monitor_cv. */
#ifndef PEERLESS_FAAS_IMPL_H
#define PEERLESS_FAAS_IMPL_H

#include <pthread.h>
#include <stdio.h>
#include <sys/types.h>

#include "peerless/faas.h"

#define FAAS_MAX_BODY (6u * 1024u * 1024u) /* Lambda's synchronous payload limit */
#define FAAS_INIT_LIMIT_S 10.0              /* Lambda's init-phase limit */

struct MHD_Daemon;
struct faas_env;
struct faas_sfn;

typedef struct faas_fn {
    char *name, *command, *handler, *task_root;
    int memory_mb, concurrency;
    double timeout_s, idle_timeout_s;
    int next_env_id;
    struct faas_fn *next;
} faas_fn;

/* One invocation in flight; lives on the stack of its Invoke-API thread. */
typedef struct faas_inv {
    char request_id[40];
    const char *payload;
    size_t len;
    pthread_cond_t cv;
    int delivered, done, need_reap, env_gone, cold;
    double t_delivered, deadline, t_done; /* monotonic seconds */
    char *body;                           /* result payload (malloc) */
    size_t body_len;
    int function_error;                   /* 1: X-Amz-Function-Error: Unhandled */
    char outcome[40];
    double max_mem_mb, init_ms;
    pid_t pid;
    struct faas_env *env;                 /* assigned environment (locked) */
} faas_inv;

typedef enum faas_env_state {
    ENV_SPAWNING, /* created by an invoker, waiting for the monitor to fork */
    ENV_STARTING, /* process running, first /next not yet seen */
    ENV_IDLE,     /* warm, no invocation */
    ENV_BUSY,     /* an invocation assigned (maybe not yet delivered) */
    ENV_STOPPING  /* being torn down; no new work */
} faas_env_state;

typedef struct faas_env {
    struct pl_faas *p;
    faas_fn *fn;
    int id;
    faas_env_state state;
    pid_t pid;
    int port;
    struct MHD_Daemon *daemon;
    char cgroup[256];        /* "" when not using cgroups */
    pthread_cond_t cv;       /* /next waiters */
    faas_inv *inv;           /* current invocation or NULL */
    double t_spawn, init_ms, last_used;
    int init_done, killed_by_us, exited;
    char *init_error;        /* body of /runtime/init/error (malloc) */
    struct faas_env *next;
} faas_env;

struct pl_faas {
    pthread_mutex_t mu;
    pthread_cond_t monitor_cv;
    pthread_t monitor;
    int monitor_started, stopping, async_running;
    struct MHD_Daemon *invoke_daemon;
    int port;
    char *region;
    int use_cgroup;
    char cgroup_root[200];   /* /sys/fs/cgroup/memory/peerless-PID-N */
    FILE *log;
    faas_fn *fns;
    faas_env *envs;
    pl_faas_report *reports;
    size_t nreports, capreports;
    unsigned long long seq;
    struct faas_sfn *sfn;    /* Step Functions API state (sfn_api.c) */
    int sigv4;               /* 1: requests need a SigV4 Authorization header */
    char *sigv4_ak, *sigv4_sk; /* verify signatures with these; NULL: form only */
};

/* platform.c */
double faas_now(void);
void faas_cond_init(pthread_cond_t *cv);
void faas_deadline_ts(double t, struct timespec *ts);
faas_fn *faas_find_fn(pl_faas *p, const char *name);
void faas_new_request_id(pl_faas *p, char out[40]);
/* Record the report of a finished invocation (locked). */
void faas_record(pl_faas *p, faas_fn *fn, faas_env *env, faas_inv *inv);
/* Assign inv to a warm or new environment of fn (locked): 0, or -1 when
 * throttled. */
int faas_dispatch(pl_faas *p, faas_fn *fn, faas_inv *inv);
/* Wait (locked) until inv is done, enforcing the timeout. */
void faas_wait(pl_faas *p, faas_fn *fn, faas_inv *inv);
/* Invoke function `name` synchronously from inside the platform (Step
 * Functions tasks): like the Invoke API without HTTP, throttles retried
 * like pl_faas_invoke. Unlocked. Returns FAAS_LOCAL_OK with *body (malloc,
 * caller frees) and *function_error set, else FAAS_LOCAL_NOTFOUND /
 * _THROTTLED / _STOPPING / _NOMEM. */
enum { FAAS_LOCAL_OK = 0, FAAS_LOCAL_NOTFOUND = -1, FAAS_LOCAL_THROTTLED = -2, FAAS_LOCAL_STOPPING = -3,
       FAAS_LOCAL_NOMEM = -4 };
int faas_invoke_local(pl_faas *p, const char *name, const char *payload, size_t len, char **body,
                      int *function_error);
/* Mark inv done with a Lambda-shaped error (locked). */
void faas_fail(faas_inv *inv, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* env.c (monitor-thread side) */
int faas_env_spawn(pl_faas *p, faas_env *env, pl_err *err);
double faas_env_max_mem_mb(const faas_env *env);
void faas_env_reset_peak(const faas_env *env);
int faas_env_oom_killed(const faas_env *env);
void faas_env_free(faas_env *env); /* daemon stopped, cgroup removed */
int faas_cgroup_setup(pl_faas *p, pl_faas_memory_mode mode, pl_err *err);
void faas_cgroup_teardown(pl_faas *p);

/* http.c: one daemon per API endpoint, a thread per connection (handlers
 * block on condition variables). runtime=1 routes to faas_runtime_route
 * with cls = the faas_env, else to the Invoke API with cls = the pl_faas. */
struct MHD_Daemon *faas_http_start(const char *host, int port, void *cls, int runtime, int *bound_port,
                                   pl_err *err);
struct MHD_Connection;
typedef struct faas_req { /* a request body being received */
    char *buf;
    size_t len, cap;
    int too_big;
} faas_req;
/* Queue a response (copied); hdrs = NULL-terminated name/value pairs.
 * Returns an MHD_Result. */
int faas_reply(struct MHD_Connection *c, unsigned status, const char *body, size_t len, const char *const *hdrs);
/* Build {"k1":"v1",...} with JSON escaping (malloc, NULL on OOM). */
char *faas_json_obj2(const char *k1, const char *v1, const char *k2, const char *v2);

/* sfn_api.c: the Step Functions JSON 1.0 API on POST / (docs/faas.md). */
int faas_sfn_create(pl_faas *p);          /* PL_OK or PL_ERR_NOMEM */
void faas_sfn_abort_all(pl_faas *p);      /* stop every execution's new tasks */
void faas_sfn_destroy(pl_faas *p);        /* wait for execution threads, free */
int faas_sfn_route(pl_faas *p, struct MHD_Connection *c, const char *method, faas_req *r);

/* sfn_auth.c: SigV4 Authorization checks for service "lambda" or "states".
 * 0 when the request passes (or p->sigv4 is off); else fills e. */
typedef struct faas_auth_error {
    unsigned status;
    char type[64];
    char msg[400];
} faas_auth_error;
int faas_auth_check(pl_faas *p, struct MHD_Connection *c, const char *method, const char *url, const faas_req *r,
                    const char *service, faas_auth_error *e);

/* runtime_api.c */
int faas_runtime_route(faas_env *env, struct MHD_Connection *c, const char *url, const char *method, faas_req *r);

#endif
