"""The widgets of the chat UI, one per module."""
