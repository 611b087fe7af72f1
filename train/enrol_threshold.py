"""Record the no-baseline enrolment threshold of bundles built before they carried one (`enroll.accept_similarity`
in `bundle.json`), measured on a labelled set as the recipes measure it for the bundles they build.

    python train/enrol_threshold.py --labelled ESC-10 --exclude-fold 5 audeep_edge/assets/general-dynamic.bundle ...

Each bundle streams the set's clips outside ``--exclude-fold`` on the device path (`embed_audio`, as `enroll`
does); the threshold is the cosine to a 5-clip class centroid that 5 % of the other classes' windows reach
(`head.enroll.calibrated_accept`). Only `bundle.json` changes; the model and its checksum stay. About 30 s per
bundle on the 2-core x86 CPU of docs/generalisation.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from audeep_edge.bundle import load_bundle, record_accept_similarity
from audeep_edge.dataset.folds import labelled_clips
from audeep_edge.errors import AudeepError
from audeep_edge.head.enroll import calibrated_accept
from audeep_edge.pipeline.embed import embed_audio


def record_threshold(bundle_dir: Path, paths: list[Path], labels: np.ndarray) -> float:
    """Measure the threshold of the bundle at ``bundle_dir`` on the clips ``paths`` (labels (n,)) and record it in
    its manifest; returns it."""
    bundle = load_bundle(bundle_dir)
    embedded = embed_audio(bundle, files=paths)
    accept = calibrated_accept(embedded.embeddings, labels[embedded.groups])
    record_accept_similarity(bundle_dir, accept)
    return accept


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundles", type=Path, nargs="+")
    parser.add_argument("--labelled", type=Path, required=True, help="labelled set (ESC layout or class folders)")
    parser.add_argument("--exclude-fold", type=int, default=5, help="the fold kept out, from 1 (5: the demo audio's)")
    args = parser.parse_args(argv)
    try:
        data = labelled_clips(args.labelled, max_folds=5)
        if not 1 <= args.exclude_fold <= data.num_folds:
            sys.exit(f"error: --exclude-fold {args.exclude_fold}: {args.labelled} has folds 1-{data.num_folds}")
        keep = data.folds != args.exclude_fold - 1  # folds count from 1, as ESC's file names do
        paths = [path for path, kept in zip(data.paths, keep) if kept]
        for bundle_dir in args.bundles:
            accept = record_threshold(bundle_dir, paths, np.asarray(data.labels)[keep])
            print(f"{bundle_dir.name}: enroll.accept_similarity {accept:.4f} ({len(paths)} clips of "
                  f"{args.labelled.name})", flush=True)
    except AudeepError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
