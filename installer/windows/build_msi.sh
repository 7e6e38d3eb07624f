#!/usr/bin/env bash
# Build terminal-guard-<version>-x64.msi from terminal-guard.wxs with Debian's wixl (msitools).
#
#   installer/windows/build_msi.sh --payload DIR [--out DIR]   the PyInstaller onedir folder made by
#                                                               build_payload.ps1 on Windows
#   installer/windows/build_msi.sh --staged-payload [--out DIR] placeholder files with the payload's
#                                                               names: an MSI whose tables can be checked
#                                                               on Linux, NOT one that runs on Windows
# Default --out: dist/. Needs wixl, wixl-heat, msibuild and msiinfo (apt-get install wixl msitools).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/dist"
payload=""
staged=0
while [ $# -gt 0 ]; do
  case "$1" in
    --payload) payload="$2"; shift 2 ;;
    --staged-payload) staged=1; shift ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "build_msi: unknown argument $1 (expected --payload DIR, --staged-payload, --out DIR)" >&2; exit 2 ;;
  esac
done
if [ "$staged" = 1 ] && [ -n "$payload" ]; then
  echo "build_msi: give either --payload DIR or --staged-payload, not both" >&2; exit 2
fi
if [ "$staged" = 0 ] && [ -z "$payload" ]; then
  echo "build_msi: give --payload DIR (PyInstaller output of build_payload.ps1) or --staged-payload" >&2; exit 2
fi
for tool in wixl wixl-heat msibuild msiinfo; do
  command -v "$tool" >/dev/null || { echo "build_msi: $tool is missing (apt-get install wixl msitools)" >&2; exit 2; }
done

version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$root/agent/__init__.py")"
# An MSI ProductVersion is major.minor.build, numbers only: 0.2.0rc1 ships as 0.2.0.
msiversion="$(printf '%s' "$version" | sed -E 's/^([0-9]+\.[0-9]+\.[0-9]+).*/\1/')"
[[ "$msiversion" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "build_msi: cannot make an MSI version of '$version'" >&2; exit 2; }

work="$(mktemp -d /tmp/tg-msi.XXXXXX)"
trap 'rm -rf "$work"' EXIT

if [ "$staged" = 1 ]; then
  payload="$work/staged"
  "$here/stage_payload.sh" "$payload"
fi
for required in terminal-guard.exe terminal-guard-tray.exe _internal; do
  [ -e "$payload/$required" ] || { echo "build_msi: $payload has no $required: not a build_payload.ps1 output" >&2; exit 2; }
done

# wixl resolves File/@Source only relative to its working directory, so build inside $work.
ln -s "$(cd "$payload" && pwd)" "$work/payload"
(cd "$payload" && find _internal -type f | LC_ALL=C sort) \
  | wixl-heat --prefix "" --directory-ref INSTALLDIR --component-group Payload --var var.PayloadDir --win64 \
  > "$work/payload.wxs"
cp "$here/terminal-guard.wxs" "$work/"
msi="$work/terminal-guard.msi"
(cd "$work" && wixl --arch x64 -D Version="$msiversion" -D PayloadDir=payload -D Win64=yes \
  -o terminal-guard.msi terminal-guard.wxs payload.wxs 2> wixl.log) \
  || { cat "$work/wixl.log" >&2; echo "build_msi: wixl failed" >&2; exit 2; }
# wixl warns about every attribute it does not know. Expected: the three patched below, Platform
# (--arch x64 does the same) and InstallPrivileges (elevated is already the default).
if grep -v -E "has no property named '(Secure|Hidden|HideTarget|Platform|InstallPrivileges)'|^\s*$" \
    "$work/wixl.log" >&2; then
  echo "build_msi: wixl reported problems (above)" >&2; exit 2
fi

# wixl 0.101 drops three WiX attributes that WiX on Windows honours; write their effect directly:
#  Property/@Hidden     -> MsiHiddenProperties (msiexec logs show ********** for ENROLLTOKEN)
#  Property/@Secure     -> SecureCustomProperties (the values reach the elevated server side)
#  CustomAction/@HideTarget -> msidbCustomActionTypeHideTarget (0x2000) on WriteConfig
# (msiinfo exports IDT text with CRLF line ends.)
secure="$(msiinfo export "$msi" Property | tr -d '\r' | awk -F'\t' '$1 == "SecureCustomProperties" { print $2 }')"
type="$(msiinfo export "$msi" CustomAction | tr -d '\r' | awk -F'\t' '$1 == "WriteConfig" { print $2 }')"
[ -n "$type" ] || { echo "build_msi: no WriteConfig custom action in the built MSI" >&2; exit 2; }
msibuild "$msi" \
  -q "INSERT INTO Property (Property, Value) VALUES ('MsiHiddenProperties', 'ENROLLTOKEN')" \
  -q "UPDATE Property SET Value = '${secure:+$secure;}HQURL;ENROLLTOKEN;OUTLETID;HQCA' WHERE Property = 'SecureCustomProperties'" \
  -q "UPDATE CustomAction SET Type = $(( type | 0x2000 )) WHERE Action = 'WriteConfig'"

mkdir -p "$out"
# A staged build is named so that nobody mistakes it for something to ship.
target="$out/terminal-guard-${msiversion}-x64$([ "$staged" = 1 ] && echo -staged).msi"
mv "$msi" "$target"
kind="around the payload in $payload"
[ "$staged" = 1 ] && kind="around a STAGED placeholder payload: for table checks, not for Windows"
echo "build_msi: $target ($(( $(stat -c %s "$target") / 1024 )) KB), $kind"
