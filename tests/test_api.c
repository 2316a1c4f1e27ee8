/*
 * test_api.c — the hostile-call table (tests/api_cases.h): every public function called with
 * bad arguments, each row in a forked child so that a crash, a hang or a sanitizer report fails
 * that row instead of ending the suite. A row names the function, the bad argument, the status
 * it must return and a fragment its message must hold; every failure's message must start with
 * the function's own name ("tg_conv2d: ..."), and a call that must succeed must return TG_OK.
 * Run under SAN=1 in CI, where the children are built with ASan + UBSan (and LeakSanitizer
 * checks each child at exit, after the fixture is torn down).
 *
 * The op table (tests/op_cases.c) adds its own hostile calls, derived from its rows: for each
 * public function a row names, the call with ctx NULL, with each required input NULL, with each
 * input on another context and on a context already freed; and each row's arguments out of range
 * (its `bad` configurations). So an op needs no row here unless a row there cannot state it.
 *
 * A last test reads include/tensorgan.h and fails for any declared function with neither a row
 * here nor one in the op table, so a new public function without hostile cases fails the tests.
 *
 * Public API only (plus POSIX for fork, pipes, FIFOs and symlinks; the op table's rows call the
 * library through the public header too).
 */
#define _GNU_SOURCE
#include "op_cases.h"
#include "testutil.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the fixture every row starts from ----------------------------------------------------- */
typedef struct {
    tg_ctx *ctx, *ctx2;   /* two CPU contexts */
    tg_tensor *x;         /* [2,3,8,8] leaf, requires a gradient */
    tg_tensor *w;         /* [4,3,3,3] conv weight, requires a gradient */
    tg_tensor *b;         /* [4] */
    tg_tensor *c3;        /* [3] */
    tg_tensor *m;         /* [2,3] */
    tg_tensor *one;       /* [1] */
    tg_tensor *xo;        /* [2,3,8,8] on ctx2 */
    tg_tensor *r;         /* an op result: relu(x) [2,3,8,8] */
    tg_tensor *loss;      /* mean(relu(x)) [1], requires a gradient */
    tg_module *seq;       /* conv(3->4,3x3) + BN + ReLU + flatten + dense(256->2) */
    tg_module *conv;      /* standalone conv2d 3->4 */
    tg_module *emb;       /* embedding 5 x 3 */
    tg_module *bn;        /* standalone batch norm, 3 channels */
    tg_tensor *p[2];      /* conv's weight and bias */
    tg_optim *adam, *sgd; /* over p */
    tg_state *st;         /* holds conv's state */
    tg_dataset *ds;       /* 4 images of 8x8 */
    uint8_t rgb[4 * 8 * 8 * 3];
    float buf[2 * 3 * 8 * 8];
    int32_t lab[2 * 8 * 8];
    int64_t idx[4];
    char dir[256];        /* a scratch directory the parent made */
} fx;

/* paths in the parent's scratch directory (see make_files) */
static char g_dir[256];
static const char *path_of(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    return p;
}

