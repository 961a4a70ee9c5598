/* run.c — `peerless run --peers N`: split the dataset into a run directory,
 * start N local peer processes over TCP, show one progress line for the
 * whole run, and end with a summary table and one JSON line. Killing the
 * launcher stops its peers (PR_SET_PDEATHSIG, and SIGINT/SIGTERM handling). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/progress.h"
#include "peerless/faas.h"
#include "peerless/store.h"

#define MAX_PEERS 64

typedef struct child {
    pid_t pid;
    int out_fd, err_fd;     /* pipes from the peer's stdout / stderr; -1 when closed */
    char out[4096];         /* last complete stdout line (the JSON result) */
    char buf_out[8192], buf_err[8192];
    size_t len_out, len_err;
    int status, exited;
    int epoch, step, steps;
    double loss;
} child;

static volatile sig_atomic_t g_stop;
static child g_kids[MAX_PEERS];
static int g_nkids;

static void on_signal(int sig)
{
    g_stop = sig;
    for (int i = 0; i < g_nkids; i++)
        if (g_kids[i].pid > 0 && !g_kids[i].exited)
            kill(g_kids[i].pid, SIGTERM);
}

/* A free TCP port on 127.0.0.1 (the kernel picks; released before use). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int mkdirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

/* Launcher-only flags: not forwarded to the peers. */
static const char *const launcher_flags[] = {"peers", "run-dir", "data-dir", "threads", "run", "store", "size",
                                              "rank", "transport", "metrics", "csv", "progress", "faas-url",
                                              "function-memory", "function-concurrency", "batches", "peer-cpu"};

static int is_launcher_flag(const char *arg, int *takes_value)
{
    const char *name = arg + 2;
    size_t len = strcspn(name, "=");
    *takes_value = name[len] == '\0';
    for (size_t i = 0; i < sizeof launcher_flags / sizeof launcher_flags[0]; i++) {
        const char *f = launcher_flags[i];
        size_t j = 0;
        while (j < len && f[j] && (name[j] == f[j] || (name[j] == '_' && f[j] == '-')))
            j++;
        if (j == len && f[j] == '\0')
            return 1;
    }
    return 0;
}

typedef struct launch {
    int peers, threads, batches;
    double cpu[MAX_PEERS];  /* CPU share per peer (cores); 0 = unlimited */
    int cpu_limited;
    const char *run, *run_dir, *mode;
    char store_url[1100], transport[MAX_PEERS * 24], faas_url[64], batches_arg[16];
} launch;

