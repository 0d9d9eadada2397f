# Shared helpers for run-sipp-tests and bench-cps (sourced, not executed).
# Everything here binds to 127.0.0.1 only.

SIPTEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(dirname "$SIPTEST_DIR")
SCENARIOS="$SIPTEST_DIR/scenarios"
SWITCHBOARD_BIN=${SWITCHBOARD_BIN:-$ROOT_DIR/target/release/switchboard}

# Our own SWITCHBOARD_* settings must not leak into the bridges we start.
for _v in $(compgen -e); do
    case "$_v" in SWITCHBOARD_*) [ "$_v" = SWITCHBOARD_BIN ] || unset "$_v" ;; esac
done
unset _v

die() { echo "error: $*" >&2; exit 2; }

require_tools() {
    [ -x "$SWITCHBOARD_BIN" ] || die "switchboard binary not found at $SWITCHBOARD_BIN
       build it first: (cd $ROOT_DIR && cargo build --release -p switchboard)
       or point SWITCHBOARD_BIN at one"
    local t
    for t in sipp curl timeout; do
        command -v "$t" >/dev/null 2>&1 || die "'$t' not found (apt-get install sip-tester curl coreutils)"
    done
}

# ---- ports -------------------------------------------------------------------------------
# A port is taken when any IPv4/IPv6 TCP or UDP socket has it as its local port.
declare -A _PORTS_GIVEN=()
port_in_use() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v h="$hex" 'FNR > 1 { split($2, a, ":"); if (toupper(a[length(a)]) == h) { found = 1; exit } }
                     END { exit found ? 0 : 1 }' /proc/net/tcp /proc/net/udp /proc/net/tcp6 /proc/net/udp6 2>/dev/null
}
# free_port: a loopback port free for both UDP and TCP, never handed out twice in one run.
free_port() {
    local p i
    for i in $(seq 1 200); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        [ -n "${_PORTS_GIVEN[$p]:-}" ] && continue
        port_in_use "$p" && continue
        _PORTS_GIVEN[$p]=1
        echo "$p"
        return 0
    done
    die "no free port found"
}

# ---- bridge ------------------------------------------------------------------------------
# start_bridge NAME [switchboard run flags...]: sets SB_PID, SB_SIP (port), SB_ADMIN (port).
# The bridge logs to $OUT/NAME.bridge.log.
SB_PIDS=()
start_bridge() {
    local name=$1
    shift
    SB_SIP=$(free_port)
    SB_ADMIN=$(free_port)
    "$SWITCHBOARD_BIN" run --sip-listen "127.0.0.1:$SB_SIP" --admin-listen "127.0.0.1:$SB_ADMIN" "$@" \
        >"$OUT/$name.bridge.log" 2>&1 &
    SB_PID=$!
    SB_PIDS+=("$SB_PID")
    local i
    for i in $(seq 1 100); do
        if curl -fsS -m 1 "http://127.0.0.1:$SB_ADMIN/healthz" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$SB_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "bridge $name did not come up; its log:" >&2
    tail -20 "$OUT/$name.bridge.log" >&2
    return 1
}

# stop_bridge PID: SIGTERM, then SIGKILL after 5 s.
stop_bridge() {
    local pid=$1 i p keep=()
    for p in "${SB_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    SB_PIDS=("${keep[@]}")
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# stats_field ADMIN_PORT FIELD: one number from GET /stats (empty if unreachable).
stats_json() { curl -fsS -m 2 "http://127.0.0.1:$1/stats" 2>/dev/null || true; }
json_field() { # json_field JSON FIELD
    printf '%s' "$1" | sed -n "s/.*\"$2\"[[:space:]]*:[[:space:]]*\([0-9-][0-9]*\).*/\1/p"
}

# ---- SIPp statistics ---------------------------------------------------------------------
# csv_field FILE COLUMN: the COLUMN value on the last line of a SIPp -trace_stat file.
csv_field() {
    [ -f "$1" ] || { echo ""; return 0; }
    awk -F';' -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i }
                           END { if (c) print $c }' "$1"
}

# vmrss_kib PID: resident set size from /proc (KiB).
vmrss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
