"""Shared plumbing of the service: settings, the store/broker connection, the command line."""
