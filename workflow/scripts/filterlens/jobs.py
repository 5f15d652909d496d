"""What every workflow script shares: logging into the rule's log file and clear failures.

An error raised on purpose by the package (bad image, bad weights, bad layer pattern, ...) ends the
job with its message alone; anything else keeps its traceback for a bug report.
"""

from __future__ import annotations

import logging
import sys
import time


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
        if type(err).__module__.startswith("filterlens"):
            log.error("%s", err)
            print(f"Error in rule {snakemake.rule}: {err}", file=sys.stderr)
        else:
            log.exception("unexpected error")
        sys.exit(1)
    log.info("done in %.2f s", time.perf_counter() - started)
