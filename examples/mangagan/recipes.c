/*
 * recipes.c — mangagan's recipes as data (mangagan.c's file comment says what each one is), and
 * the changes the command line or a checkpoint makes to one.
 */
#define _GNU_SOURCE
#include "mangagan.h"

#include <string.h>

/* the layers: output channels mult * width (or lit), kernel k, stride s, padding p */
#define CONVT(m, ...) {.kind = LAYER_CONVT, .mult = m, __VA_ARGS__}
#define CONV(m, ...) {.kind = LAYER_CONV, .mult = m, __VA_ARGS__}

/* the PyTorch DCGAN example's networks (dcgan and modern): no hidden dense layer, a conv head */
#define DCGAN_G                                                                                 \
    {CONVT(8, .k = 4, .s = 1, .p = 0, .bn = 1, .act = ACT_RELU),                                \
     CONVT(4, .k = 4, .s = 2, .p = 1, .bn = 1, .act = ACT_RELU),                                \
     CONVT(2, .k = 4, .s = 2, .p = 1, .bn = 1, .act = ACT_RELU),                                \
     CONVT(1, .k = 4, .s = 2, .p = 1, .bn = 1, .act = ACT_RELU),                                \
     CONVT(0, .lit = 3, .k = 4, .s = 2, .p = 1, .act = ACT_TANH)}
#define DCGAN_D                                                                                 \
    {CONV(1, .k = 4, .s = 2, .p = 1, .act = ACT_LEAKY),                                         \
     CONV(2, .k = 4, .s = 2, .p = 1, .bn = 1, .act = ACT_LEAKY),                                \
     CONV(4, .k = 4, .s = 2, .p = 1, .bn = 1, .act = ACT_LEAKY),                                \
     CONV(8, .k = 4, .s = 2, .p = 1, .bn = 1, .act = ACT_LEAKY),                                \
     CONV(0, .lit = 1, .k = 4, .s = 1, .p = 0)}

static const recipe RECIPES[] = {
    {
        .name = "seed", .nz = 100,
        /* an extra 3x3 conv in G, BatchNorm + LeakyReLU everywhere, a dense head in D */
        .g = {CONVT(8, .k = 4, .s = 1, .p = 0, .bn = 1, .act = ACT_LEAKY),
              CONVT(4, .k = 4, .s = 2, .p = 1, .bn = 1, .act = ACT_LEAKY),
              CONVT(2, .k = 4, .s = 2, .p = 1, .bn = 1, .act = ACT_LEAKY),
              CONVT(1, .k = 4, .s = 2, .p = 1, .bn = 1, .act = ACT_LEAKY),
              CONV(1, .k = 3, .s = 1, .p = 1, .bn = 1, .act = ACT_LEAKY),
              CONVT(0, .lit = 3, .k = 4, .s = 2, .p = 1, .act = ACT_TANH)},
        .d = {CONV(1, .k = 4, .s = 2, .p = 1, .act = ACT_LEAKY),
              CONV(2, .k = 4, .s = 2, .p = 1, .bn = 1, .act = ACT_LEAKY),
              CONV(4, .k = 4, .s = 2, .p = 1, .bn = 1, .act = ACT_LEAKY),
              CONV(8, .k = 4, .s = 2, .p = 1, .bn = 1, .act = ACT_LEAKY),
              {.kind = LAYER_FLATTEN},
              {.kind = LAYER_DENSE, .lit = 1}},
        .bias = 1, .init = TG_INIT_GLOROT_UNIFORM,
        .bn_momentum = 0.5f, .bn_eps = 1e-3f, /* Keras' BatchNormalization(momentum=0.5) */
        .lr_g = 1.5e-4f, .lr_d = 2e-4f, .beta1 = 0.5f, .beta2 = 0.999f, .eps = 1e-7f, .keras_eps = 1,
        .soft_labels = 1, .keras_step = 1, .loss = LOSS_BCE,
    },
    {
        .name = "dcgan", .nz = 100, .g = DCGAN_G, .d = DCGAN_D,
        .init = TG_INIT_NORMAL, .init_std = 0.02f, .bn_std = 0.02f, .bn_momentum = 0.1f, .bn_eps = 1e-5f,
        .lr_g = 2e-4f, .lr_d = 2e-4f, .beta1 = 0.5f, .beta2 = 0.999f, .eps = 1e-8f, .loss = LOSS_BCE,
    },
    /* modern: dcgan's networks and step with the hinge loss, an EMA generator and DiffAugment
     * (colour, translation, cutout) on every batch D sees; chosen by measurement (SWD to held-out
     * faces after 2000 steps at width 32): examples/mangagan/README.md, "Recipes" */
    {
        .name = "modern", .nz = 100, .g = DCGAN_G, .d = DCGAN_D,
        .init = TG_INIT_NORMAL, .init_std = 0.02f, .bn_std = 0.02f, .bn_momentum = 0.1f, .bn_eps = 1e-5f,
        .lr_g = 2e-4f, .lr_d = 2e-4f, .beta1 = 0.5f, .beta2 = 0.999f, .eps = 1e-8f, .loss = LOSS_HINGE,
        .ema = 0.999f, .aug = TG_AUG_COLOR | TG_AUG_TRANSLATION | TG_AUG_CUTOUT,
    },
};

