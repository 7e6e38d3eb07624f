"""Cut PySide6 inside the packaged venv down to what the tray uses, so the .deb stays small.

PySide6-Essentials ships Qt Quick, QML, Designer, Linguist, SQL and their tools: ~250 MB, of
which the tray (QtWidgets, a system-tray icon, dialogs) needs well under half. This removes the
unused binding modules, tools and plugins, then keeps exactly the Qt libraries that the remaining
ELF files need (DT_NEEDED, followed to a fixed point), so nothing left behind can fail to load.

    python3 trim_qt.py /path/to/venv

Exits 2 with a message naming the file when the venv has no PySide6 or a needed library is
missing after trimming.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

# Binding modules the tray (gui/) imports, plus what they pull in at run time.
KEEP_MODULES = frozenset({"QtCore", "QtGui", "QtWidgets", "QtNetwork", "QtDBus", "QtSvg", "QtSvgWidgets"})
# Developer tools and build-time material: never run on an outlet PC.
DROP_IN_PACKAGE = ("assistant", "designer", "linguist", "lrelease", "lupdate", "qmlformat", "qmllint", "qmlls",
                   "svgtoqml", "include", "typesystems", "glue", "doc", "scripts", "lib", "libpyside6qml.abi3.so.6")
DROP_IN_QT = ("qml", "metatypes", "libexec")
KEEP_PLUGIN_DIRS = frozenset({"platforms", "platformthemes", "platforminputcontexts", "imageformats", "iconengines",
                              "xcbglintegrations", "wayland-decoration-client", "wayland-graphics-integration-client",
                              "wayland-shell-integration", "tls", "networkinformation", "generic"})
# Platform plugins for a desktop session (X11, Wayland) and for headless checks (offscreen, minimal).
KEEP_PLATFORMS = frozenset({"libqxcb.so", "libqwayland.so", "libqoffscreen.so", "libqminimal.so"})
DROP_PLUGINS = frozenset({"libqtvirtualkeyboardplugin.so", "libqpdf.so"})
KEEP_TRANSLATIONS = re.compile(r"^qt(base)?_(en|zh_CN|zh_TW)\.qm$")


class TrimError(RuntimeError):
    pass


def remove(path: Path) -> int:
    """Delete a file or tree; return the bytes freed."""
    if not path.exists() and not path.is_symlink():
        return 0
    if path.is_dir() and not path.is_symlink():
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
        shutil.rmtree(path)
        return size
    size = path.lstat().st_size
    path.unlink()
    return size


def find_pyside(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages/PySide6"))
    if not found:
        raise TrimError(f"{venv}: no lib/python3*/site-packages/PySide6 in this venv")
    return found[0]


def drop_modules(pyside: Path) -> int:
    freed = 0
    for module in pyside.glob("Qt*.abi3.so"):
        name = module.name.split(".", 1)[0]
        if name not in KEEP_MODULES:
            freed += remove(module) + remove(pyside / f"{name}.pyi")
    for name in DROP_IN_PACKAGE:
        freed += remove(pyside / name)
    for name in DROP_IN_QT:
        freed += remove(pyside / "Qt" / name)
    return freed


def drop_plugins(plugins: Path) -> int:
    freed = 0
    for folder in plugins.iterdir():
        if folder.name not in KEEP_PLUGIN_DIRS:
            freed += remove(folder)
    for plugin in plugins.glob("*/*.so"):
        unwanted_platform = plugin.parent.name == "platforms" and plugin.name not in KEEP_PLATFORMS
        if unwanted_platform or plugin.name in DROP_PLUGINS:
            freed += remove(plugin)
    return freed


def drop_translations(translations: Path) -> int:
    return sum(remove(qm) for qm in translations.glob("*.qm") if not KEEP_TRANSLATIONS.match(qm.name))


def needed(elf: Path) -> set[str]:
    """The DT_NEEDED sonames of an ELF file (readelf from binutils)."""
    out = subprocess.run(["readelf", "-d", "-W", str(elf)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise TrimError(f"{elf}: readelf failed: {out.stderr.strip()}")
    return set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out.stdout))


def is_elf(path: Path) -> bool:
    if not path.is_file() or path.is_symlink():
        return False
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


def library_closure(roots: Iterable[Path], libdir: Path) -> set[str]:
    """File names in libdir that the roots need, directly or through each other."""
    available = {p.name for p in libdir.iterdir()}
    wanted: set[str] = set()
    queue = [name for root in roots for name in needed(root) if name in available]
    while queue:
        name = queue.pop()
        if name in wanted:
            continue
        wanted.add(name)
        queue.extend(dep for dep in needed(libdir / name) if dep in available and dep not in wanted)
    return wanted


def drop_unneeded_libraries(pyside: Path) -> int:
    libdir = pyside / "Qt" / "lib"
    roots = [p for p in pyside.rglob("*") if is_elf(p) and p.parent != libdir]
    shiboken = pyside.parent / "shiboken6"
    roots += [p for p in shiboken.rglob("*") if is_elf(p)]
    keep = library_closure(roots, libdir)
    return sum(remove(lib) for lib in libdir.iterdir() if lib.name not in keep)


def check_complete(pyside: Path) -> None:
    """Every Qt library some remaining file needs is still there."""
    libdir = pyside / "Qt" / "lib"
    present = {p.name for p in libdir.iterdir()}
    for elf in (p for p in pyside.rglob("*") if is_elf(p)):
        missing = {n for n in needed(elf) if n.startswith(("libQt6", "libicu", "libpyside6")) and n not in present}
        missing -= {p.name for p in pyside.glob("libpyside6*")}
        if missing:
            raise TrimError(f"{elf}: needs {', '.join(sorted(missing))}, which trimming removed")


def drop_tool_scripts(venv: Path) -> int:
    return sum(remove(script) for script in (venv / "bin").glob("pyside6-*"))


def trim(venv: Path) -> int:
    pyside = find_pyside(venv)
    freed = drop_modules(pyside) + drop_tool_scripts(venv)
    freed += drop_plugins(pyside / "Qt" / "plugins") + drop_translations(pyside / "Qt" / "translations")
    freed += drop_unneeded_libraries(pyside)
    check_complete(pyside)
    return freed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="trim PySide6 in a venv to what the tray needs")
    parser.add_argument("venv", type=Path)
    args = parser.parse_args(argv)
    try:
        freed = trim(args.venv)
    except TrimError as exc:
        print(f"trim_qt: {exc}", file=sys.stderr)
        return 2
    print(f"trim_qt: removed {freed / 1e6:.0f} MB of unused Qt from {args.venv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
