/*
 * test_mangagan.c — the mangagan program, run as a user runs it: a few training steps of a tiny
 * model on the CPU for both recipes (finite losses, samples, checkpoints, weights that move), a
 * resumed run that reproduces the uninterrupted one bit for bit, sample and interpolate outputs
 * (valid PNGs of the right size), refusals (another recipe's checkpoint) and bad command lines
 * (a clear message and a nonzero exit). The binary is $BUILD/examples/mangagan.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[256], bin[256], data[300];

static int setup(void **s) {
    (void)s;
    const char *b = getenv("BUILD");
    snprintf(bin, sizeof bin, "%s/examples/mangagan", b ? b : "build");
    snprintf(dir, sizeof dir, "/tmp/tg_mg_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    /* a tiny dataset: 12 random 64x64 PNGs */
    snprintf(data, sizeof data, "%s/data", dir);
    mkdir(data, 0755);
    uint8_t px[64 * 64 * 3];
    tu_seed(1);
    for (int i = 0; i < 12; i++) {
        for (size_t k = 0; k < sizeof px; k++) px[k] = (uint8_t)tu_uniform(0, 256);
        char f[400];
        snprintf(f, sizeof f, "%s/img%02d.png", data, i);
        if (tg_image_save_png(f, px, 64, 64) != TG_OK) return -1;
    }
    return 0;
}
static int teardown(void **s) {
    (void)s;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* runs "bin args", captures stdout+stderr into out; returns the exit status. Runs that are
 * expected to fail exit from the middle of the program on purpose: under SAN=1, LeakSanitizer
 * is told not to count what such an exit leaves allocated. */
static int run_env(const char *env, char *out, size_t cap, const char *fmt, va_list ap) {
    char args[2048], cmd[2400];
    vsnprintf(args, sizeof args, fmt, ap);
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=2 %s %s %s 2>&1", env, bin, args); /* env may override */
    return tu_run_capture(cmd, out, cap);
}

static int run_env_fmt(const char *env, char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = run_env(env, out, cap, fmt, ap);
    va_end(ap);
    return rc;
}

static int run(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = run_env("", out, cap, fmt, ap);
    va_end(ap);
    return rc;
}

static int run_failing(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = run_env("ASAN_OPTIONS=detect_leaks=0", out, cap, fmt, ap);
    va_end(ap);
    return rc;
}


static long file_size(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

static void test_train_both_recipes(void **state) {
    (void)state;
    char out[16384], o[400], f[500];
    const char *recipes[3] = {"seed", "dcgan", "modern"};
    for (int k = 0; k < 3; k++) {
        snprintf(o, sizeof o, "%s/run-%s", dir, recipes[k]);
        int rc = run(out, sizeof out, "train --data %s --out %s --steps 4 --batch 4 --width 4 --recipe %s "
                     "--device cpu --sample-every 2 --checkpoint-every 2 --flip", data, o, recipes[k]);
        if (rc) fail_msg("train exited %d:\n%s", rc, out);
        char *l = tu_log_losses(o);
        int lines = 0;
        for (char *q = l; (q = strchr(q, '\n')); q++) lines++;
        assert_int_equal(lines, 5); /* header + 4 steps */
        assert_null(strstr(l, "nan"));
        assert_null(strstr(l, "inf"));
        free(l);
        snprintf(f, sizeof f, "%s/samples/step-000002.png", o);
        tu_png_size(f, 8 * 64 + 9 * 2, 8 * 64 + 9 * 2);
        snprintf(f, sizeof f, "%s/generator.safetensors", o);
        assert_true(file_size(f) > 0);
    }
}

/* weights move: the generator file at step 2 differs from the one at step 4 */
static void test_weights_move(void **state) {
    (void)state;
    char out[16384], o[400], f[500], cmd[1200];
    snprintf(o, sizeof o, "%s/move", dir);
    assert_int_equal(run(out, sizeof out, "train --data %s --out %s --steps 2 --batch 4 --width 4 --device cpu", data, o), 0);
    snprintf(cmd, sizeof cmd, "cp %s/generator.safetensors %s/g2.safetensors", o, o);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(run(out, sizeof out, "train --out %s --steps 4 --resume --device cpu --data %s", o, data), 0);
    snprintf(cmd, sizeof cmd, "cmp -s %s/generator.safetensors %s/g2.safetensors", o, o);
    assert_int_not_equal(system(cmd), 0);
    (void)f;
}

/* Results do not depend on the thread count: 3 steps on 1 and on 2 OpenMP threads give the same
 * losses to the last digit (batch 32: the first D layer's weight gradient, K = 32 x 32 x 32, takes
 * the GEMM's split-K path) */
static void test_thread_count_independent(void **state) {
    (void)state;
    char out[16384], a[400], b[400];
    snprintf(a, sizeof a, "%s/threads1", dir);
    snprintf(b, sizeof b, "%s/threads2", dir);
    const char *common = "--data examples/mangagan/data/faces.safetensors.xz --steps 3 --batch 32 --width 4 "
                         "--device cpu --seed 3";
    int rc = run_env_fmt("OMP_NUM_THREADS=1", out, sizeof out, "train --out %s %s", a, common);
    if (rc) fail_msg("1 thread exited %d:\n%s", rc, out);
    assert_non_null(strstr(out, "1 thread"));
    rc = run(out, sizeof out, "train --out %s %s", b, common);
    if (rc) fail_msg("2 threads exited %d:\n%s", rc, out);
    assert_non_null(strstr(out, "2 threads"));
    char *la = tu_log_losses(a), *lb = tu_log_losses(b);
    if (strcmp(la, lb)) fail_msg("1 thread and 2 threads differ:\n%s\nvs\n%s", la, lb);
    free(la), free(lb);
}

/* 3 steps + resume to 6 gives exactly the losses of 6 uninterrupted steps */
static void test_resume_equivalence(void **state) {
    (void)state;
    char out[16384], a[400], b[400];
    snprintf(a, sizeof a, "%s/straight", dir);
    snprintf(b, sizeof b, "%s/resumed", dir);
    const char *common = "--batch 4 --width 4 --device cpu --seed 7 --flip --checkpoint-every 100";
    assert_int_equal(run(out, sizeof out, "train --data %s --out %s --steps 6 %s", data, a, common), 0);
    assert_int_equal(run(out, sizeof out, "train --data %s --out %s --steps 3 %s", data, b, common), 0);
    int rc = run(out, sizeof out, "train --data %s --out %s --steps 6 --resume --device cpu", data, b);
    if (rc) fail_msg("resume exited %d:\n%s", rc, out);
    assert_non_null(strstr(out, "resuming"));
    char *la = tu_log_losses(a), *lb = tu_log_losses(b);
    if (strcmp(la, lb)) fail_msg("resumed losses differ:\n%s\nvs\n%s", la, lb);
    free(la), free(lb);
    /* a checkpoint of another recipe is refused with a clear message */
    rc = run_failing(out, sizeof out, "train --data %s --out %s --steps 9 --resume --recipe dcgan", data, b);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "trained with recipe 'seed', not 'dcgan'"));
    rc = run_failing(out, sizeof out, "train --data %s --out %s --steps 9 --resume --width 8", data, b);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "has width 4, not 8"));
}

