#!/usr/bin/env bash
# A/B two switchboard builds under the same closed-loop UDP load, alternating,
# so that a change's cost is measured side by side on a noisy machine.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY [PAIRS]      # PAIRS=3 by default, ~20 s per pair
#   TRANSPORT=tcp bench/ab.sh OLD NEW [PAIRS]       # over TCP (sipload -t tcp -s 4)
#
# e.g. build the old commit elsewhere:
#   git worktree add /tmp/sb-old COMMIT
#   (cd /tmp/sb-old && CARGO_TARGET_DIR=$PWD/target/ab-old cargo build --release --bin switchboard)
#   bench/ab.sh /tmp/sb-old/target/ab-old/release/switchboard target/release/switchboard 6
#
# Uses the load generator target/release/sipload (built here with `cargo build --release
# -p sipload` when missing) and bench/gen_data.py's data in target/bench-data (generated
# here when missing, as bench/run.sh does). Needs cargo, python3 and taskset.
# Each run: the server with --workers 1 on core 0, sipload -w 100 for 8 s on core 1,
# loopback only; prints the rate and the server's CPU per answered request.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 2 ]] || { echo "usage: bench/ab.sh OLD_BINARY NEW_BINARY [PAIRS]" >&2; exit 2; }
OLD="$1" NEW="$2" PAIRS="${3:-3}"
TRANSPORT="${TRANSPORT:-udp}"
case "$TRANSPORT" in
    udp) LOAD=(-t udp) ;;
    tcp) LOAD=(-t tcp -s 4) ;;
    *) echo "ab.sh: TRANSPORT is udp or tcp" >&2; exit 1 ;;
esac
SIPLOAD=target/release/sipload
DATA=target/bench-data/routing.yaml
CALLS=target/bench-data/calls.csv
if [[ ! -x "$SIPLOAD" ]]; then
    cargo build --release --quiet -p sipload || { echo "ab.sh: building sipload failed" >&2; exit 1; }
fi
if [[ ! -f "$DATA" || ! -f "$CALLS" ]]; then
    python3 bench/gen_data.py --out target/bench-data >&2
fi
for f in "$OLD" "$NEW"; do
    [[ -x "$f" ]] || { echo "ab.sh: $f is not an executable" >&2; exit 1; }
done
RESULTS="$(mktemp)"
SERVER_PID=""
trap 'if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; fi; rm -f "$RESULTS"' EXIT

run() {   # $1 binary, $2 label
    local out port t0 t1 json
    out="$(mktemp)"
    taskset -c 0 "$1" serve --routing "$DATA" --listen 127.0.0.1:0 --workers 1 >"$out" 2>/dev/null &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        grep -q '^listening on tcp' "$out" && grep -q '^listening on udp' "$out" && break
        sleep 0.1
    done
    port="$(sed -n "s/^listening on $TRANSPORT 127\.0\.0\.1:\([0-9]*\)\$/\1/p" "$out")"
    [[ -n "$port" ]] || { echo "ab.sh: $1 did not start" >&2; exit 1; }
    sleep 0.5
    t0="$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")"
    json="$(taskset -c 1 "$SIPLOAD" run "127.0.0.1:$port" -f "$CALLS" -d 8 -w 100 "${LOAD[@]}" 2>/dev/null | tail -1)" || true
    t1="$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")"
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    rm -f "$out"
    [[ -n "$json" ]] || { echo "ab.sh: sipload printed nothing" >&2; exit 1; }
    python3 - "$2" "$json" "$t0" "$t1" "$(getconf CLK_TCK)" <<'PY'
import json, sys
label, record, t0, t1, hz = sys.argv[1], json.loads(sys.argv[2]), *map(int, sys.argv[3:])
answered = record["answered"]
cpu = (t1 - t0) / hz
print(f"{label}: {answered / record['elapsed_s']:>9,.0f} req/s  "
      f"{cpu * 1e6 / max(answered, 1):6.2f} us CPU/req  timeouts {record['timeouts']}")
PY
}

for _ in $(seq 1 "$PAIRS"); do
    run "$OLD" old | tee -a "$RESULTS"
    run "$NEW" new | tee -a "$RESULTS"
done
python3 - "$RESULTS" "$TRANSPORT" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    label, rest = line.split(":", 1)
    fields = rest.split()
    rows.setdefault(label, []).append((float(fields[0].replace(",", "")), float(fields[2])))
for label, runs in rows.items():
    rate = sum(r for r, _ in runs) / len(runs)
    cpu = sum(c for _, c in runs) / len(runs)
    print(f"mean {label} ({sys.argv[2]}, {len(runs)} runs): {rate:,.0f} req/s, {cpu:.2f} us CPU/req")
PY
