"""On-disk spool of undelivered MQTT messages, so a buffer survives a restart.

One JSON-lines journal per client: ``<queue_dir>/<name>.jsonl``, one ``{"topic", "payload", "retain"}``
record per line, oldest first. The MQTT sink appends to it only while messages are waiting (broker away),
rewrites it when it grows past twice the queue bound or at exit, and deletes it once everything is
delivered, so a healthy device writes nothing to its SD card. Lines are flushed to the OS, not fsynced:
a killed process loses nothing, a power cut may lose the last second.

``listen`` without ``--queue-dir`` spools to :func:`default_spool_dir`, so a stop while the broker is away
keeps what was buffered; each journal stays under twice ``--queue-max`` records.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from audeep_edge.errors import ConfigError

log = logging.getLogger(__name__)


def default_spool_dir() -> Path | None:
    """``$STATE_DIRECTORY/spool`` (systemd's ``StateDirectory=``), else ``$XDG_STATE_HOME/audeep-edge/spool``,
    else ``~/.local/state/audeep-edge/spool``; created (mode 0700) if needed. None, with a warning, when it
    cannot be created or written (a read-only root file system): messages then wait in memory only."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state:
        directory = Path(state) / "spool"
    else:
        base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
        directory = Path(base) / "audeep-edge" / "spool"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("cannot create the MQTT spool %s (%s): messages undelivered at exit will be lost; "
                    "give --queue-dir DIR", directory, exc.strerror)
        return None
    if not os.access(directory, os.W_OK):
        log.warning("cannot write the MQTT spool %s: messages undelivered at exit will be lost; give --queue-dir DIR",
                    directory)
        return None
    return directory


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message as the sink queues it. ``payload`` is UTF-8 text (JSON or a status word)."""

    topic: str
    payload: str
    retain: bool = False


class DiskSpool:
    """Append-only journal of :class:`Message` records in ``directory/name.jsonl``.

    Raises
    ------
    ConfigError
        When ``directory`` cannot be created or written.
    """

    def __init__(self, directory: Path, name: str) -> None:
        self.path = Path(directory) / f"{name}.jsonl"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch(exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--queue-dir {directory}: cannot write the MQTT spool there ({exc.strerror})") from None
        self.records = 0

    def load(self, limit: int) -> list[Message]:
        """The newest ``limit`` spooled messages, oldest first. A torn last line (killed mid-write) is skipped."""
        messages = []
        with self.path.open(encoding="utf-8", errors="replace") as stream:
            for line in stream:
                try:
                    record = json.loads(line)
                    messages.append(Message(record["topic"], record["payload"], bool(record.get("retain"))))
                except (ValueError, KeyError, TypeError):
                    log.warning("skipped an unreadable line in the MQTT spool %s", self.path)
        self.records = len(messages)
        return messages[-limit:]

    def append(self, message: Message) -> None:
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(_line(message))
        self.records += 1

    def rewrite(self, messages: list[Message]) -> None:
        """Replace the journal by ``messages`` (atomically: a crash leaves the old or the new file)."""
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as stream:
            stream.writelines(_line(message) for message in messages)
        os.replace(tmp, self.path)
        self.records = len(messages)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        self.records = 0


def _line(message: Message) -> str:
    record = {"topic": message.topic, "payload": message.payload, "retain": message.retain}
    return json.dumps(record, separators=(",", ":")) + "\n"
