/*
 * gemm.c — the table-driven GEMM under every CPU convolution (see cpu.h for what it computes),
 * the plain-C micro-kernel and B packer, and the choice of instruction-set path at run time
 * (cpuid; TG_CPU_ISA=avx512|avx2|generic forces one, for tests and comparisons). The AVX-512
 * and AVX2 paths live in gemm_avx512.c and gemm_avx2.c, each compiled for its own ISA; the
 * WebAssembly SIMD128 path in gemm_wasm.c, chosen when the library is built with -msimd128.
 */
#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include "../tg_omp.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KB_MAX 4096 /* rows of B per packed sliver: 4096 x 32 floats = 512 KiB, meant for L2 */
#define KC 256      /* rows per micro-kernel call: the A sliver and B chunk it reads sit in L1 */
/* Split K: a GEMM with at most SPLIT_NSL slivers of columns and K >= SPLIT_MIN_K (the first D
 * layer's weight gradient: 48 columns, K = batch x 32 x 32) would run on one thread; it is cut
 * into chunks of KSPLIT rows whose partial products are summed in chunk order. The cut depends on
 * the shape alone, never on the thread count, so results stay the same on any number of threads. */
#define KSPLIT 8192
/* Packed A larger than this goes a panel at a time (see tg_cpu_gemm_batch): 2 MiB, twice this
 * core's L2 and a small share of the L3 */
#define A_PANEL ((int64_t)2 << 20)
#define SPLIT_NSL 2
#define SPLIT_MIN_K (4 * KSPLIT)
#define A_BF16_BLOCK 256 /* rows of A gathered at a time before rounding and pairing */
#define B_BF16_ROWS 64   /* rows of B packed as floats at a time before pairing (even) */

/* ---- plain C path -------------------------------------------------------------------------- */
enum { G_MR = 4, G_NR = 16 };

static void kernel_generic(int64_t kc, const float *a, const float *b, float *c, int load) {
    float acc[G_MR][G_NR];
    for (int m = 0; m < G_MR; m++)
        for (int n = 0; n < G_NR; n++) acc[m][n] = load ? c[m * G_NR + n] : 0.0f;
    for (int64_t k = 0; k < kc; k++)
        for (int m = 0; m < G_MR; m++) {
            const float am = a[k * G_MR + m];
            for (int n = 0; n < G_NR; n++) acc[m][n] += am * b[k * G_NR + n];
        }
    for (int m = 0; m < G_MR; m++)
        for (int n = 0; n < G_NR; n++) c[m * G_NR + n] = acc[m][n];
}

void tg_pack_b_scalar(const tg_gemm_tab *g, int64_t k0, int64_t kc, const int32_t *loff,
                      const int32_t *lh, const int32_t *lw, int nlanes, int nr, float *out) {
    const float *src = g->b_src;
    const uint32_t H = (uint32_t)g->b_H, W = (uint32_t)g->b_W;
    for (int64_t k = 0; k < kc; k++) {
        const int32_t ro = g->b_roff[k0 + k], rh = g->b_rh[k0 + k], rw = g->b_rw[k0 + k];
        float *o = out + k * nr;
        for (int l = 0; l < nlanes; l++) {
            const uint32_t h = (uint32_t)(rh + lh[l]), w = (uint32_t)(rw + lw[l]);
            o[l] = (h < H && w < W) ? src[(int64_t)ro + loff[l]] : 0.0f;
        }
        for (int l = nlanes; l < nr; l++) o[l] = 0.0f;
    }
}

static void pack_b_generic(const tg_gemm_tab *g, int64_t k0, int64_t kc, const int32_t *loff,
                           const int32_t *lh, const int32_t *lw, int nlanes, float *out) {
    tg_pack_b_scalar(g, k0, kc, loff, lh, lw, nlanes, G_NR, out);
}

static const tg_cpu_isa isa_generic = {.name = "generic", .mr = G_MR, .nr = G_NR, .kernel = kernel_generic,
                                       .pack_b = pack_b_generic,
                                       .bf16_how = "bf16 operands, float32 multiply-adds in plain C"};
