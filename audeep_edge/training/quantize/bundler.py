"""``audeep-edge quantize``: a training run (+ classifier head) -> a deployable bundle with a parity report."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audeep_edge.bundle import PRECISIONS, write_manifest
from audeep_edge.errors import ConfigError, DataError, ModelError
from audeep_edge.features import FrameGeometry, FrontendConfig
from audeep_edge.progress import spinner
from audeep_edge.training.quantize import edgetpu
from audeep_edge.training.quantize.bundle_writer import check_output, convert_and_write, staged_bundle
from audeep_edge.training.quantize.convert import UNROLLED_PRECISIONS
from audeep_edge.training.quantize.windows import frontend_from_attribute, labelled_fold, sample_windows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantizeOptions:
    """What ``audeep-edge quantize`` was asked to do (CLI options, validated by :func:`quantize_run`)."""

    run_dir: Path
    precision: str
    output: Path
    head_dir: Path | None = None
    calibration: Path | None = None
    eval_data: Path | None = None
    eval_fold: int | None = None
    calibration_windows: int = 100
    parity_windows: int = 100
    name: str | None = None
    data_name: str | None = None
    data_license: str | None = None
    hop_seconds: float = 1.0


@dataclass(frozen=True)
class RunFacts:
    """What the bundle needs from a run directory's ``config.json``."""

    window_shape: tuple[int, int]
    frontend: FrontendConfig | None
    geometry: FrameGeometry | None
    inputs: list[Path]
    input_path: Path | None       # the first of ``inputs`` found here
    dataset: str | None
    autoencoder: dict             # model type, architecture and training settings: how to train one like it


def run_facts(run_dir: Path) -> RunFacts:
    """Window shape, front end and training data of a run (``config.json``, training run contract)."""
    from audeep_edge.training.runs import read_run_config

    config = read_run_config(run_dir)
    frontend = geometry = None
    if config.get("frontend"):
        frontend, geometry = frontend_from_attribute(config["frontend"])
    inputs = [Path(p) for p in (config.get("training") or {}).get("inputs", [])]
    # recorded as given on the command line: relative to where training ran, or to the run directory
    candidates = [p for path in inputs for p in (path, run_dir / path) if p.is_file()]
    input_path = candidates[0] if candidates else None
    dataset = inputs[0].stem if inputs else None
    training = config.get("training") or {}
    autoencoder = {"model_type": config["model_type"], "architecture": config["architecture"],
                   **{k: training[k] for k in ("num_epochs", "batch_size", "learning_rate") if k in training}}
    return RunFacts(tuple(int(n) for n in config["input_shape"]), frontend, geometry, inputs, input_path, dataset,
                    autoencoder)


def _check_options(opts: QuantizeOptions) -> None:
    if opts.precision not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {opts.precision!r}")
    check_output(opts.output)
    if opts.eval_fold is not None and opts.eval_data is None:
        raise ConfigError("--eval-fold needs --eval-data SPECTROGRAMS.nc")
    if min(opts.calibration_windows, opts.parity_windows) < 1:
        raise ConfigError("--calibration-windows and --parity-windows must be at least 1")


def _data(opts: QuantizeOptions, facts: RunFacts, label_names: list[str]):
    """Calibration windows (None if not needed), parity windows, their class targets (or None) and where
    the parity windows come from."""
    source = opts.calibration or facts.input_path
    if source is None:
        where = (f"was trained on {', '.join(map(str, facts.inputs))}, which is not here" if facts.inputs
                 else "does not record its training data")
        raise ConfigError(f"{opts.run_dir} {where}; pass --calibration SPECTROGRAMS.nc or an audio folder")
    n_calibration = opts.calibration_windows if opts.precision in UNROLLED_PRECISIONS else 0
    if opts.eval_data:
        calibration = sample_windows(source, facts.window_shape, facts.frontend, n_calibration) \
            if n_calibration else None
        windows, labels, where = labelled_fold(opts.eval_data, opts.eval_fold, facts.window_shape)
        return calibration, windows, _targets(labels, label_names, opts.eval_data), where
    pool = sample_windows(source, facts.window_shape, facts.frontend, n_calibration + opts.parity_windows)
    if not n_calibration:
        return None, pool, None, f"{source} ({len(pool)} windows)"
    if len(pool) == 1:
        log.warning("%s gives a single window: parity is measured on the calibration window", source)
        return pool, pool, None, f"{source} (1 window, also used for calibration)"
    n_parity = max(1, round(len(pool) * opts.parity_windows / (n_calibration + opts.parity_windows)))
    return pool[:-n_parity], pool[-n_parity:], None, f"{source} ({n_parity} windows not used for calibration)"


