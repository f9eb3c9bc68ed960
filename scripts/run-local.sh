#!/usr/bin/env bash
# Runs the main job locally: a MariaDB primary + 2 GTID replicas (127.0.0.1:3307-3309) and
# rwproxy on 127.0.0.1:6033 with config/local.toml. Installs mariadb-server when missing.
# Ctrl-C stops the proxy; the cluster goes with it. PROFILE=release for an optimised build.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-mariadb.sh
source scripts/ensure-build-deps.sh
profile="${PROFILE:-debug}"
flag=(); [ "$profile" = release ] && flag=(--release)
cargo build "${flag[@]}" --bin rwproxy --example local_cluster
pkill -9 -f -- '--datadir=/tmp/rwproxy-local/' 2>/dev/null || true
ready=$(mktemp)
"./target/$profile/examples/local_cluster" /tmp/rwproxy-local >"$ready" &
for _ in $(seq 1 120); do grep -q '^ready' "$ready" && break; sleep 0.5; done
grep -q '^ready' "$ready" || { echo "cluster did not start" >&2; exit 1; }
cat "$ready"; rm -f "$ready"
echo "rwproxy on 127.0.0.1:6033 — try: mariadb -h127.0.0.1 -P6033 -uapp -papp rwtest"
exec "./target/$profile/rwproxy" --config config/local.toml
