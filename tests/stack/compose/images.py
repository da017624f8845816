"""The stand-in base images of the compose test, made from Debian's packages where no registry is reachable.

One Debian bookworm root (debootstrap, minbase) with Python, curl, dumb-init and PostgreSQL, the airflow user,
and the latest lane's lock installed into it with uv (from uv's cache, which ``make install`` filled with the
same pins), imported with ``docker import``. Two small Dockerfiles in ``stand_ins/`` give it the interfaces of
``apache/airflow`` and ``postgres`` that docker-compose.yaml and the project's Dockerfile use. The images are
tagged by a hash of the lock and of everything here, so an engine whose data root is cached builds them once.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from local.settings import REPO
from tests.stack.compose.engine import ComposeTestError, Engine

STAND_INS = Path(__file__).with_name("stand_ins")
LOCK = REPO / "lock" / "latest.txt"
UV = REPO / ".tools" / "bin" / "uv"
SUITE = "bookworm"  # Debian 12, the Python (3.11) of these machines and of the lock
DEB_PACKAGES = ("python3", "python3-venv", "ca-certificates", "curl", "dumb-init", "postgresql")
MIRROR = os.environ.get("ECSJOBS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
AIRFLOW_UID = 50000
VENV = "/home/airflow/.local"  # on the official image's PATH


@dataclass(frozen=True)
class StandIns:
    airflow: str
    postgres: str


def key(paths: list[Path]) -> str:
    """A tag for what an image is made of: the lock, the Debian packages and ``paths``."""
    digest = hashlib.sha256(LOCK.read_bytes() + " ".join([SUITE, *DEB_PACKAGES]).encode())
    for path in sorted(paths):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def airflow_version() -> str:
    return re.search(r"^apache-airflow==(\S+)$", LOCK.read_text(), re.M).group(1)


def ensure(engine: Engine, debootstrap: str, work: Path) -> StandIns:
    """The stand-in images, made unless the engine has them for this key already."""
    base = f"ecsjobs-stand-in/debian:{SUITE}-{key([Path(__file__)])}"
    tag = key([Path(__file__), *STAND_INS.iterdir()])
    images = StandIns(
        airflow=f"ecsjobs-stand-in/airflow:{airflow_version()}-{tag}",
        postgres=f"ecsjobs-stand-in/postgres:{tag}",
    )
    if all(_has(engine, image) for image in (images.airflow, images.postgres)):
        return images
    if not _has(engine, base):
        _import_base(engine, debootstrap, work, base)
    for name, image in (("airflow", images.airflow), ("postgres", images.postgres)):
        result = engine.docker(
            "build",
            "--network=host",
            f"--build-arg=BASE={base}",
            f"--file={STAND_INS / f'{name}.Dockerfile'}",
            f"--tag={image}",
            str(STAND_INS),
            check=False,
            timeout=600,
        )
        if result.returncode != 0:
            raise ComposeTestError(f"building the {name} stand-in image failed:\n{result.stderr[-3000:]}")
    _forget_others(engine, {base, images.airflow, images.postgres})
    return images


def _forget_others(engine: Engine, kept: set[str]) -> None:
    """The cache keeps one set of stand-ins: those of an older lock or recipe go, with their layers."""
    listed = engine.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    old = [image for image in listed if image.startswith("ecsjobs-stand-in/") and image not in kept]
    if old:
        engine.docker("rmi", *old, check=False)
    engine.docker("image", "prune", "--force", check=False)


def _has(engine: Engine, image: str) -> bool:
    return engine.docker("image", "inspect", image, check=False).returncode == 0


def _import_base(engine: Engine, debootstrap: str, work: Path, image: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="debian-root-", dir=work))
    try:
        _run(
            [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(DEB_PACKAGES)}",
                SUITE,
                str(root),
                MIRROR,
            ],
            "debootstrap of the Debian root",
            timeout=1200,
        )
        _install_airflow(root)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        result = engine.docker("import", "-", image, stdin=tar.stdout, check=False, timeout=600)
        tar.wait(60)
        if result.returncode != 0 or tar.returncode != 0:
            raise ComposeTestError(f"docker import of the Debian root failed:\n{result.stderr[-3000:]}")
    finally:
        _remove(root)


def _remove(root: Path) -> None:
    """The root's folder, only once nothing is mounted in it (the host's /dev and uv cache were)."""
    mounted = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    inside = [point for point in mounted if point == str(root) or point.startswith(f"{root}/")]
    if inside:
        raise ComposeTestError(f"{', '.join(inside)} still mounted: unmount them, then remove {root}")
    shutil.rmtree(root, ignore_errors=True)


def _install_airflow(root: Path) -> None:
    """The airflow user and a virtualenv with the lock in the root, installed by uv inside it (chroot)."""
    # This machine's CA bundle: pip and uv verify PyPI's certificate against it (the images are the test's).
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", root / "etc/ssl/certs/ca-certificates.crt")
    shutil.copy(UV, root / "usr/local/bin/uv")
    shutil.copy(LOCK, root / "tmp/lock.txt")
    cache = subprocess.run([str(UV), "cache", "dir"], capture_output=True, text=True, check=True)
    with _mounted(root, cache.stdout.strip()):
        script = (
            f"useradd --uid {AIRFLOW_UID} --gid 0 --create-home --home-dir /home/airflow airflow"
            " && mkdir -p /opt/airflow && chown airflow:0 /opt/airflow"
            f" && uv venv -q --seed --python /usr/bin/python3 {VENV}"
            f" && VIRTUAL_ENV={VENV} UV_CACHE_DIR=/var/cache/uv"
            " uv pip sync -q --compile-bytecode /tmp/lock.txt"
            " && chown -R airflow:0 /home/airflow"
        )
        _run(["chroot", str(root), "/bin/sh", "-c", script], "installing the lock in the Debian root", 1200)
    (root / "tmp/lock.txt").unlink()
    (root / "usr/local/bin/uv").unlink()


@contextmanager
def _mounted(root: Path, uv_cache: str):
    """/proc, /dev and the host's uv cache inside the root while uv runs there."""
    mounts = [
        (["-t", "proc", "proc"], root / "proc"),
        (["--bind", "/dev"], root / "dev"),
        (["--bind", uv_cache], root / "var/cache/uv"),
    ]
    with ExitStack() as undo:
        for args, target in mounts:
            target.mkdir(parents=True, exist_ok=True)
            _run(["mount", *args, str(target)], f"mounting {target}", 60)
            undo.callback(subprocess.run, ["umount", str(target)], check=False, timeout=60)
        yield


def _run(command: list[str], what: str, timeout: float) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ComposeTestError(f"{what} did not finish within {timeout:.0f} s") from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-3000:]
        raise ComposeTestError(f"{what} failed ({result.returncode}):\n{output}")