/* --precision bf16: the start-up line says so; 1 and 2 threads give the same losses; 3 steps
 * resumed to 6 (the checkpoint's precision taken without asking) give the 6 straight steps'
 * losses; and the losses are not the fp32 run's (the precision is applied) */
static void test_bf16_training(void **state) {
    (void)state;
    char out[16384], a[400], b[400], c[400], f[400];
    snprintf(a, sizeof a, "%s/bf16-t1", dir);
    snprintf(b, sizeof b, "%s/bf16-t2", dir);
    snprintf(c, sizeof c, "%s/bf16-resumed", dir);
    snprintf(f, sizeof f, "%s/bf16-fp32", dir);
    const char *common = "--recipe dcgan --batch 8 --width 8 --device cpu --seed 5 --flip --checkpoint-every 100";
    int rc = run_env_fmt("OMP_NUM_THREADS=1", out, sizeof out, "train --data %s --out %s --steps 6 --precision bf16 %s",
                         data, a, common);
    if (rc) fail_msg("bf16 on 1 thread exited %d:\n%s", rc, out);
    assert_non_null(strstr(out, "precision bf16"));
    rc = run(out, sizeof out, "train --data %s --out %s --steps 6 --precision bf16 %s", data, b, common);
    if (rc) fail_msg("bf16 on 2 threads exited %d:\n%s", rc, out);
    assert_int_equal(run(out, sizeof out, "train --data %s --out %s --steps 3 --precision bf16 %s", data, c, common), 0);
    rc = run(out, sizeof out, "train --data %s --out %s --steps 6 --resume --device cpu", data, c);
    if (rc) fail_msg("bf16 resume exited %d:\n%s", rc, out);
    assert_non_null(strstr(out, "precision bf16"));
    assert_int_equal(run(out, sizeof out, "train --data %s --out %s --steps 6 %s", data, f, common), 0);
    char *la = tu_log_losses(a), *lb = tu_log_losses(b), *lc = tu_log_losses(c), *lf = tu_log_losses(f);
    if (strcmp(la, lb)) fail_msg("bf16: 1 thread and 2 threads differ:\n%s\nvs\n%s", la, lb);
    if (strcmp(la, lc)) fail_msg("bf16: the resumed run differs:\n%s\nvs\n%s", la, lc);
    if (!strcmp(la, lf)) fail_msg("bf16 and fp32 runs have the same losses: the precision was not applied");
    free(la), free(lb), free(lc), free(lf);
    rc = run_failing(out, sizeof out, "train --data %s --out %s/x --steps 1 --precision tf32 --device cpu", data, dir);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "--precision tf32: tg_ctx_set_precision: TF32 is a CUDA precision"));
}

