"""All SQL: SQLite (storage/db.py) or PostgreSQL (storage/postgres.py) behind one API."""

from storage import postgres  # noqa: F401  (adds the PostgreSQL engine to storage.db)
