"""A study's storage: a journal file or a database, checked before it is written and safe to open at once."""

from __future__ import annotations

import hashlib
import json
import os
import time

import optuna

from qgan.runtime.errors import InputError, first_line

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
CREATE_ATTEMPTS = 5


class StorageError(InputError):
    """A --storage that cannot be used as asked."""


def is_url(location: str) -> bool:
    return "://" in location


def database_url(location: str) -> str:
    """The SQLAlchemy URL of a --storage: postgresql:// gets psycopg 3's driver (the postgres extra's)."""
    for scheme in POSTGRES_SCHEMES:
        if location.startswith(scheme):
            try:
                import psycopg  # noqa: F401
            except ImportError:
                raise StorageError(
                    f"--storage {location!r} needs PostgreSQL's driver: install qgan with the postgres "
                    "extra (pip install -e '.[postgres]')"
                ) from None
            return "postgresql+psycopg://" + location[len(scheme) :]
    return location


def check_journal(location: str) -> None:
    """Raises StorageError unless `location` is an Optuna journal file, an empty file, or not there yet."""
    if os.path.isdir(location):
        raise StorageError(f"--storage {location!r} is a folder; give a journal file or a database URL")
    if not os.path.exists(location):
        folder = os.path.dirname(os.path.abspath(location))
        if not os.path.isdir(folder) and os.path.exists(folder):
            raise StorageError(f"--storage {location!r}: {folder!r} is not a folder")
        return
    try:
        with open(location, "rb") as handle:
            line = handle.readline()
    except OSError as error:
        raise StorageError(f"--storage {location!r} cannot be read ({error.strerror or error})") from None
    if not line:
        return
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if not isinstance(record, dict) or "op_code" not in record:
        raise StorageError(
            f"--storage {location!r} is not an Optuna journal (its first line is not a journal record); "
            "give a new file name or an existing study's journal"
        )


def study_exists(location: str, study_name: str) -> bool:
    """Whether the storage holds the study, without creating the storage when it is not there."""
    if not is_url(location):
        check_journal(location)
        if not os.path.isfile(location) or os.path.getsize(location) == 0:
            return False
    elif location.startswith("sqlite:///") and not os.path.isfile(location[len("sqlite:///") :]):
        return False
    return study_name in optuna.study.get_all_study_names(open_storage(location))


def open_storage(location: str):
    """The Optuna storage of a --storage value, its folder or database created as needed.

    A journal file that is not an Optuna journal is refused untouched. A database is opened with
    retries, and a PostgreSQL one under an advisory lock: two workers that start at the same
    instant on an empty database would otherwise both create Optuna's tables, and one fails.

    Raises:
        StorageError: a storage that cannot be used, naming it and why.
    """
    if not is_url(location):
        check_journal(location)
        os.makedirs(os.path.dirname(os.path.abspath(location)), exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(location)
        return optuna.storages.JournalStorage(backend)
    url = database_url(location)
    last_error = None
    for attempt in range(CREATE_ATTEMPTS):
        try:
            if url.startswith("postgresql"):
                return _postgres_storage(url)
            return optuna.storages.RDBStorage(url)
        except StorageError:
            raise
        except Exception as error:  # noqa: BLE001 - any back-end's refusal is reported as bad input
            last_error = error
            time.sleep(0.2 * (attempt + 1))
    raise StorageError(f"--storage {location!r} cannot be used ({first_line(last_error)})")


def _postgres_storage(url: str):
    """RDBStorage(url) with Optuna's tables created under a PostgreSQL advisory lock of this database."""
    import sqlalchemy

    key = int.from_bytes(hashlib.sha1(b"qgan-optuna-schema").digest()[:4], "big")
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                return optuna.storages.RDBStorage(url)
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        engine.dispose()