/* A checkpoint written before module trees (commit f655bae, tests/data/README.md) still loads:
 * it samples, and training resumes from it to step 4 */
static void test_old_checkpoint(void **state) {
    (void)state;
    char out[16384], o[400], cmd[1200];
    snprintf(o, sizeof o, "%s/old-ck", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp tests/data/mangagan-dcgan-w2-f655bae.safetensors %s/checkpoint.safetensors",
             o, o);
    assert_int_equal(system(cmd), 0);
    int rc = run(out, sizeof out, "sample --checkpoint %s/checkpoint.safetensors --n 2 --out %s/old.png --device cpu", o, o);
    if (rc) fail_msg("sampling the old checkpoint exited %d:\n%s", rc, out);
    snprintf(cmd, sizeof cmd, "%s/old.png", o);
    tu_png_size(cmd, 2 * 64 + 3 * 2, 64 + 2 * 2);
    rc = run(out, sizeof out, "train --data %s --out %s --steps 4 --resume --device cpu", data, o);
    if (rc) fail_msg("resuming the old checkpoint exited %d:\n%s", rc, out);
    assert_non_null(strstr(out, "resuming"));
    assert_non_null(strstr(out, "step 4/4"));
}

/* The quality tools: --eval-every writes the SWD into log.csv at the asked steps and the plot
 * beside the grids; an EMA generator with the hinge loss, spectral normalisation and DiffAugment
 * resumes bit for bit (its weights and the evaluations included); eval scores a checkpoint (its average or, with --no-ema, G) and an
 * image set; a resume that asks for another loss is refused. */
