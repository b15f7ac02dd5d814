"""The agent's own HTTP surface: metrics, health, readiness."""
