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

from mlxchat.engine.types import Message, SamplingParams, Stats, ToolCall
from mlxchat.store.records import Conversation, StoredMessage
from mlxchat.tools.toolbox import ToolChoices

_SESSIONS = itertools.count(1)

SAVED_PARAMS = ("temp", "top_p", "min_p", "top_k", "max_tokens", "seed", "repetition_penalty")
"""Sampling settings saved with a conversation and restored when it is resumed."""


@dataclass
class Turn:
    """One message of the conversation as the model sees it.

    Attributes:
        role: "user", "assistant" or "tool" (a tool's result).
        content: The text.
        finish_reason: For answers: why it ended.
        message_id: Its id in the history (None: not saved).
        tool_calls: For answers: the tools the model called.
        tool_call_id: For a tool's result: the call it answers.
        tool_name: For a tool's result: the tool's name.
        reasoning: For answers: the model's reasoning (the engine sends it back only to a
            template that reads it).
    """

    role: str
    content: str
    finish_reason: str | None = None
    message_id: int | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    tool_name: str | None = None
    reasoning: str = ""

    def as_message(self) -> Message:
        """The engine message."""
        return Message(
            self.role,  # type: ignore[arg-type]
            self.content,
            reasoning=self.reasoning,
            tool_calls=self.tool_calls,
            tool_call_id=self.tool_call_id,
            name=self.tool_name,
        )


@dataclass(frozen=True)
class Deletion:
    """What `d` deletes: turns `first` to `first + count` of the branch shown, as a
    `version` (what followed goes too; another version is shown) or cut out (what followed
    stays); `what` says it for the user ("your question and its answer")."""

    first: int
    count: int
    version: bool
    what: str


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
        self.tool_choices = ToolChoices()
        """Tools turned on/off and approved for the rest of this chat (/tools, `a`)."""

    # ----- the prompt -----------------------------------------------------------------------
    def messages(self) -> list[Message]:
        """The conversation as the engine takes it: the system prompt then every turn."""
        head = [Message("system", self.system_prompt)] if self.system_prompt.strip() else []
        return head + [t.as_message() for t in self.turns]

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
        tool_calls: tuple[ToolCall, ...] = (),
        reasoning: str = "",
    ) -> str | None:
        """Add and save an answer (also a stopped one), the tools it called and its
        reasoning, saved apart; returns a problem to show, or None."""
        turn = Turn("assistant", text, finish_reason, tool_calls=tool_calls, reasoning=reasoning)
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
                tool_calls=tool_calls,
                reasoning=reasoning,
            )
        except Exception as error:
            return _problem(error)
        return None

    def add_tool_result(self, call: ToolCall, text: str) -> str | None:
        """Add and save a tool's result to `call` (role "tool"); returns a problem, or None."""
        turn = Turn("tool", text, tool_call_id=call.id, tool_name=call.name)
        self.turns.append(turn)
        if self.history is None or self.conversation_id is None:
            return None
        try:
            turn.message_id = self.history.add_message(
                self.conversation_id, "tool", text, tool_call_id=call.id, tool_name=call.name
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

    def deletion(self, turn_index: int) -> Deletion:
        """What deleting turn `turn_index` takes (`d` on the message cursor).

        A message with other versions goes as a version: it and what followed it on its
        branch, and the nearest version left is shown. The last answer goes alone (its
        question then waits for an answer). Otherwise the exchange goes, the question and
        what answered it (answers, tool calls and results: turns must alternate, as chat
        templates want), and what followed stays.
        """
        turns, last = self.turns, len(self.turns) - 1
        turn = turns[turn_index]
        if turn.role != "user":
            if turn.role == "assistant" and self.alternative_position(turn_index)[1] > 1:
                after = " and what followed it" if turn_index < last else ""
                return Deletion(turn_index, last + 1 - turn_index, True, f"this answer{after}")
            previous = turns[turn_index - 1].role if turn_index else None
            if turn_index == last and turn.role == "assistant" and previous != "assistant":
                return Deletion(turn_index, 1, False, "the answer")
            while turn_index > 0 and turns[turn_index].role != "user":  # back to its question
                turn_index -= 1
            if turns[turn_index].role != "user":
                return Deletion(0, 1, False, "the message")
        end = turn_index + 1
        while end <= last and turns[end].role != "user":  # on to the next question
            end += 1
        if self.alternative_position(turn_index)[1] > 1:
            what = "this version of your question"
            if end <= last:
                what += ", its answer and what followed"
            elif end > turn_index + 1:
                what += " and its answer"
            return Deletion(turn_index, last + 1 - turn_index, True, what)
        answered = end > turn_index + 1
        what = "your question and its answer" if answered else "your question"
        return Deletion(turn_index, end - turn_index, False, what)

    def delete(self, deletion: Deletion) -> str | None:
        """Delete what `deletion` says, here and in the history, and show the branch left.
        Returns a problem to show, or None."""
        first, count = deletion.first, deletion.count
        gone = self.turns[first : first + count]
        del self.turns[first : first + count]
        ids = [t.message_id for t in gone if t.message_id is not None]
        if self.history is None or self.conversation_id is None or not ids:
            return None
        try:
            if deletion.version:
                self.history.delete_message(ids[0])
            else:
                for turn in gone[1:]:  # the other versions of the answer go with its question
                    if turn.message_id is not None and gone[0].role == "user":
                        for other in self.history.alternatives(turn.message_id):
                            if other != turn.message_id:
                                self.history.delete_message(other)
                self.history.cut_out(ids)
            self.turns = _turns(self.history.branch(self.conversation_id))
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
        fresh.tool_choices.servers_off = set(self.tool_choices.servers_off)
        fresh.tool_choices.tools_off = set(self.tool_choices.tools_off)
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
    """The user and assistant messages and tool results of a saved branch as turns."""
    return [
        Turn(
            m.role,
            m.content,
            m.finish_reason,
            m.id,
            tool_calls=tuple(getattr(m, "tool_calls", ()) or ()),
            tool_call_id=getattr(m, "tool_call_id", None),
            tool_name=getattr(m, "tool_name", None),
            reasoning=m.reasoning or "",
        )
        for m in messages
        if m.role in ("user", "assistant", "tool")
    ]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _new_session() -> str:
    return f"chat-{next(_SESSIONS)}"


def _problem(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text if text.startswith("history") else f"history could not be saved: {text}"
