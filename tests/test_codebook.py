"""The codebook encoder: a corpus on disk, a codebook learned from it, the same embedding from numpy and Keras,
and a default model whose codebook part hears how loud a sound is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
from stream_testing import cosine

from audeep_edge.bundle import load_bundle
from audeep_edge.pipeline.embed import embed_audio
from audeep_edge.features import FLOOR_DB, encoder_input, input_bands, power_db, window_features
from audeep_edge.pipeline.assemble import find_bundle
from audeep_edge.training.codebook import Codebook, CodebookSettings, encoder_model, train_codebook
from audeep_edge.training.corpus import CORPUS_FRONTEND, Corpus, build_corpus, file_frames

DATA = Path(__file__).parent / "data"
CLIPS = sorted((DATA / "esc_mini").rglob("*.ogg"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    """The committed ESC clips plus a short tone, as an unlabelled corpus."""
    root = tmp_path_factory.mktemp("corpus")
    tone = root / "tone.wav"
    t = np.arange(16000) / 16000
    soundfile.write(tone, 0.3 * np.sin(2 * np.pi * 440 * t), 16000)
    build_corpus({"test clips (CC BY 3.0)": CLIPS, "tone": [tone]}, root / "c", workers=1)
    return Corpus(root / "c")


def test_corpus_keeps_every_file_frames_in_db(corpus: Corpus) -> None:
    assert len(corpus.index["files"]) == len(CLIPS) + 1
    first = corpus.window(0, 0, 10)
    assert np.allclose(first, file_frames(CLIPS[0], CORPUS_FRONTEND)[:10].astype(np.float32))
    batch = next(corpus.batches(3, 124, np.random.default_rng(0)))
    assert batch.shape == (3, 124, 128) and batch.dtype == np.float32 and batch.min() >= FLOOR_DB
    short = int(np.argmin(corpus.lengths))  # the 1 s tone: padded with the floor
    assert np.all(corpus.window(short, 0, 124)[corpus.lengths[short]:] == FLOOR_DB)


def test_codebook_numpy_and_keras_agree(corpus: Corpus) -> None:
    settings = CodebookSettings(patch_frames=4, centroids=16, whitened=8, sample_windows=20, max_patches=2000,
                                iterations=3, stat_windows=20)
    codebook = train_codebook(corpus, settings)
    assert codebook.kernel.shape == (4, 128, 16) and codebook.embedding_size == 2 * 16 + 2 * 128
    windows = next(corpus.batches(4, 124, np.random.default_rng(1)))
    reference = codebook.embed(windows)
    keras_out = np.asarray(encoder_model(codebook, 124).predict(windows, verbose=0))
    assert np.allclose(reference, keras_out, atol=1e-3)
    quieter = codebook.embed(windows - 20.0)  # 20 dB quieter: the level part of the embedding moves
    assert not np.allclose(reference[:, -256:], quieter[:, -256:])


def test_codebook_round_trips_through_a_file(corpus: Corpus, tmp_path: Path) -> None:
    codebook = train_codebook(corpus, CodebookSettings(patch_frames=2, centroids=8, whitened=4, sample_windows=10,
                                                       max_patches=500, iterations=2, stat_windows=10))
    codebook.save(tmp_path / "c.npz")
    again = Codebook.load(tmp_path / "c.npz")
    assert again.floor_db == codebook.floor_db and np.array_equal(again.kernel, codebook.kernel)


def test_db_normalization_keeps_the_level() -> None:
    power = np.full((4, 3), 1e-8)
    assert np.allclose(encoder_input(power, "db"), -80.0) and np.allclose(power_db(100 * power), -60.0)
    assert encoder_input(power, "audeep-minmax").max() == pytest.approx(0.0, abs=1e-6)  # flat: min-max to ~0
    assert power_db(np.zeros((2, 2))).min() == FLOOR_DB
    assert np.allclose(power_db(np.array([[1e-11, 1e-17]])), [[-110.0, -170.0]])  # quiet recordings keep their level


def test_the_stacked_normalization_gives_the_level_beside_audeeps_scaling() -> None:
    """The fused default's input (T, 2F): absolute dB in [-120, 0] over 120 (so in [-1, 0], one int8 range with
    the other half), beside auDeep's per-window scaling in [-1, 1]."""
    power = np.array([[1e-3, 1e-9, 1e-14], [1e-5, 0.0, 1e-7]])
    stacked = encoder_input(power, "db+audeep-minmax", clip_below=-60)
    assert stacked.shape == (2, 6) and input_bands("db+audeep-minmax", 3) == 6 and input_bands("db", 3) == 3
    np.testing.assert_allclose(stacked[:, :3], [[-0.25, -0.75, -1.0], [-5 / 12, -1.0, -7 / 12]], atol=1e-6)
    np.testing.assert_allclose(stacked[:, 3:], window_features(power, -60), atol=1e-6)
    np.testing.assert_allclose(encoder_input(power * 1e-6, "db+audeep-minmax", clip_below=-60)[:, 3:],
                               stacked[:, 3:], atol=1e-6)  # 60 dB quieter: the same auDeep half


def test_default_bundle_hears_the_level_in_its_codebook_part_only(tmp_path: Path) -> None:
    """The default fuses the codebook (level-aware, dims :1280) and a t-RAE (auDeep's 0 dB scaling, dims 1280:, its
    representation averaged and maximised over the window)."""
    bundle = find_bundle(None)
    assert bundle.name == "general-fused-dynamic" and bundle.normalization == "db+audeep-minmax"
    assert bundle.embedding_size == 3328 and bundle.precision == "dynamic"
    assert bundle.embedding_parts == {"codebook": slice(0, 1280), "t-rae-mean": slice(1280, 2304),
                                      "t-rae-max": slice(2304, 3328)}
    samples, fs = soundfile.read(CLIPS[0])
    loud, quiet = tmp_path / "loud.wav", tmp_path / "quiet.wav"
    soundfile.write(loud, samples, fs)
    soundfile.write(quiet, samples * 0.05, fs)  # -26 dB
    default = embed_audio(bundle, files=[loud, quiet]).embeddings
    esc10 = embed_audio(load_bundle(Path(bundle.path).parent / "esc10-dynamic.bundle"), files=[loud, quiet]).embeddings
    assert np.abs(default[0, :1280] - default[1, :1280]).max() > 1.0  # standardised units: the level moved it
    assert cosine(default[0, :1280], default[1, :1280]) < 0.8
    assert cosine(default[0, 1280:], default[1, 1280:]) > 0.99  # the t-RAE part: the same sound
    assert np.abs(esc10[0] - esc10[1]).max() < 0.1  # auDeep scales each window to 0 dB
