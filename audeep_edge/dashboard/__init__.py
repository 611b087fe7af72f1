"""Live web dashboard fed by MQTT schema v1 (never runs inference).

>>> from audeep_edge.dashboard import DashboardServer
>>> from audeep_edge.mqtt.settings import MqttSettings
>>> url = DashboardServer(MqttSettings(url="mqtt://127.0.0.1:1883"), port=0).start()
"""

from audeep_edge.dashboard.server import DashboardServer

__all__ = ["DashboardServer"]
