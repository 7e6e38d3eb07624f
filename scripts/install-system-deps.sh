#!/usr/bin/env bash
# Debian packages the test suite needs: a PostgreSQL server (HQ runs on both engines), the
# libraries Qt needs offscreen, chromium with its driver for the HQ console's browser tests and for
# detecting a real Selenium session, httrack (a real website copier for the detection tests),
# ripgrep (bench/bench_exports.py measures the export scanner against it); wget and curl (real
# downloaders, in the detection tests and as the writing process of an export);
# for the tray on a real X server (tests/gui/test_tray_host_xvfb.py): Xvfb, a tray host (trayer),
# xwininfo (x11-utils) and the libraries Qt's xcb platform plugin loads.
# Installed only when running as root; otherwise listed.
set -euo pipefail
packages=(postgresql libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0 fonts-noto-cjk wixl msitools binutils systemd chromium chromium-driver httrack ripgrep wget curl
  xvfb trayer x11-utils libx11-xcb1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-sync1 libxcb-xfixes0 libxcb-xkb1)
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
