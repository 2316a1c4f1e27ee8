/*
 * blas.c — finds a CBLAS sgemm at run time and makes sure OpenBLAS uses a fast kernel.
 *
 * Why dlopen: Debian's OpenBLAS 0.3.21 does not recognise recent Xeons, falls back to its generic
 * "Prescott" kernel and runs sgemm about 5x slower than its SkylakeX kernel on the same CPU.
 * OpenBLAS picks its kernel once, in its constructor, from OPENBLAS_CORETYPE. Loading it ourselves
 * lets us set that variable first (only when the user has not), from what cpuid says the CPU can
 * do. If the program already loaded OpenBLAS, we use that copy and report its kernel as is.
 *
 * A slow GEMM is never silent: the built-in fallback, a reference BLAS, or an OpenBLAS kernel
 * slower than the CPU supports (OPENBLAS_CORETYPE=Haswell set system-wide on an AVX-512 machine)
 * is said plainly in tg_blas_info() and sent to the log callback as a warning.
 * TG_BLAS=builtin forces the built-in GEMM; TG_BLAS=<library> loads that CBLAS instead (tests).
 * The WebAssembly build (make wasm) has no shared libraries and always uses the built-in GEMM.
 */
#define _GNU_SOURCE
#include "cpu.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static tg_sgemm_fn blas_sgemm;
static char blas_desc[256] = "none";

/* AVX-512F with OS support for the zmm state -> "SkylakeX"; AVX2+FMA -> "Haswell"; else NULL. */
static const char *pick_coretype(void) {
    const unsigned f = tg_cpu_x86_features();
    return f & TG_X86_AVX512F ? "SkylakeX" : f & TG_X86_AVX2_FMA ? "Haswell" : NULL;
}

/* OpenBLAS kernel names by speed class on x86: 3 AVX-512, 2 AVX2+FMA, 1 AVX, 0 older. */
static int core_rank(const char *c) {
    static const char *r3[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
    static const char *r2[] = {"Haswell", "Zen", "Excavator"};
    static const char *r1[] = {"Sandybridge", "Bulldozer", "Piledriver", "Steamroller"};
    for (size_t i = 0; i < sizeof r3 / sizeof *r3; i++) if (!strcasecmp(c, r3[i])) return 3;
    for (size_t i = 0; i < sizeof r2 / sizeof *r2; i++) if (!strcasecmp(c, r2[i])) return 2;
    for (size_t i = 0; i < sizeof r1 / sizeof *r1; i++) if (!strcasecmp(c, r1[i])) return 1;
    return 0;
}

static void builtin(const char *why) {
    blas_sgemm = NULL;
    snprintf(blas_desc, sizeof blas_desc, "SLOW: built-in fallback GEMM (%s)", why);
    tg_log(TG_LOG_WARN, "libtensorgan: %s", blas_desc);
}

static void blas_load(void) {
#ifdef __EMSCRIPTEN__
    /* no shared libraries to load in WebAssembly: the built-in GEMM (its SIMD128 micro-kernel) is
     * this build's own, not a fallback, so nothing is logged */
    blas_sgemm = NULL;
    snprintf(blas_desc, sizeof blas_desc, "built-in GEMM (the WebAssembly build has no BLAS)");
    return;
#endif
    const char *chosen = NULL;
    const char *user = getenv("OPENBLAS_CORETYPE");
    if (user && !*user) user = NULL; /* set but empty: OpenBLAS ignores it too */
    const char *force = getenv("TG_BLAS");
    const char *lib = "OpenBLAS", *how = NULL;
    void *h = NULL;
    if (force && *force) {
        if (!strcmp(force, "builtin")) {
            builtin("TG_BLAS=builtin");
            return;
        }
        h = dlopen(force, RTLD_NOW | RTLD_LOCAL);
        lib = force;
        how = "from TG_BLAS";
    } else {
        h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_NOLOAD);
        if (h) how = "already loaded by the program";
        if (!h) {
            if (!user) {
                chosen = pick_coretype();
                if (chosen) setenv("OPENBLAS_CORETYPE", chosen, 1);
            }
            /* prefer OpenBLAS's OpenMP build: it shares our OpenMP threads, where the default
             * pthreads build runs its own threads beside ours (4 busy threads on 2 cores) */
            static const char *openmp_builds[] = {
                "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
                "/usr/lib/aarch64-linux-gnu/openblas-openmp/libopenblas.so.0",
            };
            for (size_t i = 0; !h && i < sizeof openmp_builds / sizeof openmp_builds[0]; i++)
                h = dlopen(openmp_builds[i], RTLD_NOW | RTLD_LOCAL);
            if (!h) h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
        }
        if (!h) h = dlopen("libopenblas.so", RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            h = dlopen("libcblas.so.3", RTLD_NOW | RTLD_LOCAL);
            lib = "libcblas.so.3";
        }
        if (!h) {
            h = dlopen("libblas.so.3", RTLD_NOW | RTLD_LOCAL);
            lib = "libblas.so.3";
        }
    }
    if (h) blas_sgemm = (tg_sgemm_fn)dlsym(h, "cblas_sgemm");
    if (!blas_sgemm) {
        builtin(force && *force ? "TG_BLAS names a library without cblas_sgemm"
                                : "no CBLAS found; install libopenblas0-openmp");
        return;
    }
    char *(*corename)(void) = (char *(*)(void))dlsym(h, "openblas_get_corename");
    char *(*config)(void) = (char *(*)(void))dlsym(h, "openblas_get_config");
    if (corename) {
        if (!how)
            how = user ? "from OPENBLAS_CORETYPE" : chosen ? "chosen by libtensorgan" : "detected by OpenBLAS";
        const char *best = pick_coretype();
        const int slow = best && core_rank(corename()) < core_rank(best);
        int o = snprintf(blas_desc, sizeof blas_desc, "%s (core %s, %s)",
                         config ? config() : "OpenBLAS", corename(), how);
        if (slow && o > 0 && (size_t)o < sizeof blas_desc)
            snprintf(blas_desc + o, sizeof blas_desc - (size_t)o,
                     "; SLOW: this CPU supports the faster %s kernel%s", best,
                     user ? " (unset OPENBLAS_CORETYPE or set it to that)" : "");
        if (slow) tg_log(TG_LOG_WARN, "libtensorgan: %s", blas_desc);
    } else if (dlsym(h, "bli_info_get_version_str") || dlsym(h, "mkl_get_version")) {
        snprintf(blas_desc, sizeof blas_desc, "%s (cblas_sgemm)", lib);
    } else {
        snprintf(blas_desc, sizeof blas_desc,
                 "%s (cblas_sgemm; SLOW: not OpenBLAS, probably the reference BLAS; install "
                 "libopenblas0-openmp)", lib);
        tg_log(TG_LOG_WARN, "libtensorgan: %s", blas_desc);
    }
}

tg_sgemm_fn tg_blas_sgemm(void) {
    pthread_once(&blas_once, blas_load);
    return blas_sgemm;
}

const char *tg_blas_info(void) {
    pthread_once(&blas_once, blas_load);
    return blas_desc;
}
