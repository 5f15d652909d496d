# Configuration, validated once at start-up; the extraction plan; the input functions the rules
# share (a function used by one rule only stands above that rule).
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from filterlens import activations, batches, freshness, images, imagesets, paths
from filterlens import config as cfg
from filterlens.codedigest import code_digest
from filterlens.describe import weights_record, weights_text
from filterlens.paths import ACTIVATIONS, IMAGE_DIR, PAGE_DIR, RUN_DIR

SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"

cfg.check_expansion(config, workflow.configfiles)
cfg.replace_mappings(
    config,
    [cfg.load_yaml(path) for path in workflow.config_settings.configfiles]
    + [dict(workflow.config_settings.config)],
)
config.update(
    cfg.validate(
        config, cfg.load_schema(workflow.source_path("../schemas/config.schema.yaml"))
    )
)
cfg.check(config)
IMAGES = cfg.expand_images(config["images"])
RUNS = cfg.resolve_runs(config)
COMPARE = cfg.resolve_compare(config, IMAGES)
SETS = cfg.resolve_sets(config, IMAGES)
WEIGHTS_NOTE = weights_text(weights_record(config))
VIDEO_CAPTION = workflow.current_basedir.join("../report/video.rst")

if config["container"]:

    container: config["container"]


wildcard_constraints:
    model=r"[a-z][a-z0-9_]*",
    image=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    run=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    layer=r"[^/]+",
    cmap=r"[A-Za-z0-9_.-]+",


def script_code(name):
    """Digest of a script and the package modules it imports: edits there re-run the step."""
    return code_digest(SCRIPTS / f"{name}.py", SCRIPTS / "filterlens")


# --- extraction: which images need it, in batches (filterlens.batches) ---------------------


def extraction_settings(model):
    return cfg.extraction_settings(config, model)


def extraction_outputs(model, image):
    """What an image's extraction makes: its activations folder, per-layer table and plot."""
    return {
        "maps": paths.activations(model, image),
        "table": paths.LAYER_TABLE.format(model=model, image=image),
        "plot": paths.LAYER_PLOT.format(model=model, image=image),
    }


def extraction_state(model, key, settings):
    """Why an image of `model` needs extraction (None when its outputs are current)."""

    def stale(image):
        outputs = extraction_outputs(model, image)
        why = activations.state(outputs["maps"], key, IMAGES[image], settings)
        if why is None and not all(
            Path(f).is_file() for f in (outputs["table"], outputs["plot"])
        ):
            why = "its layer statistics are missing"
        return why

    return stale


def plan_extraction():
    """The extraction batches with work to do; the images to extract, to check; and the
    outputs found stale on the way: (what, why, paths)."""
    planned, stale = [], {}
    for model in config["models"]:
        code = script_code("extract_activations")
        settings = extraction_settings(model)
        key = batches.extraction_key(settings, code)
        state = extraction_state(model, key, settings)
        found, reasons = batches.plan(model, IMAGES, config["batch_size"], state)
        planned += [(batch, key) for batch in found]
        stale.update({(model, image): why for image, why in reasons.items()})
    to_check = {image: IMAGES[image] for image in sorted({image for _, image in stale})}
    outdated = []
    for (model, image), why in stale.items():
        outputs = [
            f for f in extraction_outputs(model, image).values() if Path(f).exists()
        ]
        if outputs:
            outdated.append((paths.activations(model, image), why, outputs))
    return planned, to_check, outdated


def check_runs():
    """The outputs of every run that no longer are what the configuration would make
    (filterlens.freshness): (what, why, paths) each."""
    keys = {"normalize": cfg.NORMALIZATION_KEYS, "render": cfg.RENDER_KEYS,
            "finish": cfg.FINISH_KEYS}  # fmt: skip
    outdated = []
    for model in config["models"]:
        for image in IMAGES:
            for run, settings in RUNS.items():
                run_dir = paths.run_dir(model, image, run)
                if not Path(run_dir).is_dir():
                    continue
                found = freshness.run_state(run_dir, settings, config["top_k"], keys)
                if found:
                    step, why = found
                    video = (
                        settings["video_filename"] if settings["save_video"] else None
                    )
                    stale = freshness.stale_outputs(run_dir, step, video)
                    outdated.append((run_dir, why, stale))
    return outdated


