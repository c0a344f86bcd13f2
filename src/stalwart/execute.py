"""Executors: where sharded work runs — in this process, in a local process pool, or on Ray.

First increment of "beyond one machine". The work (``attacks.evaluate`` today) is cut into
shards of a fixed number of samples; each shard carries its own seed, derived from the run seed
and the shard's index. Shard boundaries and seeds depend only on the data size, the shard size
and the seed, never on how many workers run them, so every executor gives the same answer:

======== =================================================================================
local    the default: shards run one after the other in this process (no copies, no pickling)
process  a pool of local worker processes (``spawn`` start method, safe with torch)
ray      Ray tasks: ``ray.init()`` on this machine, or ``address="auto"`` / ``"ray://host:10001"``
         for a running cluster (``pip install 'stalwart[ray]'``)
======== =================================================================================

What every shard needs (the model, the threat model) is pickled once per run and unpickled once
per worker: in each worker's initializer for the process pool; for Ray, the bytes go into the
object store once and each worker process loads them on its first task. TorchScript modules and
ONNX Runtime sessions, which pickle refuses, travel as their saved model bytes. A shard that raises (whatever the error: Ray cannot tell a
transient failure from a lasting one either) or whose worker dies is run again, ``retries`` times;
a shard that keeps failing fails the whole run with its own error, never a smaller sample.

>>> from stalwart.execute import get_executor, shard_slices, shard_seeds
>>> shard_slices(5, 2)
[slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
>>> shard_seeds(7, 1)
[7]
>>> get_executor("local").map(pow, [(2, 3), (3, 2)], shared=None, star=True)
[8, 9]
"""

from __future__ import annotations

import os
import pickle
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from stalwart._validation import check_seed
from stalwart.errors import ConfigError, MissingDependencyError, ModelError

__all__ = ["Executor", "LocalExecutor", "ProcessExecutor", "RayExecutor", "get_executor", "resolve_executor",
           "EXECUTORS", "DEFAULT_SHARD_SIZE", "shard_slices", "shard_seeds", "use_executor"]

#: samples per shard unless told otherwise: the adversarial checks (200 samples) and most
#: interactive runs are one shard, which is exactly the unsharded computation
DEFAULT_SHARD_SIZE = 1000

RAY_HINT = "pip install 'stalwart[ray]'"

#: what the current code should run on when a function is given ``executor=None``
_DEFAULT: list[Executor | None] = [None]


def shard_slices(n: int, shard_size: int) -> list[slice]:
    """Consecutive slices of ``shard_size`` samples (the last one shorter) covering ``range(n)``."""
    if not isinstance(shard_size, (int, np.integer)) or isinstance(shard_size, bool) or shard_size < 1:
        raise ConfigError(f"shard_size must be an integer >= 1 (samples per shard); got {shard_size!r}")
    _check_count("shard_slices", "n", n)
    return [slice(s, min(s + int(shard_size), n)) for s in range(0, max(n, 1), int(shard_size))]


def shard_seeds(seed: int, n_shards: int) -> list[int]:
    """One seed per shard, from ``seed`` and the shard index only.

    A single shard keeps ``seed`` itself, so unsharded work gives today's numbers; more shards
    get independent streams spawned from ``numpy.random.SeedSequence(seed)``.
    """
    check_seed("shard_seeds", seed)
    _check_count("shard_seeds", "n_shards", n_shards, minimum=1)
    if n_shards == 1:
        return [int(seed)]
    return [int(c.generate_state(1)[0]) for c in np.random.SeedSequence(int(seed)).spawn(n_shards)]


