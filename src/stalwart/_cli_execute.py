"""``--executor`` / ``--address`` for the commands whose work can be sharded (``scan``, ``attack``).

The chosen executor becomes the default of everything the command runs (see
:func:`stalwart.execute.use_executor`), and a Ray runtime the command started is shut down when it
ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from stalwart._cli_support import fail
from stalwart.execute import EXECUTORS, Executor, get_executor, use_executor

__all__ = ["EXECUTOR_HELP", "ADDRESS_HELP", "executor_option"]

EXECUTOR_HELP = ("Where sharded work runs: local (this process, the default), process (a local process pool) or "
                 "ray (Ray on this machine, or the cluster given by --address; pip install 'stalwart[ray]'). "
                 "Results are the same on each.")
ADDRESS_HELP = "With --executor ray: 'auto' (the cluster this machine joined with `ray start`) or ray://host:10001."


@contextmanager
def executor_option(name: str, address: str | None) -> Iterator[Executor]:
    """The executor the options name, made the default for the command; exit 2 when unusable.

    Call inside ``user_errors()``: a missing Ray is a :class:`~stalwart.errors.StalwartError`.
    """
    if name not in EXECUTORS:
        fail(f"--executor must be one of {', '.join(EXECUTORS)}; got {name!r}")
    if address is not None and name != "ray":
        fail(f"--address is for --executor ray (a Ray cluster's address); got --executor {name}")
    executor = get_executor(name, address=address) if name == "ray" else get_executor(name)
    with executor, use_executor(executor):
        yield executor
