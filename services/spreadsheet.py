"""Every XLSX file the bot writes starts here: text is written as text, always.

xlsxwriter's `write()` and `write_row()` turn a string that starts with `=` into a live
formula and one that looks like a URL into a link; a place's item name, a rider's
description or a payee's name must never become either in the file an office opens.
"""

from __future__ import annotations

from typing import IO, Any

import xlsxwriter

SAFE_TEXT = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}


def workbook(out: IO[bytes], **options: Any) -> xlsxwriter.Workbook:
    """An in-memory workbook (unless `options` say otherwise) that writes text as text."""
    return xlsxwriter.Workbook(out, {"in_memory": True, **options, **SAFE_TEXT})
