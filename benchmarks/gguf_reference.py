"""Record llama.cpp's answers on GGUF files, the reference the GGUF import is tested against.

Writes tests/data/gguf_reference.json: for each tiny file of tests/test_gguf_archs.py
(written afresh, deterministically) and for the real Gemma 3 270M file when given, the
greedy continuation of fixed prompts (argmax of llama.cpp's logits, no sampling) with the
margin between the best and second-best logit and the top 5 logits at each step, and the
token ids of a few texts; each file twice: as it is (key NAME) and as an F32 copy with
every tensor dequantized by gguf-py (key NAME/f32), where llama.cpp computes without
rounding its activations to 8 bits (docs/gguf.md). Prints the smallest margin of each.

llama.cpp runs through llama-cpp-python in its own environment (it is not a dependency of
mlxchat and the tests never need it):

    python -m venv /tmp/llamavenv && /tmp/llamavenv/bin/pip install llama-cpp-python==0.3.36
    .venv/bin/python benchmarks/gguf_reference.py --llama-python /tmp/llamavenv/bin/python \
        --gemma /path/to/gemma-3-270m-q4_k_m.gguf

This script re-runs itself in that environment (`--worker SPEC`) for the llama.cpp part.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "gguf_reference.json"

GEMMA_TEXTS = [
    "English: The weather is very nice today.\nFrench:",
    "Il fait très beau aujourd'hui, n'est-ce pas ? Où est l'hôtel ?",
    "  two leading spaces, then\n\nnewlines\tand a tab",
    "Emoji 🙂🚀 and 東京 and ñ§ symbols",
    "<start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n",
    "def add(a, b):\n    return a + b  # sum",
]
GEMMA_PROMPTS = [
    "English: The weather is very nice today.\nFrench:",
    "The capital of France is",
    "English: Where is the train station?\nFrench:",
    "Once upon a time,",
]
GEMMA_STEPS = 24


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------
# llama.cpp side (runs in the llama-cpp-python environment: numpy and llama_cpp only)


def _greedy(llm: Any, prompt: list[int], steps: int) -> dict[str, Any]:
    """Greedy tokens, best-minus-second logit margins and the top 5 (ids, logits) per step."""
    import numpy as np

    llm.reset()
    llm.eval(prompt)
    run: dict[str, Any] = {"tokens": [], "margins": [], "top5": []}
    for _ in range(steps):
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        top = np.argsort(-logits, kind="stable")[:5]
        best = int(top[0])
        run["tokens"].append(best)
        run["margins"].append(round(float(logits[top[0]] - logits[top[1]]), 4))
        run["top5"].append([[int(i) for i in top], [round(float(logits[i]), 4) for i in top]])
        llm.eval([best])
    return run


def worker(spec_path: Path) -> None:
    import llama_cpp

    spec = json.loads(spec_path.read_text())
    out: dict[str, Any] = {"llama_cpp_python": llama_cpp.__version__}
    for job in spec["jobs"]:
        kv = {"type_k": 0, "type_v": 0} if spec.get("f32_kv") else {}  # 0: GGML_TYPE_F32
        llm = llama_cpp.Llama(
            job["path"], n_ctx=256, logits_all=True, n_threads=2, verbose=False, seed=0, **kv
        )
        result: dict[str, Any] = {"texts": {}, "runs": []}
        for text in job["texts"]:
            result["texts"][text] = llm.tokenize(text.encode(), add_bos=True, special=True)
        for prompt in job["prompts"]:
            ids = (
                prompt
                if isinstance(prompt, list)
                else llm.tokenize(prompt.encode(), add_bos=True, special=True)
            )
            run = {"prompt": prompt, "prompt_ids": ids, **_greedy(llm, ids, job["steps"])}
            run["text"] = llm.detokenize(run["tokens"]).decode("utf-8", errors="replace")
            result["runs"].append(run)
        out[job["name"]] = result
        del llm
    spec_path.with_suffix(".out.json").write_text(json.dumps(out))


# ---------------------------------------------------------------------------------------
# mlxchat side


def write_f32_copy(src: Path, dst: Path) -> None:
    """`src` with every tensor dequantized to F32 (gguf-py), metadata unchanged.

    llama.cpp multiplies quantized weights with activations quantized to 8 bits (Q8_0,
    Q8_K), which moves its logits by up to a few percent; on F32 weights it does not, so
    this copy gives llama.cpp's model with exactly the values the import keeps.
    """
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
    from gguf.quants import dequantize

    reader = GGUFReader(src)
    writer = GGUFWriter(dst, str(reader.fields["general.architecture"].contents()))
    for key, f in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        sub = f.types[-1] if f.types[0] == GGUFValueType.ARRAY else None
        writer.add_key_value(key, f.contents(), f.types[0], sub_type=sub)
    for t in reader.tensors:
        shape = tuple(int(x) for x in reversed(t.shape))
        if t.tensor_type == GGMLQuantizationType.F32:
            data = np.array(t.data, np.float32).reshape(shape)
        else:
            data = dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float32)
        writer.add_tensor(t.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--llama-python", default="/tmp/llamavenv/bin/python")
    parser.add_argument("--gemma", type=Path, help="gemma-3-270m-q4_k_m.gguf")
    parser.add_argument("--f32-kv", action="store_true", help="llama.cpp KV cache in F32")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return

    sys.path.insert(0, str(ROOT / "tests"))
    import test_gguf_archs as tiny

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        jobs, files = [], {}
        for name in tiny.CASES:
            path = tmp / f"{name}.gguf"
            info = tiny.write_case(name, path)
            files[name] = files[f"{name}/f32"] = sha256(path)
            write_f32_copy(path, tmp / f"{name}-f32.gguf")
            job = {"texts": tiny.TEXTS, "prompts": [info["prompt"]], "steps": tiny.GEN_TOKENS}
            jobs.append({"name": name, "path": str(path), **job})
            jobs.append({"name": f"{name}/f32", "path": str(tmp / f"{name}-f32.gguf"), **job})
        if args.gemma:
            name = "gemma-3-270m-q4_k_m"
            files[name] = files[f"{name}/f32"] = sha256(args.gemma)
            f32 = tmp / "real-gemma-3-270m-f32.gguf"  # not "gemma-f32.gguf": a tiny case's name
            write_f32_copy(args.gemma, f32)
            job = {"texts": GEMMA_TEXTS, "prompts": GEMMA_PROMPTS, "steps": GEMMA_STEPS}
            jobs.append({"name": name, "path": str(args.gemma), **job})
            jobs.append({"name": f"{name}/f32", "path": str(f32), **job})
        spec = tmp / "spec.json"
        spec.write_text(json.dumps({"jobs": jobs, "f32_kv": args.f32_kv}))
        subprocess.run([args.llama_python, __file__, "--worker", str(spec)], check=True)
        result = json.loads(spec.with_suffix(".out.json").read_text())
    reference: dict[str, Any] = {"llama_cpp_python": result.pop("llama_cpp_python")}
    old = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for name, value in result.items():
        reference[name] = {"sha256": files[name], **value}
    for name, value in old.items():
        reference.setdefault(name, value)  # keep the Gemma entry when not re-run
    args.out.write_text(json.dumps(reference, indent=1, ensure_ascii=False) + "\n")
    for name, value in reference.items():
        if isinstance(value, dict):
            margins = [m for run in value["runs"] for m in run["margins"]]
            print(f"{name}: smallest margin {min(margins):.4f}")


if __name__ == "__main__":
    main()
