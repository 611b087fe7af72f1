"""Deployment checks behind ``audeep-edge doctor`` (runtime side: no TensorFlow, no Keras).

``report`` holds the check result type and the table, ``board`` reads the hardware (Raspberry Pi temperature and
throttling, Coral devices), ``broker_probe`` asks an MQTT broker for a CONNACK, and ``doctor`` runs every check
against the settings ``listen`` would use.
"""
