/* zoo_vgg.c — VGG-11 (configuration "A", no batch norm) exactly as
 * torchvision 0.14's torchvision.models.vgg11. */
#include <stdio.h>

#include "nn/zoo.h"

/* Configuration "A": output channels of each 3x3 conv, 0 = 2x2 max pool. */
static const int vgg11_cfg[] = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};

/* features: [N,3,H,W] -> [N,512,H/32,W/32]; indices follow nn.Sequential
 * (conv, relu, ... pool), so names are "features.<index>". */
static int vgg_features(pl_model *m, int x)
{
    char name[32];
    int idx = 0;
    for (size_t i = 0; i < sizeof vgg11_cfg / sizeof vgg11_cfg[0]; i++) {
        if (vgg11_cfg[i] == 0) {
            x = pl_nn_maxpool2d(m, x, 2, 2, 0, 0);
            idx++;
            continue;
        }
        snprintf(name, sizeof name, "features.%d", idx);
        x = pl_nn_conv2d(m, name, x, vgg11_cfg[i], pl_conv(3, 1, 1, 1, 1));
        x = pl_nn_act(m, x, PL_ACT_RELU);
        idx += 2;
    }
    return x;
}

/* vgg11: features -> adaptive avg pool 7x7 (upsamples below 224x224 input)
 * -> flatten [N,25088] -> 4096 -> relu -> dropout -> 4096 -> relu ->
 * dropout -> K */
int pl_zoo_vgg11(pl_model *m, int k)
{
    int x = vgg_features(m, 0);
    x = pl_nn_adaptive_avgpool2d(m, x, 7, 7);
    x = pl_nn_flatten(m, x);
    x = pl_nn_linear(m, "classifier.0", x, 4096, 1);
    x = pl_nn_act(m, x, PL_ACT_RELU);
    x = pl_nn_dropout(m, x, 0.5f);
    x = pl_nn_linear(m, "classifier.3", x, 4096, 1);
    x = pl_nn_act(m, x, PL_ACT_RELU);
    x = pl_nn_dropout(m, x, 0.5f);
    return pl_nn_linear(m, "classifier.6", x, k, 1);
}

/* VGG.__init__ (init_weights=True). */
const pl_zoo_scheme pl_zoo_vgg_scheme = {
    .conv_weight = PL_ZOO_KAIMING_NORMAL_FAN_OUT,
    .conv_bias = PL_ZOO_ZERO,
    .linear_weight = PL_ZOO_NORMAL_001,
    .linear_bias = PL_ZOO_ZERO,
    .bn_weight = PL_ZOO_ONE,
    .bn_bias = PL_ZOO_ZERO,
};
