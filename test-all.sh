#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian machine with only the Rust toolchain:
# installs what the tests need (idempotently), checks format, lints and the sans-IO rule,
# runs the workspace tests, then the real-peer tests (SIPp) against the release binary.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\n==> %s\n' "$*"; }

# --- system packages (apt) ----------------------------------------------------------------
# command -> Debian package
declare -A PKGS=([sipp]=sip-tester [curl]=curl [cmake]=cmake [sox]=sox [baresip]=baresip [tshark]=tshark [python3]=python3 [kamailio]=kamailio [pg_ctlcluster]=postgresql [openssl]=openssl)
missing=()
for cmd in "${!PKGS[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${PKGS[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # Debian starts its own kamailio on 5060 where systemd runs; the tests start their own.
  if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now kamailio >/dev/null 2>&1 || true; fi
fi

# --- Python packages (pip) ----------------------------------------------------------------
# The Realtime conformance test validates our events with the official `openai` types.
if ! python3 -c "import openai" >/dev/null 2>&1; then
  say "installing the openai Python package"
  python3 -m pip install -q openai || python3 -m pip install -q --break-system-packages openai
fi

# --- toolchain components -----------------------------------------------------------------
for comp in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$comp" || rustup component add "$comp"
done

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

say "protocol crates are sans-IO (no tokio in their dependency tree)"
for c in sip-msg sip-proto rtp codec realtime router; do
  if cargo tree -p "$c" -e normal | grep -qE '\btokio v'; then
    echo "FAIL: $c depends on tokio" >&2
    exit 1
  fi
  echo "ok: $c has no tokio"
done

say "cargo test --workspace"
cargo test --workspace

say "release build for the real-peer tests"
cargo build --release -p switchboard

say "SIPp scenarios"
SWITCHBOARD_BIN="$PWD/target/release/switchboard" sip-test/run-sipp-tests
SWITCHBOARD_BIN="$PWD/target/release/switchboard" sip-test/run-kamailio
SWITCHBOARD_BIN="$PWD/target/release/switchboard" sip-test/run-baresip
SWITCHBOARD_BIN="$PWD/target/release/switchboard" sip-test/run-sipp-agent
SWITCHBOARD_BIN="$PWD/target/release/switchboard" sip-test/run-secrets
SWITCHBOARD_BIN="$PWD/target/release/switchboard" sip-test/soak 1000

say "all tests passed"
