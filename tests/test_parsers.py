"""Parsers: every supported layout, auto-detection and custom parser classes."""

from __future__ import annotations

import shutil
import sys
import textwrap

import pytest

from audeep_edge.dataset.parsers import detect_parser, get_parser
from audeep_edge.errors import ConfigError, DataError


@pytest.fixture
def audio(tmp_path, tone_wav):
    """Factory writing a short tone at a path relative to tmp_path (parents created)."""

    def make(relative: str, **kwargs):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("seconds", 0.2)
        kwargs.setdefault("fs", 8000)
        if relative.lower().endswith(".ogg"):
            kwargs.setdefault("subtype", "VORBIS")
        return tone_wav(relative, **kwargs)

    return make


def test_esc_layout_sorted_with_folds_from_the_file_name(esc_mini):
    parser = get_parser(None, esc_mini)
    assert parser.name == "esc" and parser.num_folds == 5
    instances = parser.parse()
    assert len(instances) == 15
    assert parser.label_map == {"Dog bark": 0, "Rain": 1, "Rooster": 2}
    dog = [i for i in instances if i.label_nominal == "Dog bark"]
    assert [i.filename for i in dog] == sorted(i.filename for i in dog)
    assert all(i.path.is_absolute() and i.path.exists() for i in instances)
    assert dog[2].filename.startswith("3-") and dog[2].cv_folds == (0, 0, 1, 0, 0)
    assert all(i.partition is None for i in instances)


def test_esc_accepts_wav_and_refuses_foreign_files(tmp_path, audio):
    audio("001 - Dog bark/1-1-A.wav")
    audio("002 - Rain/2-2-A.WAV")
    assert detect_parser(tmp_path).name == "esc"
    (tmp_path / "002 - Rain" / "notes.txt").write_text("x")
    assert not get_parser("esc", tmp_path).can_parse()
    with pytest.raises(DataError, match="not a esc data set"):
        get_parser("esc", tmp_path).parse()


def test_dcase_layout(tmp_path, audio):
    for name in ("a.wav", "b.wav", "c.wav"):
        audio(f"audio/{name}")
    (tmp_path / "meta.txt").write_text("audio/a.wav\tbeach\ta\naudio/b.wav\ttram\tb\naudio/c.wav\tcafe/restaurant\tc\n")
    (tmp_path / "evaluation_setup").mkdir()
    for k in range(1, 5):
        train = ["audio/a.wav", "audio/b.wav"] if k == 1 else ["audio/c.wav"]
        (tmp_path / "evaluation_setup" / f"fold{k}_train.txt").write_text(
            "".join(f"{t}\tx\n" for t in train))
    parser = detect_parser(tmp_path)
    assert parser.name == "dcase" and parser.num_folds == 4
    instances = parser.parse()
    assert [i.filename for i in instances] == ["a.wav", "b.wav", "c.wav"]
    assert instances[0].cv_folds == (0, 1, 1, 1) and instances[2].cv_folds == (1, 0, 0, 0)
    assert parser.label_map["tram"] == 14 and instances[2].label_nominal == "cafe/restaurant"


def test_urbansound8k_layout(tmp_path, audio):
    audio("audio/fold1/100-a.wav")
    audio("audio/fold3/200-b.wav")
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata" / "UrbanSound8K.csv").write_text(
        "slice_file_name,fsID,start,end,salience,fold,classID,class\n"
        "100-a.wav,100,0,1,1,1,3,dog_bark\n200-b.wav,200,0,1,1,3,9,street_music\n")
    parser = detect_parser(tmp_path)
    assert parser.name == "urbansound8k" and parser.num_folds == 10
    assert parser.label_map == {"dog_bark": 3, "street_music": 9}
    a, b = parser.parse()
    assert a.cv_folds[0] == 1 and sum(a.cv_folds) == 1 and b.cv_folds[2] == 1 and b.path.exists()


def test_partitioned_layout(tmp_path, audio):
    audio("train/dog/a.wav")
    audio("train/cat/b.flac")
    audio("test/dog/c.ogg")
    parser = detect_parser(tmp_path)
    assert parser.name == "partitioned" and parser.label_map == {"cat": 0, "dog": 1}
    assert [(i.filename, i.partition) for i in parser.parse()] == [
        ("train/cat/b.flac", 0), ("train/dog/a.wav", 0), ("test/dog/c.ogg", 2)]


def test_cross_validated_layout_orders_folds_numerically(tmp_path, audio):
    for k in range(1, 11):
        audio(f"fold_{k}/{'cat' if k % 2 else 'dog'}/x{k}.wav")
    parser = detect_parser(tmp_path)
    assert parser.name == "cross-validated" and parser.num_folds == 10
    assert parser.label_map == {"cat": 0, "dog": 1}
    instances = parser.parse()
    assert [i.filename.split("/")[0] for i in instances] == [f"fold_{k}" for k in range(1, 11)]
    assert instances[9].cv_folds == (0,) * 9 + (1,)


