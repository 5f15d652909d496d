"""Benchmark: the workflow against one-process references, side by side in one invocation.

Figures (each measured in this invocation, on this machine; random weights, seed 0: speed does
not depend on the weights):

  set     ResNet18 at 224x224 on 8 images, the whole default target (frames, AVI, statistics,
          manifests, contact sheets, top filters, previews, pages), against a one-process
          reference that loads the model once and writes the same frames as palette PNGs; first
          without the image set's products (image_sets: {}), then what adding the default set
          `all` costs (receptive fields, top images, pictures, explorer)
  single  ResNet18 at 600x600 on one image, the whole default target, against the same
          one-process reference at that size (without, then with, the set of that one image),
          and against a naive matplotlib script (one figure per frame, then the AVI)
  plan    `snakemake -n` over 1,000 small images in a fresh folder, and over 100 images after a
          completed run
  memory  peak memory of every job of `single` and of extracting one full default batch
          (batch_size images) at 600x600
  slurm   Slurm submissions for 100 images and one run, from the DAG and the Slurm profile's
          grouping
  sets    ResNet18 at 224x224 on 32 images: what the image set's steps (receptive fields, top
          images, pictures, explorer) add to the rest of the workflow, in job-seconds

    python tools/benchmark.py [--only set,single,plan,memory,slurm] [--cores 2] [--skip-naive]
                              [--source DIR]     # time another checkout's workflow (before/after)
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from filterlens.checkout import copy_workflow  # noqa: E402

SAMPLES = ("resources/images/chelsea.png", "resources/images/coffee.png")
EXTRAS = ("sheets", "preview", "write_page", "plot")  # the report extras, by part

# One process: load the model once, then per image every conv layer's filters as min-max scaled,
# nearest-upsampled palette PNGs (zlib level 1), the way a careful single script would.
REFERENCE = r'''
import sys, time
from pathlib import Path
import numpy as np, torch, torchvision
from PIL import Image
torch.set_num_threads(1)
size, out, images = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
torch.manual_seed(0)
model = torchvision.models.get_model("resnet18", weights=None).eval()
lut = (np.array([[0.267, 0.005, 0.329]] * 256) * 255).astype(np.uint8).tobytes()  # any palette
mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
maps = {}
for name, m in model.named_modules():
    if isinstance(m, torch.nn.Conv2d):
        m.register_forward_hook(lambda mod, i, o, name=name: maps.__setitem__(name, o[0].numpy().copy()))
frames = 0
for n, path in enumerate(images):
    img = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)
    with torch.inference_mode():
        model(((x - mean[:, None, None]) / std[:, None, None]).unsqueeze(0))
    for name, a in maps.items():
        folder = out / str(n) / name
        folder.mkdir(parents=True, exist_ok=True)
        h, w = a.shape[1:]
        rows = np.minimum(((np.arange(size) + 0.5) * h / size).astype(np.intp), h - 1)
        cols = np.minimum(((np.arange(size) + 0.5) * w / size).astype(np.intp), w - 1)
        for f in range(a.shape[0]):
            lo, hi = a[f].min(), a[f].max()
            unit = (a[f] - lo) / (hi - lo) if hi > lo else np.zeros_like(a[f])
            levels = np.floor(unit * 255 + 0.5).astype(np.uint8).take(rows, 0).take(cols, 1)
            frame = Image.fromarray(levels, mode="P")
            frame.putpalette(lut)
            frame.save(folder / f"{f:04d}.png", compress_level=1)
            frames += 1
print(frames)
'''

NAIVE = r'''
import sys, subprocess
from pathlib import Path
import numpy as np, torch, torchvision
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from PIL import Image
import imageio_ffmpeg

image_path, size, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
torch.manual_seed(0)
model = torchvision.models.get_model("resnet18", weights=None).eval()
img = Image.open(image_path).convert("RGB").resize((size, size), Image.BILINEAR)
x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)
mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
x = ((x - mean[:, None, None]) / std[:, None, None]).unsqueeze(0)
maps = {}
for name, m in model.named_modules():
    if isinstance(m, torch.nn.Conv2d):
        m.register_forward_hook(lambda mod, i, o, name=name: maps.__setitem__(name, o[0].clone().numpy()))
with torch.no_grad():
    model(x)
frames, lines = [], []
for name, a in maps.items():
    (out / name).mkdir(parents=True, exist_ok=True)
    for f in range(a.shape[0]):
        fig = plt.figure(figsize=(size / 100, size / 100), dpi=100)
        ax = fig.add_axes([0, 0, 1, 1]); ax.axis("off")
        ax.imshow(a[f], cmap="viridis", interpolation="nearest", aspect="auto")
        path = out / name / f"{f:04d}.png"
        fig.savefig(path, dpi=100); plt.close(fig)
        frames.append(path)
        lines.append(f"{name} {f} min={a[f].min()} max={a[f].max()} mean={a[f].mean()} std={a[f].std()}")
(out / "activation_stats.txt").write_text("\n".join(lines) + "\n")
listing = out / "frames.txt"
listing.write_text("".join(f"file '{p}'\n" for p in frames))
subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "concat", "-safe", "0",
                "-r", "10", "-i", str(listing), "-c:v", "png", "-y", str(out / "activations.avi")], check=True)
print(len(frames))
'''


def run_timed(command: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return elapsed, result.stdout


def make_images(folder: Path, count: int, size: tuple[int, int] | None = None) -> list[Path]:
    """`count` different images made from the two samples: crops at varied offsets, flipped
    every other time (or, with `size`, small images of that size)."""
    from PIL import Image, ImageOps  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    sources = [Image.open(REPO / s).convert("RGB") for s in SAMPLES]
    made = []
    for i in range(count):
        src = sources[i % 2]
        dx, dy = (37 * i) % (src.width // 4), (23 * i) % (src.height // 4)
        image = src.crop((dx, dy, dx + src.width * 3 // 4, dy + src.height * 3 // 4))
        if (i // 2) % 2:
            image = ImageOps.mirror(image)
        if size:
            image = image.resize(size, Image.Resampling.BILINEAR)
        path = folder / f"img{i:04d}.png"
        image.save(path, compress_level=1)
        made.append(path)
    return made


class Workflow:
    """A scratch copy of the workflow with its own config, run through Snakemake."""

    def __init__(self, root: Path, source: Path, cores: int, **config):
        self.root = copy_workflow(root, source)
        self.cores = cores
        self.config = {"models": ["resnet18"], "weights": "random", "runs": {}} | config
        self.configure()

    def configure(self, **changes) -> None:
        """Write bench.yaml: the config so far, with `changes` (a value None drops the key)."""
        self.config = {k: v for k, v in (self.config | changes).items() if v is not None}
        (self.root / "bench.yaml").write_text(yaml.safe_dump(self.config, sort_keys=False))

    def command(self, *args: str, targets: list[str] = ()) -> list[str]:
        # targets after "--": --configfile and --quiet would take them as their own values
        return [sys.executable, "-m", "snakemake", "--cores", str(self.cores), "--quiet",
                "--configfile", "bench.yaml", *args, "--", *targets]  # fmt: skip

    def run(self, *args: str, targets: list[str] = ()) -> float:
        return run_timed(self.command(*args, targets=targets), self.root)[0]

    def stages(self) -> dict[str, list[float]]:
        """rule (batch rules as extract_activations) -> [jobs, job-seconds, peak MB]."""
        stages: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
        for tsv in (self.root / "benchmarks").rglob("*.tsv"):
            rule = tsv.relative_to(self.root / "benchmarks").parts[0]
            with open(tsv) as fh:
                row = next(csv.DictReader(fh, delimiter="\t"))
            stage = stages[rule]
            stage[0] += 1
            stage[1] += float(row["s"])
            stage[2] = max(stage[2], float(row["max_rss"]) if row["max_rss"] != "NA" else 0.0)
        return dict(stages)

    def parts(self) -> dict[str, float]:
        """Processor seconds of the parts of the merged jobs, as their logs state them."""
        parts: dict[str, float] = defaultdict(float)
        for log in (self.root / "logs/render_frames").rglob("*.log"):
            found = re.search(r"processor time: (.*)$", log.read_text(), re.M)
            for part, seconds in re.findall(r"(\w+) ([\d.]+) s", found.group(1) if found else ""):
                parts[part] += float(seconds)
        for log in (self.root / "logs/extract_activations").rglob("*.log"):
            parts["plot"] += sum(map(float, re.findall(r"plot ([\d.]+) s", log.read_text())))
        return dict(parts)

    def frames(self) -> int:
        return sum(1 for _ in (self.root / "results").rglob("frames/*/*.png"))


def print_stages(wf: Workflow, frames: int) -> dict[str, list[float]]:
    stages = wf.stages()
    print("  stage                jobs  job-seconds  peak MB")
    for rule, (jobs, seconds, rss) in sorted(stages.items(), key=lambda kv: -kv[1][1]):
        print(f"  {rule:20s} {jobs:4d} {seconds:12.2f} {rss:8.0f}")
    parts = wf.parts()
    render = stages.get("render_frames", [0, 0.0, 0])[1]
    extras = parts.get("sheets", 0) + parts.get("preview", 0) + parts.get("plot", 0)
    extras += stages.get("write_page", [0, 0.0, 0])[1]
    frame_s = parts.get("frames", 0.0)
    print(f"  render_frames, processor seconds: frames {frame_s:.2f}, contact sheets "
          f"{parts.get('sheets', 0):.2f}, preview {parts.get('preview', 0):.2f}; layer plots "
          f"(in extraction) {parts.get('plot', 0):.2f}")  # fmt: skip
    print(f"  report extras (sheets, preview, plots, pages): {extras:.2f} s against rendering "
          f"the frames {frame_s:.2f} s: {extras / max(frame_s, 1e-9):.2f} (target: at most 0.5)")
    print(f"  {frames} frames; render job-seconds {render:.2f}")
    return stages


def reference(images: list[Path], size: int, scratch: Path) -> float:
    out = scratch / f"reference-{size}"
    seconds, printed = run_timed(
        [sys.executable, "-c", REFERENCE, str(size), str(out), *map(str, images)], scratch
    )
    shutil.rmtree(out, ignore_errors=True)
    return seconds


def without_sets(source: Path) -> dict:
    """Config for the workflow without the image set's products (where the source has them)."""
    has_sets = "image_sets" in (source / "workflow/schemas/config.schema.yaml").read_text()
    return {"image_sets": {}} if has_sets else {}