static void test_eval_ema_hinge(void **state) {
    (void)state;
    char out[16384], a[400], b[400], f[600];
    snprintf(a, sizeof a, "%s/q-straight", dir);
    snprintf(b, sizeof b, "%s/q-resumed", dir);
    const char *common = "--batch 4 --width 4 --device cpu --recipe modern --loss hinge --ema 0.9 --lr-d 0.0004 "
                         "--sn 1 --augment color,translation,cutout "
                         "--eval-every 2 --eval-n 8 --sample-every 3 --checkpoint-every 100";
    int rc = run(out, sizeof out, "train --data %s --out %s --steps 4 %s --eval-data %s", data, a, common, data);
    if (rc) fail_msg("train exited %d:\n%s", rc, out);
    assert_non_null(strstr(out, "loss hinge, learning rates G 0.0002 D 0.0004, EMA of G with decay 0.9, "
                                "spectral normalisation in D (no BatchNorm there), augment color,translation,cutout"));
    assert_non_null(strstr(out, "step 2: SWD x1e3 to held-out faces"));
    char *l = tu_log_losses(a);
    /* header, then steps 1-4: the SWD column is filled at steps 2 and 4 only */
    assert_non_null(strstr(l, "step|d_loss_real,d_loss_fake,g_loss,d_x,d_g_z,swd\n"));
    int filled = 0, lines = 0;
    for (char *q = l; *q; q = strchr(q, '\n') + 1) {
        char *nl = strchr(q, '\n'), *last = nl;
        while (last > q && last[-1] != ',') last--;
        if (q != l) filled += last < nl, lines++;
    }
    assert_int_equal(lines, 4);
    assert_int_equal(filled, 2);
    assert_null(strstr(l, "nan"));
    free(l);
    snprintf(f, sizeof f, "%s/samples/losses.png", a);
    tu_png_size(f, 960, 640);
    /* 2 steps, then resumed to 4: the same losses, evaluations and averaged generator */
    assert_int_equal(run(out, sizeof out, "train --data %s --out %s --steps 2 %s --eval-data %s", data, b, common, data), 0);
    rc = run(out, sizeof out, "train --data %s --out %s --steps 4 --resume --device cpu --eval-every 2 --eval-n 8 "
             "--eval-data %s --sample-every 3", data, b, data);
    if (rc) fail_msg("resume exited %d:\n%s", rc, out);
    char *la = tu_log_losses(a), *lb = tu_log_losses(b);
    if (strcmp(la, lb)) fail_msg("resumed run differs:\n%s\nvs\n%s", la, lb);
    free(la), free(lb);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cmp -s %s/generator.safetensors %s/generator.safetensors", a, b);
    assert_int_equal(system(cmd), 0);
    /* eval: the checkpoint's average, its G, and an image set against itself */
    char ck[500];
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", a);
    double s_ema = -1, s_g = -1, s_set = -1;
    rc = run(out, sizeof out, "eval --checkpoint %s --data %s --n 8", ck, data);
    if (rc || !strstr(out, "mean ")) fail_msg("eval exited %d:\n%s", rc, out);
    s_ema = atof(strstr(out, "mean ") + 5);
    assert_int_equal(run(out, sizeof out, "eval --checkpoint %s --data %s --n 8 --no-ema", ck, data), 0);
    s_g = atof(strstr(out, "mean ") + 5);
    assert_int_equal(run(out, sizeof out, "eval --images %s --data %s --n 8", data, data), 0);
    s_set = atof(strstr(out, "mean ") + 5);
    if (!(s_ema > 0 && s_g > 0 && s_ema != s_g && s_set >= 0 && s_set < s_ema))
        fail_msg("eval scores: average %g, G %g, the set against itself %g", s_ema, s_g, s_set);
    /* refusals */
    rc = run_failing(out, sizeof out, "train --data %s --out %s --steps 6 --resume --loss ns", data, b);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "was trained with loss 'hinge', not 'ns'"));
    rc = run_failing(out, sizeof out, "eval --checkpoint %s --images %s", ck, data);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "give either --checkpoint"));
    rc = run_failing(out, sizeof out, "eval --images %s --data %s --n 20", data, data);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "has 12 images, fewer than the 20"));
    rc = run_failing(out, sizeof out, "train --data %s --out %s --steps 6 --resume --augment color", data, b);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "was trained with --augment color,translation,cutout"));
    rc = run_failing(out, sizeof out, "train --augment flip");
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "--augment wants a list of color, translation, cutout"));
    rc = run_failing(out, sizeof out, "train --loss wasserstein");
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "--loss wants one of bce|ns|hinge, got 'wasserstein'"));
}

