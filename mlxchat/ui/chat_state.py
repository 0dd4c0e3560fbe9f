"""The conversation held by the chat screen, and its saved copy in the history.

`ChatState` knows the turns, the system prompt, the sampling settings and the engine
session name; it saves each message as it happens (the user's when sent, the answer when it
ends). Saving never raises: a failure comes back as a one-line message for the user, and
the chat goes on in memory.

The history keeps a tree of branches; `turns` is the branch shown, each turn with its
message id, so a question can be edited (`branch_from`), an answer written again
(`regenerate_from`) and the versions of a message browsed (`show_alternative`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from mlxchat.engine.types import Message, SamplingParams, Stats
from mlxchat.store.records import Conversation, StoredMessage

_SESSIONS = itertools.count(1)

SAVED_PARAMS = ("temp", "top_p", "min_p", "top_k", "max_tokens", "seed", "repetition_penalty")
"""Sampling settings saved with a conversation and restored when it is resumed."""


@dataclass
class Turn:
    """One message of the conversation as the model sees it.

    Attributes:
        role: "user" or "assistant".
        content: The text.
        finish_reason: For answers: why it ended.
        message_id: Its id in the history (None: not saved).
        reasoning: For answers: the model's reasoning (the engine sends it back only to a
            template that reads it).
    """

    role: str
    content: str
    finish_reason: str | None = None
    message_id: int | None = None
    reasoning: str = ""


class ChatState:
    """The current conversation.

    Attributes:
        history: Where it is saved (None: nowhere).
        turns: User and assistant messages, oldest first.
        system_prompt: Sent before the turns ("" for none).
        params: Sampling settings for the next answer.
        chosen: Sampling settings chosen for this chat (a slash-command, or saved with a
            resumed chat): they stay when the model, and so its defaults, change.
        conversation_id: Its id in the history once the first message is saved.
        model: The model answering now.
        session: The engine cache session name.
    """

    def __init__(self, history: Any | None, system_prompt: str, params: SamplingParams) -> None:
        """Start an empty conversation."""
        self.history = history
        self.turns: list[Turn] = []
        self.system_prompt = system_prompt
        self.params = params
        self.chosen: dict[str, Any] = {}
        self.conversation_id: int | None = None
        self.title = ""
        self.model = ""
        self.session = _new_session()

    # ----- the prompt -----------------------------------------------------------------------
    def messages(self) -> list[Message]:
        """The conversation as the engine takes it: the system prompt then every turn."""
        head = [Message("system", self.system_prompt)] if self.system_prompt.strip() else []
        turns = [Message(t.role, t.content, reasoning=t.reasoning) for t in self.turns]  # type: ignore[arg-type]
        return head + turns

    @property
    def last_answer(self) -> str | None:
        """The text of the newest answer, or None."""
        for turn in reversed(self.turns):
            if turn.role == "assistant":
                return turn.content
        return None

    def settings_dict(self) -> dict[str, Any]:
        """The sampling settings worth saving with the conversation."""
        values = asdict(self.params)
        return {name: values[name] for name in SAVED_PARAMS}

    # ----- changes (each saved) ---------------------------------------------------------------
    def add_user(self, text: str) -> str | None:
        """Add and save the user's message; returns a problem to show, or None."""
        turn = Turn("user", text)
        self.turns.append(turn)
        if self.history is None:
            return None
        try:
            if self.conversation_id is None:
                self.conversation_id = self.history.new_conversation(
                    model=self.model,
                    system_prompt=self.system_prompt,
                    settings=self.settings_dict(),
                )
            turn.message_id = self.history.add_message(self.conversation_id, "user", text)
        except Exception as error:  # HistoryError, or anything a broken store raises
            return _problem(error)
        return None

    def add_answer(
        self,
        text: str,
        finish_reason: str,
        stats: Stats | None,
        model: str,
        reasoning: str = "",
    ) -> str | None:
        """Add and save an answer (also a stopped one) and its reasoning, saved apart;
        returns a problem to show, or None."""
        turn = Turn("assistant", text, finish_reason, reasoning=reasoning)
        self.turns.append(turn)
        if self.history is None or self.conversation_id is None:
            return None
        try:
            turn.message_id = self.history.add_message(
                self.conversation_id,
                "assistant",
                text,
                model=model or None,
                finish_reason=finish_reason,
                stats=stats,
                reasoning=reasoning,
            )
        except Exception as error:
            return _problem(error)
        return None

    def drop_last_answer(self) -> tuple[bool, str | None]:
        """Remove the newest answer (for /retry), here and in the history.

        Returns:
            Whether there was one, and a problem to show (or None).
        """
        if not self.turns or self.turns[-1].role != "assistant":
            return False, None
        self.turns.pop()
        if self.history is None or self.conversation_id is None:
            return True, None
        try:
            self.history.delete_last_assistant_message(self.conversation_id)
        except Exception as error:
            return True, _problem(error)
        return True, None

    # ----- branches (each saved) -------------------------------------------------------------
    def branch_from(self, turn_index: int, new_user_text: str) -> str | None:
        """Edit question `turn_index`: the turns before it stay, then `new_user_text` follows,
        saved as an alternative to it (the old question and what followed it are kept).

        Returns:
            A problem to show, or None.

        Raises:
            ValueError: That turn is not a question.
        """
        old = self._turn(turn_index, "user")
        del self.turns[turn_index:]
        if self.history is None or self.conversation_id is None or old.message_id is None:
            return self.add_user(new_user_text)  # nothing saved to branch from
        turn = Turn("user", new_user_text)
        self.turns.append(turn)
        try:
            saved = self._saved(old.message_id)
            turn.message_id = self.history.add_message(
                self.conversation_id, "user", new_user_text, parent_id=saved.parent_id
            )
        except Exception as error:
            return _problem(error)
        return None

    def regenerate_from(self, turn_index: int) -> str | None:
        """Take answer `turn_index` (and the turns after it) off the branch shown; the next
        `add_answer` is saved as an alternative to it (the old one is kept).

        Returns:
            A problem to show, or None.

        Raises:
            ValueError: That turn is not an answer.
        """
        old = self._turn(turn_index, "assistant")
        del self.turns[turn_index:]
        if self.history is None or self.conversation_id is None or old.message_id is None:
            return None
        try:
            parent = self._saved(old.message_id).parent_id
            if parent is not None:
                self.history.switch_to(self.conversation_id, parent, descend=False)
        except Exception as error:
            return _problem(error)
        return None

    def cut_out(self, first: int, count: int) -> str | None:
        """Delete turns `first` to `first + count` from the chat and its saved branch (what
        followed them stays). Returns a problem to show, or None."""
        ids = [t.message_id for t in self.turns[first : first + count] if t.message_id]
        del self.turns[first : first + count]
        if self.history is None or not ids:
            return None
        try:
            self.history.cut_out(ids)
        except Exception as error:
            return _problem(error)
        return None

    def show_alternative(self, turn_index: int, step: int) -> str | None:
        """Show the branch through the previous (`step` -1) or next (+1) version of turn
        `turn_index` (no change past the first or last), remembered in the history; `turns`
        is reloaded from it.

        Returns:
            A problem to show, or None.
        """
        turn = self.turns[turn_index]
        if self.history is None or self.conversation_id is None or turn.message_id is None:
            return None
        try:
            versions = self.history.alternatives(turn.message_id)
            position = versions.index(turn.message_id) + step
            if step == 0 or not 0 <= position < len(versions):
                return None
            self.history.switch_to(self.conversation_id, versions[position])
            self.turns = _turns(self.history.branch(self.conversation_id))
        except Exception as error:
            return _problem(error)
        return None

    def alternative_position(self, turn_index: int) -> tuple[int, int]:
        """Which version of its message turn `turn_index` is, from 1, and how many there are
        (for "2/3"); (1, 1) when it is not saved or the history cannot say."""
        turn = self.turns[turn_index]
        if self.history is None or turn.message_id is None:
            return 1, 1
        try:
            position, count = self.history.alternative_position(turn.message_id)
        except Exception:
            return 1, 1
        return int(position), int(count)

    def _turn(self, turn_index: int, role: str) -> Turn:
        turn = self.turns[turn_index]
        if turn.role != role:
            raise ValueError(
                f"turn {turn_index} is not {'a question' if role == 'user' else 'an answer'}"
            )
        return turn

    def _saved(self, message_id: int) -> StoredMessage:
        """The saved message; LookupError if it is gone (deleted from another window)."""
        assert self.history is not None
        saved = self.history.get_message(message_id)
        if saved is None:
            raise LookupError(f"history could not be saved: message {message_id} is gone")
        return saved

    def save_settings(self) -> str | None:
        """Save the system prompt, model and sampling settings of a saved conversation."""
        if self.history is None or self.conversation_id is None:
            return None
        try:
            self.history.update_conversation(
                self.conversation_id,
                model=self.model or None,
                system_prompt=self.system_prompt,
                settings=self.settings_dict(),
            )
        except Exception as error:
            return _problem(error)
        return None

    def set_params(self, **changes: Any) -> None:
        """Choose sampling settings for this chat (names as in `SamplingParams`)."""
        self.chosen.update(changes)
        self.params = replace(self.params, **changes)

    def use_defaults(self, defaults: SamplingParams) -> None:
        """Take new defaults (another model's), keeping the settings chosen for this chat."""
        self.params = replace(defaults, **self.chosen)

    # ----- starting over ----------------------------------------------------------------------
    def started_over(
        self, system_prompt: str | None = None, params: SamplingParams | None = None
    ) -> ChatState:
        """A new, empty conversation (unsaved until used) on the same history and model.

        This one is left as it is: an answer still being written for it is saved to it.

        Args:
            system_prompt: Its system prompt (None: this one's).
            params: Its sampling settings, none of them chosen (None: this chat's, and the
                settings chosen for it stay chosen).
        """
        fresh = ChatState(
            self.history,
            self.system_prompt if system_prompt is None else system_prompt,
            self.params if params is None else params,
        )
        if params is None:
            fresh.chosen = dict(self.chosen)
        fresh.model = self.model
        return fresh

    def resumed(self, conversation: Conversation) -> ChatState:
        """A saved conversation taken up again: its turns, system prompt and settings (the
        settings chosen for this chat stay, unless the saved ones say otherwise)."""
        fresh = self.started_over(conversation.system_prompt)
        fresh.conversation_id = conversation.id
        fresh.title = conversation.title
        fresh.turns = _turns(conversation.messages)
        known = {f.name for f in fields(SamplingParams)}
        saved = {
            k: v
            for k, v in (conversation.settings or {}).items()
            if k in known
            and k in SAVED_PARAMS
            and (_is_number(v) or (v is None and k in ("seed", "repetition_penalty")))
        }
        fresh.set_params(**saved)
        return fresh


def _turns(messages: Iterable[StoredMessage]) -> list[Turn]:
    """The user and assistant messages of a saved branch as turns."""
    return [
        Turn(m.role, m.content, m.finish_reason, m.id, m.reasoning or "")
        for m in messages
        if m.role in ("user", "assistant")
    ]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _new_session() -> str:
    return f"chat-{next(_SESSIONS)}"


def _problem(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text if text.startswith("history") else f"history could not be saved: {text}"