def _targets(labels: np.ndarray, label_names: list[str], path: Path) -> np.ndarray | None:
    """Class indices of nominal ``labels`` in the head's order; None without a head or with unlabelled data."""
    if not label_names or any(label is None for label in labels):
        return None
    index = {name: i for i, name in enumerate(label_names)}
    unknown = sorted({str(label) for label in labels} - set(index))
    if unknown:
        raise DataError(f"--eval-data {path} has labels the head does not know: {', '.join(unknown[:5])}")
    return np.asarray([index[str(label)] for label in labels])


def _check_same(reference, graph, window: np.ndarray) -> None:
    a = reference.predict(window[None], verbose=0)["embedding"]
    b = graph.predict(window[None], verbose=0)["embedding"]
    if not np.allclose(a, b, atol=1e-4):
        raise ModelError(f"the inference graph differs from the trained encoder (max {np.abs(a - b).max():.2g}); "
                         "the run's weights do not fit its unrolled graph")


def inference_graph(run_dir: Path, precision: str, head=None):
    """The trained encoder (+ head) as Keras (the parity reference) and as the graph to convert.

    GRU t-RAEs convert :mod:`~audeep_edge.training.quantize.gru_graph`'s rewrite at every precision; other
    models convert the trained graph, with Keras' unrolled layers for int8 and edgetpu.
    """
    from audeep_edge.training.autoencoders import encoder_model
    from audeep_edge.training.quantize import gru_graph
    from audeep_edge.training.quantize.graph import deployable_model
    from audeep_edge.training.runs import load_autoencoder, load_encoder

    autoencoder = load_autoencoder(run_dir)
    reference = deployable_model(encoder_model(autoencoder), head)
    if gru_graph.supports(autoencoder):
        return reference, deployable_model(gru_graph.encoder_model(autoencoder), head)
    if precision in UNROLLED_PRECISIONS:
        return reference, deployable_model(load_encoder(run_dir, unroll=True), head)
    return reference, reference


def use_tensorflow_backend() -> None:
    """Make Keras load on its TensorFlow backend, which the TFLite converter needs.

    On JAX or PyTorch, ``Model.export`` goes through jax2tf or torch export and gives a graph of resource
    variables and BATCH_MATMULs (two subgraphs, not an Edge TPU model). Weights saved on any backend load on
    TensorFlow, so a ``KERAS_BACKEND`` set for GPU training is overridden here, with a note.

    Raises
    ------
    ConfigError : Keras was already imported on another backend in this process.
    """
    import os
    import sys

    wanted = os.environ.get("KERAS_BACKEND", "tensorflow")
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != "tensorflow":
            raise ConfigError(f"quantize needs Keras on the tensorflow backend, but this process already runs it "
                              f"on {keras.backend.backend()}; run it without KERAS_BACKEND={wanted}")
        return
    if wanted != "tensorflow":
        log.info("KERAS_BACKEND=%s: quantize loads the run on the tensorflow backend instead (the converter's)",
                 wanted)
    os.environ["KERAS_BACKEND"] = "tensorflow"


