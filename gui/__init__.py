"""Terminal Guard tray app for outlet staff (PySide6)."""
