/* test_peer.c — data-parallel training is large-batch training:
 * 4 peers (threads, TCP on loopback) with batch b each must end with the
 * same model as ONE process that trains on the union of the 4 peers' batches
 * (batch 4b) step by step — up to float summation order. Also: all peers end
 * bit-identical, and the split objects partition the dataset. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "peer/peer_internal.h"
#include "peerless/models.h"
#include "peerless/optim.h"
#include "peerless/safetensors.h"
#include "test.h"

enum { PEERS = 4, BATCH = 8 };

typedef struct job {
    pl_peer_config cfg;
    pl_peer_result res;
    int status;
    pl_err err;
} job;

static void *run_peer(void *arg)
{
    job *j = arg;
    j->status = pl_peer_run(&j->cfg, &j->res, &j->err);
    return NULL;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/* The single-process reference: per step, the concatenation of every
 * rank's next batch (same loaders as the peers) in one forward/backward. */
static void reference(pl_store *st, const char *run, const char *model_name, float *out, size_t nparams)
{
    pl_err err = {0, ""};
    pl_dataset *ds[PEERS];
    pl_loader *ld[PEERS];
    char key[256];
    for (int r = 0; r < PEERS; r++) {
        PL_CHECK(!pl_shard_load(st, pl_peer_key(key, sizeof key, run, "train", r, 0), &ds[r], &err), "%s", err.msg);
        pl_loader_config lc;
        memset(&lc, 0, sizeof lc);
        pl_transform_defaults(&lc.tf, "synthetic", PL_SPLIT_TRAIN, NULL);
        int side = pl_models_find(model_name)->default_size;
        if (side && side != pl_dataset_get_info(ds[r]).h)
            lc.tf.resize_h = lc.tf.resize_w = side;
        lc.batch_size = BATCH;
        lc.shuffle = 1;
        lc.seed = 5u * 1000003u + (uint64_t)r; /* as the peer derives it from --seed 5 */
        size_t n = (size_t)pl_dataset_get_info(ds[r]).n;
        uint32_t *idx = malloc(n * sizeof *idx);
        for (size_t i = 0; i < n; i++)
            idx[i] = (uint32_t)i;
        PL_CHECK(!pl_loader_create(ds[r], idx, n, &lc, &ld[r], &err), "%s", err.msg);
        free(idx);
    }
    int c, h, w;
    pl_loader_out_shape(ld[0], &c, &h, &w);
    pl_model *m = NULL;
    PL_CHECK(!pl_models_build(model_name, pl_backend_fast(), c, h, w, 10, 5, &m, &err), "%s", err.msg);
    pl_optim_config oc = pl_optim_defaults(PL_OPTIM_SGD);
    oc.lr = 0.05;
    oc.momentum = 0.9;
    pl_optim *opt = NULL;
    PL_CHECK(!pl_optim_create(&opt, &oc, pl_model_params(m)->count, &err), "%s", err.msg);
    size_t img = (size_t)c * h * w;
    float *x = malloc(PEERS * BATCH * img * sizeof(float));
    int32_t y[PEERS * BATCH];
    pl_loader_set_epoch(ld[0], 0);
    for (int r = 1; r < PEERS; r++)
        pl_loader_set_epoch(ld[r], 0);
    for (;;) {
        int total = 0, cnt = 0;
        for (int r = 0; r < PEERS; r++) {
            pl_loader_next(ld[r], x + (size_t)total * img, y + total, NULL, &cnt);
            total += cnt;
        }
        if (!total)
            break;
        float l;
        pl_model_zero_grad(m);
        PL_CHECK(!pl_model_forward(m, x, total, h, w, PL_MODE_TRAIN, &err) &&
                     !pl_model_loss(m, y, PL_LOSS_CROSS_ENTROPY, &l, &err) && !pl_model_backward(m, &err),
                 "%s", err.msg);
        pl_optim_step(opt, pl_model_params(m)->data, pl_model_grads(m)->data, pl_model_params(m)->count, &err);
    }
    memcpy(out, pl_model_params(m)->data, nparams * sizeof(float));
    free(x);
    pl_optim_destroy(opt);
    pl_model_destroy(m);
    for (int r = 0; r < PEERS; r++) {
        pl_loader_destroy(ld[r]);
        pl_dataset_destroy(ds[r]);
    }
}