static void test_sample_and_interpolate(void **state) {
    (void)state;
    char out[16384], o[400], ck[500], f[600];
    snprintf(o, sizeof o, "%s/straight", dir);
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", o);
    snprintf(f, sizeof f, "%s/grid.png", dir);
    int rc = run(out, sizeof out, "sample --checkpoint %s --n 5 --out %s --seed 3 --device cpu", ck, f);
    if (rc) fail_msg("sample exited %d:\n%s", rc, out);
    tu_png_size(f, 3 * 64 + 4 * 2, 2 * 64 + 3 * 2);
    snprintf(f, sizeof f, "%s/singles", dir);
    char g[600];
    snprintf(g, sizeof g, "%s/generator.safetensors", o);
    assert_int_equal(run(out, sizeof out, "sample --checkpoint %s --n 3 --out %s --device cpu", g, f), 0);
    snprintf(g, sizeof g, "%s/singles/sample-0002.png", dir);
    tu_png_size(g, 64, 64);
    snprintf(f, sizeof f, "%s/walk.png", dir);
    rc = run(out, sizeof out, "interpolate --checkpoint %s --out %s --rows 2 --cols 3 --device cpu", ck, f);
    if (rc) fail_msg("interpolate exited %d:\n%s", rc, out);
    tu_png_size(f, 3 * 64 + 4 * 2, 2 * 64 + 3 * 2);
}

