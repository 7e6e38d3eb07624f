"""HQ's session MAC key: 32 random bytes in DATA_DIR/session-key, 0600, made on first start.

Every HQ process with the same data directory issues and checks the same tokens. Deleting the
file (and restarting) invalidates every session token at once.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from hq.tls import write_private

SESSION_KEY_FILE = "session-key"
KEY_BYTES = 32


def ensure_session_key(data_dir: Path) -> bytes:
    path = data_dir / SESSION_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        write_private(path, secrets.token_hex(KEY_BYTES).encode("ascii"))
    text = path.read_text("ascii").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{path}: expected {KEY_BYTES * 2} hex digits") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"{path}: expected {KEY_BYTES * 2} hex digits, got {len(text)}")
    return key
