/* models.c — the model zoo registry and our own small models. */
#include "peerless/models.h"

#include <string.h>

#include "nn/zoo.h"

typedef int (*build_fn)(pl_model *m, int num_classes);

/* mlp: [N,C,H,W] -> flatten -> 256 -> relu -> 128 -> relu -> K */
static int build_mlp(pl_model *m, int k)
{
    int x = pl_nn_flatten(m, 0);
    x = pl_nn_linear(m, "fc1", x, 256, 1);
    x = pl_nn_act(m, x, PL_ACT_RELU);
    x = pl_nn_linear(m, "fc2", x, 128, 1);
    x = pl_nn_act(m, x, PL_ACT_RELU);
    return pl_nn_linear(m, "fc3", x, k, 1);
}

/* lenet5: LeNet-5 with batch normalisation after every conv and hidden fc
 * (as in Ioffe & Szegedy / d2l's "LeNet with BN"), ReLU and max pooling:
 * [N,C,32,32] -> conv 6@5x5 -> bn -> relu -> pool2 -> conv 16@5x5 -> bn ->
 * relu -> pool2 -> [N,16,5,5] -> 120 -> bn -> relu -> 84 -> bn -> relu -> K */
static int build_lenet5(pl_model *m, int k)
{
    int x = pl_nn_conv2d(m, "conv1", 0, 6, pl_conv(5, 1, 0, 1, 1));
    x = pl_nn_batchnorm2d(m, "bn1", x, 1e-5f, 0.1f);
    x = pl_nn_act(m, x, PL_ACT_RELU);
    x = pl_nn_maxpool2d(m, x, 2, 2, 0, 0);
    x = pl_nn_conv2d(m, "conv2", x, 16, pl_conv(5, 1, 0, 1, 1));
    x = pl_nn_batchnorm2d(m, "bn2", x, 1e-5f, 0.1f);
    x = pl_nn_act(m, x, PL_ACT_RELU);
    x = pl_nn_maxpool2d(m, x, 2, 2, 0, 0);
    x = pl_nn_flatten(m, x);
    x = pl_nn_linear(m, "fc1", x, 120, 1);
    x = pl_nn_batchnorm2d(m, "bn3", x, 1e-5f, 0.1f);
    x = pl_nn_act(m, x, PL_ACT_RELU);
    x = pl_nn_linear(m, "fc2", x, 84, 1);
    x = pl_nn_batchnorm2d(m, "bn4", x, 1e-5f, 0.1f);
    x = pl_nn_act(m, x, PL_ACT_RELU);
    return pl_nn_linear(m, "fc3", x, k, 1);
}

/* init: the model's own initialisation scheme applied after PyTorch's
 * defaults (NULL: the defaults are the scheme). */
/* Default recipes (pl_recipe; docs/models.md): NONE leaves the command's
 * defaults (adam 1e-3, batch 32, ReduceLROnPlateau) that suit the small
 * models; the torchvision models get AdamW + one-cycle, measured on
 * Fashion-MNIST (2 epochs of resnet18: see docs/models.md). */
#define RECIPE_NONE {NULL, 0, -1, 0, NULL}
#define RECIPE_ZOO {"adamw", 0.003, 0.05, 64, "onecycle"}

static const struct {
    pl_model_info info;
    build_fn build;
    const pl_zoo_scheme *init;
} zoo[] = {
    {{"mlp", "3-layer perceptron 256-128-K (ours)", 0, 1, 0, "fc3", RECIPE_NONE}, build_mlp, NULL},
    {{"lenet5", "LeNet-5 with batch norm, ReLU and max pooling, 32x32 input (ours)", 32, 32, 0, "fc3", RECIPE_NONE}, build_lenet5, NULL},
    {{"vgg11", "VGG-11 as torchvision 0.14 vgg11 (128.8M parameters at K=10)", 32, 32, 1, "classifier.6", RECIPE_ZOO}, pl_zoo_vgg11,
     &pl_zoo_vgg_scheme},
    {{"squeezenet1_1", "SqueezeNet 1.1 as torchvision 0.14 squeezenet1_1", 32, 17, 1, "classifier.1", RECIPE_ZOO}, pl_zoo_squeezenet1_1,
     &pl_zoo_squeezenet_scheme},
    {{"mobilenet_v3_small", "MobileNetV3-Small as torchvision 0.14 mobilenet_v3_small", 32, 1, 1, "classifier.3", RECIPE_ZOO},
     pl_zoo_mobilenet_v3_small, &pl_zoo_mobilenet_scheme},
    {{"resnet18", "ResNet-18 as torchvision 0.14 resnet18", 32, 1, 1, "fc", RECIPE_ZOO}, pl_zoo_resnet18, &pl_zoo_resnet_scheme},
};

#define ZOO_N (sizeof zoo / sizeof zoo[0])

const pl_model_info *pl_models_find(const char *name)
{
    for (size_t i = 0; i < ZOO_N; i++)
        if (name && strcmp(zoo[i].info.name, name) == 0)
            return &zoo[i].info;
    return NULL;
}

const char *pl_models_list(void)
{
    return "mlp, lenet5, vgg11, squeezenet1_1, mobilenet_v3_small, resnet18";
}

int pl_models_init(pl_model *m, const char *name, uint64_t seed, pl_err *err)
{
    for (size_t i = 0; i < ZOO_N; i++)
        if (strcmp(zoo[i].info.name, name) == 0) {
            pl_model_init(m, seed);
            if (zoo[i].init)
                pl_zoo_init(m, seed, zoo[i].init);
            return PL_OK;
        }
    return pl_err_set(err, PL_ERR_NOTFOUND, "unknown model '%s' (available: %s)", name, pl_models_list());
}

int pl_models_build(const char *name, const pl_backend *be, int c, int h, int w, int num_classes,
                    uint64_t seed, pl_model **out, pl_err *err)
{
    *out = NULL;
    size_t i = 0;
    while (i < ZOO_N && strcmp(zoo[i].info.name, name) != 0)
        i++;
    if (i == ZOO_N)
        return pl_err_set(err, PL_ERR_NOTFOUND, "unknown model '%s' (available: %s)", name, pl_models_list());
    if (num_classes < 2)
        return pl_err_set(err, PL_ERR_ARG, "model %s: num_classes %d must be at least 2", name, num_classes);
    if (h < zoo[i].info.min_size || w < zoo[i].info.min_size)
        return pl_err_set(err, PL_ERR_SHAPE, "model %s needs inputs of at least %dx%d, got %dx%d", name,
                          zoo[i].info.min_size, zoo[i].info.min_size, h, w);
    pl_model *m = pl_model_create(be, c, h, w);
    if (!m)
        return pl_err_set(err, PL_ERR_NOMEM, "model %s: out of memory", name);
    zoo[i].build(m, num_classes);
    int st = pl_model_finish(m, err);
    if (st) {
        pl_model_destroy(m);
        return pl_err_wrap(err, st, "building model %s", name);
    }
    pl_models_init(m, name, seed, err);
    *out = m;
    return PL_OK;
}

int pl_models_transform(const pl_model_info *mi, const char *dataset, pl_split split, int c, int h, int w,
                        int input_size, pl_transform *tf, pl_err *err)
{
    int st = pl_transform_defaults(tf, dataset, split, err);
    if (st)
        return st;
    int size = input_size ? input_size : mi->default_size;
    if (size && (size != h || size != w))
        tf->resize_h = tf->resize_w = size;
    if (mi->rgb && c == 1)
        tf->gray_to_rgb = 1;
    return PL_OK;
}
