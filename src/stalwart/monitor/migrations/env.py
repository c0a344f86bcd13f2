"""Alembic's environment: migrate the connection :meth:`stalwart.monitor.Store.upgrade` hands over.

Only Alembic runs this file (it installs ``context.config`` first); importing it elsewhere, as the
doctest collection does, does nothing.
"""

from alembic import context

from stalwart.monitor.store import metadata


def run_migrations() -> None:
    connection = context.config.attributes["connection"]
    # batch mode: SQLite alters a table by copying it, which later revisions will need
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if hasattr(context, "config"):
    run_migrations()
