#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS each (default 600), one after the other, from the
# committed seed corpora (fuzz/corpus, captured by scripts/fuzz-capture.py) into a working
# corpus under target/fuzz-corpus. Prints executions and findings per target; exits non-zero
# when a target found a crash (the reproducer is under fuzz/artifacts/<target>/).
#
#   scripts/fuzz.sh                  # 10 minutes per target
#   FUZZ_SECONDS=15 scripts/fuzz.sh  # what CI runs
#   scripts/fuzz.sh classify         # one target
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-fuzz.sh
secs="${FUZZ_SECONDS:-600}"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(client_packets compressed_frames handshake_response command classify reply_tracker import)
(cd fuzz && cargo +nightly fuzz build -O)
failed=0
for t in "${targets[@]}"; do
  work="target/fuzz-corpus/$t"
  mkdir -p "$work"
  cp -n fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  log=$(mktemp)
  # -max_total_time bounds the run; rss and input caps keep it inside the machine.
  if (cd fuzz && timeout -k 10 $((secs + 120)) cargo +nightly fuzz run -O "$t" "../$work" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1) >"$log" 2>&1; then
    result="no findings"
  else
    result="FOUND A CRASH (see fuzz/artifacts/$t)"
    failed=1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  echo "fuzz $t: ${secs}s, ${execs:-?} executions, corpus $(ls "$work" | wc -l), $result"
  [ "$failed" = 1 ] && tail -40 "$log"
  rm -f "$log"
done
exit "$failed"
