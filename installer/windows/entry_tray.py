"""PyInstaller entry point for terminal-guard-tray.exe: the staff tray app."""

import sys

from gui.tray import main

if __name__ == "__main__":
    sys.exit(main())
