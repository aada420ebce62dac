#!/usr/bin/env python3
"""Where a server's memory goes when every routing file is reloaded
(issue #23; docs/performance.md, "Memory after reloads").

    bench/churn.py BIN DIR ROUNDS [WRAPPER ...]

Starts `BIN serve` on the routing directory DIR (no cache, reload debounce
10 ms), then rewrites every file of DIR ROUNDS times, one reload each (a
comment line is added at the top, so each write is new content, and removed
again at the end). It prints the resident memory after the start and after
each round, and with STATS=1 glibc's own account of its heaps (malloc_stats,
called through gdb): per arena, the bytes mapped and the bytes in use.

WRAPPER runs the server under a profiler, for instance
`heaptrack -o /tmp/churn-heap`. With KILL9=1 the server is killed at the
end instead of stopped, so that heaptrack reports what was still allocated
then as leaked: run it once with ROUNDS 0 and once with ROUNDS 1, and
compare `heaptrack_print -f /tmp/churn-heap.zst --print-leaks 1`.
Every wait is bounded (30 s a reload). The server's log is removed at the end
unless KEEP=1.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

if len(sys.argv) < 4:
    sys.exit(__doc__)
BIN, DIR, ROUNDS = sys.argv[1], sys.argv[2], int(sys.argv[3])
WRAPPER = sys.argv[4:]
MARK = "# churn.py "

work = tempfile.mkdtemp(prefix="churn-")
settings = os.path.join(work, "switchboard.yaml")
with open(settings, "w") as f:
    f.write("reload:\n  debounce_ms: 10\n  poll_seconds: 0\n")
log = os.path.join(work, "serve.log")
server = subprocess.Popen(
    WRAPPER + [BIN, "serve", "--routing", DIR, "--config", settings,
               "--listen", "127.0.0.1:0", "--log-format", "json"],
    env={**os.environ, "RUST_LOG": "info"},
    stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
started = time.time()
for line in server.stdout:
    if line.startswith("listening on udp"):
        break
else:
    sys.exit("the server stopped before listening: see " + log)
print("start %.2f s" % (time.time() - started), flush=True)
threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()


def pid():
    """The server's own process, under a wrapper too."""
    if not WRAPPER:
        return server.pid
    found = subprocess.run(["pgrep", "-n", "-f", BIN + " serve"],
                           capture_output=True, text=True).stdout.split()
    return int(found[-1])


def rss_mb():
    with open(f"/proc/{pid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def heaps(when):
    """glibc's malloc_stats (written to the server's stderr, the log)."""
    if not os.environ.get("STATS"):
        return
    size = os.path.getsize(log)
    subprocess.run(["gdb", "-p", str(pid()), "-batch", "-ex", "call (void)malloc_stats()"],
                   capture_output=True, timeout=60)
    time.sleep(0.3)
    with open(log, "rb") as f:
        f.seek(size)
        text = f.read().decode(errors="replace")
    arena, rows = None, []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("Arena "):
            arena = line.rstrip(":")
        elif line.startswith("Total"):
            arena = "total"
        elif arena and "bytes" in line:
            kind, value = line.split("=")
            if int(value) > 1_000_000:
                rows.append(f"{arena}: {kind.strip()} {int(value) / 1e6:.1f} MB")
    print(f"  heaps {when}:\n    " + "\n    ".join(rows), flush=True)


class Reloads:
    """Counts the server's 'routing data reloaded' lines as they come."""

    def __init__(self):
        self.file = open(log, "rb")
        self.rest = b""
        self.seen = 0

    def count(self):
        chunk = self.rest + self.file.read()
        cut = chunk.rfind(b"\n") + 1
        self.seen += chunk[:cut].count(b"routing data reloaded")
        self.rest = chunk[cut:]
        return self.seen


def unmarked(text):
    while text.startswith(MARK):
        text = text.split("\n", 1)[1] if "\n" in text else ""
    return text


time.sleep(1.5)
print("after start: RSS %.1f MB" % rss_mb(), flush=True)
heaps("after start")
files = sorted(glob.glob(os.path.join(DIR, "*.yaml")))
reloads = Reloads()
try:
    for round_ in range(1, ROUNDS + 1):
        for path in files:
            before = reloads.count()
            with open(path) as f:
                text = unmarked(f.read())
            with open(path + ".tmp", "w") as f:
                f.write(f"{MARK}round {round_} at {time.time()}\n{text}")
            os.rename(path + ".tmp", path)
            waited = time.time()
            while reloads.count() == before:
                if time.time() - waited > 30:
                    sys.exit(f"no reload after {path} changed: see {log}")
                time.sleep(0.002)
        time.sleep(1.0)
        print("after round %d: RSS %.1f MB" % (round_, rss_mb()), flush=True)
        heaps(f"after round {round_}")
finally:
    for path in files:
        with open(path) as f:
            text = f.read()
        if text.startswith(MARK):
            with open(path, "w") as f:
                f.write(unmarked(text))
    os.kill(pid(), 9 if os.environ.get("KILL9") else 15)
    server.wait(timeout=60)
    # The server's log holds every reload's warnings: gigabytes after a few
    # rounds of a large set.
    if not os.environ.get("KEEP"):
        shutil.rmtree(work, ignore_errors=True)
