"""moto's internals that the local AWS wraps, subclasses or extends (``local/aws/moto_surface.py``) are still
what it was written against: read in a fresh interpreter, before any of the local AWS's patches."""

from __future__ import annotations

import json
import subprocess
import sys

import moto

from local.aws.moto_surface import ADDED, MOTO_VERSION, PATCHED

READ = """
import importlib, inspect, json, sys
patched, added = json.loads(sys.argv[1]), json.loads(sys.argv[2])
def resolve(path):
    module, _, name = path.partition(":")
    value = importlib.import_module(module)
    for part in name.split("."):
        value = getattr(value, part, None)
    return value
def parameters(path):
    value = resolve(path)
    return None if value is None else list(inspect.signature(value).parameters)
print(json.dumps({
    "patched": {path: parameters(path) for path in patched},
    "added": {path: [h for h in handlers if hasattr(resolve(path), h)] for path, handlers in added.items()},
}))
"""


def test_the_surface_the_local_aws_patches_is_unchanged():
    result = subprocess.run(
        [sys.executable, "-c", READ, json.dumps(list(PATCHED)), json.dumps(ADDED)],
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(result.stdout)
    changed = {
        path: found["patched"][path]
        for path, params in PATCHED.items()
        if found["patched"][path] != list(params)
    }
    assert changed == {}, f"moto {moto.__version__} changed what local/aws wraps (written for {MOTO_VERSION})"
    assert found["added"] == {path: [] for path in ADDED}, "moto now has handlers the local AWS adds"


def test_the_recorded_version_is_the_locked_one():
    assert moto.__version__ == MOTO_VERSION
