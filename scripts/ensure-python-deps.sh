# Sourced: makes Django and mysqlclient importable for the Django example's test suite.
if ! python3 -c "import django, MySQLdb" >/dev/null 2>&1; then
  echo "installing Django and mysqlclient for examples/django" >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  if ! { pkg-config --exists libmariadb || pkg-config --exists mysqlclient; } 2>/dev/null; then
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq libmariadb-dev pkg-config >/dev/null
  fi
  python3 -m pip install -q -r examples/django/requirements.txt
fi
