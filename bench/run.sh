#!/usr/bin/env bash
# Benchmark: switchboard against the wire's limit (sipreflect, a canned-302 reflector)
# and Kamailio 5.6 doing the same job (bench/kamailio/redirect.cfg), same machine,
# same data, same calls, alternating (issue #4), and switchboard's SIP over TLS beside its
# TCP (issue #14). Everything it uses is in this repository, except public packages.
#
#   bench/run.sh                 # ROUNDS=3 by default, about 8 minutes
#   ROUNDS=1 bench/run.sh        # one round, about 3 minutes
#   bench/run.sh --table target/bench-results/<time>   # print a finished run's table again
#
# Needs: cargo (a Rust toolchain), python3, taskset (util-linux), openssl and Kamailio 5.6
# (Debian/Ubuntu: apt-get install -y kamailio openssl). Installs nothing. Only 127.0.0.1 is
# targeted. Writes only under target/ (and Kamailio's run dir under ${TMPDIR:-/tmp}):
#   target/release/{switchboard,sipload,sipreflect}   cargo build --release -p switchboard
#                                  -p sipload (bench/sipload: the load generator, its
#                                  `verify`, and the reflector)
#   target/bench-data/             bench/gen_data.py's data set (defaults: 10,000 users,
#                                  20,000 numbers, 100,000 contacts, 50,000 calls):
#                                  routing.yaml for switchboard, kamailio/ for Kamailio,
#                                  calls.csv; generated once (again when gen_data.py changes)
#   target/bench-data/tls/         a self-signed P-256 certificate for localhost and its key
#                                  (openssl req), made anew each run; sipload verifies
#                                  switchboard's TLS listener against it (--tls-ca)
#   target/bench-results/<time>/   raw sipload JSON lines, merged records (results.jsonl),
#                                  server logs, verification, the table (table.md)
#
# Before the load runs, `sipload verify` checks that switchboard (UDP, TCP and TLS) and, in
# round 1, Kamailio (UDP and TCP) answer a sample of calls.csv as its third column says.
# Per round, in an order rotated every round:
#   switchboard --workers 1 on core 0: UDP closed loop (-w 100), UDP open loop at
#                           OPEN_RATE (50,000/s), TCP closed loop (-t tcp -s 4 -w 100) and
#                           TLS closed loop (-t tls -s 4 -w 100) one after the other (TCP
#                           first in odd rounds, TLS first in even ones), then TLS
#                           handshakes (`sipload handshakes`: one new connection at a time,
#                           full handshake without resumption, one INVITE, close)
#   reflector on core 0:    UDP closed loop and open loop, TCP closed loop
#   Kamailio -n 1 -N 1, every process on core 0: UDP closed loop, TCP closed loop
#   switchboard --workers 2 on cores 0-1, sipload on cores 0-1 with 16 sockets:
#                           UDP closed loop, CPU per thread (sip-udp-0, sip-udp-1)
# sipload runs on core 1 (except in the two-worker run), DURATION (10) seconds per run,
# with calls.csv's rows. Server CPU is utime+stime (schedstat, ns) of the server's whole
# process tree, before and after, divided by the answered requests (by the handshakes, each
# with its one INVITE, in the handshake run). Server UDP receive
# drops are the kernel's per-socket counters (/proc/net/udp) of the server's port.
#
# Environment: ROUNDS (3), DURATION (10), WINDOW (100), OPEN_RATE (50000),
# VERIFY_SAMPLE (2000 rows of calls.csv checked per server and transport before the load
# runs; 0 = all 50,000), WAIT_QUIET (0; up to this many seconds before each run, wait
# until the machine uses < 0.15 cores: for busy machines, at the cost of run time).
# Each run prints the load average and the CPU everything else used during it ("others'
# CPU" in the table): on a busy machine the figures are not comparable.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TABLE_ONLY=""
if [[ "${1:-}" == "--table" ]]; then TABLE_ONLY="${2:?usage: bench/run.sh --table RESULTS_DIR}"; fi
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
WINDOW="${WINDOW:-100}"
OPEN_RATE="${OPEN_RATE:-50000}"
VERIFY_SAMPLE="${VERIFY_SAMPLE:-2000}"
WAIT_QUIET="${WAIT_QUIET:-0}"
SWITCHBOARD="$ROOT/target/release/switchboard"
SIPLOAD="$ROOT/target/release/sipload"
REFLECTOR="$ROOT/target/release/sipreflect"
KAMAILIO_SH="$ROOT/bench/kamailio/kamailio.sh"
DATA="$ROOT/target/bench-data"
ROUTING="$DATA/routing.yaml"
CALLS="$DATA/calls.csv"
TLS_DIR="$DATA/tls"
TLS_CERT="$TLS_DIR/cert.pem"
TLS_KEY="$TLS_DIR/key.pem"
OUT="$ROOT/target/bench-results/$(date +%Y%m%d-%H%M%S)"
RESULTS="$OUT/results.jsonl"

die() { echo "bench/run.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# --- prerequisites (nothing is installed here) ---------------------------------
command -v python3 >/dev/null || die "python3 is missing: apt-get install -y python3"
if [[ -z "$TABLE_ONLY" ]]; then
command -v cargo >/dev/null || die "cargo is missing (a Rust toolchain is needed)"
command -v taskset >/dev/null || die "taskset is missing: apt-get install -y util-linux"
command -v openssl >/dev/null || die "openssl is missing: apt-get install -y openssl"
KAMAILIO="$(command -v kamailio || true)"
[[ -z "$KAMAILIO" && -x /usr/sbin/kamailio ]] && KAMAILIO=/usr/sbin/kamailio
[[ -n "$KAMAILIO" ]] || die "kamailio is missing: apt-get install -y kamailio"
[[ "$(nproc)" -ge 2 ]] || die "needs at least 2 cores (server on core 0, sipload on core 1)"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ "$VERIFY_SAMPLE" =~ ^[0-9]+$ ]] || die "VERIFY_SAMPLE must be a number (0 = all rows)"
fi

