# Sourced: a virtual environment (target/pyenv, or $RWPROXY_PYENV; first on PATH from here on) with Django,
# mysqlclient, PyMySQL (with cryptography, for caching_sha2's RSA exchange), mysql-connector-python and pytest for the Django example's suite, mysqlclient's own tests and the load
# benchmark. A venv because Debian's system Python refuses `pip install` (PEP 668); what
# mysqlclient needs to build (gcc, Python's headers, the MariaDB client library) comes from apt.
py_venv="${RWPROXY_PYENV:-$PWD/target/pyenv}"
py_sudo=""; [ "$(id -u)" -ne 0 ] && py_sudo="sudo"
py_apt() {
  echo "installing $* (Debian packages) for the Python test dependencies" >&2
  $py_sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $py_sudo apt-get install -y -qq "$@" >/dev/null
}
if [ ! -x "$py_venv/bin/python3" ]; then
  # Debian's python3 makes a venv only with python3-venv (it brings ensurepip's wheels).
  python3 -m venv "$py_venv" >/dev/null 2>&1 || { rm -rf "$py_venv"; py_apt python3-venv; python3 -m venv "$py_venv"; }
fi
export PATH="$py_venv/bin:$PATH"
if ! python3 -c "import django, MySQLdb, pytest, pymysql, mysql.connector, cryptography" >/dev/null 2>&1; then
  py_need=()
  command -v gcc >/dev/null || py_need+=(gcc)
  { pkg-config --exists libmariadb || pkg-config --exists mysqlclient; } 2>/dev/null || py_need+=(libmariadb-dev pkg-config)
  python3 -c "import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
    || py_need+=(python3-dev)
  [ ${#py_need[@]} -eq 0 ] || py_apt "${py_need[@]}"
  echo "installing Django, mysqlclient, PyMySQL, cryptography, mysql-connector-python and pytest into $py_venv" >&2
  python3 -m pip install -q -r examples/django/requirements.txt pytest PyMySQL mysql-connector-python cryptography
fi
