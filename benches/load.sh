#!/usr/bin/env bash
# The load benchmark: every figure of the performance issue that needs no ProxySQL, measured
# straight against the primary and through rwproxy, alternating, ROUNDS times; prints each
# round, the load average before each figure, and the median ratio.
#
#   benches/load.sh                          # 2 rounds, 10 s per run
#   ROUNDS=3 SECONDS_PER_RUN=20 benches/load.sh
#   BASELINE=/path/to/older/rwproxy benches/load.sh   # that build's figures too, same run
#   ONLY="point_text connect" benches/load.sh          # a subset of the figures
#   WORKER_THREADS=1 benches/load.sh                   # proxies with proxy.worker_threads = 1
#
# point_text_tls and connect_tls run point_text and connect over TLS to the proxies (the
# servers have no TLS: these compare with the proxies' plain figures, same run).
#
# Figures: point_text (oltp_point_select, text protocol, 4 threads), point_ps (prepared
# statements, 16 threads), cpu (proxy CPU per point select, from those runs), connect
# (connect + SELECT 1 + close, 4 threads, mysqlclient), busy200 (200 autocommit clients,
# backend cap 20 per server), bigselect (1M-row SELECT with mariadb --quick: time and the
# proxy's peak RSS), idle10k (proxy RSS per idle session at 10,000), idle5k (5,000 idle
# mysqlclient sessions, autocommit off and on, backend cap 200).
#
# Everything runs on loopback; every loop is bounded in count and time. 2 cores are shared by
# the clients, MariaDB and the proxy: every CPU microsecond the proxy spends is the server's.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-mariadb.sh
source scripts/ensure-python-deps.sh
source scripts/ensure-build-deps.sh
command -v sysbench >/dev/null || { apt-get update -qq && apt-get install -y -qq sysbench >/dev/null; }
rounds="${ROUNDS:-2}"
secs="${SECONDS_PER_RUN:-10}"
only="${ONLY:-point_text point_ps connect busy200 bigselect idle10k idle5k point_text_tls connect_tls}"
dir=/tmp/rwproxy-bench
work=$(mktemp -d)

