#!/usr/bin/env bash
# The whole test suite: installs test dependencies, builds the release and the
# sanitizer (ASan + UBSan) configurations, and runs every test in both
# (the sanitizer build runs the C unit tests, tests/test_*.c).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
jobs=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPL_SANITIZE=ON
cmake --build build-asan -j"$jobs"
# The Lambda function's backend (no oneDNN: im2col + Eigen SGEMM), under the
# sanitizers too: the kernels it shares with the fast backend are checked
# against the reference backend by test_fast / test_nn.
cmake -S . -B build-asan-nodnnl -DCMAKE_BUILD_TYPE=Debug -DPL_SANITIZE=ON -DPL_DNNL=OFF
cmake --build build-asan-nodnnl -j"$jobs" --target test_fast test_nn test_function peerless_cli

status=0
echo "== sanitizer build (ASan + UBSan): unit tests =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan -R '^test_' --output-on-failure -j"$jobs" || status=1
echo "== sanitizer build without oneDNN (the Lambda function's backend) =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan-nodnnl -R '^(test_fast|test_nn|test_function)$' --output-on-failure -j"$jobs" || status=1
echo "== the packaged function's own build (x86-64-v3, no oneDNN) =="
ctest --test-dir build/lambda --output-on-failure || status=1
echo "== release build: all tests =="
ctest --test-dir build --output-on-failure || status=1
exit $status
