//! Schema, migrations and queries for SQLite and PostgreSQL, and the log chunk store
