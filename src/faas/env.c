/* env.c — execution environments: process start, memory limits, teardown. */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "faas/faas_impl.h"

#define CGROUP_MEMORY "/sys/fs/cgroup/memory"

extern char **environ;

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = strlen(text);
    int ok = write(fd, text, n) == (ssize_t)n;
    close(fd);
    return ok ? 0 : -1;
}

static long long read_ll(const char *dir, const char *file)
{
    char path[320];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "re");
    long long v = -1;
    if (f) {
        if (fscanf(f, "%lld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

int faas_cgroup_setup(pl_faas *p, pl_faas_memory_mode mode, pl_err *err)
{
    p->use_cgroup = 0;
    if (mode == PL_FAAS_MEM_RLIMIT)
        return PL_OK;
    static int counter;
    snprintf(p->cgroup_root, sizeof p->cgroup_root, CGROUP_MEMORY "/peerless-%d-%d", (int)getpid(),
             __atomic_fetch_add(&counter, 1, __ATOMIC_SEQ_CST));
    char probe[300];
    snprintf(probe, sizeof probe, "%s/memory.limit_in_bytes", p->cgroup_root);
    if (mkdir(p->cgroup_root, 0755) == 0 && write_file(probe, "-1") == 0) {
        p->use_cgroup = 1;
        return PL_OK;
    }
    int e = errno;
    rmdir(p->cgroup_root);
    p->cgroup_root[0] = '\0';
    if (mode == PL_FAAS_MEM_CGROUP)
        return pl_err_set(err, PL_ERR_UNSUPPORTED, "faas: cgroup v1 memory controller %s not writable: %s",
                          CGROUP_MEMORY, strerror(e));
    return PL_OK;
}

/* A cgroup directory may stay busy for a moment after its last process
 * was reaped; retry briefly. */
static void rmdir_retry(const char *dir)
{
    for (int i = 0; i < 50 && rmdir(dir) != 0 && errno == EBUSY; i++)
        nanosleep(&(struct timespec){0, 2000000}, NULL);
}

void faas_cgroup_teardown(pl_faas *p)
{
    if (p->use_cgroup)
        rmdir_retry(p->cgroup_root);
}

static int make_env_cgroup(pl_faas *p, faas_env *env, pl_err *err)
{
    snprintf(env->cgroup, sizeof env->cgroup, "%s/%s-%d", p->cgroup_root, env->fn->name, env->id);
    char path[320], val[32];
    if (mkdir(env->cgroup, 0755) != 0 && errno != EEXIST)
        return pl_err_set(err, PL_ERR_IO, "faas: mkdir %s: %s", env->cgroup, strerror(errno));
    snprintf(path, sizeof path, "%s/memory.limit_in_bytes", env->cgroup);
    snprintf(val, sizeof val, "%lld", (long long)env->fn->memory_mb * 1048576LL);
    if (write_file(path, val) != 0)
        return pl_err_set(err, PL_ERR_IO, "faas: writing %s to %s: %s", val, path, strerror(errno));
    /* Without swap accounting this file is absent; the limit above suffices. */
    snprintf(path, sizeof path, "%s/memory.memsw.limit_in_bytes", env->cgroup);
    (void)write_file(path, val);
    return PL_OK;
}

/* Our variables first; inherited ones only when not overridden. */
static char **build_envp(pl_faas *p, faas_env *env)
{
    const faas_fn *fn = env->fn;
    char buf[12][600];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(buf[0], sizeof buf[0], "AWS_LAMBDA_RUNTIME_API=127.0.0.1:%d", env->port);
    snprintf(buf[1], sizeof buf[1], "AWS_LAMBDA_FUNCTION_NAME=%s", fn->name);
    snprintf(buf[2], sizeof buf[2], "AWS_LAMBDA_FUNCTION_VERSION=$LATEST");
    snprintf(buf[3], sizeof buf[3], "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%d", fn->memory_mb);
    snprintf(buf[4], sizeof buf[4], "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/%s", fn->name);
    snprintf(buf[5], sizeof buf[5], "AWS_LAMBDA_LOG_STREAM_NAME=%04d/%02d/%02d/[$LATEST]%08x%024llx",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, (unsigned)getpid(),
             (unsigned long long)env->id * 2654435761ULL + (unsigned long long)now);
    snprintf(buf[6], sizeof buf[6], "_HANDLER=%s", fn->handler);
    snprintf(buf[7], sizeof buf[7], "LAMBDA_TASK_ROOT=%s", fn->task_root);
    snprintf(buf[8], sizeof buf[8], "AWS_REGION=%s", p->region);
    snprintf(buf[9], sizeof buf[9], "AWS_DEFAULT_REGION=%s", p->region);
    snprintf(buf[10], sizeof buf[10], "AWS_EXECUTION_ENV=peerless_local");
    snprintf(buf[11], sizeof buf[11], "TZ=:UTC");
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = calloc(n + 13, sizeof *envp);
    if (!envp)
        return NULL;
    size_t k = 0;
    for (int i = 0; i < 12; i++)
        if (!(envp[k++] = strdup(buf[i])))
            goto fail;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t klen = eq ? (size_t)(eq - environ[i]) + 1 : strlen(environ[i]);
        int overridden = 0;
        for (int j = 0; j < 12 && !overridden; j++)
            overridden = !strncmp(buf[j], environ[i], klen);
        if (!overridden && !(envp[k++] = strdup(environ[i])))
            goto fail;
    }
    return envp;
fail:
    for (size_t i = 0; i < k; i++)
        free(envp[i]);
    free(envp);
    return NULL;
}

static void free_envp(char **envp)
{
    for (size_t i = 0; envp && envp[i]; i++)
        free(envp[i]);
    free(envp);
}

/* ---- starting the command without a shell ----
 * A command that uses no shell syntax beyond words and quotes is started
 * directly: one exec instead of `/bin/sh -c "exec COMMAND"`, and an
 * `env NAME=VALUE... PROGRAM ARGS` prefix becomes environment entries
 * instead of a second exec (peerless run starts its functions that way).
 * Each exec costs a cold start ~1 ms; anything else still goes through sh. */

typedef struct words {
    char **v;
    size_t n, cap;
} words;

static void words_free(words *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->v[i]);
    free(w->v);
    memset(w, 0, sizeof *w);
}

/* Append a copy of s[0..len) (NULL-terminated array); -1 when out of memory. */
static int words_add(words *w, const char *s, size_t len)
{
    if (w->n + 2 > w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 8;
        char **v = realloc(w->v, cap * sizeof *v);
        if (!v)
            return -1;
        w->v = v;
        w->cap = cap;
    }
    if (!(w->v[w->n] = strndup(s, len)))
        return -1;
    w->v[++w->n] = NULL;
    return 0;
}

/* Split cmd into words as sh would when it has only plain characters,
 * '...' and "..." (without $ ` \). Returns 1 (split), 0 (needs a shell),
 * -1 (out of memory). *plain_first: the first word had no quotes. */
static int split_words(const char *cmd, words *out, int *plain_first)
{
    static const char plain[] = "_./:=@%+,-";
    char *buf = malloc(strlen(cmd) + 1);
    if (!buf)
        return -1;
    int rc = 1;
    const char *c = cmd;
    while (rc == 1) {
        while (*c == ' ' || *c == '\t')
            c++;
        if (!*c)
            break;
        size_t len = 0;
        int quoted = 0;
        while (rc == 1 && *c && *c != ' ' && *c != '\t') {
            if (*c == '\'' || *c == '"') {
                const char q = *c++, *end = strchr(c, q);
                if (!end || (q == '"' && strcspn(c, "$`\\") < (size_t)(end - c)))
                    rc = 0;
                else {
                    memcpy(buf + len, c, (size_t)(end - c));
                    len += (size_t)(end - c);
                    c = end + 1;
                    quoted = 1;
                }
            } else if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                       strchr(plain, *c)) {
                buf[len++] = *c++;
            } else {
                rc = 0;
            }
        }
        if (rc == 1 && out->n == 0)
            *plain_first = !quoted;
        if (rc == 1 && words_add(out, buf, len))
            rc = -1;
    }
    free(buf);
    return rc == 1 && out->n == 0 ? 0 : rc;
}