const tg_cpu_isa *tg_cpu_isa_generic(void) { return &isa_generic; }

/* ---- bf16, plain C (cpu.h) ----------------------------------------------------------------- */
/* kc (even) rows of n floats -> kc/2 pair rows (words bf16(row 2i+1) << 16 | bf16(row 2i)),
 * tg_bf16_of's rounding without branches, so the loop vectorises */
static void pair_rows(const float *rows, int64_t kc, int n, tg_bf16 *out) {
    uint32_t *o = (uint32_t *)out;
    for (int64_t k = 0; k < kc; k += 2) {
        const float *r0 = rows + k * n, *r1 = r0 + n;
        uint32_t *ok = o + k / 2 * n;
        for (int l = 0; l < n; l++) {
            uint32_t u0, u1;
            memcpy(&u0, r0 + l, 4);
            memcpy(&u1, r1 + l, 4);
            const uint32_t t0 = (u0 & 0x7fffffffu) > 0x7f800000u ? u0 | 0x400000u : u0 + 0x7fffu + ((u0 >> 16) & 1u);
            const uint32_t t1 = (u1 & 0x7fffffffu) > 0x7f800000u ? u1 | 0x400000u : u1 + 0x7fffu + ((u1 >> 16) & 1u);
            ok[l] = (t1 & 0xffff0000u) | (t0 >> 16);
        }
    }
}

void tg_kernel_bf16_scalar(int64_t kc2, const tg_bf16 *a, const tg_bf16 *b, float *c, int load, int mr,
                           int nr) {
    float acc[TG_MR_MAX * TG_NR_MAX];
    for (int e = 0; e < mr * nr; e++) acc[e] = load ? c[e] : 0.0f;
    for (int64_t k = 0; k < kc2; k++) {
        const tg_bf16 *ak = a + k * mr * 2, *bk = b + k * nr * 2;
        for (int m = 0; m < mr; m++) {
            const float a0 = tg_bf16_f32(ak[2 * m]), a1 = tg_bf16_f32(ak[2 * m + 1]);
            float *t = acc + m * nr;
            /* each product is exact; the odd row's is added first, as vdpbf16ps adds them */
            for (int n = 0; n < nr; n++) t[n] = (t[n] + a1 * tg_bf16_f32(bk[2 * n + 1])) + a0 * tg_bf16_f32(bk[2 * n]);
        }
    }
    for (int e = 0; e < mr * nr; e++) c[e] = acc[e];
}

void tg_pair_b_scalar(const float *rows, int64_t kc, int nr, tg_bf16 *out) {
    pair_rows(rows, kc / 2 * 2, nr, out);
    if (kc % 2) { /* the last row, paired with zeros */
        const float *r0 = rows + (kc - 1) * nr;
        tg_bf16 *o = out + (kc - 1) * nr;
        for (int n = 0; n < nr; n++) o[2 * n] = tg_bf16_of(r0[n]), o[2 * n + 1] = 0;
    }
}

/* ---- choosing a path ----------------------------------------------------------------------- */
unsigned tg_cpu_x86_features(void) {
    unsigned f = 0;
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx) return f;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    (void)xhi;
    if ((xlo & 0x6) != 0x6 || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f; /* xmm+ymm */
    const int avx2 = (b >> 5) & 1, bmi2 = (b >> 8) & 1, avx512f = (b >> 16) & 1,
              avx512dq = (b >> 17) & 1, avx512vl = (b >> 31) & 1;
    const int zmm = (xlo & 0xe0) == 0xe0; /* the OS saves the AVX-512 state */
    if (avx2 && fma) f |= TG_X86_AVX2_FMA;
    if (avx512f && zmm) f |= TG_X86_AVX512F;
    if (avx512f && avx512vl && avx512dq && bmi2 && zmm) f |= TG_X86_AVX512_KERNEL;
    if ((f & TG_X86_AVX512_KERNEL) && __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 5) & 1))
        f |= TG_X86_AVX512_BF16;
#endif
    return f;
}

