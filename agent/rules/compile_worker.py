"""`python -m agent.rules.compile_worker`: compile rule texts in a throw-away process.

pySigma and PyYAML cost the agent service several MB of RSS that would stay after the rules are
compiled, so the service (isolated.py) starts this worker instead, and only the compiled JSON
comes back. Protocol, one JSON document each way (ASCII, so any text survives the pipe):

    stdin   {"format": 1, "texts": [["<name>", "<yaml text>"], ...]}
    stdout  {"format": 1, "ruleset": <compiled rule set, see codec.py>,
             "errors": [{"file": ..., "field": ..., "message": ...}, ...]}

Exit status 0 when the answer was written (bad rules are errors in the answer, not a failure);
2 with a message on stderr when the request itself is malformed.
"""

from __future__ import annotations

import json
import sys
from typing import Any, BinaryIO, TextIO

from agent.rules.codec import FORMAT, CompiledFormatError, dump_errors, expect_mapping
from agent.rules.engine import RuleSet

EXIT_OK, EXIT_BAD_REQUEST = 0, 2


def read_request(data: bytes) -> list[tuple[str, str]]:
    """The (name, text) pairs of a request; raises ValueError naming what is wrong."""
    request = expect_mapping(json.loads(data), "request", ("format", "texts"))
    if type(request["format"]) is not int or request["format"] != FORMAT:
        raise CompiledFormatError("request.format", f"expected {FORMAT}, got {request['format']!r}")
    texts = request["texts"]
    if not isinstance(texts, list):
        raise CompiledFormatError("request.texts", "expected a list of [name, text] pairs")
    pairs = []
    for index, pair in enumerate(texts):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
            raise CompiledFormatError(f"request.texts[{index}]", "expected a [name, text] pair of strings")
        pairs.append((pair[0], pair[1]))
    return pairs


def compile_answer(texts: list[tuple[str, str]]) -> dict[str, Any]:
    ruleset, errors = RuleSet.from_texts(texts)
    return {"format": FORMAT, "ruleset": ruleset.to_compiled(), "errors": dump_errors(errors)}


def main(stdin: BinaryIO | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout
    stderr = stderr if stderr is not None else sys.stderr
    try:
        texts = read_request(stdin.read())
    except (ValueError, RecursionError) as exc:
        print(f"compile worker: malformed request: {exc}", file=stderr)
        return EXIT_BAD_REQUEST
    stdout.write(json.dumps(compile_answer(texts), ensure_ascii=True, allow_nan=False, separators=(",", ":")))
    stdout.flush()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
