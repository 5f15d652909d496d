# filterlens: what every filter of a CNN does with an image.
# Table of contents; the steps live in workflow/rules/, the code in workflow/scripts/filterlens/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/extract.smk"
include: "workflow/rules/normalize.smk"
include: "workflow/rules/render.smk"
include: "workflow/rules/finish.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/sets.smk"


# Downloads, and steps too small to be worth a cluster submission, run where Snakemake runs.
localrules:
    all,
    fetch_weights,
    make_palette,


rule all:
    default_target: True
    input:
        all_outputs(),