# --- helpers in python (stdlib): CPU snapshots, free ports, records, the table --
read -r -d '' PYTOOL <<'PYEOF' || true
import json, os, statistics, socket, sys, time

def proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    rest = s[s.rindex(")") + 2:].split()
    return int(rest[1]), int(rest[11]) + int(rest[12])      # ppid, utime+stime

def tree(roots):
    info = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                info[int(d)] = proc_stat(int(d))[0]
            except (OSError, ValueError, IndexError):
                pass
    kids = {}
    for pid, ppid in info.items():
        kids.setdefault(ppid, []).append(pid)
    seen, todo = [], [r for r in roots if r in info]
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.append(p)
            todo.extend(kids.get(p, []))
    return seen

def udp_drops(port):
    """Receive drops the kernel counted on the UDP sockets bound to port (all of them:
    SO_REUSEPORT workers share one port), or None when no socket has that port."""
    if not port:
        return None
    total, found = 0, False
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port:
                        total += int(fields[-1])
                        found = True
        except (OSError, ValueError, IndexError, StopIteration):
            pass
    return total if found else None

def snap(pids, port):
    """CPU of the process trees: ticks (utime+stime, exited threads included) and
    schedstat ns summed over live threads, per thread name too; the port's UDP drops."""
    ticks, sched, threads = 0, 0, {}
    procs = tree(pids)
    for p in procs:
        try:
            ticks += proc_stat(p)[1]
            for t in os.listdir("/proc/%d/task" % p):
                base = "/proc/%d/task/%s/" % (p, t)
                with open(base + "comm") as f:
                    comm = f.read().strip()
                with open(base + "schedstat") as f:
                    ns = int(f.read().split()[0])
                with open(base + "stat") as f:
                    s = f.read()
                r = s[s.rindex(")") + 2:].split()
                tt = int(r[11]) + int(r[12])
                sched += ns
                e = threads.setdefault(comm, [0, 0, 0])
                e[0] += ns; e[1] += tt; e[2] += 1
        except (OSError, ValueError, IndexError):
            pass
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    # user+nice+system+irq+softirq: processes' utime+stime include the softirq work done
    # in their context (loopback delivery), so all five are compared with them; steal apart
    busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6]
    irq = cpu[5] + cpu[6]
    steal = cpu[7] if len(cpu) > 7 else 0
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    return {"t": time.time(), "procs": len(procs), "ticks": ticks, "sched_ns": sched,
            "threads": threads, "machine_busy_ticks": busy, "machine_irq_ticks": irq,
            "machine_steal_ticks": steal, "loadavg": load, "udp_drops": udp_drops(port)}

def machine_busy():
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    return cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + (cpu[7] if len(cpu) > 7 else 0)

def quiet(max_wait):
    """Wait (at most max_wait s) until the machine uses < 0.15 cores over 1 s."""
    clk = os.sysconf("SC_CLK_TCK")
    t0 = time.time()
    while True:
        a = machine_busy(); time.sleep(1.0); b = machine_busy()
        used = (b - a) / clk
        if used < 0.15 or time.time() - t0 >= max_wait:
            print("%.0f s waited, machine at %.2f cores" % (time.time() - t0, used))
            return

def freeport():
    for _ in range(100):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            pass
        finally:
            u.close(); t.close()
    sys.exit("no free port")

def read_rows(path):
    """Expected status of each row of calls.csv, in file order (what sipload sends)."""
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or line in ("SEQUENTIAL", "RANDOM", "USER"):
                continue
            rows.append(line.split(";")[2].split(":")[0])
    return rows

def expected_mix(rows, sent):
    """Expected status counts of the first `sent` requests, rows taken in order,
    wrapping around."""
    full, part = divmod(sent, len(rows))
    out = {}
    for i, e in enumerate(rows):
        out[e] = out.get(e, 0) + full + (1 if i < part else 0)
    return out

def gen_cores(sl):
    el = sl.get("elapsed_s") or 0
    return ((sl.get("cpu_user_s") or 0) + (sl.get("cpu_sys_s") or 0)) / el if el else 0.0

