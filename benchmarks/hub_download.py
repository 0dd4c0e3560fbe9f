"""Hub downloads over a loopback endpoint, measured side by side in one run.

A Hub-compatible server (tests/hub_server.py) serves two repos, each a config and a random
`model.safetensors`: `org/big` (large) and `org/small` (1 kB: the fixed cost of a run,
process start included). Each run downloads one into an empty Hugging Face cache:

- A: `mlxchat models pull org/big` (its resumable fetcher for the large file);
- B: plain `huggingface_hub.snapshot_download` with mlx-lm's patterns (the yardstick),

alternated A B A B. Then one pull whose connection the server drops at 60 % of the file,
and one pull killed (SIGKILL) at about 40 % and run again: the bytes the server sent beyond
the file's size are what was fetched twice.

    python benchmarks/hub_download.py [--mb 100] [--runs 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from hub_server import HubServer, Repo  # noqa: E402

PULL = [sys.executable, "-m", "mlxchat", "models", "pull", "org/big"]
HUB = (
    "import sys; from huggingface_hub import snapshot_download; "
    "snapshot_download(sys.argv[1], allow_patterns=['*.json', 'model*.safetensors'])"
)


def served(server: HubServer, start: int) -> int:
    """Bytes of model.safetensors the server was asked for since request `start`."""
    return sum(r.sent for r in server.requests[start:] if r.path.endswith("model.safetensors"))


def run(cmd: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{cmd} failed: {proc.stderr}")
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    size = args.mb << 20
    weights = random.Random(0).randbytes(size)
    config = b'{"model_type": "llama"}'
    repo = Repo({"config.json": config, "model.safetensors": weights})
    small = Repo({"config.json": config, "model.safetensors": weights[:1000]})
    root = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    print(f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"file: {size / 1e6:.1f} MB over http://127.0.0.1 (loopback)")
    with HubServer({"org/big": repo, "org/small": small}) as server:
        env = {**os.environ, "HF_ENDPOINT": server.url, "HF_HUB_CACHE": str(root / "hf")}
        env.pop("HF_HUB_OFFLINE", None)
        commands = {
            "mlxchat models pull": PULL[:-1],
            "snapshot_download": [sys.executable, "-c", HUB],
        }
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.runs):
            for name, cmd in commands.items():
                for repo_id in ("org/big", "org/small"):
                    shutil.rmtree(root / "hf", ignore_errors=True)
                    times.setdefault((name, repo_id), []).append(run([*cmd, repo_id], env))
        for name in commands:
            big, fixed = min(times[name, "org/big"]), min(times[name, "org/small"])
            print(
                f"{name:20} {size / 1e6 / big:6.1f} MB/s whole run ({big:.2f} s), "
                f"{size / 1e6 / (big - fixed):6.1f} MB/s without the fixed {fixed:.2f} s "
                f"(best of {args.runs})"
            )

        shutil.rmtree(root / "hf", ignore_errors=True)
        start = len(server.requests)
        server.cut_once["model.safetensors"] = int(size * 0.6)
        run(PULL, env)
        again = served(server, start) - size
        print(f"dropped connection at 60 %: {again} bytes fetched twice")

        shutil.rmtree(root / "hf", ignore_errors=True)
        start = len(server.requests)
        server.bytes_per_second = 50e6
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        child = subprocess.Popen(PULL, env=env, **quiet)
        blobs = root / "hf" / "models--org--big" / "blobs"
        while not any(p.stat().st_size > size * 0.4 for p in blobs.glob("*.incomplete")):
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait()
        server.bytes_per_second = 0
        run(PULL, env)
        again = served(server, start) - size
        print(f"killed at ~40 % and run again: {again} bytes fetched twice")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
