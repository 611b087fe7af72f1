"""What the board is and how it is doing: model name, CPU temperature, Raspberry Pi throttling, Coral devices.

Every reader takes its sysfs/procfs path as an argument (tests point them at a fake tree) and returns None
where the machine has no such thing.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

DEVICE_TREE_MODEL = Path("/proc/device-tree/model")
THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
USB_DEVICES = Path("/sys/bus/usb/devices")
APEX_DEVICE = Path("/dev/apex_0")  # the Coral Dev Board's (and M.2/PCIe cards') Edge TPU

# The Coral USB Accelerator enumerates as Global Unichip until libedgetpu uploads its firmware, then as Google.
CORAL_USB_IDS = {("1a6e", "089a"): "firmware not loaded yet", ("18d1", "9302"): "ready"}
USB3_MBITS = 5000

# Bits of `vcgencmd get_throttled` (Raspberry Pi firmware): 0-3 hold now, 16-19 have happened since boot.
THROTTLE_BITS = {0: "under-voltage", 1: "ARM frequency capped", 2: "throttled", 3: "soft temperature limit"}


def board_model(path: Path = DEVICE_TREE_MODEL) -> str | None:
    """The device-tree model, e.g. ``Raspberry Pi 4 Model B Rev 1.4``; None on machines without one."""
    try:
        text = path.read_bytes().rstrip(b"\0").decode(errors="replace").strip()
    except OSError:
        return None
    return text or None


def cpu_temperature_c(path: Path = THERMAL_ZONE) -> float | None:
    """CPU temperature in degrees Celsius from the first thermal zone (millidegrees in sysfs); None if absent."""
    try:
        return int(path.read_text().strip()) / 1000.0
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Throttling:
    """Decoded ``vcgencmd get_throttled``: conditions active ``now`` and seen ``since_boot``."""

    raw: int
    now: tuple[str, ...]
    since_boot: tuple[str, ...]


def parse_throttled(text: str) -> Throttling:
    """Decode ``throttled=0x50005``.

    Raises
    ------
    ValueError : not a ``throttled=0x...`` line.
    """
    key, _, value = text.strip().partition("=")
    if key != "throttled" or not value:
        raise ValueError(f"unexpected vcgencmd output {text.strip()!r}")
    raw = int(value, 16)
    return Throttling(raw=raw, now=tuple(name for bit, name in THROTTLE_BITS.items() if raw >> bit & 1),
                      since_boot=tuple(name for bit, name in THROTTLE_BITS.items() if raw >> (bit + 16) & 1))


def read_throttled(vcgencmd: str | None = None, timeout: float = 3.0) -> Throttling | None:
    """``vcgencmd get_throttled``, decoded; None where there is no ``vcgencmd`` (not a Raspberry Pi).

    Raises
    ------
    OSError : vcgencmd is there but fails (e.g. no access to /dev/vcio) or prints something else.
    """
    exe = vcgencmd or shutil.which("vcgencmd")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise OSError(f"{exe} get_throttled did not answer within {timeout:g} s") from None
    if done.returncode != 0:
        raise OSError(f"{exe} get_throttled failed: {(done.stderr or done.stdout).strip() or done.returncode}")
    try:
        return parse_throttled(done.stdout)
    except ValueError as exc:
        raise OSError(str(exc)) from None


@dataclass(frozen=True)
class CoralDevice:
    """An Edge TPU the kernel sees: ``kind`` (``usb`` or ``pcie``), a description, and for USB the link speed."""

    kind: str
    description: str
    usb_mbits: int | None = None

    @property
    def slow_usb(self) -> bool:
        """On a USB 2 link, which caps the Accelerator's transfers at 480 Mbit/s."""
        return self.usb_mbits is not None and self.usb_mbits < USB3_MBITS


def coral_devices(usb_root: Path = USB_DEVICES, apex: Path = APEX_DEVICE) -> list[CoralDevice]:
    """Coral USB Accelerators on the USB bus and a PCIe Edge TPU (``/dev/apex_0``)."""
    found = []
    for device in sorted(usb_root.glob("*")) if usb_root.is_dir() else []:
        try:
            ids = ((device / "idVendor").read_text().strip(), (device / "idProduct").read_text().strip())
        except OSError:
            continue
        if ids in CORAL_USB_IDS:
            try:
                mbits = int(float((device / "speed").read_text().strip()))
            except (OSError, ValueError):
                mbits = None
            speed = f", {'USB 3' if mbits and mbits >= USB3_MBITS else 'USB 2'} link" if mbits else ""
            found.append(CoralDevice("usb", f"USB Accelerator {':'.join(ids)} at {device.name} "
                                            f"({CORAL_USB_IDS[ids]}{speed})", mbits))
    if apex.exists():
        found.append(CoralDevice("pcie", f"PCIe Edge TPU {apex}"))
    return found
