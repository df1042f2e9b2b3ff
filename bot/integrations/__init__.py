"""Events from outside the cluster: Alertmanager's webhook and change events from CI/CD, feature flags
and other tools (docs/integrations.md).

Each source has a receiver: it takes the JSON body the HTTP edge has already authenticated and parsed,
validates every field, and answers an `Outcome` (an HTTP status and a JSON body). Receivers never see
the request itself, and the edge never sees what they store or post.
"""
