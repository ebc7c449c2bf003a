# Shared by scripts/test and scripts/run-example (sourced, not run): one configuration for both, so
# switching between the two commands never reconfigures or rebuilds from scratch.
#   GRADTAPE_BUILD_DIR  build directory (default: build, under the project root)
#   GRADTAPE_JOBS       parallel compile jobs (default: the number of CPUs)

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${GRADTAPE_BUILD_DIR:-$root/build}
jobs=${GRADTAPE_JOBS:-$(nproc)}

section() { printf '\n==== %s\n' "$*"; }

# Configures (once) and builds the given targets, or everything when none are given.
configure_and_build() {
  local launcher=()
  if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
  section "configure $build_dir"
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRADTAPE_WERROR=ON \
    -DGRADTAPE_BUILD_TESTS=ON -DGRADTAPE_BUILD_EXAMPLES=ON -DGRADTAPE_BUILD_BENCH=ON \
    "${launcher[@]}" >/dev/null
  local targets=()
  if [ $# -gt 0 ]; then targets=(--target "$@"); fi
  section "build ${*:-all} (-j$jobs)"
  cmake --build "$build_dir" -j "$jobs" "${targets[@]}"
}
