"""Probing: the HTTP runner (I/O) and the pure assertions over what it saw."""
