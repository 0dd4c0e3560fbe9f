"""The MLX side of mlxchat: one thread owns every MLX object; the rest talks to it by queue.

Importing this package loads nothing heavy and has no side effect. On a Linux CPU, the
process must call `mlxchat.engine.cpu.setup_process()` before `mlx.core` is first imported
to get the fast BLAS; `mlxchat.cli.main` and `Engine()` do, and so must any other entry
point (a server, a benchmark, a script that imports MLX itself).
"""
