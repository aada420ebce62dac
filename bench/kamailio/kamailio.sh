#!/usr/bin/env bash
# Start or stop Kamailio running bench/kamailio/redirect.cfg over bench/gen_data.py's data.
#
#   bench/kamailio/kamailio.sh start     # prints the main PID once Kamailio answers OPTIONS
#   bench/kamailio/kamailio.sh stop      # stops the whole process group
#
# Environment:
#   PORT          UDP and TCP port on 127.0.0.1 (5090)
#   CHILDREN      UDP workers, kamailio -n (1)
#   TCP_CHILDREN  TCP workers, kamailio -N (= CHILDREN)
#   DATA_DIR      gen_data.py's kamailio/ directory (target/bench-data/kamailio)
#   RUN_DIR       pid file, runtime dir and kamailio.log (${TMPDIR:-/tmp}/switchboard-kamailio-PORT);
#                 the same RUN_DIR (or PORT) finds the instance again for `stop`
#   CPUS          taskset CPU list for Kamailio and every process it forks (none: not pinned)
#   SHM_MB (256), PKG_MB (64), LOG_LEVEL (0 = warnings), WAIT (60 s to answer OPTIONS),
#   KAMAILIO      the binary (kamailio from PATH, else /usr/sbin/kamailio)
# Needs kamailio 5.6 (Debian: apt-get install -y kamailio) and python3; installs nothing.
# Kamailio runs in its own session (setsid), so its main PID is also its process group.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PORT="${PORT:-5090}"
CHILDREN="${CHILDREN:-1}"
TCP_CHILDREN="${TCP_CHILDREN:-$CHILDREN}"
DATA_DIR="${DATA_DIR:-$ROOT/target/bench-data/kamailio}"
RUN_DIR="${RUN_DIR:-${TMPDIR:-/tmp}/switchboard-kamailio-$PORT}"
CPUS="${CPUS:-}"
SHM_MB="${SHM_MB:-256}"
PKG_MB="${PKG_MB:-64}"
LOG_LEVEL="${LOG_LEVEL:-0}"
WAIT="${WAIT:-60}"
PIDFILE="$RUN_DIR/kamailio.pid"

die() { echo "kamailio.sh: $*" >&2; exit 1; }

alive() { [[ -s "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

# Send OPTIONS over UDP until a 200 comes back; give up after $1 s or when PID $2 is gone.
wait_options() {
    python3 - "$PORT" "$1" "$2" <<'PY'
import os, socket, sys, time
port, wait, pid = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(0.25)
me = s.getsockname()[1]
deadline = time.time() + wait
n = 0
while time.time() < deadline:
    if not os.path.exists("/proc/%d" % pid):
        sys.exit("kamailio exited")
    n += 1
    msg = ("OPTIONS sip:ping@127.0.0.1:%d SIP/2.0\r\n"
           "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-ready-%d\r\n"
           "Max-Forwards: 70\r\n"
           "From: <sip:ready@127.0.0.1>;tag=ready%d\r\n"
           "To: <sip:ping@127.0.0.1>\r\n"
           "Call-ID: ready-%d-%d@127.0.0.1\r\n"
           "CSeq: %d OPTIONS\r\n"
           "Content-Length: 0\r\n\r\n") % (port, me, n, n, os.getpid(), n, n)
    s.sendto(msg.encode(), ("127.0.0.1", port))
    try:
        while True:
            data = s.recv(65535)
            if data.startswith(b"SIP/2.0 200"):
                sys.exit(0)
    except (socket.timeout, ConnectionRefusedError):
        time.sleep(0.1)
sys.exit("no 200 to OPTIONS within %g s" % wait)
PY
}

start() {
    local kam
    kam="${KAMAILIO:-$(command -v kamailio || true)}"
    [[ -z "$kam" && -x /usr/sbin/kamailio ]] && kam=/usr/sbin/kamailio
    [[ -n "$kam" ]] || die "kamailio is missing: apt-get install -y kamailio"
    command -v python3 >/dev/null || die "python3 is missing"
    local t
    for t in did_user did_forward contact_user; do
        [[ -f "$DATA_DIR/$t" ]] || die "$DATA_DIR/$t is missing (bench/gen_data.py --out DIR writes DIR/kamailio/)"
    done
    DATA_DIR="$(cd "$DATA_DIR" && pwd)"
    alive && die "already running: pid $(cat "$PIDFILE") (RUN_DIR $RUN_DIR)"
    mkdir -p "$RUN_DIR"
    rm -f "$PIDFILE"
    local pin=()
    [[ -n "$CPUS" ]] && pin=(taskset -c "$CPUS")
    local t0 pid
    t0=$(date +%s%N)
    # -DD: stay in the foreground (children are forked, the creator does not daemonize);
    # -E: log to stderr, i.e. to kamailio.log; -Y/-P/-w: nothing outside RUN_DIR.
    "${pin[@]}" setsid "$kam" -f "$HERE/redirect.cfg" -DD -E --atexit=no \
        -P "$PIDFILE" -Y "$RUN_DIR" -w "$RUN_DIR" -m "$SHM_MB" -M "$PKG_MB" \
        -n "$CHILDREN" -N "$TCP_CHILDREN" \
        -A "SIP_PORT=$PORT" -A "LOG_LEVEL=$LOG_LEVEL" -A "DATA_URL=\"text://$DATA_DIR\"" \
        >"$RUN_DIR/kamailio.log" 2>&1 </dev/null &
    local launcher=$!
    for _ in $(seq 1 100); do
        [[ -s "$PIDFILE" ]] && break
        kill -0 "$launcher" 2>/dev/null || break
        sleep 0.1
    done
    if [[ ! -s "$PIDFILE" ]]; then
        tail -20 "$RUN_DIR/kamailio.log" >&2
        die "kamailio did not start (log $RUN_DIR/kamailio.log)"
    fi
    pid="$(cat "$PIDFILE")"
    if ! wait_options "$WAIT" "$pid" >&2; then
        tail -20 "$RUN_DIR/kamailio.log" >&2
        stop >/dev/null 2>&1 || true
        die "kamailio did not answer OPTIONS on udp 127.0.0.1:$PORT (log $RUN_DIR/kamailio.log)"
    fi
    echo "kamailio pid $pid, udp+tcp 127.0.0.1:$PORT, -n $CHILDREN -N $TCP_CHILDREN${CPUS:+, cpus $CPUS}, ready after $(( ($(date +%s%N) - t0) / 1000000 )) ms, log $RUN_DIR/kamailio.log" >&2
    echo "$pid"
}

stop() {
    [[ -s "$PIDFILE" ]] || { echo "kamailio.sh: not running (no $PIDFILE)" >&2; return 0; }
    local pid
    pid="$(cat "$PIDFILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || die "bad pid file $PIDFILE"
    # the group is the session setsid made: Kamailio's main process leads it
    if kill -0 -- "-$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 -- "-$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 -- "-$pid" 2>/dev/null; then
            echo "kamailio.sh: process group $pid still there after 10 s: SIGKILL" >&2
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$PIDFILE"
    echo "kamailio.sh: stopped process group $pid" >&2
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop   (environment: see the header)" >&2; exit 2 ;;
esac
