"""Adapters: the code that talks to the outside world (Docker, HTTP, notifiers, store)."""
