"""The origin: pure request decisions, the in-memory store and HTTP adapters."""
