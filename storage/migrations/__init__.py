"""Alembic migrations of the moodstream schema (run with ``storage.migrate.upgrade``)."""
