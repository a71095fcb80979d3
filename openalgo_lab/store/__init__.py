"""Persistence: the state database (SQLAlchemy, migrations, journal) and DuckDB history."""
