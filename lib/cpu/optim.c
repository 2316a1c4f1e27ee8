/*
 * optim.c (CPU) — the fused Adam and SGD updates behind lib/optim.c; mirrors cuda/optim.cu.
 */
#include "cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* tg_adam1 over [lo, hi) with the epsilon placement fixed per loop, so each vectorises */
static void adam_range(float *restrict p, const float *restrict g, float *restrict m,
                       float *restrict v, tg_adam_hyper h, int64_t lo, int64_t hi) {
    if (h.keras_eps) {
        h.keras_eps = 1;
        for (int64_t i = lo; i < hi; i++) tg_adam1(&p[i], g[i], &m[i], &v[i], &h);
    } else {
        h.keras_eps = 0;
        for (int64_t i = lo; i < hi; i++) tg_adam1(&p[i], g[i], &m[i], &v[i], &h);
    }
}

tg_status tg_cpu_adam(tg_ctx *ctx, const tg_adam_item *items, int count,
                          const tg_adam_hyper *h) {
    for (int k = 0; k < count; k++) {
        const tg_adam_item *it = &items[k];
        tg_adam_hyper hk = *h;
        hk.bc1 = it->bc1;
        hk.bc2 = it->bc2;
        PAR_RANGES(it->n, adam_range(it->p, it->g, it->m, it->v, hk, lo, hi));
    }
    return TG_OK;
}

tg_status tg_cpu_sgd(tg_ctx *ctx, const tg_sgd_item *items, int count, float lr,
                         float momentum) {
    for (int k = 0; k < count; k++) {
        const tg_sgd_item *it = &items[k];
#pragma omp parallel for if (it->n > PAR_MIN)
        for (int64_t i = 0; i < it->n; i++)
            tg_sgd1(&it->p[i], it->g[i], it->buf ? &it->buf[i] : NULL, lr, momentum, it->first);
    }
    return TG_OK;
}
