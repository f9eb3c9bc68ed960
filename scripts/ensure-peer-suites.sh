# Sourced: the test suite of a driver written by others (mysqlclient's own tests, from its
# source distribution on PyPI, matching the installed version) and pytest to run it;
# tests/it/peers.rs runs it directly against the primary and through the proxy. Source
# ensure-python-deps.sh first (its virtual environment has pytest).
peer_dir="target/peer-suites"
if ! python3 -c "import pytest" >/dev/null 2>&1; then
  echo "installing pytest for the peers' test suites" >&2
  python3 -m pip install -q pytest
fi
mc_version=$(python3 -c "import importlib.metadata as m; print(m.version('mysqlclient'))")
if [ ! -f "$peer_dir/mysqlclient-$mc_version/tests/configdb.py" ]; then
  echo "fetching mysqlclient $mc_version's test suite (source distribution)" >&2
  mkdir -p "$peer_dir"
  python3 -m pip download -q --no-deps --no-binary :all: "mysqlclient==$mc_version" -d "$peer_dir"
  tar xzf "$peer_dir/mysqlclient-$mc_version.tar.gz" -C "$peer_dir"
fi
export RWPROXY_MYSQLCLIENT_TESTS="$PWD/$peer_dir/mysqlclient-$mc_version/tests"
