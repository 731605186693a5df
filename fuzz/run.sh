#!/usr/bin/env bash
# Builds and runs every fuzz target for the given seconds each (default 60), one after the
# other. New inputs go to a scratch corpus under fuzz/target/; the checked-in seed corpus
# (fuzz/corpus/<target>) is read, not written. A crash lands in fuzz/artifacts/<target>/:
# copy it into fuzz/regressions/<target>/ so `cargo test` replays it forever.
#   fuzz/run.sh 600            # AddressSanitizer (RUSTC_BOOTSTRAP=1 on stable)
#   SANITIZER=none fuzz/run.sh # no sanitizer
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
targets=(log_decode log_roundtrip keystore_decode sim_ops)
for target in "${targets[@]}"; do
    scratch="target/scratch-corpus/$target"
    mkdir -p "$scratch" "corpus/$target"
    flags=(-max_total_time="$seconds")
    # sim_ops ran ~670 scripts/s here (no sanitizer, 2026-12-01); without this libFuzzer
    # keeps its inputs tiny for minutes.
    [ "$target" = sim_ops ] && flags+=(-len_control=0 -max_len=4096)
    if [ "${SANITIZER:-address}" = none ]; then
        cargo fuzz run --sanitizer none "$target" "$scratch" "corpus/$target" -- "${flags[@]}"
    else
        RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$scratch" "corpus/$target" -- "${flags[@]}"
    fi
done