def add_sets(wf: Workflow, seconds: float, ref: float) -> None:
    """Run again with the default image set `all`: only the set's steps run."""
    if "image_sets" not in wf.config:
        return
    wf.configure(image_sets=None)  # the default: one set, all
    added = wf.run()
    print(f"with the default image set `all` added: +{added:.2f} s, whole default target "
          f"{seconds + added:.2f} s: ratio {(seconds + added) / ref:.2f}")


def figure_set(args, scratch: Path) -> None:
    print("== 1. image set: ResNet18, 224x224, 8 images, the whole default target")
    images = make_images(scratch / "set-images", 8)
    wf = Workflow(scratch / "set", args.source, args.cores, images={"set": str(images[0].parent)},
                  img_size=224, **without_sets(args.source))  # fmt: skip
    seconds = wf.run()
    ref = reference(images, 224, scratch)
    frames = wf.frames()
    print(f"without the image set's products: workflow (--cores {args.cores}): {seconds:8.2f} s   "
          f"one-process reference (1 core): {ref:8.2f} s   ratio {seconds / ref:.2f} (target: at "
          f"most 2, must: 3)")  # fmt: skip
    print_stages(wf, frames)
    add_sets(wf, seconds, ref)


def figure_single(args, scratch: Path) -> None:
    print("== 2. one image: ResNet18, 600x600, the whole default target")
    wf = Workflow(scratch / "single", args.source, args.cores, img_size=600,
                  **without_sets(args.source))  # fmt: skip
    seconds = wf.run()
    ref = reference([REPO / SAMPLES[0]], 600, scratch)
    frames = wf.frames()
    print(f"without the image set's products: workflow (--cores {args.cores}): {seconds:8.2f} s   "
          f"one-process reference (1 core): {ref:8.2f} s   ratio {seconds / ref:.2f} (target: at "
          f"most 2)")  # fmt: skip
    stages = print_stages(wf, frames)
    add_sets(wf, seconds, ref)
    peak = max([s[2] for s in stages.values()] + [0])
    print(f"  peak memory of any job: {peak:.0f} MB")
    if not args.skip_naive:
        out = scratch / "naive"
        out.mkdir()
        naive, _ = run_timed([sys.executable, "-c", NAIVE, str(REPO / SAMPLES[0]), "600", str(out)],
                             scratch)  # fmt: skip
        print(f"  naive matplotlib script: {naive:.2f} s; workflow speed-up {naive / seconds:.1f}x")


