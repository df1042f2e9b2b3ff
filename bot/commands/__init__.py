"""The command path: text → `Command` → who is asking → authorize → verb → `Answer`, audited.

`parsing` turns `/k8s` text into a `Command` against a `VerbRegistry` (`registry`); `dispatch.execute`
is the one entry for Slack commands, buttons and `k8sbot ask`; `auditing` writes exactly one audit row
per attempt and claims confirmed actions; `acting` previews and applies the changes actions make. The
verbs themselves live in `bot.verbs`.
"""