static int fixture(fx *f) {
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", g_dir);
    f->ctx = tg_ctx_new(TG_CPU, 1);
    f->ctx2 = tg_ctx_new(TG_CPU, 2);
    if (!f->ctx || !f->ctx2) return -1;
    f->x = tg_tensor_new4(f->ctx, 2, 3, 8, 8);
    f->w = tg_tensor_new4(f->ctx, 4, 3, 3, 3);
    f->b = tg_tensor_new4(f->ctx, 4, 0, 0, 0);
    f->c3 = tg_tensor_new4(f->ctx, 3, 0, 0, 0);
    f->m = tg_tensor_new4(f->ctx, 2, 3, 0, 0);
    f->one = tg_tensor_new4(f->ctx, 1, 0, 0, 0);
    f->xo = tg_tensor_new4(f->ctx2, 2, 3, 8, 8);
    if (!f->x || !f->w || !f->b || !f->c3 || !f->m || !f->one || !f->xo) return -1;
    tg_tensor_fill_normal(f->x, 0.0f, 1.0f);
    tg_tensor_fill_normal(f->w, 0.0f, 0.1f);
    tg_tensor_set_requires_grad(f->x, true);
    tg_tensor_set_requires_grad(f->w, true);
    f->r = tg_relu(f->ctx, f->x);
    f->loss = tg_mean(f->ctx, f->r);
    f->seq = tg_sequential(f->ctx);
    if (!f->r || !f->loss || !f->seq) return -1;
    if (tg_sequential_add(f->seq, tg_layer_conv2d(f->ctx, 3, 4, 3, 1, 1, true)) ||
        tg_sequential_add(f->seq, tg_layer_batch_norm(f->ctx, 4, 0.1f, 1e-5f)) ||
        tg_sequential_add(f->seq, tg_layer_relu(f->ctx)) || tg_sequential_add(f->seq, tg_layer_flatten(f->ctx)) ||
        tg_sequential_add(f->seq, tg_layer_dense(f->ctx, 256, 2, true)))
        return -1;
    f->conv = tg_layer_conv2d(f->ctx, 3, 4, 3, 1, 1, true);
    f->emb = tg_layer_embedding(f->ctx, 5, 3);
    f->bn = tg_layer_batch_norm(f->ctx, 3, 0.1f, 1e-5f);
    if (!f->conv || !f->emb || !f->bn || tg_module_params(f->conv, f->p, 2) != 2) return -1;
    f->adam = tg_adam(f->ctx, f->p, 2, 1e-3f, 0.9f, 0.999f, 1e-8f);
    f->sgd = tg_sgd(f->ctx, f->p, 2, 1e-2f, 0.9f);
    f->st = tg_state_new();
    if (!f->adam || !f->sgd || !f->st || tg_state_add_module(f->st, "conv.", f->conv)) return -1;
    for (size_t i = 0; i < sizeof f->rgb; i++) f->rgb[i] = (uint8_t)(i * 37);
    f->ds = tg_dataset_from_memory(f->rgb, 4, 8);
    if (!f->ds) return -1;
    for (int i = 0; i < 4; i++) f->idx[i] = i;
    return 0;
}

/* everything a row did not take (a row that frees a fixture object sets it to NULL) */
static void teardown(fx *f) {
    tg_dataset_free(f->ds);
    tg_state_free(f->st);
    tg_optim_free(f->adam);
    tg_optim_free(f->sgd);
    tg_module_free(f->seq);
    tg_module_free(f->conv);
    tg_module_free(f->emb);
    tg_module_free(f->bn);
    tg_tensor *leaves[] = {f->x, f->w, f->b, f->c3, f->m, f->one, f->xo};
    for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) tg_tensor_free(leaves[i]);
    tg_ctx_free(f->ctx);
    tg_ctx_free(f->ctx2);
}

/* ---- rows ------------------------------------------------------------------------------------ */
#define ANY_FAILURE ((tg_status)-1) /* any status but TG_OK (it depends on the build or machine) */
#define SKIP_ROW ((tg_status)-2)    /* the row does not apply here (returned by its body) */

typedef struct {
    const char *fn;     /* the public function called */
    const char *what;   /* the bad argument, in words */
    tg_status want;     /* its status; TG_OK: the call must succeed */
    const char *frag;   /* the message must hold this (besides starting with "fn: ") */
    tg_status (*call)(fx *f);
    int line;           /* in api_cases.h; 0 for a call derived from the op table */
} hrow;

/* bodies: P for a function returning a pointer (NULL is its failure), S for a status, V for a
 * void function (its failure is tg_last_status after it), N for a value whose failure is `bad`,
 * B for a block of statements that returns a status */
#define P(e) return (e) ? TG_OK : tg_last_status();
#define S(e) return (e);
#define V(e) (e); return tg_last_status();
#define N(e, bad) return (e) == (bad) ? tg_last_status() : TG_OK;
#define B(...) __VA_ARGS__
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)

