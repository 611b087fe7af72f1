"""``audeep-edge train DIR --output NAME.bundle``, step by step.

1. the labelled clips of ``DIR`` (class folders or any labelled layout) and their folds, checked;
2. with ``--unlabelled``: a new encoder trained on ``DIR`` + the unlabelled audio and quantized (:mod:`.encoder`);
3. every clip embedded on the device path (:mod:`.clips`), cached in the work directory;
4. cross-validated accuracy of the head (:mod:`.head`; for encoders side by side, such as the default, also of a
   head on each encoder's part alone, and the best is kept), then the head fitted on all clips and grafted onto
   the encoder's ``.tflite``; its probabilities checked against the numpy head on real windows;
5. the bundle written in one step: ``model.tflite``, ``bundle.json``, ``parity.json``, ``confusion.png``,
   ``MODEL_CARD.md``.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audeep_edge import __version__
from audeep_edge.bundle import MODEL_FILE, PRECISIONS, Bundle, load_bundle, write_manifest
from audeep_edge.dataset.folds import LabelledClips, labelled_clips
from audeep_edge.dataset.parsers.classfolder import MAX_FOLDS
from audeep_edge.errors import AudioError, ConfigError, DataError
from audeep_edge.head.enroll import calibrated_accept
from audeep_edge.own_sounds import DEFAULT_EPOCHS
from audeep_edge.own_sounds.clips import ClipCache
from audeep_edge.own_sounds.head import (CrossValidation, LinearHead, choose_head_input, cross_validate, fit_head,
                                         head_inputs)
from audeep_edge.own_sounds.report import CONFUSION_PNG, MODEL_CARD, confusion_png, model_card
from audeep_edge.progress import progress_bar
from audeep_edge.training.quantize.bundle_writer import PARITY_FILE, check_output, staged_bundle

log = logging.getLogger(__name__)

HEAD_DESCRIPTION = ("softmax regression on the standardised embedding (L2, C = 1, classes weighted equally), "
                    "one FULLY_CONNECTED + SOFTMAX after the encoder")


@dataclass(frozen=True)
class TrainOptions:
    """What ``audeep-edge train`` was asked to do."""

    data: Path
    output: Path
    bundle: Path | None = None
    unlabelled: tuple[Path, ...] = ()
    epochs: int = DEFAULT_EPOCHS
    precision: str | None = None          # of a new encoder (--unlabelled; default dynamic), else the base's
    max_folds: int = MAX_FOLDS
    data_name: str | None = None
    data_license: str | None = None
    work_dir: Path | None = None
    seed: int = 1
    command: str = "audeep-edge train"

    @property
    def work(self) -> Path:
        """Where embeddings and checkpoints are kept between runs: ``NAME.work`` next to the output."""
        return self.work_dir or self.output.with_name(self.output.name.removesuffix(".bundle") + ".work")


@dataclass
class TrainResult:
    """What ``train`` measured and wrote."""

    output: Path
    clips: LabelledClips
    cv: CrossValidation
    head_parity: dict
    work: Path
    png: Path | None
    encoder_parity: dict | None = None        # quantize's report of a newly trained encoder
    cv_base_encoder: CrossValidation | None = None  # the base bundle's encoder on the same folds
    head_input: str = "all"                   # the part of the embedding the head reads
    cv_by_head_input: dict[str, CrossValidation] | None = None  # every part tried, for encoders side by side
    measured_accept: float | None = None      # enrolment threshold measured here, for an encoder without one


def unlabelled_files(folders: tuple[Path, ...]) -> list[Path]:
    """Every audio file under the ``--unlabelled`` folders (recursively); DataError for a folder without any."""
    from audeep_edge.dataset.parsers.nometadata import NoMetadataParser

    return [inst.path for folder in folders for inst in NoMetadataParser(folder).parse()]


def check_readable(paths: list[Path]) -> np.ndarray:
    """Seconds of audio of each file [shape=(N,)]; DataError naming every file that cannot be read (header check)."""
    from audeep_edge.dataset.inspect import audio_info

    seconds, problems = [], []
    for path in paths:
        try:
            seconds.append(audio_info(path)[0])
        except AudioError as exc:
            problems.append(str(exc))
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise DataError(f"{len(problems)} unreadable audio file(s): {shown}")
    return np.asarray(seconds)


def _check_options(opts: TrainOptions) -> None:
    check_output(opts.output)
    if opts.precision is not None and (opts.precision not in PRECISIONS or opts.precision == "edgetpu"):
        raise ConfigError(f"--precision must be one of {', '.join(p for p in PRECISIONS if p != 'edgetpu')}, "
                          f"got {opts.precision!r}")
    if opts.epochs < 1 or opts.max_folds < 2:
        raise ConfigError("--epochs must be at least 1 and --folds at least 2")


def embed_clips(bundle: Bundle, cache: ClipCache, paths: list[Path], what: str) -> list[np.ndarray]:
    """Window embeddings [shape=(n_i, D)] of every clip through ``bundle``'s model, with a progress bar."""
    from audeep_edge.encoder import Encoder

    encoder = Encoder(bundle.model_path)
    embedded = []
    with progress_bar(len(paths), what) as advance:
        for path in paths:
            embedded.append(cache.embeddings(bundle, encoder, path))
            advance()
    return embedded