unsigned tg_cpu_isa_supported(void) {
    const unsigned f = tg_cpu_x86_features();
    unsigned s = 1;
    if ((f & TG_X86_AVX2_FMA) && tg_cpu_isa_avx2()) s |= 2;
    if ((f & TG_X86_AVX512_KERNEL) && tg_cpu_isa_avx512()) s |= 4;
    if ((f & TG_X86_AVX512_BF16) && tg_cpu_isa_avx512bf16()) s |= 8;
    if (tg_cpu_isa_simd128()) s |= 16; /* compiled in only where it runs */
    return s;
}

static pthread_once_t isa_once = PTHREAD_ONCE_INIT;
static const tg_cpu_isa *isa_current;

static const tg_cpu_isa *isa_by_name(const char *name) {
    const unsigned s = tg_cpu_isa_supported();
    if (!strcmp(name, "avx512bf16")) return s & 8 ? tg_cpu_isa_avx512bf16() : NULL;
    if (!strcmp(name, "avx512")) return s & 4 ? tg_cpu_isa_avx512() : NULL;
    if (!strcmp(name, "avx2")) return s & 2 ? tg_cpu_isa_avx2() : NULL;
    if (!strcmp(name, "simd128")) return s & 16 ? tg_cpu_isa_simd128() : NULL;
    if (!strcmp(name, "generic")) return &isa_generic;
    return NULL;
}

static void isa_pick(void) {
    const unsigned s = tg_cpu_isa_supported();
    isa_current = s & 8   ? tg_cpu_isa_avx512bf16()
                  : s & 4 ? tg_cpu_isa_avx512()
                  : s & 2 ? tg_cpu_isa_avx2()
                  : s & 16 ? tg_cpu_isa_simd128()
                          : &isa_generic;
    const char *env = getenv("TG_CPU_ISA");
    if (env && *env) {
        const tg_cpu_isa *f = isa_by_name(env);
        if (f) isa_current = f;
        else
            tg_log(TG_LOG_WARN, "libtensorgan: TG_CPU_ISA=%s is unknown or not supported by this "
                                "CPU; using %s", env, isa_current->name);
    }
}

const tg_cpu_isa *tg_cpu_isa_get(void) {
    pthread_once(&isa_once, isa_pick);
    return isa_current;
}

bool tg_cpu_isa_force(const char *name) {
    pthread_once(&isa_once, isa_pick);
    const tg_cpu_isa *f = isa_by_name(name);
    if (f) isa_current = f;
    return f != NULL;
}

/* ---- the driver ---------------------------------------------------------------------------- */

/* per thread: the packed B sliver, one C tile per A sliver, then a bf16 GEMM's pair rows of B
 * (KC rows as KC/2 pair rows) */
static int64_t per_thread_floats(const tg_cpu_isa *isa, int64_t M, int64_t K) {
    const int64_t kb = K < KB_MAX ? K : KB_MAX, ns = (M + isa->mr - 1) / isa->mr;
    return tg_round_up(kb * isa->nr, 16) + ns * isa->mr * isa->nr + KC / 2 * isa->nr + 16;
}

/* this thread's buffers in its share of the workspace: Bs (packed B), tiles, Bh (bf16 pairs) */
typedef struct {
    float *Bs, *tiles;
    tg_bf16 *Bh;
} thread_bufs;

static thread_bufs thread_buffers(const tg_cpu_isa *isa, float *thread_ws, int64_t per_thread, int64_t M, int64_t K) {
    const int64_t kb = K < KB_MAX ? K : KB_MAX, ns = (M + isa->mr - 1) / isa->mr;
    thread_bufs t;
    t.Bs = (float *)tg_align_ptr(thread_ws + (int64_t)omp_get_thread_num() * per_thread, 64);
    t.tiles = t.Bs + tg_round_up(kb * isa->nr, 16);
    t.Bh = (tg_bf16 *)(t.tiles + ns * isa->mr * isa->nr);
    return t;
}

