"""Lot genealogy: schema, store, traces, die maps."""