# Only the command Snakemake was started with (not its cluster jobs, which plan the same batches)
# checks the images to extract, all at once (their headers only: no decoding), and makes stale
# outputs look old, so that Snakemake re-makes them even where it has no record of them; for good
# only where the command runs the workflow (freshness.settle).
BATCHES, TO_CHECK, OUTDATED = plan_extraction()
if workflow.is_main_process:
    images.check_headers(TO_CHECK, config["max_image_pixels"])
    freshness.settle(OUTDATED + check_runs(), freshness.invocation(sys.argv[1:]))


def batch_outputs(batch, kind):
    """The `kind` outputs (maps, table or plot) of a batch's images, in batch order."""
    outputs = [extraction_outputs(batch.model, image)[kind] for image in batch.images]
    return [directory(f) for f in outputs] if kind == "maps" else outputs


def batch_images(batch):
    """image name -> source file, for the images of a batch."""
    return {image: IMAGES[image] for image in batch.images}


def weights_input(model):
    """The weights extraction loads: the verified download's record, a state-dict file, or none."""
    if config["weights"] == "imagenet":
        return [paths.WEIGHTS_RECORD.format(model=model)]
    if config["weights"] == "random":
        return []
    return [config["weights"]]


def extract_gpus(wildcards):
    """A GPU is requested only for device: cuda; auto takes one when the node has it."""
    return 1 if config["device"] == "cuda" else 0


