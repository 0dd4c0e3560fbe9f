"""Models from the Hub: the real `mlxchat` and the real `huggingface_hub` client against a
Hub-compatible endpoint on a loopback port (`hub_server.py`), reached through HF_ENDPOINT."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_server import HubServer, model_repos

from mlxchat.models import hub

BIG = 12 << 20  # a multi-MB weights file: more than one 1 MiB piece


def mlxchat(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlxchat", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlxchat: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture(scope="module")
def big_weights() -> bytes:
    return random.Random(0).randbytes(BIG)


@pytest.fixture
def server(
    tiny_llama: Path, big_weights: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HubServer]:
    """The endpoint with a tiny MLX repo, a gated one, a PyTorch one and a 12 MiB one; the
    environment points at it and at an empty Hugging Face cache."""
    with HubServer(model_repos(tiny_llama, big_weights)) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
        for name in ("HF_TOKEN", "HF_HUB_OFFLINE", "HF_HOME"):
            monkeypatch.delenv(name, raising=False)
        yield srv


def test_generate_downloads_loads_and_answers(server: HubServer, tmp_path: Path) -> None:
    proc = mlxchat("generate", "-m", "org/tiny", "-p", "Hello", "--max-tokens", "4")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    # Before the bytes: what and how much; then progress lines on stderr (not a terminal).
    assert re.search(r"^org/tiny: .* 0% 4 files, 0\.5 MB, into .*hf$", proc.stderr, re.M)
    assert re.search(r"^org/tiny: .*100% downloaded 0\.5/0\.5 MB · 4 files$", proc.stderr, re.M)
    snapshot = tmp_path / "hf" / "models--org--tiny" / "snapshots" / server.repos["org/tiny"].sha
    assert sorted(p.name for p in snapshot.iterdir()) == sorted(server.repos["org/tiny"].files)
    # Next time: from the cache, offline even, without a single request.
    seen = len(server.requests)
    again = mlxchat("generate", "-m", "org/tiny", "-p", "Hello", "--max-tokens", "4",
                    env={"HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stdout == proc.stdout and len(server.requests) == seen
    # Listed with its size; removed on request.
    listed = mlxchat("models").stdout
    assert any(line.startswith("org/tiny ") and " MB " in line for line in listed.splitlines())
    assert_one_line_error(mlxchat("models", "rm", "org/tiny"), "pass --yes")
    removed = mlxchat("models", "rm", "org/tiny", "--yes")
    assert removed.returncode == 0 and removed.stdout.startswith("removed org/tiny (0.5 MB")
    assert not (tmp_path / "hf" / "models--org--tiny").exists()


def test_errors_are_one_line_and_leave_nothing_behind(server: HubServer, tmp_path: Path) -> None:
    assert_one_line_error(mlxchat("models", "pull", "org/nope"), "no model org/nope on the Hub")
    assert_one_line_error(mlxchat("models", "pull", "org/gated"), "org/gated is gated", "HF_TOKEN")
    assert_one_line_error(
        mlxchat("models", "pull", "org/torch"),
        "only PyTorch weights (pytorch_model.bin)",
        "mlx-community/torch",
        "mlx_lm.convert --hf-path org/torch",
    )
    assert_one_line_error(
        mlxchat("models", "pull", "org/tiny", env={"HF_HUB_OFFLINE": "1"}), "HF_HUB_OFFLINE"
    )
    with socket_nobody_listens_on() as dead:
        assert_one_line_error(
            mlxchat("models", "pull", "org/tiny", env={"HF_ENDPOINT": dead}),
            "cannot reach the Hub",
        )
    assert not any((tmp_path / "hf").glob("*/snapshots/*/*"))
    # The same commands then work: a token for the gated repo, and the network back.
    pulled = mlxchat("models", "pull", "org/gated", env={"HF_TOKEN": server.token})
    assert pulled.returncode == 0, pulled.stderr
    assert mlxchat("models", "pull", "org/tiny").returncode == 0


def test_a_dropped_connection_resumes_with_a_range_request(
    server: HubServer, big_weights: bytes, tmp_path: Path
) -> None:
    cut = BIG // 2 + 1000
    server.cut_once["model.safetensors"] = cut
    proc = mlxchat("models", "pull", "org/big")
    assert proc.returncode == 0, proc.stderr
    gets = server.gets("model.safetensors")
    assert [r.headers.get("Range") for r in gets] == [None, f"bytes={cut}-"]  # 0 B again
    path = Path(proc.stdout.split(" -> ")[1].strip()) / "model.safetensors"
    assert path.read_bytes() == big_weights


def test_a_killed_download_resumes_next_time(
    server: HubServer, big_weights: bytes, tmp_path: Path
) -> None:
    server.bytes_per_second = 2e6
    child = subprocess.Popen(
        [sys.executable, "-m", "mlxchat", "models", "pull", "org/big"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    partial = tmp_path / "hf" / "models--org--big" / "blobs"
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size >= 2 << 20 for p in partial.glob("*.incomplete")):
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.1)
    child.send_signal(signal.SIGKILL)
    child.wait()
    listed = mlxchat("models").stdout.splitlines()
    assert any(line.startswith("org/big ") and " MB partial" in line for line in listed)
    server.bytes_per_second = 0
    proc = mlxchat("models", "pull", "org/big")
    assert proc.returncode == 0, proc.stderr
    first, second = server.gets("model.safetensors")
    resumed_from = int(second.headers["Range"].removeprefix("bytes=").rstrip("-"))
    assert first.headers.get("Range") is None and resumed_from >= 2 << 20
    assert "MB already here" in proc.stderr
    path = Path(proc.stdout.split(" -> ")[1].strip()) / "model.safetensors"
    assert path.read_bytes() == big_weights


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_a_slow_download_shows_its_progress_bar(server: HubServer, tmp_path: Path) -> None:
    from terminal_harness import Terminal, mlxchat_command

    server.bytes_per_second = 3e6
    env = " ".join(f"{k}={os.environ[k]}" for k in ("HF_ENDPOINT", "HF_HUB_CACHE"))
    term = Terminal(f"env {env} " + mlxchat_command(tmp_path, "models", "pull", "org/big"))
    try:
        screen = term.wait_until(
            lambda s: "[###" in s and "MB/s" in s and "ETA" in s and "/2 files" in s,
            timeout=60,
            what="a progress bar with speed, ETA and files",
        )
        assert "org/big:" in screen and "/12.6 MB" in screen
        assert term.wait_exit(60) == 0
        assert "org/big -> " in term.screen()
    finally:
        term.close()


def test_plan_says_the_size_and_what_is_missing(server: HubServer) -> None:
    plan = hub.plan(hub.HubRef("org/tiny"))
    repo = server.repos["org/tiny"]
    assert plan.commit == repo.sha and plan.missing == plan.size
    assert sorted(f.path for f in plan.files) == sorted(repo.files)
    assert plan.size == sum(len(d) for d in repo.files.values())


def test_names() -> None:
    assert hub.parse("org/name") == hub.HubRef("org/name")
    assert hub.parse("org/name:Q4_K_M") == hub.HubRef("org/name", "Q4_K_M")
    assert hub.parse("org/x.gguf") is None and hub.parse("demo") is None
    assert hub._quant_of("SmolLM2-135M-Instruct.Q4_1.gguf") == "Q4_1"
    assert hub._quant_of("gemma-3-270m-q4_k_m.gguf") == "q4_k_m"


class socket_nobody_listens_on:
    """An http:// URL of a loopback port that refuses connections."""

    def __enter__(self) -> str:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        return None


