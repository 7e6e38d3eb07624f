"""OS concerns behind one small interface: Linux, Windows and a fake for tests.

``current_platform()`` picks the implementation for the running OS. The Windows module imports
pywin32 only inside its functions, so every implementation imports (and is tested) on Linux.
"""

from __future__ import annotations

import sys

from agent.platform.base import Platform, ScreenLockChange, ScreenLockWatch, ServiceMain, UserSession

__all__ = ["Platform", "ScreenLockChange", "ScreenLockWatch", "ServiceMain", "UserSession", "current_platform"]


def current_platform() -> Platform:
    if sys.platform == "win32":
        from agent.platform.windows import WindowsPlatform

        return WindowsPlatform()
    from agent.platform.linux import LinuxPlatform

    return LinuxPlatform()
