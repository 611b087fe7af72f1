"""`audeep-edge preprocess` and `inspect raw`: real ESC-10 clips and generated audio, errors, --jobs, --pretend."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import cli
from test_parsers import audio  # noqa: F401  (fixture: short tones at relative paths)

from audeep_edge.dataset import load_dataset
from audeep_edge.dataset.parsers import get_parser
from audeep_edge.dataset.preprocess import preprocess
from audeep_edge.features import FrontendConfig

EXE = Path(sys.executable).with_name("audeep-edge")
TUTORIAL = ["--window-width", "0.08", "--window-overlap", "0.04", "--mel-spectrum", "128", "--fixed-length", "5",
            "--clip-below", "-60"]




def problems(stderr: str) -> list[str]:
    """The stderr lines that are not progress information."""
    return [line for line in stderr.splitlines() if not line.startswith("[INFO]")]


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture
def small_esc(tmp_path, esc_mini) -> Path:
    """Two classes with two clips each, copied from esc_mini."""
    for name in ("001 - Dog bark", "002 - Rain"):
        for clip in sorted((esc_mini / name).iterdir())[:2]:
            (tmp_path / "esc" / name).mkdir(parents=True, exist_ok=True)
            shutil.copy(clip, tmp_path / "esc" / name / clip.name)
    return tmp_path / "esc"


def test_esc_mini_with_tutorial_settings_in_parallel(tmp_path, esc_mini):
    out = tmp_path / "esc.nc"
    proc = run("preprocess", "--basedir", esc_mini, *TUTORIAL, "--jobs", "2", "--output", out)
    assert proc.returncode == 0, proc.stderr
    ds = load_dataset(out)
    assert ds.features.shape == (15, 124, 128) and ds.feature_dims == ["time", "freq"]
    assert ds.features.min() == -1.0 and ds.features.max() == 1.0
    assert ds.label_map == {"Dog bark": 0, "Rain": 1, "Rooster": 2} and ds.is_fully_labeled
    assert ds.has_cv_info and ds.num_folds == 5 and not ds.has_partition_info
    frontend = json.loads(ds.attrs["frontend"])
    assert (frontend["fs"], frontend["n_fft"], frontend["hop"], frontend["mel_bands"]) == (44100, 3528, 1764, 128)
    assert FrontendConfig.from_dict({k: v for k, v in frontend.items() if k not in ("fs", "n_fft", "overlap", "hop")})
    # the same as one process, in the same order
    cfg = FrontendConfig(window_width=0.08, window_overlap=0.04, mel_bands=128, clip_below=-60, fixed_length=5.0)
    serial = preprocess(get_parser(None, esc_mini), cfg, jobs=1).dataset
    assert serial.filenames.tolist() == ds.filenames.tolist()
    np.testing.assert_array_equal(serial.features, ds.features)


def test_corrupt_file_is_one_line_naming_it_and_skip_errors_continues(tmp_path, capsys, small_esc):
    bad = small_esc / "001 - Dog bark" / "1-000-A.ogg"  # sorted first: the run fails at once
    bad.write_bytes(b"\x00garbage, not an ogg file" * 10)
    proc = run("preprocess", "--basedir", small_esc, *TUTORIAL, "--output", tmp_path / "x.nc")
    assert proc.returncode == 2
    problems = [line for line in proc.stderr.splitlines() if not line.startswith("[INFO]")]
    assert len(problems) == 1 and problems[0].startswith(f"error: {bad}: cannot read audio")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x.nc").exists()

    proc = run("preprocess", "--basedir", small_esc, *TUTORIAL, "--skip-errors", "--jobs", "2",
               "--output", tmp_path / "x.nc")
    assert proc.returncode == 0, proc.stderr
    assert "skipped 1 file(s)" in proc.stderr and str(bad) in proc.stderr
    assert load_dataset(tmp_path / "x.nc").num_instances == 4


def test_empty_directory_and_unknown_layout_are_clear_errors(tmp_path, capsys, audio):  # noqa: F811
    (tmp_path / "empty").mkdir()
    code, _, err = cli(capsys, "preprocess", "--basedir", tmp_path / "empty")
    assert code == 2 and err.strip() == f"error: {tmp_path / 'empty'}: no audio files (" + err.split("(", 1)[1].strip()
    audio("plain/a.wav")
    code, _, err = cli(capsys, "preprocess", "--basedir", tmp_path / "plain")
    assert code == 2 and len(problems(err)) == 1 and "plain: unknown data set layout" in err
    code, _, err = cli(capsys, "preprocess", "--basedir", tmp_path / "plain", "--parser", "no-metadata",
                       "--output", tmp_path / "plain.nc")
    assert code == 0 and load_dataset(tmp_path / "plain.nc").filenames.tolist() == ["a.wav"]


def test_empty_audio_file_names_the_file(tmp_path, capsys, audio):  # noqa: F811
    audio("d/a.wav")
    audio("d/b.wav", seconds=0.0)
    code, _, err = cli(capsys, "preprocess", "--basedir", tmp_path / "d", "--parser", "no-metadata")
    assert code == 2 and problems(err) == [f"error: {tmp_path / 'd' / 'b.wav'}: the file contains no audio samples"]


def test_cross_validated_layout_through_the_cli(tmp_path, capsys, audio):  # noqa: F811
    for k in (1, 2, 3):
        audio(f"cv/fold_{k}/cat/c{k}.wav")
        audio(f"cv/fold_{k}/dog/d{k}.wav", freq=880.0)
    code, _, err = cli(capsys, "preprocess", "--basedir", tmp_path / "cv", "--output", tmp_path / "cv.nc")
    assert code == 0, err
    ds = load_dataset(tmp_path / "cv.nc")
    assert ds.num_folds == 3 and ds.has_cv_info and ds.label_map == {"cat": 0, "dog": 1}
    assert ds.split(2, "valid").filenames.tolist() == ["fold_3/cat/c3.wav", "fold_3/dog/d3.wav"]
    assert ds.feature_shape == (9, 161)  # 0.2 s at 8 kHz, 0.04/0.02 s windows: 9 frames, 161 bins


def test_lengths_differ_without_fixed_length(tmp_path, capsys, audio):  # noqa: F811
    audio("d/a.wav", seconds=0.2)
    audio("d/b.wav", seconds=0.3)
    code, _, err = cli(capsys, "preprocess", "--basedir", tmp_path / "d", "--parser", "no-metadata")
    assert code == 2 and "b.wav: spectrogram shape (14, 161) differs from (9, 161)" in err and "--fixed-length" in err
    code, _, err = cli(capsys, "preprocess", "--basedir", tmp_path / "d", "--parser", "no-metadata",
                       "--fixed-length", "0.25", "--output", tmp_path / "d.nc")
    assert code == 0, err
    assert load_dataset(tmp_path / "d.nc").features.shape == (2, 11, 161)


def test_chunks_and_sample_rate(tmp_path, capsys, audio):  # noqa: F811
    audio("d/a.wav", seconds=0.5, fs=16000)
    audio("d/b.flac", seconds=0.5, fs=8000)
    code, _, err = cli(capsys, "preprocess", "--basedir", tmp_path / "d", "--parser", "no-metadata",
                       "--sample-rate", "8000", "--chunk-length", "0.2", "--chunk-count", "2",
                       "--mel-spectrum", "16", "--output", tmp_path / "c.nc")
    assert code == 0, err
    ds = load_dataset(tmp_path / "c.nc")
    assert ds.filenames.tolist() == ["a.wav", "a.wav", "b.flac", "b.flac"] and ds.chunk_nrs.tolist() == [0, 1, 0, 1]
    assert ds.feature_shape == (10, 16) and ds.frontend["fs"] == 8000
    assert cli(capsys, "validate", "--input", tmp_path / "c.nc")[1].startswith("PASS")


def test_pretend_writes_a_png_instead_of_a_data_set(tmp_path, capsys, esc_mini):
    png = tmp_path / "plot" / "p.png"
    code, out, err = cli(capsys, "preprocess", "--basedir", esc_mini, *TUTORIAL, "--pretend", 7,
                         "--pretend-output", png, "--output", tmp_path / "never.nc")
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "3-132852-A.ogg" in out and "[124, 128]" in out and "dB range" in out
    assert not (tmp_path / "never.nc").exists()
    code, _, err = cli(capsys, "preprocess", "--basedir", esc_mini, "--pretend", 15)
    assert code == 2 and "--pretend 15: the data set has instances 0..14" in err


def test_inspect_raw(capsys, esc_mini, small_esc):
    code, out, _ = cli(capsys, "inspect", "raw", "--basedir", esc_mini)
    assert code == 0
    assert "parser          esc" in out and "files           15" in out and "44100 Hz" in out
    assert "labels          3 (Dog bark, Rain, Rooster)" in out and "5.001 s .. 5.001 s" in out
    (small_esc / "001 - Dog bark" / "5-1-A.ogg").write_bytes(b"")
    code, _, err = cli(capsys, "inspect", "raw", "--basedir", small_esc)
    assert code == 2 and "5-1-A.ogg" in err
    code, out, err = cli(capsys, "inspect", "raw", "--basedir", small_esc, "--skip-errors")
    assert code == 0 and "files           5" in out and "skipped 1 file(s)" in err
