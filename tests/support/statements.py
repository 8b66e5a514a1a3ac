"""The SQL statements a stretch of a test sends (what query-count tests compare): those sent
through SQLAlchemy, and those run straight on the driver connection
(`infra.db.driver_connection`), which asyncpg's query logger reports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event


@contextmanager
def captured_statements(resources: Any) -> Iterator[list[str]]:
    statements: list[str] = []
    watched: list[Any] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    def record_driver(query: Any) -> None:
        statements.append(query.query)

    def watch(dbapi_connection, connection_record, proxy) -> None:
        # SQLAlchemy's own statements run as asyncpg prepared statements, which the query
        # logger does not report: each statement is counted once.
        driver = dbapi_connection.driver_connection
        driver.add_query_logger(record_driver)
        watched.append(driver)

    engine = resources.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    event.listen(engine.pool, "checkout", watch)
    try:
        yield statements
    finally:
        event.remove(engine.pool, "checkout", watch)
        event.remove(engine, "before_cursor_execute", record)
        for driver in watched:
            driver.remove_query_logger(record_driver)
