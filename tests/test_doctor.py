"""`audeep-edge doctor`: a table of OK/WARN/FAIL checks, exit status 1 when anything fails."""

from __future__ import annotations

import socket
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import Mosquitto, free_port
from stream_testing import TINY, TINY_DYNAMIC, TINY_INT8, run_cli

from audeep_edge.config import build_config
from audeep_edge.deploy import board
from audeep_edge.deploy.broker_probe import probe_broker
from audeep_edge.deploy.doctor import DoctorOptions, audio_checks, run_doctor, throttling_check
from audeep_edge.deploy.report import FAIL, OK, WARN, Check, format_table
from audeep_edge.mqtt.settings import MqttSettings
from audeep_edge.sources.mic import InputDevice


def rows(stdout: str) -> dict[str, tuple[str, str]]:
    """``{check: (status, detail)}`` from doctor's table (the last row of a repeated check wins)."""
    header, *lines, _ = stdout.splitlines()
    status_at, detail_at = header.index("status"), header.index("detail")
    return {line[:status_at].strip(): (line[status_at:detail_at].strip(), line[detail_at:]) for line in lines}


def test_a_healthy_setup_exits_0_with_the_bundle_model_and_broker_checked(mosquitto):
    done = run_cli("doctor", "--bundle", TINY_INT8, "--broker", mosquitto.url)
    assert done.returncode == 0, done.stdout + done.stderr
    table = rows(done.stdout)
    assert table["bundle"][0] == OK and "tiny-int8 (int8" in table["bundle"][1] and "matches" in table["bundle"][1]
    assert table["model"][0] == OK and "one window in" in table["model"][1]
    assert table["broker"] == (OK, table["broker"][1]) and "accepted an MQTT 3.1.1 connection" in table["broker"][1]
    assert table["interpreter"][0] == OK and "ai-edge-litert" in table["interpreter"][1]
    assert table["cpu"][0] == OK and " features (" in table["cpu"][1] and "CompiledModel" in table["cpu"][1]
    assert table["edgetpu"][0] == OK  # not available here, and not asked for
    assert "audio" in done.stdout  # devices listed, or their absence reported (a WARN without a mic config)
    assert done.stdout.splitlines()[-1].startswith("0 failure(s)")


def test_a_missing_bundle_and_a_broker_that_is_down_fail_with_one_line_each():
    done = run_cli("doctor", "--bundle", "/nonexistent/model.bundle", "--broker", f"mqtt://127.0.0.1:{free_port()}",
                   "--timeout", "1")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    table = rows(done.stdout)
    assert table["bundle"] == (FAIL, "bundle /nonexistent/model.bundle does not exist; pass a directory made by "
                                     "`audeep-edge quantize`")
    assert table["broker"][0] == FAIL and "cannot reach mqtt://127.0.0.1:" in table["broker"][1]
    assert "Connection refused" in table["broker"][1]
    assert done.stdout.splitlines()[-1].startswith("2 failure(s)")


def test_a_cpu_profile_s_model_is_timed_on_the_path_listen_takes():
    """The profiles tell Pi users to time the model with doctor: `auto` with a dynamic bundle is XNNPACK on
    LiteRT's CompiledModel."""
    profile = Path(__file__).resolve().parents[1] / "firmware_configs" / "rpi4.toml"
    checks = {c.name: c for c in run_doctor(DoctorOptions(config_file=profile, bundle=TINY_DYNAMIC, broker="none"))}
    assert checks["bundle"].status == OK and "tiny-dynamic (dynamic" in checks["bundle"].detail
    assert checks["model"].status == OK and "CompiledModel, 1 thread(s), delegate xnnpack" in checks["model"].detail


def test_an_edgetpu_config_without_the_runtime_warns_or_fails_as_listen_would(tmp_path):
    config = tmp_path / "coral.toml"
    config.write_text(f'file = "{TINY}"\nbundle = "{TINY_INT8}"\ndelegate = "edgetpu"\nbroker = "none"\n')
    checks = {c.name: c for c in run_doctor(DoctorOptions(config_file=config))}
    assert checks["edgetpu"].status == WARN and "listen falls back to the CPU" in checks["edgetpu"].detail
    assert checks["model"].status == OK and "delegate none" in checks["model"].detail
    assert checks["broker"] == Check("broker", OK, "MQTT disabled (broker = none)")
    assert not [c for c in checks.values() if c.status == FAIL]

    config.write_text(config.read_text() + "require-delegate = true\n")
    checks = {c.name: c for c in run_doctor(DoctorOptions(config_file=config))}
    assert checks["edgetpu"].status == FAIL and "listen cannot start" in checks["edgetpu"].detail
    assert checks["model"].status == FAIL and "libedgetpu" in checks["model"].detail


# -- the broker probe against real brokers -------------------------------------------------------------


