"""This PC's enrollment record: which HQ, which device id, which keys to trust.

The device's private key lives in the keystore; this file holds only public facts and is
written atomically so a crash never leaves half an enrollment.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

ENROLLMENT_FILE = "enrollment.json"
CA_FILE = "hq-ca.pem"


class EnrollmentError(RuntimeError):
    pass


@dataclass(frozen=True)
class Enrollment:
    device_id: str
    outlet_id: str
    hq_url: str
    ca_file: str | None
    policy_public_key: str
    enrolled_at: float

    @staticmethod
    def path(state_dir: Path) -> Path:
        return state_dir / ENROLLMENT_FILE

    @classmethod
    def load(cls, state_dir: Path) -> Enrollment | None:
        path = cls.path(state_dir)
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text("utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise EnrollmentError(f"{path}: unreadable enrollment record ({exc}); re-enroll with --force") from exc

    def save(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = self.path(state_dir)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2), "utf-8")
        os.replace(tmp, path)

    @classmethod
    def remove(cls, state_dir: Path) -> None:
        cls.path(state_dir).unlink(missing_ok=True)
