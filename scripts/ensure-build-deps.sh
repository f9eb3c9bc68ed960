# Sourced: what building rwproxy needs beyond cargo: OpenSSL's headers and pkg-config (the
# `openssl` crate links the system libssl for caching_sha2's RSA decryption).
if ! pkg-config --exists openssl 2>/dev/null; then
  echo "installing libssl-dev and pkg-config (Debian packages) to build rwproxy" >&2
  bd_sudo=""; [ "$(id -u)" -ne 0 ] && bd_sudo="sudo"
  $bd_sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $bd_sudo apt-get install -y -qq --no-install-recommends libssl-dev pkg-config >/dev/null
fi