def test_probe_accepts_mqtt_5_and_names_a_refusal(tmp_path, mosquitto):
    assert probe_broker(MqttSettings(url=mosquitto.url, protocol="5")).ok
    closed = Mosquitto(tmp_path)
    closed.conf.write_text(f"listener {closed.port} {closed.host}\nallow_anonymous false\npersistence false\n")
    closed.start()
    try:
        result = probe_broker(MqttSettings(url=closed.url))
    finally:
        closed.stop()
    assert not result.ok and "refused the connection: Not authorized" in result.message


def test_probe_gives_up_on_a_server_that_never_answers_mqtt():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        result = probe_broker(MqttSettings(url=f"mqtt://127.0.0.1:{server.getsockname()[1]}"), timeout=0.5)
    assert not result.ok and "sent no CONNACK within 0.5 s" in result.message


# -- audio, board and table ----------------------------------------------------------------------------


def fake_audio(devices: list[InputDevice], rates: set[int]) -> SimpleNamespace:
    return SimpleNamespace(name="fake", devices=lambda: devices, errors=(OSError,),
                           supports=lambda device, rate, channels: rate in rates)


USB_MIC = InputDevice(2, "USB PnP Sound Device: Audio (hw:2,0)", 1, 48000, default=False)
HDMI = InputDevice(0, "vc4-hdmi-0", 2, 44100, default=True)


def test_audio_lists_every_input_and_checks_the_configured_capture(tmp_path):
    config = tmp_path / "mic.toml"
    config.write_text('mic = true\ndevice = "USB"\nrate = 48000\n')
    checks = audio_checks(build_config(config), None, mic_required=True, backend=fake_audio([HDMI, USB_MIC], {48000}))
    assert [c.detail for c in checks[:2]] == ["#0 vc4-hdmi-0: 2 ch, default 44100 Hz (default input)",
                                              "#2 USB PnP Sound Device: Audio (hw:2,0): 1 ch, default 48000 Hz"]
    assert checks[2] == Check("capture", OK, "input device 2: USB PnP Sound Device: Audio (hw:2,0) at 48000 Hz x 1 ch")

    bad = audio_checks(build_config(config), None, mic_required=True, backend=fake_audio([USB_MIC], {44100}))
    assert bad[-1].status == FAIL and "--rate 48000: not supported" in bad[-1].detail


def test_no_audio_input_fails_a_microphone_config_and_only_warns_otherwise():
    cfg = build_config(None)
    assert audio_checks(cfg, None, mic_required=True, backend=fake_audio([], set()))[-1].status == FAIL
    assert audio_checks(cfg, None, mic_required=False, backend=fake_audio([], set()))[-1].status == WARN


def test_throttling_is_read_from_vcgencmd_and_under_voltage_fails(tmp_path):
    vcgencmd = tmp_path / "vcgencmd"
    vcgencmd.write_text("#!/bin/sh\necho throttled=0x50005\n")
    vcgencmd.chmod(vcgencmd.stat().st_mode | stat.S_IEXEC)
    state = board.read_throttled(str(vcgencmd))
    assert state.now == ("under-voltage", "throttled") and state.since_boot == ("under-voltage", "throttled")
    assert throttling_check(state).status == FAIL
    assert throttling_check(board.parse_throttled("throttled=0x20000")).status == WARN
    assert throttling_check(board.parse_throttled("throttled=0x0")) == Check(
        "throttling", OK, "none since boot (get_throttled = 0x0)")


def test_board_readers_take_the_pi_sysfs_layout(tmp_path):
    (tmp_path / "temp").write_text("48312\n")
    (tmp_path / "model").write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\0")
    usb = tmp_path / "usb" / "2-1"
    usb.mkdir(parents=True)
    for name, value in {"idVendor": "18d1", "idProduct": "9302", "speed": "480"}.items():
        (usb / name).write_text(value + "\n")
    assert board.cpu_temperature_c(tmp_path / "temp") == pytest.approx(48.312)
    assert board.board_model(tmp_path / "model") == "Raspberry Pi 5 Model B Rev 1.0"
    [coral] = board.coral_devices(tmp_path / "usb", tmp_path / "no-apex")
    assert coral.kind == "usb" and coral.slow_usb and "18d1:9302 at 2-1 (ready, USB 2 link)" in coral.description
    assert board.cpu_temperature_c(tmp_path / "absent") is None and board.board_model(tmp_path / "absent") is None


def test_the_table_is_aligned_and_counts_problems():
    table = format_table([Check("bundle", OK, "fine"), Check("broker", FAIL, "cannot reach\nit")])
    assert table.splitlines() == ["check   status  detail", "bundle  OK      fine", "broker  FAIL    cannot reach it",
                                  "1 failure(s), 0 warning(s)"]

