#!/usr/bin/env bash
# Call records' cost (issue #24): the same switchboard build under the same
# closed-loop UDP load as bench/ab.sh, alternating runs without and with
# --records-dir, side by side: the server's CPU per answered request, and
# whether every answered INVITE left a record (none dropped).
#
#   bench/records.sh [BINARY] [PAIRS]     # target/release/switchboard, 3 pairs
#   bench/records.sh instructions [BINARY] [N]   # 20,000 requests
#   bench/records.sh rate [BINARY] [RATE] [SECONDS] [WORKERS] [PAIRS]   # 100,000/s, 10 s, 1, 1
#
# Each run with records on also prints the records-writer thread's CPU
# per record (its share of the server's CPU above).
#
# `rate`: open loop instead (`sipload -r RATE`, on core 1), records off
# and on in turn at the same offered rate, the server's workers and
# writer on core 0 (with WORKERS 2, on cores 0 and 1, shared with
# sipload): INVITEs sent and answered, the records written and dropped
# as the metrics count them, UDP receive drops, the lines in the files,
# and the server's CPU per request and the writer's per record. At a
# fixed rate, records on and off are compared at the same load (in
# closed loop the writer slows the server, which changes its batching).
#
# Needs what bench/ab.sh needs (sipload, bench/gen_data.py's data, taskset).
#
# `instructions`: the same server under callgrind (load-independent, so
# comparable on a busy machine), records off and on, answering N + 1,000
# requests and 1,000: the difference over N is the instructions per
# request, for the whole process and for its threads (the UDP worker is
# the request path, records-writer the writer), and DHAT's heap blocks
# per request the same way. Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-target}"
if [[ "${1:-}" == instructions || "${1:-}" == rate ]]; then
    MODE=$1
    shift
fi
BIN="${1:-$TARGET/release/switchboard}" PAIRS="${2:-3}"
SIPLOAD="$TARGET/release/sipload"
DATA=target/bench-data/routing.yaml
CALLS=target/bench-data/calls.csv
[[ -x "$SIPLOAD" ]] || cargo build --release --quiet -p sipload
[[ -f "$DATA" && -f "$CALLS" ]] || python3 bench/gen_data.py --out target/bench-data >&2
[[ -x "$BIN" ]] || { echo "records.sh: $BIN is not an executable" >&2; exit 1; }
RESULTS="$(mktemp)"
SERVER_PID=""