/* shapes and helpers the rows use */
static const int64_t S_X[4] = {2, 3, 8, 8};
static tg_status leave_ok(const void *p) { return p ? TG_OK : tg_last_status(); }
/* a module's forward function that returns NULL with no failure behind it */
static tg_tensor *user_forward(tg_module *self, tg_tensor *const *in, int n_in, void *user) {
    (void)self, (void)in, (void)n_in, (void)user;
    return NULL;
}

/* forwards the ONNX export refuses: a loss inside, and the input itself as the output */
static tg_tensor *mean_forward(tg_module *self, tg_tensor *const *in, int n_in, void *user) {
    (void)self, (void)n_in, (void)user;
    return tg_mean(tg_tensor_ctx(in[0]), tg_relu(tg_tensor_ctx(in[0]), in[0]));
}
static tg_tensor *identity_forward(tg_module *self, tg_tensor *const *in, int n_in, void *user) {
    (void)self, (void)n_in, (void)user;
    return in[0];
}
/* an exported module of one input x [2,3,8,8] (named name) */
static tg_status export1(tg_module *m, const char *name, int ndim, int64_t batch, const char *out, const char *path) {
    tg_onnx_input in = {name, ndim, {batch, 3, 8, 8}, NULL};
    return tg_module_export_onnx(m, &in, 1, out, path);
}

#define H(fn_, what_, want_, frag_, ...) \
    static tg_status CAT(row_, __LINE__)(fx * f) { (void)f; __VA_ARGS__ }
#include "api_cases.h"
#undef H
#define H(fn_, what_, want_, frag_, ...) {#fn_, what_, want_, frag_, CAT(row_, __LINE__), __LINE__},
static const hrow ROWS[] = {
#include "api_cases.h"
};
#undef H
#define NROWS ((int)(sizeof ROWS / sizeof ROWS[0]))

/* ---- the child ------------------------------------------------------------------------------ */
/* Runs row r and writes a verdict line into fd: "ok", "skip", or what went wrong. */
static void child(const hrow *r, int fd) {
    char out[1400];
    fx f;
    alarm(60); /* a hang is a failure: SIGALRM ends the child */
    if (fixture(&f) != 0) {
        snprintf(out, sizeof out, "the fixture failed: %s", tg_last_error());
        if (write(fd, out, strlen(out))) {}
        _exit(3);
    }
    tg_clear_error();
    const tg_status got = r->call(&f);
    char msg[1100];
    snprintf(msg, sizeof msg, "%s", tg_last_error());
    const tg_status last = tg_last_status();
    int bad = 0;
    if (got == SKIP_ROW) {
        snprintf(out, sizeof out, "skip");
    } else if (r->want == TG_OK) {
        bad = got != TG_OK;
        if (bad) snprintf(out, sizeof out, "must succeed, got %s: %s", tg_status_str(got), msg);
    } else {
        char head[96];
        snprintf(head, sizeof head, "%s: ", r->fn);
        if (got == TG_OK) bad = 1, snprintf(out, sizeof out, "accepted (TG_OK); expected %s", tg_status_str(r->want));
        else if (r->want != ANY_FAILURE && got != r->want)
            bad = 1, snprintf(out, sizeof out, "got %s, expected %s: %s", tg_status_str(got), tg_status_str(r->want), msg);
        else if (last != got)
            bad = 1, snprintf(out, sizeof out, "returned %s but tg_last_status() says %s", tg_status_str(got),
                              tg_status_str(last));
        else if (strncmp(msg, head, strlen(head)) != 0)
            bad = 1, snprintf(out, sizeof out, "the message does not start with \"%s\": \"%s\"", head, msg);
        else if (r->frag[0] && !strstr(msg, r->frag))
            bad = 1, snprintf(out, sizeof out, "the message lacks \"%s\": \"%s\"", r->frag, msg);
    }
    if (!bad && got != SKIP_ROW) snprintf(out, sizeof out, "ok");
    teardown(&f);
    if (write(fd, out, strlen(out))) {}
    close(fd);
    exit(bad); /* exit, not _exit: LeakSanitizer checks the child */
}

