/*
 * backend_cpu.c — the CPU backend's table (struct tg_backend_ops, generated from the slot list
 * of lib/backend.h): the context's life, its description, memory, dense GEMMs (CBLAS sgemm
 * through lib/cpu/blas.c, or a plain fallback) here; the kernels in one file per op family
 * beside it, as in cuda/ (activation.c, batchnorm.c, conv.c, elementwise.c, loss.c, optim.c,
 * pool.c, softmax.c, channel.c, augment.c, tensor.c). Per-element math comes from
 * tg_math.h, shared with the CUDA kernels; reductions accumulate in double, so the thread count
 * changes results by rounding at most.
 */
#include "cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


tg_status tg_cpu_init(tg_ctx *ctx) { return TG_OK; }
void tg_cpu_shutdown(tg_ctx *ctx) {}

/* "model name" from /proc/cpuinfo, or "unknown CPU" */
static void cpu_model(char *out, size_t n) {
    snprintf(out, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *v = strchr(line, ':');
        if (!v) break;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        v[strcspn(v, "\n")] = 0;
        snprintf(out, n, "%s", v);
        break;
    }
    fclose(f);
}

void tg_cpu_describe(tg_ctx *ctx, char *buf, size_t n) {
    char model[160];
    cpu_model(model, sizeof model);
    const tg_cpu_isa *isa = tg_cpu_isa_get();
    if (tg_be_precision(ctx) == TG_PRECISION_BF16)
        snprintf(buf, n, "CPU: %s, %d thread%s; precision bf16: convolutions and dense layers on %s kernels, %s",
                 model, omp_get_max_threads(), omp_get_max_threads() == 1 ? "" : "s", isa->name, isa->bf16_how);
    else
        snprintf(buf, n, "CPU: %s, %d thread%s; precision fp32: convolutions on %s kernels; BLAS (dense layers): %s",
                 model, omp_get_max_threads(), omp_get_max_threads() == 1 ? "" : "s", isa->name, tg_blas_info());
}

/* A request larger than the machine's physical memory is refused (NULL: the caller reports
 * TG_ERR_NOMEM) rather than overcommitted and then killed by the OOM killer when touched. */
void *tg_cpu_alloc(tg_ctx *ctx, size_t bytes) {
    if (bytes > tg_host_memory() || bytes > SIZE_MAX - 64) return NULL;
    bytes = (size_t)tg_round_up((int64_t)bytes, 64);
    return aligned_alloc(64, bytes ? bytes : 64);
}
void tg_cpu_release(tg_ctx *ctx, void *p) { free(p); }
tg_status tg_cpu_sync(tg_ctx *ctx) { return TG_OK; }
tg_status tg_cpu_check(tg_ctx *ctx, const char *what) { return TG_OK; }
tg_status tg_cpu_to_device(tg_ctx *ctx, void *dst, const void *src, size_t bytes) {
    memcpy(dst, src, bytes);
    return TG_OK;
}
tg_status tg_cpu_to_host(tg_ctx *ctx, void *dst, const void *src, size_t bytes) {
    memcpy(dst, src, bytes);
    return TG_OK;
}

/* Fallback when no CBLAS library can be loaded: correct, cache-blocked, not fast. bf16: A and B
 * rounded to bf16 as they are read (a bf16 GEMM the table-driven one cannot take). */
static void naive_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                       float *C, int64_t ldc, int bf16) {
#pragma omp parallel for if (M * N * K > PAR_MIN)
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        for (int64_t j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
        for (int64_t k = 0; k < K; k++) {
            const float ak = ta ? A[k * lda + i] : A[i * lda + k];
            const float a = alpha * (bf16 ? tg_bf16_round(ak) : ak);
            if (a == 0.0f) continue;
            if (bf16) {
                for (int64_t j = 0; j < N; j++) c[j] += a * tg_bf16_round(tb ? B[j * ldb + k] : B[k * ldb + j]);
            } else if (!tb) {
                const float *b = B + k * ldb;
                for (int64_t j = 0; j < N; j++) c[j] += a * b[j];
            } else {
                for (int64_t j = 0; j < N; j++) c[j] += a * B[j * ldb + k];
            }
        }
    }
}

/* Dense layers' GEMMs (and the host GEMM of tg_swd, on a context of its own): CBLAS (OpenBLAS,
 * lib/cpu/blas.c), or the plain loops when there is none or the sizes exceed its ints. */
void tg_cpu_gemm(tg_ctx *ctx, const tg_gemm_args *g) {
    const float *A = tg_f(g->A), *B = tg_f(g->B);
    float *C = tg_f(g->C);
    if (g->prec == TG_PRECISION_BF16) {
        if (!tg_cpu_gemm_bf16(ctx, g))
            naive_gemm(g->ta, g->tb, g->M, g->N, g->K, g->alpha, A, g->lda, B, g->ldb, g->beta, C, g->ldc, 1);
        return;
    }
    tg_sgemm_fn f = tg_blas_sgemm();
    const int64_t big = INT32_MAX;
    if (f && g->M <= big && g->N <= big && g->K <= big && g->lda <= big && g->ldb <= big && g->ldc <= big)
        f(101 /* CblasRowMajor */, g->ta ? 112 : 111, g->tb ? 112 : 111, (int)g->M, (int)g->N, (int)g->K, g->alpha,
          A, (int)g->lda, B, (int)g->ldb, g->beta, C, (int)g->ldc);
    else
        naive_gemm(g->ta, g->tb, g->M, g->N, g->K, g->alpha, A, g->lda, B, g->ldb, g->beta, C, g->ldc, 0);
}

/* every slot of lib/backend.h's list, by name */
#define TG_CPU_ENTRY(ret, name, params) .name = tg_cpu_##name,
const struct tg_backend_ops tg_cpu_backend = {
    .name = "cpu",
    TG_BACKEND_SLOTS(TG_CPU_ENTRY)
};
