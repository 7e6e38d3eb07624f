#!/usr/bin/env bash
# Stage a stand-in for the PyInstaller onedir payload: the file names and layout build_payload.ps1
# produces (terminal-guard.exe, terminal-guard-tray.exe, _internal\...), each file a short text
# placeholder. It lets Linux CI build the MSI and check its tables; such an MSI installs nothing
# that runs. The real payload is built on Windows by build_payload.ps1.
#
#   installer/windows/stage_payload.sh DIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: stage_payload.sh DIR" >&2; exit 2; }
dir="$1"
files=(
  terminal-guard.exe
  terminal-guard-tray.exe
  _internal/base_library.zip
  _internal/python311.dll
  _internal/python3.dll
  _internal/VCRUNTIME140.dll
  _internal/VCRUNTIME140_1.dll
  _internal/libcrypto-3.dll
  _internal/libssl-3.dll
  _internal/_ssl.pyd
  _internal/_ctypes.pyd
  _internal/select.pyd
  _internal/pywin32_system32/pywintypes311.dll
  _internal/win32/servicemanager.pyd
  _internal/win32/win32service.pyd
  _internal/win32/win32ts.pyd
  _internal/psutil/_psutil_windows.pyd
  _internal/cryptography/hazmat/bindings/_rust.pyd
  _internal/PySide6/Qt6Core.dll
  _internal/PySide6/Qt6Gui.dll
  _internal/PySide6/Qt6Widgets.dll
  _internal/PySide6/QtCore.pyd
  _internal/PySide6/QtGui.pyd
  _internal/PySide6/QtWidgets.pyd
  _internal/PySide6/plugins/platforms/qwindows.dll
  _internal/shiboken6/Shiboken.pyd
  _internal/agent/rules/builtin/README.txt
)
for file in "${files[@]}"; do
  mkdir -p "$dir/$(dirname "$file")"
  printf 'placeholder for %s: staged for a Linux MSI build, not a Windows program\r\n' "$file" > "$dir/$file"
done
