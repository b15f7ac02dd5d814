"""pulse-agent: a declarative, config-file-driven HTTP monitoring agent."""

__version__ = "0.1.0"