def _head_parity(model: bytes, bundle: Bundle, head: LinearHead, cache: ClipCache, clips: LabelledClips,
                 work: Path) -> dict:
    """The grafted model against the numpy head on one clip per class: embeddings and probabilities."""
    from audeep_edge.encoder import Encoder

    path = work / "parity.tflite"
    path.write_bytes(model)
    grafted, base = Encoder(path), Encoder(bundle.model_path)
    chosen = [clips.paths[int(np.flatnonzero(clips.labels == c)[0])] for c in range(len(clips.names))]
    embedding_error = probability_error = 0.0
    windows = 0
    for clip in chosen:
        for window in cache.windows(bundle, clip):
            out, reference = grafted(window), base(window).embedding
            embedding_error = max(embedding_error, float(np.abs(out.embedding - reference).max()))
            expected = head.probabilities(out.embedding)[0]
            probability_error = max(probability_error, float(np.abs(out.probabilities - expected).max()))
            windows += 1
    path.unlink()
    return {"windows": windows, "embedding_max_abs_error": embedding_error,
            "probability_max_abs_error": probability_error}


def _encoder_facts(bundle: Bundle, trained_on: str | None) -> dict:
    training = bundle.manifest.get("training") or {}
    source = f"{training.get('dataset') or 'unknown data'}, licence {training.get('license') or 'not recorded'}"
    if trained_on:
        description = f"trained here without labels on {trained_on} ({bundle.precision}), settings of the base bundle"
    else:
        description = f"{bundle.name} ({bundle.precision}), unchanged: trained on {source}"
    return {"bundle": bundle.name, "sha256": bundle.manifest["sha256"], "dataset": training.get("dataset"),
            "license": training.get("license"), "description": description}