def extract_mem_mb(wildcards, attempt):
    """Model weights plus one image's activations at img_size, with room to spare."""
    width, height = cfg.img_size(config)
    return (1500 + width * height * 4 * 64 * 6 // 1_000_000) * attempt


def checksums_file():
    """Known full SHA-256 sums of checkpoints: the project's file unless the config names one;
    relative, so that a project folder moved elsewhere re-runs nothing."""
    shipped = Path(workflow.basedir) / "workflow" / "checksums" / "weights.sha256"
    return config["weights_checksums"] or os.path.relpath(shipped)


# --- runs ---------------------------------------------------------------------------------


def normalization_settings(wildcards):
    """The normalization keys of the run named by the wildcards."""
    return {key: RUNS[wildcards.run][key] for key in cfg.NORMALIZATION_KEYS}


def runs_where(key):
    """A wildcard pattern matching the runs whose `key` is true (or none: a pattern never met)."""
    names = [run for run, settings in RUNS.items() if settings[key]]
    return "|".join(map(re.escape, names)) or "(?!)"


def runs_where_not(key):
    names = [run for run, settings in RUNS.items() if not settings[key]]
    return "|".join(map(re.escape, names)) or "(?!)"


def render_mem_mb(wildcards):
    width, height = cfg.img_size(config)
    return 1000 + width * height * 4 * 512 * 3 // 1_000_000


def all_outputs():
    """Every image's page and its runs' contract files, and the comparisons. Requesting the
    files, not only the page that needs them, makes Snakemake notice any one of them missing.
    """
    names = (
        "frames.tsv",
        "activation_stats.tsv",
        "activation_stats.txt",
        "MANIFEST.sha256",
    )
    return (
        [
            path
            for model in config["models"]
            for image in IMAGES
            for path in [PAGE_DIR.format(model=model, image=image)]
            + [
                f"{paths.run_dir(model, image, run)}/{name}"
                for run in RUNS
                for name in names
            ]
        ]
        + [f"results/compare/{name}" for name in COMPARE]
        + set_outputs()
    )


# --- rendering -----------------------------------------------------------------------------


def scales_of_run(wildcards):
    """The run's scales, and its equalization curves where it equalizes."""
    run_dir = RUN_DIR.format(**wildcards)
    files = {"scales": f"{run_dir}/scales.tsv"}
    if RUNS[wildcards.run]["use_hist_eq"]:
        files["equalization"] = f"{run_dir}/equalization.npz"
    return files


def palette_file(wildcards):
    return f"resources/palettes/{RUNS[wildcards.run]['cmap']}.npy"


def render_settings(wildcards):
    """The rendering keys of the run (normalization travels in scales.tsv)."""
    return {key: RUNS[wildcards.run][key] for key in cfg.RENDER_KEYS}


# --- finishing an image --------------------------------------------------------------------


def run_files(name):
    """Input function: the file or folder `name` of every run of the model and image, in run order."""

    def get(wildcards):
        return [f"{RUN_DIR.format(run=run, **wildcards)}/{name}" for run in RUNS]

    return get


def run_outputs(name):
    """Output patterns: the file `name` of every run, {model} and {image} left as wildcards."""
    return [f"{IMAGE_DIR}/{run}/{name}" for run in RUNS]


def video_outputs():
    """The runs' videos, marked for the report, which offers them for download."""
    videos = []
    for run, settings in RUNS.items():
        if settings["save_video"]:
            name = settings["video_filename"]
            videos.append(report(
                f"{IMAGE_DIR}/{run}/{name}",
                caption=VIDEO_CAPTION,
                category="{model} · {image}",
                subcategory="4. Videos",
                labels={"run": run, "file": name},
            ))  # fmt: skip
    return videos


def config_for_provenance(wildcards):
    """The resolved configuration as it applies to this model and image: adding an image, a
    model or a run leaves the other images' provenance, and so their jobs, as they are.
    """
    # runs: in run_settings; top_k, compare, sets: report only; batch_size: changes no output
    skip = (
        "runs",
        "images",
        "models",
        "top_k",
        "compare",
        "batch_size",
        "image_sets",
        "top_images",
        "explorer_max_images",
    )
    own = {"model": wildcards.model, "image": IMAGES[wildcards.image]}
    return {key: value for key, value in config.items() if key not in skip} | own


# --- comparisons ---------------------------------------------------------------------------


def compare_folder(side):
    """Input function: the activation folder of side a or b of the comparison named by the wildcards."""

    def get(wildcards):
        pair = COMPARE[wildcards.name][side]
        return ACTIVATIONS.format(model=pair["model"], image=pair["image"])

    return get


def compare_pair(wildcards):
    return COMPARE[wildcards.name]


# --- image sets ----------------------------------------------------------------------------


def set_outputs():
    """What each image set of each model ends in: its manifest (after the pictures) and explorer."""
    return [
        f"{imagesets.SET_DIR.format(model=model, set=name)}/{part}"
        for model in config["models"]
        for name in SETS
        for part in ("MANIFEST.sha256", "explorer")
    ]


def set_members(wildcards):
    return SETS[wildcards.set]


def set_activations(wildcards):
    """The activations folders of the set's images, in set order."""
    return [paths.activations(wildcards.model, image) for image in SETS[wildcards.set]]


def model_weights(wildcards):
    """The model's weights: what its receptive fields wait for (they do not depend on them, but a
    model whose weights fail makes nothing)."""
    return weights_input(wildcards.model)


def field_settings(wildcards):
    """What the receptive fields depend on: the architecture, the layers and img_size."""
    keys = ("model", "seed", "layers", "img_size")
    return {key: extraction_settings(wildcards.model)[key] for key in keys}


def set_config(wildcards):
    """The configuration a set's provenance records: what decides its outputs."""
    keys = ("weights", "seed", "layers", "img_size", "max_filters_per_layer", "construction",
            "preprocess", "top_images", "cmap")  # fmt: skip
    return {key: config[key] for key in keys} | {
        "images": {i: IMAGES[i] for i in SETS[wildcards.set]}
    }