def _check_count(owner: str, name: str, value: Any, minimum: int = 0) -> int:
    """An integer >= ``minimum``, else a :class:`ConfigError` naming the argument."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{owner}({name}=...) must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _with_note(exc: BaseException, index: int, n: int, attempts: int) -> BaseException:
    exc.add_note(f"(shard {index + 1} of {n} failed {attempts} time(s); the run stops rather than report on "
                 "fewer samples)")
    return exc


class Session(ABC):
    """An open executor with the shared payload in place: ``map`` runs shards against it."""

    @abstractmethod
    def map(self, fn: Callable[..., Any], items: Sequence[Any],
            on_done: Callable[[int], None] | None = None) -> list[Any]:
        """``[fn(shared, item) for item in items]`` in input order; ``on_done(k)`` after each of them."""


class Executor(ABC):
    """Runs ``fn(shared, item)`` over shards. ``shared`` travels to each worker once per :meth:`open`.

    ``fn`` must be a module-level function (workers import it by name). Use as a context manager
    to release what the executor started (a Ray runtime it launched) when done.
    """

    name: ClassVar[str]

    def __init__(self, retries: int = 0) -> None:
        self.retries = _check_count(type(self).__name__, "retries", retries)  # extra attempts of a failing shard

    @abstractmethod
    def open(self, shared: Any) -> Any:
        """A context manager giving a :class:`Session` with ``shared`` shipped to the workers."""

    def map(self, fn: Callable[..., Any], items: Sequence[Any], *, shared: Any = None, star: bool = False,
            on_done: Callable[[int], None] | None = None) -> list[Any]:
        """One-off ``[fn(shared, item) ...]`` (``star=True``: ``[fn(*item) ...]``, no shared payload)."""
        with self.open(shared) as session:
            if star:
                return session.map(_star, [(fn, item) for item in items], on_done)
            return session.map(fn, items, on_done)

    @property
    def parallel(self) -> bool:
        """Whether shards may run at the same time (everything but ``local``)."""
        return True

    def close(self) -> None:  # noqa: B027 - most executors hold nothing between runs
        """Release what this executor started; it may be used again afterwards."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(retries={self.retries})"


def _star(shared: Any, item: tuple[Callable[..., Any], tuple]) -> Any:
    fn, args = item
    return fn(*args)


def _load_script_module(data: bytes) -> Any:
    """A TorchScript module back from the bytes ``torch.jit.save`` wrote."""
    import io
    import warnings

    import torch

    with warnings.catch_warnings():  # TorchScript is deprecated in recent torch, but it is what users ship
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(io.BytesIO(data))


def _load_onnx_session(data: bytes, providers: list[str]) -> Any:
    """An ONNX Runtime session from the model's bytes, on the providers this worker has."""
    import onnxruntime as ort

    usable = [p for p in providers if p in ort.get_available_providers()] or ["CPUExecutionProvider"]
    return ort.InferenceSession(data, providers=usable)


def _onnx_bytes(session: Any) -> bytes | None:
    """The model an ONNX Runtime session was built from (bytes, or its file read now), if it says."""
    data = getattr(session, "_model_bytes", None)
    if data:
        return bytes(data)
    path = getattr(session, "_model_path", None)
    if path and os.path.isfile(path):
        with open(path, "rb") as fh:
            return fh.read()
    return None


class _Pickler(pickle.Pickler):
    """pickle, plus what pickle refuses but a model file format can carry: TorchScript modules
    (through ``torch.jit.save``) and ONNX Runtime sessions (the ONNX model's bytes)."""

    def reducer_override(self, obj: Any) -> Any:
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(obj, torch.jit.ScriptModule):
            import io
            import warnings

            buffer = io.BytesIO()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.jit.save(obj, buffer)
            return _load_script_module, (buffer.getvalue(),)
        ort = sys.modules.get("onnxruntime")
        if ort is not None and isinstance(obj, ort.InferenceSession):
            data = _onnx_bytes(obj)
            if data is not None:
                return _load_onnx_session, (data, list(obj.get_providers()))
        return NotImplemented


