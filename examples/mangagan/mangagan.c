/*
 * mangagan — a DCGAN that learns to draw 64x64 anime faces, written against <tensorgan.h> only.
 *
 *   mangagan train [--data P] [--out DIR] [--steps N] [--batch B] [--recipe seed|dcgan|modern]
 *                  [--device auto|cpu|cuda] [--seed S] [--width W] [--flip] [--resume] ...
 *   mangagan eval --checkpoint F | --images P  [--data P] [--n N] [--seed S] [--no-ema]
 *   mangagan sample --checkpoint F [--n N] --out X.png|DIR [--seed S] [--device D]
 *   mangagan interpolate --checkpoint F --out X.png [--rows R] [--cols C] [--seed S]
 *   mangagan bench [--device D] [--batch B] [--recipe R] [--width W] [--steps N] [--warmup N]
 *   mangagan pack --data DIR --out FILE[.xz]
 * (`mangagan COMMAND --help` lists each option, its default and its meaning.)
 *
 * The recipes are data (recipes.c), not programs (modern: see its row there):
 *   seed  — the Keras 2.2.4 blog model: biases, Glorot-uniform init, BatchNorm (Keras momentum
 *           0.5, eps 1e-3) + LeakyReLU(0.2) everywhere, an extra 3x3 conv in G, dense head in D,
 *           Adam (D 2e-4, G 1.5e-4, beta1 0.5, Keras epsilon 1e-7), soft noisy labels; G makes
 *           the fake batch in inference mode, D updates on real then on fake, G trains through
 *           the frozen D on fresh noise.
 *   dcgan — the PyTorch DCGAN example: no biases, ReLU in G, conv head, N(0, 0.02) init, hard
 *           labels, Adam 2e-4 for both (eps 1e-8); one D update from real + detached fake, then G
 *           through the frozen D on the same fakes.
 * Everything that makes a step (weights, Adam moments and step counts, BatchNorm buffers, the
 * RNG offset, the data order) is in the checkpoint, so --resume continues bit for bit on the CPU
 * with the same thread count.
 *
 * Data-parallel: `mpirun -np N mangagan train ...` splits each global batch of --batch images
 * into N shares (one per rank, from the same data order), averages the gradients over the ranks
 * before every optimizer step (tg_dist) and BatchNorm's running statistics after it, draws noise
 * and augmentations from a rank-distinct RNG stream, and writes samples, log and checkpoints
 * from rank 0 only. A checkpoint resumes bit for bit on the same number of ranks.
 */
#define _GNU_SOURCE
#include "mangagan.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- command line ----------------------------------------------------------------------- */
static opts O = {.device = "auto", .seed = 1, .warmup = 2, .rows = 8, .cols = 10, .lr_g = -1, .lr_d = -1,
                 .ema = -1, .sn = -1, .aug = -1};