def figure_plan(args, scratch: Path) -> None:
    print("== 3. planning: snakemake -n")
    small = make_images(scratch / "plan-images", 1000, size=(64, 48))
    fresh = Workflow(scratch / "plan-fresh", args.source, args.cores,
                     images={"set": str(small[0].parent)}, img_size=[64, 48])  # fmt: skip
    seconds = fresh.run("-n")
    print(f"1,000 images, fresh folder: {seconds:.2f} s (target: under 20 s)")
    hundred = scratch / "plan-hundred"
    hundred.mkdir()
    for path in small[:100]:
        shutil.copy2(path, hundred / path.name)
    done = Workflow(scratch / "plan-done", args.source, args.cores, images={"set": str(hundred)},
                    img_size=[64, 48], layers=["conv1", "layer1.0.conv1"], max_filters_per_layer=4)
    built = done.run()
    seconds = done.run("-n")
    print(f"100 images after a completed run (made in {built:.0f} s): {seconds:.2f} s (target: "
          f"under 10 s)")


def figure_memory(args, scratch: Path) -> None:
    print("== 4. memory: extracting one full default batch at 600x600")
    from filterlens import config as cfg  # noqa: PLC0415

    batch = cfg.load_yaml(REPO / "workflow/schemas/config.schema.yaml")["properties"]["batch_size"]
    size = batch["default"]
    images = make_images(scratch / "batch-images", size)
    wf = Workflow(scratch / "batch", args.source, args.cores, images={"set": str(images[0].parent)},
                  img_size=600)  # fmt: skip
    targets = [f"results/resnet18/set_{p.stem}/layer_stats.png" for p in images]
    seconds = wf.run(targets=targets)
    (jobs, job_s, rss), = [v for k, v in wf.stages().items() if k == "extract_activations"]
    print(f"{size} images in {int(jobs)} extraction job(s), {seconds:.1f} s: peak {rss:.0f} MB "
          f"(target: under 2,000 MB; every job of figure 2 is listed there)")


