"""The MLX side of mlxchat: one thread owns every MLX object; the rest talks to it by queue.

Importing this package loads nothing heavy. It does, on Linux CPU builds, make the system
OpenBLAS visible before MLX is first imported (see `cpu.preload_blas`), so importing any
`mlxchat.engine` module before `mlx.core` gets the fast CPU path.
"""

from mlxchat.engine.cpu import preload_blas

preload_blas()
