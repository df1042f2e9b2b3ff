"""Slack-facing infrastructure of the bot: rendering to Block Kit and a rate-aware Web API client.

The one way out to Slack: every text the bot shows there is a `message.Message` built here from typed
parts, untrusted text escaped before it is clipped (`escaping`), and sent by `client.Poster` or, for
replies to a command or a click, by `handlers/` through `blocks.payload`.

This package may import slack_sdk; the domain core (model, analyzers, permissions, store) may not.
"""