/* tiles (+)= columns [k0, k0 + kb) of every A sliver times rows [k0, k0 + kb) of B for the nl
 * lanes from n0; load: add to the tiles' contents (else the first chunk overwrites them). FP32:
 * the block is packed whole, then KC rows at a time (in L1) meet every A sliver (from L2). BF16:
 * KC rows at a time are packed, paired and rounded, and meet every A sliver's pair rows. */
static void block_mul(const tg_cpu_isa *isa, const tg_gemm_tab *g, const float *Ap, int64_t n0, int nl, int64_t k0,
                      int64_t kb, const thread_bufs *tb, float *tiles, int load) {
    const int mr = isa->mr, nr = isa->nr;
    const int64_t K = g->K, ns = (g->M + mr - 1) / mr;
    if (!g->bf16) {
        isa->pack_b(g, k0, kb, g->b_loff + n0, g->b_lh + n0, g->b_lw + n0, nl, tb->Bs);
        for (int64_t kc0 = 0; kc0 < kb; kc0 += KC)
            for (int64_t s = 0; s < ns; s++)
                isa->kernel(kb - kc0 < KC ? kb - kc0 : KC, Ap + (s * K + k0 + kc0) * mr, tb->Bs + kc0 * nr,
                            tiles + s * mr * nr, load || kc0 > 0);
        return;
    }
    const int64_t K2 = (K + 1) / 2;
    const tg_bf16 *Ah = (const tg_bf16 *)Ap;
    for (int64_t kc0 = 0; kc0 < kb; kc0 += KC) { /* k0 and kc0 are even: KC, KB_MAX, KSPLIT are */
        const int64_t kc = kb - kc0 < KC ? kb - kc0 : KC, kc2 = (kc + 1) / 2;
        /* B_BF16_ROWS rows at a time as floats (which stay in L1), then rounded into pair rows */
        for (int64_t r0 = 0; r0 < kc; r0 += B_BF16_ROWS) {
            const int64_t rc = kc - r0 < B_BF16_ROWS ? kc - r0 : B_BF16_ROWS;
            isa->pack_b(g, k0 + kc0 + r0, rc, g->b_loff + n0, g->b_lh + n0, g->b_lw + n0, nl, tb->Bs);
            if (isa->pair_b) isa->pair_b(tb->Bs, rc, tb->Bh + r0 * nr);
            else tg_pair_b_scalar(tb->Bs, rc, nr, tb->Bh + r0 * nr);
        }
        for (int64_t s = 0; s < ns; s++) {
            const tg_bf16 *a = Ah + (s * K2 + (k0 + kc0) / 2) * mr * 2;
            if (isa->kernel_bf16) isa->kernel_bf16(kc2, a, tb->Bh, tiles + s * mr * nr, load || kc0 > 0);
            else tg_kernel_bf16_scalar(kc2, a, tb->Bh, tiles + s * mr * nr, load || kc0 > 0, mr, nr);
        }
    }
}

/* split-K partial tiles: SPLIT_NSL slivers x chunks x A slivers x one tile */
static int64_t split_floats(const tg_cpu_isa *isa, int64_t M, int64_t K) {
    if (K < SPLIT_MIN_K) return 0;
    const int64_t nch = (K + KSPLIT - 1) / KSPLIT, ns = (M + isa->mr - 1) / isa->mr;
    return SPLIT_NSL * nch * ns * isa->mr * isa->nr + 16;
}

size_t tg_cpu_gemm_ws(int64_t M, int64_t K, int count, int nthreads) {
    const tg_cpu_isa *isa = tg_cpu_isa_get();
    const int64_t per_thread = per_thread_floats(isa, M, K);
    const int64_t split = count == 1 ? split_floats(isa, M, K) : 0;
    return (size_t)(count * tg_round_up(tg_round_up(M, isa->mr) * K, 16) + 16 + (int64_t)nthreads * per_thread + split) *
           sizeof(float);
}