/* Forks row r; returns 0 pass, 1 fail, 2 skip, printing why it failed. */
static int run_row(const hrow *r, int verbose) {
    int pfd[2];
    if (pipe(pfd) != 0) fail_msg("pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    if (pid < 0) fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        close(pfd[0]);
        child(r, pfd[1]);
    }
    close(pfd[1]);
    char verdict[1400] = {0};
    size_t got = 0;
    ssize_t k;
    while (got < sizeof verdict - 1 && (k = read(pfd[0], verdict + got, sizeof verdict - 1 - got)) > 0) got += (size_t)k;
    close(pfd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    const char *why = NULL;
    char sig[64];
    if (WIFSIGNALED(status)) {
        snprintf(sig, sizeof sig, "crashed (signal %d%s)", WTERMSIG(status), WTERMSIG(status) == SIGALRM ? ": a hang" : "");
        why = sig;
    } else if (WEXITSTATUS(status) != 0 && !strcmp(verdict, "ok")) {
        why = "exited non-zero after passing (a sanitizer or leak report at exit?)";
    } else if (WEXITSTATUS(status) != 0 || strcmp(verdict, "ok") != 0) {
        if (!strcmp(verdict, "skip") && WEXITSTATUS(status) == 0) return 2;
        why = verdict[0] ? verdict : "exited without a verdict (a sanitizer report?)";
    }
    if (!why) {
        if (verbose) printf("  ok   %s: %s\n", r->fn, r->what);
        return 0;
    }
    if (r->line) printf("  FAIL tests/api_cases.h:%d %s (%s): %s\n", r->line, r->fn, r->what, why);
    else printf("  FAIL tests/op_cases.c %s (%s): %s\n", r->fn, r->what, why);
    return 1;
}

/* ---- the scratch files ---------------------------------------------------------------------- */
static void make_files(void) {
    snprintf(g_dir, sizeof g_dir, "%s/tg_api_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_dir)) fail_msg("mkdtemp: %s", strerror(errno));
    if (mkfifo(path_of("fifo"), 0600) != 0) fail_msg("mkfifo: %s", strerror(errno));
    FILE *g = fopen(path_of("garbage.safetensors"), "wb");
    if (!g) fail_msg("fopen");
    fputs("this is not a safetensors file, nor an image", g);
    fclose(g);
    g = fopen(path_of("short.png"), "wb"); /* a PNG signature and nothing else */
    fwrite("\x89PNG\r\n\x1a\n", 1, 8, g);
    fclose(g);
    if (mkdir(path_of("empty"), 0700) != 0 || mkdir(path_of("loops"), 0700) != 0) fail_msg("mkdir");
    /* two links back to their own directory: a naive recursive scan visits 2^depth paths */
    char target[512];
    snprintf(target, sizeof target, "%s", path_of("loops"));
    char l1[600], l2[600];
    snprintf(l1, sizeof l1, "%s/a", target);
    snprintf(l2, sizeof l2, "%s/b", target);
    if (symlink(".", l1) != 0 || symlink(".", l2) != 0) fail_msg("symlink");
}

static void remove_files(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd)) {}
}

/* ---- hostile calls derived from the op table ------------------------------------------------ */
typedef enum { D_CTX_NULL, D_INPUT_NULL, D_OTHER_CTX, D_FREED_CTX, D_BAD_ARG } derived_kind;
static struct {
    const tu_op_case *c;
    derived_kind kind;
    int arg; /* the input (D_INPUT_NULL, D_OTHER_CTX) or the bad configuration (D_BAD_ARG) */
} g_derived; /* set by the parent before the fork; the child runs it */

