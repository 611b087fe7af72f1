"""Test helpers for the recorder and the history dashboard: schema v1 payloads, real OGG clips, a raw publisher."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import paho.mqtt.client as mqtt
import soundfile
from paho.mqtt.enums import CallbackAPIVersion

LABELS = ["Rain", "Dog", "Sea waves", "Crackling fire"]


def window(device_id: str, seq: int, wall_time: float, label: str, **extra) -> dict:
    other = next(x for x in LABELS if x != label)
    return {"schema_version": 1, "device_id": device_id, "seq": seq, "audio_time": float(seq + 5),
            "wall_time": wall_time, "label": label, "confidence": 0.8, "smoothed_label": label,
            "smoothed_confidence": 0.75, "top_k": [{"label": label, "p": 0.8}, {"label": other, "p": 0.1}],
            "dbfs": -30.0, **extra}


def ogg_clip(seconds: float = 1.5, fs: int = 16000) -> bytes:
    """A real OGG/Vorbis file: a decaying 880 Hz tone."""
    t = np.arange(int(seconds * fs)) / fs
    out = io.BytesIO()
    soundfile.write(out, 0.4 * np.sin(2 * np.pi * 880 * t) * np.exp(-t), fs, format="OGG", subtype="VORBIS")
    return out.getvalue()


def clip(device_id: str, clip_id: str, seq: int, wall_time: float, audio: bytes, fmt: str = "ogg",
         reason: str = "novel", label: str | None = None, score: float | None = 0.99) -> dict:
    return {"schema_version": 1, "device_id": device_id, "clip_id": clip_id, "wall_time": wall_time,
            "duration_s": 1.5, "reason": reason, "label": label, "score": score, "seq": seq, "format": fmt,
            "audio_b64": base64.b64encode(audio).decode()}


class Publisher:
    """A plain paho client that publishes exactly what a test gives it (QoS 1, waiting for each PUBACK)."""

    def __init__(self, broker, prefix: str = "audeep") -> None:
        self.prefix = prefix
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()

    def send(self, device_id: str, kind: str, payload, retain: bool = False) -> None:
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        self.client.publish(f"{self.prefix}/{device_id}/{kind}", data, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
