"""PostgreSQL/SQLite storage: tables, engine, migrations, the worker's writes and trend SQL, the dashboard's reads."""
