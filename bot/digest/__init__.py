"""The daily change digest: `content` builds each team's digest of a period and sends it exactly once;
`scheduling` runs it (and history pruning) on APScheduler at the configured cron and time zone."""
