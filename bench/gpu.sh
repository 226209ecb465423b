#!/usr/bin/env bash
# The GPU benchmark and end-to-end checks in one script, for a machine with a GPU, nvcc and Python
# but no R (the engine is built with CMake). Steps:
#   1. configure + build the engine with the CUDA backend (-DRKERAS_CUDA=ON, CUDA_ARCHS default 90)
#      and the targets engine_tests and bench_gpu_bench;
#   2. engine_tests --gtest_filter='Cuda*' (CPU-vs-CUDA parity of every kernel, and one training
#      epoch of the bench models on both: tests/engine/test_cuda_training.cpp);
#   3. bench_gpu_bench --device auto (rkeras: MLP and convnet at batch 128/256/1024, ResNet-style CNN
#      at batch 256) and bench/torch_gpu.py (the same in PyTorch, when torch with CUDA imports);
#   4. bench/gpu_table.py: the side-by-side table with ratios and goals, and gpu_table.md (date, GPU)
#      ready to paste into README.md.
# Without a usable GPU every step says so and the script still exits 0 (the CUDA tests skip, the
# benches print "no GPU: GPU workloads skipped"); a failed build or a failing CUDA test exits 1.
#
# Usage (from the repository root): bash bench/gpu.sh [OUTDIR]      (default build/gpu-bench)
# OUTDIR receives at most 7 files: gpu.log (all output), cuda_tests.txt, rkeras_gpu.{json,csv},
# torch_gpu.{json,csv}, gpu_table.md.
# Settings (environment):
#   BUILD_DIR     CMake build folder                (default build/gpu)
#   CUDA_ARCHS    CMAKE_CUDA_ARCHITECTURES          (default 90: H100/H200)
#   JOBS          parallel build jobs               (default: nproc)
#   PYTHON        Python with PyTorch               (default python3)
#   BENCH_ARGS    extra arguments for both benches  (e.g. "--models mlp --chunks 5")
#   SKIP_BUILD=1  use the build in BUILD_DIR as it is
#   RKERAS_CARRY  folder of what a machine without R or GoogleTest needs, made here by
#                 bench/gpu_carry.sh: eigen/ (RcppEigen's Eigen headers) and googletest/ (sources,
#                 built here into BUILD_DIR/gtest)   (default build/carry)
#   CUDNN_HOME    cuDNN's folder (include/, lib/); when cudnn.h is nowhere, the pip package
#                 nvidia-cudnn-cu* of PYTHON is used through a shim folder with the unversioned libcudnn.so
set -u
OUT=${1:-build/gpu-bench}
BUILD=${BUILD_DIR:-build/gpu}
ARCHS=${CUDA_ARCHS:-90}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
PYTHON=${PYTHON:-python3}
CARRY=${RKERAS_CARRY:-build/carry}
BENCH_ARGS=${BENCH_ARGS:-}
mkdir -p "$OUT" "$BUILD"
OUT=$(cd "$OUT" && pwd)
BUILD=$(cd "$BUILD" && pwd)
status=0
say() { echo "== gpu.sh: $*"; }

main() {

say "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -n), $(nproc 2>/dev/null) cores"
gpu_desc=""
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  gpu_desc=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1 |
             sed 's/, / /; s/, / driver /')
  say "GPU: $gpu_desc"
else
  say "nvidia-smi finds no GPU (the engine's own check follows)"
fi

