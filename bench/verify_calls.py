#!/usr/bin/env python3
"""Check that switchboard answers the anchor's calls.csv like Kamailio does.

    verify_calls.py --server target/release/switchboard --routing CONVERTED.yaml \
                    --calls calls.csv [--sample 2000] [--tcp] [--sipcheck PATH]

Starts the real server on 127.0.0.1 (port 0, one worker), replays an evenly
spread sample of calls.csv rows (`dialed;caller;expected`, expected being
"302:<number>", "480" or "404") with the anchor's own `sipcheck.py verify`,
over UDP and, with --tcp, over TCP too, then stops the server. sipcheck compares
the Contact's user part only: Kamailio answers `sip:<phone>@<R-URI host>`,
switchboard `sip:<phone>@<source host>;user=phone`.

Exit 0 when every checked row matches, 1 otherwise. python3 stdlib only.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SIPCHECK = os.path.normpath(
    os.path.join(HERE, "..", "..", "shared", "anchors", "kamailio", "sipcheck.py"))


def sample_rows(path, n):
    with open(path) as f:
        rows = [line.strip() for line in f
                if line.strip() and not line.startswith("#")
                and line.strip() not in ("SEQUENTIAL", "RANDOM", "USER")]
    if n <= 0 or n >= len(rows):
        return rows
    step = len(rows) / n
    return [rows[int(i * step)] for i in range(n)]


def start_server(binary, routing):
    log = tempfile.NamedTemporaryFile(prefix="switchboard-verify-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [binary, "serve", "--routing", routing, "--listen", "127.0.0.1:0", "--workers", "1"],
        stdout=subprocess.PIPE, stderr=log, text=True)
    ports = {}
    deadline = time.time() + 60
    while len(ports) < 2 and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.match(r"listening on (udp|tcp) 127\.0\.0\.1:(\d+)", line)
        if m:
            ports[m.group(1)] = int(m.group(2))
    if "udp" not in ports:
        proc.kill()
        proc.wait()
        with open(log.name) as f:
            sys.stderr.write(f.read()[-3000:])
        sys.exit("verify_calls: switchboard did not start (log %s)" % log.name)
    return proc, ports, log.name


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--routing", required=True)
    ap.add_argument("--calls", required=True)
    ap.add_argument("--sample", type=int, default=2000, help="rows to replay (0: all)")
    ap.add_argument("--tcp", action="store_true", help="also replay the sample over TCP")
    ap.add_argument("--sipcheck", default=DEFAULT_SIPCHECK)
    a = ap.parse_args()

    rows = sample_rows(a.calls, a.sample)
    expected = {}
    for r in rows:
        k = r.split(";")[2].split(":")[0]
        expected[k] = expected.get(k, 0) + 1
    with tempfile.NamedTemporaryFile("w", prefix="calls-sample-", suffix=".csv",
                                     delete=False) as f:
        f.write("SEQUENTIAL\n")
        f.write("\n".join(rows) + "\n")
        sample_path = f.name

    proc, ports, log = start_server(a.server, a.routing)
    failed = False
    try:
        transports = [("udp", [])] + ([("tcp", ["--tcp"])] if a.tcp else [])
        for name, flag in transports:
            cmd = [sys.executable, a.sipcheck, "--port", str(ports[name])] + flag + [
                "verify", sample_path]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            out = res.stdout.strip()
            print("verify %s (%d rows, expected by status %s):\n  %s"
                  % (name, len(rows), dict(sorted(expected.items())),
                     out.replace("\n", "\n  ")))
            if res.returncode != 0 or " 0 mismatches" not in out:
                failed = True
                sys.stderr.write(res.stderr)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.unlink(sample_path)
    if failed:
        print("verify_calls: MISMATCHES (server log: %s)" % log)
        return 1
    os.unlink(log)
    print("verify_calls: all %d rows match" % len(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
