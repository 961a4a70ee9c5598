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

/* Between fork and exec only async-signal-safe calls. */
static void child_exec(const char *procs, const struct rlimit *as, char *const argv[], char *const envp[],
                       pid_t parent)
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
    execve("/bin/sh", argv, envp);
    _exit(127);
}

int faas_env_spawn(pl_faas *p, faas_env *env, pl_err *err)
{
    env->daemon = faas_http_start("127.0.0.1", 0, env, 1, &env->port, err);
    if (!env->daemon)
        return err ? err->status : PL_ERR_IO;
    if (p->use_cgroup && make_env_cgroup(p, env, err) != PL_OK)
        return err ? err->status : PL_ERR_IO;
    char procs[300], *cmd = NULL;
    snprintf(procs, sizeof procs, "%s/cgroup.procs", env->cgroup);
    struct rlimit as = {(rlim_t)env->fn->memory_mb << 20, (rlim_t)env->fn->memory_mb << 20};
    char **envp = build_envp(p, env);
    if (!envp || asprintf(&cmd, "exec %s", env->fn->command) < 0) {
        free_envp(envp);
        return pl_err_set(err, PL_ERR_NOMEM, "faas: starting %s: out of memory", env->fn->name);
    }
    char *argv[] = {"sh", "-c", cmd, NULL};
    pid_t parent = getpid();
    env->t_spawn = faas_now();
    pid_t pid = fork();
    if (pid == 0)
        child_exec(p->use_cgroup ? procs : NULL, p->use_cgroup ? NULL : &as, argv, envp, parent);
    int e = errno;
    free(cmd);
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