def record(args):
    meta = json.loads(args[0])
    before, after = json.load(open(args[1])), json.load(open(args[2]))
    sl = json.loads(open(args[3]).read().strip().splitlines()[-1])
    clk = os.sysconf("SC_CLK_TCK")
    wall = after["t"] - before["t"]
    cpu_s = (after["sched_ns"] - before["sched_ns"]) / 1e9
    cpu_ticks_s = (after["ticks"] - before["ticks"]) / clk
    # schedstat counts live threads only: when threads ended during the run (a
    # thread per connection...), the process-wide ticks, which keep them, are used
    cpu_source = "schedstat"
    if cpu_ticks_s - cpu_s > max(0.05, 0.05 * cpu_s):
        cpu_s, cpu_source = cpu_ticks_s, "ticks"
    ans = sl.get("answered") or 0
    threads = {}
    for name, (ns, tt, n) in after["threads"].items():
        b = before["threads"].get(name, [0, 0, 0])
        threads[name] = {"cpu_s": round((ns - b[0]) / 1e9, 3), "ticks_s": round((tt - b[1]) / clk, 2), "count": n}
    machine_s = (after["machine_busy_ticks"] - before["machine_busy_ticks"]) / clk
    irq_s = (after["machine_irq_ticks"] - before["machine_irq_ticks"]) / clk
    steal_s = (after.get("machine_steal_ticks", 0) - before.get("machine_steal_ticks", 0)) / clk
    sipload_s = (sl.get("cpu_user_s") or 0) + (sl.get("cpu_sys_s") or 0)
    drops = None
    if before.get("udp_drops") is not None and after.get("udp_drops") is not None:
        drops = after["udp_drops"] - before["udp_drops"]
    rec = dict(meta)
    rec.update({
        "wall_s": round(wall, 3),
        "server_cpu_s": round(cpu_s, 4),
        "server_cpu_ticks_s": round(cpu_ticks_s, 2),
        "server_cpu_source": cpu_source,
        "server_procs": after["procs"],
        "server_cpu_us_per_req": round(cpu_s * 1e6 / ans, 3) if ans else None,
        "server_threads": threads,
        "server_udp_rx_drops": drops,
        "sipload_cpu_s": round(sipload_s, 3),
        "sipload_cores": round(gen_cores(sl), 3),
        # CPU of everything else on the machine during the run (other engineers' builds...),
        # in cores (machine user+nice+system+irq+softirq minus the server and sipload)
        "other_cpu_cores": round(max(0.0, machine_s - cpu_s - sipload_s) / wall, 3) if wall > 0 else None,
        "irq_softirq_cores": round(irq_s / wall, 3) if wall > 0 else None,
        "steal_cores": round(steal_s / wall, 3) if wall > 0 else None,
        "loadavg_before": before["loadavg"], "loadavg_after": after["loadavg"],
        "sipload": sl,
    })
    if meta.get("mix"):
        rec["expected_codes"] = expected_mix(read_rows(meta["mix"]), sl.get("sent") or 0)
    print(json.dumps(rec, sort_keys=True))
    lat = sl.get("latency_us") or {}
    sys.stderr.write(
        "    -> %s %s %s: %s req/s answered, server %s us/req CPU (%.2f cores), p50 %s us, p99 %s us, "
        "p99.9 %s us, timeouts %s, errors %s, unparsable %s, stray %s, codes %s, server UDP rx drops %s, sipload %.2f cores, "
        "load %s -> %s, other CPU %.2f cores, steal %.0f ms\n"
        % (meta["server"], meta["transport"], meta["mode"], sl.get("rate_answered"),
           rec["server_cpu_us_per_req"], cpu_s / wall if wall else 0, lat.get("p50"), lat.get("p99"),
           lat.get("p999"), sl.get("timeouts"), sl.get("errors"), sl.get("unparsable"), sl.get("stray"),
           sl.get("codes"), drops,
           rec["sipload_cores"], before["loadavg"][0], after["loadavg"][0],
           rec["other_cpu_cores"] or 0, 1000 * steal_s))
    if meta.get("per_thread"):
        for name, t in sorted(threads.items()):
            if t["cpu_s"] > 0.01 or name.startswith("sip-udp"):
                sys.stderr.write("       thread %-16s x%d  %.3f s CPU (%.0f%% of the run)\n"
                                 % (name, t["count"], t["cpu_s"], 100 * t["cpu_s"] / wall))

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def fmt(x, nd=0):
    if x is None:
        return "—"
    if nd == 0:
        return "{:,.0f}".format(x)
    return "{:,.{}f}".format(x, nd)

def mix_check(g):
    """Answers by status over a group's runs against what calls.csv expects for the
    requests sent. A request still unanswered at the end (timeouts, errors, and at
    most one window per socket in flight when the run stopped) may be any row."""
    codes, exp, slack = {}, {}, 0
    for r in g:
        sl = r["sipload"]
        for c, n in (sl.get("codes") or {}).items():
            codes[c] = codes.get(c, 0) + n
        for c, n in (r.get("expected_codes") or {}).items():
            exp[c] = exp.get(c, 0) + n
        unanswered = max(0, (sl.get("sent") or 0) - (sl.get("answered") or 0))
        slack += unanswered + (sl.get("errors") or 0)
    total = sum(codes.values()) or 1
    mix = " ".join("%s:%.1f%%" % (c, 100.0 * n / total) for c, n in sorted(codes.items()))
    if not exp:
        return "n/a (no routing) " + mix
    ok = set(codes) <= set(exp) and all(abs(codes.get(c, 0) - n) <= slack for c, n in exp.items())
    out = ("ok " if ok else "DIFFERS ") + mix
    if not ok:
        out += " (expected " + " ".join("%s:%d" % (c, n) for c, n in sorted(exp.items())) + \
               ", got " + " ".join("%s:%d" % (c, n) for c, n in sorted(codes.items())) + \
               ", unanswered %d)" % slack
    return out