def figure_slurm(args, scratch: Path) -> None:
    print("== 5. Slurm submissions for 100 images and one run")
    images = make_images(scratch / "slurm-images", 100, size=(64, 48))
    wf = Workflow(scratch / "slurm", args.source, args.cores, images={"set": str(images[0].parent)},
                  img_size=[64, 48])  # fmt: skip
    # A dry run through the Slurm profile lists each submission: a group job, or a rule's job.
    command = [c for c in wf.command("-n", "--profile", "profiles/slurm") if c != "--quiet"]
    _, out = run_timed(command, wf.root)
    groups = len(re.findall(r"^\S.*Group job ", out, re.M))
    alone = [r for r in re.findall(r"^rule (\w+):$", out, re.M) if r not in LOCAL_RULES]
    batches = sum(r.startswith("extract_activations_") for r in alone)
    print(f"{len(alone) + groups} submissions: {batches} extraction batches, "
          f"{len(alone) - batches} other jobs and {groups} group jobs of the images' later steps")


LOCAL_RULES = ("all", "fetch_weights", "make_palette")
SET_RULES = ("measure_fields", "rank_set", "draw_set", "write_explorer")


def figure_sets(args, scratch: Path) -> None:
    print("== 6. image set products: ResNet18, 224x224, 32 images")
    images = make_images(scratch / "sets-images", 32)
    wf = Workflow(scratch / "sets", args.source, args.cores, images={"set": str(images[0].parent)},
                  img_size=224)  # fmt: skip
    seconds = wf.run()
    stages = wf.stages()
    sets = sum(v[1] for k, v in stages.items() if k in SET_RULES)
    rest = sum(v[1] for k, v in stages.items() if k not in SET_RULES)
    print(f"whole run {seconds:.1f} s; job-seconds: set steps {sets:.1f}, the rest {rest:.1f}: "
          f"+{100 * sets / rest:.0f}% (target: at most 25%)")
    for rule in SET_RULES:
        jobs, job_s, rss = stages.get(rule, (0, 0.0, 0.0))
        print(f"  {rule:16s} {job_s:8.2f} s  peak {rss:6.0f} MB")
    explorer = wf.root / "results/resnet18/_sets/all/explorer"
    size = sum(f.stat().st_size for f in explorer.rglob("*") if f.is_file())
    print(f"  explorer: {size / 1e6:.0f} MB on disk")


FIGURES = {"set": figure_set, "single": figure_single, "plan": figure_plan,
           "memory": figure_memory, "slurm": figure_slurm, "sets": figure_sets}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--only", default=",".join(FIGURES), help="figures, comma-separated")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--skip-naive", action="store_true", help="no matplotlib reference")
    parser.add_argument("--source", type=Path, default=REPO, help="the checkout whose workflow runs")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="filterlens-bench-"))
    try:
        for name in args.only.split(","):
            FIGURES[name](args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
