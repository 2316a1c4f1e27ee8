/*
 * test_examples.c — the example programs other than mangagan, run as a user runs them:
 * examples/fashion learns Fashion-MNIST (a slice of it, one epoch: well above chance on held-out
 * images) and refuses a missing data directory with a message naming the package; examples/cgan
 * trains a few steps, writes its class grid and generator, and samples a chosen class from the
 * file; examples/unet (a network that is not a chain) improves held-out PSNR and its saved
 * weights load strictly into its PyTorch twin (bench/unet_torch.py) with the same outputs within
 * 1e-4. Skipped, with the reason, when Debian's dataset-fashion-mnist (or, for the PyTorch part,
 * python3-torch) is not installed.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* Runs build/examples/<prog> args, output into out; returns the exit status. A run expected to
 * fail exits from the middle of the program on purpose: under SAN=1 LeakSanitizer is told not
 * to count what such an exit leaves allocated. */
static int expect_fail;
static int run_prog(const char *prog, char *out, size_t cap, const char *args) {
    const char *b = getenv("BUILD");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%sOMP_NUM_THREADS=2 %s/examples/%s %s 2>&1", expect_fail ? "ASAN_OPTIONS=detect_leaks=0 " : "",
             b ? b : "build", prog, args);
    return tu_run_capture(cmd, out, cap);
}
static int run(char *out, size_t cap, const char *args) { return run_prog("fashion", out, cap, args); }


