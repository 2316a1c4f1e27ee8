/*
 * module.h — struct tg_module, shared by the three module files: module.c (the layers, their
 * forward functions, running a module), module_tree.c (modules of the user's own, children and
 * their names, the sequential container, the walk that names parameters and buffers, flags,
 * freeing) and module_weights.c (initializers, moving average, spectral normalisation). Nothing
 * else in the library looks inside a module.
 */
#ifndef TG_MODULE_H
#define TG_MODULE_H

#include "core.h"

typedef enum {
    M_CONV, M_CONVT, M_DENSE, M_BN, M_ACT, M_FLATTEN, M_RESHAPE, M_SEQ, M_MAXPOOL, M_AVGPOOL, M_GAP, M_DROPOUT,
    M_UP2, M_EMBED,
    M_USER, /* a module of the user's own (tg_module_new): named children, the user's forward */
} mkind;

#define TG_CHILD_NAME_MAX 64   /* a child's name, its NUL included */
#define TG_STATE_NAME_MAX 256  /* a dotted state name ("enc1.conv1.weight"), its NUL included */

/* A module: what every kind shares (tensors, flags, children), plus its kind's settings in
 * `cfg`. What a layer kind does is its row of KINDS[] in module.c (name, forward); adding a layer
 * kind is an enum value, a cfg member when it has settings, a constructor and a row. */
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
        struct { tg_forward_fn fn; void *user; } user; /* M_USER */
    } cfg;
    tg_tensor *weight, *bias;  /* conv/dense/embedding weight (+bias); batch norm gamma+beta */
    tg_tensor *running_mean, *running_var;
    tg_tensor *sn_u, *sn_v;    /* spectral normalisation's vectors (tg_module_spectral_norm) */
    int sn_iters;
    float sn_eps;
    tg_module **child;                          /* M_SEQ and M_USER: the children, in order */
    char (*child_name)[TG_CHILD_NAME_MAX];      /* their names: a sequential's are "0", "1", ... */
    int n_child, cap_child;
    tg_module *parent;         /* the module that owns it (at most one), or NULL */
    char (*names)[TG_STATE_NAME_MAX]; /* filled by tg_module_state */
    int n_names;
};

/* a new module of a kind, training, no tensors (NULL + message naming fn) */
tg_module *tg_module_alloc(tg_ctx *ctx, mkind kind, const char *fn);
const char *tg_module_kind_name(const tg_module *m); /* "conv2d", from KINDS[] (module.c) */
/* m's name in its parent ("enc1", or a sequential's "3"); "" for a root */
const char *tg_module_name(const tg_module *m);
/* Runs m on its n inputs (one for a layer or a sequential), its name on the message path so a
 * failure inside says where (module.c). */
tg_tensor *tg_module_run(tg_module *m, tg_tensor *const *in, int n);
/* A BatchNorm module on x; slope >= 0 fuses a following (leaky) ReLU (module.c). */
tg_tensor *tg_module_bn_forward(tg_module *m, tg_tensor *x, float slope);
tg_status tg_module_default_init(tg_module *m);     /* PyTorch's default for a conv or dense layer */

#endif
