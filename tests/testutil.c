/*
 * testutil.c — see testutil.h.
 */
#include "testutil.h"
#include <sys/wait.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t tu_state = 88172645463325252ull;

void tu_seed(uint64_t s) { tu_state = s * 2654435761ull + 88172645463325252ull; }

static uint64_t tu_next(void) {
    uint64_t x = tu_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return tu_state = x;
}

double tu_uniform(double lo, double hi) {
    return lo + (hi - lo) * ((double)(tu_next() >> 11) * (1.0 / 9007199254740992.0));
}

void tu_fill(float *x, int64_t n, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)tu_uniform(lo, hi);
}

static void close_impl(const float *got, const double *refd, const float *reff, int64_t n,
                       double atol, double rtol, const char *what) {
    int64_t worst = -1;
    double worst_excess = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double r = refd ? refd[i] : (double)reff[i], g = got[i];
        double err = fabs(g - r), tol = atol + rtol * fabs(r);
        if (!(err <= tol)) { /* NaN fails */
            double ex = isnan(err) ? INFINITY : err - tol;
            if (worst < 0 || ex > worst_excess) {
                worst = i;
                worst_excess = ex;
            }
        }
    }
    if (worst >= 0) {
        double r = refd ? refd[worst] : (double)reff[worst];
        fail_msg("%s: element %lld of %lld: got %.7g, expected %.7g (atol %g, rtol %g)", what,
                 (long long)worst, (long long)n, (double)got[worst], r, atol, rtol);
    }
}

void tu_close_f(const float *got, const double *ref, int64_t n, double atol, double rtol,
                const char *what) {
    close_impl(got, ref, NULL, n, atol, rtol, what);
}

void tu_close_ff(const float *got, const float *ref, int64_t n, double atol, double rtol,
                 const char *what) {
    close_impl(got, NULL, ref, n, atol, rtol, what);
}

tg_tensor *tu_tensor(tg_ctx *ctx, int ndim, const int64_t *shape, const float *v,
                     int requires_grad) {
    tg_tensor *t = tg_tensor_new(ctx, ndim, shape);
    if (!t) fail_msg("tg_tensor_new: %s", tg_last_error());
    if (v) assert_int_equal(tg_tensor_write(t, v, tg_tensor_numel(t)), TG_OK);
    tg_tensor_set_requires_grad(t, requires_grad);
    return t;
}

float *tu_read(const tg_tensor *t) {
    int64_t n = tg_tensor_numel(t);
    float *h = malloc(sizeof(float) * (size_t)n);
    assert_non_null(h);
    if (tg_tensor_read(t, h, n) != TG_OK) fail_msg("tg_tensor_read: %s", tg_last_error());
    return h;
}

static int64_t spec_numel(const tu_in_spec *s) {
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= s->shape[i];
    return n;
}

/* Runs the library op on ctx with host inputs vals; returns output and grads (malloc'd). */
typedef struct {
    float *out;
    float *grad[TU_MAX_IN];
} run_result;

static run_result run_lib(tg_ctx *ctx, const tu_op_check *c, float *const *vals, const float *r) {
    run_result res = {0};
    tg_tensor *in[TU_MAX_IN] = {0};
    for (int i = 0; i < c->n_in; i++)
        if (!c->in[i].absent)
            in[i] = tu_tensor(ctx, c->in[i].ndim, c->in[i].shape, vals[i], c->in[i].requires_grad);
    tg_tensor *y = c->lib(ctx, in, c->cfg);
    if (!y) fail_msg("op failed: %s", tg_last_error());
    assert_int_equal(tg_tensor_numel(y), c->out_n);
    res.out = tu_read(y);
    int any = 0;
    for (int i = 0; i < c->n_in; i++) any |= !c->in[i].absent && c->in[i].requires_grad;
    if (any) {
        int64_t shp[TG_MAX_DIMS];
        for (int d = 0; d < tg_tensor_ndim(y); d++) shp[d] = tg_tensor_dim(y, d);
        tg_tensor *rt = tu_tensor(ctx, tg_tensor_ndim(y), shp, r, 0); /* dy has y's shape */
        if (tg_backward_with(ctx, y, rt) != TG_OK) fail_msg("backward: %s", tg_last_error());
        for (int i = 0; i < c->n_in; i++) {
            if (c->in[i].absent || !c->in[i].requires_grad) continue;
            const tg_tensor *g = tg_tensor_grad(in[i]);
            if (!g) fail_msg("input %d got no gradient", i);
            res.grad[i] = tu_read(g);
        }
        tg_tensor_free(rt);
    }
    tg_ctx_clear_tape(ctx);
    for (int i = 0; i < c->n_in; i++) tg_tensor_free(in[i]);
    return res;
}

