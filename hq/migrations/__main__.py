"""python -m hq.migrations revision -m "what changed": a new revision from the models' differences.

Autogenerates against a scratch SQLite database migrated to the current head, numbers the
revision after the newest one, and writes it to hq/migrations/versions/. Read it before
committing: Alembic cannot see renames, and the types of both engines must be checked.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

import hq
from hq.migrations import alembic_config, head_revision


def _import_everything() -> None:
    for module in pkgutil.walk_packages(hq.__path__, "hq."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hq.migrations", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    revision = sub.add_parser("revision", help="autogenerate a new revision")
    revision.add_argument("-m", "--message", required=True)
    args = parser.parse_args(argv)
    _import_everything()
    head = head_revision()
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{Path(scratch) / 'scratch.sqlite3'}")
        with engine.begin() as connection:
            config = alembic_config(connection)
            command.upgrade(config, "head")
            script = command.revision(config, message=args.message, autogenerate=True,
                                      rev_id=f"{int(head) + 1:04d}" if head.isdigit() else None)
        engine.dispose()
    path = getattr(script, "path", None)
    print(f"wrote {path}; review it, then run the schema test (tests/hq/migrations)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
