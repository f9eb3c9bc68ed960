#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, and the integration tests against a real
# MariaDB primary + 2 GTID replicas that the harness starts itself (installing MariaDB if needed),
# including the Django example's own test suite, mysqlclient's own tests and Node's drivers run
# through the proxy; then the integration tests once more with replicas 1 s behind, the
# fidelity suites over TLS, and the fuzz targets briefly.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-mariadb.sh
source scripts/ensure-build-deps.sh
source scripts/ensure-python-deps.sh
source scripts/ensure-promtool.sh
source scripts/ensure-peer-suites.sh
source scripts/ensure-node-deps.sh
source scripts/ensure-go.sh
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
# An outer bound: no test may hang CI (each suite job also has its own timeout).
timeout -k 30 2700 cargo test --all-targets
# The integration suite again with both replicas applying 1 s behind (MASTER_DELAY = 1):
# read-your-writes must hold under lag in the default config.
RWPROXY_TEST_REPLICA_DELAY=1 timeout -k 30 1200 cargo test --test it
# The protocol-fidelity suites once more over TLS (RWPROXY_TEST_TLS=1): every proxy offers TLS
# with the harness's certificate, every test client through it verifies the harness's CA, and
# the application user must use TLS, so a client that did not would fail.
RWPROXY_TEST_TLS=1 timeout -k 30 900 cargo test --test it -- fidelity:: semantics:: extended:: isolation:: routing:: tls::
# Every fuzz target for a short, bounded time from the committed seed corpora
# (scripts/fuzz.sh runs them for 10 minutes each).
FUZZ_SECONDS=15 scripts/fuzz.sh