def train(opts: TrainOptions) -> TrainResult:
    """Run ``audeep-edge train``; see the module docstring."""
    from audeep_edge.pipeline.assemble import AUTOENCODER_BUNDLE, find_bundle
    from audeep_edge.training.quantize.flatbuffer import attach_linear_head

    _check_options(opts)
    # the default encoder is a codebook; a new encoder trained here is an autoencoder like the bundled t-RAE
    base = find_bundle(opts.bundle if opts.bundle or not opts.unlabelled else Path(AUTOENCODER_BUNDLE))
    if base.precision == "edgetpu":
        raise ConfigError(f"--bundle {base.path} is compiled for the Edge TPU; train from its int8 bundle")
    if not opts.unlabelled and opts.precision not in (None, base.precision):
        raise ConfigError(f"--precision {opts.precision}: the head is added to --bundle {base.name}, which is "
                          f"{base.precision}; pass a bundle of that precision, or --unlabelled to train a new encoder")
    precision = opts.precision or "dynamic"
    clips = labelled_clips(opts.data, opts.max_folds)
    extra = unlabelled_files(opts.unlabelled) if opts.unlabelled else []
    if opts.unlabelled:
        from audeep_edge.own_sounds import encoder as encoder_training

        encoder_training.require_training_extra()
        encoder_training.autoencoder_settings(base)
    durations = check_readable([*clips.paths, *extra])
    audio_seconds = float(durations[:len(clips.paths)].sum())
    work = opts.work
    cache = ClipCache(work / "clips")
    log.info("%s: %d clips of %d classes (%s layout), %d folds; work files in %s", opts.data, len(clips.paths),
             len(clips.names), clips.layout, clips.num_folds, work)
    padded = base.padded_clip_seconds
    short = int(np.sum(durations < padded))
    if short:
        log.info("%d of %d files are shorter than %.2f s (a window and a frame): zero-padded to it, centred, as "
                 "enroll pads", short, len(durations), padded)

    head_base, encoder_parity, cv_base = base, None, None
    if opts.unlabelled:
        all_paths = [*clips.paths, *extra]
        windows = []
        with progress_bar(len(all_paths), "windows") as advance:
            for path in all_paths:
                windows.append(cache.windows(base, path))
                advance()
        names = [str(p) for p, w in zip(all_paths, windows) for _ in range(len(w))]
        run_dir = work / f"autoencoder-{base.manifest['sha256'][:12]}"
        encoder_training.train_autoencoder_run(base, np.concatenate(windows), names, run_dir, epochs=opts.epochs,
                                               seed=opts.seed)
        encoder_dir = work / f"encoder-{precision}.bundle"
        encoder_parity = encoder_training.quantize_encoder(
            run_dir, encoder_dir, precision, hop_seconds=base.hop_seconds,
            data_name=f"{opts.data_name or opts.data.name} + {len(extra)} unlabelled files",
            data_license=opts.data_license or "not given")
        head_base = load_bundle(encoder_dir)
        base_embedded = embed_clips(base, cache, clips.paths, f"embedding ({base.name})")
        cv_base = cross_validate(base_embedded, clips.labels, clips.folds, clips.num_folds, len(clips.names))

    embedded = embed_clips(head_base, cache, clips.paths, "embedding")
    head_input, cvs = choose_head_input(embedded, clips.labels, clips.folds, clips.num_folds, len(clips.names),
                                        head_base.embedding_parts)
    cv = cvs[head_input]
    window_embeddings = np.concatenate(embedded)
    window_labels = np.concatenate([np.full(len(e), label) for e, label in zip(embedded, clips.labels)])
    head = fit_head(window_embeddings, window_labels, len(clips.names),
                    columns=head_inputs(head_base.embedding_parts)[head_input])
    # the encoder's own enrolment threshold holds for a new head; one without (a new encoder, an older bundle)
    # gets it measured on these clips' windows, as the recipes measure it for the bundled encoders
    accept, measured_accept = head_base.accept_similarity, None
    if accept is None:
        accept = measured_accept = calibrated_accept(window_embeddings, window_labels)
    model = attach_linear_head(head_base.model_path.read_bytes(), head.weights, head.bias)
    head_parity = _head_parity(model, head_base, head, cache, clips, work)

    counts = Counter(clips.names[label] for label in clips.labels)
    trained_on = (f"{len(clips.paths)} labelled + {len(extra)} unlabelled files, {opts.epochs} epochs"
                  if opts.unlabelled else None)
    facts = {
        "name": opts.output.name.removesuffix(".bundle"),
        "dataset": opts.data_name or opts.data.resolve().name, "license": opts.data_license or "not given",
        "clips_per_label": {name: counts[name] for name in clips.names}, "audio_seconds": round(audio_seconds, 1),
        "accuracy": cv.accuracy, "fold_accuracies": cv.fold_accuracies,
        "accuracy_data": f"{clips.num_folds}-fold cross-validation over {len(clips.paths)} clips, "
                         "clips of one recording in one fold",
        "head": HEAD_DESCRIPTION,
        "encoder": _encoder_facts(head_base, trained_on),
        "autoencoder": (head_base.manifest.get("training") or {}).get("autoencoder"),
        "date": datetime.date.today().isoformat(), "audeep_edge": __version__, "command": opts.command,
    }
    if cv_base is not None:
        facts["accuracy_base_encoder"] = cv_base.accuracy
    if len(cvs) > 1:
        facts["head_input"] = head_input
        facts["accuracy_by_head_input"] = {name: result.accuracy for name, result in cvs.items()}
    parity = {"head": head_parity, "encoder": encoder_parity if encoder_parity is not None else
              _read_json(base.path / PARITY_FILE)}

    with staged_bundle(opts.output, ".train-") as staging:
        (staging / MODEL_FILE).write_bytes(model)
        (staging / PARITY_FILE).write_text(json.dumps(parity, indent=2) + "\n")
        png = confusion_png(cv.confusion, clips.names, staging / CONFUSION_PNG,
                            f"{facts['name']}: {100 * cv.accuracy:.1f} % ({clips.num_folds}-fold CV)")
        (staging / MODEL_CARD).write_text(model_card(facts))
        write_manifest(staging, name=facts["name"], precision=head_base.precision, frontend=head_base.frontend,
                       geometry=head_base.geometry, window_frames=head_base.window_frames,
                       embedding_size=head_base.embedding_size, labels=clips.names,
                       input_dtype=head_base.manifest["input"].get("dtype", "float32"),
                       hop_seconds=head_base.hop_seconds, training=facts, normalization=head_base.normalization,
                       embedding_parts=head_base.manifest["outputs"].get("embedding_parts"),
                       accept_similarity=accept)
        load_bundle(staging)
    return TrainResult(opts.output, clips, cv, head_parity, work, opts.output / CONFUSION_PNG if png else None,
                       encoder_parity, cv_base, head_input, cvs if len(cvs) > 1 else None, measured_accept)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
