/* nn.h — layers and models: a graph of layers over one compute backend.
 *
 * A pl_model is a directed acyclic graph of layer nodes, added in
 * topological order by the builder functions below (node ids are ints;
 * 0 is the input). Parameters, gradients and buffers of the whole model
 * each live in ONE flat vector (pl_flat) with named views whose names,
 * shapes and order follow PyTorch's state_dict() ("features.0.weight").
 *
 * Lifecycle:
 *   m = pl_model_create(backend, c, h, w)    input shape for building
 *   x = 0; x = pl_nn_conv2d(m, "conv1", x, ...); ...  builders; errors are
 *                                             sticky and reported by finish
 *   pl_model_finish(m, err)                   allocates params/grads/buffers
 *   pl_model_init(m, seed)                    PyTorch default initialisation
 *   loop: pl_model_forward(m, x, n, mode, err)
 *         pl_model_loss(m, targets, kind, &loss, err)   sets d(output)
 *         pl_model_zero_grad(m); pl_model_backward(m, err)  (backward ADDS)
 *   pl_model_destroy(m)
 *
 * Workspaces (activations, gradients, backend plans) are allocated once per
 * input shape and cached (a few shapes at a time, e.g. the training batch,
 * the last partial batch and the evaluation batch).
 */
#ifndef PEERLESS_NN_H
#define PEERLESS_NN_H

#include <stddef.h>
#include <stdint.h>

#include "peerless/backend.h"
#include "peerless/rng.h"
#include "peerless/status.h"
#include "peerless/tensor.h"

typedef struct pl_model pl_model;

/* Forward modes (bit flags). */
enum {
    PL_MODE_EVAL = 0,
    PL_MODE_BN_BATCH = 1, /* batch norm uses batch statistics and updates running stats */
    PL_MODE_DROPOUT = 2,  /* dropout active */
    PL_MODE_TRAIN = PL_MODE_BN_BATCH | PL_MODE_DROPOUT,
};

typedef enum pl_loss_kind {
    PL_LOSS_CROSS_ENTROPY = 0, /* log_softmax + nll on raw logits */
    PL_LOSS_NLL = 1,           /* output already holds log-probabilities */
} pl_loss_kind;

/* Parse "cross_entropy" / "CrossEntropyLoss" / "ce" / "nll" / "NLLLoss". */
int pl_loss_parse(const char *name, pl_loss_kind *out, pl_err *err);

/* ---- building ---- */

/* Create an empty model whose input is [N, c, h, w]. The backend is
 * borrowed (static). NULL on allocation failure. */
pl_model *pl_model_create(const pl_backend *be, int c, int h, int w);
void pl_model_destroy(pl_model *m); /* NULL is a no-op */

typedef struct pl_conv_opts {
    int kh, kw;          /* kernel */
    int stride_h, stride_w; /* 0 means 1 */
    int pad_h, pad_w;
    int dil_h, dil_w;    /* 0 means 1 */
    int groups;          /* 0 means 1 */
    int bias;            /* 1: with bias */
} pl_conv_opts;

/* Square kernel convenience: k, stride, padding, groups, bias. */
pl_conv_opts pl_conv(int k, int stride, int pad, int groups, int bias);

/* Each builder returns the new node's id (>= 0) or a negative status; after
 * the first error every builder returns that error and pl_model_finish
 * reports it. `name` is the PyTorch module path ("features.0") used to name
 * parameters ("features.0.weight"); layers without parameters take no name. */
int pl_nn_conv2d(pl_model *m, const char *name, int x, int c_out, pl_conv_opts o);
int pl_nn_batchnorm2d(pl_model *m, const char *name, int x, float eps, float momentum);
int pl_nn_linear(pl_model *m, const char *name, int x, int out_features, int bias);
int pl_nn_act(pl_model *m, int x, pl_act kind);
int pl_nn_maxpool2d(pl_model *m, int x, int k, int stride, int pad, int ceil_mode);
int pl_nn_avgpool2d(pl_model *m, int x, int k, int stride, int pad, int ceil_mode,
                    int count_include_pad);
