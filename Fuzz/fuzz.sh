#!/bin/bash
# Builds and runs the libFuzzer targets (README.md, "Fuzzing").
#
#   Fuzz/fuzz.sh build                 build every target ($FUZZ_SCRATCH, default .build-fuzz; -sanitize=fuzzer,address)
#   Fuzz/fuzz.sh smoke [SECONDS]       each target on its committed corpus, SECONDS in all (default 60):
#                                      fails on any crash, sanitizer report, leak of the limits or hang
#   Fuzz/fuzz.sh run TARGET RUNS [libFuzzer flags...]
#                                      a long run of one target, new units kept in .build-fuzz/corpus/TARGET, inputs that fail in .build-fuzz/artifacts
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD  # absolute paths below: FuzzDispatch changes directory into its fixtures
SWIFT=${SWIFT:-swift}
TARGETS=(FuzzFraming FuzzDispatch FuzzArrays FuzzSafetensors FuzzNpy FuzzDatasets FuzzVocabulary FuzzGGUF FuzzTemplate FuzzTokenizer)
SCRATCH=${FUZZ_SCRATCH:-.build-fuzz}
[[ $SCRATCH == /* ]] || SCRATCH=$ROOT/$SCRATCH
BIN=$SCRATCH/release
# Swift's own backtracer and ASan's symbolizer are slow to start under a sanitizer; libFuzzer's
# report and the saved input are what matter. Leak checks are off: the Swift runtime's caches
# read as leaks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-symbolize=0:detect_leaks=0:allocator_may_return_null=1}
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}
# Per input: 4 KiB at most, 10 s at most (a hang is a finding), 2 GiB of memory at most.
LIMITS=(-max_len=4096 -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048)
# A target's dictionary (Fuzz/Dictionaries/<Target>.dict), when it has one.
dict() { [ -f "$ROOT/Fuzz/Dictionaries/$1.dict" ] && echo "-dict=$ROOT/Fuzz/Dictionaries/$1.dict" || true; }

build() {
    for t in "${TARGETS[@]}"; do
        DISTILLD_FUZZ=1 "$SWIFT" build -c release --scratch-path "$SCRATCH" \
            -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing --product "$t"
    done
}

case "${1:-}" in
build) build ;;
smoke)
    total=${2:-60}
    build
    each=$(( total / ${#TARGETS[@]} )); (( each >= 1 )) || each=1
    mkdir -p "$SCRATCH/artifacts"
    for t in "${TARGETS[@]}"; do
        scratch=$(mktemp -d)
        echo "fuzz-smoke: $t for ${each}s on Fuzz/Corpus/$t"
        if ! "$BIN/$t" "${LIMITS[@]}" $(dict "$t") -max_total_time="$each" -print_final_stats=1 \
            -artifact_prefix="$SCRATCH/artifacts/$t-" "$scratch" "$ROOT/Fuzz/Corpus/$t" > "$SCRATCH/smoke-$t.log" 2>&1; then
            rm -rf "$scratch"
            tail -40 "$SCRATCH/smoke-$t.log"
            echo "fuzz-smoke: $t FAILED (input saved under $SCRATCH/artifacts/, log $SCRATCH/smoke-$t.log)"
            exit 1
        fi
        rm -rf "$scratch"
        grep -E "^stat::number_of_executed_units|^#[0-9]+.*DONE" "$SCRATCH/smoke-$t.log" | tr '\n' ' '; echo
    done
    ;;
run)
    t=$2 runs=$3; shift 3
    mkdir -p "$SCRATCH/corpus/$t" "$SCRATCH/artifacts"
    exec "$BIN/$t" "${LIMITS[@]}" $(dict "$t") -runs="$runs" -print_final_stats=1 \
        -artifact_prefix="$SCRATCH/artifacts/$t-" "$@" "$SCRATCH/corpus/$t" "$ROOT/Fuzz/Corpus/$t"
    ;;
*)
    sed -n '2,9p' "$0"
    exit 2
    ;;
esac