def quantize_run(opts: QuantizeOptions) -> dict:
    """Convert, measure parity, write the bundle to ``opts.output``; return the parity report."""
    use_tensorflow_backend()
    _check_options(opts)
    facts = run_facts(opts.run_dir)
    if facts.frontend is None:
        raise ModelError(f"{opts.run_dir}/config.json has no front-end settings; a bundle needs them to run on audio")
    if facts.frontend.chunk_count is not None:
        log.warning("%s was trained on %g s chunks whose dB scale is relative to the whole file (auDeep); a bundle "
                    "scales each window by its own maximum, so quiet windows will look louder than in training "
                    "(docs/streaming.md)", opts.run_dir, facts.frontend.chunk_length)
    head, labels = None, []
    if opts.head_dir is not None:
        from audeep_edge.training.heads import load_head

        head, labels = load_head(opts.head_dir)
    calibration, windows, targets, where = _data(opts, facts, labels)
    with spinner("building the inference graph"):
        reference, graph = inference_graph(opts.run_dir, opts.precision, head)
        if graph is not reference:
            _check_same(reference, graph, windows[0])

    with staged_bundle(opts.output, ".quantize-") as staging:
        report, embedding_size = convert_and_write(reference, graph, staging, precision=opts.precision,
                                                   calibration=calibration, windows=windows, targets=targets,
                                                   data=where)
        write_manifest(staging, name=opts.name or opts.output.name.removesuffix(".bundle"),
                       precision=opts.precision, frontend=facts.frontend, geometry=facts.geometry,
                       window_frames=facts.window_shape[0], embedding_size=embedding_size,
                       labels=labels, input_dtype="int8" if opts.precision in UNROLLED_PRECISIONS else "float32",
                       hop_seconds=opts.hop_seconds, training=_training_record(opts, facts, report))
    return report


def _training_record(opts: QuantizeOptions, facts: RunFacts, report: dict) -> dict:
    """``bundle.json``'s ``training``: data name and license, run and head, accuracy (quantized and float), and
    the autoencoder's settings (what ``audeep-edge train --unlabelled`` trains a new encoder with)."""
    classes = report.get("classes", {})
    return {"dataset": opts.data_name or facts.dataset, "license": opts.data_license,
            "run": opts.run_dir.resolve().name, "head": opts.head_dir.resolve().name if opts.head_dir else None,
            "accuracy": classes.get("accuracy_quantized"), "accuracy_float": classes.get("accuracy_float"),
            "accuracy_data": report["data"] if "accuracy_float" in classes else None,
            "autoencoder": facts.autoencoder}


def format_report(report: dict) -> str:
    """The parity report as a few human-readable lines."""
    emb = report["embedding"]
    lines = [f"precision {report['precision']}: {report['model_bytes'] / 1e6:.3f} MB, "
             f"converted in {report['conversion_seconds']:.1f} s",
             f"parity on {report['windows']} windows of {report['data']}:",
             f"  embedding cosine mean {emb['cosine_mean']:.5f}, min {emb['cosine_min']:.5f}, "
             f"max abs error {emb['max_abs_error']:.3g}"]
    classes = report.get("classes")
    if classes:
        line = f"  class agreement with Keras {100 * classes['agreement']:.1f}%"
        if "accuracy_float" in classes:
            line += (f"; accuracy float {100 * classes['accuracy_float']:.1f}%, quantized "
                     f"{100 * classes['accuracy_quantized']:.1f}% ({classes['accuracy_delta_points']:+.1f} points)")
        lines.append(line)
    lines.append("ops: " + ", ".join(f"{name} x{count}" for name, count in report["ops"].items()))
    tpu = report["edgetpu"]
    check = {field: tpu[field] for field in edgetpu.EdgeTpuCheck.__dataclass_fields__ if field in tpu}
    if tpu["ready"]:
        lines.append("Edge TPU: every op is an int8 op in Coral's supported-ops table")
    else:
        lines.append(f"Edge TPU: not compilable as a whole ({edgetpu.EdgeTpuCheck(**check).problems()})")
    if tpu.get("compiler"):
        c = tpu["compiler"]
        lines.append(f"edgetpu_compiler: {c['ops_on_tpu']} ops on the Edge TPU, {c['ops_on_cpu']} on the CPU "
                     f"(exit status {c['returncode']}); `audeep-edge adopt-edgetpu BUNDLE` makes it the bundle's model")
    elif "compile_command" in tpu:
        lines.append(f"edgetpu_compiler is not installed; in the bundle directory run `{tpu['compile_command']}`, "
                     "then `audeep-edge adopt-edgetpu BUNDLE`")
    return "\n".join(lines)
