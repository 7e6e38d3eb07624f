"""PyInstaller entry point for terminal-guard.exe: the agent's command line (and its service)."""

import sys

from agent.cli import main

if __name__ == "__main__":
    sys.exit(main())