# CPU ticks (user + system) of the server's records-writer thread, 0
# when it has none.
writer_ticks() {
    local t ticks=0
    for t in /proc/"$SERVER_PID"/task/*; do
        if [[ "$(cat "$t/comm" 2>/dev/null)" == records-writer ]]; then
            ticks="$(awk '{print $14 + $15}' "$t/stat")"
        fi
    done
    echo "$ticks"
}
trap 'if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; fi; rm -f "$RESULTS"' EXIT

run() {   # $1 label, then extra server arguments
    local label=$1 out port t0 t1 w0 w1 json records dir
    shift
    out="$(mktemp)"
    dir="$(mktemp -d)"
    taskset -c 0 "$BIN" serve --routing "$DATA" --listen 127.0.0.1:0 --workers 1 "$@" \
        ${RECORDS:+--records-dir "$dir"} >"$out" 2>/dev/null &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        grep -q '^listening on udp' "$out" && break
        sleep 0.1
    done
    port="$(sed -n 's/^listening on udp 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out")"
    [[ -n "$port" ]] || { echo "records.sh: $BIN did not start" >&2; exit 1; }
    sleep 0.5
    t0="$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")" w0="$(writer_ticks)"
    json="$(taskset -c 1 "$SIPLOAD" run "127.0.0.1:$port" -f "$CALLS" -d 8 -w 100 -t udp 2>/dev/null | tail -1)" || true
    t1="$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")" w1="$(writer_ticks)"
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    records="$( (cat "$dir"/*.jsonl 2>/dev/null || true) | wc -l)"
    rm -rf "$out" "$dir"
    python3 - "$label" "$json" "$t0" "$t1" "$(getconf CLK_TCK)" "$records" "$w0" "$w1" <<'PY'
import json, sys
label, record, t0, t1, hz, lines, w0, w1 = sys.argv[1], json.loads(sys.argv[2]), *map(int, sys.argv[3:])
answered = record["answered"]
cpu = (t1 - t0) / hz
writer = f"  writer {(w1 - w0) / hz * 1e6 / lines:.2f} us/record" if lines else ""
print(f"{label}: {answered / record['elapsed_s']:>9,.0f} req/s  "
      f"{cpu * 1e6 / max(answered, 1):6.2f} us CPU/req  answered {answered} records {lines}{writer}")
PY
}

# Prints "TOTAL WORKER WRITER" instructions (callgrind) or "BLOCKS"
# (DHAT) for a server answering $1 requests; $2 callgrind or dhat, then
# extra server arguments.
counted() {
    local n=$1 tool=$2 out dir cg port pid total worker writer f t
    shift 2
    out="$(mktemp)" dir="$(mktemp -d)" cg="$(mktemp -d)"
    if [[ $tool == callgrind ]]; then
        valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$cg/cg.%p" \
            "$BIN" serve --routing "$DATA" --listen 127.0.0.1:0 --workers 1 "$@" \
            ${RECORDS:+--records-dir "$dir"} >"$out" 2>"$cg/log" &
    else
        valgrind --tool=dhat --dhat-out-file=/dev/null \
            "$BIN" serve --routing "$DATA" --listen 127.0.0.1:0 --workers 1 "$@" \
            ${RECORDS:+--records-dir "$dir"} >"$out" 2>"$cg/log" &
    fi
    pid=$!
    SERVER_PID=$pid
    for _ in $(seq 1 600); do
        grep -q '^listening on udp' "$out" && break
        sleep 0.1
    done
    port="$(sed -n 's/^listening on udp 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out")"
    [[ -n "$port" ]] || { echo "records.sh: $BIN did not start under valgrind" >&2; exit 1; }
    "$SIPLOAD" run "127.0.0.1:$port" -f "$CALLS" -n "$n" -w 20 --timeout-ms 20000 -t udp \
        >"$cg/load" 2>/dev/null || { echo "records.sh: not every request was answered" >&2; exit 1; }
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    SERVER_PID=""
    if [[ $tool == callgrind ]]; then
        total=0 worker=0 writer=0
        for f in "$cg"/cg.*; do
            t="$(sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$f" | head -1)"
            total=$((total + t))
            # Which thread: the one that routed calls, and the one that ran
            # the writer's loop.
            if grep -q 'server::handler::route' "$f"; then worker=$((worker + t)); fi
            if grep -q 'Writer::run\|Writer::take\|Writer::flush' "$f"; then
                writer=$((writer + t))
            fi
        done
        echo "$total $worker $writer"
    else
        sed -n 's/.*Total: *[0-9,]* bytes in \([0-9,]*\) blocks.*/\1/p' "$cg/log" | tr -d ,
    fi
    rm -rf "$out" "$dir" "$cg"
}

if [[ "${MODE:-}" == instructions ]]; then
    command -v valgrind >/dev/null || { echo "records.sh: needs valgrind" >&2; exit 1; }
    N="${2:-20000}" BASE=1000
    for label in off on; do
        if [[ $label == on ]]; then export RECORDS=1; else export RECORDS=; fi
        read -r t0 w0 r0 <<<"$(counted "$BASE" callgrind)"
        read -r t1 w1 r1 <<<"$(counted $((BASE + N)) callgrind)"
        b0="$(counted "$BASE" dhat)" b1="$(counted $((BASE + N)) dhat)"
        echo "records $label: $(( (t1 - t0) / N )) instructions per request" \
            "(UDP worker $(( (w1 - w0) / N )), records writer $(( (r1 - r0) / N )))," \
            "$(( (b1 - b0) * 100 / N ))/100 heap blocks per request"
    done
    exit 0
fi

