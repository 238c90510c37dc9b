"""The service's base: settings, the store and broker connection, observability. Imported by web, worker and CLI."""
