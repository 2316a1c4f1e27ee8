/*
 * mangagan.h — what the files of mangagan share. One file per job:
 *
 *   mangagan.c    the command line (options, commands, main), bench and pack
 *   recipes.c     the recipes as data, and the command line's and a checkpoint's changes to them
 *   model.c       the two networks built from a recipe, their optimizers, and the GAN step
 *   checkpoint.c  checkpoints and generator files: what they hold, saving, resuming
 *   load.c        reading them: metadata, and a generator built from a file (also the web page's)
 *   train.c       the training loop: data order, batches, data-parallel set-up, logs and samples
 *   evaluate.c    generating images, grids, the SWD evaluation, and the sample, interpolate and
 *                 eval commands
 *   plot.c        the loss plot beside the sample grids
 *
 * Everything here is written against <tensorgan.h> alone, as a user's program would be.
 */
#ifndef MANGAGAN_H
#define MANGAGAN_H

#ifndef EXAMPLE_NAME
#define EXAMPLE_NAME "mangagan"
#endif
#include "../example.h"
#include "../cli.h"

#include <stdint.h>

#define SIZE 64       /* the images' side */
#define MAX_LAYERS 12 /* of one network in a recipe */

/* ---- recipes (recipes.c) ---------------------------------------------------------------- */
typedef enum {
    LAYER_END = 0,  /* ends a network's list */
    LAYER_CONVT,    /* ConvTranspose2D */
    LAYER_CONV,     /* Conv2D */
    LAYER_FLATTEN,  /* [N,C,H,W] -> [N,C*H*W] */
    LAYER_DENSE,    /* Dense */
} layer_kind;

typedef enum { ACT_NONE = 0, ACT_LEAKY /* LeakyReLU(0.2) */, ACT_RELU, ACT_TANH } act_kind;

/* LOSS_BCE: binary cross-entropy on the recipe's labels (soft and noisy where it asks);
 * LOSS_NS: the non-saturating loss (BCE on hard labels); LOSS_HINGE: Lim & Ye's hinge loss */
typedef enum { LOSS_BCE, LOSS_NS, LOSS_HINGE } loss_kind;

typedef struct {
    layer_kind kind;
    int mult, lit; /* output channels: lit if non-zero, else mult * width */
    int k, s, p;   /* kernel, stride, padding of a convolution */
    int bn;        /* BatchNorm after the layer */
    act_kind act;
} lspec;

typedef struct {
    const char *name;
    int nz; /* the latent vector's length */
    lspec g[MAX_LAYERS], d[MAX_LAYERS];
    int bias;
    tg_init_kind init;
    float init_std, bn_std, bn_momentum, bn_eps;
    float lr_g, lr_d, beta1, beta2, eps;
    int keras_eps;    /* Adam's epsilon added to sqrt(v_hat) the Keras way */
    int soft_labels;  /* real ~ U[0.8,1), fake ~ U[0,0.2) with LOSS_BCE; else 1 and 0 */
    int keras_step;   /* the seed's step (mangagan.c's file comment) vs the PyTorch example's */
    loss_kind loss;
    float ema;        /* decay of G's exponential moving average (0: none) */
    int sn;           /* spectral normalisation on D's layers, which then drop BatchNorm (SNGAN) */
    unsigned aug;     /* DiffAugment policy (TG_AUG_*) on every batch D sees, 0: none */
} recipe;

/* Options a command leaves unset stay 0/NULL (or -1 where 0 is a value), so a command can tell
 * "not given" from a default: the recipe's, or the checkpoint's on --resume. */
typedef struct {
    const char *data, *out, *recipe, *device, *checkpoint, *loss, *images, *eval_data, *augment;
    const char *precision;  /* NULL: not given (fp32, or the checkpoint's on --resume) */
    const char *onnx, *sample; /* export: the ONNX file, and the check sample */
    long steps, batch, width, sample_every, ckpt_every, n, rows, cols, warmup, log_every;
    long eval_every, eval_n;
    double lr_g, lr_d, ema; /* < 0: not given */
    unsigned long long seed;
    int resume, flip, no_ema;
    long sn;                /* < 0: not given */
    long aug;               /* < 0: not given (from --augment) */
} opts;

const recipe *find_recipe(const char *name);
loss_kind loss_code(const char *name);
const char *loss_name(loss_kind l);
long aug_parse(const char *v); /* "color,translation,cutout" -> TG_AUG_* bits; -1: unknown word */
const char *aug_name(unsigned a, char *b, size_t n);
void apply_settings(recipe *r, const opts *o);
void checkpoint_settings(recipe *r, tg_state *m, const opts *o, const char *path);