/* C tile (mc x nl valid of MR x NR) into dst through the tables */
void tg_epilogue_scalar(const tg_gemm_tab *g, int64_t m0, int mc, int64_t n0, int nl,
                        const float *tile, int nr, int acc, const float *bias) {
    const int64_t *off = g->d_off + n0;
    int contig = 1;
    for (int l = 1; l < nl && contig; l++) contig = off[l] == off[0] + l;
    for (int m = 0; m < mc; m++) {
        float *d = g->dst + (m0 + m) * g->d_ms;
        const float *t = tile + (int64_t)m * nr;
        const float b = bias ? bias[m0 + m] : 0.0f;
        if (contig) {
            float *dd = d + off[0];
            if (acc)
                for (int l = 0; l < nl; l++) dd[l] += t[l] + b;
            else
                for (int l = 0; l < nl; l++) dd[l] = t[l] + b;
        } else if (acc) {
            for (int l = 0; l < nl; l++) d[off[l]] += t[l] + b;
        } else {
            for (int l = 0; l < nl; l++) d[off[l]] = t[l] + b;
        }
    }
}

/* A finished tile through the ISA's epilogue, or the plain C one where it has none */
static void write_tile(const tg_cpu_isa *isa, const tg_gemm_tab *g, int64_t m0, int mc, int64_t n0,
                       int nl, const float *tile, int acc, const float *bias) {
    if (isa->epilogue) isa->epilogue(g, m0, mc, n0, nl, tile, acc, bias);
    else tg_epilogue_scalar(g, m0, mc, n0, nl, tile, isa->nr, acc, bias);
}

/* The split-K GEMM (see KSPLIT): item (j, c) multiplies column sliver j by rows [c KSPLIT,
 * (c+1) KSPLIT) into its own partial tiles; then each sliver's partials are summed in chunk
 * order and written through the epilogue. */
static void gemm_split_k(const tg_gemm_tab *g, const tg_cpu_isa *isa, const float *Ap, float *thread_ws,
                         int64_t per_thread, int64_t nsl) {
    const int mr = isa->mr, nr = isa->nr;
    const int64_t M = g->M, N = g->N, K = g->K, ns = (M + mr - 1) / mr, nch = (K + KSPLIT - 1) / KSPLIT;
    const int64_t tile = (int64_t)mr * nr;
    float *part = thread_ws + (int64_t)omp_get_max_threads() * per_thread;
    part = (float *)tg_align_ptr(part, 64); /* [nsl][nch][ns] tiles */
#pragma omp parallel
    {
        const thread_bufs tb = thread_buffers(isa, thread_ws, per_thread, M, K);
#pragma omp for schedule(static)
        for (int64_t it = 0; it < nsl * nch; it++) {
            const int64_t j = it / nch, c = it % nch, n0 = j * nr;
            const int nl = (int)(N - n0 < nr ? N - n0 : nr);
            const int64_t kend = (c + 1) * KSPLIT < K ? (c + 1) * KSPLIT : K;
            float *tiles = part + (j * nch + c) * ns * tile;
            for (int64_t k0 = c * KSPLIT; k0 < kend; k0 += KB_MAX)
                block_mul(isa, g, Ap, n0, nl, k0, kend - k0 < KB_MAX ? kend - k0 : KB_MAX, &tb, tiles, k0 > c * KSPLIT);
        }
#pragma omp for schedule(static)
        for (int64_t it = 0; it < nsl * ns; it++) {
            const int64_t j = it / ns, s = it % ns, n0 = j * nr;
            const int nl = (int)(N - n0 < nr ? N - n0 : nr);
            float *sum = part + (j * nch * ns + s) * tile; /* chunk 0's tile collects the others */
            for (int64_t c = 1; c < nch; c++) {
                const float *pc = part + ((j * nch + c) * ns + s) * tile;
                for (int64_t e = 0; e < tile; e++) sum[e] += pc[e];
            }
            const int mc = (int)(M - s * mr < mr ? M - s * mr : mr);
            write_tile(isa, g, s * mr, mc, n0, nl, sum, g->acc, g->bias);
        }
    }
}