def table(args):
    recs = [json.loads(l) for l in open(args[0]) if l.strip()]
    keys = []
    for r in recs:
        if r["key"] not in keys:
            keys.append(r["key"])
    groups = {k: [r for r in recs if r["key"] == k] for k in keys}
    def mrate(k):
        g = groups.get(k)
        return med([r["sipload"].get("rate_answered") for r in g]) if g else None
    refl = {"udp": mrate("reflector/udp/closed"), "tcp": mrate("reflector/tcp/closed")}
    kam = {"udp": mrate("kamailio/udp/closed"), "tcp": mrate("kamailio/tcp/closed")}
    lines = []
    lines.append("| server | transport | mode | rate req/s (median) | server CPU µs/req | req/s per server core (10⁶ ÷ CPU µs) | p50 µs | p99 µs | p99.9 µs | timeouts (all rounds) | answers vs calls.csv mix | rate ÷ reflector | rate ÷ Kamailio | sipload cores | others' CPU (cores) | rounds |")
    lines.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    summary = {}
    for k in keys:
        g = groups[k]
        r0 = g[0]
        sls = [r["sipload"] for r in g]
        rate = med([s.get("rate_answered") for s in sls])
        cpu = med([r.get("server_cpu_us_per_req") for r in g])
        p50 = med([(s.get("latency_us") or {}).get("p50") for s in sls])
        p99 = med([(s.get("latency_us") or {}).get("p99") for s in sls])
        p999 = med([(s.get("latency_us") or {}).get("p999") for s in sls])
        tmo = sum(s.get("timeouts") or 0 for s in sls)
        errs = sum(s.get("errors") or 0 for s in sls)
        drops = sum(r.get("server_udp_rx_drops") or 0 for r in g)
        closed = r0["mode"] == "closed"
        r_ref = refl.get(r0["transport"])
        div_r = rate / r_ref if closed and rate and r_ref else None
        k_ref = kam.get(r0["transport"])
        div_k = rate / k_ref if closed and rate and k_ref else None
        tmo_s = fmt(tmo)
        if errs:
            tmo_s += " (errors %s)" % fmt(errs)
        if drops:
            tmo_s += " (server UDP rx drops %s)" % fmt(drops)
        other = med([r.get("other_cpu_cores") for r in g])
        gen = med([r.get("sipload_cores") for r in g])
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |" % (
            r0["server_label"], r0["transport"].upper(), r0["mode_label"], fmt(rate), fmt(cpu, 2),
            fmt(1e6 / cpu) if cpu else "—", fmt(p50), fmt(p99), fmt(p999), tmo_s, mix_check(g),
            fmt(div_r, 2) if div_r else "—", fmt(div_k, 2) if div_k else "—", fmt(gen, 2),
            fmt(other, 2), len(g)))
        summary[k] = {"rate": rate, "cpu": cpu, "p99": p99, "p999": p999, "timeouts": tmo}
    print("\n".join(lines))
    print()
    s = summary
    def get(k, f):
        return (s.get(k) or {}).get(f)
    sb_u, sb_t = get("switchboard/udp/closed", "rate"), get("switchboard/tcp/closed", "rate")
    refl_udp = refl["udp"]
    # sipload alone on core 1: near a whole core, the generator is the limit
    busy = [r for r in recs if r["mode"] == "closed" and r.get("sipload_cpus") == "1"
            and (r.get("sipload_cores") or 0) > 0.9]
    if busy:
        print("Note: sipload used more than 90%% of its core in %d closed-loop run(s) (%s): there the"
              " generator, not the server, limited the rate; compare CPU per request (req/s per"
              " server core) as well." % (len(busy), ", ".join(sorted(set(r["key"] for r in busy)))))
    kc, sc = get("kamailio/udp/closed", "cpu"), get("switchboard/udp/closed", "cpu")
    if kc and sc:
        print("CPU per request, UDP closed loop: Kamailio / switchboard = %.1f" % (kc / sc))
    kc, sc = get("kamailio/tcp/closed", "cpu"), get("switchboard/tcp/closed", "cpu")
    if kc and sc:
        print("CPU per request, TCP closed loop: Kamailio / switchboard = %.1f" % (kc / sc))
    print()
    print("Goals (issue #4):")
    if sb_u and refl_udp:
        print("- UDP closed loop >= 60%% of the reflector: %.0f%% -> %s"
              % (100 * sb_u / refl_udp, "MET" if sb_u >= 0.6 * refl_udp else "NOT MET"))
        rc, sc = get("reflector/udp/closed", "cpu"), get("switchboard/udp/closed", "cpu")
        if rc and sc:
            print("  (by CPU per request, i.e. capacity per core: %.0f%% of the reflector)" % (100 * rc / sc))
    op99, otmo = get("switchboard/udp/open", "p99"), get("switchboard/udp/open", "timeouts")
    if op99 is not None:
        print("- open loop at the fixed rate: p99 %s us (< 1000), timeouts %d (0) -> %s"
              % (fmt(op99), otmo, "MET" if op99 < 1000 and otmo == 0 else "NOT MET"))
        # The tail is where a busy host shows: each round's p99 and timeouts
        # beside the CPU time the hypervisor took from this VM meanwhile.
        for kind in ("switchboard", "reflector"):
            per_round = ["r%s p99 %s us, %s timeouts, steal %s ms" % (
                r["round"], fmt((r["sipload"].get("latency_us") or {}).get("p99")),
                fmt(r["sipload"].get("timeouts")), fmt(1000 * (r.get("steal_cores") or 0) * r["wall_s"]))
                for r in groups.get(kind + "/udp/open", [])]
            if per_round:
                print("  %s per round: %s" % (kind, "; ".join(per_round)))
    if sb_u and sb_t:
        print("- TCP >= half of UDP: %.0f%% -> %s" % (100 * sb_t / sb_u, "MET" if sb_t >= 0.5 * sb_u else "NOT MET"))
    two = groups.get("switchboard2/udp/closed")
    if two:
        shares = []
        for r in two:
            th = r.get("server_threads", {})
            w = [th.get("sip-udp-%d" % i, {}).get("cpu_s", 0) for i in (0, 1)]
            shares.append((w, r["wall_s"]))
        parts = ["round %d: sip-udp-0 %.2f s, sip-udp-1 %.2f s CPU of %.1f s" % (i + 1, w[0], w[1], wall)
                 for i, (w, wall) in enumerate(shares)]
        both = all(min(w) > 0.1 * max(sum(w), 1e-9) for w, _ in shares)
        print("- two workers both loaded (each >= 10%% of the workers' CPU): %s -> %s"
              % ("; ".join(parts), "MET" if both else "NOT MET"))
    tls_report(groups, get)

