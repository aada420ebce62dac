#!/usr/bin/env bash
# Proxy mode's benchmark (issue #21): CPU per relayed call, switchboard against
# Kamailio 5.6's tm doing the same job (bench/proxy/kamailio-proxy.cfg), side by
# side in one run on this machine. Not a test: it prints figures.
#
#   bench/proxy.sh                      # RATE=400 calls/s, CALLS=8000, ROUNDS=2
#   RATE=800 CALLS=16000 bench/proxy.sh
#   bench/proxy.sh saturate             # calls per second per core
#
# Each call: SIPp UAC -> proxy -> SIPp UAS (bench/proxy/uac.xml, uas.xml):
# INVITE, 100 from the proxy, 180 and 200 relayed, the ACK of the 200 relayed
# to the phone. The proxy under test runs pinned to CPU 1 with one worker
# (switchboard --workers 1; kamailio -n 1 plus tm's timer processes); both
# SIPp instances run on CPU 0. CPU is the proxy's user+system time over the
# run (all of Kamailio's processes), divided by the calls; memory is the
# proxy's resident set growth at the peak of calls in flight.
#
# `saturate` asks how many calls one core relays: proxyload (bench/sipload,
# caller and phone in one thread, batched I/O) keeps WINDOW=200 calls in
# flight for DURATION=8 seconds, so the proxy's core, not the generator's, runs out.
# The same calls (INVITE, 100, 180, 200, ACK through the proxy); reported per
# proxy: calls/s, CPU per call (user and kernel), and calls per second of
# the proxy's CPU, alternating switchboard and Kamailio for ROUNDS rounds.
# Needs: cargo, sipp (sip-tester), kamailio, python3, taskset. Installs nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
HERE="$ROOT/bench/proxy"
RATE="${RATE:-400}"
CALLS="${CALLS:-8000}"
ROUNDS="${ROUNDS:-2}"
OUT="${OUT:-$ROOT/target/bench-proxy}"
UAS_PORT=15099 SB_PORT=15060 KAM_PORT=15070
mkdir -p "$OUT"
die() { echo "proxy.sh: $*" >&2; exit 1; }
command -v sipp >/dev/null || die "sipp is missing: apt-get install -y sip-tester"
KAMAILIO="$(command -v kamailio || true)"
[[ -z "$KAMAILIO" && -x /usr/sbin/kamailio ]] && KAMAILIO=/usr/sbin/kamailio
[[ -n "$KAMAILIO" ]] || die "kamailio is missing: apt-get install -y kamailio"

(cd "$ROOT" && cargo build --release --quiet --bin switchboard)
SB="${SB:-$ROOT/target/release/switchboard}"
SATURATE=""
[[ "${1:-}" == saturate ]] && SATURATE=1

# CPU ticks of a process and its descendants: "user system".
ticks() {
    python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1])
children = {}
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    fields = stat[stat.rindex(")") + 2:].split()
    children.setdefault(int(fields[1]), []).append(int(pid))
def total(pid):
    user = system = 0
    try:
        stat = open(f"/proc/{pid}/stat").read()
        fields = stat[stat.rindex(")") + 2:].split()
        user, system = int(fields[11]), int(fields[12])
    except OSError:
        pass
    for child in children.get(pid, []):
        u, s = total(child)
        user, system = user + u, system + s
    return user, system
print(*total(root))
PY
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

run_uas() {
    taskset -c 0 sipp -sf "$HERE/uas.xml" -i 127.0.0.1 -p "$UAS_PORT" -timeout 600 -nostdin \
        -trace_err -error_file "$OUT/uas-$1.errors" >"$OUT/uas-$1.out" 2>&1 &
    UAS_PID=$!
    sleep 0.5
}

run_uac() {   # $1 name, $2 port
    taskset -c 0 sipp "127.0.0.1:$2" -sf "$HERE/uac.xml" -s +18005550100 -i 127.0.0.1 -p 0 \
        -r "$RATE" -m "$CALLS" -timeout 300 -timeout_error -nostdin \
        -trace_stat -stf "$OUT/uac-$1.csv" -trace_err -error_file "$OUT/uac-$1.errors" \
        >"$OUT/uac-$1.out" 2>&1 || true
    grep -E "Successful call|Failed call" "$OUT/uac-$1.out" | tail -2 | tr -s ' ' >&2 || true
}

