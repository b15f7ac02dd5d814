"""`python -m pulse_agent` runs the CLI."""

from pulse_agent.cli import main

raise SystemExit(main())
