/*
 * module.h — struct tg_module, shared by module.c (layers, sequential, forward, enumeration) and
 * module_weights.c (initializers, moving average, spectral normalisation). Nothing else in the
 * library looks inside a module.
 */
#ifndef TG_MODULE_H
#define TG_MODULE_H

#include "core.h"

typedef enum { M_CONV, M_CONVT, M_DENSE, M_BN, M_ACT, M_FLATTEN, M_RESHAPE, M_SEQ, M_MAXPOOL, M_AVGPOOL, M_GAP, M_DROPOUT, M_UP2, M_EMBED } mkind;

/* A module: what every kind shares (tensors, flags, children), plus its kind's settings in
 * `cfg`. What a kind does is its row of KINDS[] in module.c (name, forward); adding a layer kind is an
 * enum value, a cfg member when it has settings, a constructor and a row. */
struct tg_module {
    tg_ctx *ctx;
    mkind kind;
    bool training, frozen;
    union {
        struct { int stride, pad; } conv;              /* M_CONV, M_CONVT */
        struct { float momentum, eps; } bn;            /* M_BN */
        struct { int op; float slope; } act;           /* M_ACT: TG_UN_*, leaky slope */
        struct { int64_t c, h, w; } reshape;           /* M_RESHAPE */
        struct { int kernel, stride, pad; } pool;      /* M_MAXPOOL, M_AVGPOOL */
        struct { float p; } dropout;                   /* M_DROPOUT */
        struct { int bilinear; } up;                   /* M_UP2 */
    } cfg;
    tg_tensor *weight, *bias;  /* conv/dense/embedding weight (+bias); batch norm gamma+beta */
    tg_tensor *running_mean, *running_var;
    tg_tensor *sn_u, *sn_v;    /* spectral normalisation's vectors (tg_module_spectral_norm) */
    int sn_iters;
    float sn_eps;
    tg_module **child;
    int n_child, cap_child;
    tg_module *parent;         /* the sequential that owns it (at most one), or NULL */
    char (*names)[96];         /* filled by tg_module_state */
    int n_names;
};

const char *tg_module_kind_name(const tg_module *m); /* "conv2d", from KINDS[] (module.c) */
tg_status tg_module_default_init(tg_module *m);     /* PyTorch's default for a conv or dense layer */

#endif
