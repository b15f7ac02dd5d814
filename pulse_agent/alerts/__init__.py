"""Alerting: the incident state machine, message templates, the outbox and Apprise delivery."""
