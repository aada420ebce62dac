#!/usr/bin/env bash
# Proxy mode's benchmark (issue #21): CPU per relayed call, switchboard against
# Kamailio 5.6's tm doing the same job (bench/proxy/kamailio-proxy.cfg), side by
# side in one run on this machine. Not a test: it prints figures.
#
#   bench/proxy.sh                      # RATE=400 calls/s, CALLS=8000, ROUNDS=2
#   RATE=800 CALLS=16000 bench/proxy.sh
#
# Each call: SIPp UAC -> proxy -> SIPp UAS (bench/proxy/uac.xml, uas.xml):
# INVITE, 100 from the proxy, 180 and 200 relayed, the ACK of the 200 relayed
# to the phone. The proxy under test runs pinned to CPU 1 with one worker
# (switchboard --workers 1; kamailio -n 1 plus tm's timer processes); both
# SIPp instances run on CPU 0. CPU is the proxy's user+system time over the
# run (all of Kamailio's processes), divided by the calls; memory is the
# proxy's resident set growth at the peak of calls in flight.
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

# CPU ticks (user+system) of a process and its descendants.
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
    children.setdefault(int(fields[1]), []).append((int(pid), int(fields[11]) + int(fields[12])))
def total(pid):
    own = 0
    try:
        stat = open(f"/proc/{pid}/stat").read()
        fields = stat[stat.rindex(")") + 2:].split()
        own = int(fields[11]) + int(fields[12])
    except OSError:
        pass
    return own + sum(total(c) for c, _ in children.get(pid, []))
print(total(root))
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

measure() {   # $1 name, $2 pid of the proxy, $3 port; prints "cpu_us_per_call rss_growth_kb"
    local before after rss0 peak=0 rss
    before=$(ticks "$2"); rss0=$(rss_kb "$2")
    run_uac "$1" "$3" &
    local uac=$!
    while kill -0 "$uac" 2>/dev/null; do
        rss=$(rss_kb "$2"); (( rss > peak )) && peak=$rss
        sleep 0.2
    done
    wait "$uac" || true
    after=$(ticks "$2")
    local hz; hz=$(getconf CLK_TCK)
    python3 -c "print(f'{($after-$before)/$hz/$CALLS*1e6:.1f} {$peak-$rss0}')"
}

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
    read -r sb_cpu sb_rss < <(measure "sb-$round" "$sb" "$SB_PORT")
    kill "$sb" "$UAS_PID" 2>/dev/null || true; wait "$sb" "$UAS_PID" 2>/dev/null || true
    # Kamailio
    run_uas "kam-$round"
    mkdir -p "$OUT/kam-run"
    taskset -c 1 "$KAMAILIO" -f "$HERE/kamailio-proxy.cfg" -DD -E -n 1 -M 64 -m 256 \
        -Y "$OUT/kam-run" -A "SIP_PORT=$KAM_PORT" -A "NEXT_HOP=\"127.0.0.1:$UAS_PORT\"" \
        >"$OUT/kam-$round.out" 2>"$OUT/kam-$round.log" &
    kam=$!
    sleep 2
    read -r kam_cpu kam_rss < <(measure "kam-$round" "$kam" "$KAM_PORT")
    kill "$kam" "$UAS_PID" 2>/dev/null || true; wait "$kam" "$UAS_PID" 2>/dev/null || true
    results+=("$round $sb_cpu $kam_cpu $sb_rss $kam_rss")
    echo "round $round: switchboard $sb_cpu µs/call, Kamailio $kam_cpu µs/call (RSS growth $sb_rss / $kam_rss KiB)" >&2
done

printf '%s\n' "${results[@]}" | python3 -c "
import sys, statistics
rows = [l.split() for l in sys.stdin if l.strip()]
sb = [float(r[1]) for r in rows]; kam = [float(r[2]) for r in rows]
print(f'proxied calls at {$RATE}/s, {$CALLS} per run, {len(rows)} rounds (median):')
print(f'  switchboard: {statistics.median(sb):.1f} µs of CPU per call')
print(f'  Kamailio tm: {statistics.median(kam):.1f} µs of CPU per call')
print(f'  Kamailio / switchboard: {statistics.median(k/s for k, s in zip(kam, sb)):.2f}x')
"
