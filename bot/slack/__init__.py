"""Slack-facing infrastructure of the bot: rendering to Block Kit and a rate-aware Web API client.

This package may import slack_sdk; the domain core (model, analyzers, permissions, store) may not.
"""