static void check_model(const char *model_name)
{
    pl_err err = {0, ""};
    char dir[512], url[600], transport[256] = "tcp://";
    snprintf(dir, sizeof dir, "%s/peer-%s-%d", pl_test_tmpdir(), model_name, (int)getpid());
    snprintf(url, sizeof url, "file://%s", dir);
    pl_store *st = NULL;
    PL_CHECK(!pl_store_open(url, NULL, &st, &err), "%s", err.msg);
    pl_split_config sc = {"synthetic", NULL, "eq", PEERS, 0, 9, 0.1};
    PL_CHECK(!pl_split_write(st, &sc, NULL, 0, &err), "split: %s", err.msg);
    for (int r = 0; r < PEERS; r++)
        snprintf(transport + strlen(transport), sizeof transport - strlen(transport), "%s127.0.0.1:%d", r ? "," : "",
                 free_port());
    job jobs[PEERS];
    pthread_t th[PEERS];
    for (int r = 0; r < PEERS; r++) {
        memset(&jobs[r], 0, sizeof jobs[r]);
        pl_peer_config *c = &jobs[r].cfg;
        pl_peer_config_init(c);
        c->rank = r;
        c->size = PEERS;
        c->run = "eq";
        c->store_url = url;
        c->transport_url = transport;
        c->model = model_name;
        c->dataset = "synthetic";
        c->batch_size = BATCH;
        c->epochs = 1;
        c->optimizer = "sgd";
        c->lr = 0.05;
        c->momentum = 0.9;
        c->seed = 5;
        c->threads = 1;
        c->peer_timeout_ms = 60000;
        pthread_create(&th[r], NULL, run_peer, &jobs[r]);
    }
    for (int r = 0; r < PEERS; r++) {
        pthread_join(th[r], NULL);
        PL_CHECK(jobs[r].status == PL_OK, "%s peer %d: %s", model_name, r, jobs[r].err.msg);
        PL_CHECK(jobs[r].res.model_checksum == jobs[0].res.model_checksum, "%s: peer %d's model differs from peer 0's",
                 model_name, r);
    }
    /* Peer 0's checkpoint against the single-process reference. */
    char key[256];
    void *blob = NULL;
    size_t len = 0;
    pl_st_reader *rd = NULL;
    PL_CHECK(!pl_store_get(st, pl_peer_key(key, sizeof key, "eq", "checkpoint", 0, 0), &blob, &len, &err) &&
                 !pl_st_open_memory(&rd, blob, len, key, &err),
             "%s", err.msg);
    pl_model *m = NULL;
    int side = pl_models_find(model_name)->default_size ? pl_models_find(model_name)->default_size : 28;
    PL_CHECK(!pl_models_build(model_name, pl_backend_ref(), 1, side, side, 10, 5, &m, &err), "%s", err.msg);
    if (m && rd) {
        pl_flat *flats[2] = {pl_model_params(m), pl_model_buffers(m)};
        PL_CHECK(!pl_st_load_flats(rd, flats, 2, 1, NULL, &err), "%s", err.msg);
        size_t n = pl_model_params(m)->count;
        float *want = calloc(n, sizeof(float));
        pl_backend_set_threads(1); /* like the peers; avoids oversubscribing 2 cores */
        reference(st, "eq", model_name, want, n);
        double e = pl_test_rel_err(pl_model_params(m)->data, want, n);
        printf("%s: 4 peers x batch %d vs one process x batch %d: relative difference %.3g\n", model_name, BATCH,
               PEERS * BATCH, e);
        PL_CHECK(e < 1e-4, "%s: peers and single process differ: %.3g", model_name, e);
        free(want);
    }
    pl_model_destroy(m);
    pl_st_close(rd);
    free(blob);
    pl_store_close(st);
}

int main(void)
{
    /* A model without batch norm: with batch norm each peer normalises with
     * its own batch's statistics, which one large batch does not. */
    check_model("mlp");
    PL_TEST_MAIN();
}