/* Column sliver j (lanes j*nr..) of every GEMM of a batch in turn: GEMMs that read the same
 * source (the phases of a data gradient) find its lines still in cache, and write to the same
 * output lines. Rows [k_lo, k_hi) of B, in blocks of kblk rows: each block is packed, multiplied
 * into the C tiles and written (added from the second block on). tb: this thread's buffers
 * (packed B, its ns C tiles, bf16 pair rows). */
static void sliver(const tg_gemm_tab *gs, int count, const tg_cpu_isa *isa, const float *Ap0,
                   int64_t apk, int64_t j, const thread_bufs *tb, int64_t k_lo, int64_t k_hi, int64_t kblk) {
    const int mr = isa->mr, nr = isa->nr;
    const int64_t M = gs[0].M, K = gs[0].K, ns = (M + mr - 1) / mr;
    float *tiles = tb->tiles;
    for (int i = 0; i < count; i++) {
        const tg_gemm_tab *g = gs + i;
        const float *Ap = Ap0 + i * apk;
        const int64_t N = g->N, n0 = j * nr;
        if (n0 >= N) continue;
        const int nl = (int)(N - n0 < nr ? N - n0 : nr);
        if (K == 0 && k_lo == 0) { /* C = 0 (+ bias) */
            memset(tiles, 0, sizeof(float) * (size_t)(mr * nr));
            for (int64_t s = 0; s < ns; s++)
                tg_epilogue_scalar(g, s * mr, (int)(M - s * mr < mr ? M - s * mr : mr), n0, nl, tiles,
                                   nr, g->acc, g->bias);
            continue;
        }
        /* at most 4 rows and one packing block: B read in place, summed as below */
        if (M <= 4 && K <= KB_MAX && k_lo == 0 && k_hi == K && isa->small_m && !g->bf16 &&
            isa->small_m(g, Ap, n0, tiles)) {
            write_tile(isa, g, 0, (int)M, n0, nl, tiles, g->acc, g->bias);
            continue;
        }
        for (int64_t k0 = k_lo; k0 < k_hi; k0 += kblk) {
            const int64_t kb = k_hi - k0 < kblk ? k_hi - k0 : kblk;
            block_mul(isa, g, Ap, n0, nl, k0, kb, tb, tiles, 0);
            for (int64_t s = 0; s < ns; s++) {
                const float *tile = tiles + s * mr * nr;
                const int mc = (int)(M - s * mr < mr ? M - s * mr : mr);
                const int acc = g->acc || k0 > 0;
                const float *bias = k0 == 0 ? g->bias : NULL;
                write_tile(isa, g, s * mr, mc, n0, nl, tile, acc, bias);
            }
        }
    }
}

