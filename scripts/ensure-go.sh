# Sourced: Go and its MySQL driver (Debian's golang-go and golang-github-go-sql-driver-mysql-dev)
# for tests/go, built by the tests in GOPATH mode from /usr/share/gocode.
if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/github.com/go-sql-driver/mysql ]; then
  echo "installing golang-go and golang-github-go-sql-driver-mysql-dev (Debian packages)" >&2
  go_sudo=""; [ "$(id -u)" -ne 0 ] && go_sudo="sudo"
  $go_sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $go_sudo apt-get install -y -qq --no-install-recommends \
    golang-go golang-github-go-sql-driver-mysql-dev >/dev/null
fi
