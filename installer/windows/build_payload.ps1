<#
.SYNOPSIS
  Build the frozen Windows payload for the MSI with PyInstaller (run on Windows, e.g. a CI runner).

.DESCRIPTION
  Creates a clean venv, installs Terminal Guard with its Windows dependencies (pywin32, pefile)
  and PyInstaller, freezes terminal-guard.exe and terminal-guard-tray.exe into one onedir folder
  (terminal-guard.spec) and copies it to -Out. Then build the MSI on Linux with
    installer/windows/build_msi.sh --payload <that folder>
  or on Windows with WiX v3 (candle/light) from terminal-guard.wxs plus a heat-generated payload.

.EXAMPLE
  powershell -ExecutionPolicy Bypass -File installer\windows\build_payload.ps1 -Out dist\payload
#>
param(
  [string]$Out = "dist\payload",
  [string]$Python = "python"
)
$ErrorActionPreference = "Stop"
$root = (Resolve-Path (Join-Path $PSScriptRoot "..\..")).Path
$build = Join-Path $root "build\payload"

function Invoke-Checked([string]$Exe, [string[]]$Arguments) {
  & $Exe @Arguments
  if ($LASTEXITCODE -ne 0) { throw "$Exe $($Arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

if (Test-Path $build) { Remove-Item -Recurse -Force $build }
New-Item -ItemType Directory -Force -Path $build | Out-Null
Invoke-Checked $Python @("-m", "venv", "$build\venv")
$py = Join-Path $build "venv\Scripts\python.exe"
Invoke-Checked $py @("-m", "pip", "install", "--quiet", "--upgrade", "pip")
Invoke-Checked $py @("-m", "pip", "install", "--quiet", $root, "pyinstaller>=6.3")
Invoke-Checked $py @("-m", "PyInstaller", "--noconfirm", "--clean", "--distpath", "$build\dist",
  "--workpath", "$build\work", (Join-Path $PSScriptRoot "terminal-guard.spec"))

$frozen = Join-Path $build "dist\terminal-guard"
foreach ($name in @("terminal-guard.exe", "terminal-guard-tray.exe", "_internal")) {
  if (-not (Test-Path (Join-Path $frozen $name))) { throw "PyInstaller output $frozen has no $name" }
}
# Smoke test: the frozen agent starts and knows its version.
$version = & (Join-Path $frozen "terminal-guard.exe") --version
if ($LASTEXITCODE -ne 0) { throw "terminal-guard.exe --version failed" }
Write-Host "frozen: $version"

$target = if ([IO.Path]::IsPathRooted($Out)) { $Out } else { Join-Path $root $Out }
if (Test-Path $target) { Remove-Item -Recurse -Force $target }
New-Item -ItemType Directory -Force -Path (Split-Path -Parent $target) | Out-Null
Copy-Item -Recurse $frozen $target
Write-Host "payload: $target"
