"""Joining a Ray cluster for `--engine ray` (the `scale` extra): the one place rq calls ray.init.

Ray is imported here and only here, on first use, so the default install (no Ray) and every
command without `--engine ray` never pay for it. What runs on the cluster is defined next to
the work it does (rq.ingest.on_ray: fetch and extract; rq.index.encoders.on_ray: embed); this
module only connects, says how many workers there are, and tunes Ray Data for rq's use.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from rq.errors import ConfigError, RqError
from rq.settings import Settings
from rq.threads import usable_cpus

INSTALL_HINT = "install rq's scale extra: pip install -e '.[scale]' in rq's folder (or pip install 'ray[data]')"


@dataclass(frozen=True)
class Cluster:
    """The Ray cluster a run uses: where, and how many workers it runs at once."""

    address: str  # the GCS address (HOST:PORT) other machines and processes join
    workers: int  # embedding actors and fetch tasks at once
    cpus: int  # CPUs the cluster has in all


def ray_module():
    """Ray, imported now; RqError saying what to install when it is not there."""
    try:
        import ray
    except ImportError:
        raise RqError(f"--engine ray needs Ray, which is not installed; {INSTALL_HINT}") from None
    return ray


def connect(settings: Settings) -> Cluster:
    """Join (or start) the Ray cluster the settings name, once per process; a process that already
    joined one (a test session, a notebook) keeps it. Raises RqError when it cannot be reached."""
    ray = ray_module()
    if not ray.is_initialized():
        address = settings.ray_address or os.environ.get("RAY_ADDRESS") or None
        options = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False,
                   "configure_logging": True}
        if address is None:
            # A Ray of rq's own on this machine: as many CPUs as rq would use itself.
            options["num_cpus"] = settings.threads or usable_cpus()
        if address not in (None, "auto"):
            _check_reachable(address)  # ray.init retries an unreachable head node for minutes
        try:
            ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            where = f"at {address}" if address else "on this machine"
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RqError(f"cannot start or reach a Ray cluster {where} ({detail}); start one with "
                          "`ray start --head` and pass --address HOST:PORT, or drop --address") from None
    _quiet_data(ray)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    workers = settings.ray_workers or max(1, cpus)
    if settings.ray_workers > cpus:
        raise ConfigError(f"setting ray_workers: {settings.ray_workers} workers asked for, but the Ray cluster "
                          f"has {cpus} CPUs; use at most {cpus} (0 takes one per CPU)")
    return Cluster(ray.get_runtime_context().gcs_address, workers, cpus)


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """RqError unless something accepts a TCP connection at ``address`` (HOST:PORT, maybe ray://)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RqError(f"cannot start or reach a Ray cluster at {address} ({reason}); start one there with "
                      "`ray start --head`, or drop --address to use a Ray of rq's own") from None


def _quiet_data(ray) -> None:
    """Ray Data as rq wants it: results in input order (the archive and index are written in queue
    order, like a local run), no bars or banners of its own (rq draws its own bar on stderr)."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    # Ray Data logs each run's plan and its own tuning hints; what matters reaches rq as an exception.
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def failure_line(exc: BaseException) -> str:
    """What went wrong on a Ray worker, in one line, without Ray's traceback: the last line of the
    worker's exception (Ray wraps it with the remote traceback above it)."""
    cause = getattr(exc, "cause", None)
    text = str(cause if cause is not None else exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__