void tg_cpu_gemm_batch(const tg_gemm_tab *gs, int count, float *ws) {
    const tg_cpu_isa *isa = tg_cpu_isa_get();
    const int mr = isa->mr, nr = isa->nr;
    const int64_t M = gs[0].M, K = gs[0].K;
    int64_t nsl_max = 0, work = 0; /* column slivers of the widest GEMM; multiply-adds */
    for (int i = 0; i < count; i++) {
        const int64_t nsl = (gs[i].N + nr - 1) / nr;
        nsl_max = nsl > nsl_max ? nsl : nsl_max;
        work += M * gs[i].N * (K ? K : 1);
    }
    (void)work; /* read by an OpenMP clause alone: unused in a build without OpenMP (make wasm) */
    if (M <= 0 || nsl_max <= 0) return;
    float *Ap0 = (float *)tg_align_ptr(ws, 64);
    const int64_t ns = (M + mr - 1) / mr; /* slivers of A */
    const int64_t apk = tg_round_up(ns * mr * K, 16); /* floats of one packed A */
    const int64_t per_thread = per_thread_floats(isa, M, K);
    float *thread_ws = Ap0 + count * apk;
    /* Each A packed whole: sliver s holds rows s*mr.. as [K][mr] (bf16: [K2][mr][2]), zero rows
     * past M. k outer,
     * m inner: mr sequential read streams and one sequential write stream. Sliver s of every
     * GEMM in turn: the phases of a data gradient read different taps of the same weight rows,
     * which the next phase then finds in cache instead of reading the tensor again. */
#pragma omp parallel for schedule(static) if (count * ns * K * mr > 65536)
    for (int64_t it = 0; it < count * ns; it++) {
        const tg_gemm_tab *g = gs + it % count;
        const int64_t s = it / count;
        float *dst = Ap0 + (it % count) * apk + s * K * mr;
        const float *rows[TG_MR_MAX];
        int valid = 0;
        for (int m = 0; m < mr; m++)
            if (s * mr + m < M) rows[valid++] = g->a_src + (s * mr + m) * g->a_ms;
        if (g->bf16) { /* pair rows [K2][mr][2], rounded; a zero row pads an odd K */
            tg_bf16 *h = (tg_bf16 *)(Ap0 + (it % count) * apk) + s * ((K + 1) / 2) * mr * 2;
            /* gathered as floats [k][mr] a block at a time, then rounded and paired in a loop
             * the compiler vectorises */
            float blk[A_BF16_BLOCK * TG_MR_MAX];
            for (int64_t k0 = 0; k0 < K; k0 += A_BF16_BLOCK) {
                const int64_t kb = K - k0 < A_BF16_BLOCK ? K - k0 : A_BF16_BLOCK, kb2 = (kb + 1) / 2 * 2;
                for (int64_t k = 0; k < kb2; k++) {
                    float *d = blk + k * mr;
                    int m = 0;
                    if (k < kb)
                        for (const int64_t o = g->a_off[k0 + k]; m < valid; m++) d[m] = rows[m][o];
                    for (; m < mr; m++) d[m] = 0.0f;
                }
                pair_rows(blk, kb2, mr, h + k0 * mr);
            }
            continue;
        }
        for (int64_t k = 0; k < K; k++) {
            const int64_t o = g->a_off[k];
            float *d = dst + k * mr;
            int m = 0;
            for (; m < valid; m++) d[m] = rows[m][o];
            for (; m < mr; m++) d[m] = 0.0f;
        }
    }
    if (count == 1 && nsl_max <= SPLIT_NSL && K >= SPLIT_MIN_K) {
        gemm_split_k(gs, isa, Ap0, thread_ws, per_thread, nsl_max);
        return;
    }
    /* Every column sliver reads all of packed A. Where A is larger than A_PANEL bytes it would
     * come from memory once per sliver; instead the slivers go through K a panel of A at a time
     * (blocks of kblk rows), so each panel is read from memory once and from cache by the
     * other slivers. The block size depends on the shape only, never on the thread count. */
    int64_t kblk = KB_MAX, kpanel = K;
    if (count == 1 && M > 4 && ns * mr * K * (int64_t)sizeof(float) > A_PANEL) {
        kblk = A_PANEL / (ns * mr * (int64_t)sizeof(float)) / KC * KC;
        kblk = kblk < KC ? KC : kblk > KB_MAX ? KB_MAX : kblk;
        kpanel = kblk;
    }
    const int64_t npanel = K > kpanel ? (K + kpanel - 1) / kpanel : 1;
#pragma omp parallel if (work > (int64_t)1 << 18)
    {
        const thread_bufs tb = thread_buffers(isa, thread_ws, per_thread, M, K);
        const int64_t nstat = tg_cpu_static_items(nsl_max, omp_get_num_threads());
        /* A panel at a time (see A_PANEL): the same static schedule in every panel gives each
         * thread the same slivers, so a sliver's blocks still go in order on one thread */
        for (int64_t p = 0; p < npanel; p++) {
            const int64_t k_lo = p * kpanel, k_hi = K - k_lo < kpanel ? K : k_lo + kpanel;
#pragma omp for schedule(static) nowait
            for (int64_t j = 0; j < nstat; j++)
                sliver(gs, count, isa, Ap0, apk, j, &tb, k_lo, k_hi, kblk);
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t j = nstat; j < nsl_max; j++) sliver(gs, count, isa, Ap0, apk, j, &tb, 0, K, kblk);
    }
}

void tg_cpu_gemm_run(const tg_gemm_tab *g, float *ws) { tg_cpu_gemm_batch(g, 1, ws); }