static void child_exec(const launch *L, int rank, int argc, char **argv)
{
    char *args[256];
    int n = 0;
    char rk[16], sz[16], th[16], metrics[1200], csv[1200];
    snprintf(rk, sizeof rk, "%d", rank);
    snprintf(sz, sizeof sz, "%d", L->peers);
    snprintf(th, sizeof th, "%d", L->threads);
    snprintf(metrics, sizeof metrics, "%s/metrics/peer-%d.jsonl", L->run_dir, rank);
    snprintf(csv, sizeof csv, "%s/metrics/peer-%d.csv", L->run_dir, rank);
    const char *fixed[] = {"peerless", "peer", "--rank", rk, "--size", sz, "--transport", L->transport, "--store",
                           L->store_url, "--run", L->run, "--threads", th, "--metrics", metrics, "--csv", csv,
                           "--progress"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        args[n++] = (char *)fixed[i];
    if (L->batches > 0) {
        args[n++] = "--batches";
        args[n++] = (char *)L->batches_arg;
    }
    if (L->faas_url[0]) {
        args[n++] = "--faas-url";
        args[n++] = (char *)L->faas_url;
    }
    for (int i = 0; i < argc && n < 254; i++) {
        int takes;
        if (!strncmp(argv[i], "--", 2) && is_launcher_flag(argv[i], &takes)) {
            if (takes && i + 1 < argc && strcmp(argv[i], "--progress"))
                i++;
            continue;
        }
        args[n++] = argv[i];
    }
    args[n] = NULL;
    execv("/proc/self/exe", args);
    fprintf(stderr, "cannot start peer %d: %s\n", rank, strerror(errno));
    _exit(127);
}

#define CPU_CGROUP "/sys/fs/cgroup/cpu"

/* Named after the launcher (getppid() in a peer before exec). */
static void cgroup_path(char *buf, size_t len, int launcher, int rank)
{
    snprintf(buf, len, CPU_CGROUP "/peerless-%d-peer%d", launcher, rank);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int bad = fputs(text, f) < 0;
    return (fclose(f) || bad) ? -1 : 0;
}

/* Parse --peer-cpu: one share for every peer or a comma list (cores each,
 * e.g. "0.25,1,1,1"). Creates one cgroup v1 CPU group per limited peer;
 * without a writable cpu controller it says so and runs unlimited. */
static int setup_peer_cpu(launch *L, const char *spec, pl_err *err)
{
    if (!spec)
        return PL_OK;
    const char *s = spec;
    for (int i = 0; i < L->peers; i++) {
        char *end;
        double v = strtod(s, &end);
        if (end == s || v < 0.01 || v > 1024)
            return pl_err_set(err, PL_ERR_ARG, "--peer-cpu expects shares in cores (0.01..1024), e.g. 0.25,1 — got '%s'", spec);
        L->cpu[i] = v;
        if (*end == ',')
            s = end + 1;
        else if (*end)
            return pl_err_set(err, PL_ERR_ARG, "--peer-cpu: unexpected '%s' in '%s'", end, spec);
    }
    char dir[256], file[300], num[32];
    for (int i = 0; i < L->peers; i++) {
        cgroup_path(dir, sizeof dir, (int)getpid(), i);
        snprintf(file, sizeof file, "%s/cpu.cfs_quota_us", dir);
        snprintf(num, sizeof num, "%ld", (long)(L->cpu[i] * 100000.0));
        if ((mkdir(dir, 0755) && errno != EEXIST) || write_file(file, num)) {
            fprintf(stderr, "peerless run: --peer-cpu ignored: cannot create a CPU cgroup under %s (%s); "
                            "peers run without CPU limits\n", CPU_CGROUP, strerror(errno));
            for (int j = 0; j <= i; j++) {
                cgroup_path(dir, sizeof dir, (int)getpid(), j);
                rmdir(dir);
            }
            return PL_OK;
        }
    }
    L->cpu_limited = 1;
    fprintf(stderr, "peerless run: peer CPU shares (cores): %s\n", spec);
    return PL_OK;
}

static void cleanup_peer_cpu(const launch *L)
{
    char dir[256];
    for (int i = 0; L->cpu_limited && i < L->peers; i++) {
        cgroup_path(dir, sizeof dir, (int)getpid(), i);
        rmdir(dir);
    }
}

static int spawn(const launch *L, int rank, int argc, char **argv)
{
    int po[2], pe[2];
    if (pipe(po) || pipe(pe))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* the launcher dies -> its peers die */
        if (L->cpu_limited) {
            char dir[256], file[300], self[24];
            cgroup_path(dir, sizeof dir, (int)getppid(), rank);
            snprintf(file, sizeof file, "%s/tasks", dir);
            snprintf(self, sizeof self, "%d", (int)getpid());
            if (write_file(file, self))
                fprintf(stderr, "peer %d: could not join CPU cgroup %s\n", rank, dir);
        }
        dup2(po[1], STDOUT_FILENO);
        dup2(pe[1], STDERR_FILENO);
        close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
        child_exec(L, rank, argc, argv);
    }
    close(po[1]);
    close(pe[1]);
    child *k = &g_kids[rank];
    memset(k, 0, sizeof *k);
    k->pid = pid;
    k->out_fd = po[0];
    k->err_fd = pe[0];
    return 0;
}

static void handle_err_line(child *k, int rank, const char *line)
{
    if (!strncmp(line, "@progress ", 10)) {
        const char *e = strstr(line, "\"epoch\":"), *s = strstr(line, "\"step\":"), *t = strstr(line, "\"steps\":");
        const char *l = strstr(line, "\"loss\":");
        if (e && s && t && l) {
            k->epoch = atoi(e + 8);
            k->step = atoi(s + 7);
            k->steps = atoi(t + 8);
            k->loss = atof(l + 7);
        }
        return;
    }
    fprintf(stderr, "\r[peer %d] %s\n", rank, line);
}