measure() {   # $1 name, $2 pid of the proxy, $3 port; prints "cpu_us_per_call rss_growth_kb user_us sys_us"
    local u0 s0 u1 s1 rss0 peak=0 rss
    read -r u0 s0 < <(ticks "$2"); rss0=$(rss_kb "$2")
    run_uac "$1" "$3" &
    local uac=$!
    while kill -0 "$uac" 2>/dev/null; do
        rss=$(rss_kb "$2"); (( rss > peak )) && peak=$rss
        sleep 0.2
    done
    wait "$uac" || true
    read -r u1 s1 < <(ticks "$2")
    local hz; hz=$(getconf CLK_TCK)
    python3 -c "
per = 1e6 / $hz / $CALLS
print(f'{($u1-$u0+$s1-$s0)*per:.1f} {$peak-$rss0} {($u1-$u0)*per:.1f} {($s1-$s0)*per:.1f}')"
}

if [[ -n "$SATURATE" ]]; then
    WINDOW="${WINDOW:-200}" SECONDS_EACH="${DURATION:-8}"
    TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
    (cd "$ROOT" && cargo build --release --quiet -p sipload --bin proxyload)
    LOAD="$TARGET_DIR/release/proxyload"
    saturate() {   # $1 name, $2 pid, $3 port; prints "calls/s cpu_us user_us sys_us calls_per_cpu_second failed"
        local u0 s0 u1 s1
        read -r u0 s0 < <(ticks "$2")
        taskset -c 0 "$LOAD" "127.0.0.1:$3" --phone-port "$UAS_PORT" --window "$WINDOW" \
            --duration "$SECONDS_EACH" >"$OUT/$1.json"
        read -r u1 s1 < <(ticks "$2")
        python3 - "$OUT/$1.json" "$u0" "$s0" "$u1" "$s1" "$(getconf CLK_TCK)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
u0, s0, u1, s1, hz = map(int, sys.argv[2:])
calls = max(r["answered"], 1)
cpu = (u1 - u0 + s1 - s0) / hz
per = 1e6 / hz / calls
print(f'{r["calls_per_second"]:.0f} {cpu * 1e6 / calls:.1f} {(u1 - u0) * per:.1f} {(s1 - s0) * per:.1f} {calls / max(cpu, 1e-9):.0f} {r["failed"]}')
PY
    }
    rows=()
    for round in $(seq 1 "$ROUNDS"); do
        printf 'proxy:\n  max_calls: 2000000\n' >"$OUT/switchboard.yaml"
        taskset -c 1 "$SB" serve --config "$OUT/switchboard.yaml" --routing "$ROOT/config/routing.yaml" \
            --listen "127.0.0.1:$SB_PORT" --workers 1 --mode proxy --next-hop "sip:127.0.0.1:$UAS_PORT" \
            --contact-template 'sip:{number}@carrier.example;user=phone' >"$OUT/sb-sat-$round.out" 2>"$OUT/sb-sat-$round.log" &
        sb=$!
        sleep 1
        read -r sb_rate sb_cpu sb_user sb_sys sb_core sb_failed < <(saturate "sb-sat-$round" "$sb" "$SB_PORT")
        kill "$sb" 2>/dev/null || true; wait "$sb" 2>/dev/null || true
        mkdir -p "$OUT/kam-run"
        taskset -c 1 "$KAMAILIO" -f "$HERE/kamailio-proxy.cfg" -DD -E -n 1 -M 64 -m 2048 \
            -Y "$OUT/kam-run" -A "SIP_PORT=$KAM_PORT" -A "NEXT_HOP=\"127.0.0.1:$UAS_PORT\"" \
            >"$OUT/kam-sat-$round.out" 2>"$OUT/kam-sat-$round.log" &
        kam=$!
        sleep 2
        read -r kam_rate kam_cpu kam_user kam_sys kam_core kam_failed < <(saturate "kam-sat-$round" "$kam" "$KAM_PORT")
        kill "$kam" 2>/dev/null || true; wait "$kam" 2>/dev/null || true
        echo "round $round: switchboard $sb_rate calls/s, $sb_cpu µs/call (user $sb_user, kernel $sb_sys), $sb_core calls per CPU second, $sb_failed failed;" \
            "Kamailio $kam_rate calls/s, $kam_cpu µs/call (user $kam_user, kernel $kam_sys), $kam_core calls per CPU second, $kam_failed failed" >&2
        rows+=("$sb_rate $sb_cpu $sb_user $sb_sys $sb_core $kam_rate $kam_cpu $kam_user $kam_sys $kam_core")
    done
    printf '%s\n' "${rows[@]}" | python3 -c "