static void test_bad_command_lines(void **state) {
    (void)state;
    char out[16384];
    struct {
        const char *args, *needle;
        int code;
    } cases[] = {
        {"", "usage", 2},
        {"frobnicate", "unknown command 'frobnicate'", 2},
        {"train --steps -1", "--steps wants a whole number", 2},
        {"train --steps 10x", "--steps wants a whole number", 2},
        {"train --batch", "--batch needs a value", 2},
        {"train --recipe keras", "--recipe wants one of seed|dcgan|modern, got 'keras'", 2},
        {"train --device tpu", "--device wants one of auto|cpu|cuda, got 'tpu'", 2},
        {"bench --precision fp16", "--precision wants one of fp32|bf16|tf32, got 'fp16'", 2},
        {"train --colour red", "unknown option --colour", 2},
        {"train --resume=1", "--resume takes no value", 2},
        {"eval extra", "unexpected argument 'extra'", 2},
        {"train --augment colour", "--augment wants a list of color", 2},
        {"train --data /nonexistent/faces --out /tmp/tg_mg_never", "/nonexistent/faces does not exist", 1},
        {"sample --out x.png", "--checkpoint FILE is required", 2},
        {"sample --checkpoint /nonexistent.safetensors --out x.png", "cannot open", 1},
        {"pack --data /tmp", "--out FILE is required", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run_failing(out, sizeof out, "%s", cases[i].args);
        if (rc != cases[i].code || !strstr(out, cases[i].needle))
            fail_msg("'mangagan %s' exited %d (want %d) with:\n%s", cases[i].args, rc, cases[i].code, out);
    }
    /* every command's --help (and -h) lists its options with their meaning, and exits 0 */
    const char *helps[][3] = {{"train --help", "--recipe seed|dcgan|modern", "--resume"},
                              {"train -h", "--eval-every N", "default"},
                              {"eval -h", "--checkpoint FILE", "--images"},
                              {"sample --help", "--out X.png|DIR", "--n N"},
                              {"interpolate --help", "--rows R", "--cols C"},
                              {"bench --help", "--warmup N", "--recipe"},
                              {"pack --help", "--data DIR", "--out FILE"},
                              {"--help", "interpolate", "COMMAND --help"}};
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
        int rc = run(out, sizeof out, "%s", helps[i][0]);
        if (rc != 0 || !strstr(out, helps[i][1]) || !strstr(out, helps[i][2]))
            fail_msg("'mangagan %s' exited %d without \"%s\" and \"%s\":\n%s", helps[i][0], rc, helps[i][1],
                     helps[i][2], out);
    }
    /* an output that cannot be written is refused before any work */
    int rco = run_failing(out, sizeof out, "pack --data %s --out /nonexistent-dir/x.safetensors", data);
    if (rco != 1 || !strstr(out, "/nonexistent-dir does not exist"))
        fail_msg("pack to a missing directory exited %d with:\n%s", rco, out);
    /* files that are not what the option wants: the message says what the file is not */
    char txt[400], pk[400];
    snprintf(txt, sizeof txt, "%s/notes.txt", dir);
    FILE *fp = fopen(txt, "w");
    assert_non_null(fp);
    fputs("these are my notes, not a checkpoint\n", fp);
    fclose(fp);
    int rc = run_failing(out, sizeof out, "sample --checkpoint %s --out %s/x.png", txt, dir);
    if (rc != 1 || !strstr(out, "notes.txt is not a safetensors file"))
        fail_msg("sample on a text file exited %d with:\n%s", rc, out);
    rc = run_failing(out, sizeof out, "train --data %s --out %s/never --steps 1", txt, dir);
    if (rc != 1 || !strstr(out, "is neither an image directory nor a packed image dataset") ||
        !strstr(out, "not a safetensors file"))
        fail_msg("train on a text file exited %d with:\n%s", rc, out);
    /* a packed dataset given as a checkpoint */
    snprintf(pk, sizeof pk, "%s/pack.safetensors", dir);
    assert_int_equal(run(out, sizeof out, "pack --data %s --out %s", data, pk), 0);
    rc = run_failing(out, sizeof out, "sample --checkpoint %s --out %s/x.png", pk, dir);
    if (rc != 1 || !strstr(out, "is not a mangagan checkpoint or generator file"))
        fail_msg("sample on a packed dataset exited %d with:\n%s", rc, out);
    /* --resume without a checkpoint */
    char o[400];
    snprintf(o, sizeof o, "%s/nothing-here", dir);
    assert_int_equal(run_failing(out, sizeof out, "train --data %s --out %s --resume", data, o), 1);
    assert_non_null(strstr(out, "no checkpoint"));
}

/* A NaN in training: the optimizer refuses the step, mangagan stops naming it, and the last
 * checkpoint (step 4) is intact and usable. */
static void test_divergence_stops(void **state) {
    (void)state;
    char o[400], ck[500], out[16384];
    snprintf(o, sizeof o, "%s/diverged", dir);
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", o);
    int rc = run_env_fmt("ASAN_OPTIONS=detect_leaks=0 MANGAGAN_POISON_STEP=5", out, sizeof out,
                         "train --data %s --out %s --steps 8 --batch 4 --width 4 --device cpu "
                         "--checkpoint-every 2 --sample-every 100", data, o);
    if (rc != 1 || !strstr(out, "training diverged at step 5") || !strstr(out, "NaN/Inf") ||
        !strstr(out, "is the last good one"))
        fail_msg("exit %d:\n%s", rc, out);
    tg_state *s = tg_state_new();
    if (tg_state_load(s, ck, false) != TG_OK) fail_msg("%s", tg_last_error());
    assert_string_equal(tg_state_get_meta(s, "step"), "4");
    tg_state_free(s);
    rc = run(out, sizeof out, "sample --checkpoint %s --out %s/after.png --n 4 --device cpu", ck, o);
    if (rc) fail_msg("sample from the last good checkpoint exited %d:\n%s", rc, out);
}

