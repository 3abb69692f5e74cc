#!/bin/sh
# Builds the Windows agent as it ships: a mingw-w64 tree of this source without SP_TEST_HOOKS
# (scripts/test's own mingw tree has them, for the tests that need the fake VSS backend).
# Incremental after the first run.
#   shipped-build.sh CMAKE SOURCE_DIR BUILD_DIR
set -eu
cmake=$1 src=$2 tree=$3
"$cmake" -S "$src" -B "$tree" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$src/cmake/mingw-w64.cmake" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSP_WERROR=ON -DSP_TEST_HOOKS=OFF -DBUILD_TESTING=OFF \
  >/dev/null
"$cmake" --build "$tree"
grep -q '^SP_TEST_HOOKS:BOOL=OFF$' "$tree/CMakeCache.txt"
