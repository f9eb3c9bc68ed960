#!/usr/bin/env bash
# Sourced: makes sure the nightly toolchain and cargo-fuzz are there (cargo-fuzz from crates.io).
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "the fuzz targets need a nightly toolchain (rustup toolchain install nightly)" >&2
  return 1 2>/dev/null || exit 1
fi
command -v cargo-fuzz >/dev/null || timeout 900 cargo install cargo-fuzz --locked