def tls_report(groups, get):
    """SIP over TLS beside TCP (issue #14): the same server, connections and window, run
    one after the other in each round, so each round's ratio compares like with like."""
    tls_r, tcp_r = get("switchboard/tls/closed", "rate"), get("switchboard/tcp/closed", "rate")
    if not (tls_r and tcp_r):
        return
    print()
    print("SIP over TLS (issue #14), switchboard (1 worker), closed loop -s 4 -w 100, persistent connections:")
    tls_c, tcp_c = get("switchboard/tls/closed", "cpu"), get("switchboard/tcp/closed", "cpu")
    print("- TLS %s req/s (%s us CPU/req), TCP %s req/s (%s us CPU/req)"
          % (fmt(tls_r), fmt(tls_c, 2), fmt(tcp_r), fmt(tcp_c, 2)))
    # each round's TLS run against the TCP run next to it: the pairs share the machine's load
    tcp_by_round = {r["round"]: r for r in groups.get("switchboard/tcp/closed", [])}
    ratios, cpu_ratios, parts = [], [], []
    for r in groups.get("switchboard/tls/closed", []):
        t = tcp_by_round.get(r["round"])
        a, b = r["sipload"].get("rate_answered"), t and t["sipload"].get("rate_answered")
        ca, cb = r.get("server_cpu_us_per_req"), t and t.get("server_cpu_us_per_req")
        if a and b:
            ratios.append(a / b)
            cpu = ""
            if ca and cb:
                cpu_ratios.append(ca / cb)
                cpu = ", CPU/req %.2f" % (ca / cb)
            parts.append("r%s rate %.2f%s (others' CPU %.2f / %.2f cores)" % (
                r["round"], a / b, cpu, r.get("other_cpu_cores") or 0, t.get("other_cpu_cores") or 0))
    if not ratios:
        return
    ratio = med(ratios)
    print("- TLS / TCP per round: %s" % "; ".join(parts))
    print("- TLS / TCP rate, median of the rounds: %.2f" % ratio)
    print("- goal: TLS >= half of the TCP rate: %.0f%% -> %s" % (100 * ratio, "MET" if ratio >= 0.5 else "NOT MET"))
    if cpu_ratios:
        print("- server CPU per request, TLS / TCP, median of the rounds: %.2f" % med(cpu_ratios))
    hs = groups.get("switchboard/tls/handshakes")
    if hs:
        rate = med([r["sipload"].get("rate_handshakes") for r in hs])
        cpu = med([r.get("server_cpu_us_per_req") for r in hs])
        p50 = med([(r["sipload"].get("handshake_us") or {}).get("p50") for r in hs])
        p99 = med([(r["sipload"].get("handshake_us") or {}).get("p99") for r in hs])
        fails = sum(r["sipload"].get("handshake_failures") or 0 for r in hs)
        gen = med([r.get("sipload_cores") for r in hs])
        print("- handshakes (sipload handshakes: one connection at a time, full handshake, no resumption,"
              " one INVITE, close): %s/s, server CPU %s us per connection (%s connections/s per server core),"
              " connect+handshake as sipload saw it p50 %s us, p99 %s us, failures %d, sipload %.2f cores"
              % (fmt(rate), fmt(cpu), fmt(1e6 / cpu) if cpu else "—", fmt(p50), fmt(p99), fails, gen or 0))

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "snap":
    print(json.dumps(snap([int(args[0])], int(args[1]))))
elif cmd == "quiet":
    quiet(float(args[0]))
elif cmd == "freeport":
    print(freeport())
elif cmd == "record":
    record(args)
elif cmd == "table":
    table(args)
else:
    sys.exit("unknown command " + cmd)
PYEOF
py() { python3 -c "$PYTOOL" "$@"; }

