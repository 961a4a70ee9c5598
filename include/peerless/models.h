/* models.h — the model zoo: named architectures built on nn.h.
 *
 * Small models of our own (exact layers in docs/models.md):
 *   mlp     flatten -> fc1 (256) -> relu -> fc2 (128) -> relu -> fc3 (K)
 *   lenet5  conv1 5x5 (6) -> bn1 -> relu -> maxpool 2 -> conv2 5x5 (16) -> bn2 ->
 *           relu -> maxpool 2 -> flatten -> fc1 (120) -> bn3 -> relu -> fc2 (84) ->
 *           bn4 -> relu -> fc3 (K)   (32x32 input; 28x28 data is resized)
 *
 * Exact re-implementations of torchvision 0.14 (same layers, forward, and
 * parameter/buffer names, shapes and order as
 * torchvision.models.NAME(num_classes=K).state_dict(); batch-norm eps and
 * momentum and dropout as torchvision; torchvision's weight initialisation):
 *   vgg11               configuration "A", adaptive avg pool 7x7, 3 linears
 *   squeezenet1_1       fire modules, ceil-mode max pools, conv classifier
 *   mobilenet_v3_small  inverted residuals with squeeze-excitation, hardswish
 *   resnet18            BasicBlock x [2, 2, 2, 2]
 * Layer lists, input sizes and parameter counts: docs/models.md.
 */
#ifndef PEERLESS_MODELS_H
#define PEERLESS_MODELS_H

#include "peerless/data.h"
#include "peerless/nn.h"

/* A model's default training recipe, used by `peerless train` for every
 * setting the user does not give (NULL / 0 / negative: the command's own
 * default). Chosen so a short run on 28x28 data trains well (docs/models.md). */
typedef struct pl_recipe {
    const char *optimizer;
    double lr;            /* <= 0: the optimizer's default */
    double weight_decay;  /* < 0: the optimizer's default */
    int batch_size;       /* 0: the command's default */
    const char *schedule; /* lr schedule (pl_sched_kind_parse); NULL: the command's */
} pl_recipe;

typedef struct pl_model_info {
    const char *name;
    const char *summary;
    int default_size; /* input side the data is resized to by default (0 = keep) */
    int min_size;     /* smallest input side the architecture accepts */
    int rgb;          /* 1: expects 3 channels (grayscale is repeated) */
    const char *head; /* output module: "<head>.weight" has the class count as dim 0 */
    pl_recipe recipe; /* default training recipe */
} pl_model_info;

/* Registry lookup; NULL if unknown. */
const pl_model_info *pl_models_find(const char *name);
/* Comma-separated list of model names (static string). */
const char *pl_models_list(void);

/* Build, finish and initialise (seed) model `name` for inputs [N, c, h, w]
 * and `num_classes` outputs. *out is owned by the caller
 * (pl_model_destroy). */
int pl_models_build(const char *name, const pl_backend *be, int c, int h, int w, int num_classes,
                    uint64_t seed, pl_model **out, pl_err *err);

/* (Re)initialise a finished model built as `name` from `seed`: PyTorch's
 * defaults (pl_model_init), then the architecture's own scheme (torchvision's
 * for the torchvision models). pl_models_build already does this. */
int pl_models_init(pl_model *m, const char *name, uint64_t seed, pl_err *err);

/* The transform that feeds model `mi` from images [c, h, w] of `dataset`:
 * the dataset's defaults for `split` (normalisation; augmentation for
 * CIFAR-10 training), bilinear resize to input_size (0: the model's default
 * size) and gray -> RGB for RGB models. Used identically by train, peers
 * and functions, so all see the same inputs. */
int pl_models_transform(const pl_model_info *mi, const char *dataset, pl_split split, int c, int h, int w,
                        int input_size, pl_transform *tf, pl_err *err);

#endif
