"""What every workflow script shares: logging into the rule's log file and clear failures.

An error raised on purpose by the package (bad image, bad weights, bad layer pattern, ...) ends the
job with its message alone; anything else keeps its traceback for a bug report.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sys
import time
from pathlib import PurePath


def run_job(main, snakemake) -> None:
    """Call `main(snakemake)` with logging sent to the rule's log file."""
    handlers = [logging.FileHandler(snakemake.log[0], mode="w")] if snakemake.log else []
    handlers = handlers or [logging.StreamHandler(sys.stderr)]
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers,
        force=True,
    )  # fmt: skip
    log = logging.getLogger("filterlens")
    started = time.perf_counter()
    try:
        main(snakemake)
    except Exception as err:  # noqa: BLE001 - reported, then the job fails
        message = clean_message(err, list(snakemake.output))
        if message:
            log.error("%s", message)
            print(f"Error in rule {snakemake.rule}: {message}", file=sys.stderr)
        else:
            log.exception("unexpected error")
        sys.exit(1)
    log.info("done in %.2f s", time.perf_counter() - started)


# Storage that ran out: not a bug, and every package write is atomic, so nothing half-written stays.
_STORAGE_ERRORS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file size limit exceeded",
}


def clean_message(err: Exception, outputs: list[str] = ()) -> str | None:
    """The message to show for an expected failure, or None for a bug (keep its traceback)."""
    if type(err).__module__.startswith("filterlens"):
        return str(err)
    if isinstance(err, OSError) and err.errno in _STORAGE_ERRORS:
        where = final_name(err.filename) if err.filename else ", ".join(map(str, outputs))
        return (
            f"{_STORAGE_ERRORS[err.errno]}{f' while writing {where}' if where else ''} "
            f"({errno.errorcode[err.errno]}). The unfinished output of this step was removed. "
            "Free some space (or move results/ to a larger disk) and run the workflow again."
        )
    return None


def final_name(path) -> str:
    """The output a hidden temporary path stands for (filterlens.files writes every output under
    .<name>.partial or .<name>.<hex>.tmp beside it): what a message should name."""
    parts = []
    for part in PurePath(os.fsdecode(path)).parts:
        if match := _TEMPORARY.fullmatch(part):
            part = match.group(1)
        parts.append(part)
    return str(PurePath(*parts))


_TEMPORARY = re.compile(r"\.(.+?)(?:\.partial|\.[0-9a-f]{8}\.tmp)")