static void test_fashion_learns(void **state) {
    (void)state;
    if (access(FASHION_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        print_message("skipped: %s is not installed (apt-get install dataset-fashion-mnist)\n", FASHION_DIR);
        skip();
    }
    char out[8192];
    int rc = run(out, sizeof out, "--limit 2000 --test-limit 1000 --epochs 1 --batch 64 --device cpu");
    if (rc) fail_msg("fashion exited %d:\n%s", rc, out);
    const char *a = strstr(out, "fashion: test accuracy ");
    assert_non_null(a);
    double acc = atof(a + strlen("fashion: test accuracy "));
    if (!(acc >= 60.0)) fail_msg("accuracy %.2f%% after one epoch on 2000 images (chance is 10%%):\n%s", acc, out);
}

/* A test set smaller than the evaluation batch (500): the evaluation's index array once held
 * only max(train, test) entries and the batch wrote 500 into it (heap corruption at exit). Under
 * SAN=1 the program is built with AddressSanitizer. */
static void test_fashion_small_test_set(void **state) {
    (void)state;
    if (access(FASHION_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) skip();
    char out[8192];
    int rc = run(out, sizeof out, "--epochs 1 --limit 128 --test-limit 64 --device cpu");
    if (rc || !strstr(out, "fashion: test accuracy")) fail_msg("fashion exited %d:\n%s", rc, out);
}

static void test_fashion_refusals(void **state) {
    (void)state;
    char out[8192];
    expect_fail = 1;
    assert_int_equal(run(out, sizeof out, "--data /nonexistent --epochs 1"), 1);
    assert_non_null(strstr(out, "install Debian's dataset-fashion-mnist"));
    struct {
        const char *args, *needle;
        int code;
    } cases[] = {
        {"--epochs 0", "--epochs wants a whole number in [1, 1000], got '0'", 2},
        {"--bogus", "unknown option --bogus", 2},
        {"--bogus 3", "unknown option --bogus", 2},
        {"--epochs", "--epochs needs a value", 2},
        {"--lr 2", "--lr wants a number", 2},
        {"--device tpu", "--device wants one of cpu|cuda|auto", 2},
        {"stray", "unexpected argument 'stray'", 2},
        /* checked before the data is read or anything trains */
        {"--save /nonexistent-dir/m.safetensors", "/nonexistent-dir does not exist", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run(out, sizeof out, cases[i].args);
        if (rc != cases[i].code || !strstr(out, cases[i].needle) || strstr(out, "epoch 1/"))
            fail_msg("'fashion %s' exited %d (want %d) with:\n%s", cases[i].args, rc, cases[i].code, out);
    }
    expect_fail = 0;
    /* --help: every option with its meaning and default */
    assert_int_equal(run(out, sizeof out, "--help"), 0);
    const char *opts[] = {"--data DIR", "--epochs N", "--batch B", "--lr LR", "--seed S", "--device cpu|cuda|auto",
                          "--limit N", "--test-limit N", "--save FILE", "(default 8)"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        if (!strstr(out, opts[i])) fail_msg("fashion --help lacks %s:\n%s", opts[i], out);
    assert_int_equal(run(out, sizeof out, "-h"), 0);
    assert_non_null(strstr(out, "usage: fashion"));
}

static void test_cgan_command_line(void **state) {
    (void)state;
    char out[8192];
    assert_int_equal(run_prog("cgan", out, sizeof out, "train --help"), 0);
    assert_non_null(strstr(out, "--sample-every N"));
    assert_int_equal(run_prog("cgan", out, sizeof out, "sample -h"), 0);
    assert_non_null(strstr(out, "--class K|all"));
    expect_fail = 1;
    assert_int_equal(run_prog("cgan", out, sizeof out, "train --help-me"), 2);
    assert_non_null(strstr(out, "unknown option --help-me"));
    assert_int_equal(run_prog("cgan", out, sizeof out, "sample --out x.png"), 2);
    assert_non_null(strstr(out, "--checkpoint FILE is required"));
    assert_int_equal(run_prog("cgan", out, sizeof out, "paint"), 2);
    assert_non_null(strstr(out, "unknown command 'paint'"));
    assert_int_equal(run_prog("cgan", out, sizeof out, "train --out /nonexistent-dir/sub"), 1);
    assert_non_null(strstr(out, "cannot be created"));
    expect_fail = 0;
}

static void test_cgan(void **state) {
    (void)state;
    if (access(FASHION_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        print_message("skipped: %s is not installed (apt-get install dataset-fashion-mnist)\n", FASHION_DIR);
        skip();
    }
    char dir[] = "/tmp/tg_cgan_XXXXXX", out[8192], args[512], f[300];
    assert_non_null(mkdtemp(dir));
    snprintf(args, sizeof args, "train --steps 3 --batch 8 --sample-every 3 --device cpu --out %s", dir);
    int rc = run_prog("cgan", out, sizeof out, args);
    if (rc) fail_msg("cgan train exited %d:\n%s", rc, out);
    snprintf(f, sizeof f, "%s/samples/step-000003.png", dir);
    tu_png_size(f, 10 * 32 + 11 * 2, 10 * 32 + 11 * 2); /* a row per class */
    snprintf(args, sizeof args, "sample --checkpoint %s/generator.safetensors --class 7 --n 4 --out %s/seven.png", dir, dir);
    rc = run_prog("cgan", out, sizeof out, args);
    if (rc) fail_msg("cgan sample exited %d:\n%s", rc, out);
    snprintf(f, sizeof f, "%s/seven.png", dir);
    tu_png_size(f, 4 * 32 + 5 * 2, 32 + 2 * 2);
    snprintf(args, sizeof args, "sample --checkpoint %s/generator.safetensors --class 10 --out %s/x.png", dir, dir);
    expect_fail = 1;
    assert_int_equal(run_prog("cgan", out, sizeof out, args), 2); /* refused before the model is loaded */
    expect_fail = 0;
    assert_non_null(strstr(out, "--class wants 0 to 9 or all, got '10'"));
    snprintf(args, sizeof args, "rm -rf %s", dir);
    assert_int_equal(system(args), 0);
}

/* The U-Net denoiser: a short run gains PSNR on held-out images and writes its picture; its
 * weights load with load_state_dict(strict=True) into the PyTorch twin, whose outputs on the
 * saved inputs agree with ours within 1e-4. */
static void test_unet(void **state) {
    (void)state;
    if (access(FASHION_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        print_message("skipped: %s is not installed (apt-get install dataset-fashion-mnist)\n", FASHION_DIR);
        skip();
    }
    char dir[] = "/tmp/tg_unet_XXXXXX", out[8192], args[700], f[300];
    assert_non_null(mkdtemp(dir));
    snprintf(args, sizeof args, "--steps 40 --batch 16 --width 8 --test-n 100 --device cpu --out %s "
             "--save %s/unet.safetensors --check %s/check.safetensors", dir, dir, dir);
    int rc = run_prog("unet", out, sizeof out, args);
    if (rc) fail_msg("unet exited %d:\n%s", rc, out);
    const char *last = NULL; /* the second PSNR line: after training */
    for (const char *p = strstr(out, "held-out PSNR"); p; p = strstr(p + 1, "held-out PSNR")) last = p;
    assert_non_null(last);
    const char *a = strstr(last, "noisy "), *b = strstr(last, "denoised ");
    assert_non_null(a), assert_non_null(b);
    const double noisy = atof(a + 6), den = atof(b + 9);
    if (!(den > noisy + 3.0)) fail_msg("denoised %.2f dB is not 3 dB above noisy %.2f dB:\n%s", den, noisy, out);
    snprintf(f, sizeof f, "%s/denoise.png", dir);
    tu_png_size(f, 8 * 64 + 9 * 2, 3 * 64 + 4 * 2);
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
        print_message("PyTorch part skipped: /usr/bin/python3 has no torch (apt-get install python3-torch)\n");
    } else {
        snprintf(args, sizeof args, "/usr/bin/python3 bench/unet_torch.py --width 8 --weights %s/unet.safetensors "
                 "--check %s/check.safetensors 2>&1", dir, dir);
        rc = tu_run_capture(args, out, sizeof out);
        if (rc) fail_msg("unet_torch.py exited %d:\n%s", rc, out);
        assert_non_null(strstr(out, "loaded strictly"));
    }
    snprintf(args, sizeof args, "rm -rf %s", dir);
    assert_int_equal(system(args), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fashion_learns),
        cmocka_unit_test(test_fashion_small_test_set),
        cmocka_unit_test(test_fashion_refusals),
        cmocka_unit_test(test_cgan_command_line),
        cmocka_unit_test(test_cgan),
        cmocka_unit_test(test_unet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
