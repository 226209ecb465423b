# rkeras: set-up, build, test and check entry points (GNU make).
#
#   make demo      install what is missing, build + install the package, run the demo
#   make test      every test: engine tests (CMake + CTest), then testthat on the installed package
#   make test-cpu-only  the R tests again on a build made with RKERAS_CUDA=no (CPU backend only)
#
# configure builds the CUDA backend when it finds the CUDA toolkit with cuBLAS and cuDNN
# (RKERAS_CUDA=auto, the default). RKERAS_CUDA=yes|no forces the choice; RKERAS_CUDA_ARCHS
# (e.g. "90") limits the GPU architectures compiled, for quicker builds.
#   make help      all targets
#
# Works as root on a fresh Debian 12 machine (make deps installs the Debian
# packages that are missing; it does nothing when all are there).

SHELL := /bin/sh
.DEFAULT_GOAL := help
# Targets run one after the other, in the order given (test = deps, install, ...).
.NOTPARALLEL:

R       ?= R
RSCRIPT ?= Rscript
CMAKE   ?= cmake
CTEST   ?= ctest
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
PKG     := rkeras
VERSION := $(shell sed -n 's/^Version:[[:space:]]*//p' DESCRIPTION)

# Debian 12 packages needed to build, test, check and demo rkeras.
DEPS := r-base-dev r-cran-rcpp r-cran-rcppeigen r-cran-testthat r-cran-roxygen2 \
        r-cran-knitr r-cran-rmarkdown r-cran-ggplot2 r-cran-zeallot r-cran-magrittr \
        r-cran-cli r-cran-generics r-cran-hdf5r pandoc dataset-fashion-mnist cmake g++ make googletest libgtest-dev

# Only for `make bench`: the PyTorch peer (Debian's torch 1.13 on OpenBLAS built with OpenMP).
BENCH_DEPS := python3-torch python3-numpy libopenblas0-openmp

# Sanitizer run-time options: any report fails the test that triggered it.
SAN_ENV := ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1 \
           UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# testthat on the installed package (NOT_CRAN=true: the tests that spawn R processes, stream
# gigabytes or knit a report run too), then one summary line; fails on any
# failed or erroring expectation.
RTEST_R := options(testthat.progress.max_fails = 1e6); \
  res <- testthat::test_dir("tests/testthat", package = "$(PKG)", \
    load_package = "installed", \
    reporter = testthat::ProgressReporter[["new"]](show_praise = FALSE), \
    stop_on_failure = FALSE, stop_on_warning = FALSE); \
  kinds <- unlist(lapply(res, function(t) \
    vapply(t[["results"]], function(e) class(e)[1L], character(1)))); \
  n <- function(k) sum(kinds %in% k); \
  passed <- n("expectation_success"); \
  failed <- n(c("expectation_failure", "expectation_error")); \
  skipped <- n("expectation_skip"); \
  cat(sprintf("rtest: %d passed, %d failed, %d skipped\n", passed, failed, skipped)); \
  if (failed > 0L) quit(save = "no", status = 1L)

.PHONY: help deps bench-deps install document demo engine-test engine-test-cuda sanitize rtest test test-cpu-only check bench bench-gpu clean

help:
	@echo "rkeras $(VERSION) targets:"
	@echo "  make deps         install missing Debian packages (root; no-op when all present)"
	@echo "  make install      build and install the R package (R CMD INSTALL --preclean .)"
	@echo "  make demo         deps + install, then run inst/examples/fashion_mnist_mlp.R"
	@echo "  make test         deps + install + engine-test + rtest (every test)"
	@echo "  make engine-test  C++ engine tests through CMake/CTest (build/engine; with the CUDA"
	@echo "                    backend when nvcc is found: its parity tests skip without a GPU)"
	@echo "  make test-cpu-only  install with RKERAS_CUDA=no into build/lib-cpu, run testthat on it"
	@echo "  make sanitize     engine tests under ASan + UBSan (build/sanitize)"
	@echo "  make rtest        testthat on the installed package"
	@echo "  make check        R CMD build + R CMD check --no-manual (build/check)"
	@echo "  make bench        engine benchmarks, then rkeras vs PyTorch (bench/compare.sh), then bench-gpu"
	@echo "  make bench-gpu    GPU workloads vs PyTorch (bench/gpu.sh, bench/gpu.R); skipped without a GPU"
	@echo "  make bench-deps   install the PyTorch peer for make bench (root; not part of deps)"
	@echo "  make document     Rcpp::compileAttributes() + roxygen2::roxygenise()"
	@echo "  make clean        remove build trees and compiled objects"

# Installs the Debian packages in $(1) that are missing (as root; else prints the command).
define install_debs
	@missing=""; \
	for p in $(1); do \
	  s=$$(dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null || true); \
	  [ "$$s" = "install ok installed" ] || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then \
	  echo "$(2): all $(words $(1)) Debian packages are installed"; exit 0; \
	fi; \
	echo "$(2): missing:$$missing"; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "$(2): not root; run as root:" >&2; \
	  echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends$$missing" >&2; \
	  exit 1; \
	fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update && apt-get install -y --no-install-recommends $$missing
endef

deps:
	$(call install_debs,$(DEPS),deps)

bench-deps:
	$(call install_debs,$(BENCH_DEPS),bench-deps)

install: deps
	MAKEFLAGS=-j$(JOBS) $(R) CMD INSTALL --preclean .

# Rcpp::compileAttributes() needs a NAMESPACE with useDynLib(.registration =
# TRUE) to register routines; on a first run, write a stub that roxygen2 replaces.
DOCUMENT_R := if (!file.exists("NAMESPACE")) writeLines(c( \
    "\# Generated by roxygen2: do not edit by hand", "", \
    "useDynLib($(PKG), .registration = TRUE)"), "NAMESPACE"); \
  Rcpp::compileAttributes(); \
  roxygen2::roxygenise()

