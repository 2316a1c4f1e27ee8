/*
 * tg_omp.h — OpenMP's run-time calls, or single-thread stand-ins when the library is compiled
 * without OpenMP (the fuzzing build, make fuzz; the WebAssembly build, make wasm). The pragmas
 * need nothing: without -fopenmp they are ignored and every loop runs on the calling thread.
 */
#ifndef TG_OMP_H
#define TG_OMP_H

#ifdef _OPENMP
#include <omp.h>
#else
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_num_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
static inline void omp_set_num_threads(int n) { (void)n; }
#endif

#endif
