"""The composition root: the `k8sbot` command wires bot/ (domain) and handlers/ (Slack edge)."""
