"""Where window results go: MQTT (+ Home Assistant discovery), JSONL."""
