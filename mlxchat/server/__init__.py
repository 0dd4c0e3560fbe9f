"""`mlxchat serve`: the engine behind an OpenAI-compatible HTTP API (SSE) and WebSockets.

`create_app(engine, config)` (in `app.py`) builds the FastAPI app; each endpoint family is an
`APIRouter` in its own module (`openai_routes.py`, `ws_chat.py`) included in one line.
Importing this package needs the `serve` extra (fastapi, uvicorn).
"""
