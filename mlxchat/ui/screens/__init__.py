"""The screens of the chat UI: chat, help, model picker, saved chats."""