/* The row's inputs on ctx (values from its ranges; NULL where absent), into in[]. */
static void derived_inputs(tg_ctx *ctx, const tu_op_check *q, tg_tensor **in) {
    for (int i = 0; i < TU_MAX_IN; i++) in[i] = NULL;
    for (int i = 0; i < q->n_in; i++) {
        if (q->in[i].absent) continue;
        int64_t n = 1;
        for (int d = 0; d < q->in[i].ndim; d++) n *= q->in[i].shape[d];
        float *v = malloc(sizeof(float) * (size_t)n);
        if (!v) continue;
        tu_fill(v, n, q->in[i].lo, q->in[i].hi);
        in[i] = tu_tensor(ctx, q->in[i].ndim, q->in[i].shape, v, q->in[i].requires_grad);
        free(v);
    }
}

static tg_status derived_call(fx *f) {
    const tu_op_case *c = g_derived.c;
    const tu_op_check *q = &c->check;
    tg_tensor *in[TU_MAX_IN], *other = NULL;
    tg_ctx *ctx = f->ctx;
    if (g_derived.kind == D_FREED_CTX) ctx = tg_ctx_new(TG_CPU, 1); /* the inputs on a context freed before the call */
    derived_inputs(ctx, q, in);
    if (g_derived.kind == D_FREED_CTX) tg_ctx_free(ctx); /* deferred until its last leaf goes */
    for (int i = 0; i < q->n_in; i++)
        if (!q->in[i].absent && !in[i]) return TG_ERR_NOMEM; /* (fails the row: not the status expected) */
    tg_tensor *args[TU_MAX_IN];
    memcpy(args, in, sizeof args);
    const void *cfg = q->cfg;
    switch (g_derived.kind) {
    case D_CTX_NULL: ctx = NULL; break;
    case D_INPUT_NULL: args[g_derived.arg] = NULL; break;
    case D_OTHER_CTX: {
        const tu_in_spec *s = &q->in[g_derived.arg];
        other = tg_tensor_new(f->ctx2, s->ndim, s->shape);
        if (!other) return TG_ERR_NOMEM;
        args[g_derived.arg] = other;
        break;
    }
    case D_BAD_ARG: cfg = c->bad[g_derived.arg].cfg; break;
    case D_FREED_CTX: break;
    }
    const tg_status s = leave_ok(q->lib(ctx, args, cfg));
    tg_ctx_clear_tape(f->ctx); /* (clean-up keeps the failure's message and status, as in the rows) */
    tg_tensor_free(other);
    for (int i = 0; i < TU_MAX_IN; i++) tg_tensor_free(in[i]);
    return s;
}

/* Input i may be NULL when some row of the same function leaves it absent (a bias, gamma). */
static int input_optional(const tu_op_case *cases, int n, const char *fn, int i) {
    for (int k = 0; k < n; k++)
        if (cases[k].fn && !strcmp(cases[k].fn, fn) && (i >= cases[k].check.n_in || cases[k].check.in[i].absent))
            return 1;
    return 0;
}

static int run_derived(const tu_op_case *c, derived_kind kind, int arg, tg_status want, const char *frag,
                       const char *what, int verbose) {
    g_derived.c = c, g_derived.kind = kind, g_derived.arg = arg;
    const hrow r = {c->fn, what, want, frag, derived_call, 0};
    return run_row(&r, verbose);
}