/* Set NAME=VALUE in the NULL-terminated malloc'd array *envp (replacing NAME). */
static int envp_set(char ***envp, const char *assign)
{
    size_t klen = (size_t)(strchr(assign, '=') - assign) + 1, n = 0;
    char *copy = strdup(assign);
    if (!copy)
        return -1;
    for (; (*envp)[n]; n++)
        if (!strncmp((*envp)[n], assign, klen)) {
            free((*envp)[n]);
            (*envp)[n] = copy;
            return 0;
        }
    char **v = realloc(*envp, (n + 2) * sizeof *v);
    if (!v) {
        free(copy);
        return -1;
    }
    v[n] = copy;
    v[n + 1] = NULL;
    *envp = v;
    return 0;
}

/* The executable execvp would run for `prog` with envp's PATH; NULL if none. */
static char *find_program(const char *prog, char *const envp[])
{
    if (strchr(prog, '/'))
        return access(prog, X_OK) == 0 ? strdup(prog) : NULL;
    const char *path = "/bin:/usr/bin";
    for (size_t i = 0; envp[i]; i++)
        if (!strncmp(envp[i], "PATH=", 5))
            path = envp[i] + 5;
    char full[4096];
    while (*path) {
        size_t n = strcspn(path, ":");
        if (snprintf(full, sizeof full, "%.*s/%s", (int)n, n ? path : ".", prog) < (int)sizeof full &&
            access(full, X_OK) == 0)
            return strdup(full);
        path += n + (path[n] == ':');
    }
    return NULL;
}

