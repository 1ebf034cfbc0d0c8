"""The PostgreSQL backend (asyncpg), for several relay instances on one database."""
