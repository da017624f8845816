"""The package's exceptions: one base class, so a caller can tell this project's errors from anyone else's.

An exception that carries fields keeps them through pickling (``__reduce__``): Celery workers and the DAG
processor hand exceptions to other processes, and one rebuilt from its message alone would lose them.
"""

from __future__ import annotations


class EcsJobsError(Exception):
    """Base class of every exception this package raises."""