print_table() {   # $1 results dir
    local dir="$1"
    echo "## switchboard vs reflector vs Kamailio ($(date -u -r "$dir/results.jsonl" +%Y-%m-%dT%H:%MZ), $(grep -o 'rounds=[0-9]*' "$dir/machine.txt"))"
    echo
    sed 's/^/    /' "$dir/machine.txt"
    echo
    echo "Server on core 0, sipload on core 1, loopback, calls.csv rows of bench/gen_data.py" \
         "($(sed -n 's/^users: \([0-9]*\).*/\1/p' "$dir/data-summary.txt" 2>/dev/null || echo '?') users," \
         "$(sed -n 's/^numbers: \([0-9]*\).*/\1/p' "$dir/data-summary.txt" 2>/dev/null || echo '?') numbers," \
         "$(sed -n 's/^contacts: \([0-9]*\).*/\1/p' "$dir/data-summary.txt" 2>/dev/null || echo '?') contacts)." \
         "Rates, CPU and latencies are medians over the rounds; CPU is the server's whole" \
         "process tree per answered request; \"rate ÷ reflector\" divides by the reflector's" \
         "closed-loop rate over the same transport; \"sipload cores\" is the generator's CPU."
    echo
    py table "$dir/results.jsonl"
    echo
    if [[ -f "$dir/data-summary.txt" ]]; then
        echo "Data and call mix:"
        sed 's/^/    /' "$dir/data-summary.txt"
        echo
    fi
    if [[ -f "$dir/verify.txt" ]]; then
        echo "Answers checked against calls.csv before the load runs (sipload verify):"
        sed 's/^/    /' "$dir/verify.txt"
        echo
    fi
    echo "Load average per round:"
    sed 's/^/    /' "$dir/loadavg.txt"
    echo
    echo "Raw records: $dir/results.jsonl"
}
if [[ -n "$TABLE_ONLY" ]]; then
    print_table "$(cd "$TABLE_ONLY" && pwd)"
    exit 0
fi

# --- cleanup: every process started here is stopped on exit ---------------------
PIDS=()            # switchboard / reflector / sipload PIDs (direct children)
KAM_RUN_DIR=""     # set while a Kamailio runs
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do
        if [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null || true
        fi
    done
    if [[ -n "$KAM_RUN_DIR" ]]; then
        RUN_DIR="$KAM_RUN_DIR" "$KAMAILIO_SH" stop >/dev/null 2>&1 || true
        rm -rf "$KAM_RUN_DIR"
    fi
    sleep 0.3
    for p in "${PIDS[@]}"; do
        if [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
    done
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]+"${keep[@]}"}")
}
stop_pid() {    # stop one of our processes and wait for it
    local p="$1"
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    forget_pid "$p"
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# --- build ----------------------------------------------------------------------
mkdir -p "$OUT"
log "building switchboard and sipload (release)"
cargo build --release --quiet -p switchboard -p sipload || die "cargo build --release -p switchboard -p sipload failed"
for b in "$SWITCHBOARD" "$SIPLOAD" "$REFLECTOR"; do [[ -x "$b" ]] || die "$b was not built"; done

# --- data: generated once (again when the generator changed) ---------------------
if [[ ! -f "$DATA/summary.txt" || ! -f "$CALLS" || ! -f "$ROUTING" || ! -f "$DATA/kamailio/contact_user" \
      || "$DATA/summary.txt" -ot "$ROOT/bench/gen_data.py" ]]; then
    log "generating the data set into $DATA (bench/gen_data.py)"
    rm -rf "$DATA/kamailio"
    python3 "$ROOT/bench/gen_data.py" --out "$DATA" >&2 || die "bench/gen_data.py failed"
fi
cp "$DATA/summary.txt" "$OUT/data-summary.txt"
"$SWITCHBOARD" check "$ROUTING" >"$OUT/check.txt" 2>&1 || { tail -20 "$OUT/check.txt" >&2; die "switchboard check failed"; }
if grep -q ': error:' "$OUT/check.txt"; then die "switchboard check reported errors ($OUT/check.txt)"; fi
log "$(tail -1 "$OUT/check.txt")"

# --- TLS certificate: made anew each run (-days 2: never stale, never long-lived) -------
# CA:FALSE because webpki (rustls, in sipload) refuses a CA certificate as the server's
# own, and `openssl req -x509` marks one as a CA unless told.
mkdir -p "$TLS_DIR"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -addext basicConstraints=critical,CA:FALSE -days 2 \
    -keyout "$TLS_KEY" -out "$TLS_CERT" >"$OUT/openssl.log" 2>&1 \
    || { cat "$OUT/openssl.log" >&2; die "openssl req failed"; }
TLS_ARGS=(--tls-ca "$TLS_CERT" --tls-server-name localhost)

# --- servers ----------------------------------------------------------------------
SERVER_PID=""
UDP_PORT=""
TCP_PORT=""
TLS_PORT=""
start_switchboard() {   # $1 workers, $2 cpu list, $3 name
    local workers="$1" cpus="$2" name="$3"
    taskset -c "$cpus" "$SWITCHBOARD" serve --routing "$ROUTING" --listen 127.0.0.1:0 \
        --tls-listen 127.0.0.1:0 --tls-cert "$TLS_CERT" --tls-key "$TLS_KEY" \
        --workers "$workers" >"$OUT/$name.out" 2>"$OUT/$name.log" </dev/null &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    UDP_PORT="" TCP_PORT="" TLS_PORT=""
    for _ in $(seq 1 300); do
        if grep -q '^listening on tcp' "$OUT/$name.out" 2>/dev/null \
            && grep -q '^listening on udp' "$OUT/$name.out" 2>/dev/null \
            && grep -q '^listening on tls' "$OUT/$name.out" 2>/dev/null; then
            UDP_PORT="$(sed -n 's/^listening on udp 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$OUT/$name.out" | head -1)"
            TCP_PORT="$(sed -n 's/^listening on tcp 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$OUT/$name.out" | head -1)"
            TLS_PORT="$(sed -n 's/^listening on tls 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$OUT/$name.out" | head -1)"
            break
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n "$UDP_PORT" && -n "$TCP_PORT" && -n "$TLS_PORT" ]] || { tail -20 "$OUT/$name.log" >&2; die "switchboard did not start"; }
}
start_reflector() {     # $1 udp|tcp: one reflector per transport
    local transport="$1" name="reflector-$1-r$ROUND" port=""
    UDP_PORT="" TCP_PORT="" TLS_PORT=""
    taskset -c 0 "$REFLECTOR" 127.0.0.1:0 -t "$transport" --duration $((DURATION * 3 + 30)) \
        >"$OUT/$name.out" 2>"$OUT/$name.log" </dev/null &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    for _ in $(seq 1 100); do
        port="$(sed -n "s/^listening on $transport 127\.0\.0\.1:\([0-9]*\)\$/\1/p" "$OUT/$name.out" 2>/dev/null | head -1)"
        [[ -n "$port" ]] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n "$port" ]] || { cat "$OUT/$name.out" "$OUT/$name.log" >&2; die "sipreflect did not start"; }
    if [[ "$transport" == udp ]]; then UDP_PORT="$port"; else TCP_PORT="$port"; fi
}
start_kamailio() {
    local port
    port="$(py freeport)"
    KAM_RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/bench-kamailio.XXXXXX")"
    # every process Kamailio forks stays on core 0 (CPUS), one UDP and one TCP worker
    SERVER_PID="$(PORT="$port" CHILDREN=1 TCP_CHILDREN=1 CPUS=0 RUN_DIR="$KAM_RUN_DIR" \
        DATA_DIR="$DATA/kamailio" KAMAILIO="$KAMAILIO" "$KAMAILIO_SH" start \
        2>>"$OUT/kamailio-start.log")" || { tail -20 "$OUT/kamailio-start.log" >&2; die "Kamailio did not start"; }
    tail -1 "$OUT/kamailio-start.log" >&2
    UDP_PORT="$port" TCP_PORT="$port" TLS_PORT=""
}
stop_kamailio() {
    RUN_DIR="$KAM_RUN_DIR" "$KAMAILIO_SH" stop 2>>"$OUT/kamailio-start.log" || true
    cp "$KAM_RUN_DIR/kamailio.log" "$OUT/kamailio-r$ROUND.log" 2>/dev/null || true
    rm -rf "$KAM_RUN_DIR"
    KAM_RUN_DIR=""
}

