"""Home Assistant MQTT discovery for one device: what to publish (retained) so HA creates its entities.

Entities (all on one HA device, all unavailable while ``<prefix>/<id>/status`` is ``offline``; ``<oid>`` is the
device id with ``.`` replaced by ``_``, as HA object ids allow ``[A-Za-z0-9_-]``):

==================================================  ==========================================================
config topic (under ``homeassistant/``)            entity
==================================================  ==========================================================
``sensor/<oid>_scene``                              smoothed label, ``device_class: enum``, ``options`` = labels
``sensor/<oid>_confidence``                         the smoothed label's own probability, %
``sensor/<oid>_dbfs``                               window level, dBFS
``sensor/<oid>_novelty``                            novelty score (with a novelty baseline)
``binary_sensor/<oid>_novel``                       a novel sound is going on (with a novelty baseline)
``binary_sensor/<oid>_watch_<label>``               a watched label (``--watch-labels``) is heard
``event/<oid>_event``                               ``novel_start`` / ``novel_end`` / ``label_change``
``sensor/<oid>_{rtf,latency,overruns,dropped,buffered}``  health, ``entity_category: diagnostic``
==================================================  ==========================================================

No entity carries per-window attributes (HA's recorder would store a row per window). Every template guards
against missing or null fields: a numeric sensor renders ``''`` (HA keeps its state), a binary sensor ON/OFF or
``''`` (ignored), and no template renders ``None``. The MQTT sink publishes these on every connect, again whenever
``homeassistant/status`` says ``online`` (HA restarted), and when the labels change (the scene's ``options``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from audeep_edge import __version__
from audeep_edge.sinks.payload import to_json

EVENT_TYPES = ("novel_start", "novel_end", "label_change")
HEALTH_SENSORS = {  # key: (name, health field, unit, state class, device class)
    "rtf": ("Real-time factor", "rtf", None, "measurement", None),
    "latency": ("Latency p99", "latency_ms_p99", "ms", "measurement", "duration"),
    "overruns": ("Audio overruns", "overruns", None, "total_increasing", None),
    "dropped": ("Dropped messages", "dropped", None, "total_increasing", None),
    "buffered": ("Buffered messages", "buffered", None, "measurement", None),
}


@dataclass(frozen=True)
class Entities:
    """The parts of a device's entities that depend on how ``listen`` runs.

    novelty : windows carry ``novelty`` and ``novel`` (a novelty baseline exists).
    watch : labels that get a binary sensor, ON while a window's probability of them is >= ``watch_min_score``.
    configuration_url : the dashboard, HA's "Visit" link of the device.
    """

    novelty: bool = False
    watch: tuple[str, ...] = ()
    watch_min_score: float = 0.7
    configuration_url: str | None = None


def ha_status_topic(discovery_prefix: str = "homeassistant") -> str:
    """Where Home Assistant announces ``online``/``offline`` (its birth and last will)."""
    return f"{discovery_prefix}/status"


def _number(field: str, expression: str = "{v}") -> str:
    """A template rendering ``expression`` of ``value_json.<field>``, or ``''`` when it is missing or null."""
    value = f"value_json.{field}"
    return f"{{{{ {expression.format(v=value)} if {value} is number else '' }}}}"


def _watch_template(label: str, min_score: float) -> str:
    """ON when the window's ``top_k`` gives ``label`` a probability >= ``min_score``, else OFF (the clip rule)."""
    return ("{% set p = value_json.top_k | default([], true) | selectattr('label', 'eq', " + json.dumps(label)
            + ") | map(attribute='p') | select('number') | first | default(0) %}"
            + f"{{{{ 'ON' if p >= {min_score!r} else 'OFF' }}}}")


def _slugs(labels: tuple[str, ...]) -> list[str]:
    """Distinct object-id suffixes for ``labels``."""
    out: list[str] = []
    for label in labels:
        slug = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or "label"
        candidate, n = slug, 1
        while candidate in out:
            n += 1
            candidate = f"{slug}_{n}"
        out.append(candidate)
    return out


