"""Verify a published run: its files against its own manifest, then against a re-run of it.

    python tools/verify.py results/resnet18/chelsea/default [--rtol 1e-4] [--max-changed 0.001]
    python tools/verify.py PUBLISHED_RUN --against OTHER_RUN     # compare two folders, no re-run

First each run folder must be as its MANIFEST.sha256 says: every listed file there with that
SHA-256, every output its frames.tsv and layers.tsv name listed, no other files. Then the re-run
(this checkout's workflow in a scratch folder, with the configuration of provenance.json; imagenet
weights from the published tree's resources/weights when present) or OTHER_RUN is compared file
by file: byte-identical where both provenance records show the same software and CPU features,
else within the tolerances. Exit status: 0 verified, 1 not verified, 2 not verifiable (a missing
manifest or provenance.json, a failed re-run).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from filterlens import verify  # noqa: E402


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="results/<model>/<image>/<run> to verify")
    parser.add_argument("--against", type=Path, help="compare with this run folder instead of a re-run")
    parser.add_argument("--rtol", type=float, default=verify.DEFAULT_RTOL,
                        help="activations and statistics: tolerance relative to the layer's "
                             "largest magnitude (default %(default)g)")  # fmt: skip
    parser.add_argument("--max-changed", type=fraction, default=verify.DEFAULT_MAX_CHANGED,
                        help="frames: the fraction of pixels (of each frame and of all) that "
                             "may be one level apart (default %(default)g; 16-bit frames: 257 "
                             "times it)")  # fmt: skip
    parser.add_argument("--cores", type=int, default=2, help="cores of the re-run")
    parser.add_argument("--keep", action="store_true", help="keep the scratch re-run and print its path")
    args = parser.parse_args()
    tolerances = verify.Tolerances(rtol=args.rtol, max_changed=args.max_changed)

    scratch = Path(tempfile.mkdtemp(prefix="filterlens-verify-"))
    try:
        report = verify.verify(args.run_dir, args.against, scratch, tolerances, args.cores)
    except verify.ERRORS as err:
        print(f"NOT VERIFIED: {err}", file=sys.stderr)
        return 2
    finally:
        if args.keep and args.against is None:
            print(f"re-run kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"verify {args.run_dir} against {args.against or 'a re-run'}")
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
