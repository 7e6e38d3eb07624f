"""`terminal-guard rules lint PATH ...`: print every rule problem with its file and field.

The problems are the command's output, so they go to stdout: one `file: field: message` line each
(or one JSON object per line with --json) and a closing summary. Exit status: 0 every rule loads,
1 some rule is invalid, 2 a path could not be read (missing, unreadable, no rule files).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from agent.rules.engine import lint_with_rules

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2


def run_lint(paths: Sequence[str], *, as_json: bool = False, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    ruleset, errors = lint_with_rules([Path(p) for p in paths])
    for error in errors:
        if as_json:
            print(json.dumps({"file": error.file, "field": error.field, "message": error.message},
                             ensure_ascii=False), file=out)
        else:
            print(error, file=out)
    files = len({e.file.split("#")[0] for e in errors})
    if as_json:
        print(json.dumps({"rules": len(ruleset), "errors": len(errors), "files_with_errors": files}), file=out)
    else:
        print(f"{len(ruleset)} rules OK, {len(errors)} errors in {files} files", file=out)
    out.flush()
    if any(e.field == "path" for e in errors):
        return EXIT_UNREADABLE
    return EXIT_INVALID if errors else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="terminal-guard rules lint",
                                     description="validate Sigma-compatible rule files")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="rule files or folders (*.yml, *.yaml)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    return run_lint(args.paths, as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
