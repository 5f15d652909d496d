"""Make the pictures under docs/images/ that the README shows, from a real run of the workflow.

The run: ResNet18 (random weights, seed 0: pretrained weights cannot be assumed on the machine
that makes the pictures; the captions say so) on the two shipped sample images plus a folder of
30 generated stimuli (gratings at six orientations and five spatial frequencies), four layers.
From it: a contact sheet and the layer statistics of the sample image, the dataset examples of
one layer over the set, and a screenshot of the explorer in headless Chromium.

    python tools/docs_images.py [--keep DIR]     # --keep: leave the run's folder there
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
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(REPO / "tests"))

from browser import Browser, find_chromium  # noqa: E402
from filterlens.checkout import copy_workflow  # noqa: E402

OUT = REPO / "docs" / "images"
LAYERS = ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1"]
EXPLORED = ("layer1.0.conv2", 5)  # the layer and filter the explorer screenshot shows
# Waits until the explorer has drawn the maps of the filter in the page's hash.
SHOWN = """
(async () => {
  const want = %s, root = document.documentElement;
  for (let i = 0; i < 2000 && root.dataset.shown !== want; i++) await new Promise(d => setTimeout(d, 5));
  while (filterlensExplorer.state().loading) await new Promise(d => setTimeout(d, 5));
  return root.dataset.shown === want;
})()
"""


def gratings(folder: Path, size: int = 224) -> None:
    """30 sinusoidal gratings: 6 orientations x 5 spatial frequencies, 8-bit RGB PNGs."""
    folder.mkdir(parents=True)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    for angle in range(0, 180, 30):
        theta = np.deg2rad(angle)
        for cycles in (2, 4, 8, 16, 32):
            phase = (x * np.cos(theta) + y * np.sin(theta)) * 2 * np.pi * cycles / size
            gray = np.round(127.5 + 127.5 * np.sin(phase)).astype(np.uint8)
            Image.fromarray(np.stack([gray] * 3, axis=-1)).save(
                folder / f"grating_{angle:03d}deg_{cycles:02d}c.png"
            )


def run_workflow(root: Path) -> Path:
    wf = copy_workflow(root / "wf")
    gratings(root / "stimuli")
    config = {
        "models": ["resnet18"], "weights": "random", "seed": 0, "img_size": 224,
        "layers": LAYERS, "runs": {},
        "images": {"chelsea": "resources/images/chelsea.png",
                   "coffee": "resources/images/coffee.png", "stimuli": str(root / "stimuli")},
    }  # fmt: skip
    (wf / "docs.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "snakemake", "--cores", "2", "--quiet",
               "--configfile", "docs.yaml"]  # fmt: skip
    subprocess.run(command, cwd=wf, check=True)
    return wf


def screenshot_explorer(explorer: Path, target: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("headless Chromium is needed for the explorer screenshot "
                         "(Debian: apt-get install chromium)")  # fmt: skip
    layer, f = EXPLORED
    with tempfile.TemporaryDirectory() as profile, \
            Browser(chromium, Path(profile), size=(1400, 1000)) as browser:  # fmt: skip
        browser.open((explorer / "index.html").as_uri() + f"#layer={layer}&filter={f}")
        if not browser.evaluate(SHOWN % json.dumps(f"{layer}/{f}")):
            raise SystemExit(f"the explorer did not draw {layer} filter {f}")
        browser.screenshot(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)  # fmt: skip
    parser.add_argument("--keep", type=Path, help="make the run in this folder and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="filterlens-docs-"))
    try:
        wf = run_workflow(root)
        run = wf / "results/resnet18/chelsea/default"
        sets = wf / "results/resnet18/_sets/all"
        OUT.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run / "sheets/layer1.0.conv1.png",
                        OUT / "contact_sheet_resnet18_layer1.0.conv1.png")  # fmt: skip
        shutil.copyfile(wf / "results/resnet18/chelsea/layer_stats.png",
                        OUT / "layer_stats_resnet18.png")  # fmt: skip
        shutil.copyfile(sets / "examples/layer1.0.conv2.png",
                        OUT / "examples_resnet18_layer1.0.conv2.png")  # fmt: skip
        screenshot_explorer(sets / "explorer", OUT / "explorer_resnet18.png")
        for path in sorted(OUT.glob("*.png")):
            print(f"{path.relative_to(REPO)}: {path.stat().st_size:,} bytes")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
