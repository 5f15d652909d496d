"""Benchmark: the workflow against a naive single script producing the same outputs.

Runs, in one invocation and on the same machine, (1) the Snakemake workflow on ResNet18 at
600x600 (all 20 conv layers, 4,800 frames, the AVI, the statistics) in a scratch copy, and (2) a
naive reference written the way a single script would be: one matplotlib figure per frame, then
the AVI from the PNG files. Prints both wall times (the workflow's for the outputs the naive
script makes too; the report's contact sheets, preview and page are timed after it), their ratio, per-stage times and frames/s, and
the peak memory of any job. Random weights (seed 0): speed does not depend on the weights.

    python tools/benchmark.py [--size 600] [--cores 2] [--model resnet18] [--skip-naive]
"""

from __future__ import annotations

import argparse
import csv
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from filterlens.checkout import copy_workflow  # noqa: E402
IMAGE = "resources/images/chelsea.png"  # the default config's image

NAIVE = r'''
import sys, time, subprocess
from pathlib import Path
import numpy as np, torch, torchvision
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from PIL import Image
import imageio_ffmpeg

model_name, image_path, size, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
torch.manual_seed(0)
model = torchvision.models.get_model(model_name, weights=None).eval()
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


def stage_table(bench_dir: Path) -> dict[str, tuple[int, float, float]]:
    """rule -> (jobs, summed job seconds, peak max_rss MB) from Snakemake's benchmark files."""
    stages: dict[str, list] = defaultdict(lambda: [0, 0.0, 0.0])
    for tsv in bench_dir.rglob("*.tsv"):
        rule = tsv.relative_to(bench_dir).parts[0]
        with open(tsv) as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        stage = stages[rule]
        stage[0] += 1
        stage[1] += float(row["s"])
        stage[2] = max(stage[2], float(row["max_rss"]) if row["max_rss"] != "NA" else 0.0)
    return dict(stages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=600)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--skip-naive", action="store_true", help="time the workflow only")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="filterlens-bench-"))
    try:
        work = copy_workflow(scratch / "workflow")
        snakemake = [
            sys.executable, "-m", "snakemake", "--cores", str(args.cores), "--quiet",
            "--config", "weights=random", f"models=[{args.model}]", f"img_size={args.size}",
        ]  # fmt: skip
        # the outputs the naive script makes too: frames, video, statistics (+ manifest)
        target = f"results/{args.model}/chelsea/default/MANIFEST.sha256"
        workflow_s, _ = run_timed(snakemake + ["--", target], work)
        peak_job_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        frames = sum(1 for _ in (work / "results").rglob("frames/*/*.png"))
        stages = stage_table(work / "benchmarks")

        print(f"model {args.model}, {args.size}x{args.size}, {frames} frames, --cores {args.cores}")
        print(f"workflow (snakemake, end to end): {workflow_s:8.2f} s  {frames / workflow_s:8.1f} frames/s")
        print("  stage                 jobs  job-seconds  frames/job-second  peak MB")
        for rule, (jobs, seconds, rss) in sorted(stages.items(), key=lambda kv: -kv[1][1]):
            print(f"  {rule:20s} {jobs:5d} {seconds:12.2f} {frames / seconds:18.1f} {rss:8.0f}")
        print(f"peak memory of any job: {max([s[2] for s in stages.values()] + [0]):.0f} MB "
              f"(largest process incl. snakemake itself: {peak_job_mb:.0f} MB)")
        extras_s, _ = run_timed(snakemake + ["--", "all"], work)
        print(f"then the report extras (contact sheets, preview, page): {extras_s:.2f} s")
        if args.skip_naive:
            return
        naive_dir = scratch / "naive"
        naive_dir.mkdir()
        naive_s, out = run_timed(
            [sys.executable, "-c", NAIVE, args.model, str(REPO / IMAGE), str(args.size), str(naive_dir)],
            scratch,
        )  # fmt: skip
        naive_frames = int(out.strip().splitlines()[-1])
        print(f"naive reference (matplotlib):     {naive_s:8.2f} s  {naive_frames / naive_s:8.1f} frames/s")
        print(f"speed-up: {naive_s / workflow_s:.1f}x (target: at least 8x)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
