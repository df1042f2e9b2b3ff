"""k8sbot: a Slack ChatOps troubleshooting bot for Kubernetes.

`bot/` holds the domain and infrastructure; it never imports `slack_bolt`. The Slack edge lives in
`handlers/`, which calls into `bot/` and renders with `bot.slack`.
"""

__version__ = "0.1.0"
