"""Measure the receptive field of every selected layer of a model at img_size (rule
measure_fields): what part of the input each unit of a layer sees, for the image sets' crops."""

import logging

from filterlens.jobs import run_job

log = logging.getLogger("filterlens")


def main(smk):
    from filterlens import receptive  # noqa: PLC0415
    from filterlens.extraction import receptive_fields  # noqa: PLC0415 - imports torch

    fields = receptive_fields(smk.params.settings)
    receptive.write_table(smk.output.fields, fields)
    for field in fields:
        log.info("%s: %sx%s at stride %sx%s%s", field.layer, *field.size, *field.stride,
                 " (the whole image)" if field.whole else "")  # fmt: skip


run_job(main, snakemake)  # noqa: F821 - injected by Snakemake