static void make_inputs(const tu_op_check *c, float **vals, float **r) {
    for (int i = 0; i < c->n_in; i++) {
        vals[i] = NULL;
        if (c->in[i].absent) continue;
        int64_t n = spec_numel(&c->in[i]);
        vals[i] = malloc(sizeof(float) * (size_t)n);
        tu_fill(vals[i], n, c->in[i].lo, c->in[i].hi);
    }
    *r = malloc(sizeof(float) * (size_t)c->out_n);
    tu_fill(*r, c->out_n, -1.0, 1.0);
}

static double ref_loss(const tu_op_check *c, double *const *din, double *out, const float *r) {
    c->ref(din, out, c->cfg);
    double l = 0.0;
    for (int64_t k = 0; k < c->out_n; k++) l += out[k] * (double)r[k];
    return l;
}

double tu_bf16_round(double x) {
    const float f = (float)x;
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return x;
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    float r;
    memcpy(&r, &u, 4);
    return r;
}

void tu_check_op(tg_ctx *ctx, const tu_op_check *c) {
    float *vals[TU_MAX_IN], *r;
    make_inputs(c, vals, &r);
    run_result res = run_lib(ctx, c, vals, r);
    const unsigned bf = tg_ctx_precision(ctx) == TG_PRECISION_BF16 ? c->bf16_in : 0;

    double *din[TU_MAX_IN] = {0}, *rounded[TU_MAX_IN] = {0};
    for (int i = 0; i < c->n_in; i++) {
        if (c->in[i].absent) continue;
        int64_t n = spec_numel(&c->in[i]);
        din[i] = malloc(sizeof(double) * (size_t)n);
        rounded[i] = malloc(sizeof(double) * (size_t)n);
        for (int64_t k = 0; k < n; k++) din[i][k] = vals[i][k];
        for (int64_t k = 0; k < n; k++) rounded[i][k] = bf >> i & 1 ? tu_bf16_round(vals[i][k]) : vals[i][k];
    }
    double *out = malloc(sizeof(double) * (size_t)c->out_n);
    c->ref(rounded, out, c->cfg);
    tu_close_f(res.out, out, c->out_n, c->fwd_atol, c->fwd_rtol, "forward");

    float *r_bf = malloc(sizeof(float) * (size_t)c->out_n); /* the output gradient, rounded */
    for (int64_t k = 0; k < c->out_n; k++) r_bf[k] = (float)tu_bf16_round(r[k]);
    const double h = c->h > 0 ? c->h : 1e-3;
    for (int i = 0; i < c->n_in; i++) {
        if (c->in[i].absent || !c->in[i].requires_grad) continue;
        int64_t n = spec_numel(&c->in[i]);
        double *at[TU_MAX_IN]; /* input i as it is, the others as the op multiplies them */
        for (int j = 0; j < c->n_in; j++) at[j] = j == i ? din[j] : rounded[j];
        const float *ri = bf >> i & 1 ? r_bf : r;
        double *num = malloc(sizeof(double) * (size_t)n);
        for (int64_t k = 0; k < n; k++) {
            double keep = din[i][k];
            din[i][k] = keep + h;
            double lp = ref_loss(c, at, out, ri);
            din[i][k] = keep - h;
            double lm = ref_loss(c, at, out, ri);
            din[i][k] = keep;
            num[k] = (lp - lm) / (2.0 * h);
        }
        char what[64];
        snprintf(what, sizeof what, "gradient of input %d", i);
        tu_close_f(res.grad[i], num, n, c->grad_atol, c->grad_rtol, what);
        free(num);
        free(res.grad[i]);
    }
    for (int i = 0; i < c->n_in; i++) {
        free(din[i]);
        free(rounded[i]);
        free(vals[i]);
    }
    free(r_bf);
    free(out);
    free(res.out);
    free(r);
}