int pl_nn_adaptive_avgpool2d(pl_model *m, int x, int h_out, int w_out);
int pl_nn_dropout(pl_model *m, int x, float p);
int pl_nn_flatten(pl_model *m, int x);                 /* [N, ...] -> [N, prod] */
int pl_nn_concat(pl_model *m, const int *xs, int n);   /* along channels */
int pl_nn_add(pl_model *m, int a, int b);              /* same shapes */
int pl_nn_chmul(pl_model *m, int x, int s);            /* x [N,C,H,W] * s [N,C,1,1] */
int pl_nn_logsoftmax(pl_model *m, int x);              /* over dim 1 of [N, K] */

/* Allocate the flat parameter, gradient and buffer vectors. The last node
 * added is the output and must be [N, K]. */
int pl_model_finish(pl_model *m, pl_err *err);

/* PyTorch's default initialisation for every layer (kaiming-uniform a=sqrt(5)
 * weights, uniform(+-1/sqrt(fan_in)) biases, BN weight 1 bias 0, running
 * var 1), drawn from pl_rng seeded by `seed`. Also seeds dropout. */
void pl_model_init(pl_model *m, uint64_t seed);
/* Reseed the dropout RNG (e.g. per step, for reproducible distributed runs). */
void pl_model_seed_dropout(pl_model *m, uint64_t seed, uint64_t stream);

/* ---- state ---- */

/* Borrowed views; valid until pl_model_destroy. Buffers hold BN running
 * mean/var and num_batches_tracked (kind PL_VIEW_I64) in PyTorch order. */
pl_flat *pl_model_params(pl_model *m);
pl_flat *pl_model_grads(pl_model *m);
pl_flat *pl_model_buffers(pl_model *m);
const pl_backend *pl_model_backend(const pl_model *m);
/* Switch backend (frees cached workspaces). */
void pl_model_set_backend(pl_model *m, const pl_backend *be);
int pl_model_num_classes(const pl_model *m);
void pl_model_input_shape(const pl_model *m, int *c, int *h, int *w);

/* ---- running ---- */

/* Forward x [n, c, h, w] (h, w may differ from the build shape when the
 * model allows it). The output stays in the workspace until the next call. */
int pl_model_forward(pl_model *m, const float *x, int n, int h, int w, int mode, pl_err *err);
/* Output of the last forward: [n, K] logits (borrowed). */
const float *pl_model_output(const pl_model *m, int *n, int *k);
/* Mean loss over the batch against int32 targets in [0, K); sets the
 * gradient of the output for backward. A target out of range is an error. */
int pl_model_loss(pl_model *m, const int32_t *targets, pl_loss_kind kind, float *loss, pl_err *err);
/* Same, but the output gradient is that of grad_scale * mean loss (e.g.
 * grad_scale = n gives the gradient of the summed loss, which peers add up
 * across batches and weight by sample counts). *loss is still the mean. */
int pl_model_loss_scaled(pl_model *m, const int32_t *targets, pl_loss_kind kind, float grad_scale, float *loss,
                         pl_err *err);
/* Back-propagate the output gradient set by pl_model_loss (or
 * pl_model_set_output_grad); ADDS into pl_model_grads. */
int pl_model_backward(pl_model *m, pl_err *err);
/* Set d(output) directly (for tests): dy [n, K] copied. */
int pl_model_set_output_grad(pl_model *m, const float *dy, pl_err *err);
void pl_model_zero_grad(pl_model *m);
/* FNV-1a checksum of the parameters followed by the buffers: equal
 * checksums mean identical models (weights and batch-norm statistics). */
uint64_t pl_model_checksum(pl_model *m);
/* Number of correct argmax predictions in the last forward. */
int pl_model_count_correct(const pl_model *m, const int32_t *targets);

/* Print the layer table (kind, output shape, parameter count) to a FILE*. */
void pl_model_summary(const pl_model *m, void *file);

#endif
