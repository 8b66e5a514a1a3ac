"""The models declare the integer width the migrations gave each column.

SQLAlchemy binds a parameter with the model's type: a model saying `int` (INTEGER) over a
BIGINT column refuses, with a 500, any amount past 2^31 that the API schema and the column
both accept (found by the fuzzer: a retainer fee of 10^10 cents).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, SmallInteger, text

from tests.support.walk import all_tables

_WIDTHS = {"smallint": SmallInteger, "integer": Integer, "bigint": BigInteger}


async def test_integer_columns_have_the_width_of_the_database(db):
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND data_type IN ('smallint', 'integer', 'bigint')"
            )
        )
        database = {(table, column): kind for table, column, kind in rows}
    mismatched = []
    for name, table in all_tables().items():
        for column in table.columns:
            kind = database.get((name, column.name))
            if kind is None:
                continue
            declared = type(column.type)
            if not issubclass(declared, _WIDTHS[kind]) or (
                kind == "integer" and issubclass(declared, (BigInteger, SmallInteger))
            ):
                mismatched.append(f"{name}.{column.name}: model {declared.__name__}, db {kind}")
    assert mismatched == [], "\n".join(mismatched)
