"""The tray's dialogs: sign-in, policy acknowledgement, alerts and diagnostics."""
