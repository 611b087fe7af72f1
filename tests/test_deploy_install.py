"""firmware_configs/install.sh into a temporary prefix, offline, and the systemd unit it writes.

The prefix's venv is made beforehand without pip and sees this venv's packages through a ``.pth`` file (in
place of Debian's python3-* packages with --system-site-packages), so `--offline` installs only audeep-edge
from a copy of this source tree: nothing is downloaded and the checkout gets no build/ directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from stream_testing import TINY_DYNAMIC, TINY_INT8

import audeep_edge

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "firmware_configs" / "install.sh"
UNIT_TEMPLATE = ROOT / "firmware_configs" / "audeep-edge.service"


def install(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(INSTALL), *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PIP_NO_INPUT": "1"})


def offline_venv(prefix: Path) -> Path:
    venv = prefix / "opt" / "audeep-edge" / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    ask = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.check_output([str(venv / "bin" / "python"), "-c", ask], text=True).strip())
    (site / "this-checkout-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """install.sh run twice into one prefix: first from a source tree with --no-systemd and no --bundle (the
    package's default model), then again (after the user edited the config) with the unit; returns (prefix,
    first run, second run)."""
    work = tmp_path_factory.mktemp("install")
    source = work / "src"
    shutil.copytree(ROOT / "audeep_edge", source / "audeep_edge", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    prefix = work / "root"
    offline_venv(prefix)
    common = ["--prefix", prefix, "--offline", "--profile", "rpi4", "--python", sys.executable]
    first = install(*common, "--source", source, "--no-systemd")
    config = prefix / "etc" / "audeep-edge" / "config.toml"
    if first.returncode == 0:
        config.write_text(config.read_text().replace("threads = 1 ", "threads = 3 "))
    second = install(*common, "--source", source)
    return prefix, first, second


def test_install_into_a_prefix_gives_a_working_cli_config_and_bundle(installed):
    prefix, first, _ = installed
    assert first.returncode == 0, first.stdout + first.stderr
    venv = prefix / "opt" / "audeep-edge" / "venv"
    # install.sh ran the installed `audeep-edge --version` and `config check` itself
    assert f"install.sh: installed audeep-edge {audeep_edge.__version__}\n" in first.stdout
    ask = "import audeep_edge; print(audeep_edge.__file__)"
    where = subprocess.check_output([str(venv / "bin" / "python"), "-c", ask], text=True, cwd=prefix)
    assert where.startswith(str(venv))
    state = prefix / "var" / "lib" / "audeep-edge"
    assert (state / "model.bundle" / "bundle.json").is_file()
    config = (prefix / "etc" / "audeep-edge" / "config.toml").read_text()
    assert f'bundle = "{state}/model.bundle"' in config and f'queue-dir = "{state}/spool"' in config
    # the profile's precision = "dynamic" is the package's default model's
    assert "installed the bundled model general-fused-dynamic.bundle" in first.stdout
    assert "config.toml: ok (source mic, bundle general-fused-dynamic dynamic" in first.stdout
    assert "no systemd unit" in first.stdout and "audeep-edge.service" not in first.stdout


def test_a_second_run_keeps_the_edited_config_and_the_bundle(installed):
    prefix, _, second = installed
    assert second.returncode == 0, second.stdout + second.stderr
    etc = prefix / "etc" / "audeep-edge"
    assert "reusing the venv" in second.stdout and "keeping the installed bundle" in second.stdout
    assert "threads = 3 " in (etc / "config.toml").read_text()
    assert "threads = 1 " in (etc / "config.toml.new").read_text()


def test_the_written_unit_runs_listen_as_a_service_user_with_audio(installed):
    prefix, _, second = installed
    unit = (prefix / "etc" / "systemd" / "system" / "audeep-edge.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    venv, etc = prefix / "opt" / "audeep-edge" / "venv", prefix / "etc" / "audeep-edge"
    assert settings["ExecStart"] == f"{venv}/bin/audeep-edge listen --config {etc}/config.toml"
    assert settings["User"] == "audeep-edge" and settings["Restart"] == "on-failure"
    assert settings["StandardOutput"] == settings["StandardError"] == "journal"
    assert "audio" in settings["SupplementaryGroups"] or not shutil.which("getent")
    assert "DeviceAllow=char-alsa rw" in unit and settings["ProtectSystem"] == "strict"


def test_the_written_unit_passes_systemd_analyze_verify(installed):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    prefix, _, _ = installed
    unit = prefix / "etc" / "systemd" / "system" / "audeep-edge.service"
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "audeep-edge.service" not in done.stderr, done.stderr  # unknown keys are only warnings: none allowed


def test_the_unit_template_names_the_documented_paths():
    unit = UNIT_TEMPLATE.read_text()
    assert "ExecStart=/opt/audeep-edge/venv/bin/audeep-edge listen --config /etc/audeep-edge/config.toml" in unit
    assert "SupplementaryGroups=audio plugdev" in unit


def test_dry_run_with_edgetpu_shows_the_apt_steps_and_changes_nothing(tmp_path):
    done = install("--dry-run", "--with-edgetpu", "--profile", "rpi-coral-usb", "--prefix", tmp_path / "p",
                   "--python", sys.executable)
    assert done.returncode == 0, done.stderr
    assert "coral-edgetpu-stable main" in done.stdout and "+ env DEBIAN_FRONTEND=noninteractive apt-get install " \
        "-y libedgetpu1-std" in done.stdout
    assert "+ systemctl" not in done.stdout  # --prefix never touches the running system
    assert list((tmp_path / "p").iterdir()) == []


def test_the_default_source_is_this_checkout_until_the_package_is_published(tmp_path):
    done = install("--dry-run", "--profile", "rpi4", "--prefix", tmp_path / "p", "--python", sys.executable)
    assert done.returncode == 0, done.stderr
    assert f"pip install {ROOT}\n" in done.stdout and f"-m pip install -q --disable-pip-version-check --upgrade " \
        f"{ROOT}\n" in done.stdout


def test_dry_run_with_a_bundle_of_the_profiles_precision_shows_where_it_goes(tmp_path):
    done = install("--dry-run", "--profile", "rpi4", "--bundle", TINY_DYNAMIC, "--prefix", tmp_path / "p",
                   "--python", sys.executable)
    assert done.returncode == 0, done.stderr
    assert f"+ cp -r {TINY_DYNAMIC} {tmp_path}/p/var/lib/audeep-edge/model.bundle.new" in done.stdout
    assert list((tmp_path / "p").iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--profile", "pi-zero"], "--profile pi-zero: no such file or profile"),
    (["--profile", "rpi4", "--bundle", "."], "not a bundle directory (no bundle.json)"),
    (["--profile", "rpi4", "--frobnicate"], "unknown option --frobnicate"),
    (["--profile", "rpi4", "--bundle", TINY_INT8, "--python", sys.executable],
     'is int8 but the profile has precision = "dynamic": quantize with --precision dynamic'),
])
def test_bad_options_stop_with_one_error_line(tmp_path, args, message):
    done = install("--prefix", tmp_path, *args)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and message in done.stderr
    assert not (tmp_path / "opt").exists()  # stopped before installing anything