# port_of TRANSPORT: the running server's port for udp, tcp or tls
port_of() {
    case "$1" in udp) echo "$UDP_PORT" ;; tcp) echo "$TCP_PORT" ;; tls) echo "$TLS_PORT" ;; esac
}
# sipload's options for TRANSPORT: the certificate to verify the server with, for tls
transport_args() {
    if [[ "$1" == tls ]]; then printf '%s\n' "${TLS_ARGS[@]}"; fi
}

# verify LABEL: sipload verify over UDP, TCP and (when the server has it) TLS
verify() {
    local label="$1" t port rc limit=() targs
    [[ "$VERIFY_SAMPLE" != 0 ]] && limit=(--limit "$VERIFY_SAMPLE")
    for t in udp tcp tls; do
        port="$(port_of "$t")"
        [[ -n "$port" ]] || continue
        mapfile -t targs < <(transport_args "$t")
        rc=0
        timeout -k 5 600 taskset -c 1 "$SIPLOAD" verify "127.0.0.1:$port" -f "$CALLS" -t "$t" "${limit[@]}" \
            "${targs[@]+"${targs[@]}"}" >"$OUT/verify-$label-$t.txt" 2>&1 || rc=$?
        echo "$label $t: $(tail -1 "$OUT/verify-$label-$t.txt")" | tee -a "$OUT/verify.txt" >&2
        if [[ $rc -ne 0 ]]; then
            head -20 "$OUT/verify-$label-$t.txt" >&2
            die "$label does not answer calls.csv as expected over $t (exit $rc, $OUT/verify-$label-$t.txt)"
        fi
    done
}

# --- one measured sipload run ----------------------------------------------------
# measure KEY SERVER_LABEL MODE_LABEL MIX(yes|no) PER_THREAD(yes|no) SIPLOAD_CPUS -- sipload args
measure() {
    local key="$1" server_label="$2" mode_label="$3" mix="$4" per_thread="$5" cpus="$6"
    shift 7
    local server transport mode tag port targs cmd
    IFS=/ read -r server transport mode <<<"$key"
    port="$(port_of "$transport")"
    mapfile -t targs < <(transport_args "$transport")
    # the handshake measure is its own subcommand (always TLS); the rest are load runs
    if [[ "$mode" == handshakes ]]; then cmd=(handshakes); else cmd=(run -t "$transport"); fi
    tag="r$ROUND-${key//\//-}"
    sleep 1
    if [[ "$WAIT_QUIET" != 0 ]]; then log "waiting for a quiet machine: $(py quiet "$WAIT_QUIET")"; fi
    log "round $ROUND: $server_label $transport $mode_label (load $(loadavg))"
    py snap "$SERVER_PID" "${UDP_PORT:-0}" >"$OUT/$tag.before.json"
    local rc=0
    timeout -k 5 $((DURATION + 30)) taskset -c "$cpus" "$SIPLOAD" "${cmd[@]}" "127.0.0.1:$port" \
        "${targs[@]+"${targs[@]}"}" -f "$CALLS" -d "$DURATION" "$@" \
        >"$OUT/$tag.sipload.json" 2>"$OUT/$tag.sipload.err" &
    local sp=$!
    PIDS+=("$sp")
    wait "$sp" || rc=$?
    forget_pid "$sp"
    py snap "$SERVER_PID" "${UDP_PORT:-0}" >"$OUT/$tag.after.json"
    if [[ $rc -ne 0 && $rc -ne 3 ]] || [[ ! -s "$OUT/$tag.sipload.json" ]]; then
        cat "$OUT/$tag.sipload.err" >&2
        die "sipload failed (exit $rc) for $key"
    fi
    local meta
    meta="$(printf '{"round":%d,"key":"%s","server":"%s","transport":"%s","mode":"%s","server_label":"%s","mode_label":"%s","mix":%s,"per_thread":%s,"sipload_cpus":"%s","sipload_args":"%s"}' \
        "$ROUND" "$key" "$server" "$transport" "$mode" "$server_label" "$mode_label" \
        "$([[ $mix == yes ]] && echo "\"$CALLS\"" || echo null)" \
        "$([[ $per_thread == yes ]] && echo true || echo false)" "$cpus" "$*")"
    py record "$meta" "$OUT/$tag.before.json" "$OUT/$tag.after.json" "$OUT/$tag.sipload.json" >>"$RESULTS"
    grep -v '^$' "$OUT/$tag.sipload.err" | sed 's/^/       sipload: /' >&2 || true
}