cargo build --release --bin rwproxy --example local_cluster
pkill -9 -f -- "--datadir=$dir/" 2>/dev/null || true
./target/release/examples/local_cluster "$dir" >"$work/cluster" &
cluster_pid=$!
pids=()
cleanup() {
  kill "${pids[@]}" "$cluster_pid" 2>/dev/null || true
  sleep 1
  kill -9 "${pids[@]}" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# A CA and a certificate for 127.0.0.1, for the TLS figures (every proxy offers TLS).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$work/ca.key" -out "$work/ca.pem" \
  -days 2 -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$work/key.pem" -out "$work/csr.pem" \
  -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$work/ext.cnf"
openssl x509 -req -in "$work/csr.pem" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -out "$work/cert.pem" -days 2 -extfile "$work/ext.cnf" 2>/dev/null
# sysbench --mysql-ssl=on loads cacert.pem, client-cert.pem and client-key.pem from its working
# directory (a client certificate the proxy does not ask for, but the library wants the files).
mkdir -p "$work/sb" && cp "$work/ca.pem" "$work/sb/cacert.pem"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$work/sb/client-key.pem" \
  -out "$work/sb/client.csr" -subj "/CN=sysbench" 2>/dev/null
openssl x509 -req -in "$work/sb/client.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -out "$work/sb/client-cert.pem" -days 2 2>/dev/null
for _ in $(seq 1 120); do grep -q '^ready' "$work/cluster" && break; sleep 0.5; done
grep -q '^ready' "$work/cluster" || { echo "cluster did not start" >&2; exit 1; }
sockets=("$dir/primary/mysql.sock" "$dir/replica1/mysql.sock" "$dir/replica2/mysql.sock")

# proxy NAME BINARY PORT SERVER_CAP: starts a proxy on PORT (admin PORT+1, metrics PORT+2)
# with every server capped at SERVER_CAP connections; sets $proxy_pid.
proxy() {
  local cfg="$work/$1.toml"
  sed "s/^listen = \"127.0.0.1:6033\"/listen = \"127.0.0.1:$3\"\nmax_connections = 12000/; \
       s/^listen = \"127.0.0.1:6080\"/listen = \"127.0.0.1:$(($3 + 1))\"/; \
       s/^address = /max_connections = $4\naddress = /" config/local.toml >"$cfg"
  printf '\n[metrics]\nlisten = "127.0.0.1:%s"\n' $(($3 + 2)) >>"$cfg"
  # Builds from before [tls] existed would refuse the section.
  [ "$2" = ./target/release/rwproxy ] && printf '\n[tls]\ncert_file = "%s"\nkey_file = "%s"\n' "$work/cert.pem" "$work/key.pem" >>"$cfg"
  [ -n "${WORKER_THREADS:-}" ] && sed -i "s/^\[proxy\]/[proxy]\nworker_threads = $WORKER_THREADS/" "$cfg"
  # Builds from before admin.allow_without_token existed refuse the key (and need no token).
  [ "$2" != ./target/release/rwproxy ] && sed -i '/^allow_without_token/d' "$cfg"
  RUST_LOG=warn "$2" --config "$cfg" &
  proxy_pid=$!
  pids+=("$proxy_pid")
  for _ in $(seq 1 50); do
    mariadb -h127.0.0.1 -P"$3" -uapp -papp -e 'SELECT 1' rwtest >/dev/null 2>&1 && return
    sleep 0.2
  done
  echo "proxy $1 did not start" >&2
  exit 1
}

# builds NAME_SUFFIX PORT_OFFSET SERVER_CAP: a proxy of each build under test; sets $started
# to their "name:port:pid" entries (figures that need other caps start and stop their own,
# so idle proxies do not share the cores during the others).
builds() {
  started=()
  proxy "rwproxy$1" ./target/release/rwproxy $((16033 + $2)) "$3"
  started+=("rwproxy:$((16033 + $2)):$proxy_pid")
  if [ -n "${BASELINE:-}" ]; then
    proxy "baseline$1" "$BASELINE" $((16133 + $2)) "$3"
    started+=("baseline:$((16133 + $2)):$proxy_pid")
  fi
}
stop() {
  for t in "$@"; do kill "${t##*:}" 2>/dev/null || true; done
  sleep 1
  for t in "$@"; do kill -9 "${t##*:}" 2>/dev/null || true; done
}
builds "" 0 200
targets=("direct:3307:" "${started[@]}")

sb() { # port threads ps-mode command (SB_SSL=on: over TLS, run where its certificate files are)
  (cd "${SB_DIR:-.}" && sysbench oltp_point_select --db-ps-mode="$3" --mysql-ssl="${SB_SSL:-off}" --mysql-host=127.0.0.1 --mysql-port="$1" --mysql-user=app \
    --mysql-password=app --mysql-db=rwtest --tables=1 --table-size=10000 \
    --threads="$2" --time="$secs" --report-interval=0 "$4")
}
cpu_ticks() { if [ -n "$1" ]; then awk '{print $14 + $15}' "/proc/$1/stat"; else echo 0; fi; }
qps() { sed -n 's/.*queries:.*(\([0-9.]*\) per sec.*/\1/p'; }
total() { sed -n 's/.*queries:[[:space:]]*\([0-9]*\).*/\1/p'; }
median() { sort -g | awk '{v[NR] = $1} END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
hz=$(getconf CLK_TCK)
results="$work/results"
: >"$results"
record() { echo "$1 $2 $3" >>"$results"; } # figure target value

# measure FIGURE UNIT CMD...: runs CMD (with $port and $pid set) for every target, ROUNDS times,
# alternating; CMD prints one number.
measure() {
  local figure=$1 unit=$2
  shift 2
  echo "== $figure ($unit); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  for r in $(seq 1 "$rounds"); do
    for t in "${targets_now[@]}"; do
      IFS=: read -r name port pid <<<"$t"
      local v
      v=$("$@")
      record "$figure" "$name" "$v"
      printf '  round %s  %-9s %s\n' "$r" "$name" "$v"
    done
  done
}

point() { # threads ps-mode: qps; records proxy CPU per query as a side figure
  local t0 t1 out
  t0=$(cpu_ticks "$pid")
  out=$(sb "$port" "$1" "$2" run)
  t1=$(cpu_ticks "$pid")
  [ -n "$pid" ] && record "cpu_$3" "$name" "$(awk -v t="$((t1 - t0))" -v hz="$hz" -v n="$(echo "$out" | total)" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')"
  echo "$out" | qps
}
connects() { python3 benches/clients.py connect "$port" 4 "$secs" | tr -d '/s'; }
tls_point() { SB_SSL=on SB_DIR="$work/sb" point 4 disable text_tls; }
tls_connects() { BENCH_SSL_CA="$work/ca.pem" connects; }
big_select() {
  local start end
  [ -n "$pid" ] && echo 5 >"/proc/$pid/clear_refs"
  local before=0
  [ -n "$pid" ] && before=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status")
  start=$(date +%s.%N)
  mariadb -h127.0.0.1 -P"$port" -uapp -papp --quick -N -e 'SELECT seq, MD5(seq), REPEAT("x", 100) FROM seq_1_to_1000000' rwtest >/dev/null
  end=$(date +%s.%N)
  [ -n "$pid" ] && record bigselect_rss_raise_mib "$name" $(( ($(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status") - before) / 1024 ))
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", e - s }'
}

sb 3307 1 auto prepare >/dev/null 2>&1 || true
targets_now=("${targets[@]}")
for figure in $only; do
  case $figure in
    point_text) measure point_text qps point 4 disable text ;;
    point_ps) measure point_ps qps point 16 auto ps ;;
    connect) measure connect "connections/s" connects ;;
    busy200)
      builds -cap20 10 20
      targets_now=("direct:3307:" "${started[@]}")
      measure busy200 qps point 200 auto busy
      stop "${started[@]}"
      targets_now=("${targets[@]}") ;;
    bigselect) measure bigselect seconds big_select ;;
    point_text_tls)
      targets_now=("${targets[1]}")
      measure point_text_tls qps tls_point
      targets_now=("${targets[@]}") ;;
    connect_tls)
      targets_now=("${targets[1]}")
      measure connect_tls "connections/s" tls_connects
      targets_now=("${targets[@]}") ;;
    idle10k)
      echo "== idle10k; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
      for t in "${targets[@]:1}"; do
        IFS=: read -r name port pid <<<"$t"
        python3 benches/clients.py idle "$port" 10000 on "$pid" "${sockets[@]}" | sed "s/^/  $name  /"
      done ;;
    idle5k)
      echo "== idle5k (backend cap 200 per server); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
      for ac in off on; do
        builds -cap200 20 200
        for t in "${started[@]}"; do
          IFS=: read -r name port pid <<<"$t"
          python3 benches/clients.py idle "$port" 5000 "$ac" "$pid" "${sockets[@]}" | sed "s/^/  $name autocommit $ac: /"
        done
        stop "${started[@]}"
      done ;;
    *) echo "unknown figure $figure" >&2; exit 2 ;;
  esac
