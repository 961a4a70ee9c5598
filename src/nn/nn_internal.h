/* nn_internal.h — the model graph's private structures, shared by graph.c
 * (building, workspaces, forward/backward driver) and layers.c (one vtable
 * per layer kind). Not installed; not part of the public API. */
#ifndef PEERLESS_NN_INTERNAL_H
#define PEERLESS_NN_INTERNAL_H

#include "peerless/nn.h"

#define PL_WS_MAX 4

/* Per node, per workspace (one workspace per input shape). */
typedef struct pl_nstate {
    pl_shape shape; /* output shape for this workspace's input */
    float *y;       /* output; owned unless the layer aliases its input */
    float *dy;      /* d loss / d output, lent from the workspace's pool while live;
                       NULL for the input node and outside backward */
    void *priv;     /* layer-private per-shape state (plans, caches) */
} pl_nstate;

typedef struct pl_ws {
    pl_shape in;      /* input shape this workspace serves ([0] dims = unused) */
    pl_nstate *st;    /* [nnodes] */
    int has_grads;    /* an output gradient is set (by the loss) */
    /* Gradient buffers are lent to nodes only while live: from the first
     * consumer's backward until the node's own backward has run. */
    float **bufs;     /* every gradient buffer allocated here (owned) */
    size_t *bufcap;   /* capacity of each, in floats */
    char *busy;       /* 1 while lent */
    int nbufs;
    uint64_t last_use;
    float *loss_buf;  /* [n, K] log-probabilities for the loss */
    float *loss_grad; /* [n, K] */
} pl_ws;

typedef struct pl_node pl_node;

/* One layer kind. Every function gets the node and the workspace; inputs'
 * states are ws->st[nd->in[i]]. forward overwrites st.y; backward ADDS into
 * inputs' dy (skipping NULL) and into the parameter gradients. */
typedef struct pl_layer_ops {
    const char *kind;
    int alias; /* output shares input 0's buffers (flatten) */
    int (*infer)(const pl_model *m, const pl_node *nd, const pl_shape *in, pl_shape *out, pl_err *err);
    int (*prepare)(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err);      /* optional */
    void (*release)(void *priv);                                           /* optional */
    int (*forward)(pl_model *m, pl_node *nd, pl_ws *ws, int mode, pl_err *err);
    int (*backward)(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err);
    void (*init)(pl_model *m, pl_node *nd, pl_rng *r);                     /* optional */
} pl_layer_ops;

typedef union pl_layer_cfg {
    struct { int c_out; pl_conv_opts o; } conv;
    struct { float eps, momentum; } bn;
    struct { int out, bias; } linear;
    struct { pl_act kind; } act;
    struct { int k, stride, pad, ceil_mode, count_include_pad; } pool;
    struct { int h, w; } adapool;
    struct { float p; } dropout;
} pl_layer_cfg;

struct pl_node {
    const pl_layer_ops *ops;
    int in[8];
    int nin;
    char *name;       /* owned; NULL for parameterless layers */
    int p[2];         /* parameter view indices (weight, bias), -1 if none */
    int b[3];         /* buffer view indices (running_mean, running_var, num_batches_tracked) */
    pl_layer_cfg cfg;
    pl_shape build_shape; /* output shape at the build input (batch 1) */
};

struct pl_model {
    const pl_backend *be;
    int c, h, w;
    pl_node *nodes;
    int nnodes, cap;
    int status;       /* sticky build error */
    pl_err err;
    int finished;
    pl_flat params, grads, buffers;
    pl_ws ws[PL_WS_MAX];
    uint64_t tick;
    pl_ws *cur;       /* workspace of the last forward */
    pl_rng drop_rng;
};

/* Layer vtables (layers.c). */
extern const pl_layer_ops pl_layer_input, pl_layer_conv2d, pl_layer_bn, pl_layer_linear,
    pl_layer_act, pl_layer_maxpool, pl_layer_avgpool, pl_layer_adapool, pl_layer_dropout,
    pl_layer_flatten, pl_layer_concat, pl_layer_add, pl_layer_chmul, pl_layer_logsoftmax;

/* Parameter / buffer pointers of a node (valid after finish). */
float *pl_node_param(pl_model *m, const pl_node *nd, int i);
float *pl_node_grad(pl_model *m, const pl_node *nd, int i);
float *pl_node_buffer(pl_model *m, const pl_node *nd, int i);

#endif
