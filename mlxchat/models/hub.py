"""Models from the Hugging Face Hub: found in its cache, else downloaded with `huggingface_hub`.

Only the files an MLX model needs are fetched (mlx-lm's own `allow_patterns`, so the cache is
shared with mlx-lm and other tools), into the standard cache (`HF_HUB_CACHE`, `HF_HOME`).
`HF_TOKEN`, `HF_HUB_OFFLINE` and `HF_ENDPOINT` are read when a download starts. Before any
byte, the repo's file list gives the size (free disk is checked) and tells an MLX repo from a
PyTorch or GGUF one. The large (LFS) files are fetched by `hub_fetch.py`, which keeps a
partial file and resumes it with a `Range` request after a dropped connection, a Ctrl+C or
a killed process; `snapshot_download` then fetches the small files and lays out the cache.

`ORG/NAME:Q4_K_M` (or `ORG/NAME:FILE.gguf`) names one GGUF file of a repo; it is downloaded
alone and imported by `gguf.py`. Nothing here imports MLX.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from mlxchat.engine.types import LoadProgress, ModelLoadError
from mlxchat.models.hub_progress import DOWNLOAD_PHASE, DownloadMeter, progress_bar_class

ProgressFn = Callable[[LoadProgress], None]
Cancelled = Callable[[], bool]

ALLOW_PATTERNS = [
    "*.json",
    "model*.safetensors",
    "*.py",
    "tokenizer.model",
    "*.tiktoken",
    "tiktoken.model",
    "*.txt",
    "*.jsonl",
    "*.jinja",
]
"""What an MLX model needs: mlx-lm's `DEFAULT_ALLOW_PATTERNS` (mlx_lm/utils.py, 0.32)."""

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_DISK_MARGIN = 64 << 20  # bytes kept free besides the download


@dataclass(frozen=True)
class HubRef:
    """A model on the Hub: `repo` ("org/name"), and for a GGUF repo the file or quant asked."""

    repo: str
    gguf: str = ""

    @property
    def name(self) -> str:
        """As the user writes it."""
        return f"{self.repo}:{self.gguf}" if self.gguf else self.repo


@dataclass(frozen=True)
class HubFile:
    """One file to download: its path in the repo, its size in bytes and its cache blob name
    (the LFS SHA-256, else the git blob id)."""

    path: str
    size: int
    blob: str = ""
    lfs: bool = False


@dataclass(frozen=True)
class Plan:
    """What a download will fetch, known before the bytes.

    Attributes:
        ref: The model.
        commit: The commit the files come from.
        files: The files to fetch (the MLX ones, or the one GGUF file).
        missing: Bytes not yet in the cache (what the download costs).
    """

    ref: HubRef
    commit: str
    files: tuple[HubFile, ...]
    missing: int

    @property
    def size(self) -> int:
        """Bytes of all its files."""
        return sum(f.size for f in self.files)


def parse(name: str) -> HubRef | None:
    """`org/name` or `org/name:QUANT|FILE.gguf` as a HubRef; None for anything else."""
    repo, _, gguf = name.partition(":")
    if not _REPO_ID.fullmatch(repo) or repo.lower().endswith(".gguf") or "/" in gguf:
        return None
    return HubRef(repo, gguf)


def cache_dir() -> Path:
    """The Hugging Face hub cache as the environment says now."""
    if value := os.environ.get("HF_HUB_CACHE"):
        return Path(value).expanduser()
    if value := os.environ.get("HF_HOME"):
        return Path(value).expanduser() / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "huggingface" / "hub"