static void test_op_table_calls(void **state) {
    (void)state;
    make_files();
    int n = 0;
    const tu_op_case *cases = tu_op_cases(&n);
    const int verbose = getenv("TG_API_VERBOSE") != NULL;
    int failed = 0, ran = 0, fns = 0;
    char what[256];
    for (int k = 0; k < n; k++) {
        const tu_op_case *c = &cases[k];
        if (!c->fn) continue;
        /* the generic calls once per function, on its first row (the small reference shapes) */
        int first = 1;
        for (int j = 0; j < k; j++) first &= !(cases[j].fn && !strcmp(cases[j].fn, c->fn));
        if (first) {
            fns++;
            snprintf(what, sizeof what, "op table row \"%s\": ctx NULL", c->name);
            failed += run_derived(c, D_CTX_NULL, 0, TG_ERR_INVALID, "ctx is NULL", what, verbose) == 1, ran++;
            snprintf(what, sizeof what, "op table row \"%s\": inputs on a freed context", c->name);
            failed += run_derived(c, D_FREED_CTX, 0, TG_ERR_INVALID, "freed", what, verbose) == 1, ran++;
            for (int i = 0; i < c->check.n_in; i++) {
                if (c->check.in[i].absent) continue;
                if (!input_optional(cases, n, c->fn, i)) {
                    snprintf(what, sizeof what, "op table row \"%s\": input %d NULL", c->name, i);
                    failed += run_derived(c, D_INPUT_NULL, i, TG_ERR_INVALID, " is NULL", what, verbose) == 1, ran++;
                }
                snprintf(what, sizeof what, "op table row \"%s\": input %d on another context", c->name, i);
                failed += run_derived(c, D_OTHER_CTX, i, TG_ERR_DEVICE, "another context", what, verbose) == 1, ran++;
            }
        }
        for (int b = 0; b < c->n_bad; b++) {
            snprintf(what, sizeof what, "op table row \"%s\": bad argument %d (\"%s\")", c->name, b, c->bad[b].frag);
            failed += run_derived(c, D_BAD_ARG, b, c->bad[b].want, c->bad[b].frag, what, verbose) == 1, ran++;
        }
    }
    remove_files();
    printf("api: %d hostile calls derived from the op table (%d functions), %d failed\n", ran, fns, failed);
    if (fns < 30) fail_msg("only %d functions named by the op table", fns);
    if (failed) fail_msg("%d of %d hostile calls from the op table failed (listed above)", failed, ran);
}

/* ---- tests ----------------------------------------------------------------------------------- */
static void test_hostile_calls(void **state) {
    (void)state;
    make_files();
    const char *only = getenv("TG_API_ROW"); /* a line number of api_cases.h, to run one row */
    const int verbose = getenv("TG_API_VERBOSE") != NULL;
    int failed = 0, skipped = 0, ran = 0;
    for (int i = 0; i < NROWS; i++) {
        if (only && atoi(only) != ROWS[i].line) continue;
        const int r = run_row(&ROWS[i], verbose);
        ran++;
        failed += r == 1;
        skipped += r == 2;
    }
    remove_files();
    printf("api: %d hostile calls, %d failed, %d skipped (not applicable here)\n", ran, failed, skipped);
    if (failed) fail_msg("%d of %d hostile calls failed (listed above)", failed, ran);
}

/* Every function include/tensorgan.h declares has at least one row. */
static void test_every_function_has_rows(void **state) {
    (void)state;
    const char *path = getenv("TG_HEADER") ? getenv("TG_HEADER") : "include/tensorgan.h";
    FILE *h = fopen(path, "r");
    if (!h) fail_msg("cannot open %s (run from the source tree, or set TG_HEADER)", path);
    char line[1024];
    int declared = 0, missing = 0, n_cases = 0;
    const tu_op_case *cases = tu_op_cases(&n_cases);
    while (fgets(line, sizeof line, h)) {
        if (strncmp(line, "TG_API ", 7) != 0) continue; /* declarations start with TG_API */
        char *paren = strchr(line, '(');
        if (!paren) continue;
        char *e = paren;
        while (e > line && (isalnum((unsigned char)e[-1]) || e[-1] == '_')) e--;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(paren - e), e);
        declared++;
        int rows = 0;
        for (int i = 0; i < NROWS; i++) rows += !strcmp(ROWS[i].fn, name);
        for (int i = 0; i < n_cases; i++) rows += cases[i].fn && !strcmp(cases[i].fn, name);
        if (!rows) printf("  no hostile row for %s\n", name), missing++;
    }
    fclose(h);
    printf("api: %d functions declared in %s, %d rows\n", declared, path, NROWS);
    if (declared < 100) fail_msg("only %d declarations found in %s: is it the header?", declared, path);
    if (missing) fail_msg("%d public functions have no row in tests/api_cases.h or tests/op_cases.c", missing);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_function_has_rows),
        cmocka_unit_test(test_hostile_calls),
        cmocka_unit_test(test_op_table_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