#define OPT_DEVICE {"--device", CLI_STR, &O.device, 0, 0, NULL, "where to run; auto takes a GPU when there is one (default auto)", "auto|cpu|cuda"}
#define OPT_PRECISION(dflt) {"--precision", CLI_STR, &O.precision, 0, 0, NULL, "of convolutions and dense layers: bf16 multiplies bf16-rounded operands, sums in fp32 (tf32: CUDA only; default " dflt ")", "fp32|bf16|tf32"}
#define OPT_SEED(what) {"--seed", CLI_U64, &O.seed, 0, 9223372036854775807.0, "S", "seed of " what " (default 1)", NULL}
#define OPT_NO_EMA {"--no-ema", CLI_FLAG, &O.no_ema, 0, 0, NULL, "use the trained generator, not its moving average", NULL}
static const cli_opt TRAIN_OPTS[] = {
    {"--data", CLI_STR, &O.data, 0, 0, "DIR|FILE", "PNG/JPEG folder or packed faces (default: the bundled 20,000 faces)", NULL},
    {"--out", CLI_STR, &O.out, 0, 0, "DIR", "samples, checkpoints, log.csv (default mangagan-out; checked first)", NULL},
    {"--recipe", CLI_STR, &O.recipe, 0, 0, NULL, "networks, losses and optimizer settings (default seed)", "seed|dcgan|modern"},
    {"--steps", CLI_INT, &O.steps, 1, 100000000, "N", "train until this step (default 20000)", NULL},
    {"--batch", CLI_INT, &O.batch, 2, 4096, "B", "images per step, over all ranks (default 64)", NULL},
    {"--width", CLI_INT, &O.width, 1, 1024, "W", "channel width of both networks (default 64)", NULL},
    OPT_DEVICE,
    OPT_PRECISION("fp32, or the checkpoint's on --resume"),
    OPT_SEED("the weights, noise and data order"),
    {"--flip", CLI_FLAG, &O.flip, 0, 0, NULL, "mirror a random half of each batch", NULL},
    {"--resume", CLI_FLAG, &O.resume, 0, 0, NULL, "continue from DIR/checkpoint.safetensors (bit for bit)", NULL},
    {"--sample-every", CLI_INT, &O.sample_every, 1, 100000000, "N", "a grid of samples every N steps and at the end (default 200)", NULL},
    {"--checkpoint-every", CLI_INT, &O.ckpt_every, 1, 100000000, "N", "a checkpoint every N steps and at the end (default 500)", NULL},
    {"--log-every", CLI_INT, &O.log_every, 1, 100000000, "N", "a progress line (ETA) and log.csv row every N steps (default 1 on a terminal, else 50)", NULL},
    {"--loss", CLI_STR, &O.loss, 0, 0, NULL, "GAN loss (default: the recipe's)", "bce|ns|hinge"},
    {"--lr-g", CLI_NUM, &O.lr_g, 1e-8, 1.0, "LR", "G's learning rate (default: the recipe's)", NULL},
    {"--lr-d", CLI_NUM, &O.lr_d, 1e-8, 1.0, "LR", "D's learning rate (default: the recipe's)", NULL},
    {"--ema", CLI_NUM, &O.ema, 0.0, 0.99999, "DECAY", "moving average of G, 0 none (default: the recipe's)", NULL},
    {"--sn", CLI_INT, &O.sn, 0, 1, "0|1", "spectral normalisation in D (default: the recipe's)", NULL},
    {"--augment", CLI_STR, &O.augment, 0, 0, "LIST", "DiffAugment: color,translation,cutout or none (default: the recipe's)", NULL},
    {"--eval-every", CLI_INT, &O.eval_every, 0, 100000000, "N", "SWD to held-out faces every N steps, 0 never (default 0)", NULL},
    {"--eval-n", CLI_INT, &O.eval_n, 1, 100000, "N", "images the SWD compares (default 2048)", NULL},
    {"--eval-data", CLI_STR, &O.eval_data, 0, 0, "FILE|DIR", "held-out faces (default: the bundled ones)", NULL},
};
static const cli_opt EVAL_OPTS[] = {
    {"--checkpoint", CLI_STR, &O.checkpoint, 0, 0, "FILE", "a generator (or checkpoint) to sample and score", NULL},
    {"--images", CLI_STR, &O.images, 0, 0, "FILE|DIR", "or a set of images to score instead", NULL},
    {"--data", CLI_STR, &O.data, 0, 0, "FILE|DIR", "the real faces to compare with (default: the bundled held-out faces)", NULL},
    {"--n", CLI_INT, &O.n, 1, 100000, "N", "images compared (default 2048)", NULL},
    OPT_SEED("the noise and the SWD's projections"),
    OPT_NO_EMA,
    OPT_DEVICE,
    OPT_PRECISION("fp32"),
};
static const cli_opt SAMPLE_OPTS[] = {
    {"--checkpoint", CLI_STR, &O.checkpoint, 0, 0, "FILE", "a generator or checkpoint written by train (required)", NULL},
    {"--out", CLI_STR, &O.out, 0, 0, "X.png|DIR", "one grid, or a directory of single images (required)", NULL},
    {"--n", CLI_INT, &O.n, 1, 4096, "N", "how many faces (default 64)", NULL},
    OPT_SEED("the noise"),
    OPT_NO_EMA,
    OPT_DEVICE,
    OPT_PRECISION("fp32"),
};
static const cli_opt INTERP_OPTS[] = {
    {"--checkpoint", CLI_STR, &O.checkpoint, 0, 0, "FILE", "a generator or checkpoint written by train (required)", NULL},
    {"--out", CLI_STR, &O.out, 0, 0, "X.png", "the grid to write (required)", NULL},
    {"--rows", CLI_INT, &O.rows, 1, 64, "R", "walks, one per row (default 8)", NULL},
    {"--cols", CLI_INT, &O.cols, 2, 64, "C", "faces per walk (default 10)", NULL},
    OPT_SEED("the walks' end points"),
    OPT_NO_EMA,
    OPT_DEVICE,
    OPT_PRECISION("fp32"),
};
static const cli_opt EXPORT_OPTS[] = {
    {"--checkpoint", CLI_STR, &O.checkpoint, 0, 0, "FILE", "a generator or checkpoint written by train (required)", NULL},
    {"--onnx", CLI_STR, &O.onnx, 0, 0, "FILE", "the ONNX model to write: input z [batch,NZ,1,1], output image [batch,3,64,64] in [-1,1] (required)", NULL},
    {"--sample", CLI_STR, &O.sample, 0, 0, "FILE", "also write 4 noise vectors and the faces this library draws from them (safetensors: in.z, out), to check a runtime against", NULL},
    OPT_SEED("the sample's noise"),
    OPT_NO_EMA,
};
static const cli_opt BENCH_OPTS[] = {
    {"--recipe", CLI_STR, &O.recipe, 0, 0, NULL, "networks and step to time (default seed)", "seed|dcgan|modern"},
    {"--batch", CLI_INT, &O.batch, 2, 4096, "B", "images per step (default 64)", NULL},
    {"--width", CLI_INT, &O.width, 1, 1024, "W", "channel width (default 64)", NULL},
    {"--steps", CLI_INT, &O.steps, 1, 100000000, "N", "timed steps; the median is reported (default 10)", NULL},
    {"--warmup", CLI_INT, &O.warmup, 0, 1000, "N", "untimed steps first (default 2)", NULL},
    OPT_SEED("the weights"),
    OPT_DEVICE,
    OPT_PRECISION("fp32"),
};
static const cli_opt PACK_OPTS[] = {
    {"--data", CLI_STR, &O.data, 0, 0, "DIR", "a folder of PNG/JPEG images, searched recursively (required)", NULL},
    {"--out", CLI_STR, &O.out, 0, 0, "FILE[.xz]", "the packed 64x64 faces; .xz compresses (required)", NULL},
};
const cli_cmd CMDS[] = {
    [CMD_TRAIN] = {"mangagan", "train", "Trains the GAN, writing samples, checkpoints and log.csv into --out.", TRAIN_OPTS,
                   CLI_N(TRAIN_OPTS), "recipes: seed (the Keras blog model), dcgan (PyTorch's example), modern (hinge loss, EMA,\n"
                   "DiffAugment; the README's choice). SIGINT/SIGTERM save a checkpoint and stop."},
    [CMD_EVAL] = {"mangagan", "eval", "Scores a generator (or a set of images) by the sliced Wasserstein distance to real faces.",
                  EVAL_OPTS, CLI_N(EVAL_OPTS), NULL},
    [CMD_SAMPLE] = {"mangagan", "sample", "Draws faces from a trained generator.", SAMPLE_OPTS, CLI_N(SAMPLE_OPTS), NULL},
    [CMD_INTERP] = {"mangagan", "interpolate", "Draws walks through the latent space (spherical interpolation).", INTERP_OPTS,
                    CLI_N(INTERP_OPTS), NULL},
    [CMD_EXPORT] = {"mangagan", "export", "Writes a trained generator as an ONNX model (the moving average when the checkpoint has one).",
                    EXPORT_OPTS, CLI_N(EXPORT_OPTS), "Run it with ONNX Runtime, TensorRT, OpenVINO, ... (README.md, \"Deploying\")."},
    [CMD_BENCH] = {"mangagan", "bench", "Times training steps on synthetic data.", BENCH_OPTS, CLI_N(BENCH_OPTS), NULL},
    [CMD_PACK] = {"mangagan", "pack", "Packs a folder of images into one file that loads in seconds.", PACK_OPTS,
                  CLI_N(PACK_OPTS), NULL},
};

