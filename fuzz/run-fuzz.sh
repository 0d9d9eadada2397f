#!/usr/bin/env bash
# Run each fuzz target for SECONDS (default 600), seeded with the RFC 4475 vectors, and print
# executions and coverage. Needs cargo-fuzz (`cargo install cargo-fuzz`) and the nightly
# toolchain that ships with the image.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
for target in sip_message sip_endpoint; do
  mkdir -p "corpus/$target"
  cp ../fixtures/sip/rfc4475/*/*.dat "corpus/$target/"
  echo "== $target: ${secs}s"
  cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$secs" -max_len=8192 2>&1 \
    | grep -E "^#[0-9]+.*(DONE|pulse)|Done|SUMMARY|ERROR|panicked|crash-" | tail -n 4
done
