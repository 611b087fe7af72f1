"""Home Assistant MQTT discovery for one device: what to publish (retained) so HA creates its entities.

Entities (all on one HA device, all unavailable while ``<prefix>/<id>/status`` is ``offline``):

====================================  =========================================================
config topic                          entity
====================================  =========================================================
``homeassistant/sensor/<id>_scene``   smoothed scene label (attributes: raw ``label``, ``top_k``)
``homeassistant/sensor/<id>_confidence``  confidence of the label, %
``homeassistant/sensor/<id>_dbfs``    window level, dBFS
``homeassistant/sensor/<id>_novelty`` novelty score (only when novelty is enabled)
``homeassistant/event/<id>_event``    ``novel`` / ``label_change`` events
====================================  =========================================================

``<id>`` is the device id with ``.`` replaced by ``_`` (HA object ids allow ``[A-Za-z0-9_-]``).
The MQTT sink publishes these on every connect and again whenever ``homeassistant/status`` says
``online`` (HA restarted). All templates read the schema v1 payloads of docs/mqtt.md.
"""

from __future__ import annotations

from typing import Any

from audeep_edge import __version__
from audeep_edge.sinks.payload import to_json

EVENT_TYPES = ("novel", "label_change")


def ha_status_topic(discovery_prefix: str = "homeassistant") -> str:
    """Where Home Assistant announces ``online``/``offline`` (its birth and last will)."""
    return f"{discovery_prefix}/status"


def discovery_messages(
    device_id: str,
    info: dict[str, Any],
    *,
    topic_prefix: str = "audeep",
    discovery_prefix: str = "homeassistant",
    novelty: bool = False,
) -> list[tuple[str, str]]:
    """The retained discovery messages for ``device_id`` as ``(topic, payload)`` pairs.

    Parameters
    ----------
    device_id : the device's id (second topic level).
    info : the ``info`` payload; ``bundle`` becomes the HA device model.
    topic_prefix : first level of the audeep topics.
    discovery_prefix : HA's discovery prefix.
    novelty : publish the novelty sensor; when False its config topic gets an empty payload, which
        removes an entity left over from an earlier run.
    """
    base = f"{topic_prefix}/{device_id}"
    object_id = device_id.replace(".", "_")
    common = {
        "availability_topic": f"{base}/status",
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": {
            "identifiers": [f"audeep_{object_id}"],
            "name": f"auDeep {device_id}",
            "manufacturer": "audeep-edge",
            "model": str(info.get("bundle", "auDeep")),
            "sw_version": __version__,
        },
        "origin": {"name": "audeep-edge", "sw_version": __version__},
    }
    window = f"{base}/window"
    sensors: dict[str, dict[str, Any] | None] = {
        "scene": {
            "name": "Scene",
            "icon": "mdi:waveform",
            "state_topic": window,
            "value_template": "{{ value_json.smoothed_label | default(value_json.label) }}",
            "json_attributes_topic": window,
            "json_attributes_template": "{{ {'label': value_json.label, 'top_k': value_json.top_k} | tojson }}",
        },
        "confidence": {
            "name": "Confidence",
            "state_topic": window,
            "value_template": "{{ (value_json.confidence * 100) | round(1) }}",
            "unit_of_measurement": "%",
            "state_class": "measurement",
        },
        "dbfs": {
            "name": "Level",
            "icon": "mdi:volume-high",
            "state_topic": window,
            "value_template": "{{ value_json.dbfs | round(1) }}",
            "unit_of_measurement": "dBFS",
            "state_class": "measurement",
        },
        "novelty": {
            "name": "Novelty",
            "icon": "mdi:help-rhombus-outline",
            "state_topic": window,
            "value_template": "{{ value_json.novelty | round(3) }}",
            "state_class": "measurement",
        }
        if novelty
        else None,
    }
    messages = []
    for key, config in sensors.items():
        topic = f"{discovery_prefix}/sensor/{object_id}_{key}/config"
        if config is None:
            messages.append((topic, ""))
        else:
            messages.append((topic, to_json({**config, "unique_id": f"audeep_{object_id}_{key}", **common})))
    event = {
        "name": "Sound event",
        "unique_id": f"audeep_{object_id}_event",
        "state_topic": f"{base}/event",
        "event_types": list(EVENT_TYPES),
        # HA wants {"event_type": ...}; schema v1 calls it "type". The other keys become attributes.
        "value_template": "{{ dict(value_json, event_type=value_json.type) | tojson }}",
        **common,
    }
    messages.append((f"{discovery_prefix}/event/{object_id}_event/config", to_json(event)))
    return messages
