/* zoo_mobilenet.c — MobileNetV3-Small exactly as torchvision 0.14's
 * torchvision.models.mobilenet_v3_small (width 1.0, no dilation). */
#include <stdio.h>

#include "nn/zoo.h"

/* Every BatchNorm2d of MobileNetV3 (torchvision's norm_layer). */
#define BN_EPS 0.001f
#define BN_MOMENTUM 0.01f
#define ACT_NONE (-1)

/* One inverted residual block (InvertedResidualConfig of Table 2). */
typedef struct bneck {
    int in, k, exp, out, se, hs, stride;
} bneck;

static const bneck small_cfg[] = {
    {16, 3, 16, 16, 1, 0, 2},   {16, 3, 72, 24, 0, 0, 2},   {24, 3, 88, 24, 0, 0, 1},
    {24, 5, 96, 40, 1, 1, 2},   {40, 5, 240, 40, 1, 1, 1},  {40, 5, 240, 40, 1, 1, 1},
    {40, 5, 120, 48, 1, 1, 1},  {48, 5, 144, 48, 1, 1, 1},  {48, 5, 288, 96, 1, 1, 2},
    {96, 5, 576, 96, 1, 1, 1},  {96, 5, 576, 96, 1, 1, 1},
};
#define LAST_CHANNEL 1024

/* torchvision's _make_divisible(v, 8): round to a multiple of 8, at least
 * 8, never more than 10% below v. */
static int make_divisible(int v)
{
    int r = (v + 4) / 8 * 8;
    if (r < 8)
        r = 8;
    if (10 * r < 9 * v)
        r += 8;
    return r;
}

/* Conv2dNormActivation "<name>": conv kxk/stride pad (k-1)/2, groups, no
 * bias ("<name>.0") -> BN ("<name>.1") -> act (or none). */
static int conv_bn_act(pl_model *m, const char *name, int x, int c, int k, int stride, int groups, int act)
{
    char n[80]; /* longer than the callers' names */
    snprintf(n, sizeof n, "%s.0", name);
    x = pl_nn_conv2d(m, n, x, c, pl_conv(k, stride, (k - 1) / 2, groups, 0));
    snprintf(n, sizeof n, "%s.1", name);
    x = pl_nn_batchnorm2d(m, n, x, BN_EPS, BN_MOMENTUM);
    return act == ACT_NONE ? x : pl_nn_act(m, x, (pl_act)act);
}

/* SqueezeExcitation "<name>": x [N,C,H,W] * hardsigmoid(fc2(relu(fc1(
 * avgpool(x))))) with fc1 C -> s, fc2 s -> C 1x1 convs with bias. */
static int squeeze_excite(pl_model *m, const char *name, int x, int c, int s)
{
    char n[80];
    int y = pl_nn_adaptive_avgpool2d(m, x, 1, 1);
    snprintf(n, sizeof n, "%s.fc1", name);
    y = pl_nn_act(m, pl_nn_conv2d(m, n, y, s, pl_conv(1, 1, 0, 1, 1)), PL_ACT_RELU);
    snprintf(n, sizeof n, "%s.fc2", name);
    y = pl_nn_act(m, pl_nn_conv2d(m, n, y, c, pl_conv(1, 1, 0, 1, 1)), PL_ACT_HARDSIGMOID);
    return pl_nn_chmul(m, x, y);
}

/* InvertedResidual "features.<idx>": [expand 1x1 -> BN -> act] ->
 * depthwise kxk/stride -> BN -> act -> [SE] -> project 1x1 -> BN, plus the
 * input when stride is 1 and channels are kept. Sub-modules are numbered
 * "features.<idx>.block.<j>" in the order they exist. */
static int inverted_residual(pl_model *m, int idx, int x, const bneck *b)
{
    char n[64];
    int act = b->hs ? PL_ACT_HARDSWISH : PL_ACT_RELU, j = 0, y = x;
    if (b->exp != b->in) {
        snprintf(n, sizeof n, "features.%d.block.%d", idx, j++);
        y = conv_bn_act(m, n, y, b->exp, 1, 1, 1, act);
    }
    snprintf(n, sizeof n, "features.%d.block.%d", idx, j++);
    y = conv_bn_act(m, n, y, b->exp, b->k, b->stride, b->exp, act);
    if (b->se) {
        snprintf(n, sizeof n, "features.%d.block.%d", idx, j++);
        y = squeeze_excite(m, n, y, b->exp, make_divisible(b->exp / 4));
    }
    snprintf(n, sizeof n, "features.%d.block.%d", idx, j);
    y = conv_bn_act(m, n, y, b->out, 1, 1, 1, ACT_NONE);
    return b->stride == 1 && b->in == b->out ? pl_nn_add(m, y, x) : y;
}

/* mobilenet_v3_small: [N,3,H,W] -> conv 3x3/2 (16) -> BN -> hardswish ->
 * 11 inverted residual blocks -> conv 1x1 (576) -> BN -> hardswish ->
 * adaptive avg pool 1 -> flatten -> linear 1024 -> hardswish -> dropout 0.2
 * -> linear K */
int pl_zoo_mobilenet_v3_small(pl_model *m, int k)
{
    int n = (int)(sizeof small_cfg / sizeof small_cfg[0]);
    int x = conv_bn_act(m, "features.0", 0, small_cfg[0].in, 3, 2, 1, PL_ACT_HARDSWISH);
    for (int i = 0; i < n; i++)
        x = inverted_residual(m, i + 1, x, &small_cfg[i]);
    char name[32];
    snprintf(name, sizeof name, "features.%d", n + 1);
    x = conv_bn_act(m, name, x, 6 * small_cfg[n - 1].out, 1, 1, 1, PL_ACT_HARDSWISH);
    x = pl_nn_adaptive_avgpool2d(m, x, 1, 1);
    x = pl_nn_flatten(m, x);
    x = pl_nn_linear(m, "classifier.0", x, LAST_CHANNEL, 1);
    x = pl_nn_act(m, x, PL_ACT_HARDSWISH);
    x = pl_nn_dropout(m, x, 0.2f);
    return pl_nn_linear(m, "classifier.3", x, k, 1);
}

/* MobileNetV3.__init__: convs kaiming_normal_ fan_out (gain sqrt 2), biases
 * 0, BN 1 / 0, linears normal(0, 0.01) with bias 0. */
const pl_zoo_scheme pl_zoo_mobilenet_scheme = {
    .conv_weight = PL_ZOO_KAIMING_NORMAL_FAN_OUT,
    .conv_bias = PL_ZOO_ZERO,
    .linear_weight = PL_ZOO_NORMAL_001,
    .linear_bias = PL_ZOO_ZERO,
    .bn_weight = PL_ZOO_ONE,
    .bn_bias = PL_ZOO_ZERO,
};
