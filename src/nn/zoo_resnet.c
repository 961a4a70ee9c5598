/* zoo_resnet.c — ResNet-18 exactly as torchvision 0.14's
 * torchvision.models.resnet18 (BasicBlock, zero_init_residual=False). */
#include <stdio.h>

#include "nn/zoo.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

/* conv (no bias) -> batch norm, named "<prefix><conv>" / "<prefix><bn>". */
static int conv_bn(pl_model *m, const char *prefix, const char *conv, const char *bn, int x, int c,
                   pl_conv_opts o)
{
    char name[64];
    snprintf(name, sizeof name, "%s%s", prefix, conv);
    x = pl_nn_conv2d(m, name, x, c, o);
    snprintf(name, sizeof name, "%s%s", prefix, bn);
    return pl_nn_batchnorm2d(m, name, x, BN_EPS, BN_MOMENTUM);
}

/* BasicBlock "layer<l>.<b>": x [N,c_in,H,W] -> conv3x3/stride -> bn -> relu
 * -> conv3x3 -> bn, plus the identity (or downsample: conv1x1/stride -> bn
 * when the shape changes) -> relu [N,c,H/stride,W/stride]. The downsample
 * is built last, as torchvision registers it after bn2. */
static int basic_block(pl_model *m, int l, int b, int x, int c_in, int c, int stride)
{
    char prefix[32];
    snprintf(prefix, sizeof prefix, "layer%d.%d.", l, b);
    int y = conv_bn(m, prefix, "conv1", "bn1", x, c, pl_conv(3, stride, 1, 1, 0));
    y = pl_nn_act(m, y, PL_ACT_RELU);
    y = conv_bn(m, prefix, "conv2", "bn2", y, c, pl_conv(3, 1, 1, 1, 0));
    int id = x;
    if (stride != 1 || c_in != c)
        id = conv_bn(m, prefix, "downsample.0", "downsample.1", x, c, pl_conv(1, stride, 0, 1, 0));
    return pl_nn_act(m, pl_nn_add(m, y, id), PL_ACT_RELU);
}

/* resnet18: [N,3,H,W] -> conv 7x7/2 pad 3 (64) -> bn -> relu -> maxpool 3/2
 * pad 1 -> layer1 (64) -> layer2 (128, /2) -> layer3 (256, /2) -> layer4
 * (512, /2), two blocks each -> adaptive avg pool 1 -> flatten -> fc (K) */
int pl_zoo_resnet18(pl_model *m, int k)
{
    int x = conv_bn(m, "", "conv1", "bn1", 0, 64, pl_conv(7, 2, 3, 1, 0));
    x = pl_nn_act(m, x, PL_ACT_RELU);
    x = pl_nn_maxpool2d(m, x, 3, 2, 1, 0);
    int c_in = 64;
    for (int l = 1; l <= 4; l++) {
        int c = 64 << (l - 1);
        x = basic_block(m, l, 0, x, c_in, c, l == 1 ? 1 : 2);
        x = basic_block(m, l, 1, x, c, c, 1);
        c_in = c;
    }
    x = pl_nn_adaptive_avgpool2d(m, x, 1, 1);
    x = pl_nn_flatten(m, x);
    return pl_nn_linear(m, "fc", x, k, 1);
}

/* ResNet.__init__: convs kaiming_normal_ fan_out relu, BN 1 / 0; fc keeps
 * nn.Linear's default initialisation. */
const pl_zoo_scheme pl_zoo_resnet_scheme = {
    .conv_weight = PL_ZOO_KAIMING_NORMAL_FAN_OUT,
    .conv_bias = PL_ZOO_ZERO,
    .linear_weight = PL_ZOO_KEEP,
    .linear_bias = PL_ZOO_KEEP,
    .bn_weight = PL_ZOO_ONE,
    .bn_bias = PL_ZOO_ZERO,
};