import sys, statistics
rows = [[float(x) for x in l.split()] for l in sys.stdin if l.strip()]
med = lambda i: statistics.median(r[i] for r in rows)
print(f'proxied calls, closed loop with $WINDOW in flight, ${SECONDS_EACH} s a run, {len(rows)} rounds (median):')
print(f'  switchboard: {med(0):,.0f} calls/s; {med(1):.1f} µs of CPU per call (user {med(2):.1f}, kernel {med(3):.1f}); {med(4):,.0f} calls per CPU second')
print(f'  Kamailio tm: {med(5):,.0f} calls/s; {med(6):.1f} µs of CPU per call (user {med(7):.1f}, kernel {med(8):.1f}); {med(9):,.0f} calls per CPU second')
print(f'  calls per core, switchboard / Kamailio: {statistics.median(r[4] / r[9] for r in rows):.2f}x')
"
    exit 0
fi

results=()
for round in $(seq 1 "$ROUNDS"); do
    # switchboard
    run_uas "sb-$round"
    # A relayed call is held 64×T1 (32 s) after its answer (RFC 6026 Timers
    # L and M): at RATE calls/s that is 32×RATE calls in flight.
    printf 'proxy:\n  max_calls: %d\n' $(( RATE * 40 + 1000 )) >"$OUT/switchboard.yaml"
    taskset -c 1 "$SB" serve --config "$OUT/switchboard.yaml" --routing "$ROOT/config/routing.yaml" --listen "127.0.0.1:$SB_PORT" \
        --workers 1 --mode proxy --next-hop "sip:127.0.0.1:$UAS_PORT" \
        --contact-template 'sip:{number}@carrier.example;user=phone' >"$OUT/sb-$round.out" 2>"$OUT/sb-$round.log" &
    sb=$!
    sleep 1
    read -r sb_cpu sb_rss sb_user sb_sys < <(measure "sb-$round" "$sb" "$SB_PORT")
    kill "$sb" "$UAS_PID" 2>/dev/null || true; wait "$sb" "$UAS_PID" 2>/dev/null || true
    # Kamailio
    run_uas "kam-$round"
    mkdir -p "$OUT/kam-run"
    taskset -c 1 "$KAMAILIO" -f "$HERE/kamailio-proxy.cfg" -DD -E -n 1 -M 64 -m 256 \
        -Y "$OUT/kam-run" -A "SIP_PORT=$KAM_PORT" -A "NEXT_HOP=\"127.0.0.1:$UAS_PORT\"" \
        >"$OUT/kam-$round.out" 2>"$OUT/kam-$round.log" &
    kam=$!
    sleep 2
    read -r kam_cpu kam_rss kam_user kam_sys < <(measure "kam-$round" "$kam" "$KAM_PORT")
    kill "$kam" "$UAS_PID" 2>/dev/null || true; wait "$kam" "$UAS_PID" 2>/dev/null || true
    results+=("$round $sb_cpu $kam_cpu $sb_rss $kam_rss $sb_user $sb_sys $kam_user $kam_sys")
    echo "round $round: switchboard $sb_cpu µs/call (user $sb_user, kernel $sb_sys), Kamailio $kam_cpu µs/call (user $kam_user, kernel $kam_sys) (RSS growth $sb_rss / $kam_rss KiB)" >&2
done

printf '%s\n' "${results[@]}" | python3 -c "
import sys, statistics
rows = [l.split() for l in sys.stdin if l.strip()]
sb = [float(r[1]) for r in rows]; kam = [float(r[2]) for r in rows]
print(f'proxied calls at {$RATE}/s, {$CALLS} per run, {len(rows)} rounds (median):')
med = lambda i: statistics.median(float(r[i]) for r in rows)
print(f'  switchboard: {statistics.median(sb):.1f} µs of CPU per call (user {med(5):.1f}, kernel {med(6):.1f})')
print(f'  Kamailio tm: {statistics.median(kam):.1f} µs of CPU per call (user {med(7):.1f}, kernel {med(8):.1f})')
print(f'  Kamailio / switchboard: {statistics.median(k/s for k, s in zip(kam, sb)):.2f}x')
"
