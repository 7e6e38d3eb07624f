#!/usr/bin/env bash
# Debian packages the test suite needs: a PostgreSQL server (HQ runs on both engines), the
# libraries Qt needs offscreen, and chromium with its driver for the HQ console's browser tests.
# Installed only when running as root; otherwise listed.
set -euo pipefail
packages=(postgresql libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0 fonts-noto-cjk wixl msitools binutils systemd chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-system-deps: not root; the tests need these Debian packages: ${missing[*]}" >&2
  exit 0
fi
echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
