"""The chat's branches: editing a question, writing an answer again, browsing versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlxchat.engine.types import SamplingParams
from mlxchat.store.history import History
from mlxchat.ui.chat_state import ChatState


def chat(history: Any = None, system: str = "Be brief.") -> ChatState:
    state = ChatState(history, system, SamplingParams(temp=0.7))
    state.model = "tiny"
    return state


def talk(state: ChatState, *texts: str) -> None:
    """Questions and answers in turn."""
    for n, text in enumerate(texts):
        if n % 2 == 0:
            assert state.add_user(text) is None
        else:
            assert state.add_answer(text, "stop", None, "tiny") is None


def contents(state: ChatState) -> list[str]:
    return [t.content for t in state.turns]


def saved_branch(history: History, state: ChatState) -> list[tuple[int, str]]:
    """The branch the history shows, as (id, text), without system prompt changes."""
    assert state.conversation_id is not None
    return [(m.id, m.content) for m in history.branch(state.conversation_id) if m.role != "system"]


def in_turns(state: ChatState) -> list[tuple[int | None, str]]:
    return [(t.message_id, t.content) for t in state.turns]


def test_turns_carry_their_message_ids_also_when_resumed() -> None:
    history = History.in_memory()
    state = chat(history)
    talk(state, "Q1", "A1")
    assert all(t.message_id is not None for t in state.turns)
    assert in_turns(state) == saved_branch(history, state)
    saved = history.get_conversation(state.conversation_id or 0)
    assert saved is not None
    assert in_turns(chat(history).resumed(saved)) == in_turns(state)


def test_editing_a_question_branches_and_keeps_the_old_one() -> None:
    history = History.in_memory()
    state = chat(history)
    talk(state, "Q1", "A1", "Q2", "A2")
    old_q2, old_a2 = state.turns[2].message_id, state.turns[3].message_id

    assert state.branch_from(2, "Q2 edited") is None
    assert contents(state) == ["Q1", "A1", "Q2 edited"]
    assert state.add_answer("A2 for the edit", "stop", None, "tiny") is None
    assert in_turns(state) == saved_branch(history, state)  # the store shows the same branch
    assert history.alternatives(state.turns[2].message_id or 0) == [
        old_q2,
        state.turns[2].message_id,
    ]
    assert state.alternative_position(2) == (2, 2) and state.alternative_position(3) == (1, 1)
    cid = state.conversation_id or 0
    assert [m.content for m in history.branch(cid, old_a2)] == ["Q1", "A1", "Q2", "A2"]
    with pytest.raises(ValueError, match="not a question"):
        state.branch_from(3, "an answer is not edited")
    assert len(state.turns) == 4

    assert state.branch_from(0, "Q1 edited") is None  # the first question too
    assert contents(state) == ["Q1 edited"] and state.alternative_position(0) == (2, 2)
    assert in_turns(state) == saved_branch(history, state)


def test_an_edit_after_a_system_prompt_change_keeps_the_change() -> None:
    history = History.in_memory()
    state = chat(history)
    talk(state, "Q1", "A1")
    state.system_prompt = "Be a pirate."
    assert state.save_settings() is None
    talk(state, "Q2", "A2")
    assert state.branch_from(2, "Q2 edited") is None
    cid = state.conversation_id or 0
    assert [m.content for m in history.branch(cid)] == ["Q1", "A1", "Be a pirate.", "Q2 edited"]


def test_writing_an_answer_again_keeps_the_old_one(tmp_path: Path) -> None:
    history = History.open(tmp_path / "history.sqlite3")
    state = chat(history)
    talk(state, "Q1", "A1", "Q2", "A2")
    old_a1 = state.turns[1].message_id

    assert state.regenerate_from(1) is None
    assert contents(state) == ["Q1"]
    assert saved_branch(history, state) == in_turns(state)  # the store shows the same branch
    assert state.add_answer("A1 again", "stop", None, "tiny") is None
    assert in_turns(state) == saved_branch(history, state)
    assert history.alternatives(old_a1 or 0) == [old_a1, state.turns[1].message_id]
    with pytest.raises(ValueError, match="not an answer"):
        state.regenerate_from(0)
    history.close()


def test_browsing_versions_reloads_the_turns_and_is_remembered(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    history = History.open(path)
    state = chat(history)
    talk(state, "Q1", "A1", "Q2", "A2")
    state.regenerate_from(1)
    state.add_answer("A1 again", "stop", None, "tiny")

    assert state.alternative_position(1) == (2, 2)
    assert state.show_alternative(1, -1) is None
    assert contents(state) == ["Q1", "A1", "Q2", "A2"]  # on to the end of that branch
    assert state.alternative_position(1) == (1, 2)
    assert state.show_alternative(1, -1) is None  # no version before the first
    assert contents(state) == ["Q1", "A1", "Q2", "A2"]
    assert in_turns(state) == saved_branch(history, state)
    assert state.show_alternative(1, +1) is None
    assert contents(state) == ["Q1", "A1 again"]
    assert state.show_alternative(1, -1) is None
    history.close()

    with History.open(path) as again:  # reopened, the chat resumes on the branch last shown
        saved = again.get_conversation(state.conversation_id or 0)
        assert saved is not None
        assert contents(chat(again).resumed(saved)) == ["Q1", "A1", "Q2", "A2"]


def test_without_a_history_branches_only_change_the_turns() -> None:
    state = chat()
    talk(state, "Q1", "A1", "Q2", "A2")
    assert state.branch_from(2, "Q2 edited") is None
    assert contents(state) == ["Q1", "A1", "Q2 edited"]
    assert state.regenerate_from(1) is None and contents(state) == ["Q1"]
    assert state.show_alternative(0, 1) is None and contents(state) == ["Q1"]
    assert state.alternative_position(0) == (1, 1)


class BrokenHistory:
    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> None:
            raise OSError("disk full")

        return fail


def test_a_failing_store_is_reported_and_the_turns_still_change() -> None:
    history = History.in_memory()
    state = chat(history)
    talk(state, "Q1", "A1")
    state.history = BrokenHistory()
    assert state.branch_from(0, "edited") == "history could not be saved: disk full"
    assert contents(state) == ["edited"]
    state.turns[0].message_id = 1
    state.add_answer("A", "stop", None, "tiny")
    state.turns[1].message_id = 2
    assert state.regenerate_from(1) == "history could not be saved: disk full"
    assert contents(state) == ["edited"]
    assert state.show_alternative(0, 1) == "history could not be saved: disk full"
    assert state.alternative_position(0) == (1, 1)


# --- d: deleting what the cursor is on --------------------------------------------------------


def delete(state: ChatState, turn: int) -> str:
    deletion = state.deletion(turn)
    assert state.delete(deletion) is None
    return deletion.what


def test_deleting_the_answer_of_a_second_question_version_shows_the_first_version() -> None:
    """The bug: with two versions of a question, d on version 2's answer left the chat
    ending two turns earlier, the first version hidden until ← →."""
    history = History.in_memory()
    state = chat(history)
    talk(state, "Q0", "A0", "Italy?", "Rome.")
    assert state.branch_from(2, "Spain?") is None
    assert state.add_answer("Madrid.", "stop", None, "tiny") is None
    assert delete(state, 3) == "the answer"  # what the cursor is on, and only that
    assert contents(state) == ["Q0", "A0", "Spain?"]
    assert state.alternative_position(2) == (2, 2)
    assert state.add_answer("Madrid.", "stop", None, "tiny") is None
    assert delete(state, 2) == "this version of your question and its answer"
    assert contents(state) == ["Q0", "A0", "Italy?", "Rome."]  # the version left is shown
    assert in_turns(state) == saved_branch(history, state)
    assert state.alternative_position(2) == (1, 1)
    resumed = chat(history).resumed(history.get_conversation(state.conversation_id or 0))  # type: ignore[arg-type]
    assert contents(resumed) == ["Q0", "A0", "Italy?", "Rome."]


def test_deleting_an_answer_version_keeps_the_question_and_shows_the_other_answer() -> None:
    history = History.in_memory()
    state = chat(history)
    talk(state, "Q0", "A0", "Q1", "first")
    assert state.regenerate_from(3) is None
    assert state.add_answer("second", "stop", None, "tiny") is None
    assert delete(state, 3) == "this answer"
    assert contents(state) == ["Q0", "A0", "Q1", "first"]
    assert in_turns(state) == saved_branch(history, state)


def test_deleting_the_last_answer_alone_leaves_its_question_waiting() -> None:
    history = History.in_memory()
    state = chat(history)
    talk(state, "Q0", "A0", "Q1", "A1")
    assert delete(state, 3) == "the answer"
    assert contents(state) == ["Q0", "A0", "Q1"]
    assert in_turns(state) == saved_branch(history, state)


def test_deleting_a_question_in_the_middle_takes_its_answer_and_keeps_what_followed() -> None:
    history = History.in_memory()
    state = chat(history)
    talk(state, "Q0", "A0", "Q1", "A1", "Q2", "A2")
    assert state.regenerate_from(3) is None  # Q1 has two answers: both go with it
    assert state.add_answer("A1 again", "stop", None, "tiny") is None
    assert state.show_alternative(3, -1) is None
    assert contents(state) == ["Q0", "A0", "Q1", "A1", "Q2", "A2"]
    assert delete(state, 2) == "your question and its answer"
    assert contents(state) == ["Q0", "A0", "Q2", "A2"]
    assert in_turns(state) == saved_branch(history, state)
    assert state.alternative_position(2) == (1, 1)  # no stray answer became a version
    assert delete(state, 1) == "your question and its answer"  # an answer mid-chat
    assert contents(state) == ["Q2", "A2"]
    assert in_turns(state) == saved_branch(history, state)


def test_deleting_without_a_history_deletes_in_memory() -> None:
    state = chat()
    talk(state, "Q0", "A0", "Q1", "A1")
    assert delete(state, 0) == "your question and its answer"
    assert contents(state) == ["Q1", "A1"]
