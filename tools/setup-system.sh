#!/usr/bin/env bash
# Installs the system packages edgeopt builds and runs with (Debian/Ubuntu): a C++ compiler,
# Eigen 3.4, oneTBB, ccache, and real Fashion-MNIST; with --test also headless Chromium (the
# test that renders the sweep's HTML report). Uses apt-get when it can (root or sudo);
# otherwise it says what is missing and leaves the build to fail with a message naming it.
set -u
pkgs="g++ libeigen3-dev libtbb-dev ccache dataset-fashion-mnist"
[ "${1:-}" = "--test" ] && pkgs="$pkgs chromium"
missing=""
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  apt-get install -y -q $missing >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q $missing; }
elif command -v sudo >/dev/null 2>&1; then
  sudo apt-get install -y -q $missing
else
  echo "edgeopt: please install these system packages:$missing" >&2
fi
exit 0