/* A checkpoint write that fails (disk full, I/O error, read-only file system: injected by the
 * tests/faultio.c shim after the first checkpoint) stops training with a message naming the
 * file and the error, and the previous checkpoint stays intact and loadable. */
static void test_checkpoint_write_faults(void **state) {
    (void)state;
    const char *b = getenv("BUILD");
    char shim[300];
    snprintf(shim, sizeof shim, "%s/tests/libfaultio.so", b ? b : "build");
    if (access(shim, R_OK) != 0) fail_msg("%s missing (make builds it)", shim);
    if (b && strstr(b, "san")) skip(); /* an ASan binary cannot take a preloaded library */
    static const struct { const char *fault, *needle; } cases[] = {
        {"enospc", "No space left on device"}, {"eio", "Input/output error"},
        {"erofs", "Read-only file system"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char o[400], ck[500], env[800], out[16384];
        snprintf(o, sizeof o, "%s/fault-%s", dir, cases[i].fault);
        snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", o);
        snprintf(env, sizeof env, "LD_PRELOAD=%s TG_FAULT_IO=%s TG_FAULT_SKIP=2", shim, cases[i].fault);
        int rc = run_env_fmt(env, out, sizeof out,
                             "train --data %s --out %s --steps 6 --batch 4 --width 4 --device cpu "
                             "--checkpoint-every 2 --sample-every 100", data, o);
        if (rc != 1 || !strstr(out, ".safetensors failed: ") || !strstr(out, cases[i].needle))
            fail_msg("%s: exit %d:\n%s", cases[i].fault, rc, out);
        tg_state *s = tg_state_new();
        if (tg_state_load(s, ck, false) != TG_OK) fail_msg("%s: %s", cases[i].fault, tg_last_error());
        assert_string_equal(tg_state_get_meta(s, "step"), "2");
        tg_state_free(s);
        char cmd[700];
        snprintf(cmd, sizeof cmd, "ls %s | grep -c '\\.tmp\\.' > /dev/null", o);
        if (system(cmd) == 0) fail_msg("%s: a temporary file was left in %s", cases[i].fault, o);
    }
}

/* Runs bin with args (NULL-terminated) in a child with OMP_NUM_THREADS=2, output to /dev/null;
 * returns its pid. */
static pid_t spawn(char *const *args) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("OMP_NUM_THREADS", "2", 1);
        setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(126);
        execv(bin, args);
        _exit(127);
    }
    return pid;
}

