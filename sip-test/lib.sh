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
    # Call records in memory unless a test asks otherwise: runs stay independent.
    SWITCHBOARD_DATABASE=${SB_DATABASE:-memory} \
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
# ---- capture --------------------------------------------------------------------------
# start_hostclock OUT SECONDS: the machine's own timer stalls during a capture, the reference
# rtpcheck.py --host-stalls subtracts from the bridge's RTP intervals (sip-test/hostclock.py:
# one pinned process per CPU at SCHED_FIFO 50, above every ordinary thread and the media
# threads even at --media-priority rt). Sets CLOCK_PID; stop it with
# stop_hostclock (it also stops by itself after SECONDS).
start_hostclock() {
    timeout -k 2 $(($2 + 10)) python3 "$SIPTEST_DIR/hostclock.py" "$1" "$2" &
    CLOCK_PID=$!
}

stop_hostclock() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# start_capture PCAP LOG FILTER SECONDS: tshark on lo writing PCAP; returns once the capture is
# live, i.e. a probe datagram (to udp port 9, a port no check reads) shows up in tshark's packet
# list. "Capturing on" is printed before dumpcap sees packets: a call placed in that window lost
# its INVITE from the capture (CI, 2026-12-02). Sets CAP_PID; returns 1 if it never went live.
start_capture() {
    local pcap=$1 log=$2 filter=$3 secs=$4 i
    timeout -k 2 $((secs + 15)) tshark -i lo -f "($filter) or (udp dst port 9 and src host 127.0.0.1)" \
        -a "duration:$secs" -w "$pcap" -P -l >"$log" 2>&1 &
    CAP_PID=$!
    for i in $(seq 1 100); do
        kill -0 "$CAP_PID" 2>/dev/null || return 1
        # bash's /dev/udp: one datagram, no listener needed (the ICMP unreachable is harmless)
        echo "switchboard capture probe" 2>/dev/null >/dev/udp/127.0.0.1/9 || true
        sleep 0.1
        grep -q '127\.0\.0\.1' "$log" 2>/dev/null && return 0
    done
    return 1
}

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

# ---- the seed call (demo agents on the built-in simulator), shared by run-baresip and
# run-sipp-agent. Callers define report NAME PASS|FAIL FIGURES (and may define
# segment_failed, called after a failed segment).
# The caller's side of the seed call: start time (s) and line. The agents' answers in between
# (fixtures/sim/demo.toml, real time): greeting 0-3.3 s; router narration about 9.8-15.6 and
# support's acknowledgment 15.6-21.4; support's narration about 27-32.5 and sales' offer
# 32.5-38.2; sales' confirmation and goodbye about 41-47.
AGENT_MIC_TIMELINE=("4.0 caller-billing.wav" "22.5 caller-upgrade.wav" "39.5 caller-yes.wav")
AGENT_MIC_END=50


at_least() { [ -n "$1" ] && python3 -c "import sys; sys.exit(0 if float('$1') >= float('$2') else 1)"; }

# check_segment NAME HEARD FROM LEN REF MAX_DELAY_MS MIN_CORR: the REF speech is in HEARD's
# [FROM, FROM+LEN] seconds (delay-aligned normalised correlation, baresip/xcorr.py).
check_segment() {
    local name=$1 heard=$2 from=$3 len=$4 ref=$5 max_delay=$6 min_corr=$7
    local seg="${heard%.wav}-$name.wav" ref8="${heard%.wav}-$name-ref.wav" fig corr
    sox "$heard" "$seg" trim "$from" "$len"
    sox "$ref" -r 8000 -c 1 -b 16 -e signed-integer "$ref8"
    fig=$(python3 "$SIPTEST_DIR/baresip/xcorr.py" "$ref8" "$seg" "$max_delay")
    corr=$(sed -n 's/^corr=\([0-9.]*\).*/\1/p' <<<"$fig")
    if at_least "$corr" "$min_corr"; then
        report "$name" PASS "$fig (need corr >= $min_corr)"
    else
        report "$name" FAIL "$fig (need corr >= $min_corr)"
        if declare -F segment_failed >/dev/null; then segment_failed; fi
    fi
}

# check_agent_segments HEARD_8K_WAV MIN_CORR MIN_CORR_SEGMENT: the six agent answers of the
# seed call, each in its window.
check_agent_segments() {
    local heard=$1 min_corr=$2 MIN_CORR_SEGMENT=$3 FIXTURES="$ROOT_DIR/fixtures/audio"
    # Windows start about 0.5 s before each answer (measured starts: 0.08, 9.78, 15.56, 26.76,
    # 32.20, 43.90 s); answers that follow one another directly leave a little of the previous
    # one in the window, hence the lower bar for those (a wrong or missing WAV scores < 0.3).
    check_segment agent-greeting "$heard" 0 5 "$FIXTURES/router-greeting.wav" 1500 "$min_corr"
    check_segment agent-narration "$heard" 9.3 6.8 "$FIXTURES/router-handoff.wav" 1500 "$MIN_CORR_SEGMENT"
    check_segment support-ack "$heard" 15.1 6.8 "$FIXTURES/support-ack.wav" 1500 "$MIN_CORR_SEGMENT"
    check_segment support-narration "$heard" 26.3 6.4 "$FIXTURES/support-handoff.wav" 1500 "$MIN_CORR_SEGMENT"
    check_segment sales-offer "$heard" 31.7 6.6 "$FIXTURES/sales-offer.wav" 1500 "$MIN_CORR_SEGMENT"
    check_segment sales-goodbye "$heard" 43.4 3.7 "$FIXTURES/sales-goodbye.wav" 1500 "$MIN_CORR_SEGMENT"
}
