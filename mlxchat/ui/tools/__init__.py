"""The chat's side of tools: tool blocks in the transcript, the approval question, the loop
of calls and answers, and /tools and /tool."""