static int wait_status(pid_t pid) {
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static int same_file(const char *a, const char *b) {
    FILE *x = fopen(a, "rb"), *y = fopen(b, "rb");
    int same = x && y;
    while (same) {
        int ca = fgetc(x), cb = fgetc(y);
        if (ca != cb) same = 0;
        if (ca == EOF || cb == EOF) break;
    }
    if (x) fclose(x);
    if (y) fclose(y);
    return same;
}

/* Crash consistency: training with a checkpoint every step is killed with SIGKILL at random
 * moments (SOAK_KILLS times, default 6; `make soak` runs 25) and resumed each time; after every
 * kill the checkpoint on disk loads, no temporary file survives a restart, and the final
 * generator is bit for bit the one of an uninterrupted run. */
static void test_soak_kills(void **state) {
    (void)state;
    const char *k = getenv("SOAK_KILLS");
    const int kills = k ? atoi(k) : 6, steps = 40;
    char ref[400], o[400], ck[500], steps_s[16], a[600], bb[600];
    snprintf(ref, sizeof ref, "%s/soak-ref", dir);
    snprintf(o, sizeof o, "%s/soak", dir);
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", o);
    snprintf(steps_s, sizeof steps_s, "%d", steps);
    char *ref_args[] = {bin, "train", "--data", data, "--out", ref, "--steps", steps_s, "--batch", "4",
                        "--width", "4", "--device", "cpu", "--checkpoint-every", "1",
                        "--sample-every", "1000", NULL};
    assert_int_equal(wait_status(spawn(ref_args)), 0);
    tu_seed(2024);
    int done = 0, killed = 0;
    while (!done) {
        const int resume = access(ck, R_OK) == 0;
        char *args[] = {bin, "train", "--data", data, "--out", o, "--steps", steps_s, "--batch", "4",
                        "--width", "4", "--device", "cpu", "--checkpoint-every", "1",
                        "--sample-every", "1000", resume ? "--resume" : NULL, NULL};
        pid_t pid = spawn(args);
        if (killed < kills) {
            struct timespec ts = {0, (long)tu_uniform(5e6, 250e6)};
            nanosleep(&ts, NULL);
            kill(pid, SIGKILL);
        }
        int rc = wait_status(pid);
        if (rc == 0) {
            done = 1;
        } else {
            if (rc != 128 + SIGKILL) fail_msg("training exited %d (not killed)", rc);
            killed++;
            if (access(ck, R_OK) == 0) { /* whatever is on disk loads */
                tg_state *s = tg_state_new();
                if (tg_state_load(s, ck, false) != TG_OK) fail_msg("after kill %d: %s", killed, tg_last_error());
                tg_state_free(s);
            }
        }
        if (killed > kills + 50) fail_msg("no progress after %d kills", killed);
    }
    snprintf(a, sizeof a, "%s/generator.safetensors", ref);
    snprintf(bb, sizeof bb, "%s/generator.safetensors", o);
    if (!same_file(a, bb)) fail_msg("after %d kills the final generator differs from the uninterrupted run's", killed);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q '\\.tmp\\.'", o);
    if (system(cmd) == 0) fail_msg("a temporary file was left in %s", o);
    print_message("soak: %d kills, final generator bit for bit equal\n", killed);
}

/* Ctrl-C: the current step finishes, a checkpoint is written, the exit is clean, and --resume
 * picks it up */
static void test_interrupt(void **state) {
    (void)state;
    char o[400], ck[500], steps[32];
    snprintf(o, sizeof o, "%s/interrupted", dir);
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", o);
    snprintf(steps, sizeof steps, "%d", 100000);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        execl(bin, bin, "train", "--data", data, "--out", o, "--steps", steps, "--batch", "4",
              "--width", "4", "--device", "cpu", "--checkpoint-every", "100000", "--log-every", "1",
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *out = fdopen(fds[0], "r");
    char line[512];
    int seen = 0;
    while (fgets(line, sizeof line, out)) /* wait until it is training */
        if (strstr(line, "step 3/")) {
            seen = 1;
            break;
        }
    assert_true(seen);
    kill(pid, SIGINT);
    char rest[4096] = {0};
    size_t n = fread(rest, 1, sizeof rest - 1, out);
    rest[n] = 0;
    fclose(out);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_non_null(strstr(rest, "interrupted at step"));
    assert_true(file_size(ck) > 0);
    long at = strtol(strstr(rest, "interrupted at step") + strlen("interrupted at step"), NULL, 10);
    assert_true(at >= 3);
    char buf[16384];
    int rc = run(buf, sizeof buf, "train --data %s --out %s --steps %ld --resume --device cpu", data, o, at + 2);
    if (rc || !strstr(buf, "resuming")) fail_msg("resume after Ctrl-C exited %d:\n%s", rc, buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_both_recipes),
        cmocka_unit_test(test_weights_move),
        cmocka_unit_test(test_thread_count_independent),
        cmocka_unit_test(test_resume_equivalence),
        cmocka_unit_test(test_bf16_training),
        cmocka_unit_test(test_old_checkpoint),
        cmocka_unit_test(test_sample_and_interpolate),
        cmocka_unit_test(test_eval_ema_hinge),
        cmocka_unit_test(test_bad_command_lines),
        cmocka_unit_test(test_interrupt),
        cmocka_unit_test(test_divergence_stops),
        cmocka_unit_test(test_checkpoint_write_faults),
        cmocka_unit_test(test_soak_kills),
    };
    return cmocka_run_group_tests_name("mangagan", tests, setup, teardown);
}
