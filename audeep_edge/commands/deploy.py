"""``audeep-edge doctor`` (can this machine run ``listen``: audio, interpreter, delegates, bundle, broker, disk, and
on a Raspberry Pi temperature and throttling) and ``audeep-edge adopt-edgetpu`` (put an ``edgetpu_compiler``
output into its bundle). Installing a device is ``firmware_configs/install.sh``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Register ``doctor`` and ``adopt-edgetpu``."""
    app.command("doctor")(doctor)
    app.command("adopt-edgetpu")(adopt_edgetpu)


def doctor(
    bundle: Optional[Path] = typer.Option(None, "--bundle", "-b", help="Bundle to check (default: the config's, "
                                          "else the bundled model)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="listen's config file to check, e.g. "
                                          "/etc/audeep-edge/config.toml."),
    broker: Optional[str] = typer.Option(None, "--broker", help="Broker to try, mqtt[s]://[user@]host[:port] "
                                         "(default: the config's)."),
    timeout: float = typer.Option(3.0, "--timeout", min=0.1, max=60.0, help="Seconds to wait for the broker."),
) -> None:
    """Check what `listen` needs on this machine and print a table of OK/WARN/FAIL; exit status 1 if any FAIL.

    Audio inputs and their rates, the interpreter package, the Edge TPU delegate, the bundle's hash and model,
    the broker (TCP + MQTT CONNECT), free disk, and on a Raspberry Pi CPU temperature and throttling.
    """
    from audeep_edge.deploy.doctor import DoctorOptions, run_doctor
    from audeep_edge.deploy.report import FAIL, format_table

    checks = run_doctor(DoctorOptions(config_file=config, bundle=bundle, broker=broker, broker_timeout=timeout))
    typer.echo(format_table(checks))
    if any(check.status == FAIL for check in checks):
        raise typer.Exit(1)


def adopt_edgetpu(
    bundle: Path = typer.Argument(..., help="Bundle made by `audeep-edge quantize --precision edgetpu`."),
    model: Optional[Path] = typer.Option(None, "--model", help="The compiled model (default: "
                                         "BUNDLE/edgetpu/model_edgetpu.tflite, where `edgetpu_compiler -s -o "
                                         "edgetpu model.tflite` run in BUNDLE writes it)."),
) -> None:
    """Make the Edge TPU compiler's output the bundle's model, so `listen --delegate edgetpu` runs it on a Coral.

    The uncompiled int8 model stays in the bundle; bundle.json's model_file and sha256 now name the compiled one.
    """
    from audeep_edge.deploy.edgetpu_bundle import adopt_compiled_model

    adopted = adopt_compiled_model(bundle, model)
    typer.echo(f"{adopted.path}: model_file {adopted.model_path.name} (sha256 {adopted.manifest['sha256'][:12]}...); "
               f"run it with `audeep-edge listen --bundle {adopted.path} --delegate edgetpu`")