done

echo
echo "== medians over $rounds rounds (ratio = through the proxy / direct)"
for figure in point_text point_ps connect busy200 bigselect; do
  grep -q "^$figure " "$results" || continue
  d=$(awk -v f="$figure" '$1 == f && $2 == "direct" { print $3 }' "$results" | median)
  for name in rwproxy baseline; do
    grep -q "^$figure $name " "$results" || continue
    m=$(awk -v f="$figure" -v n="$name" '$1 == f && $2 == n { print $3 }' "$results" | median)
    awk -v f="$figure" -v n="$name" -v m="$m" -v d="$d" 'BEGIN { printf "  %-10s %-9s %10.2f vs direct %10.2f  ratio %.2f\n", f, n, m, d, m / d }'
  done
done
for figure in point_text_tls connect_tls; do
  grep -q "^$figure rwproxy " "$results" || continue
  plain=${figure%_tls}
  t=$(awk -v f="$figure" '$1 == f && $2 == "rwproxy" { print $3 }' "$results" | median)
  p=$(awk -v f="$plain" '$1 == f && $2 == "rwproxy" { print $3 }' "$results" | median)
  awk -v f="$figure" -v t="$t" -v p="$p" 'BEGIN { printf "  %-14s rwproxy %10.2f vs plain %10.2f  ratio %.2f\n", f, t, p, (p > 0 ? t / p : 0) }'
done
for figure in cpu_text cpu_ps cpu_text_tls cpu_busy bigselect_rss_raise_mib; do
  for name in rwproxy baseline; do
    grep -q "^$figure $name " "$results" || continue
    m=$(awk -v f="$figure" -v n="$name" '$1 == f && $2 == n { print $3 }' "$results" | median)
    printf '  %-23s %-9s %s\n' "$figure" "$name" "$m"
  done
done