void tu_compare_ctx(tg_ctx *a, tg_ctx *b, const tu_op_check *c, double atol, double rtol) {
    float *vals[TU_MAX_IN], *r;
    make_inputs(c, vals, &r);
    run_result ra = run_lib(a, c, vals, r), rb = run_lib(b, c, vals, r);
    tu_close_ff(rb.out, ra.out, c->out_n, atol, rtol, "forward (second ctx vs first)");
    for (int i = 0; i < c->n_in; i++) {
        if (c->in[i].absent || !c->in[i].requires_grad) continue;
        char what[64];
        snprintf(what, sizeof what, "gradient of input %d (second ctx vs first)", i);
        tu_close_ff(rb.grad[i], ra.grad[i], spec_numel(&c->in[i]), atol, rtol, what);
        free(ra.grad[i]);
        free(rb.grad[i]);
    }
    for (int i = 0; i < c->n_in; i++) free(vals[i]);
    free(ra.out);
    free(rb.out);
    free(r);
}

float *tu_op_results(tg_ctx *ctx, const tu_op_check *c, int64_t *n) {
    float *vals[TU_MAX_IN], *r;
    make_inputs(c, vals, &r);
    run_result res = run_lib(ctx, c, vals, r);
    int64_t total = c->out_n;
    for (int i = 0; i < c->n_in; i++)
        if (res.grad[i]) total += spec_numel(&c->in[i]);
    float *all = malloc(sizeof(float) * (size_t)total);
    assert_non_null(all);
    memcpy(all, res.out, sizeof(float) * (size_t)c->out_n);
    int64_t at = c->out_n;
    for (int i = 0; i < c->n_in; i++) {
        if (!res.grad[i]) continue;
        const int64_t k = spec_numel(&c->in[i]);
        memcpy(all + at, res.grad[i], sizeof(float) * (size_t)k);
        at += k;
        free(res.grad[i]);
    }
    for (int i = 0; i < c->n_in; i++) free(vals[i]);
    free(res.out);
    free(r);
    *n = total;
    return all;
}

int tu_run_capture(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

void tu_png_size(const char *path, int w, int h) {
    uint8_t *rgb;
    int pw, ph;
    if (tg_image_load(path, &rgb, &pw, &ph) != TG_OK) fail_msg("%s", tg_last_error());
    if (pw != w || ph != h) fail_msg("%s is %dx%d, expected %dx%d", path, pw, ph, w, h);
    free(rgb);
}

char *tu_log_losses(const char *out_dir) {
    char f[1024];
    snprintf(f, sizeof f, "%s/log.csv", out_dir);
    FILE *fp = fopen(f, "r");
    if (!fp) fail_msg("no %s", f);
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap), line[1024];
    assert_non_null(buf);
    buf[0] = 0;
    while (fgets(line, sizeof line, fp)) {
        char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL, *last = strrchr(line, ',');
        if (!c1 || !c2 || !last) continue;
        if (n + strlen(line) + 2 > cap) {
            cap = 2 * cap + strlen(line);
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        n += (size_t)snprintf(buf + n, cap - n, "%.*s|%.*s\n", (int)(c1 - line), line, (int)(last - c2 - 1), c2 + 1);
    }
    fclose(fp);
    return buf;
}
