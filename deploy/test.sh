#!/usr/bin/env bash
# The README's test command: installs what a fresh Debian 12 machine lacks, builds, and runs
# the whole test suite with CTest.
#
#   deploy/test.sh              normal build in build/, every test
#   deploy/test.sh --sanitize   ENGRAM_SANITIZE=ON (ASan + UBSan) in build-sanitize/
#   deploy/test.sh --valgrind   the crdt tests and the access decisions under valgrind (leaks
#                               are errors), fewer cases
#   deploy/test.sh --fuzz       clang + ENGRAM_FUZZ=ON in build-fuzz/, short fuzzer runs
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-normal}
jobs=$(nproc 2>/dev/null || echo 2)

case "$mode" in
    normal)     deploy/install-deps.sh;        dir=build;          flags=() ;;
    --sanitize) deploy/install-deps.sh;        dir=build-sanitize; flags=(-DENGRAM_SANITIZE=ON) ;;
    --valgrind) deploy/install-deps.sh;        dir=build;          flags=() ;;
    --fuzz)     deploy/install-deps.sh --fuzz; dir=build-fuzz
                flags=(-DENGRAM_FUZZ=ON -DCMAKE_C_COMPILER=clang) ;;
    *) echo "usage: deploy/test.sh [--sanitize|--valgrind|--fuzz]" >&2; exit 2 ;;
esac

cmake -S . -B "$dir" "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$jobs"

if [ "$mode" = --valgrind ]; then
    export ENGRAM_PROP_SCALE=${ENGRAM_PROP_SCALE:-0.05}
    failed=0; passed=0
    for t in "$dir"/tests/crdt/crdt_*_test "$dir"/tests/node/node_trust_acl_test; do
        if valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible \
                --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
                "$t" >"$t.valgrind.log" 2>&1; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1)); echo "valgrind: $t failed:"; tail -n 40 "$t.valgrind.log"
        fi
    done
    echo "valgrind: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
fi

ctest --test-dir "$dir" --output-on-failure -j "$jobs" ${CTEST_ARGS:-}
