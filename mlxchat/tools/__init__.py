"""Tools for the chat: MCP servers (the official `mcp` SDK), started in the background.

Nothing here imports textual: `config` reads `[mcp.servers.NAME]` tables, `server` holds one
connection, `toolbox` all of them with the per-chat choices (on/off, approvals).
"""