document:
	$(RSCRIPT) -e '$(DOCUMENT_R)'

demo: deps install
	$(RSCRIPT) inst/examples/fashion_mnist_mlp.R

# The engine tests build the CUDA backend too when configure would (RKERAS_CUDA auto/yes and
# nvcc found); RKERAS_CUDA_ARCHS (e.g. "90") is passed on as CMAKE_CUDA_ARCHITECTURES.
empty :=
space := $(empty) $(empty)
NVCC := $(shell if [ -n "$$CUDA_HOME" ] && [ -x "$$CUDA_HOME/bin/nvcc" ]; then echo "$$CUDA_HOME/bin/nvcc"; \
  elif command -v nvcc >/dev/null 2>&1; then command -v nvcc; \
  elif [ -x /usr/local/cuda/bin/nvcc ]; then echo /usr/local/cuda/bin/nvcc; fi)
CMAKE_CUDA_ARGS := $(if $(filter no NO No off OFF false FALSE 0,$(RKERAS_CUDA)),-DRKERAS_CUDA=OFF,$(if $(NVCC),-DRKERAS_CUDA=ON -DCMAKE_CUDA_COMPILER=$(NVCC) $(if $(RKERAS_CUDA_ARCHS),-DCMAKE_CUDA_ARCHITECTURES="$(subst $(space),;,$(strip $(RKERAS_CUDA_ARCHS)))"),-DRKERAS_CUDA=OFF))

engine-test: deps
	$(CMAKE) -S . -B build/engine $(CMAKE_CUDA_ARGS)
	$(CMAKE) --build build/engine -j $(JOBS)
	$(CTEST) --test-dir build/engine --output-on-failure -j $(JOBS)

sanitize: deps
	$(CMAKE) -S . -B build/sanitize -DRKERAS_SANITIZE=ON
	$(CMAKE) --build build/sanitize -j $(JOBS)
	$(SAN_ENV) $(CTEST) --test-dir build/sanitize --output-on-failure -j $(JOBS)

rtest:
	NOT_CRAN=true $(RSCRIPT) -e '$(RTEST_R)'

test: deps install engine-test rtest

# The CPU-only build (RKERAS_CUDA=no) in its own library, and the whole testthat suite on it.
# --preclean: the objects of a CUDA build were compiled with RKERAS_HAVE_CUDA=1.
test-cpu-only: deps
	rm -rf build/lib-cpu && mkdir -p build/lib-cpu
	RKERAS_CUDA=no MAKEFLAGS=-j$(JOBS) $(R) CMD INSTALL --preclean -l build/lib-cpu .
	NOT_CRAN=true R_LIBS="$(CURDIR)/build/lib-cpu$${R_LIBS:+:$$R_LIBS}" $(RSCRIPT) -e \
	  'stopifnot(!isTRUE(attr(rkeras::gpu_info(), "cuda_built"))); $(RTEST_R)'

check: deps
	rm -rf build/check && mkdir -p build/check
	cd build/check && MAKEFLAGS=-j$(JOBS) $(R) CMD build ../..
	cd build/check && MAKEFLAGS=-j$(JOBS) _R_CHECK_FORCE_SUGGESTS_=false \
	  $(R) CMD check --no-manual $(PKG)_$(VERSION).tar.gz || true
	@log=build/check/$(PKG).Rcheck/00check.log; \
	if [ ! -f "$$log" ]; then echo "check: no $$log" >&2; exit 1; fi; \
	status=$$(grep '^Status:' "$$log" || echo "Status: unknown (check did not finish)"); \
	echo "check: $$status"; \
	case "$$status" in *ERROR*|*WARNING*|*unknown*) exit 1 ;; esac

bench: deps bench-deps install
	$(CMAKE) -S . -B build/engine
	$(CMAKE) --build build/engine -j $(JOBS) --target benches
	@found=0; for b in build/engine/bench_*; do \
	  [ -x "$$b" ] || continue; found=1; \
	  case "$$b" in *bench_gpu_bench) continue ;; esac; \
	  echo "== $$b"; "$$b" || exit 1; \
	done; \
	[ "$$found" = 1 ] || echo "bench: no benchmarks in bench/ yet"
	@echo "== bench/gemm.R (through the installed R package)"
	$(RSCRIPT) bench/gemm.R
	@echo "== bench/compare.sh (rkeras vs PyTorch, $${THREADS:-2} threads; PyTorch scripts from $${RKERAS_TORCH_BENCH:-../shared/bench})"
	RSCRIPT=$(RSCRIPT) sh bench/compare.sh
	$(MAKE) --no-print-directory bench-gpu

# The GPU workloads (MLP, convnet, ResNet-style CNN; rkeras vs PyTorch on the same GPU): the
# engine-level bench/gpu.sh (CUDA build in build/gpu, CUDA tests, tables in build/gpu-bench) when
# nvidia-smi sees a GPU, then the R-level bench/gpu.R (skips itself unless gpu_available()).
bench-gpu:
	@if nvidia-smi -L >/dev/null 2>&1; then \
	  echo "== bench/gpu.sh (CUDA engine build, CUDA tests, rkeras vs PyTorch on the GPU)"; \
	  JOBS=$(JOBS) bash bench/gpu.sh build/gpu-bench || exit 1; \
	else \
	  echo "== bench: no GPU: GPU workloads skipped (nvidia-smi finds no GPU)"; \
	fi
	@echo "== bench/gpu.R (the GPU workloads through the installed R package)"
	$(RSCRIPT) bench/gpu.R

clean:
	rm -rf build $(PKG).Rcheck $(PKG)_*.tar.gz
	./cleanup
