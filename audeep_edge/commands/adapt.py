"""On-device adaptation: ``baseline fit|show`` (what is normal here) and ``enroll`` (new labels in seconds).

Embeddings come from the streaming pipeline itself (:func:`~audeep_edge.pipeline.embed.embed_audio`: same
windows, front end and model as ``listen``), and the results are written next to the bundle (``baseline.npz``,
``enrolled.npz`` + ``enrolled.json``), where ``listen`` picks them up. Runtime only: numpy, no TensorFlow or scikit-learn.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer

from audeep_edge.errors import ConfigError

log = logging.getLogger(__name__)

baseline_app = typer.Typer(help="Learn what is normal on this device; `listen` then scores novelty 0..1.",
                           no_args_is_help=True)

BUNDLE = typer.Option(None, "--bundle", "-b", help="Model bundle directory or bundled model name, as for `listen` "
                      "(default: the bundled model); the baseline and enrolled labels are stored in it.")
FILES = typer.Option(None, "--file", help="Audio file to learn from instead of the microphone; more may follow "
                     "(--file a.wav b.wav, or a glob).")
MORE_FILES = typer.Argument(None, help="More audio files (so that `--file *.wav` works).", show_default=False)
DEVICE = typer.Option(None, "--device", help="Microphone: input device index or part of its name.")
HOP = typer.Option(None, "--hop", help="Seconds between windows (default: the bundle's).", min=0.01)
THREADS = typer.Option(1, "--threads", help="Interpreter threads.", min=1)
DELEGATE = typer.Option("none", "--delegate", help="none, xnnpack or edgetpu.")


def _load_bundle(path: Path | None, *, writable: bool = True):
    """``--bundle`` as ``listen`` resolves it (directory, bundled name, or the bundled default), after checking
    that files can be written next to it (before any recording starts)."""
    from audeep_edge.pipeline.assemble import find_bundle

    bundle = find_bundle(path)
    if writable and not os.access(bundle.path, os.W_OK):
        raise ConfigError(f"--bundle {bundle.path} is read-only; copy it somewhere writable "
                          f"(cp -r {bundle.path} ~/my.bundle) and pass that")
    return bundle


def _file_list(files: list[Path] | None, more: list[Path] | None) -> list[Path]:
    """``--file`` values plus the positional files after them; positional files need a ``--file`` first."""
    if more and not files:
        raise ConfigError(f"unexpected argument {str(more[0])!r}: audio files follow --file")
    return [*(files or []), *(more or [])]


def _describe_source(files: list[Path] | None, seconds: float | None, device: str | None) -> str:
    if files:
        shown = ", ".join(str(f) for f in files[:3])
        return shown if len(files) <= 3 else f"{shown}, ... ({len(files)} files)"
    return f"microphone {device or 'default'}, {seconds:g} s"


def _baseline_examples(bundle) -> np.ndarray | None:
    """The baseline's sample of this device's ordinary sound, if a baseline was fitted."""
    from audeep_edge.head.baseline import bundle_baseline

    baseline = bundle_baseline(bundle.path, bundle.manifest["sha256"])
    return baseline.examples if baseline is not None else None


@baseline_app.command("fit")
def baseline_fit(
    bundle_path: Optional[Path] = BUNDLE,
    files: Optional[List[Path]] = FILES,
    more_files: Optional[List[Path]] = MORE_FILES,
    seconds: Optional[float] = typer.Option(None, "--seconds", help="Record this long from the microphone "
                                            "(300 s of ordinary sound is a good start).", min=0.1),
    device: Optional[str] = DEVICE,
    method: str = typer.Option("lof", "--method", help="lof (k-NN distance relative to the local density), knn "
                               "(k-NN distance) or gmm (Gaussian mixture); see docs/adaptation.md."),
    k: int = typer.Option(5, "--k", help="lof/knn: neighbours averaged.", min=1),
    components: int = typer.Option(4, "--components", help="gmm: mixture components.", min=1),
    hop: Optional[float] = HOP,
    threads: int = THREADS,
    delegate: str = DELEGATE,
) -> None:
    """Fit the reference of normal sound (bundle/baseline.npz) from files or the microphone."""
    from audeep_edge.encoder.whitening import read_whitening
    from audeep_edge.head.baseline import BASELINE_FILE
    from audeep_edge.head.baseline_fit import METHODS, fit_baseline
    from audeep_edge.pipeline.embed import embed_audio

    if method not in METHODS:
        raise ConfigError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    files = _file_list(files, more_files)
    bundle = _load_bundle(bundle_path)
    audio = embed_audio(bundle, files=files, seconds=seconds, device=device, hop=hop, threads=threads,
                        delegate=delegate)
    started = time.perf_counter()
    baseline = fit_baseline(audio.embeddings, method=method, k=k, components=components,
                            groups=audio.groups if files and len(files) > 1 else None,
                            space=read_whitening(bundle.path),
                            meta={"model_sha256": bundle.manifest["sha256"], "bundle": bundle.name,
                                  "seconds": round(audio.seconds, 3), "source": _describe_source(files, seconds, device),
                                  "fitted_at": round(time.time(), 3)})
    fit_seconds = time.perf_counter() - started
    path = baseline.save(bundle.path / BASELINE_FILE)
    typer.echo(f"baseline: {method} on {len(audio.embeddings)} windows ({audio.seconds:.1f} s of audio); "
               f"fitted in {fit_seconds:.2f} s -> {path}")


@baseline_app.command("show")
def baseline_show(bundle_path: Optional[Path] = BUNDLE) -> None:
    """Describe the bundle's baseline."""
    from audeep_edge.head.baseline import BASELINE_FILE, load_baseline

    bundle = _load_bundle(bundle_path, writable=False)
    baseline = load_baseline(bundle.path / BASELINE_FILE)
    meta = baseline.meta
    current = "yes" if meta.get("model_sha256") == bundle.manifest["sha256"] else "NO: fit it again"
    p50, p95, p99 = np.percentile(baseline.calibration, [50, 95, 99])
    fitted = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(meta.get("fitted_at", 0)))
    rows = [("file", str(bundle.path / BASELINE_FILE)), ("method", baseline.method),
            ("windows", str(meta.get("windows"))), ("audio", f"{meta.get('seconds', 0):.1f} s"),
            ("source", str(meta.get("source", ""))), ("fitted at", fitted),
            ("matches the model", current),
            ("held-out raw scores", f"p50 {p50:.4g}, p95 {p95:.4g}, p99 {p99:.4g} ({baseline.calibration.size})")]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        typer.echo(f"{name:<{width}}  {value}")


