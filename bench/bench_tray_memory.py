"""Tray memory while it polls a real local channel: RSS and USS, against a bare Qt application
started the same way in the same run (the baseline). Issue 6 target: tray RSS <= 80 MB.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_tray_memory.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.localchannel.server import LocalChannelServer  # noqa: E402

BARE_QT = "from PySide6.QtWidgets import QApplication, QLabel; import time\n" \
          "app = QApplication([]); label = QLabel('x'); label.show(); app.processEvents(); time.sleep(60)"


def memory(pid: int) -> dict[str, float]:
    info = psutil.Process(pid).memory_full_info()
    return {"rss_mb": info.rss / 2**20, "uss_mb": info.uss / 2**20}


def main() -> int:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    with tempfile.TemporaryDirectory() as tmp:
        status = {"enrolled": True, "device_id": "d", "outlet_id": "o", "hq_url": "https://hq", "hq_reachable": True,
                  "last_heartbeat": time.time(), "spool_depth": 0, "policy_version": 1, "staff": None,
                  "revoked": False, "agent_version": "bench", "attention": []}
        server = LocalChannelServer(str(Path(tmp) / "agent.sock"), {"status": lambda args: status})
        server.start()
        tray = subprocess.Popen([sys.executable, "-m", "gui.tray", "--address", str(Path(tmp) / "agent.sock"),
                                 "--poll-interval", "0.5"], env={**env, "XDG_RUNTIME_DIR": tmp},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        bare = subprocess.Popen([sys.executable, "-c", BARE_QT], env=env)
        try:
            time.sleep(8)
            measured, baseline = memory(tray.pid), memory(bare.pid)
        finally:
            tray.terminate()
            bare.kill()
            server.stop()
    ratio = measured["rss_mb"] / baseline["rss_mb"]
    print(f"tray: RSS {measured['rss_mb']:.1f} MB (USS {measured['uss_mb']:.1f} MB)")
    print(f"bare Qt app: RSS {baseline['rss_mb']:.1f} MB (USS {baseline['uss_mb']:.1f} MB)")
    print(f"ratio: tray RSS is {ratio:.2f}x a bare Qt application")
    print(json.dumps({"bench": "tray_memory", "tray": measured, "baseline": baseline, "rss_ratio": round(ratio, 2),
                      "target_met": measured["rss_mb"] <= 80}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
