"""History: every run remembered (SQLite or PostgreSQL), change points found, a static dashboard."""
