"""MQTT plumbing shared by the components that talk to a broker (the MQTT sink, the recorder)."""
