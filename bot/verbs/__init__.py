"""The verbs of `/k8s`, one module each. Each marks its function with `bot.commands.registry.verb`;
`VerbRegistry.discover()` collects them (helper modules that mark nothing are ignored)."""