def discovery_messages(
    device_id: str,
    info: dict[str, Any],
    *,
    topic_prefix: str = "audeep",
    discovery_prefix: str = "homeassistant",
    entities: Entities = Entities(),
) -> list[tuple[str, str]]:
    """The retained discovery messages for ``device_id`` as ``(topic, payload)`` pairs.

    Parameters
    ----------
    device_id : the device's id (second topic level).
    info : the ``info`` payload: ``bundle`` becomes the HA device model, ``labels`` the scene's options.
    topic_prefix : first level of the audeep topics.
    discovery_prefix : HA's discovery prefix.
    entities : the optional entities. An entity that does not apply (no novelty baseline, no labels) gets an
        empty payload, which removes one left over from an earlier run.
    """
    base = f"{topic_prefix}/{device_id}"
    oid = device_id.replace(".", "_")
    device = {"identifiers": [f"audeep_{oid}"], "name": f"auDeep {device_id}", "manufacturer": "audeep-edge",
              "model": str(info.get("bundle", "auDeep")), "sw_version": __version__}
    if entities.configuration_url:
        device["configuration_url"] = entities.configuration_url
    common = {"availability_topic": f"{base}/status", "payload_available": "online",
              "payload_not_available": "offline", "device": device,
              "origin": {"name": "audeep-edge", "sw_version": __version__}}
    window, labels = f"{base}/window", [str(label) for label in info.get("labels") or []]
    configs: dict[tuple[str, str], dict[str, Any] | None] = {
        ("sensor", "scene"): {
            "name": "Scene", "icon": "mdi:waveform", "state_topic": window, "device_class": "enum",
            "options": labels,
            "value_template": "{{ value_json.smoothed_label if value_json.smoothed_label is string else '' }}",
        } if labels else None,
        ("sensor", "confidence"): {
            "name": "Confidence", "state_topic": window, "unit_of_measurement": "%", "state_class": "measurement",
            "value_template": _number("smoothed_confidence", "({v} * 100) | round(1)"),
        } if labels else None,
        ("sensor", "dbfs"): {
            "name": "Level", "icon": "mdi:volume-high", "state_topic": window, "unit_of_measurement": "dBFS",
            "state_class": "measurement", "value_template": _number("dbfs", "{v} | round(1)"),
        },
        ("sensor", "novelty"): {
            "name": "Novelty", "icon": "mdi:help-rhombus-outline", "state_topic": window,
            "state_class": "measurement", "value_template": _number("novelty", "{v} | round(3)"),
        } if entities.novelty else None,
        ("binary_sensor", "novel"): {
            "name": "Novel sound", "device_class": "sound", "state_topic": window,
            "value_template": "{% if value_json.novel is boolean %}{{ 'ON' if value_json.novel else 'OFF' }}"
                              "{% endif %}",
        } if entities.novelty else None,
    }
    for label, slug in zip(entities.watch, _slugs(entities.watch)):
        configs[("binary_sensor", f"watch_{slug}")] = {
            "name": label, "device_class": "sound", "state_topic": window,
            "value_template": _watch_template(label, entities.watch_min_score)}
    for key, (name, field, unit, state_class, device_class) in HEALTH_SENSORS.items():
        configs[("sensor", key)] = {
            "name": name, "state_topic": f"{base}/health", "entity_category": "diagnostic",
            "state_class": state_class, "value_template": _number(field),
            **({"unit_of_measurement": unit} if unit else {}), **({"device_class": device_class} if device_class else {})}
    configs[("event", "event")] = {
        "name": "Sound event", "state_topic": f"{base}/event", "event_types": list(EVENT_TYPES),
        # HA wants {"event_type": ...}; schema v1 says "type" (and "state" for novel); the rest become attributes.
        "value_template": "{{ dict(value_json, event_type=('novel_' ~ value_json.state) if value_json.type == 'novel'"
                          " else value_json.type) | tojson }}",
    }
    messages = []
    for (component, key), config in configs.items():
        topic = f"{discovery_prefix}/{component}/{oid}_{key}/config"
        payload = "" if config is None else to_json({**config, "unique_id": f"audeep_{oid}_{key}", **common})
        messages.append((topic, payload))
    return messages
