/* zoo.h — private to src/nn: the torchvision model builders (zoo_*.c) and
 * their torchvision weight initialisation (zoo_init.c), registered in
 * models.c. Not installed.
 *
 * Each builder adds the layers of torchvision 0.14's model to an empty
 * model (input node 0) in the order torchvision registers its modules, so
 * parameter and buffer views come out in state_dict() order with
 * state_dict() names. It returns the output node id or the sticky build
 * error (reported again by pl_model_finish). */
#ifndef PEERLESS_NN_ZOO_H
#define PEERLESS_NN_ZOO_H

#include <stdint.h>

#include "peerless/nn.h"

int pl_zoo_vgg11(pl_model *m, int num_classes);
int pl_zoo_squeezenet1_1(pl_model *m, int num_classes);
int pl_zoo_mobilenet_v3_small(pl_model *m, int num_classes);
int pl_zoo_resnet18(pl_model *m, int num_classes);

/* How one kind of tensor is filled (gain sqrt(2) = kaiming's for relu and
 * for leaky_relu with a = 0, the torch.nn.init default). */
typedef enum pl_zoo_fill {
    PL_ZOO_KEEP = 0,               /* leave PyTorch's default initialisation */
    PL_ZOO_ZERO,                   /* constant 0 */
    PL_ZOO_ONE,                    /* constant 1 */
    PL_ZOO_KAIMING_NORMAL_FAN_OUT, /* normal(0, sqrt(2 / fan_out)) */
    PL_ZOO_KAIMING_UNIFORM_FAN_IN, /* uniform(+-sqrt(6 / fan_in)) */
    PL_ZOO_NORMAL_001,             /* normal(0, 0.01) */
} pl_zoo_fill;

/* A model's initialisation scheme, by module kind. A parameter is a
 * batch-norm one when a buffer "<module>.running_mean" exists; otherwise a
 * 4-D weight (and its bias) belongs to a convolution and a 2-D weight (and
 * its bias) to a linear layer. `special` names one module ("classifier.1")
 * whose weight gets `special_weight` instead. */
typedef struct pl_zoo_scheme {
    pl_zoo_fill conv_weight, conv_bias, linear_weight, linear_bias, bn_weight, bn_bias;
    const char *special;
    pl_zoo_fill special_weight;
} pl_zoo_scheme;

extern const pl_zoo_scheme pl_zoo_vgg_scheme, pl_zoo_squeezenet_scheme, pl_zoo_mobilenet_scheme,
    pl_zoo_resnet_scheme;

/* Apply `s` to every parameter view of the finished model `m`, drawing from
 * pl_rng seeded by (seed, a stream of its own). Meant to run after
 * pl_model_init, whose defaults PL_ZOO_KEEP leaves in place. */
void pl_zoo_init(pl_model *m, uint64_t seed, const pl_zoo_scheme *s);

#endif