# ------------------------------------------------------------------------------------------ build
nvcc_bin=$(command -v nvcc 2>/dev/null || true)
[ -z "$nvcc_bin" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc_bin=/usr/local/cuda/bin/nvcc
args=(-DCMAKE_BUILD_TYPE=Release)
command -v ccache >/dev/null 2>&1 && args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
if [ -n "$nvcc_bin" ]; then
  args+=(-DRKERAS_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$ARCHS" "-DCMAKE_CUDA_COMPILER=$nvcc_bin")
  # cuDNN from PYTHON's pip package when no cudnn.h is installed: CMake needs an unversioned
  # libcudnn.so, which the wheel lacks, and the loader needs its folder for cuDNN's sub-libraries.
  have_cudnn=0
  for d in "${CUDNN_HOME:-/nonexistent}/include" /usr/include /usr/include/x86_64-linux-gnu /usr/local/cuda/include \
           "$(dirname "$nvcc_bin")/../include"; do
    [ -f "$d/cudnn.h" ] && have_cudnn=1
  done
  if [ "$have_cudnn" = 0 ]; then
    pkg=$("$PYTHON" -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null || true)
    if [ -n "$pkg" ] && [ -f "$pkg/include/cudnn.h" ]; then
      lib=$(ls "$pkg"/lib/libcudnn.so* 2>/dev/null | head -1)
      mkdir -p "$BUILD/cudnn-shim/lib"
      ln -sfn "$pkg/include" "$BUILD/cudnn-shim/include"
      for f in "$pkg"/lib/lib*.so*; do ln -sf "$f" "$BUILD/cudnn-shim/lib/"; done
      [ -e "$BUILD/cudnn-shim/lib/libcudnn.so" ] || ln -sf "$lib" "$BUILD/cudnn-shim/lib/libcudnn.so"
      export CUDNN_HOME="$BUILD/cudnn-shim"
      export LD_LIBRARY_PATH="$pkg/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      say "cuDNN from the Python package: $pkg"
    fi
  fi
else
  say "no nvcc: building the CPU-only engine (the GPU steps will say why they skip)"
fi
# Eigen: CMake finds RcppEigen through Rscript, else /usr/include/eigen3; else the carried copy.
if ! command -v Rscript >/dev/null 2>&1 && [ ! -f /usr/include/eigen3/Eigen/Core ] && [ -f "$CARRY/eigen/Eigen/Core" ]; then
  args+=("-DRKERAS_EIGEN_INCLUDE_DIR=$(cd "$CARRY/eigen" && pwd)")
fi
# GoogleTest: the system's, else built from the carried sources, else no engine tests.
tests=ON
if [ ! -f /usr/include/gtest/gtest.h ] && [ ! -f /usr/local/include/gtest/gtest.h ]; then
  if [ -f "$BUILD/gtest/include/gtest/gtest.h" ]; then
    args+=("-DGTEST_ROOT=$BUILD/gtest" "-DCMAKE_PREFIX_PATH=$BUILD/gtest")
  elif [ "${SKIP_BUILD:-0}" != 1 ] && [ -f "$CARRY/googletest/CMakeLists.txt" ]; then
    say "building GoogleTest from $CARRY/googletest"
    if cmake -S "$CARRY/googletest" -B "$BUILD/gtest-build" -DCMAKE_BUILD_TYPE=Release -DBUILD_GMOCK=OFF \
         -DCMAKE_INSTALL_PREFIX="$BUILD/gtest" > "$BUILD/gtest.log" 2>&1 &&
       cmake --build "$BUILD/gtest-build" -j "$JOBS" >> "$BUILD/gtest.log" 2>&1 &&
       cmake --install "$BUILD/gtest-build" >> "$BUILD/gtest.log" 2>&1; then
      args+=("-DGTEST_ROOT=$BUILD/gtest" "-DCMAKE_PREFIX_PATH=$BUILD/gtest")
    else
      tail -20 "$BUILD/gtest.log"
      tests=OFF
    fi
  else
    tests=OFF
  fi
fi
[ "$tests" = OFF ] && { say "no GoogleTest (carry it: bash bench/gpu_carry.sh): engine tests not built"; args+=(-DRKERAS_BUILD_TESTS=OFF); }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "configure: cmake -S . -B $BUILD ${args[*]}"
  if ! cmake -S . -B "$BUILD" "${args[@]}" > "$BUILD/configure.log" 2>&1; then
    tail -40 "$BUILD/configure.log"
    say "configure failed (log: $BUILD/configure.log); on a machine without R or GoogleTest, run"
    say "'sh bench/gpu_carry.sh' where R is and carry build/carry along"
    return 1
  fi
  grep -E '^-- rkeras' "$BUILD/configure.log"
  targets=(bench_gpu_bench)
  [ "$tests" = ON ] && targets+=(engine_tests)
  say "build: ${targets[*]} with $JOBS jobs"
  t0=$(date +%s)
  if ! cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]}" > "$BUILD/build.log" 2>&1; then
    grep -E 'error|Error' "$BUILD/build.log" | head -40
    say "build failed (log: $BUILD/build.log)"
    return 1
  fi
  say "built in $(( $(date +%s) - t0 )) s"
fi

# ------------------------------------------------------------------------------------------ tests
if [ -x "$BUILD/engine_tests" ]; then
  say "engine_tests --gtest_filter='Cuda*'"
  "$BUILD/engine_tests" --gtest_filter='Cuda*' > "$OUT/cuda_tests.txt" 2>&1
  rc=$?
  # The totals, the first skip reason, and every failed test.
  grep -E '^\[==========\] [0-9]+ tests? from .* ran|^\[  (PASSED  |SKIPPED |FAILED  )\] [0-9]+ tests?' "$OUT/cuda_tests.txt"
  grep -m1 -E 'no usable CUDA device|this build has no CUDA backend' "$OUT/cuda_tests.txt"
  grep -E '^\[  FAILED  \] [A-Za-z]' "$OUT/cuda_tests.txt" | sort -u
  if [ "$rc" != 0 ]; then say "CUDA tests FAILED (rc $rc): see cuda_tests.txt"; status=1; fi
else
  say "no engine_tests binary: CUDA tests not run"
fi

# ---------------------------------------------------------------------------------------- benches
say "rkeras: bench_gpu_bench --device auto $BENCH_ARGS"
# shellcheck disable=SC2086
if ! "$BUILD/bench_gpu_bench" --device auto --json "$OUT/rkeras_gpu.json" --csv "$OUT/rkeras_gpu.csv" $BENCH_ARGS; then
  say "bench_gpu_bench failed"
  status=1
fi
say "PyTorch: $PYTHON bench/torch_gpu.py --device auto $BENCH_ARGS"
# shellcheck disable=SC2086
if ! PYTHONUNBUFFERED=1 "$PYTHON" bench/torch_gpu.py --device auto --json "$OUT/torch_gpu.json" --csv "$OUT/torch_gpu.csv" $BENCH_ARGS; then
  say "torch_gpu.py failed"
  status=1
fi

# -------------------------------------------------------------------------------------------- table
echo
"$PYTHON" bench/gpu_table.py "$OUT" "$gpu_desc" || status=1
say "outputs in $OUT; exit $status"
return "$status"
}

# Everything also goes to OUT/gpu.log; the exit status is main's.
main 2>&1 | tee "$OUT/gpu.log"
exit "${PIPESTATUS[0]}"
