"""Live operations: reload diffs, the config watcher, the event feed."""
