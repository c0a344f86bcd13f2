"""Alembic migrations of the monitoring store, run by :meth:`stalwart.monitor.Store.upgrade` at start-up.

They are Python packages so that they ship in the wheel with the code (no package-data glob).
"""