def enroll(
    bundle_path: Optional[Path] = BUNDLE,
    label: Optional[str] = typer.Option(None, "--label", help="Name of the sound to learn."),
    files: Optional[List[Path]] = FILES,
    more_files: Optional[List[Path]] = MORE_FILES,
    seconds: Optional[float] = typer.Option(None, "--seconds", help="Record this long from the microphone "
                                            "while the sound happens (e.g. 30).", min=0.1),
    device: Optional[str] = DEVICE,
    append: bool = typer.Option(False, "--append", help="Add to the label's examples instead of replacing them."),
    remove: Optional[str] = typer.Option(None, "--remove", help="Forget this enrolled label."),
    list_: bool = typer.Option(False, "--list", help="List the enrolled labels."),
    hop: Optional[float] = HOP,
    threads: int = THREADS,
    delegate: str = DELEGATE,
) -> None:
    """Teach the device a new sound from a few seconds of it (no retraining); `listen` uses it at once."""
    from audeep_edge.head.enroll import Enrollment, active_windows, check_name
    from audeep_edge.pipeline.embed import embed_audio

    files = _file_list(files, more_files)

    if sum(x is not None and x is not False for x in (label, remove, list_ or None)) != 1:
        raise ConfigError("pass exactly one of --label NAME, --remove NAME or --list")
    bundle = _load_bundle(bundle_path, writable=not list_)
    enrollment = Enrollment.load(bundle.path, bundle.manifest["sha256"], bundle.embedding_size,
                                 bundle.accept_similarity)
    if list_:
        for name in enrollment.names:
            info = enrollment.info(name)
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info["enrolled_at"]))
            typer.echo(f"{name}\t{info['windows']} windows\t{when}\t{info['source']}")
        if not enrollment.names:
            typer.echo("no enrolled labels")
        return
    if remove is not None:
        removed = enrollment.remove(remove)
        enrollment.save()
        typer.echo(f"removed {removed!r}; enrolled: {', '.join(enrollment.names) or 'none'}")
        return
    name = check_name(label, bundle.labels, enrollment.names)
    if name != " ".join(label.split()):
        typer.echo(f"{label!r} is the enrolled label {name!r} (labels match whatever their case): "
                   f"{'adding to' if append else 'replacing'} its examples")
    negatives = _baseline_examples(bundle)
    audio = embed_audio(bundle, files=files, seconds=seconds, device=device, hop=hop, threads=threads,
                        delegate=delegate)
    started = time.perf_counter()
    keep = active_windows(audio.levels)
    enrollment.add(name, audio.embeddings[keep], source=_describe_source(files, seconds, device), append=append)
    head = enrollment.head(negatives)
    fit_ms = (time.perf_counter() - started) * 1e3
    enrollment.save()
    index = head.names.index(name)
    own = float(np.mean(head.similarities(audio.embeddings[keep])[:, index] >= head.accept[index]))
    typer.echo(f"enrolled {name!r} from {int(keep.sum())} of {keep.size} windows ({audio.seconds:.1f} s of audio): "
               f"fit {fit_ms:.1f} ms after {audio.embed_seconds:.2f} s of embedding; accepts from cosine "
               f"{head.accept[index]:.2f}{'' if negatives is not None else ' (no baseline: fixed default)'}, "
               f"{own:.0%} of its own windows; enrolled: {', '.join(enrollment.names)}")
    if own < 0.5:
        log.warning("%r is hard to tell from %s: only %.0f%% of its own windows pass its threshold; enroll a "
                    "longer or cleaner example", name, "this device's normal sound" if negatives is not None
                    else "other sounds", 100 * own)


def register(app: typer.Typer) -> None:
    """``baseline fit|show`` and ``enroll``."""
    app.add_typer(baseline_app, name="baseline")
    app.command("enroll")(enroll)
