# Sourced: installs the MariaDB server and client tools from Debian's packages when missing,
# and openssl (the test cluster's servers and the TLS tests get certificates made with it).
need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
for tool in mariadb mariadb-dump mariadb-admin; do
  command -v "$tool" >/dev/null 2>&1 || { need+=(mariadb-client); break; }
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} (Debian packages)" >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
