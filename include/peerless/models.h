/* models.h — the model zoo: named architectures built on nn.h.
 *
 * Small models of our own (exact layers in docs/models.md):
 *   mlp     flatten -> fc1 (256) -> relu -> fc2 (128) -> relu -> fc3 (K)
 *   lenet5  conv1 5x5 (6) -> relu -> maxpool 2 -> conv2 5x5 (16) -> relu ->
 *           maxpool 2 -> flatten -> fc1 (120) -> relu -> fc2 (84) -> relu -> fc3 (K)
 */
#ifndef PEERLESS_MODELS_H
#define PEERLESS_MODELS_H

#include "peerless/nn.h"

typedef struct pl_model_info {
    const char *name;
    const char *summary;
    int default_size; /* input side the data is resized to by default (0 = keep) */
    int min_size;     /* smallest input side the architecture accepts */
    int rgb;          /* 1: expects 3 channels (grayscale is repeated) */
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

#endif
