"""Choose the BLAS that MLX's CPU backend calls, and load it before MLX is imported.

The `mlx-cpu` wheel links a reference BLAS (`mlx_cpu.libs/libblas-*.so`). Its symbols are
resolved when `mlx.core` is first imported, so a library loaded earlier with RTLD_GLOBAL
that defines `cblas_sgemm` takes its place. `load()` finds one, in this order:

1. pip: the `ngsolve-openblas` wheel (a mlxchat dependency on Linux x86-64): OpenBLAS
   0.3.33 built with DYNAMIC_ARCH (kernels picked for the running CPU).
2. system: the distribution's OpenBLAS (`libopenblas0`, `openblas`).
3. bundled: nothing loaded; MLX keeps its reference BLAS.

pip comes first: it is a known, recent build (distributions ship 0.3.21 to 0.3.30), and
measured faster than Debian 12's 0.3.21 on prefill (README, Performance).

`MLXCHAT_BLAS` picks one: `auto` (the order above), `pip`, `system`, `bundled`, or the path
of an OpenBLAS library. `MLXCHAT_CPU_FAST=0` turns the whole CPU fast path off.

The pip OpenBLAS needs `libgfortran.so.5`, which a fresh Linux may not have. The mlx-cpu
wheel bundles one under a hashed name (`mlx_cpu.libs/libgfortran-<hash>.so.5.0.0`). When
the plain load fails for that reason, a folder in mlxchat's cache dir gets symbolic links:
`libgfortran.so.5` and the gfortran runtime's own hashed dependencies pointing into
`mlx_cpu.libs`, and a link to the OpenBLAS, whose RPATH `$ORIGIN` then finds the runtime
there. Nothing is written anywhere else.

The thread count is set from the CPUs this process may use (its affinity mask and its
cgroup's CPU quota), not the host's core count, less one (`default_threads`), unless
`OPENBLAS_NUM_THREADS` is set.
`OPENBLAS_CORETYPE` and friends are left to the user.

This module must stay cheap to import and must not import MLX.
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

ENV_CHOICE = "MLXCHAT_BLAS"
ENV_SWITCH = "MLXCHAT_CPU_FAST"
CHOICES = ("auto", "pip", "system", "bundled")

PIP_PACKAGE = "ngsolve-openblas"
_PIP_MODULE = "ngsolve_openblas"

SYSTEM_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",  # Debian/Ubuntu (libopenblas0)
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib64/libopenblas.so.0",  # Fedora/RHEL (openblas)
    "/usr/lib64/libopenblasp.so.0",
    "/usr/lib/libopenblas.so.0",  # Arch
    "/usr/lib/libopenblas.so",
)


@dataclass(frozen=True)
class Blas:
    """The BLAS this process uses.

    Attributes:
        kind: "pip", "system", "path" (given by `MLXCHAT_BLAS`) or "bundled".
        path: The library loaded (None for "bundled").
        version: e.g. "0.3.33" ("" for "bundled").
        config: `openblas_get_config()`, e.g. "OpenBLAS 0.3.33 DYNAMIC_ARCH ... SkylakeX".
        corename: `openblas_get_corename()`: the kernel set in use, e.g. "SkylakeX".
        threads: OpenBLAS threads (0 for "bundled").
        note: Why the bundled BLAS is used, or what was tried before the one loaded.
    """

    kind: str
    path: str | None = None
    version: str = ""
    config: str = ""
    corename: str = ""
    threads: int = 0
    note: str = ""

    @property
    def is_openblas(self) -> bool:
        return self.kind != "bundled"

    def describe(self) -> str:
        """One line, e.g. "OpenBLAS 0.3.33 (SkylakeX kernels, 2 threads; pip ngsolve-openblas)"."""
        if not self.is_openblas:
            if sys.platform == "darwin":
                return "Accelerate (MLX's BLAS on macOS)"
            return "bundled reference BLAS" + (f" ({self.note})" if self.note else "")
        source = {
            "pip": f"pip {PIP_PACKAGE}",
            "system": f"system {self.path}",
            "path": f"{ENV_CHOICE}={self.path}",
        }[self.kind]
        kernels = f"{self.corename} kernels, " if self.corename else ""
        threads = f"{self.threads} thread{'s' if self.threads != 1 else ''}"
        return f"OpenBLAS {self.version} ({kernels}{threads}; {source})"


_loaded: Blas | None = None
_lib: ctypes.CDLL | None = None


def fast_cpu_enabled() -> bool:
    """Whether the CPU fast path is allowed by the environment (`MLXCHAT_CPU_FAST` != "0")."""
    return os.environ.get(ENV_SWITCH, "1").strip() != "0"


def current() -> Blas | None:
    """What `load` chose in this process (None: not called yet)."""
    return _loaded


def load() -> Blas:
    """Load the BLAS for MLX (once per process; later calls return the first result).

    Never raises: a library that is missing or fails to load is skipped, and the reason is
    kept in `Blas.note` when the bundled BLAS is what remains.
    """
    global _loaded
    if _loaded is None:
        _loaded = _choose()
    return _loaded


def _choose() -> Blas:
    if not sys.platform.startswith("linux"):
        return Blas("bundled", note="not Linux")
    if not fast_cpu_enabled():
        return Blas("bundled", note=f"fast path off, {ENV_SWITCH}=0")
    if "mlx.core" in sys.modules:
        return Blas("bundled", note="MLX was imported before mlxchat could load OpenBLAS")
    if _cuda_installed():
        return Blas("bundled", note="mlx-cuda installed")
    choice = os.environ.get(ENV_CHOICE, "auto").strip() or "auto"
    if choice == "bundled":
        return Blas("bundled", note=f"{ENV_CHOICE}=bundled")
    if choice not in CHOICES:
        candidates = [("path", choice)]
    else:
        candidates = []
        if choice in ("auto", "pip"):
            candidates += [("pip", p) for p in pip_candidates()]
        if choice in ("auto", "system"):
            candidates += [("system", p) for p in system_candidates()]
    failures = []
    for kind, path in candidates:
        try:
            lib = _open(path)
        except OSError as error:
            failures.append(f"{path}: {_first_line(error)}")
            continue
        return _describe(kind, path, lib, failures)
    if not candidates:
        wanted = {"auto": "", "pip": f"{PIP_PACKAGE} "}.get(choice, f"{choice} ")
        return Blas("bundled", note=f"no {wanted}OpenBLAS found")
    return Blas("bundled", note="; ".join(failures))


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


# ---------------------------------------------------------------------------------------
# Finding libraries


def _site_dirs() -> list[Path]:
    return [Path(p) for p in sys.path if p and os.path.isdir(p)]


def pip_candidates() -> list[str]:
    """The pip OpenBLAS libraries installed on sys.path (found without importing them)."""
    found = []
    for site in _site_dirs():
        folder = site / _PIP_MODULE
        if folder.is_dir():
            found += sorted(str(p) for p in folder.glob("libopenblas*.so*") if p.is_file())
    return found


def system_candidates() -> list[str]:
    """The system OpenBLAS, when there is one."""
    for path in SYSTEM_PATHS:
        if os.path.exists(path):
            return [path]
    import ctypes.util  # imports subprocess: only when the usual paths have nothing

    name = ctypes.util.find_library("openblas")
    return [name] if name else []


def _cuda_installed() -> bool:
    """Whether an `mlx-cuda*` distribution is installed on sys.path.

    Looks for its `.dist-info` folder by name, as `importlib.metadata` does, without
    importing `importlib.metadata` (about 80 ms, too slow for every CLI start).
    """
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as it:
                for item in it:
                    name = item.name.lower()
                    if name.startswith(("mlx_cuda", "mlx-cuda")) and name.endswith(
                        (".dist-info", ".egg-info")
                    ):
                        return True
        except OSError:
            continue
    return False


# ---------------------------------------------------------------------------------------
# Loading


def _open(path: str) -> ctypes.CDLL:
    """Load `path` locally, check it is an OpenBLAS MLX can use, then make it global.

    Raises:
        OSError: the library is missing, does not load, or lacks `cblas_sgemm`.
    """
    try:
        lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
    except OSError as error:
        if "libgfortran" not in str(error):
            raise
        link = _linked_with_bundled_gfortran(path)
        if link is None:
            raise
        lib = ctypes.CDLL(link, mode=ctypes.RTLD_LOCAL)
        path = link
    for symbol in ("cblas_sgemm", "openblas_get_config", "openblas_set_num_threads"):
        if not hasattr(lib, symbol):
            raise OSError(f"not an OpenBLAS that MLX can use (no {symbol})")
    # Promote the loaded library (and its dependencies) to the global scope, where the
    # dynamic linker looks first when `mlx.core` is imported.
    return ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL | os.RTLD_NOLOAD)


def bundled_gfortran() -> list[Path]:
    """The gfortran runtime in the mlx-cpu wheel (libgfortran first), or []."""
    for site in _site_dirs():
        libs = site / "mlx_cpu.libs"
        if libs.is_dir():
            files = [p for p in libs.iterdir() if p.name.startswith(("libgfortran", "libquadmath"))]
            return sorted(files, key=lambda p: not p.name.startswith("libgfortran"))
    return []


def _linked_with_bundled_gfortran(path: str) -> str | None:
    """A link to `path` in a cache folder beside `libgfortran.so.5` (see the module doc)."""
    runtime = bundled_gfortran()
    if not runtime or not runtime[0].name.startswith("libgfortran"):
        return None
    import hashlib

    from mlxchat import locations

    target = Path(path).resolve()
    links = {target.name: target, "libgfortran.so.5": runtime[0].resolve()}
    links.update({p.name: p.resolve() for p in runtime})
    key = hashlib.sha256("\n".join(f"{k}={v}" for k, v in sorted(links.items())).encode())
    folder = locations.cache_dir() / "blas" / key.hexdigest()[:16]
    try:
        _make_links(folder, links)
    except OSError:
        return None
    return str(folder / target.name)


def _make_links(folder: Path, links: dict[str, Path]) -> None:
    """Create `folder` holding `name -> target` symbolic links.

    The folder's name is a hash of the targets, and it is built under a temporary name and
    renamed into place, so a folder that exists is complete; concurrent starts are safe.
    """
    if all(_points_to(folder / name, target) for name, target in links.items()):
        return
    import shutil
    import tempfile

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name, target in links.items():
            (tmp / name).symlink_to(target)
        os.rename(tmp, folder)
    except OSError:
        if not all(_points_to(folder / name, target) for name, target in links.items()):
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _points_to(link: Path, target: Path) -> bool:
    try:
        return link.is_symlink() and Path(os.readlink(link)) == target
    except OSError:
        return False


# ---------------------------------------------------------------------------------------
# Threads and description


def usable_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by its cgroup's CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def default_threads() -> int:
    """OpenBLAS threads for this process: the CPUs it may use, less one (at least one).

    The thread that calls OpenBLAS (MLX's compute thread) works on each product too, and
    while a decode step computes, the Python thread builds the next one (and a chat's UI
    thread draws): with as many OpenBLAS threads as CPUs there are more runnable threads
    than CPUs, and each product waits for its slowest thread. On 2 CPUs at load averages of
    2-3, OpenBLAS 0.3.33 with 2 threads ran prefill 3-8x and decode 1.6-5x slower than with
    1 (Debian's 0.3.21 was 1.15-1.6x faster with 2 threads in the same conditions).
    """
    return max(1, usable_cpus() - 1)


def cgroup_cpu_quota(root: str = "/sys/fs/cgroup") -> float | None:
    """The CPU quota of this process's cgroup in CPUs (None: unlimited or unknown).

    cgroup v2: `cpu.max` ("max 100000" or "200000 100000") of the process's cgroup and each
    parent, the smallest wins; cgroup v1: `cpu.cfs_quota_us` / `cpu.cfs_period_us`.
    """
    limits = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[0] == "0" and parts[1] == "":
            folder = Path(root + parts[2])
            while True:
                limits.append(_cpu_max(folder / "cpu.max"))
                if folder == Path(root) or folder.parent == folder:
                    break
                folder = folder.parent
    limits.append(_cpu_max(Path(root) / "cpu.max"))
    v1 = Path(root) / "cpu"
    try:
        quota = int((v1 / "cpu.cfs_quota_us").read_text())
        period = int((v1 / "cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            limits.append(quota / period)
    except (OSError, ValueError):
        pass
    real = [x for x in limits if x is not None]
    return min(real) if real else None


def _cpu_max(path: Path) -> float | None:
    try:
        quota, period = path.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def user_threads() -> bool:
    """Whether the user set the OpenBLAS thread count (`OPENBLAS_NUM_THREADS`)."""
    return bool(os.environ.get("OPENBLAS_NUM_THREADS", "").strip())


def get_threads() -> int:
    """OpenBLAS's thread count now (0 with the bundled BLAS)."""
    if _lib is None or not hasattr(_lib, "openblas_get_num_threads"):
        return 0
    return int(_lib.openblas_get_num_threads())


def set_threads(n: int) -> None:
    """Set OpenBLAS's thread count (nothing with the bundled BLAS).

    Call it only while no BLAS call runs (MLX computes on its own threads: synchronize
    first): growing the count starts threads in a pool that may be in use.
    """
    if _lib is not None and n >= 1:
        _lib.openblas_set_num_threads(int(n))


def _describe(kind: str, path: str, lib: ctypes.CDLL, failures: list[str]) -> Blas:
    global _lib
    _lib = lib
    lib.openblas_get_config.restype = ctypes.c_char_p
    config = (lib.openblas_get_config() or b"").decode(errors="replace").strip()
    corename = ""
    if hasattr(lib, "openblas_get_corename"):
        lib.openblas_get_corename.restype = ctypes.c_char_p
        corename = (lib.openblas_get_corename() or b"").decode(errors="replace").strip()
    if not user_threads():
        lib.openblas_set_num_threads(default_threads())
    threads = lib.openblas_get_num_threads() if hasattr(lib, "openblas_get_num_threads") else 0
    words = config.split()
    version = words[1] if len(words) > 1 and words[0] == "OpenBLAS" else ""
    return Blas(
        kind=kind,
        path=path,
        version=version,
        config=config,
        corename=corename,
        threads=int(threads),
        note="; ".join(failures),
    )