/* Read what is available; split into lines. Returns 0 at EOF. */
static int drain(child *k, int rank, int is_err)
{
    int fd = is_err ? k->err_fd : k->out_fd;
    char *buf = is_err ? k->buf_err : k->buf_out;
    size_t *len = is_err ? &k->len_err : &k->len_out;
    ssize_t r = read(fd, buf + *len, sizeof k->buf_out - 1 - *len);
    if (r <= 0)
        return 0;
    *len += (size_t)r;
    buf[*len] = '\0';
    char *start = buf, *nl;
    while ((nl = strchr(start, '\n'))) {
        *nl = '\0';
        if (is_err)
            handle_err_line(k, rank, start);
        else if (start[0] == '{' && strlen(start) < sizeof k->out)
            memcpy(k->out, start, strlen(start) + 1);
        start = nl + 1;
    }
    *len = strlen(start);
    memmove(buf, start, *len);
    if (*len == sizeof k->buf_out - 1) /* an over-long line: drop it */
        *len = 0;
    return 1;
}

static void show_progress(const launch *L, pl_progress *pr)
{
    int epoch = 1 << 30, step = 1 << 30, steps = 0;
    double loss = 0;
    for (int i = 0; i < L->peers; i++) {
        child *k = &g_kids[i];
        if (k->epoch < epoch || (k->epoch == epoch && k->step < step)) {
            epoch = k->epoch;
            step = k->step;
            steps = k->steps;
            loss = k->loss;
        }
    }
    static int last_epoch;
    if (epoch != last_epoch)
        pr->last_done = (size_t)-1;
    last_epoch = epoch;
    if (steps > 0) {
        snprintf(pr->label, sizeof pr->label, "[%s, %d peers] epoch %d", L->mode, L->peers, epoch);
        pr->total = (size_t)steps;
        pl_progress_update(pr, (size_t)step, loss, 0);
    }
}

