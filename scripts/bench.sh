#!/usr/bin/env bash
# Load benchmark: sysbench oltp_point_select straight to the primary and through rwproxy in one
# run; prints both QPS figures, their ratio and the proxy's CPU microseconds per query. Then
# measures how much a 1M-row SELECT through the proxy raises the proxy's RSS.
#
#   scripts/bench.sh            # 8 threads, 10 s per run
#   THREADS=16 SECONDS_PER_RUN=20 scripts/bench.sh
#   BASELINE=/path/to/older/rwproxy scripts/bench.sh   # also that build, same config, same run
#
# Everything runs on loopback; every loop is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-mariadb.sh
command -v sysbench >/dev/null || { apt-get update -qq && apt-get install -y -qq sysbench >/dev/null; }
threads="${THREADS:-8}"
secs="${SECONDS_PER_RUN:-10}"
dir=/tmp/rwproxy-bench

cargo build --release --bin rwproxy --example local_cluster
pkill -9 -f -- "--datadir=$dir/" 2>/dev/null || true
ready=$(mktemp)
./target/release/examples/local_cluster "$dir" >"$ready" &
cluster_pid=$!
for _ in $(seq 1 120); do grep -q '^ready' "$ready" && break; sleep 0.5; done
grep -q '^ready' "$ready" || { echo "cluster did not start" >&2; exit 1; }

cfg=$(mktemp --suffix=.toml)
sed 's/^listen = "127.0.0.1:6033"/listen = "127.0.0.1:16033"/; s/^listen = "127.0.0.1:6080"/listen = "127.0.0.1:16080"/' config/local.toml >"$cfg"
# WORKER_THREADS=1 runs the proxy on one thread (less CPU per query on a shared 2-core host).
[ -n "${WORKER_THREADS:-}" ] && sed -i "s/^\[proxy\]/[proxy]\nworker_threads = $WORKER_THREADS/" "$cfg"
RUST_LOG=warn ./target/release/rwproxy --config "$cfg" &
proxy_pid=$!
base_pid=""
if [ -n "${BASELINE:-}" ]; then
  base_cfg=$(mktemp --suffix=.toml)
  # Builds from before admin.allow_without_token existed refuse the key (and need no token).
  sed 's/127.0.0.1:16033/127.0.0.1:16133/; s/127.0.0.1:16080/127.0.0.1:16180/; /^allow_without_token/d' "$cfg" >"$base_cfg"
  printf '\n[metrics]\nlisten = "127.0.0.1:16170"\n' >>"$base_cfg"
  RUST_LOG=warn "$BASELINE" --config "$base_cfg" &
  base_pid=$!
fi
trap 'kill $proxy_pid $base_pid $cluster_pid 2>/dev/null; rm -f "$cfg" "${base_cfg:-}" "$ready"' EXIT
for port in 16033 ${base_pid:+16133}; do
  for _ in $(seq 1 50); do mariadb -h127.0.0.1 -P$port -uapp -papp -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
done

sb() { # port, command (PS_MODE=disable sends COM_QUERY instead of prepared statements)
  sysbench oltp_point_select --db-ps-mode="${PS_MODE:-auto}" --mysql-host=127.0.0.1 --mysql-port="$1" --mysql-user=app \
    --mysql-password=app --mysql-db=rwtest --tables=1 --table-size=10000 \
    --threads="$threads" --time="$secs" --report-interval=0 "$2"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/${1:-$proxy_pid}/stat"; }
qps() { sed -n 's/.*queries:.*(\([0-9.]*\) per sec.*/\1/p'; }
total() { sed -n 's/.*queries:[[:space:]]*\([0-9]*\).*/\1/p'; }

sb 3307 prepare >/dev/null
direct=$(sb 3307 run)
t0=$(cpu_ticks)
proxied=$(sb 16033 run)
t1=$(cpu_ticks)
hz=$(getconf CLK_TCK)
dq=$(echo "$direct" | qps); pq=$(echo "$proxied" | qps); pn=$(echo "$proxied" | total)
echo "oltp_point_select, $threads threads, ${secs}s each (2 cores shared by sysbench, MariaDB and rwproxy)"
echo "  direct to primary : $dq qps"
echo "  through rwproxy   : $pq qps"
awk -v p="$pq" -v d="$dq" 'BEGIN { printf "  ratio proxy/direct: %.2f\n", p / d }'
awk -v t="$((t1 - t0))" -v hz="$hz" -v n="$pn" 'BEGIN { printf "  proxy CPU         : %.1f us per query (%d queries)\n", t * 1e6 / hz / n, n }'
if [ -n "$base_pid" ]; then
  b0=$(cpu_ticks "$base_pid")
  based=$(sb 16133 run)
  b1=$(cpu_ticks "$base_pid")
  bq=$(echo "$based" | qps); bn=$(echo "$based" | total)
  echo "  baseline ($BASELINE): $bq qps"
  awk -v p="$bq" -v d="$dq" 'BEGIN { printf "  baseline ratio    : %.2f\n", p / d }'
  awk -v t="$((b1 - b0))" -v hz="$hz" -v n="$bn" 'BEGIN { printf "  baseline CPU      : %.1f us per query (%d queries)\n", t * 1e6 / hz / n, n }'
fi

cleaned=$(curl -s http://127.0.0.1:16080/metrics | awk '/^rwproxy_backend_cleanups_total/ && $2 > 0 {printf "%s ", $0}')
echo "  connections cleaned before reuse: ${cleaned:-none}"
rss() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$proxy_pid/status"; }
echo 5 >"/proc/$proxy_pid/clear_refs"   # reset the peak-RSS counter
before=$(rss VmRSS)
mariadb -h127.0.0.1 -P16033 -uapp -papp --quick -N -e 'SELECT seq, MD5(seq), REPEAT("x", 100) FROM seq_1_to_1000000' rwtest | wc -l
peak=$(rss VmHWM)
echo "1M-row SELECT through rwproxy: RSS before ${before} KiB, peak ${peak} KiB, raise $(( (peak - before) / 1024 )) MiB"
