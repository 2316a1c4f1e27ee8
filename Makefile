# libtensorgan — GNU Makefile (`make help` lists the targets).
#   make                 build build/libtensorgan.so.0 and build/libtensorgan.a (+ examples)
#   make test            install missing Debian packages (as root), build, run every test suite
#   make test SAN=1      the same under ASan + UBSan (CPU backend; objects in build-san/)
#   make demo            make test, then train mangagan on the bundled faces
#   make install PREFIX=/usr/local DESTDIR=   /   make uninstall
#   CUDA=auto|0|1        auto (default): build the CUDA backend when nvcc is found
#   CUDA_ARCH="..."      nvcc -gencode flags (default: sm_80 sm_86 sm_89 sm_90 + compute_90 PTX)
#   MPI=auto|0|1         auto (default): data-parallel training over MPI when Open MPI's
#                        pkg-config file is found (libopenmpi-dev); off in sanitizer builds
#   NCCL=auto|0|1        auto (default): NCCL for CUDA contexts when CUDA is on and the toolkit
#                        has nccl.h and libnccl

VERSION      := 0.1.0
SOVERSION    := 0
PREFIX       ?= /usr/local
DESTDIR      ?=
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
BINDIR       ?= $(PREFIX)/bin
DATADIR      ?= $(PREFIX)/share/tensorgan
MANDIR       ?= $(PREFIX)/share/man
# how the installed programs find the library: an rpath to LIBDIR (empty for a system LIBDIR,
# as the Debian packages build them), and which example programs are installed
RPATH        ?= -Wl,-rpath,$(LIBDIR)
TOOLS        ?= mangagan fashion cgan unet
CC           ?= cc
CUDA_HOME    ?= /usr/local/cuda
NVCC         ?= $(shell command -v nvcc 2>/dev/null || { test -x $(CUDA_HOME)/bin/nvcc && echo $(CUDA_HOME)/bin/nvcc; })
CUDA         ?= auto
SAN          ?= 0
MPI          ?= auto
NCCL         ?= auto

ifeq ($(SAN),1)
  BUILD      ?= build-san
  CUDA       := 0
  MPI        := 0
  SANFLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  OPT        ?= -O1 -g
else ifeq ($(SAN),thread)
  BUILD      ?= build-tsan
  CUDA       := 0
  MPI        := 0
  SANFLAGS   := -fsanitize=thread -fno-omit-frame-pointer
  OPT        ?= -O1 -g
else
  BUILD      ?= build
  SANFLAGS   :=
  OPT        ?= -O3 -g
endif

ifeq ($(CUDA),auto)
  WITH_CUDA  := $(if $(NVCC),1,0)
else
  WITH_CUDA  := $(CUDA)
endif

# MPI through its pkg-config file (Open MPI: ompi-c; others: mpi-c)
MPI_PC       := $(if $(filter 0,$(MPI)),,$(shell pkg-config --exists ompi-c 2>/dev/null && echo ompi-c || { pkg-config --exists mpi-c 2>/dev/null && echo mpi-c; }))
ifeq ($(MPI),auto)
  WITH_MPI   := $(if $(MPI_PC),1,0)
else
  WITH_MPI   := $(MPI)
endif
# NCCL: the CUDA toolkit's own copy (CUDA 13 ships nccl.h and libnccl)
NCCL_FOUND   := $(if $(wildcard $(CUDA_HOME)/include/nccl.h),$(if $(wildcard $(CUDA_HOME)/lib64/libnccl.so*),1,0),0)
ifeq ($(NCCL),auto)
  WITH_NCCL  := $(if $(filter 1,$(WITH_CUDA)),$(NCCL_FOUND),0)
else
  WITH_NCCL  := $(if $(filter 1,$(WITH_CUDA)),$(NCCL),0)
endif

CUDA_ARCH    ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_86,code=sm_86 \
                -gencode arch=compute_89,code=sm_89 -gencode arch=compute_90,code=sm_90 \
                -gencode arch=compute_90,code=compute_90

WARN         := -Wall -Wextra -Wshadow -Wno-unused-parameter
CFLAGS_ALL   := -std=c11 -D_POSIX_C_SOURCE=200809L $(OPT) $(WARN) -ffp-contract=off -fopenmp -fPIC \
                -fvisibility=hidden -Iinclude -Ilib $(SANFLAGS) $(CPPFLAGS) $(CFLAGS)
LIBS_PRIV    := -fopenmp -lpng -ljpeg -llzma -lm -ldl -lpthread

