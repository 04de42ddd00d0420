"""The MES lot-tracking hook: outbox relay over MQTT, JSON-lines spool, inbound commands."""
