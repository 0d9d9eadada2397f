#!/usr/bin/env bash
# Run each fuzz target for SECONDS (default 600), seeded from the fixtures and fuzz/seeds/, and
# print executions and coverage per target. Needs cargo-fuzz (`cargo install cargo-fuzz`) and
# the nightly toolchain that ships with the image.
#   sip_message, sip_endpoint  RFC 4475 messages and the typical INVITE
#   sdp                        seeds/sdp/*.sdp and every SDP body of those SIP fixtures
#   rtp_rtcp                   fixtures/rtp/*.bin and seeds/rtp_rtcp/*.bin
#   realtime_server            fixtures/realtime/*.jsonl, one event per file and whole files
# FUZZ_TARGETS="sdp rtp_rtcp" runs a subset. Exits 1 if any target found a crash (its input is
# in artifacts/<target>/, printed here in base64 with the panic message).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
targets=${FUZZ_TARGETS:-"sip_message sip_endpoint sdp rtp_rtcp realtime_server"}
sip_fixtures=(../fixtures/sip/typical-invite.sip ../fixtures/sip/rfc4475/*/*.dat)

seed() {
  local dir="corpus/$1"
  mkdir -p "$dir"
  case $1 in
    sip_message | sip_endpoint) cp "${sip_fixtures[@]}" "$dir/" ;;
    sdp)
      cp seeds/sdp/*.sdp "$dir/"
      local f body
      for f in "${sip_fixtures[@]}"; do
        # The body is what follows the first empty line; keep it when it is SDP.
        body="$dir/body-$(basename "$f").sdp"
        sed '1,/^\r\{0,1\}$/d' "$f" >"$body"
        head -c 3 "$body" | grep -q '^v=' || rm -f "$body"
      done
      ;;
    rtp_rtcp) cp ../fixtures/rtp/*.bin seeds/rtp_rtcp/*.bin "$dir/" ;;
    realtime_server)
      local f line n
      for f in ../fixtures/realtime/*.jsonl; do
        cp "$f" "$dir/"
        n=0
        while IFS= read -r line || [ -n "$line" ]; do
          n=$((n + 1))
          printf '%s' "$line" >"$dir/$(basename "$f" .jsonl)-$n.json"
        done <"$f"
      done
      ;;
    *) echo "unknown target $1" >&2; return 1 ;;
  esac
}

max_len() {
  case $1 in
    rtp_rtcp) echo 4096 ;;
    realtime_server) echo 16384 ;;
    *) echo 8192 ;;
  esac
}

summary=()
crashed=0
for target in $targets; do
  seed "$target"
  echo "== $target: ${secs}s, $(ls "corpus/$target" | wc -l) inputs in corpus/$target"
  log=$(mktemp)
  status=0
  cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$secs" \
    -max_len="$(max_len "$target")" -timeout=10 >"$log" 2>&1 || status=$?
  grep -E "^#[0-9]+.*(INITED|DONE)|^Done|SUMMARY|ERROR|panicked|crash-|timeout-|oom-" "$log" | tail -n 6 || true
  execs=$(awk '/^Done [0-9]+ runs/ { print $2 }' "$log" | tail -n 1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
  artifact=$(grep -oE "artifacts/$target/[A-Za-z0-9_.-]+" "$log" | tail -n 1 || true)
  result=ok
  if [ "$status" -ne 0 ] || [ -n "$artifact" ]; then
    crashed=1
    result="FAILED (exit $status)"
    grep -A 4 -E "panicked at|ERROR: libFuzzer" "$log" | head -n 12 || true
    if [ -n "$artifact" ] && [ -f "$artifact" ]; then
      result="CRASH $artifact"
      echo "input (base64): $(base64 -w0 "$artifact")"
    elif ! grep -qE '^#[0-9]+' "$log"; then
      tail -n 20 "$log"
    fi
  fi
  rm -f "$log"
  summary+=("$(printf '%-16s execs %10s (%6s/s)  cov %5s  ft %6s  corpus %-10s %s' "$target" \
    "${execs:-?}" "$(( ${execs:-0} / (secs > 0 ? secs : 1) ))" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result")")
done
echo
echo "== summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
exit "$crashed"
