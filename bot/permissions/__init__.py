"""Who may do what: permissions.yaml (policy), Slack user → Subject (identity), and decisions (engine)."""
