"""The heavy modules (MLX, mlx-lm, transformers, huggingface_hub), imported in one place.

mlx-lm and transformers import themselves in cycles (`mlx_lm/__init__` imports
`mlx_lm.generate`, which imports back into the package; transformers resolves its names
lazily). Two threads importing them at the same time get, from Python's per-module import
locks, a partially initialised module: "cannot import name 'AutoTokenizer' from
'transformers'" on one thread or "cannot import name 'batch_generate' from partially
initialized module 'mlx_lm.generate'" on the other. That failed most resumed chats: the
context count imported mlx-lm on the UI thread while the engine thread loaded the model.

So the engine thread calls `import_runtime()` as its very first job, and code elsewhere
that needs one of these modules imports it inside `one_importer()`: the lock makes a late
caller wait until the engine thread's import is complete instead of importing alongside.
Nothing else imports them at module level outside the engine's own generation modules,
which only the engine thread loads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.RLock()
_imported = False


def import_runtime() -> None:
    """Import the heavy modules once; a concurrent caller waits until they are complete."""
    global _imported
    if _imported:
        return
    with _lock:
        if _imported:
            return
        import huggingface_hub  # noqa: F401
        import mlx.core  # noqa: F401
        import mlx.nn  # noqa: F401
        import mlx_lm  # noqa: F401  (generate, utils, tokenizer_utils, transformers)
        import mlx_lm.models.cache  # noqa: F401
        import mlx_lm.sample_utils  # noqa: F401
        import transformers  # noqa: F401
        from transformers import AutoTokenizer  # noqa: F401  (resolves the lazy module)

        _imported = True


@contextmanager
def one_importer() -> Iterator[None]:
    """Import a heavy module inside this block: never alongside `import_runtime`."""
    with _lock:
        yield
