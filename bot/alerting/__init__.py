"""Alerts: detection from the watch streams, grouping, routing, the outbox and its sender."""