# One open-loop run at $RATE for $SECONDS_ s, records on when RECORDS is
# set; $1 its label. Prints the metrics it read and a summary line.
rate_run() {
    local label=$1 out dir port admin t0 t1 w0 w1 json metrics records cores=0
    [[ "$WORKERS" -gt 1 ]] && cores=0,1
    out="$(mktemp)" dir="$(mktemp -d)"
    taskset -c "$cores" "$BIN" serve --routing "$DATA" --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
        --workers "$WORKERS" ${RECORDS:+--records-dir "$dir"} >"$out" 2>/dev/null &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        grep -q '^listening on http' "$out" && break
        sleep 0.1
    done
    port="$(sed -n 's/^listening on udp 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out")"
    admin="$(sed -n 's/^listening on http \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$out")"
    [[ -n "$port" && -n "$admin" ]] || { echo "records.sh: $BIN did not start" >&2; exit 1; }
    sleep 0.5
    t0="$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")" w0="$(writer_ticks)"
    json="$(taskset -c 1 "$SIPLOAD" run "127.0.0.1:$port" -f "$CALLS" -r "$RATE" -d "$SECONDS_" -t udp 2>/dev/null | tail -1)" || true
    t1="$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")" w1="$(writer_ticks)"
    # The writer writes out at least every 500 ms.
    sleep 1
    metrics="$(curl -s "http://$admin/metrics" | grep -E '^switchboard_(records_|udp_receive_drops|requests_total\{method="INVITE")' || true)"
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    records="$( (cat "$dir"/*.jsonl 2>/dev/null || true) | wc -l)"
    rm -rf "$out" "$dir"
    echo "$metrics" | grep -v '^switchboard_requests_total' | sed "s/^/  ($label) /"
    # INVITEs the server answered, as it counts them (sipload counts
    # only the answers that reached it in time).
    echo "$metrics" | awk -v label="$label" '/^switchboard_requests_total/ { n += $NF }
        END { printf "  (%s) INVITEs the server answered: %d\n", label, n }'
    python3 - "$label" "$json" "$t0" "$t1" "$w0" "$w1" "$(getconf CLK_TCK)" "$records" <<'PY'
import json, sys
label, run = sys.argv[1], json.loads(sys.argv[2])
t0, t1, w0, w1, hz, lines = map(int, sys.argv[3:9])
server, writer = (t1 - t0) / hz, (w1 - w0) / hz
per = f", writer {writer * 1e6 / lines:.2f} us/record" if lines else ""
print(f"{label}: sent {run['sent']} at {run['rate_sent']:,.0f}/s answered {run['answered']} "
      f"timeouts {run['timeouts']} records {lines}  {server * 1e6 / max(run['answered'], 1):.2f} us CPU/req{per}")
PY
}

if [[ "${MODE:-}" == rate ]]; then
    RATE="${2:-100000}" SECONDS_="${3:-10}" WORKERS="${4:-1}" PAIRS="${5:-1}"
    for _ in $(seq 1 "$PAIRS"); do
        RECORDS= rate_run off | tee -a "$RESULTS"
        RECORDS=1 rate_run on | tee -a "$RESULTS"
    done
    python3 - "$RESULTS" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    if line.startswith("  ("):
        continue
    label, rest = line.split(":", 1)
    f = rest.split()
    rows.setdefault(label, []).append((int(f[5]), int(f[9]), float(f[10])))
mean = lambda xs: sum(xs) / len(xs)
on, off = rows["on"], rows["off"]
print(f"at the same offered rate, records on / off, CPU per request: "
      f"{mean([r[2] for r in on]) / mean([r[2] for r in off]):.3f}")
print("records written / INVITEs answered, each run with records on: "
      + ", ".join(f"{r[1]}/{r[0]}" for r in on))
PY
    exit 0
fi

for _ in $(seq 1 "$PAIRS"); do
    RECORDS= run off | tee -a "$RESULTS"
    RECORDS=1 run on | tee -a "$RESULTS"
done
python3 - "$RESULTS" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    label, rest = line.split(":", 1)
    f = rest.split()
    rows.setdefault(label, []).append((float(f[0].replace(",", "")), float(f[2]), int(f[6]), int(f[8])))
mean = lambda xs: sum(xs) / len(xs)
for label, runs in rows.items():
    print(f"mean records {label} ({len(runs)} runs): {mean([r[0] for r in runs]):,.0f} req/s, "
          f"{mean([r[1] for r in runs]):.2f} us CPU/req")
on, off = rows["on"], rows["off"]
print(f"records on / off, CPU per request: {mean([r[1] for r in on]) / mean([r[1] for r in off]):.3f}")
print("records written / INVITEs answered, each run with records on: "
      + ", ".join(f"{r[3]}/{r[2]}" for r in on))
PY