static void supervise(const launch *L)
{
    pl_progress pr;
    pl_progress_start(&pr, "run", 1);
    double first_fail = 0;
    for (;;) {
        struct pollfd fds[2 * MAX_PEERS];
        int map[2 * MAX_PEERS], nf = 0, open_fds = 0;
        for (int i = 0; i < L->peers; i++) {
            child *k = &g_kids[i];
            if (k->out_fd >= 0)
                fds[nf] = (struct pollfd){k->out_fd, POLLIN, 0}, map[nf++] = 2 * i;
            if (k->err_fd >= 0)
                fds[nf] = (struct pollfd){k->err_fd, POLLIN, 0}, map[nf++] = 2 * i + 1;
        }
        open_fds = nf;
        if (!open_fds)
            break;
        poll(fds, (nfds_t)nf, 200);
        for (int j = 0; j < nf; j++) {
            if (!(fds[j].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            child *k = &g_kids[map[j] / 2];
            int is_err = map[j] % 2;
            if (!drain(k, map[j] / 2, is_err)) {
                close(is_err ? k->err_fd : k->out_fd);
                *(is_err ? &k->err_fd : &k->out_fd) = -1;
            }
        }
        for (int i = 0; i < L->peers; i++) {
            child *k = &g_kids[i];
            if (!k->exited && waitpid(k->pid, &k->status, WNOHANG) == k->pid) {
                k->exited = 1;
                if ((!WIFEXITED(k->status) || WEXITSTATUS(k->status)) && first_fail == 0)
                    first_fail = pl_now();
            }
        }
        /* One peer failed: give the others a moment to report, then stop them. */
        if (first_fail > 0 && pl_now() - first_fail > 5.0)
            on_signal(0);
        show_progress(L, &pr);
    }
    for (int i = 0; i < L->peers; i++)
        if (!g_kids[i].exited) {
            waitpid(g_kids[i].pid, &g_kids[i].status, 0);
            g_kids[i].exited = 1;
        }
    pl_progress_end(&pr);
}

/* The local function platform for serverless runs, hosting this binary's
 * `function` command (a Lambda custom runtime). */
static int start_platform(launch *L, int memory_mb, int concurrency, const char *name, int timeout_s, pl_faas **out,
                          pl_err *err)
{
    char self[1024], cmd[1100], log[1100];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return pl_err_set(err, PL_ERR_IO, "cannot find this program's path: %s", strerror(errno));
    self[len] = '\0';
    /* Functions share this machine's cores (on Lambda each has its own):
     * passive OpenMP waits keep idle threads from spinning on busy cores.
     * GnuTLS (pulled in by libcurl's dependencies, unused: curl uses
     * OpenSSL) skips its start-up work: part of every cold start. */
    snprintf(cmd, sizeof cmd, "env OMP_WAIT_POLICY=PASSIVE GNUTLS_NO_IMPLICIT_INIT=1 '%s' function", self);
    snprintf(log, sizeof log, "%s/metrics/functions.jsonl", L->run_dir);
    pl_faas_config fc;
    memset(&fc, 0, sizeof fc);
    fc.log_path = log;
    int st = pl_faas_create(&fc, out, err);
    pl_faas_function fn;
    memset(&fn, 0, sizeof fn);
    fn.name = name;
    fn.command = cmd;
    fn.memory_mb = memory_mb;
    fn.timeout_s = timeout_s;
    fn.concurrency = concurrency;
    fn.idle_timeout_s = 60;
    if (!st)
        st = pl_faas_add_function(*out, &fn, err);
    if (!st)
        snprintf(L->faas_url, sizeof L->faas_url, "http://127.0.0.1:%d", pl_faas_port(*out));
    return st;
}

/* Invocations, cold starts and GB-seconds of the run's functions. */
static void add_function_stats(cJSON *sum, pl_faas *faas)
{
    size_t n = pl_faas_report_count(faas), cold = 0;
    double gb_s = 0, billed_ms = 0, init_ms = 0;
    pl_faas_report r;
    for (size_t i = 0; i < n; i++)
        if (pl_faas_reports(faas, i, &r, 1) == 1) {
            cold += (size_t)r.cold;
            billed_ms += (double)r.billed_ms;
            init_ms += r.init_ms;
            gb_s += (double)r.billed_ms / 1000.0 * r.memory_mb / 1024.0;
        }
    cJSON_AddNumberToObject(sum, "invocations", (double)n);
    cJSON_AddNumberToObject(sum, "cold_starts", (double)cold);
    cJSON_AddNumberToObject(sum, "function_billed_s", billed_ms / 1000.0);
    cJSON_AddNumberToObject(sum, "function_init_s", init_ms / 1000.0);
    cJSON_AddNumberToObject(sum, "lambda_gb_s", gb_s);
}

/* Summary table on stderr, JSON line on stdout; returns the exit code. */
static int summarize(const launch *L, double seconds, pl_faas *faas)
{
    cJSON *res[MAX_PEERS] = {0};
    int failed = 0, identical = 1, steps = 0;
    double acc = NAN, sum_compute = 0, sum_sync = 0;
    double sent = 0, recv = 0;
    const char *chk0 = NULL;
    fprintf(stderr, "\n%-5s %-8s %-9s %-6s %-9s %-9s %-9s %-12s %s\n", "peer", "status", "test_acc", "steps",
            "seconds", "compute_s", "sync_s", "MB_sent", "model_checksum");
    for (int i = 0; i < L->peers; i++) {
        child *k = &g_kids[i];
        int ok = WIFEXITED(k->status) && WEXITSTATUS(k->status) == 0;
        res[i] = ok ? cJSON_Parse(k->out) : NULL;
        cJSON *r = res[i];
        const cJSON *c = r ? cJSON_GetObjectItem(r, "model_checksum") : NULL;
        if (!r || !cJSON_IsString(c)) {
            failed++;
            identical = 0;
            fprintf(stderr, "%-5d %-8s\n", i, WIFSIGNALED(k->status) ? "killed" : "failed");
            continue;
        }
        if (!chk0)
            chk0 = c->valuestring;
        else if (strcmp(chk0, c->valuestring))
            identical = 0;
        double a = cJSON_GetNumberValue(cJSON_GetObjectItem(r, "test_accuracy"));
        double s = cJSON_GetNumberValue(cJSON_GetObjectItem(r, "seconds"));
        double cs = cJSON_GetNumberValue(cJSON_GetObjectItem(r, "compute_s"));
        double ss = cJSON_GetNumberValue(cJSON_GetObjectItem(r, "sync_s"));
        double bs = cJSON_GetNumberValue(cJSON_GetObjectItem(r, "bytes_sent"));
        double br = cJSON_GetNumberValue(cJSON_GetObjectItem(r, "bytes_recv"));
        int st = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(r, "steps"));
        if (i == 0 || isnan(acc))
            acc = a, steps = st;
        sum_compute += cs, sum_sync += ss, sent += bs, recv += br;
        fprintf(stderr, "%-5d %-8s %-9.4f %-6d %-9.2f %-9.2f %-9.2f %-12.2f %s\n", i, "ok", a, st, s, cs, ss,
                bs / 1e6, c->valuestring);
    }
    int n_ok = L->peers - failed;
    cJSON *sum = cJSON_CreateObject();
    cJSON_AddStringToObject(sum, "mode", L->mode);
    cJSON_AddNumberToObject(sum, "peers", L->peers);
    if (isfinite(acc))
        cJSON_AddNumberToObject(sum, "test_accuracy", acc);
    else
        cJSON_AddNullToObject(sum, "test_accuracy");
    cJSON_AddNumberToObject(sum, "seconds", seconds);
    cJSON_AddNumberToObject(sum, "steps", steps);
    cJSON_AddNumberToObject(sum, "bytes_sent", sent);
    cJSON_AddNumberToObject(sum, "bytes_recv", recv);
    cJSON_AddNumberToObject(sum, "compute_s_mean", n_ok ? sum_compute / n_ok : 0);
    cJSON_AddNumberToObject(sum, "sync_s_mean", n_ok ? sum_sync / n_ok : 0);
    cJSON_AddBoolToObject(sum, "identical_models", identical && !failed);
    if (identical && !failed && chk0)
        cJSON_AddStringToObject(sum, "model_checksum", chk0);
    cJSON_AddNumberToObject(sum, "failed_peers", failed);
    cJSON_AddStringToObject(sum, "run_dir", L->run_dir);
    if (faas)
        add_function_stats(sum, faas);
    char *s = cJSON_PrintUnformatted(sum);
    if (s)
        printf("%s\n", s);
    fflush(stdout);
    free(s);
    cJSON_Delete(sum);
    for (int i = 0; i < L->peers; i++)
        cJSON_Delete(res[i]);
    if (failed)
        fprintf(stderr, "peerless run: %d of %d peers failed (their errors are above)\n", failed, L->peers);
    return failed ? 1 : 0;
}

int pl_cmd_run(int argc, char **argv)
{
    launch L;
    memset(&L, 0, sizeof L);
    pl_peer_config c;
    pl_peer_config_init(&c);
    const char *evaluation = "true", *accumulate = NULL, *data_dir = NULL;
    int fn_memory = 1024, fn_concurrency = 0;
    const char *peer_cpu = NULL, *functions = "local";
    L.peers = 2;
    L.mode = "p2p";
    L.run = "peerless";
    pl_flag flags[64];
    int n = pl_peer_flags(&c, flags, 48, &evaluation, &accumulate, &L.mode, &functions);
    pl_flag extra[] = {
        {"peers", PL_FLAG_INT, &L.peers, 1, MAX_PEERS, "N", "number of local peer processes (default 2)", 0},
        {"peer-cpu", PL_FLAG_STR, &peer_cpu, 0, -1, "CORES[,...]", "CPU share of each peer in cores, e.g. 0.25,1,1,1 (cgroup v1)", 0},
        {"function-memory", PL_FLAG_INT, &fn_memory, 128, 10240, "MB", "serverless: memory limit per function (default 1024)", 0},
        {"function-concurrency", PL_FLAG_INT, &fn_concurrency, 0, 1000, "C", "serverless: function environments at most (default peers x batches)", 0},
        {"run-dir", PL_FLAG_STR, &L.run_dir, 0, -1, "DIR", "where data, metrics and checkpoints go (default runs/RUN)", 0},
        {"data-dir", PL_FLAG_STR, &data_dir, 0, -1, "DIR", "dataset directory (default: the dataset's place)", 0},
        {"threads", PL_FLAG_INT, &L.threads, 0, 1024, "N", "threads per peer (default: cores / peers, at least 1)", 0},
    };
    memcpy(flags + n, extra, sizeof extra);
    n += (int)(sizeof extra / sizeof extra[0]);
    int help = 0;
    pl_err err = {0, ""};
    int st = pl_args_parse("run", flags, n, argc, argv, &help, &err);
    if (!st && help) {
        pl_args_usage("run", "Run N local peers on embedded defaults (run directory store, TCP between peers).", flags, n);
        return 0;
    }
    L.run = c.run;
    if (!st)
        st = pl_peer_parse_mode(L.mode, &c, &err);
    if (!st)
        st = pl_peer_parse_functions(functions, &c, &err);
    if (!st && c.serverless && c.batches == 0)
        c.batches = 8;
    if (!st)
        st = setup_peer_cpu(&L, peer_cpu, &err);
    if (!st)
        st = pl_peer_parse_accumulate(accumulate, &c, &err);
    if (!st)
        st = pl_peer_check_names(&c, &err);
    char run_dir[1024];
    snprintf(run_dir, sizeof run_dir, "%s", L.run_dir ? L.run_dir : "");
    if (!L.run_dir)
        snprintf(run_dir, sizeof run_dir, "runs/%s", L.run);
    L.run_dir = run_dir;
    char metrics_dir[1100];
    snprintf(metrics_dir, sizeof metrics_dir, "%s/metrics", run_dir);
    if (!st && (mkdirs(run_dir) || mkdirs(metrics_dir)))
        st = pl_err_set(&err, PL_ERR_IO, "cannot create run directory %s: %s", run_dir, strerror(errno));
    if (L.threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        L.threads = cores / L.peers > 1 ? (int)(cores / L.peers) : 1;
    }
    /* Absolute, so functions started elsewhere find the same store. */
    char abs_dir[1024];
    if (!st && realpath(run_dir, abs_dir))
        snprintf(run_dir, sizeof run_dir, "%s", abs_dir);
    snprintf(L.store_url, sizeof L.store_url, "file://%s/store", run_dir);
    L.batches = c.batches;
    snprintf(L.batches_arg, sizeof L.batches_arg, "%d", c.batches);
    /* Partition the data for this run. */
    pl_store *store = NULL;
    pl_split_config sc = {c.dataset, data_dir, L.run, L.peers, c.batches, c.seed, 0.1};
    char report[512];
    if (!st)
        st = pl_store_open(L.store_url, NULL, &store, &err);
    if (!st)
        st = pl_split_write(store, &sc, report, sizeof report, &err);
    pl_store_close(store);
    size_t used = 0;
    for (int i = 0; !st && i < L.peers; i++) {
        int port = free_port();
        if (port < 0)
            st = pl_err_set(&err, PL_ERR_IO, "no free TCP port on 127.0.0.1: %s", strerror(errno));
        used += (size_t)snprintf(L.transport + used, sizeof L.transport - used, "%s127.0.0.1:%d",
                                 i ? "," : "tcp://", port);
    }
    if (st) {
        fprintf(stderr, "peerless run: %s\n", err.msg);
        cleanup_peer_cpu(&L);
        return 1;
    }
    fprintf(stderr, "peerless run: %s\n", report);
    pl_faas *faas = NULL;
    if (c.serverless && !c.functions_aws && start_platform(&L, fn_memory, fn_concurrency ? fn_concurrency : L.peers * c.batches,
                                       c.function_name, c.function_timeout_s, &faas, &err)) {
        fprintf(stderr, "peerless run: %s\n", err.msg);
        cleanup_peer_cpu(&L);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    double t0 = pl_now();
    g_nkids = L.peers;
    for (int i = 0; i < L.peers; i++)
        if (spawn(&L, i, argc, argv)) {
            fprintf(stderr, "peerless run: cannot start peer %d: %s\n", i, strerror(errno));
            on_signal(0);
            L.peers = i;
            break;
        }
    supervise(&L);
    if (g_stop > 0)
        fprintf(stderr, "peerless run: interrupted; peers stopped\n");
    int rc = summarize(&L, pl_now() - t0, faas);
    pl_faas_destroy(faas);
    cleanup_peer_cpu(&L);
    return rc;
}