/* Direct start of env->fn->command: *argv (words) and *prog (executable),
 * with `env` assignments moved into *envp. Returns 1, 0 (use the shell) or
 * -1 (out of memory). */
static int direct_command(const char *cmd, char ***envp, words *argv, char **prog)
{
    words w = {0};
    int plain_first = 0, rc = split_words(cmd, &w, &plain_first);
    size_t first = 0;
    if (rc == 1 && plain_first && !strcmp(w.v[0], "env")) {
        for (first = 1; first < w.n && w.v[first][0] != '-' && w.v[first][0] != '=' && strchr(w.v[first], '=');
             first++)
            if (envp_set(envp, w.v[first]))
                rc = -1;
        if (first == w.n || w.v[first][0] == '-')
            rc = rc < 0 ? rc : 0;
    }
    if (rc == 1 && !(*prog = find_program(w.v[first], *envp)))
        rc = 0; /* let sh report it (exit 127, as before) */
    for (size_t i = first; rc == 1 && i < w.n; i++)
        if (words_add(argv, w.v[i], strlen(w.v[i])))
            rc = -1;
    words_free(&w);
    return rc;
}

/* Between fork and exec only async-signal-safe calls. */
static void child_exec(const char *procs, const struct rlimit *as, const char *prog, char *const argv[],
                       char *const envp[], pid_t parent)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL); /* exec keeps the mask; the CLI blocks SIGTERM */
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    if (procs) {
        int fd = open(procs, O_WRONLY);
        if (fd < 0 || write(fd, "0", 1) != 1)
            _exit(126);
        close(fd);
    }
    if (as && setrlimit(RLIMIT_AS, as) != 0)
        _exit(126);
    dup2(2, 1); /* function logs go to the platform's stderr, never its stdout */
    execve(prog, argv, envp);
    _exit(127);
}

