"""SQLite storage through sqlite-utils. Each feature owns its tables and their migrations."""