group_switchboard() {
    start_switchboard 1 0 "switchboard-w1-r$ROUND"
    measure switchboard/udp/closed "switchboard (1 worker)" "closed -w $WINDOW" yes no 1 -- -w "$WINDOW"
    measure switchboard/udp/open "switchboard (1 worker)" "open -r $OPEN_RATE" yes no 1 -- -r "$OPEN_RATE"
    # TCP and TLS side by side, same connections and window; which goes first alternates
    if ((ROUND % 2)); then
        measure switchboard/tcp/closed "switchboard (1 worker)" "closed -w $WINDOW -s 4" yes no 1 -- -s 4 -w "$WINDOW"
        measure switchboard/tls/closed "switchboard (1 worker)" "closed -w $WINDOW -s 4" yes no 1 -- -s 4 -w "$WINDOW"
    else
        measure switchboard/tls/closed "switchboard (1 worker)" "closed -w $WINDOW -s 4" yes no 1 -- -s 4 -w "$WINDOW"
        measure switchboard/tcp/closed "switchboard (1 worker)" "closed -w $WINDOW -s 4" yes no 1 -- -s 4 -w "$WINDOW"
    fi
    measure switchboard/tls/handshakes "switchboard (1 worker)" "handshakes (full, 1 INVITE each)" yes no 1 --
    stop_pid "$SERVER_PID"
}
group_reflector() {
    start_reflector udp
    measure reflector/udp/closed "reflector (wire limit)" "closed -w $WINDOW" no no 1 -- -w "$WINDOW"
    # The rig's own tail at the open-loop rate: what "p99 under 1 ms" can mean here.
    measure reflector/udp/open "reflector (wire limit)" "open -r $OPEN_RATE" no no 1 -- -r "$OPEN_RATE"
    stop_pid "$SERVER_PID"
    start_reflector tcp
    measure reflector/tcp/closed "reflector (wire limit)" "closed -w $WINDOW -s 4" no no 1 -- -s 4 -w "$WINDOW"
    stop_pid "$SERVER_PID"
}
group_kamailio() {
    start_kamailio
    if [[ "$ROUND" == 1 ]]; then verify Kamailio; fi
    measure kamailio/udp/closed "Kamailio 5.6 (-n 1)" "closed -w $WINDOW" yes no 1 -- -w "$WINDOW"
    measure kamailio/tcp/closed "Kamailio 5.6 (-n 1)" "closed -w $WINDOW -s 4" yes no 1 -- -s 4 -w "$WINDOW"
    stop_kamailio
}
group_switchboard2() {
    start_switchboard 2 0,1 "switchboard-w2-r$ROUND"
    measure switchboard2/udp/closed "switchboard (2 workers, cores 0-1, with sipload)" \
        "closed -w $WINDOW -s 16" yes yes 0,1 -- -w "$WINDOW" -s 16
    stop_pid "$SERVER_PID"
}

# --- switchboard answers calls.csv as it says ----------------------------------------
ROUND=0
log "verifying switchboard against calls.csv ($([[ $VERIFY_SAMPLE == 0 ]] && echo 'all rows' || echo "first $VERIFY_SAMPLE rows"), UDP, TCP and TLS)"
start_switchboard 1 0 switchboard-verify
verify switchboard
stop_pid "$SERVER_PID"

# --- rounds, alternating (the order rotates each round) --------------------------
GROUPS_ORDER=(group_switchboard group_reflector group_kamailio group_switchboard2)
{
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
    echo "switchboard $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'), $("$KAMAILIO" -v 2>/dev/null | head -1 | sed "s/ *$//"), load generator bench/sipload"
    echo "rounds=$ROUNDS duration=${DURATION}s window=$WINDOW open_rate=$OPEN_RATE wait_quiet=${WAIT_QUIET}s verify_sample=$VERIFY_SAMPLE"
} | tee "$OUT/machine.txt" >&2
T0=$(date +%s)
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
    echo "round $ROUND: load average before $(loadavg)" | tee -a "$OUT/loadavg.txt" >&2
    n=${#GROUPS_ORDER[@]}
    for ((i = 0; i < n; i++)); do
        "${GROUPS_ORDER[$(((i + ROUND - 1) % n))]}"
    done
    echo "round $ROUND: load average after  $(loadavg)" | tee -a "$OUT/loadavg.txt" >&2
done
log "load runs took $(($(date +%s) - T0)) s"

# --- the table ----------------------------------------------------------------------
print_table "$OUT" | tee "$OUT/table.md"
