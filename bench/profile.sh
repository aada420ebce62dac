#!/usr/bin/env bash
# Where a request's CPU goes, per transport (issue #22): the server's own
# samples sorted into what they were doing, beside its CPU per request.
#
#   bench/profile.sh [BINARY] [SECONDS]     # target/release/switchboard, 10 s
#
# For each of UDP, TCP and TLS in turn: the server (one worker, `serve` as
# bench/run.sh starts it) on core 0, sipload's closed loop on core 1 (-w 100;
# -s 4 connections on TCP and TLS, as bench/run.sh), and `perf record` on the
# server's process for SECONDS (the cpu-clock event: these VMs have no
# hardware counters, so the samples are timer ticks, 4 kHz). Then, per
# transport, the server's CPU per answered request (its /proc ticks over
# sipload's answers) and the share of its samples in each part:
#
#   kernel          anything in [kernel.kallsyms]: system calls, the loopback
#                   path (the receiver's half of a send runs in the sender's
#                   call), epoll, scheduling; the top symbols are listed
#   parse           sip:: (but the answer's writing), memchr
#   answer          sip::response, server::redirect: the 302/404/480 written
#   route           routing::
#   handler         server::handler (but parse and answer above), the flood
#                   guard, metrics
#   runtime         tokio, mio, server::stream, server::tcp/tls: the stream
#                   side's tasks and buffers
#   tls             rustls, ring
#   udp worker      server::udp (the recvmmsg/sendmmsg loop)
#   libc            memcpy, memmove, memset, malloc, free
#   other           the rest (listed when over 1 %)
#
# Symbols are functions after inlining (release build, LTO): a function
# inlined into another counts where it was inlined. Needs perf (Debian's
# linux-perf), taskset, and what bench/run.sh needs (sipload, the bench
# data from bench/gen_data.py, openssl).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="${1:-$TARGET/release/switchboard}" SECONDS_="${2:-10}"
SIPLOAD="$TARGET/release/sipload"
DATA=target/bench-data
command -v perf >/dev/null || { echo "profile.sh: needs perf (apt-get install linux-perf)" >&2; exit 1; }
[[ -x "$SIPLOAD" ]] || cargo build --release --quiet -p sipload
[[ -f "$DATA/routing.yaml" && -f "$DATA/calls.csv" ]] || python3 bench/gen_data.py --out "$DATA" >&2
[[ -x "$BIN" ]] || { echo "profile.sh: $BIN is not an executable" >&2; exit 1; }
WORK="$(mktemp -d)"
SERVER_PID=""
trap 'if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -addext basicConstraints=critical,CA:FALSE -days 2 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >"$WORK/openssl.log" 2>&1 \
    || { cat "$WORK/openssl.log" >&2; exit 1; }

for transport in udp tcp tls; do
    out="$WORK/$transport.out"
    taskset -c 0 "$BIN" serve --routing "$DATA/routing.yaml" --listen 127.0.0.1:0 \
        --tls-listen 127.0.0.1:0 --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" \
        --workers 1 >"$out" 2>/dev/null </dev/null &
    SERVER_PID=$!
    port=""
    for _ in $(seq 1 100); do
        port="$(sed -n "s/^listening on $transport 127\.0\.0\.1:\([0-9]*\)$/\1/p" "$out" | head -1)"
        [[ -n "$port" ]] && break
        sleep 0.1
    done
    [[ -n "$port" ]] || { echo "profile.sh: $BIN did not start" >&2; exit 1; }
    args=(-w 100)
    [[ $transport != udp ]] && args+=(-s 4)
    [[ $transport == tls ]] && args+=(--tls-ca "$WORK/cert.pem" --tls-server-name localhost)
    # sipload runs a second longer than perf records on each side.
    taskset -c 1 "$SIPLOAD" run "127.0.0.1:$port" -f "$DATA/calls.csv" -t "$transport" \
        -d $((SECONDS_ + 2)) "${args[@]}" >"$WORK/$transport.load" 2>/dev/null &
    load=$!
    sleep 1
    t0="$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")"
    perf record -q -e cpu-clock -F 4000 -p "$SERVER_PID" -o "$WORK/$transport.perf" \
        -- sleep "$SECONDS_" 2>/dev/null
    t1="$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")"
    wait "$load" || true
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    perf report -i "$WORK/$transport.perf" --stdio --no-children --sort dso,sym \
        -F overhead,dso,sym 2>/dev/null | grep -E '^ +[0-9]' >"$WORK/$transport.rows" || true
    python3 - "$transport" "$(tail -1 "$WORK/$transport.load")" "$t0" "$t1" \
        "$(getconf CLK_TCK)" "$SECONDS_" "$WORK/$transport.rows" <<'PY'
import json, re, sys
transport, run, t0, t1, hz, seconds, rows = sys.argv[1:8]
run = json.loads(run)
ticks = int(t1) - int(t0)
# sipload's answer rate over its run, times the seconds perf recorded:
# the requests answered while the server's ticks were counted.
rate = run["rate_answered"]
cpu_us = ticks / int(hz) / (rate * float(seconds)) * 1e6
parts = [
    ("kernel", lambda d, s: d == "[kernel.kallsyms]"),
    ("tls", lambda d, s: "rustls" in s or "ring::" in s or s.startswith("ring_")),
    ("answer", lambda d, s: "sip::response" in s or "server::redirect" in s),
    ("parse", lambda d, s: "sip::" in s or "memchr" in s),
    ("route", lambda d, s: "routing::" in s),
    ("udp worker", lambda d, s: "server::udp" in s),
    ("runtime", lambda d, s: any(k in s for k in ("tokio", "mio::", "server::stream", "server::tcp", "server::tls"))),
    ("handler", lambda d, s: "server::" in s or "flood" in s or "metrics" in s or "prometheus" in s),
    ("libc", lambda d, s: d.startswith("libc") and re.search(r"mem(cpy|move|set|cmp)|malloc|free|cfree|_int_", s)),
]
share, top = {}, {}
for line in open(rows):
    m = re.match(r"\s*([0-9.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)", line)
    if not m:
        continue
    pct, dso, sym = float(m.group(1)), m.group(2), m.group(3).strip()
    name = next((n for n, f in parts if f(dso, sym)), "other")
    share[name] = share.get(name, 0) + pct
    top.setdefault(name, []).append((pct, sym))
print(f"\n{transport.upper()}: {rate:,.0f} req/s, "
      f"server CPU {cpu_us:.2f} us per request")
for name, _ in parts + [("other", None)]:
    pct = share.get(name, 0.0)
    if pct == 0:
        continue
    syms = ", ".join(f"{s[:60]} {p:.1f}" for p, s in sorted(top[name], reverse=True)[:4])
    show = name in ("kernel", "other") or pct >= 1
    print(f"  {name:<11} {pct:5.1f} %  {cpu_us * pct / 100:5.2f} us" + (f"   ({syms})" if show else ""))
PY
done
