"""The MQTT layer every broker client builds on (the MQTT sink, the dashboard, the recorder, doctor's probe).

``broker_url`` parses ``mqtt[s]://`` URLs; ``settings`` holds the validated options (:class:`MqttSettings`) and
the device id rule; ``security`` applies credentials and TLS; ``client`` is the one paho client factory;
``messages`` validates what subscribers receive. Only ``client`` imports paho.
"""
