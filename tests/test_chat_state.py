"""The chat's conversation: what the model is sent, what is saved, and a failing store."""

from __future__ import annotations

from typing import Any

from mlxchat.engine.types import Message, SamplingParams
from mlxchat.store.history import History
from mlxchat.ui.chat_state import ChatState


def chat(history: Any = None, system: str = "Be brief.") -> ChatState:
    state = ChatState(history, system, SamplingParams(temp=0.7))
    state.model = "tiny"
    return state


def test_the_model_is_sent_the_system_prompt_then_the_turns() -> None:
    state = chat()
    state.add_user("Hi")
    state.add_answer("Hello!", "stop", None, "tiny")
    assert state.messages() == [
        Message("system", "Be brief."),
        Message("user", "Hi"),
        Message("assistant", "Hello!"),
    ]
    assert state.last_answer == "Hello!"
    assert chat(system="  ").messages() == []


def test_each_message_is_saved_and_retry_removes_the_answer() -> None:
    history = History.in_memory()
    state = chat(history)
    state.add_user("Hi")
    state.add_answer("Hello!", "stop", None, "tiny")
    assert state.drop_last_answer() == (True, None)
    assert state.drop_last_answer() == (False, None)
    assert state.conversation_id is not None
    saved = history.get_conversation(state.conversation_id)
    assert saved is not None
    assert [(m.role, m.content) for m in saved.messages] == [("user", "Hi")]


def test_a_resumed_chat_brings_back_turns_and_chosen_settings() -> None:
    history = History.in_memory()
    first = chat(history)
    first.set_params(temp=0.2, top_k=5)
    first.add_user("Hi")
    first.add_answer("Hello!", "length", None, "tiny")
    saved = history.get_conversation(first.conversation_id or 0)
    assert saved is not None

    before = chat(history, system="")
    second = before.resumed(saved)
    assert second is not before and second.session != before.session
    assert before.turns == [] and before.conversation_id is None  # left as it was
    assert second.system_prompt == "Be brief."
    assert [(t.role, t.content, t.finish_reason) for t in second.turns] == [
        ("user", "Hi", None),
        ("assistant", "Hello!", "length"),
    ]
    second.use_defaults(SamplingParams(temp=1.0, top_p=0.9))  # another model's defaults
    # every saved setting was restored as chosen for this chat: the defaults do not win
    assert (second.params.temp, second.params.top_k, second.params.top_p) == (0.2, 5, 1.0)


def test_starting_over_gives_a_new_unsaved_chat_and_leaves_the_old_one() -> None:
    history = History.in_memory()
    state = chat(history)
    state.set_params(temp=0.2)
    state.add_user("Hi")
    fresh = state.started_over(system_prompt="New.")
    assert fresh.turns == [] and fresh.conversation_id is None
    assert fresh.messages() == [Message("system", "New.")]
    assert fresh.session != state.session and fresh.model == "tiny"
    assert fresh.params.temp == 0.2 and fresh.chosen == {"temp": 0.2}  # /clear keeps them
    defaults = state.started_over(params=SamplingParams(temp=1.0))  # /new: the defaults
    assert defaults.params.temp == 1.0 and defaults.chosen == {}
    # the old chat is untouched: an answer still written for it is saved to it
    assert state.add_answer("Hello!", "stop", None, "tiny") is None
    saved = history.get_conversation(state.conversation_id or 0)
    assert saved is not None
    assert [(m.role, m.content) for m in saved.messages] == [
        ("user", "Hi"),
        ("assistant", "Hello!"),
    ]


class BrokenHistory:
    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> None:
            raise OSError("disk full")

        return fail


def test_a_failing_store_is_reported_and_the_chat_goes_on() -> None:
    state = chat(BrokenHistory())
    assert state.add_user("Hi") == "history could not be saved: disk full"
    assert state.messages()[-1] == Message("user", "Hi")