def _dumps(obj: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


def _check_picklable(shared: Any, executor: str) -> bytes:
    """``shared`` pickled, or a :class:`ModelError` that says how to make the model travel."""
    try:
        return _dumps(shared)
    except Exception as exc:  # pickle raises PicklingError, AttributeError, TypeError, ...
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ModelError(
            f"executor={executor!r} must copy the model to its workers, but it cannot be pickled ({reason}). "
            "Define the model's function or class at module level (not a lambda or a function inside "
            "another function; models loaded from .pt TorchScript, .onnx or .skops files travel, torch.export "
            ".pt2 programs do not yet), or use executor='local'."
        ) from None


# -- local --------------------------------------------------------------------------------------------


class _LocalSession(Session):
    def __init__(self, shared: Any, retries: int) -> None:
        self.shared, self.retries = shared, retries

    def map(self, fn, items, on_done=None):
        out = []
        for i, item in enumerate(items):
            for attempt in range(self.retries + 1):
                try:
                    out.append(fn(self.shared, item))
                    break
                except Exception as exc:
                    if attempt == self.retries:
                        if self.retries:  # nothing was run again otherwise: the error is the whole story
                            _with_note(exc, i, len(items), attempt + 1)
                        raise
            if on_done is not None:
                on_done(i + 1)
        return out


class LocalExecutor(Executor):
    """Shards one after the other in this process: no copies, no pickling (the default).

    >>> LocalExecutor().map(divmod, [(7, 2)], star=True)
    [(3, 1)]
    """

    name = "local"

    def __init__(self, retries: int = 0) -> None:
        super().__init__(retries)

    @property
    def parallel(self) -> bool:
        return False

    @contextmanager
    def open(self, shared: Any) -> Iterator[Session]:
        yield _LocalSession(shared, self.retries)


# -- process pool -------------------------------------------------------------------------------------

_WORKER_SHARED: list[Any] = [None]


def _install_shared(payload: bytes, threads: int) -> None:
    """Pool initializer: unpickle the shared payload once per worker process.

    Each worker gets its share of the CPUs: with every worker running a full set of OpenMP threads,
    the threads spin-wait on each other and a pool runs several times slower than one process.
    """
    os.environ["OMP_NUM_THREADS"] = str(threads)  # for libraries the payload has not loaded yet
    _WORKER_SHARED[0] = pickle.loads(payload)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def _call_in_worker(fn: Callable[..., Any], item: Any) -> Any:
    return fn(_WORKER_SHARED[0], item)


class _ProcessSession(Session):
    def __init__(self, executor: ProcessExecutor, payload: bytes) -> None:
        self.executor, self.payload = executor, payload
        self.pool: Any = None

    def _pool(self, n_items: int) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if self.pool is None:
            cpus = os.cpu_count() or 1
            workers = self.executor.workers or max(1, min(cpus, n_items))
            self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(self.executor.context),
                                            initializer=_install_shared,
                                            initargs=(self.payload, max(1, cpus // workers)))
        return self.pool

    def map(self, fn, items, on_done=None):
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        n = len(items)
        results: dict[int, Any] = {}
        attempts = dict.fromkeys(range(n), 0)
        pending: dict[Any, int] = {}

        def submit(i: int) -> None:
            attempts[i] += 1
            pending[self._pool(n).submit(_call_in_worker, fn, items[i])] = i

        for i in range(n):
            submit(i)
        try:
            while pending:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    exc = fut.exception()
                    if exc is None:
                        results[i] = fut.result()
                        if on_done is not None:
                            on_done(len(results))
                        continue
                    if attempts[i] > self.executor.retries:
                        raise _with_note(exc, i, n, attempts[i])
                    if isinstance(exc, BrokenProcessPool):  # a worker died: every pending shard went with it
                        self.pool.shutdown(wait=False, cancel_futures=True)
                        self.pool = None
                        lost = [i, *pending.values()]
                        pending.clear()
                        for j in lost:
                            submit(j)
                        break
                    submit(i)
        except BaseException:
            self.close(cancel=True)
            raise
        return [results[i] for i in range(n)]

    def close(self, cancel: bool = False) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=cancel)
            self.pool = None


class ProcessExecutor(Executor):
    """A pool of local worker processes (``spawn`` by default, so torch and threads are safe).

    Parameters
    ----------
    workers : processes in the pool; default: the CPU count, at most one per shard
    retries : extra attempts of a shard that raises (or whose worker died); default 2
    context : multiprocessing start method, "spawn" or "forkserver"
    """

    name = "process"

    def __init__(self, workers: int | None = None, retries: int = 2, context: str = "spawn") -> None:
        super().__init__(retries)
        if workers is not None:
            _check_count("ProcessExecutor", "workers", workers, minimum=1)
        if context not in ("spawn", "forkserver"):
            raise ConfigError(f"ProcessExecutor(context=...) must be 'spawn' or 'forkserver' (fork is unsafe "
                              f"with torch's threads); got {context!r}")
        self.workers = None if workers is None else int(workers)
        self.context = context

    @contextmanager
    def open(self, shared: Any) -> Iterator[Session]:
        payload = _check_picklable(shared, self.name)
        session = _ProcessSession(self, payload)
        try:
            yield session
        finally:
            session.close()

    def __repr__(self) -> str:
        return f"ProcessExecutor(workers={self.workers}, retries={self.retries}, context={self.context!r})"


# -- Ray ----------------------------------------------------------------------------------------------

_RAY_CACHE: dict[str, Any] = {}


def _ray_shared(holder: list[Any]) -> Any:
    """The shared payload in a Ray worker, deserialized once per worker process (the last one kept)."""
    import ray

    ref = holder[0]
    key = ref.hex()
    if _RAY_CACHE.get("key") != key:
        _RAY_CACHE.clear()
        _RAY_CACHE.update(key=key, value=pickle.loads(ray.get(ref)))
    return _RAY_CACHE["value"]


def _ray_call(fn: Callable[..., Any], holder: list[Any], item: Any) -> Any:
    # the reference travels inside a list, so Ray does not resolve (and deserialize) it per task
    return fn(_ray_shared(holder), item)


def import_ray() -> Any:
    """``ray``, or a :class:`~stalwart.errors.MissingDependencyError` with the install hint."""
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(f"executor='ray' needs Ray, which is not installed; install it with: "
                                     f"{RAY_HINT} (or use executor='process' on one machine)") from None
    return ray


class _RaySession(Session):
    def __init__(self, executor: RayExecutor, ref: Any) -> None:
        self.executor, self.ref = executor, ref

    def map(self, fn, items, on_done=None):
        ray = import_ray()
        remote = self.executor.remote_call()
        n = len(items)
        refs = [remote.remote(fn, [self.ref], item) for item in items]
        index = {r.hex(): i for i, r in enumerate(refs)}
        results: dict[int, Any] = {}
        waiting = list(refs)
        try:
            while waiting:
                ready, waiting = ray.wait(waiting, num_returns=1)
                for r in ready:
                    i = index[r.hex()]
                    try:
                        results[i] = ray.get(r)
                    except ray.exceptions.RayTaskError as err:
                        cause = err.cause if isinstance(err.cause, BaseException) else err
                        raise _with_note(cause, i, n, self.executor.retries + 1) from None
                    if on_done is not None:
                        on_done(len(results))
        except BaseException:
            for r in waiting:
                ray.cancel(r)
            raise
        return [results[i] for i in range(n)]


class RayExecutor(Executor):
    """Ray tasks, on this machine or on a cluster.

    Parameters
    ----------
    address : None starts Ray on this machine (or joins the one already initialised in this
        process); "auto" joins the cluster this machine belongs to (``ray start``); "ray://host:10001"
        connects to a remote cluster through Ray Client
    num_cpus : CPUs for a Ray started here (default: all); ignored when joining a cluster
    retries : extra attempts of a task that raises or whose worker died (Ray's ``max_retries`` with
        ``retry_exceptions``); default 2
    init_options : further keyword arguments for ``ray.init``

    Ray started by this executor is shut down by :meth:`close` (or leaving a ``with`` block).
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, retries: int = 2,
                 **init_options: Any) -> None:
        super().__init__(retries)
        if address is not None and not isinstance(address, str):
            raise ConfigError(f"RayExecutor(address=...) must be None, 'auto' or 'ray://host:port'; got {address!r}")
        if num_cpus is not None:
            _check_count("RayExecutor", "num_cpus", num_cpus, minimum=1)
        self.address, self.num_cpus, self.init_options = address, num_cpus, init_options
        self._started = False
        self._remote: Any = None

    def start(self) -> None:
        """Start or join Ray now (otherwise the first :meth:`open` does)."""
        ray = import_ray()
        if ray.is_initialized():
            return
        # quiet by default (the CLI prints its own progress); init_options override any of these
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR",
                                   **self.init_options}
        if self.address is None and self.num_cpus is not None:
            options["num_cpus"] = self.num_cpus
        try:
            ray.init(address=self.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = "on this machine" if self.address is None else f"at address {self.address!r}"
            raise ConfigError(f"could not start or reach Ray {where}: {exc}. Start a cluster with "
                              "`ray start --head` and pass its address, or use executor='process'.") from None
        self._started = True

    def remote_call(self) -> Any:
        ray = import_ray()
        if self._remote is None:
            self._remote = ray.remote(_ray_call).options(max_retries=self.retries, retry_exceptions=True)
        return self._remote

    @contextmanager
    def open(self, shared: Any) -> Iterator[Session]:
        self.start()
        ray = import_ray()
        ref = ray.put(_check_picklable(shared, self.name))  # serialized once, into the object store
        try:
            yield _RaySession(self, ref)
        finally:
            del ref

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
            self._remote = None

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, num_cpus={self.num_cpus}, retries={self.retries})"


EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor, "process": ProcessExecutor, "ray": RayExecutor}


def get_executor(name: str = "local", **options: Any) -> Executor:
    """The executor called ``name`` ("local", "process" or "ray"), built with ``options``.

    >>> get_executor("process", workers=2)
    ProcessExecutor(workers=2, retries=2, context='spawn')
    """
    if name not in EXECUTORS:
        raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}; got {name!r}")
    if name == "ray":
        import_ray()  # the install hint now, not at the first shard
    import inspect

    known = [p for p in inspect.signature(EXECUTORS[name]).parameters if p != "init_options"]
    unknown = sorted(set(options) - set(known)) if name != "ray" else []
    if unknown:
        raise ConfigError(f"get_executor({name!r}, ...) takes {', '.join(known)}; got {', '.join(unknown)}: pass only "
                          "those")
    return EXECUTORS[name](**options)


def resolve_executor(executor: Executor | str | None) -> Executor:
    """An :class:`Executor` from an instance, a name, or None (the one :func:`use_executor` set, else local)."""
    if executor is None:
        return _DEFAULT[0] or LocalExecutor()
    if isinstance(executor, Executor):
        return executor
    if isinstance(executor, str):
        return get_executor(executor)
    raise ConfigError(f"executor must be 'local', 'process', 'ray' or an Executor; got {executor!r}")


@contextmanager
def use_executor(executor: Executor | str | None) -> Iterator[Executor]:
    """Within the block, work given ``executor=None`` runs on ``executor`` (a scan's checks, for instance).

    >>> with use_executor("local") as ex:
    ...     resolve_executor(None) is ex
    True
    """
    chosen = resolve_executor(executor)
    before = _DEFAULT[0]
    _DEFAULT[0] = chosen
    try:
        yield chosen
    finally:
        _DEFAULT[0] = before
