"""ops.bench.plain: the plain peer writes each post with plain INSERTs, one transaction per post."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from ops.bench.plain import insert_one
from storage.tables import PostRow, PredictionRow


@pytest.fixture
def sqlite_engine(tmp_path: Path):
    from storage.engine import make_engine
    from storage.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'plain.db'}"
    upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


def test_insert_one_writes_the_post_and_its_prediction(sqlite_engine, fx) -> None:
    for i in range(3):
        insert_one(sqlite_engine, fx.make_record(i))
    with sqlite_engine.connect() as c:
        assert c.execute(select(func.count()).select_from(PostRow.__table__)).scalar() == 3
        assert c.execute(select(func.count()).select_from(PredictionRow.__table__)).scalar() == 3


def test_a_repeated_post_is_an_error_not_an_upsert(sqlite_engine, fx) -> None:
    insert_one(sqlite_engine, fx.make_record(7))
    with pytest.raises(Exception):  # noqa: B017 - the driver's IntegrityError
        insert_one(sqlite_engine, fx.make_record(7))