tg_device pick_device(const char *d) {
    if (!strcmp(d, "cpu")) return TG_CPU;
    if (!strcmp(d, "cuda")) return TG_CUDA;
    return tg_cuda_device_count() > 0 ? TG_CUDA : TG_CPU;
}

/* A bundled file (the faces, the held-out faces): $MANGAGAN_DATA for the faces, then next to an
 * installed binary, then the source tree. */
const char *bundled(char *buf, size_t n, const char *file) {
    const char *env = getenv("MANGAGAN_DATA");
    if (env && !strcmp(file, "faces.safetensors.xz")) return env;
    char exe[2048];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(buf, n, "%s/../share/tensorgan/%s", exe, file);
        if (access(buf, R_OK) == 0) return buf;
    }
#ifdef MANGAGAN_SRCDATA
    snprintf(buf, n, "%s/%s", MANGAGAN_SRCDATA, file);
    if (access(buf, R_OK) == 0) return buf;
#endif
    return NULL;
}

/* mkdir -p */
int mkdirs(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* ---- bench ------------------------------------------------------------------------------ */
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int cmd_bench(opts o) {
    if (!o.steps) o.steps = 10;
    gan g;
    gan_init(&g, find_recipe(o.recipe ? o.recipe : "seed"), o.width ? (int)o.width : 64,
             o.batch ? (int)o.batch : 64, pick_device(o.device), o.seed, 1);
    gan_set_precision(&g, o.precision);
    TRY(tg_tensor_fill_uniform(g.real, -1.0f, 1.0f)); /* synthetic data */
    int n = (int)o.steps;
    double *t = need(calloc((size_t)n * 4, sizeof(double)));
    step_stats st = {0};
    for (long s = 0; s < o.warmup + n; s++) {
        double t0 = now();
        gan_step(&g, &st);
        TRY(tg_ctx_sync(g.ctx));
        if (s < o.warmup) continue;
        int k = (int)(s - o.warmup);
        t[k] = now() - t0, t[n + k] = st.t_real, t[2 * n + k] = st.t_fake, t[3 * n + k] = st.t_g;
    }
    double m = median(t, n), mr = median(t + n, n), mf = median(t + 2 * n, n), mg = median(t + 3 * n, n);
    printf("mangagan bench: recipe %s, width %d, batch %d, device %s, %d steps after %ld warm-up\n",
           g.r->name, g.width, g.batch, tg_ctx_device(g.ctx) == TG_CUDA ? "cuda" : "cpu", n, o.warmup);
    printf("  %s\n", tg_ctx_describe(g.ctx));
    printf("  median %.1f ms/step, %.1f images/s, %.1f GFLOP/step, %.1f GFLOP/s\n", m * 1e3,
           g.batch / m, g.flops_per_step * 1e-9, g.flops_per_step / m * 1e-9);
    printf("  phases: D-real %.1f ms, D-fake %.1f ms, G %.1f ms\n", mr * 1e3, mf * 1e3, mg * 1e3);
    printf("  last losses: D(real) %.4f  D(fake) %.4f  G %.4f\n", st.d_real, st.d_fake, st.g);
    printf("  peak RSS %.0f MB\n", peak_rss_mb());
    free(t);
    gan_free(&g);
    return 0;
}

/* ---- pack ------------------------------------------------------------------------------- */
static int cmd_pack(opts o) {
    if (!o.data) bad(CMD_PACK, "--data DIR is required");
    if (!o.out) bad(CMD_PACK, "--out FILE is required");
    cli_out_file("mangagan", "--out", o.out); /* before the images are decoded */
    int skipped = 0;
    double t0 = now();
    tg_dataset *ds = tg_dataset_load(o.data, SIZE, &skipped);
    if (!ds) die("%s", tg_last_error());
    if (skipped) fprintf(stderr, "mangagan: warning: skipped %d unreadable image(s) under %s\n", skipped, o.data);
    TRY(tg_dataset_save(ds, o.out));
    printf("mangagan: packed %lld images from %s into %s (%.1f s)\n", (long long)tg_dataset_count(ds),
           o.data, o.out, now() - t0);
    tg_dataset_free(ds);
    return 0;
}

/* the library's warnings (a slow BLAS, ...) go to stderr */
static void on_log(tg_log_level level, const char *msg, void *user) {
    (void)user;
    fprintf(stderr, "mangagan: %s%s\n", level == TG_LOG_WARN ? "warning: " : "", msg);
}

int main(int argc, char **argv) {
    tg_set_log_callback(on_log, NULL);
    const int c = cli_dispatch("mangagan", "A DCGAN that learns to draw 64x64 anime faces.", CMDS, CLI_N(CMDS), argc, argv);
    if (O.augment && (O.aug = aug_parse(O.augment)) < 0)
        bad(c, "--augment wants a list of color, translation, cutout (or none), got '%s'", O.augment);
    switch (c) {
    case CMD_TRAIN: return cmd_train(O);
    case CMD_EVAL: return cmd_eval(O);
    case CMD_SAMPLE: return cmd_sample(O);
    case CMD_INTERP: return cmd_interpolate(O);
    case CMD_EXPORT: return cmd_export(O);
    case CMD_BENCH: return cmd_bench(O);
    default: return cmd_pack(O);
    }
}