# lib/cpu/<op>.c objects are named *.cpu.o so they never share an archive member name with
# lib/<op>.c (ar keys members by base name), as cuda/<op>.cu objects are *.cu.o.
LIB_SRC      := $(wildcard lib/*.c)
CPU_SRC      := $(wildcard lib/cpu/*.c)
LIB_OBJ      := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC)) $(patsubst %.c,$(BUILD)/%.cpu.o,$(CPU_SRC))
CU_SRC       := $(wildcard cuda/*.cu)
ifeq ($(WITH_CUDA),1)
  CFLAGS_ALL += -DTG_WITH_CUDA
  LIB_OBJ    += $(patsubst %.cu,$(BUILD)/%.cu.o,$(CU_SRC))
  # cuBLAS and NCCL are not linked: cuda/libs.cu opens them at the first CUDA context (a
  # CPU-only run never maps them); the runtime is, for kernel launches
  CUDA_LIBS  := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lstdc++
  PC_CUDA    := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lstdc++
endif
NVFLAGS      := -O3 -std=c++20 $(CUDA_ARCH) -Xcompiler -fPIC,-fvisibility=hidden -Iinclude -Ilib \
                -DTG_WITH_CUDA -DTG_CUDA_LIBDIR='"$(realpath $(CUDA_HOME)/lib64)"' -MMD -MP
ifeq ($(WITH_NCCL),1)
  CFLAGS_ALL += -DTG_WITH_NCCL
  NVFLAGS    += -DTG_WITH_NCCL
endif
ifeq ($(WITH_MPI),1)
  CFLAGS_ALL += -DTG_WITH_MPI $(shell pkg-config --cflags $(MPI_PC))
  LIBS_PRIV  += $(shell pkg-config --libs $(MPI_PC))
endif

SONAME       := libtensorgan.so.$(SOVERSION)
SHLIB        := $(BUILD)/libtensorgan.so.$(VERSION)
STLIB        := $(BUILD)/libtensorgan.a
PCFILE       := $(BUILD)/pkgconfig/tensorgan.pc

TEST_SRC     := $(wildcard tests/test_*.c)
TEST_BIN     := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
TEST_HELPERS := $(BUILD)/tests/testutil.o $(BUILD)/tests/op_cases.o

# What a bare Debian needs: BUILD_PKGS to build the library and examples (the C toolchain
# included), TEST_PKGS beside them for `make test`. `make test`/`make demo` install what is
# missing when run as root; everything else (and a non-root user) stops with the one apt line.
BUILD_PKGS   := gcc libc6-dev pkg-config libopenblas-dev libopenblas0-openmp libpng-dev libjpeg-dev \
                liblzma-dev zlib1g-dev libopenmpi-dev
TEST_PKGS    := libcmocka-dev libblas3 dataset-fashion-mnist openmpi-bin
DEBIAN_PKGS  := $(BUILD_PKGS) $(TEST_PKGS)

.PHONY: all lib test check deps deps-check demo install uninstall clean examples bench bench-compare parity help \
        man docs docs-check abi-check abi-baseline deb onnx-check
all: lib examples

# the targets and settings a newcomer needs, one line each
help:
	@echo "libtensorgan $(VERSION): make TARGET [SETTING=VALUE ...]"
	@echo ""
	@echo "  make              the library (build/libtensorgan.so.$(SOVERSION), .a) and the examples"
	@echo "  make test         install missing Debian packages (as root), build, run every suite"
	@echo "  make test SAN=1   the suites under AddressSanitizer + UndefinedBehaviorSanitizer"
	@echo "  make demo         make test, then train mangagan on the bundled faces (about 7 minutes)"
	@echo "  make install      header, libraries, pkg-config, CMake, the programs, man pages"
	@echo "                    (PREFIX=$(PREFIX) DESTDIR= LIBDIR= RPATH= TOOLS=\"$(TOOLS)\")"
	@echo "  make uninstall    what make install put there"
	@echo "  make fuzz         every libFuzzer harness, FUZZ_SECONDS each (FUZZ_RUNS=N for a count)"
	@echo "  make tsan         two contexts in two threads under ThreadSanitizer"
	@echo "  make valgrind     memcheck over the CPU suites (slow)"
	@echo "  make soak         25 SIGKILLs during training, resumed each time"
	@echo "  make parity       three GAN steps here and in PyTorch (needs python3-torch)"
	@echo "  make bench        mangagan's training step; bench-compare: against PyTorch"
	@echo "  make bench-classifier  fashion's training step against PyTorch's, alternating"
	@echo "  make bench-unet   the U-Net's training step against PyTorch's, alternating"
	@echo "  make bench-infer  inference against ONNX Runtime on the same exported models"
	@echo "  make bench-conv   the 4x4/2 convolution passes, direct against Winograd"
	@echo "  make bench-dist   data-parallel scaling over MPI"
	@echo "  make fresh-check  make test + make demo in a pristine debootstrapped bookworm (root)"
	@echo "  make onnx-check   exported models in onnx.checker and ONNX Runtime, against ours"
	@echo "  make docs         the HTML API reference from the header (build/docs/html; doxygen)"
	@echo "  make man          rewrite man/*.1 and man/tensorgan.3 from the programs and the header"
	@echo "  make docs-check   man pages in step, doxygen without warnings, man without warnings"
	@echo "  make abi-check    the library's ABI against the last release's (tests/abi/; abidiff)"
	@echo "  make deb          Debian packages (dpkg-buildpackage -us -uc -b; lintian) into build/deb/"
	@echo "  make deb-check    install them in a pristine bookworm, build and run programs there (root)"
	@echo "  make wasm         the library in WebAssembly (emscripten) + the browser page's module"
	@echo "  make test-wasm    the op suites under Node, every op against the native build"
	@echo "  make test-web     the page (examples/web/) in headless Chromium against the native library"
	@echo "  make serve        the page on http://localhost:$(SERVE_PORT)/examples/web/"
	@echo "  make web-model    train the generator the page ships (examples/mangagan/models/)"
	@echo "  make clean        remove build/, build-san/, build-tsan/, build-fuzz/, build-wasm/, demo-out/"
	@echo ""
	@echo "  settings: CUDA=auto|0|1  MPI=auto|0|1  NCCL=auto|0|1  SAN=1|thread  PREFIX=DIR  DESTDIR=DIR"

lib: $(SHLIB) $(STLIB) $(PCFILE)

# Objects depend on the configuration: switching CUDA=0/1 or flags rebuilds what it must.
FLAGS_STAMP  := $(BUILD)/.flags
CONFIG       := $(CC) $(CFLAGS_ALL) | $(WITH_CUDA) $(NVCC) $(NVFLAGS) | $(CUDA_LIBS) | $(LIBS_PRIV)
$(shell mkdir -p $(BUILD); [ "$$(cat $(FLAGS_STAMP) 2>/dev/null)" = '$(CONFIG)' ] || echo '$(CONFIG)' > $(FLAGS_STAMP))

$(BUILD)/%.o: %.c $(FLAGS_STAMP) | deps-check
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(ISAFLAGS) -MMD -MP -c $< -o $@

# -fno-trapping-math: lets the compiler turn a branch around a multiply into a select, and
# -fno-math-errno lets sqrtf be an instruction, so the CPU loops vectorise; results are unchanged
# (only FP exception flags and errno could differ).
$(BUILD)/%.cpu.o: %.c $(FLAGS_STAMP) | deps-check
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -fno-trapping-math -fno-math-errno $(ISAFLAGS) -MMD -MP -c $< -o $@

# The CPU backend's per-ISA files (lib/cpu/*_avx512.c, *_avx2.c) are compiled for their ISA and
# only called after cpuid agrees (tests/fuzz/run.sh gives them the same flags).
$(BUILD)/lib/cpu/%_avx512.cpu.o: ISAFLAGS := -mavx512f -mavx512vl -mavx512dq -mavx2 -mfma -mbmi2
$(BUILD)/lib/cpu/%_avx2.cpu.o: ISAFLAGS := -mavx2 -mfma

# .cu.o: cuda/conv.cu and lib/conv.c must not share an archive member name
$(BUILD)/%.cu.o: %.cu $(FLAGS_STAMP) | deps-check
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c $< -o $@

$(SHLIB): $(LIB_OBJ) $(FLAGS_STAMP)
	$(CC) -shared -Wl,-soname,$(SONAME) $(SANFLAGS) -o $@ $(LIB_OBJ) $(CUDA_LIBS) $(LIBS_PRIV) $(LDFLAGS)
	ln -sf libtensorgan.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/libtensorgan.so

$(STLIB): $(LIB_OBJ) $(FLAGS_STAMP)
	rm -f $@
	ar rcs $@ $(LIB_OBJ)

# The in-tree .pc points at this checkout, so examples build exactly as outside programs do.
$(PCFILE): pkgconfig/tensorgan.pc.in Makefile $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(CURDIR)|' -e 's|@LIBDIR@|$(CURDIR)/$(BUILD)|' \
	    -e 's|@INCLUDEDIR@|$(CURDIR)/include|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@LIBS_PRIVATE@|$(PC_CUDA) $(LIBS_PRIV)|' $< > $@

# ---- tests ----------------------------------------------------------------------------------
$(BUILD)/tests/%: tests/%.c $(STLIB) $(TEST_HELPERS) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -o $@ $< $(TEST_HELPERS) $(STLIB) -lcmocka $(CUDA_LIBS) $(LIBS_PRIV) $(LDWRAP)

# test_alloc counts the library's allocations through the linker (static library objects)
$(BUILD)/tests/test_alloc: LDWRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=aligned_alloc
# test_faults makes them fail, one at a time
$(BUILD)/tests/test_faults: LDWRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=aligned_alloc

$(BUILD)/tests/testutil.o: tests/testutil.c tests/testutil.h $(FLAGS_STAMP) | deps-check
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# the op cases test_ops and test_cuda share (tests/op_cases.h)
$(BUILD)/tests/op_cases.o: tests/op_cases.c tests/op_cases.h tests/testutil.h lib/core.h lib/backend.h lib/tg_math.h $(FLAGS_STAMP) | deps-check
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

test check: deps
	@$(MAKE) --no-print-directory lib-and-tests
	@BUILD=$(BUILD) sh tests/run.sh $(TEST_BIN)

.PHONY: lib-and-tests
lib-and-tests: lib $(TEST_BIN) examples $(BUILD)/tests/libfaultio.so $(BUILD)/tests/dist_worker

# an LD_PRELOAD shim that injects checkpoint-write faults (test_mangagan); never sanitized
$(BUILD)/tests/libfaultio.so: tests/faultio.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -shared -fPIC -o $@ $< -ldl

# ---- examples (built through pkg-config, like a user's program) ----------------------------
EXAMPLES     := $(BUILD)/examples/train_xor $(BUILD)/examples/mangagan $(BUILD)/examples/fashion $(BUILD)/examples/cgan \
                $(BUILD)/examples/unet
PKG_FLAGS     = $$(PKG_CONFIG_PATH=$(BUILD)/pkgconfig pkg-config --cflags --libs tensorgan)
define build-user-program
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -o $@ $< $(PKG_FLAGS) -Wl,-rpath,$(CURDIR)/$(BUILD) $(SANFLAGS) -lm
endef
examples: $(EXAMPLES)
$(BUILD)/examples/%: examples/%.c $(SHLIB) $(PCFILE)
	$(build-user-program)
# the classifier reads Debian's gzip-compressed IDX files with zlib
$(BUILD)/examples/fashion: examples/fashion/fashion.c examples/fashion/idx.h examples/example.h $(SHLIB) $(PCFILE)
	$(build-user-program) -lz
$(BUILD)/examples/cgan: examples/cgan/cgan.c examples/fashion/idx.h examples/example.h $(SHLIB) $(PCFILE)
	$(build-user-program) -lz
$(BUILD)/examples/unet: examples/unet/unet.c examples/fashion/idx.h examples/example.h examples/cli.h $(SHLIB) $(PCFILE)
	$(build-user-program) -lz
# the in-tree binary also finds the bundled faces in the source tree
# mangagan: one file per job (examples/mangagan/mangagan.h lists them), main in mangagan.c
MANGAGAN_SRC := examples/mangagan/mangagan.c $(filter-out examples/mangagan/mangagan.c,$(wildcard examples/mangagan/*.c))
$(BUILD)/examples/mangagan: $(MANGAGAN_SRC) $(wildcard examples/mangagan/*.h) examples/example.h examples/cli.h $(SHLIB) $(PCFILE)
	$(build-user-program) $(filter-out $<,$(MANGAGAN_SRC)) -DMANGAGAN_SRCDATA='"$(CURDIR)/examples/mangagan/data"' -lm

# ours vs PyTorch (both configurations), alternating, with the table (needs python3-torch)
bench-compare: $(BUILD)/examples/mangagan
	BUILD=$(BUILD) sh bench/compare.sh
# the classifier's training step (examples/fashion) against bench/fashion_torch.py, the same way
.PHONY: bench-classifier
bench-classifier: $(BUILD)/examples/fashion
	BUILD=$(BUILD) MODEL=fashion sh bench/compare.sh
# the U-Net's training step (examples/unet) against bench/unet_torch.py
.PHONY: bench-unet
bench-unet: $(BUILD)/examples/unet
	BUILD=$(BUILD) MODEL=unet sh bench/compare.sh

# the 4x4/2 forward passes and data gradients direct against Winograd (lib/cpu/winograd.c),
# alternating
.PHONY: bench-conv
bench-conv: $(BUILD)/bench/conv_phases
	$(BUILD)/bench/conv_phases
$(BUILD)/bench/conv_phases: bench/conv_phases.c $(STLIB) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(STLIB) $(CUDA_LIBS) $(LIBS_PRIV)

# data-parallel training: 2 ranks x 1 thread against 1 rank x 2 threads, and the all-reduce alone
.PHONY: bench-dist
bench-dist: $(BUILD)/examples/mangagan
	BUILD=$(BUILD) sh bench/dist_scaling.sh

bench: $(BUILD)/examples/mangagan
	$(BUILD)/examples/mangagan bench --recipe seed --device cpu --steps 5 --warmup 1
	$(BUILD)/examples/mangagan bench --recipe dcgan --device cpu --steps 5 --warmup 1

# About six and a half minutes on a 2-core CPU (a GPU is used when there is one): the modern recipe at half
# width on the bundled faces, scored against the held-out faces every 500 steps; the last grid is
# demo-out/samples/step-002000.png, the plot demo-out/samples/losses.png. The seed recipe is one
# flag away: make demo DEMO_ARGS="--recipe seed --width 32 --steps 1000 --eval-every 500".
DEMO_ARGS    ?= --recipe modern --width 32 --steps 2000 --sample-every 250 --checkpoint-every 500 --eval-every 500
demo: test
	$(BUILD)/examples/mangagan train --out demo-out $(DEMO_ARGS)
	@echo "demo: samples in demo-out/samples/ (the last grid and losses.png), log in demo-out/log.csv"

# PyTorch parity (needs Debian's python3-torch; not part of `make test`, which must not need it):
# three GAN steps here and in PyTorch from the same weights and inputs, compared.
parity: lib
	@mkdir -p $(BUILD)/parity
	$(CC) -O2 -Wall -Wextra -o $(BUILD)/parity/parity tests/parity/parity.c -Iinclude $(SHLIB) -Wl,-rpath,$(CURDIR)/$(BUILD)
	$(BUILD)/parity/parity $(BUILD)/parity/steps.safetensors
	OPENBLAS_CORETYPE=$${OPENBLAS_CORETYPE:-SkylakeX} /usr/bin/python3 tests/parity/parity.py $(BUILD)/parity/steps.safetensors

# Two contexts in two threads under ThreadSanitizer (one OpenMP thread each: libgomp is not
# instrumented, and its own threads would be reported).
.PHONY: tsan
tsan:
	@$(MAKE) --no-print-directory SAN=thread build-tsan/tests/test_threads
	OMP_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/test_threads

# valgrind memcheck over the CPU suites (slow; not in .ci/run). The suppression file covers one
# false positive inside glibc's dynamic loader (tests/valgrind.supp).
VALGRIND_SUITES := test_math test_ops test_tape test_optim test_errors test_checkpoint test_learn \
                   test_cpu_conv test_dataset test_threads test_faults test_dist
.PHONY: valgrind
valgrind: lib-and-tests
	@fail=0; for t in $(VALGRIND_SUITES); do \
	  if valgrind --suppressions=tests/valgrind.supp --error-exitcode=99 --leak-check=full \
	       --errors-for-leak-kinds=definite -q $(BUILD)/tests/$$t > $(BUILD)/tests/$$t.valgrind 2>&1; \
	  then echo "valgrind: $$t clean"; else echo "valgrind: $$t: see $(BUILD)/tests/$$t.valgrind"; fail=1; fi; \
	done; exit $$fail

# Crash consistency, longer: 25 SIGKILLs during training with a checkpoint every step.
.PHONY: soak
soak: lib-and-tests
	SOAK_KILLS=25 BUILD=$(BUILD) $(BUILD)/tests/test_mangagan

# Coverage-guided fuzzing of every parser of untrusted input (clang, libFuzzer, ASan + UBSan):
# tests/fuzz/run.sh, FUZZ_SECONDS per harness (FUZZ_RUNS=N for a count instead).
FUZZ_SECONDS ?= 10
FUZZ_PKGS    := clang libclang-rt-14-dev
.PHONY: fuzz
fuzz:
	@$(call missing-pkgs,$(FUZZ_PKGS) $(BUILD_PKGS)); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "fuzz: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	  else $(apt-line); exit 1; fi; \
	fi
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh

# A pristine minimal Debian in a chroot: `make test` and `make demo` from nothing (slow; root).
.PHONY: fresh-check
fresh-check:
	sh tests/fresh_debian.sh

# ---- Debian packages ------------------------------------------------------------------------
# deps: install what `make test` needs (root), or print the apt line and stop (not root).
# deps-check: runs before anything is compiled; never installs, stops with the same line.
# Machines without dpkg are not checked (the compiler will say what is missing).
define missing-pkgs
missing=""; if command -v dpkg >/dev/null 2>&1; then \
  for p in $(1); do dpkg -s $$p 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$p"; done; fi
endef
define apt-line
echo "libtensorgan: missing Debian packages. Run:"; \
echo "  sudo apt-get update && sudo apt-get install -y$$missing"
endef
# installs what is missing of the packages $(1) as root (saying so, as $(2)), else the apt line
define install-pkgs
@$(call missing-pkgs,$(1)); \
if [ -n "$$missing" ]; then \
  if [ "$$(id -u)" = 0 ]; then \
    echo "$(2): installing$$missing"; \
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
  else $(apt-line); exit 1; fi; \
fi
endef
deps:
	$(call install-pkgs,$(DEBIAN_PKGS),deps)

deps-check:
	@$(call missing-pkgs,$(BUILD_PKGS)); \
	if [ -n "$$missing" ]; then \
	  $(apt-line); \
	  [ "$$(id -u)" = 0 ] && echo "  (or, as root: make deps)"; exit 1; \
	fi

# ---- documentation, ABI, Debian packages ---------------------------------------------------
# the man pages are committed (man/), written from the programs' --help and the header
man: examples
	BUILD=$(BUILD) sh man/mkman.sh man
docs:
	@command -v doxygen >/dev/null 2>&1 || { echo "docs: needs doxygen (apt-get install doxygen)"; exit 1; }
	doxygen docs/Doxyfile
	@echo "docs: build/docs/html/index.html"
docs-check: examples
	BUILD=$(BUILD) sh tests/docs_check.sh
abi-check:
	sh tests/abi_check.sh
abi-baseline:
	sh tests/abi_check.sh baseline
# dpkg-buildpackage writes the packages into ../; lintian must pass them (each override in
# debian/*.lintian-overrides says why), then they move to build/deb/
DEB_PKGS     := dpkg-dev debhelper fakeroot lintian
deb:
	$(call install-pkgs,$(DEB_PKGS) $(BUILD_PKGS),deb)
	dpkg-buildpackage -us -uc -b
	v=$$(dpkg-parsechangelog -S Version); \
	lintian --fail-on error,warning --pedantic --info ../tensorgan_$${v}_$$(dpkg --print-architecture).changes && \
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb && mv ../*tensorgan*_$${v}_*.deb ../tensorgan_$${v}_*.changes \
	    ../tensorgan_$${v}_*.buildinfo $(BUILD)/deb/
	@echo "deb: the packages are in $(BUILD)/deb/"; ls $(BUILD)/deb

# inference against ONNX Runtime on the same exported models (bench/infer.sh; needs what
# onnx-check installs: node and tests/onnx/node_modules)
.PHONY: bench-infer
bench-infer: $(BUILD)/bench/infer
	@[ -d tests/onnx/node_modules/onnxruntime-node ] || (cd tests/onnx && npm ci --ignore-scripts --no-audit --no-fund)
	BUILD=$(BUILD) sh bench/infer.sh
$(BUILD)/bench/infer: bench/infer.c $(SHLIB) $(PCFILE)
	$(build-user-program)

# exported ONNX models in onnx.checker and ONNX Runtime (tests/onnx/check.sh; in .ci/run)
.PHONY: onnx-check
onnx-check: lib examples $(BUILD)/tests/onnx_zoo
	BUILD=$(BUILD) sh tests/onnx/check.sh
$(BUILD)/tests/onnx_zoo: tests/onnx/zoo.c $(SHLIB) $(PCFILE)
	$(build-user-program)

# the packages in a pristine debootstrapped bookworm: outside programs, mangagan, purge (root)
.PHONY: deb-check
deb-check:
	BUILD=$(BUILD) sh tests/deb_check.sh

# ---- WebAssembly: the library in the browser (make wasm, test-wasm, test-web, serve) ---------
# The library built with Debian's emscripten into build-wasm/: no OpenMP (one thread), no BLAS,
# no libpng/libjpeg/liblzma (TG_NO_CODECS: image and xz files refuse with TG_ERR_UNSUPPORTED;
# Emscripten's ports would download them), and the GEMM's SIMD128 micro-kernel
# (lib/cpu/gemm_wasm.c). build-wasm/web/face.js + face.wasm: mangagan's generator for
# examples/web/. The op suites run under Node with a small stand-in for cmocka (tests/wasm/).
EMCC         ?= emcc
EMAR         ?= emar
# emcc runs tools under Node that need Debian's node-acorn (/usr/share/nodejs), which a Node from
# elsewhere does not search by default
EMENV        := NODE_PATH=/usr/share/nodejs$${NODE_PATH:+:$$NODE_PATH}
WASM         := build-wasm
WASM_PKGS    := emscripten nodejs
WEB_PKGS     := chromium
WASM_CFLAGS  := -std=c11 -D_POSIX_C_SOURCE=200809L -O3 -msimd128 $(WARN) -ffp-contract=off -DTG_NO_CODECS \
                -Iinclude -Ilib
WASM_OBJ     := $(patsubst %.c,$(WASM)/%.o,$(LIB_SRC)) $(patsubst %.c,$(WASM)/%.cpu.o,$(CPU_SRC))
WASM_LIB     := $(WASM)/libtensorgan.a
WASM_TESTS   := $(patsubst %,$(WASM)/tests/%.js,test_math test_ops test_cpu_conv op_results shim_selftest no_codecs)
WEB_SRC      := examples/web/face.c examples/mangagan/recipes.c examples/mangagan/model.c \
                examples/mangagan/load.c
WEB_EXPORTS  := _face_load,_face_draw,_face_error,_malloc,_free
WEB_MODEL    := examples/mangagan/models/generator.safetensors
# a change of compiler or flags (this file) rebuilds the WebAssembly objects and programs
WASM_STAMP   := $(WASM)/.flags
$(WASM_STAMP): Makefile
	@mkdir -p $(WASM)
	@touch $@
.PHONY: wasm wasm-deps test-wasm test-web serve
wasm: $(WASM_LIB) $(WASM)/web/face.js
wasm-deps:
	$(call install-pkgs,$(WASM_PKGS),wasm)
$(WASM)/%.o: %.c $(WASM_STAMP) | wasm-deps
	@mkdir -p $(dir $@)
	$(EMENV) $(EMCC) $(WASM_CFLAGS) -MMD -MP -c $< -o $@
$(WASM)/%.cpu.o: %.c $(WASM_STAMP) | wasm-deps
	@mkdir -p $(dir $@)
	$(EMENV) $(EMCC) $(WASM_CFLAGS) -fno-trapping-math -fno-math-errno -MMD -MP -c $< -o $@
$(WASM_LIB): $(WASM_OBJ)
	rm -f $@
	$(EMENV) $(EMAR) rcs $@ $^
# the page's module: exported calls, the heap grows as needed, a file system the page copies the
# generator into; runs in a browser and under Node
$(WASM)/web/face.js: $(WEB_SRC) $(wildcard examples/mangagan/*.h) examples/example.h $(WASM_LIB) $(WASM_STAMP)
	@mkdir -p $(dir $@)
	$(EMENV) $(EMCC) -O3 -msimd128 $(WARN) -ffp-contract=off -Iinclude -o $@ $(WEB_SRC) $(WASM_LIB) \
	    -sMODULARIZE=1 -sEXPORT_NAME=createFace -sEXPORTED_FUNCTIONS=$(WEB_EXPORTS) \
	    -sEXPORTED_RUNTIME_METHODS=FS,ccall,UTF8ToString -sALLOW_MEMORY_GROWTH=1 -sFORCE_FILESYSTEM=1 \
	    -sENVIRONMENT=web,node
# the suites under Node: the host's files directly (NODERAWFS), main's status as the exit status,
# the .wasm inside the .js (SINGLE_FILE: emcc 3.1.6's loader would fetch() a path, which Node 18+
# has and refuses)
WASM_TEST_DEPS := tests/testutil.c tests/testutil.h tests/op_cases.c tests/op_cases.h tests/wasm/cmocka.h \
                  tests/wasm/cmocka_shim.c $(WASM_LIB) $(WASM_STAMP)
define wasm-test-link
	@mkdir -p $(dir $@)
	$(EMENV) $(EMCC) $(WASM_CFLAGS) -Itests/wasm -Itests -o $@ $< tests/testutil.c tests/op_cases.c tests/wasm/cmocka_shim.c \
	    $(WASM_LIB) -sALLOW_MEMORY_GROWTH=1 -sENVIRONMENT=node -sNODERAWFS=1 -sEXIT_RUNTIME=1 -sSINGLE_FILE=1
endef
$(WASM)/tests/%.js: tests/%.c $(WASM_TEST_DEPS)
	$(wasm-test-link)
$(WASM)/tests/%.js: tests/wasm/%.c $(WASM_TEST_DEPS)
	$(wasm-test-link)
# the native twin of op_results, which writes what the WebAssembly build is compared against
$(BUILD)/tests/op_results: tests/wasm/op_results.c $(STLIB) $(TEST_HELPERS) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests -o $@ $< $(TEST_HELPERS) $(STLIB) -lcmocka $(CUDA_LIBS) $(LIBS_PRIV)
# the page's native twin: the faces it must draw for given noise (tests/web/check.sh)
$(BUILD)/examples/face: $(WEB_SRC) $(wildcard examples/mangagan/*.h) examples/example.h $(SHLIB) $(PCFILE)
	$(build-user-program) $(filter-out $<,$(WEB_SRC)) -lm
test-wasm: wasm $(WASM_TESTS) lib $(BUILD)/tests/op_results
	BUILD=$(BUILD) WASM=$(WASM) sh tests/wasm/check.sh
test-web: wasm lib $(BUILD)/examples/face
	$(call install-pkgs,$(WEB_PKGS),test-web)
	BUILD=$(BUILD) WASM=$(WASM) sh tests/web/check.sh
# the generator the page ships (examples/mangagan/models/MANIFEST.md): the modern recipe at width
# 32, 5000 steps (some 20 minutes on two quiet cores, from the demo's pace), scored against the
# held-out faces every 1000
.PHONY: web-model
web-model: $(BUILD)/examples/mangagan
	$(BUILD)/examples/mangagan train --recipe modern --width 32 --steps 5000 --seed 1 --eval-every 1000 \
	    --sample-every 1000 --checkpoint-every 1000 --out $(BUILD)/web-model
	mkdir -p $(dir $(WEB_MODEL))
	cp $(BUILD)/web-model/generator.safetensors $(WEB_MODEL)
	@echo "web-model: $(WEB_MODEL) (SWD in $(BUILD)/web-model/log.csv, grids in $(BUILD)/web-model/samples/)"
# the repository root over HTTP on localhost; the page is /examples/web/ (any static server will do)
SERVE_PORT   ?= 8000
serve: wasm
	@echo "serve: http://localhost:$(SERVE_PORT)/examples/web/ (Ctrl-C stops)"
	cd $(CURDIR) && python3 -m http.server $(SERVE_PORT) --bind 127.0.0.1

# ---- install --------------------------------------------------------------------------------
# Installs the header, libtensorgan.so.0 + .a, pkg-config files (tensorgan.pc for the shared
# library, tensorgan-static.pc for a static link), a CMake package (tensorgan::tensorgan and
# tensorgan::tensorgan_static), mangagan and the bundled faces. As root into the live system
# (no DESTDIR) it runs ldconfig, so programs linked with the README's line start; otherwise it
# says what a program needs to find the library.
CMAKEDIR     := $(LIBDIR)/cmake/tensorgan
empty        :=
space        := $(empty) $(empty)
CMAKE_LIBS    = $(subst $(space),;,$(strip $(PC_CUDA) $(LIBS_PRIV)))
SUBST_INSTALL = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@SOVERSION@|$(SOVERSION)|' \
	    -e 's|@LIBS_PRIVATE@|$(PC_CUDA) $(LIBS_PRIV)|' -e 's|@CMAKE_LIBS@|$(CMAKE_LIBS)|'
# each installed program: its sources and libraries (built again without the tree's rpath)
TOOL_SRC_mangagan  = $(MANGAGAN_SRC)
TOOL_LIBS_mangagan = -lm
TOOL_SRC_fashion   = examples/fashion/fashion.c
TOOL_SRC_cgan      = examples/cgan/cgan.c
TOOL_SRC_unet      = examples/unet/unet.c
TOOL_LIBS_fashion  = -lz -lm
TOOL_LIBS_cgan     = -lz -lm
TOOL_LIBS_unet     = -lz -lm
install: lib
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(CMAKEDIR)
	install -m 644 include/tensorgan.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libtensorgan.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libtensorgan.so
	install -m 644 $(STLIB) $(DESTDIR)$(LIBDIR)/
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	$(foreach t,$(TOOLS),$(CC) -O2 -Wall $(CPPFLAGS) $(CFLAGS) -o $(DESTDIR)$(BINDIR)/$(t) $(TOOL_SRC_$(t)) -Iinclude \
	    $(SHLIB) $(RPATH) $(LDFLAGS) $(TOOL_LIBS_$(t)) &&) true
	install -m 644 $(TOOLS:%=man/%.1) $(DESTDIR)$(MANDIR)/man1/
	install -m 644 man/tensorgan.3 $(DESTDIR)$(MANDIR)/man3/
	install -m 644 examples/mangagan/data/faces.safetensors.xz examples/mangagan/data/heldout.safetensors.xz \
	    examples/mangagan/data/MANIFEST.md examples/tg_safetensors.py $(DESTDIR)$(DATADIR)/
	$(SUBST_INSTALL) pkgconfig/tensorgan.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/tensorgan.pc
	$(SUBST_INSTALL) pkgconfig/tensorgan-static.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/tensorgan-static.pc
	$(SUBST_INSTALL) cmake/tensorganConfig.cmake.in > $(DESTDIR)$(CMAKEDIR)/tensorganConfig.cmake
	$(SUBST_INSTALL) cmake/tensorganConfigVersion.cmake.in > $(DESTDIR)$(CMAKEDIR)/tensorganConfigVersion.cmake
	@# the system's loader cache is refreshed only for a directory it already searches (/usr/lib,
	@# /usr/local/lib, ...): a private PREFIX never touches it
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1 && \
	    ldconfig -v -N 2>/dev/null | grep -q "^$(realpath $(LIBDIR)):"; then ldconfig; fi
	@if [ -z "$(DESTDIR)" ] && ! ldconfig -p 2>/dev/null | grep -q "$(LIBDIR)/$(SONAME)"; then \
	  echo "install: $(LIBDIR) is not on the loader's search path. Programs linked against the"; \
	  echo "  shared library need LD_LIBRARY_PATH=$(LIBDIR) (or -Wl,-rpath,$(LIBDIR) when linking),"; \
	  echo "  and pkg-config/CMake need PKG_CONFIG_PATH=$(LIBDIR)/pkgconfig / CMAKE_PREFIX_PATH=$(PREFIX)."; \
	fi

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/tensorgan.h $(DESTDIR)$(LIBDIR)/libtensorgan.so* \
	      $(DESTDIR)$(LIBDIR)/libtensorgan.a $(DESTDIR)$(LIBDIR)/pkgconfig/tensorgan.pc \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/tensorgan-static.pc \
	      $(DESTDIR)$(CMAKEDIR)/tensorganConfig.cmake $(DESTDIR)$(CMAKEDIR)/tensorganConfigVersion.cmake \
	      $(TOOLS:%=$(DESTDIR)$(BINDIR)/%) $(TOOLS:%=$(DESTDIR)$(MANDIR)/man1/%.1) \
	      $(DESTDIR)$(MANDIR)/man3/tensorgan.3 $(DESTDIR)$(DATADIR)/faces.safetensors.xz \
	      $(DESTDIR)$(DATADIR)/heldout.safetensors.xz $(DESTDIR)$(DATADIR)/MANIFEST.md \
	      $(DESTDIR)$(DATADIR)/tg_safetensors.py
	-rmdir $(DESTDIR)$(DATADIR) $(DESTDIR)$(CMAKEDIR) 2>/dev/null
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1 && \
	    ldconfig -v -N 2>/dev/null | grep -q "^$(realpath $(LIBDIR)):"; then ldconfig; fi

clean:
	rm -rf build build-san build-tsan build-fuzz build-abi build-wasm demo-out

-include $(patsubst %.o,%.d,$(LIB_OBJ)) $(TEST_BIN:=.d) $(patsubst %.o,%.d,$(WASM_OBJ))