def test_a_gguf_repo_gives_one_file_imported(
    server: HubServer, tiny_llama: Path, tmp_path: Path
) -> None:
    from hub_server import Repo
    from test_gguf import write_float_gguf

    gguf = write_float_gguf(tiny_llama, tmp_path / "tiny-F32.gguf", "llama")
    other = b"GGUF" + b"\0" * 2000  # another quant, never fetched
    server.repos["org/tiny-GGUF"] = Repo(
        {"tiny-F32.gguf": gguf.read_bytes(), "tiny-Q4_K_M.gguf": other, "README.md": b"hi"}
    )
    assert_one_line_error(
        mlxchat("models", "pull", "org/tiny-GGUF"),
        "holds GGUF files, not an MLX model",
        "-m org/tiny-GGUF:F32",
    )
    proc = mlxchat("generate", "-m", "org/tiny-GGUF:F32", "-p", "Hello", "--max-tokens", "4")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    assert [r.path.rsplit("/", 1)[-1] for r in server.requests if r.method == "GET"
            and "/resolve/" in r.path] == ["tiny-F32.gguf"]  # fmt: skip
    pulled = mlxchat("models", "pull", "org/tiny-GGUF", "--gguf-file", "tiny-F32.gguf")
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.startswith("org/tiny-GGUF:tiny-F32.gguf -> ")
