"""Where models come from: a local MLX directory, the Hugging Face Hub (its cache and
downloads), a GGUF file (imported into an MLX directory), the offline demos, a server URL.

`loader.resolve_model` turns any model name into a local MLX directory and `loader.load_model`
loads it; the engine asks them and nothing here imports the engine's generation parts.
Importing this package loads nothing heavy.
"""