def test_cross_validated_needs_consecutive_folds(tmp_path, audio):
    audio("fold_1/cat/a.wav")
    audio("fold_3/cat/b.wav")
    assert not get_parser("cross-validated", tmp_path).can_parse()


def test_no_metadata_finds_wav_flac_ogg_recursively(tmp_path, audio):
    audio("z.wav")
    audio("sub/deeper/a.flac")
    audio("sub/b.ogg")
    (tmp_path / "readme.txt").write_text("x")
    (tmp_path / ".hidden").mkdir()
    audio(".hidden/c.wav")
    parser = get_parser("no-metadata", tmp_path)
    assert [i.filename for i in parser.parse()] == ["sub/b.ogg", "sub/deeper/a.flac", "z.wav"]
    assert parser.label_map is None and parser.num_folds == 0


def test_auto_detection_refuses_ambiguous_unknown_and_empty_directories(tmp_path, audio):
    audio("plain/a.wav")
    with pytest.raises(DataError, match=r"plain: unknown data set layout.*--parser no-metadata"):
        detect_parser(tmp_path / "plain")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no audio files"):
        detect_parser(tmp_path / "empty")
    with pytest.raises(DataError, match="no such data set directory"):
        detect_parser(tmp_path / "missing")
    audio("both/train/dog/a.wav")
    audio("both/fold_1/dog/b.wav")
    audio("both/fold_2/cat/c.wav")
    with pytest.raises(DataError, match=r"both: ambiguous data set layout \(matches partitioned, cross-validated\)"):
        detect_parser(tmp_path / "both")


def test_audeep_class_names_are_understood(esc_mini):
    assert get_parser("audeep.backend.parsers.meta.MetaParser", esc_mini).name == "esc"
    assert get_parser("audeep.backend.parsers.esc.ESCParser", esc_mini).name == "esc"


AUDEEP_STYLE_PARSER = '''
from collections import namedtuple
from enum import Enum
from pathlib import Path

class Split(Enum):
    TRAIN = 0
    VALID = 1

class Partition(Enum):
    TRAIN = 0
    DEVEL = 1
    TEST = 2

_ParserInstance = namedtuple("_ParserInstance", "path filename label_nominal label_numeric cv_folds partition")

class MyParser:
    """Written against auDeep's parser interface: enums, namedtuples, label_map property."""
    def __init__(self, basedir):
        self.basedir = Path(basedir)
    def can_parse(self):
        return (self.basedir / "labels.txt").exists()
    @property
    def label_map(self):
        return {"hi": 1, "lo": 0}
    @property
    def num_folds(self):
        return 0
    def parse(self):
        rows = [line.split() for line in (self.basedir / "labels.txt").read_text().splitlines()]
        return [_ParserInstance(self.basedir / f, f, lab, None, [], Partition.TEST) for f, lab in rows]
'''


def test_custom_parser_from_a_file_and_from_a_module(tmp_path, audio, monkeypatch):
    audio("data/one.wav")
    audio("data/two.wav")
    (tmp_path / "data" / "labels.txt").write_text("one.wav hi\ntwo.wav lo\n")
    (tmp_path / "my_parsers.py").write_text(textwrap.dedent(AUDEEP_STYLE_PARSER))
    for spec in (f"{tmp_path / 'my_parsers.py'}:MyParser", "my_parsers:MyParser", "my_parsers.MyParser"):
        monkeypatch.syspath_prepend(str(tmp_path))
        parser = get_parser(spec, tmp_path / "data")
        instances = parser.parse()
        assert [(i.filename, i.label_nominal, i.partition) for i in instances] == [("one.wav", "hi", 2),
                                                                                   ("two.wav", "lo", 2)]
        assert parser.label_map == {"hi": 1, "lo": 0} and instances[0].path.is_absolute()
        sys.modules.pop("my_parsers", None)
    with pytest.raises(ConfigError, match="has no class Nope"):
        get_parser(f"{tmp_path / 'my_parsers.py'}:Nope", tmp_path)
    with pytest.raises(ConfigError, match="cannot import no_such_module"):
        get_parser("no_such_module:Parser", tmp_path)
    with pytest.raises(ConfigError, match="unknown parser"):
        get_parser("esc10", tmp_path)
    shutil.rmtree(tmp_path / "data")


def test_labelled_clips_renumber_a_layouts_folds_that_have_no_clips(tmp_path, esc_mini):
    """ESC-10 without its fold 5 (held out for a demo): four folds, none of them empty."""
    import numpy as np

    from audeep_edge.dataset.folds import labelled_clips

    for clip in esc_mini.rglob("*.ogg"):
        if not clip.name.startswith("5-"):
            (tmp_path / clip.parent.name).mkdir(exist_ok=True)
            shutil.copy(clip, tmp_path / clip.parent.name / clip.name)
    data = labelled_clips(tmp_path, max_folds=5)
    assert data.num_folds == 4 and np.bincount(data.folds).tolist() == [3, 3, 3, 3]
