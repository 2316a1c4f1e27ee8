/*
 * gemm_wasm.c — the WebAssembly SIMD128 path of the CPU GEMM (cpu.h), for the WebAssembly build
 * (make wasm, compiled with -msimd128): a 6x8 micro-kernel (12 f32x4 accumulators, two B vectors
 * and a broadcast: 15 of the 16 vector registers a browser's x86-64 code generator has), with a
 * separate multiply and add (SIMD128 has no fused multiply-add; neither does the library's fp32
 * path, built with -ffp-contract=off). B is packed by the plain C packer: WebAssembly has no
 * gather. Compiled to nothing elsewhere; the choice is made at build time (gemm.c).
 */
#include "cpu.h"

#ifdef __wasm_simd128__
#include <wasm_simd128.h>

enum { MR = 6, NR = 8 };

static void kernel(int64_t kc, const float *a, const float *b, float *c, int load) {
    v128_t c0[MR], c1[MR];
    if (load) {
        for (int m = 0; m < MR; m++) {
            c0[m] = wasm_v128_load(c + m * NR);
            c1[m] = wasm_v128_load(c + m * NR + 4);
        }
    } else {
        for (int m = 0; m < MR; m++) c0[m] = c1[m] = wasm_f32x4_splat(0.0f);
    }
    for (int64_t k = 0; k < kc; k++) {
        const v128_t b0 = wasm_v128_load(b + k * NR), b1 = wasm_v128_load(b + k * NR + 4);
        const float *ak = a + k * MR;
        for (int m = 0; m < MR; m++) {
            const v128_t am = wasm_v128_load32_splat(ak + m);
            c0[m] = wasm_f32x4_add(c0[m], wasm_f32x4_mul(am, b0));
            c1[m] = wasm_f32x4_add(c1[m], wasm_f32x4_mul(am, b1));
        }
    }
    for (int m = 0; m < MR; m++) {
        wasm_v128_store(c + m * NR, c0[m]);
        wasm_v128_store(c + m * NR + 4, c1[m]);
    }
}

static void pack_b(const tg_gemm_tab *g, int64_t k0, int64_t kc, const int32_t *loff, const int32_t *lh,
                   const int32_t *lw, int nlanes, float *out) {
    tg_pack_b_scalar(g, k0, kc, loff, lh, lw, nlanes, NR, out);
}

static const tg_cpu_isa isa = {.name = "simd128", .mr = MR, .nr = NR, .kernel = kernel, .pack_b = pack_b,
                               .bf16_how = "bf16 operands, float32 multiply-adds in plain C"};
const tg_cpu_isa *tg_cpu_isa_simd128(void) { return &isa; }
#else
const tg_cpu_isa *tg_cpu_isa_simd128(void) { return NULL; }
#endif
