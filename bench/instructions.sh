#!/usr/bin/env bash
# The tracked figure of issue #4: instructions per INVITE -> 302 (parse +
# route + build, in process), counted by callgrind, so repeatable whatever
# else the machine is doing.
#
#   bench/instructions.sh          # needs valgrind (apt-get install -y valgrind)
#
# examples/invite_cost answers benches/invite.sip (a 560-byte trunk INVITE
# with SDP) N times against config/routing.yaml. The figure is the whole
# program's count at 10,001 answers minus its count at 1, divided by
# 10,000: loading and start-up cancel out, and nothing depends on which
# functions the optimiser inlined. "exempt": the trunk is exempt from flood
# buckets (the default for loopback); "guarded": it takes a token from its
# bucket on every request; "chain": exempt, a 302 with two Contacts and a
# Diversion header (on_no_answer: forward, diversion: header).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "instructions.sh: needs valgrind" >&2; exit 1; }
cargo build --release --quiet --example invite_cost
count() {   # $1 answers, $2 mode
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        target/release/examples/invite_cost "$1" "$2" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for mode in exempt guarded chain; do
    one=$(count 1 "$mode")
    many=$(count 10001 "$mode")
    echo "$mode: $(( (many - one) / 10000 )) instructions per INVITE -> 302"
done
