/*
 * blas.c — finds a CBLAS sgemm at run time and makes sure OpenBLAS uses a fast kernel.
 *
 * Why dlopen: Debian's OpenBLAS 0.3.21 does not recognise recent Xeons, falls back to its generic
 * "Prescott" kernel and runs sgemm about 5x slower than its SkylakeX kernel on the same CPU.
 * OpenBLAS picks its kernel once, in its constructor, from OPENBLAS_CORETYPE. Loading it ourselves
 * lets us set that variable first (only when the user has not), from what cpuid says the CPU can
 * do. If the program already loaded OpenBLAS, we use that copy and report its kernel as is.
 */
#define _GNU_SOURCE
#include "../internal.h"

#include <cpuid.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static tg_sgemm_fn blas_sgemm;
static char blas_desc[256] = "none";

/* AVX-512F with OS support for the zmm state -> "SkylakeX"; AVX2+FMA -> "Haswell"; else NULL. */
static const char *pick_coretype(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return NULL;
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx) return NULL;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    (void)xhi;
    if ((xlo & 0x6) != 0x6) return NULL; /* xmm+ymm state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return NULL;
    const int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1;
    if (avx512f && (xlo & 0xe0) == 0xe0) return "SkylakeX";
    if (avx2 && fma) return "Haswell";
#endif
    return NULL;
}

static void blas_load(void) {
    const char *chosen = NULL;
    const char *user = getenv("OPENBLAS_CORETYPE");
    void *h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_NOLOAD);
    const int preloaded = h != NULL;
    if (!h) {
        if (!user) {
            chosen = pick_coretype();
            if (chosen) setenv("OPENBLAS_CORETYPE", chosen, 0);
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
    const char *lib = "OpenBLAS";
    if (!h) {
        h = dlopen("libcblas.so.3", RTLD_NOW | RTLD_LOCAL);
        lib = "libcblas.so.3";
    }
    if (!h) {
        h = dlopen("libblas.so.3", RTLD_NOW | RTLD_LOCAL);
        lib = "libblas.so.3";
    }
    if (h) blas_sgemm = (tg_sgemm_fn)dlsym(h, "cblas_sgemm");
    if (!blas_sgemm) {
        snprintf(blas_desc, sizeof blas_desc,
                 "built-in fallback GEMM (slow: no CBLAS found; install libopenblas0)");
        tg_log(TG_LOG_WARN, "libtensorgan: %s", blas_desc);
        return;
    }
    char *(*corename)(void) = (char *(*)(void))dlsym(h, "openblas_get_corename");
    char *(*config)(void) = (char *(*)(void))dlsym(h, "openblas_get_config");
    if (corename) {
        const char *how = user       ? "from OPENBLAS_CORETYPE"
                          : preloaded ? "already loaded by the program"
                          : chosen    ? "chosen by libtensorgan"
                                      : "detected by OpenBLAS";
        snprintf(blas_desc, sizeof blas_desc, "%s (core %s, %s)", config ? config() : "OpenBLAS",
                 corename(), how);
        if (!user && !chosen && strcmp(corename(), "Prescott") == 0)
            tg_log(TG_LOG_WARN, "libtensorgan: OpenBLAS runs its slow generic kernel (%s)",
                   blas_desc);
    } else {
        snprintf(blas_desc, sizeof blas_desc, "%s (cblas_sgemm)", lib);
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
