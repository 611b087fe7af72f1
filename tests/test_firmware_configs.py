"""The device profiles in firmware_configs/: valid listen configs that `config check` accepts and `listen` runs."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from stream_testing import RAIN, TINY_DYNAMIC, TINY_INT8, assert_one_error_line, read_jsonl, run_cli

from audeep_edge.commands.stream import config_check, run_listen
from audeep_edge.config import build_config
from audeep_edge.pipeline.assemble import find_bundle

PROFILE_DIR = Path(__file__).resolve().parents[1] / "firmware_configs"
PROFILES = ["rpi4", "rpi5", "rpi-coral-usb", "coral-devboard", "linux-x86_64"]
EDGETPU_PROFILES = {"rpi-coral-usb", "coral-devboard"}


def profile_path(name: str) -> Path:
    return PROFILE_DIR / f"{name}.toml"


def stand_in(name: str) -> tuple[Path, str]:
    """The test bundle standing in for a profile's bundle, and its precision: the CPU profiles' dynamic one, or
    the int8 one for an Edge TPU profile (no Edge TPU here)."""
    return (TINY_INT8, "int8") if name in EDGETPU_PROFILES else (TINY_DYNAMIC, "dynamic")


def as_int8(profile: Path, directory: Path) -> Path:
    """``profile`` with ``precision = "int8"``: the test bundle stands in for an Edge TPU profile's bundle."""
    path = directory / profile.name
    path.write_text(re.sub(r'(?m)^precision = .*$', 'precision = "int8"', profile.read_text()))
    return path


def test_there_is_one_profile_per_target():
    assert sorted(p.stem for p in PROFILE_DIR.glob("*.toml")) == sorted(PROFILES)


@pytest.mark.parametrize("name", PROFILES)
def test_each_profile_is_a_microphone_config_for_the_installed_bundle(name):
    cfg = build_config(profile_path(name))
    assert cfg.source == "mic" and cfg.rate is None  # the bundle's rate when the microphone has it
    assert cfg.bundle == Path("/var/lib/audeep-edge/model.bundle")
    assert (cfg.delegate == "edgetpu") == (cfg.precision == "edgetpu") == (name in EDGETPU_PROFILES)
    assert 1 <= cfg.threads <= 4 and cfg.hop is not None
    assert cfg.queue_dir == Path("/var/lib/audeep-edge/spool")


@pytest.mark.parametrize("name", sorted(set(PROFILES) - EDGETPU_PROFILES))
def test_a_cpu_profile_takes_the_packaged_default_model(name):
    """install.sh without --bundle installs the package's default model: it must have the profile's precision."""
    cfg = build_config(profile_path(name))
    assert find_bundle(None, cfg.precision).precision == "dynamic" and cfg.delegate == "auto"


@pytest.mark.parametrize("name", PROFILES)
def test_each_profile_s_hop_is_whole_frames_of_the_packaged_models(name):
    """A hop is rounded to whole spectrogram frames (0.04 s here): the profiles state hops that need none."""
    cfg = build_config(profile_path(name))
    assert find_bundle(None, "dynamic").window_hop(cfg.hop).seconds == pytest.approx(cfg.hop, abs=1e-9)


def test_config_check_states_a_rounded_hop(tmp_path, capsys):
    profile = tmp_path / "rpi5.toml"
    profile.write_text(re.sub(r"(?m)^hop = .*$", "hop = 0.5", profile_path("rpi5").read_text()))
    config_check(profile, bundle_path=find_bundle(None, "dynamic").path)
    assert "hop 0.48 s (hop = 0.5 rounded to whole frames of 0.04 s)" in capsys.readouterr().out


@pytest.mark.parametrize("name", PROFILES)
def test_config_check_accepts_each_profile_with_a_real_bundle(name, tmp_path, capsys):
    """`config check PROFILE --bundle B`: the profile's bundle path exists only on an installed device."""
    bundle, precision = stand_in(name)
    profile = as_int8(profile_path(name), tmp_path) if name in EDGETPU_PROFILES else profile_path(name)
    config_check(profile, bundle_path=bundle)
    line = capsys.readouterr().out
    assert f": ok (source mic, bundle {bundle.stem} {precision}" in line
    assert f"delegate {build_config(profile_path(name)).delegate}" in line


@pytest.mark.parametrize("name", PROFILES)
def test_listen_streams_a_file_with_each_profile(name, tmp_path, mosquitto, caplog):
    """The profile's threads, delegate, hop, MQTT and dashboard settings, with the audio from a file, the test
    bundle and a real broker; a CPU profile's `auto` runs the dynamic bundle on XNNPACK's CompiledModel, an Edge
    TPU profile falls back to the CPU with the documented warning."""
    bundle, precision = stand_in(name)
    jsonl = tmp_path / "out.jsonl"
    overrides = {"file": RAIN, "bundle": bundle, "precision": precision, "broker": mosquitto.url,
                 "jsonl": str(jsonl), "max_windows": 3, "queue_dir": tmp_path / "spool", "dashboard_port": 0}
    cfg = build_config(profile_path(name), overrides)
    with caplog.at_level(logging.INFO, logger="audeep_edge.encoder.interpreter"):
        run_listen(cfg)
    records = read_jsonl(jsonl.read_text())
    windows = records["window"]
    assert [w["seq"] for w in windows] == [0, 1, 2]
    info = records["info"][0]
    assert info["precision"] == precision and info["hop_seconds"] == pytest.approx(cfg.hop, abs=0.03)
    times = [w["audio_time"] for w in windows]
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == pytest.approx([info["hop_seconds"]] * 2)
    fallback = [r.getMessage() for r in caplog.records if "running on the CPU instead" in r.getMessage()]
    loaded = [r.getMessage() for r in caplog.records if r.getMessage().startswith("model ")]
    if name in EDGETPU_PROFILES:
        assert len(fallback) == 1 and "libedgetpu" in fallback[0]
    else:
        assert not fallback
        assert len(loaded) == 1 and "CompiledModel" in loaded[0] and "delegate xnnpack" in loaded[0], loaded


def test_an_edgetpu_profile_with_require_delegate_fails_in_one_line(tmp_path):
    done = run_cli("listen", "--config", profile_path("rpi-coral-usb"), "--file", RAIN, "--bundle", TINY_INT8,
                   "--precision", "int8", "--broker", "none", "--max-windows", "1", "--require-delegate")
    line = assert_one_error_line(done, "--delegate edgetpu", "libedgetpu")
    assert "install the Edge TPU runtime" in line
