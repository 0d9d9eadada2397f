#!/usr/bin/env bash
# Starts Switchboard on its embedded defaults (SIP 127.0.0.1:5060 UDP+TCP, admin
# 127.0.0.1:8080) on a fresh Debian machine with only the Rust toolchain: installs the one
# build tool it needs (cmake, for the bundled libopus) if missing, then builds and runs.
# Without OPENAI_API_KEY the built-in Realtime simulator answers, playing the demo call of
# fixtures/sim/demo.toml (router greeting, handoff narration; override with
# SWITCHBOARD_SIM_SCENARIO). Extra arguments go to `switchboard run`, e.g. ./run.sh --echo
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v cmake >/dev/null 2>&1; then
  echo "==> installing cmake (builds the bundled libopus)"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends cmake
fi
export SWITCHBOARD_SIM_SCENARIO=${SWITCHBOARD_SIM_SCENARIO:-$PWD/fixtures/sim/demo.toml}
exec cargo run --release -p switchboard -- run "$@"