/* ---- the model and its step (model.c) ----------------------------------------------------- */
typedef struct {
    recipe rc;          /* the recipe with the command line's changes (loss, rates, EMA) */
    const recipe *r;    /* = &rc */
    int width, batch;
    tg_ctx *ctx;
    tg_module *G, *D;
    tg_module *Gema;    /* G's exponential moving average (--ema), or NULL */
    int ema_calibrated; /* Gema's BatchNorm statistics match its weights (see sampler) */
    tg_optim *og, *od;
    tg_tensor *z, *real, *fake_copy, *t_real, *t_fake, *fixed;
    double flops_per_step;
    long step;          /* the step being trained (1-based), for messages */
    /* data-parallel (tg_dist): batch is this rank's share of a global batch of batch * world */
    tg_dist *dist;
    int rank, world;
    tg_dist_grads *sync_g, *sync_d; /* gradient averagers of G's and D's parameters */
    tg_tensor *bn_stats[64];        /* BatchNorm running statistics of G and D, averaged per step */
    int n_bn_stats;
    const char *out;    /* the output directory, for messages (NULL in bench) */
} gan;

typedef struct {
    float d_real, d_fake, g, dx, dgz;
    double t_real, t_fake, t_g; /* phase seconds (synchronised) */
} step_stats;

void gan_init(gan *g, const recipe *r, int width, int batch, tg_device dev, uint64_t seed, int with_optim);
void gan_free(gan *g);
/* The precision of the networks' convolutions and dense layers (tg_ctx_set_precision), or a
 * refusal naming name (the option's value) when the device has no such precision. */
void gan_set_precision(gan *g, const char *name);
void gan_step(gan *g, step_stats *st); /* one training step on the batch already in g->real */

/* Rank r's RNG seed: rank 0 keeps the run's seed (so one rank is the plain run), the others
 * derive theirs from it, so every rank draws its own noise and augmentations, reproducibly. */
static inline uint64_t rank_seed(uint64_t seed, int rank) {
    return rank ? mix64(seed ^ mix64(0x72616e6b00ull + (uint64_t)rank)) : seed;
}

/* ---- checkpoints (checkpoint.c; reading them: load.c) ------------------------------------- */
typedef struct {
    long step, epoch, pos;
    unsigned long long data_seed;
    double seconds;
} progress;

tg_state *peek(const char *path); /* a mangagan file's metadata only; dies on another file */
long meta_num(tg_state *s, const char *k, const char *path);
void save_checkpoint(gan *g, const progress *p, const char *out, int flip);
void resume_settings(opts *o, recipe *rc, const char *path, int world);
void resume_state(gan *g, progress *p, const char *path, long steps);
void remove_stale_temps(const char *out);
/* Builds G (batch-sized buffers) from a checkpoint or a generator file and loads its weights;
 * returns whether they are a checkpoint's moving average (no_ema: its trained G instead). */
int load_generator(gan *g, const char *path, tg_device dev, uint64_t seed, int batch, int no_ema);

/* ---- training (train.c) ------------------------------------------------------------------- */
int cmd_train(opts o);

/* ---- images and evaluation (evaluate.c) --------------------------------------------------- */
void write_grid(const char *path, const uint8_t *img, int n, int cols);
tg_module *sampler(gan *g);
uint8_t *generate(gan *g, tg_module *m, tg_tensor *z);
uint8_t *first_images(const tg_dataset *ds, int64_t n, const char *what);
double eval_swd(gan *g, const uint8_t *real, int64_t n, double lv[3]);
int cmd_eval(opts o);
int cmd_sample(opts o);
int cmd_export(opts o);
int cmd_interpolate(opts o);

/* ---- the command line (mangagan.c) -------------------------------------------------------- */
enum { CMD_TRAIN, CMD_EVAL, CMD_SAMPLE, CMD_INTERP, CMD_EXPORT, CMD_BENCH, CMD_PACK };
extern const cli_cmd CMDS[];
#define bad(cmd, ...) cli_refuse(&CMDS[cmd], __VA_ARGS__) /* a refusal of a command's arguments (exit 2) */
tg_device pick_device(const char *d);
const char *bundled(char *buf, size_t n, const char *file);
int mkdirs(const char *path);

#endif
