"""The shell around the core: the Flask app, the worker, intake, reconciliation, the server
and the CLI. It wires core (pure decisions), adapters (Docker, HTTP, notifiers), escalation
and the store together."""
