"""Diagnosis: why is this unhealthy? `engine.explain` runs the per-kind analyzers over one fetched
snapshot, groups findings into ranked causes, blames a change (`culprits`) and suggests a next step
(`suggestions`). Analyzers (`analyzers/`, one module per kind) are pure functions of plain objects.
"""
