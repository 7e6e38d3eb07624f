"""RDP sessions on Windows through the Terminal Services API (pywin32's ``win32ts``).

psutil.users() already shows an RDP user with the client address; WTS adds the client's
machine name and sees a session that is connected but not yet logged on. The API object is
injectable so the parsing is tested on Linux with a fake of the two calls used.
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
from typing import Any

from agent.sensors.observations import RemoteSession

log = logging.getLogger(__name__)

# Values from WtsApi32.h; spelled out so a fake API needs only the two functions.
WTS_CURRENT_SERVER_HANDLE = 0
WTS_ACTIVE = 0
WTS_CONNECTED = 1
WTS_USER_NAME = 5
WTS_CLIENT_NAME = 10
WTS_CLIENT_ADDRESS = 14
WTS_CLIENT_PROTOCOL_TYPE = 16
WTS_PROTOCOL_TYPE_RDP = 2
AF_INET = 2


def client_ip(address: Any) -> str | None:
    """IPv4 text from a WTS_CLIENT_ADDRESS dict; its four bytes start at offset 2 of Address.

    Other families are given as None: pywin32 documents IPv6 as unreliable before Server 2012.
    """
    if not isinstance(address, dict) or address.get("AddressFamily") != AF_INET:
        return None
    raw = address.get("Address") or ()
    if len(raw) < 6:
        return None
    try:
        return str(ipaddress.IPv4Address(bytes(int(b) & 0xFF for b in raw[2:6])))
    except ValueError:
        return None


def _query(api: Any, session_id: int, info_class: int) -> Any:
    return api.WTSQuerySessionInformation(WTS_CURRENT_SERVER_HANDLE, session_id, info_class)


def _session(api: Any, session_id: int, now: float) -> RemoteSession | None:
    if _query(api, session_id, WTS_CLIENT_PROTOCOL_TYPE) != WTS_PROTOCOL_TYPE_RDP:
        return None
    user = _query(api, session_id, WTS_USER_NAME) or None
    client_name = _query(api, session_id, WTS_CLIENT_NAME) or None
    source_ip = client_ip(_query(api, session_id, WTS_CLIENT_ADDRESS))
    return RemoteSession(user=user, kind="rdp", source_ip=source_ip, observed_at=now, host=client_name)


def rdp_sessions(now: float, *, api: Any | None = None) -> list[RemoteSession]:
    """Active or connected RDP sessions; the console and the listener are left out."""
    wts = api if api is not None else importlib.import_module("win32ts")
    found = []
    for entry in wts.WTSEnumerateSessions(WTS_CURRENT_SERVER_HANDLE):
        if entry.get("State") not in (WTS_ACTIVE, WTS_CONNECTED):
            continue
        try:
            session = _session(wts, int(entry["SessionId"]), now)
        except Exception as exc:
            # pywintypes.error when a session ends between enumeration and query; that
            # session is skipped, the others are still reported.
            log.debug("WTS session %s unreadable: %s", entry.get("SessionId"), exc)
            continue
        if session is not None:
            found.append(session)
    return found
