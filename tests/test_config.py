"""Runtime config: typed, bounded, no unknown keys, file < command line, and `config check`."""

from __future__ import annotations

from pathlib import Path

import pytest
from stream_testing import TINY, assert_one_error_line, run_cli, swapped_model_bundle

from audeep_edge.config import ListenConfig, build_config, load_config_file
from audeep_edge.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "device.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_a_microphone_with_the_embedded_broker():
    cfg = ListenConfig()
    assert cfg.source == "mic" and cfg.broker is None and cfg.delegate == "auto" and cfg.threads == 1
    assert cfg.mqtt_options() == {} and cfg.device_id


def test_file_keys_are_the_flag_names_and_relative_paths_follow_the_file(tmp_path):
    path = write(tmp_path, 'file = "clips/a.wav"\nrealtime = true\ntop-k = 2\nsmoothing = "ema"\nbroker = '
                           '"mqtt://10.0.0.2"\nqos = 0\nhomeassistant = true\ndevice-id = "kitchen"\n')
    cfg = build_config(path)
    assert cfg.file == tmp_path / "clips" / "a.wav" and cfg.realtime and cfg.top_k == 2 and cfg.smoothing == "ema"
    assert cfg.mqtt_options() == {"qos": 0, "homeassistant": True} and cfg.device_id == "kitchen"


def test_yaml_files_work_the_same(tmp_path):
    cfg = build_config(write(tmp_path, "stdin: true\nrate: 48000\nchannels: 2\nhop: 0.5\n", "pi.yaml"))
    assert (cfg.source, cfg.rate, cfg.channels, cfg.hop) == ("stdin", 48000, 2, 0.5)


def test_the_command_line_overrides_the_file_and_a_new_source_replaces_the_file_source(tmp_path):
    path = write(tmp_path, 'mic = true\ndevice = "USB"\nrate = 48000\ntop-k = 1\nthreads = 2\n')
    cfg = build_config(path, {"top_k": 4, "threads": None})
    assert cfg.top_k == 4 and cfg.threads == 2 and cfg.device == "USB"
    cfg = build_config(path, {"file": "x.wav"})
    assert cfg.source == "file" and cfg.device is None and cfg.rate is None and cfg.top_k == 1


@pytest.mark.parametrize(("text", "message"), [
    ("top_k = 3", "unknown key 'top_k'; did you mean 'top-k'?"),
    ("colour = 3", "unknown key 'colour'"),
    ("top-k = 0", "top-k must be between 1 and 1000, got 0"),
    ('threads = "2"', "threads must be a whole number"),
    ('delegate = "tpu"', "delegate must be one of auto, none, xnnpack, edgetpu"),
    ("hop = -1", "hop must be between"),
    ("[mqtt]\nqos = 1", "[mqtt]: tables are not used"),
    ("top-k = [1, 2]", "'top-k' must be a single value"),
    ("top-k = ", "invalid TOML"),
])
def test_bad_files_name_the_file_and_the_key(tmp_path, message, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config_file(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


@pytest.mark.parametrize(("values", "message"), [
    ({"file": "a.wav", "stdin": True}, "choose one source, got --file and --stdin"),
    ({"stdin": True, "realtime": True}, "--realtime applies to --file only"),
    ({"file": "a.wav", "rate": 8000}, "--rate applies to --stdin and --mic only"),
    ({"require_delegate": True}, "--require-delegate needs --delegate"),
    ({"broker": "none", "dashboard": True}, "--dashboard reads MQTT"),
    ({"device_id": "kitchen/1"}, "--device-id 'kitchen/1'"),
])
def test_conflicting_settings_are_refused(values, message):
    with pytest.raises(ConfigError, match=message):
        ListenConfig(**values)


def test_config_check_accepts_a_good_file_and_rejects_a_bad_one_in_one_line(tmp_path):
    good = write(tmp_path, f'file = "x.wav"\nbundle = "{TINY}"\nhop = 0.8\nbroker = "mqtt://127.0.0.1:1884"\n')
    done = run_cli("config", "check", good)
    assert done.returncode == 0, done.stderr
    assert "ok (source file, bundle tiny float32, hop 0.8 s" in done.stdout
    assert_one_error_line(run_cli("config", "check", write(tmp_path, "topk = 1", "bad.toml")),
                          "bad.toml: unknown key 'topk'")
    mismatch = write(tmp_path, f'bundle = "{TINY}"\nprecision = "int8"\n', "int8.toml")
    assert_one_error_line(run_cli("config", "check", mismatch), "is float32 but the config asks for --precision int8")


def test_config_check_reports_what_listen_would_refuse_in_one_line(tmp_path):
    """A file that is not UTF-8, a broker URL that does not parse, MQTT values with `broker = "none"` (a profile
    is often reused with a broker later) and a model that does not match its bundle.json."""
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('device-id = "küche"\n'.encode("latin-1"))
    assert_one_error_line(run_cli("config", "check", latin1), "latin1.toml: not UTF-8 text")
    checks = [(f'bundle = "{TINY}"\nbroker = "mqtt://[::1"', "--broker: expected mqtt://host[:port]"),
              (f'bundle = "{TINY}"\nbroker = "none"\nqos = 7', "--qos 7: expected 0 or 1"),
              (f'bundle = "{TINY}"\nbroker = "none"\nqueue-max = -1', "--queue-max -1: expected 1..10000000"),
              (f'bundle = "{swapped_model_bundle(tmp_path)}"', "the model takes input [1, 124, 128]")]
    for i, (text, needle) in enumerate(checks):
        assert_one_error_line(run_cli("config", "check", write(tmp_path, text, f"check{i}.toml")), needle)



def test_a_tls_profile_runs_with_broker_none(tmp_path):
    """``--broker none`` checks the MQTT values but not the connection's: a profile's TLS settings (for an mqtts://
    broker, files that may live only on the device) do not stop a run without a broker."""
    from audeep_edge.config import ListenConfig

    cfg = ListenConfig(bundle=TINY, broker="none", ca_file=tmp_path / "not-here.pem", tls_insecure=True)
    assert cfg.broker == "none"


def test_a_watch_min_score_that_top_k_could_hide_is_refused():
    """A watched label is read from the window's top_k: with --watch-min-score 0.3 a label at 0.3 can rank third."""
    assert build_config(overrides={"watch_labels": "Dog bark", "watch_min_score": 0.3, "top_k": 3}).top_k == 3
    with pytest.raises(ConfigError, match="--watch-min-score 0.3 needs --top-k 3 or more"):
        build_config(overrides={"watch_labels": "Dog bark", "watch_min_score": 0.3, "top_k": 2})
    assert build_config(overrides={"watch_labels": "Dog bark", "watch_min_score": 0.7, "top_k": 1}).top_k == 1
