"""Find and load models: `demo`, a `.gguf` file, an MLX directory or a Hugging Face repo id.

`resolve_model` is the one resolver: any model name -> a local MLX directory (the demo
fetched, a GGUF file converted, a Hub repo taken from the cache or downloaded by `hub.py`).
`load_model` runs on the engine thread (it creates MLX arrays).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mlxchat import locations
from mlxchat.engine import cpu, runtime
from mlxchat.engine.converted import load_tokenizer as load_kept_tokenizer
from mlxchat.engine.types import LoadProgress, ModelInfo, ModelLoadError
from mlxchat.models import demo, gguf, hub
from mlxchat.settings import from_generation_config

if TYPE_CHECKING:
    import mlx.nn as nn
    from mlx_lm.tokenizer_utils import TokenizerWrapper

ProgressFn = Callable[[LoadProgress], None]
Cancelled = Callable[[], bool]
ModelKind = Literal["demo", "gguf", "hub"]


@dataclass(frozen=True)
class LocalModel:
    """A model available on this machine.

    Attributes:
        name: What to pass to `load_model` (or type after `/model`).
        kind: "demo", "gguf" (an imported GGUF file) or "hub" (downloaded from the Hub, in the
            Hugging Face cache).
        size: Bytes on disk (0 for the demo before it is fetched).
        path: The MLX model directory ("" for the demo before it is fetched).
        available: False for the demo before its first download, and for a Hub download
            begun but not finished (`size` is what arrived).
    """

    name: str
    kind: ModelKind
    size: int
    path: str
    available: bool = True


def load_model(
    name: str,
    *,
    fast_cpu: bool = True,
    on_progress: ProgressFn | None = None,
    cancelled: Cancelled | None = None,
) -> tuple[nn.Module, TokenizerWrapper, ModelInfo]:
    """Load a model and its tokenizer (call on the engine thread).

    Args:
        name: "demo", a path to a .gguf file, an MLX model directory, or a Hugging Face repo
            id ("org/name", or "org/name:Q4_K_M" for one GGUF file of a repo).
        fast_cpu: Allow the CPU fast path (float32 weights on the CPU; see `cpu.py`).
        on_progress: Called with LoadProgress updates.
        cancelled: Polled during a download; True stops it (ModelLoadError).

    Returns:
        The model, its tokenizer and a ModelInfo.

    Raises:
        ModelLoadError: The name resolves to nothing loadable; the message says why.
    """

    def report(message: str, fraction: float | None) -> None:
        if on_progress is not None:
            on_progress(LoadProgress(model=name, message=message, fraction=fraction))

    path = resolve_model(name, on_progress, cancelled)
    report(f"Loading {name}", None)
    from mlx_lm.utils import get_total_parameters
    from mlx_lm.utils import load_model as mlx_load_model

    try:
        model, config = mlx_load_model(path, lazy=True)  # read below, or its float32 copy
        tokenizer = load_kept_tokenizer(path, eos_token_ids=config.get("eos_token_id"))
    except Exception as e:  # mlx-lm raises many types (ValueError, KeyError, OSError, ...)
        raise ModelLoadError(f"cannot load {name}: {_one_line(e)}") from e
    quant = config.get("quantization") or config.get("quantization_config") or {}
    converted = cpu.convert_or_restore(model, path, fast_cpu)
    if fast_cpu and cpu.fast_cpu_enabled() and cpu.on_cpu():
        from mlxchat.engine import cpu_attention

        cpu_attention.enable(model)
    if converted:
        report("Converted the weights to float32 for the CPU", None)
    info = ModelInfo(
        name=name,
        path=str(path),
        context_length=_context_length(config, path),
        quantized=bool(quant),
        dequantized=converted and bool(quant),
        dtype=_dtype(model, quant, converted),
        num_parameters=int(get_total_parameters(model)),
        sampling_defaults=model_defaults(name, path),
        backend=cpu.describe_cpu_path(converted),
        chat_template=bool(getattr(tokenizer, "has_chat_template", True)),
    )
    report(f"Loaded {name}", 1.0)
    return model, tokenizer, info


def model_defaults(name: str, path: Path) -> dict[str, Any]:
    """The model's own sampling defaults: its generation_config.json, else the demo's."""
    found = generation_defaults(path)
    if not found and name in demo.DEMOS:
        return dict(demo.DEMOS[name].sampling_defaults)
    return found


def generation_defaults(path: Path) -> dict[str, Any]:
    """The sampling defaults in the model folder's generation_config.json ({} if none)."""
    try:
        config = json.loads((path / "generation_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return from_generation_config(config) if isinstance(config, dict) else {}


def resolve_model(
    name: str, on_progress: ProgressFn | None = None, cancelled: Cancelled | None = None
) -> Path:
    """Turn a model name into a local MLX model directory (fetching/converting if needed).

    Raises:
        ModelLoadError: Nothing loadable goes by that name.
    """
    if name in demo.DEMOS:
        return demo.ensure_demo(on_progress, name)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path} has no config.json: it is not an MLX model directory")
        return path
    if path.is_file():
        if path.suffix.lower() == ".gguf" or _starts_with_gguf_magic(path):
            return gguf.convert_cached(path, on_progress)
        raise ModelLoadError(f"{path} is neither a .gguf file nor an MLX model directory")
    ref = hub.parse(name)
    if ref is not None:
        found = hub.fetch(name, on_progress, cancelled)
        return gguf.convert_cached(found, on_progress) if ref.gguf else found
    raise ModelLoadError(
        f"{name} does not exist; give 'demo', a .gguf file, an MLX model directory "
        "or a Hugging Face repo id (org/name)"
    )


def import_gguf(path: str | Path, on_progress: ProgressFn | None = None) -> LocalModel:
    """Convert a GGUF file into the cache (for `mlxchat models import`) and describe it."""
    src = Path(path).expanduser()
    model_dir = gguf.convert_cached(src, on_progress)
    return LocalModel(str(src.resolve()), "gguf", _dir_size(model_dir), str(model_dir))


def list_local_models() -> list[LocalModel]:
    """The demo (fetched or not), imported GGUF models, and MLX models in the HF cache."""
    models = []
    for name in demo.DEMOS:
        demo_dir, fetched = demo.demo_dir(name), demo.is_fetched(name)
        size = _dir_size(demo_dir) if fetched else 0
        path = str(demo_dir) if fetched else ""
        models.append(LocalModel(name, "demo", size, path, available=fetched))
    models += _imported_gguf_models()
    models += _hf_cached_models()
    listed = {m.name for m in models}
    for repo, size in hub.partial_downloads():  # `-m REPO` or `models pull REPO` resumes
        if repo not in listed:
            models.append(LocalModel(repo, "hub", size, "", available=False))
    return models


def _imported_gguf_models() -> list[LocalModel]:
    found = []
    models_dir = locations.models_dir()
    if not models_dir.is_dir():
        return []
    for d in sorted(models_dir.iterdir()):
        info = gguf.read_source_info(d)
        if info is None or not (d / "config.json").is_file():
            continue
        source = str(info.get("source", ""))
        # The source name stays loadable only while the file is unchanged; else the dir is.
        unchanged = source and Path(source).is_file() and gguf.cached_dir(Path(source)) == d
        found.append(LocalModel(source if unchanged else str(d), "gguf", _dir_size(d), str(d)))
    return found


def _hf_cached_models() -> list[LocalModel]:
    try:
        with runtime.one_importer():  # not alongside the engine thread (see runtime.py)
            from huggingface_hub import scan_cache_dir

        repos = scan_cache_dir(hub.cache_dir()).repos
    except Exception:  # no cache yet, or one huggingface_hub cannot read: list nothing
        return []
    found = []
    for repo in sorted(repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        revisions = sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True)
        for rev in revisions:
            snap = Path(rev.snapshot_path)
            if (snap / "config.json").is_file() and any(snap.glob("*.safetensors")):
                found.append(LocalModel(repo.repo_id, "hub", rev.size_on_disk, str(snap)))
                break
    return found


def _starts_with_gguf_magic(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _context_length(config: dict[str, Any], path: Path) -> int | None:
    for cfg in (config, config.get("text_config") or {}):
        for key in ("max_position_embeddings", "max_sequence_length", "n_positions", "n_ctx"):
            if isinstance(cfg.get(key), int):
                return cfg[key]
    info = gguf.read_source_info(path) or {}
    value = info.get("context_length")
    return int(value) if value is not None else None


def _dtype(model: nn.Module, quant: dict[str, Any], converted: bool) -> str:
    """A short description of the weights: "float32", "bfloat16", "4-bit", ..."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    if quant and not converted:
        bits = quant.get("bits")
        return f"{bits}-bit" if bits else "quantized"
    sizes: dict[str, int] = {}
    for _, v in tree_flatten(model.parameters()):
        if mx.issubdtype(v.dtype, mx.floating):
            key = str(v.dtype).removeprefix("mlx.core.")
            sizes[key] = sizes.get(key, 0) + v.size
    return max(sizes, key=lambda k: sizes[k]) if sizes else ""


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."
