#!/usr/bin/env bash
# Build terminal-guard_<version>_<arch>.deb: the agent as a venv under /opt/terminal-guard, a
# hardened systemd unit, the tray's XDG autostart entry and the conffile /etc/terminal-guard/agent.toml.
#
#   installer/linux/build_deb.sh [--out DIR]        (default DIR: dist/)
#
# PYTHON (default /usr/bin/python3.11) builds the venv. The venv links to that interpreter and
# its compiled wheels (cryptography, psutil, PySide6) match its ABI, so the package depends on
# the same Debian python3.X package: build on the Debian release you ship to (Debian 12 -> 3.11).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "build_deb: unknown argument $1 (expected --out DIR)" >&2; exit 2 ;;
  esac
done

PYTHON="${PYTHON:-/usr/bin/python3.11}"
[ -x "$PYTHON" ] || { echo "build_deb: $PYTHON not found; set PYTHON to a Debian python3.X" >&2; exit 2; }
case "$("$PYTHON" -c 'import sys; print(sys.prefix)')" in
  /usr) ;;
  *) echo "build_deb: $PYTHON is not the system interpreter (prefix /usr); the venv would point" \
          "at a path outlet PCs do not have" >&2; exit 2 ;;
esac
for tool in dpkg-deb readelf; do
  command -v "$tool" >/dev/null || { echo "build_deb: $tool is missing (apt-get install dpkg binutils)" >&2; exit 2; }
done

pyver="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$root/agent/__init__.py")"
[ -n "$version" ] || { echo "build_deb: no __version__ in agent/__init__.py" >&2; exit 2; }
# PEP 440 pre-releases (0.2.0rc1, 0.2.0.dev3) sort before the release in Debian only with "~".
debversion="$(printf '%s' "$version" | sed -E 's/\.?(a|b|rc|dev)([0-9]*)$/~\1\2/')"
arch="$(dpkg --print-architecture)"
opt=/opt/terminal-guard

work="$(mktemp -d /tmp/tg-deb.XXXXXX)"
trap 'rm -rf "$work"' EXIT
stage="$work/root"
venv="$stage$opt"

echo "build_deb: wheel for terminal-guard $version"
# From a clean copy: an in-tree build reuses build/lib, where a module deleted from the source
# would linger and ship. The HQ server is left out; it never runs on an outlet PC.
mkdir -p "$work/src"
cp -r "$root/pyproject.toml" "$root/README.md" "$root/agent" "$root/gui" "$work/src/"
find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$work/wheels" "$work/src" >&2

echo "build_deb: venv with $PYTHON ($pyver)"
"$PYTHON" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --no-compile --disable-pip-version-check "$work"/wheels/terminal_guard-*.whl >&2
# The installed product needs neither pip nor setuptools, nor the HQ server that shares the wheel.
"$venv/bin/python" -m pip uninstall --quiet --yes pip setuptools >&2
rm -rf "$venv"/lib/python*/site-packages/hq "$venv/bin/terminal-guard-hq" "$venv"/bin/[Aa]ctivate*
# pip's note of where the wheel came from names the build's temporary folder.
rm -f "$venv"/lib/python*/site-packages/terminal_guard-*.dist-info/direct_url.json
"$PYTHON" "$here/trim_qt.py" "$venv"

# Entry-point shebangs and pyvenv.cfg name the staging path; they must name /opt/terminal-guard.
grep -rlI --null "$stage" "$venv" | xargs -0 -r sed -i "s#$stage##g"
# Byte-compile now, recording /opt paths, so the read-only service never needs to write .pyc.
"$PYTHON" -m compileall -q -j 0 -s "$stage" -p / "$venv/lib" >/dev/null

install -D -m 0644 "$here/terminal-guard.service" "$stage/lib/systemd/system/terminal-guard.service"
install -D -m 0644 "$here/terminal-guard-tray.desktop" "$stage/etc/xdg/autostart/terminal-guard-tray.desktop"
install -D -m 0644 "$here/agent.toml" "$stage/etc/terminal-guard/agent.toml"
install -D -m 0644 "$here/README.md" "$stage/usr/share/doc/terminal-guard/README.md"
mkdir -p "$stage/usr/bin"
ln -s "$opt/bin/terminal-guard" "$stage/usr/bin/terminal-guard"
ln -s "$opt/bin/terminal-guard-tray" "$stage/usr/bin/terminal-guard-tray"

mkdir -p "$stage/DEBIAN"
for script in postinst prerm postrm; do
  install -m 0755 "$here/debian/$script" "$stage/DEBIAN/$script"
done
install -m 0644 "$here/debian/templates" "$stage/DEBIAN/templates"
install -m 0644 "$here/debian/conffiles" "$stage/DEBIAN/conffiles"
size_kb="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
sed -e "s/@VERSION@/$debversion/" -e "s/@ARCH@/$arch/" -e "s/@PYVER@/$pyver/g" -e "s/@SIZE@/$size_kb/" \
  "$here/debian/control.in" > "$stage/DEBIAN/control"

mkdir -p "$out"
deb="$out/terminal-guard_${debversion}_${arch}.deb"
# xz level 2 (fast mode): within 10 % of level 6 for this payload at a fifth of the time.
dpkg-deb --root-owner-group -Zxz -z2 --threads-max="$(nproc)" --build "$stage" "$deb" >/dev/null 2>&1 \
  || dpkg-deb --root-owner-group -Zxz -z2 --build "$stage" "$deb" >/dev/null
echo "build_deb: $deb ($(( $(stat -c %s "$deb") / 1024 / 1024 )) MB)"
