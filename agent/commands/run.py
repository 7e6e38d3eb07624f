"""`terminal-guard run`: the service in the foreground (or under the Windows SCM)."""

from __future__ import annotations

import logging
import threading

from agent.config import AgentConfig
from agent.keystore import Keystore, KeystoreUnavailable, open_keystore
from agent.logs import setup_logging
from agent.platform import current_platform
from agent.service import Service

log = logging.getLogger(__name__)


def run_service(config: AgentConfig) -> int:
    setup_logging(config.log, console=False)
    platform = current_platform()
    keystore: Keystore | None
    try:
        keystore = open_keystore(config.keystore, config_file=config.source)
    except KeystoreUnavailable as exc:
        # Detection still runs and spools; only delivery waits for a usable keystore.
        log.error("keystore unavailable, events are kept in the spool: %s", exc)
        keystore = None
    service = Service(config, platform=platform, keystore=keystore)

    def main(stop: threading.Event) -> int:
        return service.run(stop)

    return platform.run_service(main)
