#!/bin/sh
# Prepares what bench/gpu.sh needs on a GPU machine that has nvcc, CMake and Python but neither R
# (so no RcppEigen) nor GoogleTest: copies the Eigen headers the R package compiles against and the
# GoogleTest sources (Debian's googletest package) into a folder that git ignores, to be carried
# along with the working tree (about 10 MB). Run here, from the repository root:
#   sh bench/gpu_carry.sh [DEST]     (default build/carry; bench/gpu.sh reads RKERAS_CARRY, same default)
set -eu
DEST=${1:-build/carry}
mkdir -p "$DEST"
eigen=""
if command -v Rscript >/dev/null 2>&1; then
  eigen=$(Rscript -e "cat(system.file('include', package = 'RcppEigen'))" 2>/dev/null || true)
fi
[ -n "$eigen" ] && [ -f "$eigen/Eigen/Core" ] || eigen=/usr/include/eigen3
if [ ! -f "$eigen/Eigen/Core" ]; then
  echo "gpu_carry: no Eigen found (install r-cran-rcppeigen or libeigen3-dev)" >&2
  exit 1
fi
rm -rf "$DEST/eigen" "$DEST/googletest"
mkdir -p "$DEST/eigen"
cp -r "$eigen/Eigen" "$DEST/eigen/"
echo "gpu_carry: Eigen from $eigen"
if [ -f /usr/src/googletest/CMakeLists.txt ]; then
  cp -r /usr/src/googletest "$DEST/googletest"
  echo "gpu_carry: GoogleTest sources from /usr/src/googletest"
else
  echo "gpu_carry: no /usr/src/googletest (Debian package googletest): engine tests will not build there" >&2
fi
du -sh "$DEST"
