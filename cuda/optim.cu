/*
 * optim.cu — CUDA kernels behind lib/optim.c: one fused launch updates every parameter. The
 * optimizer's item table (pointers, sizes, bias corrections) is copied to the device and
 * blockIdx.y picks the item; the element update is tg_adam1/tg_sgd1.
 */
#include "cuda_common.cuh"

static __global__ void adam_kernel(const tg_adam_item *items, tg_adam_hyper h) {
    const tg_adam_item it = items[blockIdx.y];
    h.bc1 = it.bc1;
    h.bc2 = it.bc2;
    TG_GRID_STRIDE(i, it.n) {
        float m = it.m[i], v = it.v[i], p = it.p[i];
        tg_adam1(&p, it.g[i], &m, &v, &h);
        it.m[i] = m;
        it.v[i] = v;
        it.p[i] = p;
    }
}

static __global__ void sgd_kernel(const tg_sgd_item *items, float lr, float momentum) {
    const tg_sgd_item it = items[blockIdx.y];
    TG_GRID_STRIDE(i, it.n) {
        float p = it.p[i], b = it.buf ? it.buf[i] : 0.0f;
        tg_sgd1(&p, it.g[i], &b, lr, momentum, it.first);
        if (it.buf) it.buf[i] = b;
        it.p[i] = p;
    }
}

/* Copies the table to a device buffer kept in the context (grown, never shrunk), allocated
 * through the backend's allocator like every other device buffer (so allocation-failure tests
 * reach it). */
static void *upload_items(tg_ctx *ctx, const void *items, size_t bytes) {
    tg_cuda_state *s = tg_cuda(ctx);
    if (bytes > s->items_bytes) {
        tg_cuda_release(ctx, s->items); /* waits for the kernels that may still read it */
        s->items = NULL;
        s->items_bytes = 0;
        if (!(s->items = tg_cuda_alloc(ctx, bytes))) return NULL;
        s->items_bytes = bytes;
    }
    /* pageable source: the copy is staged before this returns, so the host table can be reused */
    tg_cuda_note(ctx, cudaMemcpyAsync(s->items, items, bytes, cudaMemcpyHostToDevice, s->stream),
                 "optimizer step");
    return s->items;
}

static unsigned max_blocks(int64_t max_n) {
    unsigned b = tg_blocks(max_n);
    return b > 1024 ? 1024 : b;
}

/* blockIdx.y picks the item, and a grid has at most 65,535 rows: larger tables go in chunks */
#define TG_MAX_GRID_Y 65535

extern "C" {

tg_status tg_cuda_adam(tg_ctx *ctx, const tg_adam_item *items, int count, const tg_adam_hyper *h) {
    const tg_adam_item *d = (const tg_adam_item *)upload_items(ctx, items, sizeof *items * (size_t)count);
    if (!d) return tg_fail(TG_ERR_NOMEM, "tg_optim_step", "cannot allocate the item table");
    for (int k0 = 0; k0 < count; k0 += TG_MAX_GRID_Y) {
        const int nk = count - k0 < TG_MAX_GRID_Y ? count - k0 : TG_MAX_GRID_Y;
        int64_t mx = 1;
        for (int k = k0; k < k0 + nk; k++) mx = items[k].n > mx ? items[k].n : mx;
        dim3 grid(max_blocks(mx), (unsigned)nk);
        adam_kernel<<<grid, TG_THREADS, 0, tg_stream(ctx)>>>(d + k0, *h);
        TG_LAUNCHED(ctx, "adam");
    }
    return TG_OK;
}

tg_status tg_cuda_sgd(tg_ctx *ctx, const tg_sgd_item *items, int count, float lr, float momentum) {
    const tg_sgd_item *d = (const tg_sgd_item *)upload_items(ctx, items, sizeof *items * (size_t)count);
    if (!d) return tg_fail(TG_ERR_NOMEM, "tg_optim_step", "cannot allocate the item table");
    for (int k0 = 0; k0 < count; k0 += TG_MAX_GRID_Y) {
        const int nk = count - k0 < TG_MAX_GRID_Y ? count - k0 : TG_MAX_GRID_Y;
        int64_t mx = 1;
        for (int k = k0; k < k0 + nk; k++) mx = items[k].n > mx ? items[k].n : mx;
        dim3 grid(max_blocks(mx), (unsigned)nk);
        sgd_kernel<<<grid, TG_THREADS, 0, tg_stream(ctx)>>>(d + k0, lr, momentum);
        TG_LAUNCHED(ctx, "sgd");
    }
    return TG_OK;
}

} /* extern "C" */
