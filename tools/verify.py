"""Re-run a published run from its provenance and compare, within stated tolerances.

    python tools/verify.py results/resnet18/chelsea/default [--rtol 1e-4] [--cores 2]
    python tools/verify.py PUBLISHED_RUN --against OTHER_RUN     # compare only, no re-run

The re-run uses this checkout's workflow in a scratch folder, with the published run's resolved
configuration (provenance.json); imagenet weights come from the published tree's resources/weights
when present. Activations and statistics must agree within a relative tolerance, frames within one
quantization level, everything else exactly. Prints a short report; exits 1 unless verified.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from filterlens.checkout import copy_workflow  # noqa: E402
from filterlens.verify import DEFAULT_RTOL, compare_runs  # noqa: E402



def rerun_config(run_dir: Path) -> tuple[dict, Path]:
    """The configuration that made `run_dir` (results/<model>/<image>/<run>), and its root."""
    provenance = json.loads((run_dir / "provenance.json").read_text())
    root = run_dir.resolve().parents[3]
    config = dict(provenance["config"])
    model, image = config.pop("model"), config.pop("image")
    config["models"] = [model]
    config["images"] = {provenance["image"]: str((root / image).resolve())}
    if config["weights"] not in ("imagenet", "random"):
        config["weights"] = str((root / config["weights"]).resolve())
    config["runs"] = {provenance["run"]: provenance["run_settings"]}
    return config, root


def rerun(run_dir: Path, scratch: Path, cores: int) -> Path:
    config, root = rerun_config(run_dir)
    copy_workflow(scratch)
    published_weights = root / "resources" / "weights"
    if config["weights"] == "imagenet" and published_weights.is_dir():
        shutil.copytree(published_weights, scratch / "resources" / "weights")
    (scratch / "verify.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--quiet", "all",
               "--configfile", "verify.yaml"]  # fmt: skip
    result = subprocess.run(command, cwd=scratch, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"the re-run failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    model = config["models"][0]
    (image,) = config["images"]
    (run,) = config["runs"]
    return scratch / "results" / model / image / run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="results/<model>/<image>/<run> to verify")
    parser.add_argument("--rtol", type=float, default=DEFAULT_RTOL, help="relative tolerance of activations")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--against", type=Path, help="compare with this run folder instead of re-running")
    parser.add_argument("--keep", action="store_true", help="keep the scratch re-run and print its path")
    args = parser.parse_args()
    if not (args.run_dir / "MANIFEST.sha256").is_file():
        parser.error(f"{args.run_dir} has no MANIFEST.sha256: not a run folder of this workflow")

    scratch = Path(tempfile.mkdtemp(prefix="filterlens-verify-"))
    try:
        other = args.against or rerun(args.run_dir, scratch, args.cores)
        settings = json.loads((args.run_dir / "provenance.json").read_text())["run_settings"]
        lut = palette_of(settings["cmap"])
        report = compare_runs(args.run_dir, other, args.rtol, lut)
        print(f"verify {args.run_dir} against {'re-run' if not args.against else other}")
        print(report.summary())
        return 0 if report.ok else 1
    finally:
        if args.keep:
            print(f"re-run kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def palette_of(cmap: str) -> np.ndarray:
    from filterlens.render import palette

    return palette(cmap)


if __name__ == "__main__":
    sys.exit(main())