const recipe *find_recipe(const char *name) {
    for (size_t i = 0; name && i < sizeof RECIPES / sizeof RECIPES[0]; i++)
        if (!strcmp(RECIPES[i].name, name)) return &RECIPES[i];
    return NULL;
}

/* the command line's and the checkpoints' names of the losses */
static const char *const LOSS_NAMES[] = {[LOSS_BCE] = "bce", [LOSS_NS] = "ns", [LOSS_HINGE] = "hinge"};

loss_kind loss_code(const char *name) {
    for (int l = LOSS_BCE; l <= LOSS_HINGE; l++)
        if (!strcmp(name, LOSS_NAMES[l])) return (loss_kind)l;
    return LOSS_BCE;
}

const char *loss_name(loss_kind l) { return LOSS_NAMES[l]; }

long aug_parse(const char *v) {
    long bits = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "color")) bits |= TG_AUG_COLOR;
        else if (!strcmp(t, "translation")) bits |= TG_AUG_TRANSLATION;
        else if (!strcmp(t, "cutout")) bits |= TG_AUG_CUTOUT;
        else if (strcmp(t, "none")) return -1;
    }
    return bits;
}

const char *aug_name(unsigned a, char *b, size_t n) {
    snprintf(b, n, "%s%s%s%s", a & TG_AUG_COLOR ? "color," : "", a & TG_AUG_TRANSLATION ? "translation," : "",
             a & TG_AUG_CUTOUT ? "cutout," : "", a ? "" : "none");
    size_t l = strlen(b);
    if (l && b[l - 1] == ',') b[l - 1] = 0;
    return b;
}

/* The command line's changes to a recipe (loss, learning rates, EMA, spectral norm, augment). */
void apply_settings(recipe *r, const opts *o) {
    if (o->loss) r->loss = loss_code(o->loss);
    if (o->lr_g >= 0) r->lr_g = (float)o->lr_g;
    if (o->lr_d >= 0) r->lr_d = (float)o->lr_d;
    if (o->ema >= 0) r->ema = (float)o->ema;
    if (o->sn >= 0) r->sn = (int)o->sn;
    if (o->aug >= 0) r->aug = (unsigned)o->aug;
}

/* On --resume: the settings the checkpoint m was trained with (older checkpoints lack them: the
 * recipe's), and a refusal when the command line asks for others. */
void checkpoint_settings(recipe *r, tg_state *m, const opts *o, const char *path) {
    const char *v;
    if ((v = tg_state_get_meta(m, "loss"))) r->loss = loss_code(v);
    if ((v = tg_state_get_meta(m, "lr_g"))) r->lr_g = strtof(v, NULL);
    if ((v = tg_state_get_meta(m, "lr_d"))) r->lr_d = strtof(v, NULL);
    if ((v = tg_state_get_meta(m, "ema"))) r->ema = strtof(v, NULL);
    if ((v = tg_state_get_meta(m, "sn"))) r->sn = atoi(v);
    if (o->sn >= 0 && o->sn != r->sn) die("%s was trained with --sn %d, not %ld", path, r->sn, o->sn);
    if ((v = tg_state_get_meta(m, "augment"))) r->aug = (unsigned)aug_parse(v);
    if (o->aug >= 0 && (unsigned)o->aug != r->aug) {
        char b[64];
        die("%s was trained with --augment %s", path, aug_name(r->aug, b, sizeof b));
    }
    if (o->loss && loss_code(o->loss) != r->loss)
        die("%s was trained with loss '%s', not '%s'", path, loss_name(r->loss), o->loss);
    if ((o->lr_g >= 0 && (float)o->lr_g != r->lr_g) || (o->lr_d >= 0 && (float)o->lr_d != r->lr_d))
        die("%s was trained with learning rates G %g, D %g; resuming keeps them", path, r->lr_g, r->lr_d);
    if (o->ema >= 0 && (float)o->ema != r->ema) die("%s was trained with --ema %g, not %g", path, r->ema, o->ema);
}