def offline() -> bool:
    """Whether `HF_HUB_OFFLINE` forbids the network."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def cached(ref: HubRef) -> Path | None:
    """The cached snapshot of an MLX repo (None when not complete in the cache)."""
    try:
        from huggingface_hub import snapshot_download

        path = Path(
            snapshot_download(
                ref.repo,
                allow_patterns=ALLOW_PATTERNS,
                local_files_only=True,
                cache_dir=cache_dir(),
            )
        )
    except Exception:  # LocalEntryNotFoundError, IncompleteSnapshotError, a broken cache...
        return None
    if not (path / "config.json").is_file():
        return None
    return path


def cached_gguf(ref: HubRef) -> Path | None:
    """The cached GGUF file of `ref` (None when not in the cache)."""
    snapshots = _repo_dir(ref.repo) / "snapshots"
    if not snapshots.is_dir():
        return None
    found = sorted(
        (p for p in snapshots.glob("*/**/*.gguf") if _gguf_matches(p.name, ref.gguf)),
        key=lambda p: p.stat().st_mtime,
    )
    return found[-1] if found else None


def plan(ref: HubRef) -> Plan:
    """Ask the Hub what `ref` holds and what a download will cost; check it is an MLX model
    (or, with a GGUF file asked, that the file is there) and that the disk has room.

    Raises:
        ModelLoadError: One line saying why not (unknown, gated, offline, not MLX, no room).
    """
    if offline():
        raise ModelLoadError(
            f"{ref.name} is not in the Hugging Face cache and HF_HUB_OFFLINE is set; "
            "unset it to download the model"
        )
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    api = HfApi(endpoint=_endpoint(), token=_token())
    try:
        info = api.repo_info(ref.repo, revision="main")
        commit = str(info.sha)
        tree = [
            f
            for f in api.list_repo_tree(ref.repo, recursive=True, revision=commit)
            if isinstance(f, RepoFile)
        ]
    except Exception as error:
        raise hub_error(ref, error) from error
    sizes = {f.path: int(f.size) for f in tree}
    blobs = {f.path: f.lfs.sha256 if f.lfs is not None else f.blob_id for f in tree}
    lfs = {f.path for f in tree if f.lfs is not None}
    if ref.gguf:
        files = [_pick_gguf(ref, sizes)]
    else:
        _check_mlx(ref, sizes)
        files = [p for p in sizes if any(fnmatch(p, pat) for pat in ALLOW_PATTERNS)]
    wanted = tuple(HubFile(p, sizes[p], blobs[p], p in lfs) for p in sorted(files))
    missing = sum(f.size - _have(ref.repo, commit, f) for f in wanted)
    _check_disk(ref, missing)
    return Plan(ref, commit, wanted, missing)


def download(plan: Plan, on_progress: ProgressFn | None, cancelled: Cancelled | None) -> Path:
    """Fetch what `plan` lists into the cache and return the snapshot folder (or, for a
    GGUF ref, the file).

    Raises:
        ModelLoadError: The download failed or was cancelled; what arrived stays for a resume.
    """
    from huggingface_hub import hf_hub_download, snapshot_download

    if on_progress is not None:
        have = plan.size - plan.missing
        already = f", {have / 1e6:.1f} MB already here" if have else ""
        text = f"{len(plan.files)} files, {plan.size / 1e6:.1f} MB{already}, into {cache_dir()}"
        on_progress(LoadProgress(plan.ref.name, text, 0.0, phase=DOWNLOAD_PHASE))
    meter = DownloadMeter(plan.ref.name, plan.size, len(plan.files), on_progress, cancelled)
    meter.start(already=plan.size - plan.missing)
    bar = progress_bar_class(meter)
    common: dict[str, Any] = {
        "revision": plan.commit,
        "cache_dir": cache_dir(),
        "endpoint": _endpoint(),
        "token": _token(),
    }
    try:
        _fetch_large_files(plan, meter)
        if plan.ref.gguf:
            path = Path(
                hf_hub_download(plan.ref.repo, plan.files[0].path, tqdm_class=bar, **common)
            )
        else:
            path = Path(
                snapshot_download(
                    plan.ref.repo, allow_patterns=ALLOW_PATTERNS, tqdm_class=bar, **common
                )
            )
    except Exception as error:
        meter.finish(ok=False)
        if meter.was_cancelled:
            raise ModelLoadError(
                f"download of {plan.ref.name} cancelled; what arrived is kept for next time"
            ) from error
        raise hub_error(plan.ref, error) from error
    meter.finish(ok=True)
    if not plan.ref.gguf:
        _write_ref(plan.ref.repo, plan.commit)
    return path


def _fetch_large_files(plan: Plan, meter: DownloadMeter) -> None:
    """Download the LFS files not yet cached, resumably (`hub_fetch.py`)."""
    from huggingface_hub import get_token

    from mlxchat.models.hub_fetch import fetch_blob, resolve_url

    blobs = _repo_dir(plan.ref.repo) / "blobs"
    token = _token() or get_token()  # HF_TOKEN, else the one `hf auth login` stored
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for f in plan.files:
        if not f.lfs or (blobs / f.blob).is_file():
            continue
        url = resolve_url(_endpoint(), plan.ref.repo, plan.commit, f.path)
        fetch_blob(url, blobs / f.blob, f.size, f.blob, headers, meter.add)
        meter.fetched_file()


def fetch(
    name: str, on_progress: ProgressFn | None = None, cancelled: Cancelled | None = None
) -> Path:
    """The local path of a Hub model: the cached snapshot (or GGUF file), else downloaded.

    Raises:
        ModelLoadError: One line saying why it is not there.
    """
    ref = parse(name)
    if ref is None:
        raise ModelLoadError(f"{name!r} is not a Hugging Face repo id (org/name)")
    have = cached_gguf(ref) if ref.gguf else cached(ref)
    if have is not None:
        return have
    return download(plan(ref), on_progress, cancelled)


def size_on_disk(repo: str) -> int | None:
    """Bytes a repo takes in the Hugging Face cache (partial downloads too); None: absent."""
    folder = _repo_dir(repo)
    if not folder.is_dir():
        return None
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())


def partial_downloads() -> list[tuple[str, int]]:
    """Repos with a download begun and not finished: (org/name, bytes on disk)."""
    root = cache_dir()
    found = []
    for folder in sorted(root.glob("models--*--*")) if root.is_dir() else []:
        if any((folder / "blobs").glob("*.incomplete")):
            repo = folder.name.removeprefix("models--").replace("--", "/", 1)
            found.append((repo, size_on_disk(repo) or 0))
    return found


def remove(repo: str) -> int:
    """Delete a repo from the Hugging Face cache; return the bytes freed (0: not there)."""
    size = size_on_disk(repo)
    if size is None:
        return 0
    shutil.rmtree(_repo_dir(repo))
    return size


def hub_error(ref: HubRef, error: BaseException) -> ModelLoadError:
    """One line for a failed Hub request, naming what the user can do."""
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(error, ModelLoadError):
        return error
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", 0)
    if type(error).__name__ == "HTTPStatusError" and status in (401, 403):
        return ModelLoadError(f"the Hub refused {ref.name} (HTTP {status}): set HF_TOKEN")
    if isinstance(error, GatedRepoError):
        return ModelLoadError(
            f"{ref.repo} is gated: accept its terms on the Hub and set HF_TOKEN to a token "
            "of that account"
        )
    if isinstance(error, RepositoryNotFoundError):
        return ModelLoadError(
            f"no model {ref.repo} on the Hub (or it is private: set HF_TOKEN); "
            "check the name, e.g. mlx-community/Qwen3-0.6B-4bit"
        )
    if isinstance(error, RevisionNotFoundError | RemoteEntryNotFoundError):
        return ModelLoadError(f"{ref.name}: not found on the Hub ({_one_line(error)})")
    if isinstance(error, OfflineModeIsEnabled | LocalEntryNotFoundError) or _is_network(error):
        return ModelLoadError(
            f"cannot reach the Hub ({_endpoint() or 'huggingface.co'}) to download {ref.name}; "
            "check the network or HF_ENDPOINT"
        )
    return ModelLoadError(f"could not download {ref.name}: {_one_line(error)}")


def _is_network(error: BaseException) -> bool:
    """A connection refused, reset or timed out (httpx2/httpx/OS errors)."""
    seen: BaseException | None = error
    while seen is not None:
        kind = type(seen).__name__
        if kind in {"ConnectError", "ConnectTimeout", "ReadTimeout", "TimeoutException"}:
            return True
        if isinstance(seen, ConnectionError | TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _check_mlx(ref: HubRef, sizes: dict[str, int]) -> None:
    names = list(sizes)
    has_weights = any(fnmatch(p, "model*.safetensors") for p in names)
    if "config.json" in names and has_weights:
        return
    ggufs = [p for p in names if p.lower().endswith(".gguf")]
    if ggufs:
        quants = sorted({q for p in ggufs if (q := _quant_of(p))})
        example = quants[0] if quants else ggufs[0]
        raise ModelLoadError(
            f"{ref.repo} holds GGUF files, not an MLX model: pick one, e.g. "
            f"-m {ref.repo}:{example} ({len(ggufs)} files: {', '.join(quants or ggufs[:5])})"
        )
    torch = [p for p in names if p.endswith((".bin", ".pt", ".pth"))]
    what = f"only PyTorch weights ({torch[0]})" if torch else "no model*.safetensors"
    if not torch and "config.json" not in names:
        what = "no config.json and no model*.safetensors"
    tail = ref.repo.split("/")[-1]
    raise ModelLoadError(
        f"{ref.repo} is not an MLX model: it has {what}; look for mlx-community/{tail} "
        f"or convert it with `mlx_lm.convert --hf-path {ref.repo}`"
    )


def _pick_gguf(ref: HubRef, sizes: dict[str, int]) -> str:
    ggufs = sorted(p for p in sizes if p.lower().endswith(".gguf"))
    found = [p for p in ggufs if _gguf_matches(p.rsplit("/", 1)[-1], ref.gguf)]
    if len(found) == 1:
        return found[0]
    listed = ", ".join(p.rsplit("/", 1)[-1] for p in ggufs[:8]) or "none"
    if not found:
        raise ModelLoadError(
            f"{ref.repo} has no GGUF file for {ref.gguf!r}; its GGUF files: {listed}"
        )
    raise ModelLoadError(
        f"{ref.repo}: {ref.gguf!r} matches {len(found)} files ({listed}); name one"
    )


def _gguf_matches(filename: str, wanted: str) -> bool:
    """Whether a GGUF file name is the file or quant (`Q4_K_M`, case-insensitive) wanted."""
    if wanted.lower().endswith(".gguf"):
        return filename == wanted
    if not filename.lower().endswith(".gguf"):
        return False
    return (_quant_of(filename) or "").lower() == wanted.lower()


def _quant_of(path: str) -> str:
    """The quant tag at the end of a GGUF file name ("model-Q4_K_M.gguf" -> "Q4_K_M")."""
    stem = path.rsplit("/", 1)[-1][: -len(".gguf")]
    match = re.search(r"[.-]((?:I?Q\d\w*)|F16|F32|BF16)$", stem, re.IGNORECASE)
    return match.group(1) if match else ""


def _have(repo: str, commit: str, f: HubFile) -> int:
    """Bytes of `f` already in the cache (whole file or a partial download)."""
    blobs = _repo_dir(repo) / "blobs"
    if (_repo_dir(repo) / "snapshots" / commit / f.path).exists() or (blobs / f.blob).is_file():
        return f.size
    try:
        return min(f.size, (blobs / f"{f.blob}.incomplete").stat().st_size)
    except OSError:
        return 0


def _check_disk(ref: HubRef, missing: int) -> None:
    folder = cache_dir()
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if missing + _DISK_MARGIN > free:
        raise ModelLoadError(
            f"{ref.name} needs {missing / 1e9:.2f} GB but {folder} has only {free / 1e9:.2f} GB "
            "free; free some space or set HF_HUB_CACHE to a bigger disk"
        )


def _write_ref(repo: str, commit: str) -> None:
    """Point `refs/main` at the commit downloaded (what `local_files_only` looks up)."""
    refs = _repo_dir(repo) / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    if not (refs / "main").is_file() or (refs / "main").read_text().strip() != commit:
        (refs / "main").write_text(commit)


def _repo_dir(repo: str) -> Path:
    return cache_dir() / f"models--{repo.replace('/', '--')}"


def _endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def _token() -> str | None:
    return os.environ.get("HF_TOKEN") or None


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 200 else text[:197] + "..."
