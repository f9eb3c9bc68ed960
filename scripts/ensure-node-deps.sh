# Sourced: Node and the drivers tests/it/node.rs runs (the MariaDB connector and mysql2, pinned
# in tests/node/package-lock.json, installed from npm unmodified).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing nodejs and npm" >&2
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -d tests/node/node_modules/mariadb ] || [ ! -d tests/node/node_modules/mysql2 ] \
  || [ tests/node/package-lock.json -nt tests/node/node_modules/.package-lock.json ]; then
  echo "installing the Node drivers for the tests (npm ci)" >&2
  timeout 600 npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
fi