int faas_env_spawn(pl_faas *p, faas_env *env, pl_err *err)
{
    env->daemon = faas_http_start("127.0.0.1", 0, env, 1, &env->port, err);
    if (!env->daemon)
        return err ? err->status : PL_ERR_IO;
    if (p->use_cgroup && make_env_cgroup(p, env, err) != PL_OK)
        return err ? err->status : PL_ERR_IO;
    char procs[300], *cmd = NULL, *prog = NULL;
    snprintf(procs, sizeof procs, "%s/cgroup.procs", env->cgroup);
    struct rlimit as = {(rlim_t)env->fn->memory_mb << 20, (rlim_t)env->fn->memory_mb << 20};
    char **envp = build_envp(p, env);
    words argv = {0};
    int direct = envp ? direct_command(env->fn->command, &envp, &argv, &prog) : -1;
    if (direct == 0 && (asprintf(&cmd, "exec %s", env->fn->command) < 0 || words_add(&argv, "sh", 2) ||
                        words_add(&argv, "-c", 2) || words_add(&argv, cmd, strlen(cmd)) ||
                        !(prog = strdup("/bin/sh"))))
        direct = -1;
    if (direct < 0) {
        free(cmd);
        free(prog);
        words_free(&argv);
        free_envp(envp);
        return pl_err_set(err, PL_ERR_NOMEM, "faas: starting %s: out of memory", env->fn->name);
    }
    pid_t parent = getpid();
    env->t_spawn = faas_now();
    pid_t pid = fork();
    if (pid == 0)
        child_exec(p->use_cgroup ? procs : NULL, p->use_cgroup ? NULL : &as, prog, argv.v, envp, parent);
    int e = errno;
    free(cmd);
    free(prog);
    words_free(&argv);
    free_envp(envp);
    if (pid < 0)
        return pl_err_set(err, PL_ERR_IO, "faas: fork for function %s: %s", env->fn->name, strerror(e));
    setpgid(pid, pid);
    pthread_mutex_lock(&p->mu);
    env->pid = pid;
    pthread_mutex_unlock(&p->mu);
    return PL_OK;
}

double faas_env_max_mem_mb(const faas_env *env)
{
    if (env->cgroup[0]) {
        long long v = read_ll(env->cgroup, "memory.max_usage_in_bytes");
        return v > 0 ? (double)v / 1048576.0 : 0;
    }
    if (env->pid <= 0 || env->exited)
        return 0;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)env->pid);
    FILE *f = fopen(path, "re");
    double mb = 0;
    while (f && fgets(line, sizeof line, f)) {
        long kb;
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            mb = (double)kb / 1024.0;
    }
    if (f)
        fclose(f);
    return mb;
}

/* Peak memory is per invocation: reset it when an event is delivered. */
void faas_env_reset_peak(const faas_env *env)
{
    char path[320];
    if (env->cgroup[0]) {
        snprintf(path, sizeof path, "%s/memory.max_usage_in_bytes", env->cgroup);
        (void)write_file(path, "0");
    } else if (env->pid > 0) {
        snprintf(path, sizeof path, "/proc/%d/clear_refs", (int)env->pid);
        (void)write_file(path, "5");
    }
}

int faas_env_oom_killed(const faas_env *env)
{
    if (!env->cgroup[0])
        return 0;
    char path[320], key[64];
    long long v;
    snprintf(path, sizeof path, "%s/memory.oom_control", env->cgroup);
    FILE *f = fopen(path, "re");
    int oom = 0;
    while (f && fscanf(f, "%63s %lld", key, &v) == 2)
        if (!strcmp(key, "oom_kill") && v > 0)
            oom = 1;
    if (f)
        fclose(f);
    return oom || read_ll(env->cgroup, "memory.failcnt") > 0;
}

void faas_env_free(faas_env *env)
{
    if (!env)
        return;
    if (env->daemon)
        MHD_stop_daemon(env->daemon);
    if (env->cgroup[0])
        rmdir_retry(env->cgroup);
    pthread_cond_destroy(&env->cv);
    free(env->init_error);
    free(env);
}
