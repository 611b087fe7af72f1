"""What ``--help`` and ``--list-devices`` tell a user: every listen default and choice, the extras named verbatim."""

from __future__ import annotations

import dataclasses
import re
from types import SimpleNamespace

from conftest import cli

from audeep_edge.config import ListenConfig, flag


def help_text(capsys, *command: str) -> str:
    code, out, err = cli(capsys, *command, "--help")
    assert code == 0, err
    return " ".join(out.replace("│", " ").split())   # one line: the table wraps long help texts


def test_listen_help_shows_every_default_and_choice(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    text = help_text(capsys, "listen")
    rows = {flag(s.name): row(text, flag(s.name)) for s in dataclasses.fields(ListenConfig)}
    for option, shown in [("--top-k", "[default: 3]"), ("--smoothing", "Choices: majority, ema."),
                          ("--smoothing", "[default: majority]"), ("--format", "Choices: s16le, f32le."),
                          ("--realtime", "[default: off]"), ("--precision", "[default: not set]"),
                          ("--delegate", "Choices: auto, none, xnnpack, edgetpu. [default: auto]")]:
        assert shown in rows[option], (option, shown)
    for option, text in rows.items():   # each states its default, in brackets or in its own words
        assert "default" in text.lower(), option


def row(text: str, option: str) -> str:
    """The help of ``option`` in the rendered table: from its name and metavar to the next option."""
    found = re.search(rf"{option}( -\w)? <\w+> (.*?)(?= --[a-z-]+( -\w)? <\w+> |╰)", text)
    assert found, option
    return found.group(2)


def test_bench_help_names_the_train_extra(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    assert "needs the [train] extra" in help_text(capsys, "bench")


def test_list_devices_says_when_there_is_none(capsys, monkeypatch):
    from audeep_edge.sources import mic

    monkeypatch.setattr(mic, "audio_backend", lambda: SimpleNamespace(devices=lambda: []))  # a machine without one
    code, out, err = cli(capsys, "listen", "--list-devices")
    assert code == 0, err
    assert out.strip().splitlines() == ["no audio input devices found (plug in a microphone; --file and --stdin "
                                        "need none)"]
