"""ZIP archives of exports: every member read in place (never extracted to disk), bounded.

Depth counts archives: a file inside a ZIP is at depth 1, inside a ZIP inside a ZIP at depth 2;
an archive found deeper is skipped. Encrypted members are skipped with the reason. One member
that cannot be read does not hide the others.
"""

from __future__ import annotations

import zipfile

from agent.exports.formats import ReadContext, read_any
from agent.exports.limits import Unreadable, safe_reason
from agent.exports.zip_guard import check_archive, is_encrypted, member_name


def read_archive(archive: zipfile.ZipFile, name: str, depth: int, context: ReadContext) -> None:
    if depth >= context.limits.max_zip_depth:
        raise Unreadable(f"archive nested deeper than {context.limits.max_zip_depth} levels")
    check_archive(archive, "archive", context.limits, context.budget)
    for info in archive.infolist():
        if info.is_dir():
            continue
        inner = f"{name}!{member_name(info)}"
        if is_encrypted(info):
            context.skipped.append((inner, "encrypted member: cannot be read without the password"))
            continue
        try:
            with archive.open(info) as member:
                read_any(member, inner, info.file_size, context, depth + 1)  # type: ignore[arg-type]
        except Unreadable as exc:
            context.skipped.append((inner, exc.reason))
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
            context.skipped.append((inner, safe_reason("archive member unreadable", exc)))
