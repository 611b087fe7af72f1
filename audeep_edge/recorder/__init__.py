"""History of a fleet: a recorder that subscribes to every device on a broker and writes windows, events,
health, device info and event clips to SQLite (default) or PostgreSQL, with retention by age and size.

>>> from audeep_edge.recorder import Recorder, Retention, open_store
>>> store = open_store("history.sqlite")            # or "postgresql://user@host/db"
>>> recorder = Recorder(MqttSettings(url="mqtt://broker:1883"), store, Retention(max_age_s=30 * 86400))
>>> recorder.start(); ...; recorder.stop(); store.close()
"""

from audeep_edge.recorder.ingest import Recorder
from audeep_edge.recorder.retention import Retention
from audeep_edge.recorder.store import Store, open_store

__all__ = ["Recorder", "Retention", "Store", "open_store"]
