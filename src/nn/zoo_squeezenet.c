/* zoo_squeezenet.c — SqueezeNet 1.1 exactly as torchvision 0.14's
 * torchvision.models.squeezenet1_1. */
#include <stdio.h>

#include "nn/zoo.h"

/* Fire module "features.<idx>": x [N,C,H,W] -> squeeze 1x1 (s) -> relu ->
 * concat(expand1x1 (e) -> relu, expand3x3 pad 1 (e) -> relu) [N,2e,H,W]. */
static int fire(pl_model *m, int idx, int x, int s, int e)
{
    char name[48];
    snprintf(name, sizeof name, "features.%d.squeeze", idx);
    x = pl_nn_conv2d(m, name, x, s, pl_conv(1, 1, 0, 1, 1));
    x = pl_nn_act(m, x, PL_ACT_RELU);
    int br[2];
    snprintf(name, sizeof name, "features.%d.expand1x1", idx);
    br[0] = pl_nn_act(m, pl_nn_conv2d(m, name, x, e, pl_conv(1, 1, 0, 1, 1)), PL_ACT_RELU);
    snprintf(name, sizeof name, "features.%d.expand3x3", idx);
    br[1] = pl_nn_act(m, pl_nn_conv2d(m, name, x, e, pl_conv(3, 1, 1, 1, 1)), PL_ACT_RELU);
    return pl_nn_concat(m, br, 2);
}

/* squeezenet1_1: [N,3,H,W] -> conv 3x3/2 (64) -> relu -> maxpool 3/2 ceil
 * -> fire x2 -> maxpool -> fire x2 -> maxpool -> fire x4 [N,512,h,w] ->
 * dropout -> conv 1x1 (K) -> relu -> adaptive avg pool 1 -> flatten [N,K] */
int pl_zoo_squeezenet1_1(pl_model *m, int k)
{
    int x = pl_nn_conv2d(m, "features.0", 0, 64, pl_conv(3, 2, 0, 1, 1));
    x = pl_nn_act(m, x, PL_ACT_RELU);
    x = pl_nn_maxpool2d(m, x, 3, 2, 0, 1);
    x = fire(m, 3, x, 16, 64);
    x = fire(m, 4, x, 16, 64);
    x = pl_nn_maxpool2d(m, x, 3, 2, 0, 1);
    x = fire(m, 6, x, 32, 128);
    x = fire(m, 7, x, 32, 128);
    x = pl_nn_maxpool2d(m, x, 3, 2, 0, 1);
    x = fire(m, 9, x, 48, 192);
    x = fire(m, 10, x, 48, 192);
    x = fire(m, 11, x, 64, 256);
    x = fire(m, 12, x, 64, 256);
    x = pl_nn_dropout(m, x, 0.5f);
    x = pl_nn_conv2d(m, "classifier.1", x, k, pl_conv(1, 1, 0, 1, 1));
    x = pl_nn_act(m, x, PL_ACT_RELU);
    x = pl_nn_adaptive_avgpool2d(m, x, 1, 1);
    return pl_nn_flatten(m, x);
}

/* SqueezeNet.__init__: the final conv is normal(0, 0.01), the others
 * kaiming_uniform_ (a = 0, fan_in); every conv bias 0. */
const pl_zoo_scheme pl_zoo_squeezenet_scheme = {
    .conv_weight = PL_ZOO_KAIMING_UNIFORM_FAN_IN,
    .conv_bias = PL_ZOO_ZERO,
    .linear_weight = PL_ZOO_KEEP,
    .linear_bias = PL_ZOO_KEEP,
    .bn_weight = PL_ZOO_ONE,
    .bn_bias = PL_ZOO_ZERO,
    .special = "classifier.1",
    .special_weight = PL_ZOO_NORMAL_001,
};
