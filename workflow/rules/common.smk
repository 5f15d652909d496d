# Configuration, validated once at start-up, and every input function the rules use.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from filterlens import config as cfg
from filterlens.codedigest import code_digest
from filterlens.describe import weights_record, weights_text

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
IMG_SIZE = list(cfg.img_size(config))
ACTIVATIONS = "results/{model}/{image}/activations"
RUN_DIR = "results/{model}/{image}/{run}"
SUMMARY_DIR = "results/{model}/{image}"
PAGE_DIR = "results/report/{model}/{image}"
COMPARE = cfg.resolve_compare(config, IMAGES)
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


def run_setting(key):
    """Input function: one rendering setting of the run named by the wildcards."""

    def get(wildcards):
        return RUNS[wildcards.run][key]

    return get


def image_file(wildcards):
    return IMAGES[wildcards.image]


def weights_input(wildcards):
    if config["weights"] == "imagenet":
        return f"resources/weights/{wildcards.model}.imagenet.sha256"
    if config["weights"] == "random":
        return []
    return config["weights"]


def checksums_file():
    """Known full SHA-256 sums of checkpoints: the project's file unless the config names one."""
    return config["weights_checksums"] or workflow.source_path(
        "../checksums/weights.sha256"
    )


def palette_file(wildcards):
    return f"resources/palettes/{RUNS[wildcards.run]['cmap']}.npy"


def selected_layers(wildcards):
    """The layers extraction saved, in network order (known once the checkpoint has run)."""
    from filterlens.activations import layer_names

    maps = checkpoints.extract_activations.get(
        model=wildcards.model, image=wildcards.image
    )
    return layer_names(maps.output.maps)


def frame_dirs(wildcards):
    run_dir = RUN_DIR.format(**wildcards)
    return [f"{run_dir}/frames/{layer}" for layer in selected_layers(wildcards)]


def video_file(wildcards):
    """The run's video, or nothing when save_video is off."""
    settings = RUNS[wildcards.run]
    if not settings["save_video"]:
        return []
    return f"{RUN_DIR.format(**wildcards)}/{settings['video_filename']}"


def run_outputs(model, image, run):
    run_dir = RUN_DIR.format(model=model, image=image, run=run)
    return [
        f"{run_dir}/frames.tsv",
        f"{run_dir}/activation_stats.txt",
        f"{run_dir}/activation_stats.tsv",
        f"{run_dir}/MANIFEST.sha256",
    ]


def all_outputs():
    return [
        path
        for model in config["models"]
        for image in IMAGES
        for run in RUNS
        for path in run_outputs(model, image, run)
    ] + report_outputs()


def extract_gpus(wildcards):
    """A GPU is requested only for device: cuda; auto takes one when the node has it."""
    return 1 if config["device"] == "cuda" else 0


def extract_mem_mb(wildcards, attempt):
    """Model weights plus every activation at img_size, with room to spare."""
    pixels = IMG_SIZE[0] * IMG_SIZE[1]
    return 1500 + pixels * 4 * 64 * 6 // 1_000_000 * attempt


def manifest_data(wildcards):
    """A run's data outputs besides frames and activations: statistics, index and video."""
    run_dir = RUN_DIR.format(**wildcards)
    names = ("activation_stats.txt", "activation_stats.tsv", "frames.tsv")
    video = video_file(wildcards)
    return [f"{run_dir}/{name}" for name in names] + ([video] if video else [])


def run_settings(wildcards):
    return RUNS[wildcards.run]


def config_for_provenance(wildcards):
    """The resolved configuration as it applies to this model and image: adding an image, a
    model or a run leaves the other runs' provenance, and so their jobs, as they are."""
    skip = ("runs", "images", "models", "top_k", "compare")  # the last two: report only
    own = {"model": wildcards.model, "image": IMAGES[wildcards.image]}
    return {key: value for key, value in config.items() if key not in skip} | own


def report_outputs():
    pages = [
        PAGE_DIR.format(model=model, image=image)
        for model in config["models"]
        for image in IMAGES
    ]
    return pages + [f"results/compare/{name}" for name in COMPARE]


def run_files(name):
    """Input function: the file or folder `name` of every run of the model and image, in run order."""

    def get(wildcards):
        return [f"{RUN_DIR.format(run=run, **wildcards)}/{name}" for run in RUNS]

    return get


def report_videos(wildcards):
    """The runs' videos, marked for the report, which offers them for download."""
    videos = []
    for run, settings in RUNS.items():
        if settings["save_video"]:
            name = settings["video_filename"]
            videos.append(report(
                f"{RUN_DIR.format(run=run, **wildcards)}/{name}",
                caption=VIDEO_CAPTION,
                category=f"{wildcards.model} · {wildcards.image}",
                subcategory="5. Videos",
                labels={"run": run, "file": name},
            ))  # fmt: skip
    return videos


def compare_folder(side):
    """Input function: the activation folder of side a or b of the comparison named by the wildcards."""

    def get(wildcards):
        pair = COMPARE[wildcards.name][side]
        return ACTIVATIONS.format(model=pair["model"], image=pair["image"])

    return get


def compare_pair(wildcards):
    return COMPARE[wildcards.name]
