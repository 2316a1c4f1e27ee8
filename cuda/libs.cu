/*
 * libs.cu — cuBLAS and NCCL, opened with dlopen when the first CUDA context (or NCCL
 * communicator) needs them instead of linked: a program that only ever uses the CPU never maps
 * libcublas and the libcublasLt it pulls in, about 150 MB resident once loaded (their relocated
 * data), which used to be most of a CPU training run's peak RSS. The CUDA runtime stays linked
 * (small, and kernel launches need it at load). Each entry point's type comes from the
 * library's own header (decltype), so a call through the table is checked as a direct call is.
 */
#include "cuda_common.cuh"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define TG_STR2(x) #x
#define TG_STR(x) TG_STR2(x)
#ifndef TG_CUDA_LIBDIR
#define TG_CUDA_LIBDIR "/usr/local/cuda/lib64"
#endif

/* dlopen by soname (the calling library's RUNPATH, LD_LIBRARY_PATH, the loader's cache), then
 * from the toolkit this library was built against; err gets dlerror()'s first answer. */
static void *open_lib(const char *soname, char *err, size_t n) {
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (h) return h;
    const char *e = dlerror();
    snprintf(err, n, "%s", e ? e : "not found");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TG_CUDA_LIBDIR, soname);
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}

/* One entry point into its slot of the table; on a missing one, err names it. */
#define TG_RESOLVE(api, field, sym)                                                             \
    if (ok && !((api).field = (decltype((api).field))dlsym(h, #sym))) {                         \
        snprintf(e, sizeof e, "symbol %s missing", #sym);                                       \
        ok = false;                                                                             \
    }

/* ---- cuBLAS ---------------------------------------------------------------------------------- */
static tg_cublas_api cublas_api;
static bool cublas_ok;
static char cublas_err[256];
static const char *const cublas_soname = "libcublas.so." TG_STR(CUBLAS_VER_MAJOR);
static pthread_once_t cublas_once = PTHREAD_ONCE_INIT;

static void cublas_load(void) {
    char e[200] = "";
    void *h = open_lib(cublas_soname, e, sizeof e);
    if (!h) {
        snprintf(cublas_err, sizeof cublas_err, "cannot load %s (%s)", cublas_soname, e);
        return;
    }
    bool ok = true;
#define TG_CUBLAS_RESOLVE(field, sym) TG_RESOLVE(cublas_api, field, sym)
    TG_CUBLAS_ENTRIES(TG_CUBLAS_RESOLVE)
#undef TG_CUBLAS_RESOLVE
    cublas_ok = ok;
    if (!ok) snprintf(cublas_err, sizeof cublas_err, "%s: %s", cublas_soname, e);
    /* the handle stays open for the life of the process, as a linked library would */
}

const tg_cublas_api *tg_cublas_api_get(const char *fn) {
    pthread_once(&cublas_once, cublas_load);
    if (cublas_ok) return &cublas_api;
    tg_fail(TG_ERR_DEVICE, fn, "%s; install the CUDA toolkit's cuBLAS or set LD_LIBRARY_PATH", cublas_err);
    return NULL;
}

/* ---- NCCL ------------------------------------------------------------------------------------ */
#ifdef TG_WITH_NCCL
static tg_nccl_api nccl_api;
static bool nccl_ok;
static char nccl_err[256];
static const char *const nccl_soname = "libnccl.so." TG_STR(NCCL_MAJOR);
static pthread_once_t nccl_once = PTHREAD_ONCE_INIT;

static void nccl_load(void) {
    char e[200] = "";
    void *h = open_lib(nccl_soname, e, sizeof e);
    if (!h) {
        snprintf(nccl_err, sizeof nccl_err, "cannot load %s (%s)", nccl_soname, e);
        return;
    }
    bool ok = true;
#define TG_NCCL_RESOLVE(field, sym) TG_RESOLVE(nccl_api, field, sym)
    TG_NCCL_ENTRIES(TG_NCCL_RESOLVE)
#undef TG_NCCL_RESOLVE
    nccl_ok = ok;
    if (!ok) snprintf(nccl_err, sizeof nccl_err, "%s: %s", nccl_soname, e);
}

const tg_nccl_api *tg_nccl_api_get(const char *fn) {
    pthread_once(&nccl_once, nccl_load);
    if (nccl_ok) return &nccl_api;
    if (fn) tg_fail(TG_ERR_DEVICE, fn, "%s; install the CUDA toolkit's NCCL or set LD_LIBRARY_PATH", nccl_err);
    return NULL;
}
#endif

/* Test hook (tests/test_cuda.c): loads every library above and resolves every entry point,
 * which needs no GPU; the message names the first that failed. */
extern "C" TG_INTERNAL tg_status tg_cuda_libs_load(void) {
    if (!tg_cublas_api_get("tg_cuda_libs_load")) return TG_ERR_DEVICE;
#ifdef TG_WITH_NCCL
    if (!tg_nccl_api_get("tg_cuda_libs_load")) return TG_ERR_DEVICE;
#endif
    return TG_OK;
}
