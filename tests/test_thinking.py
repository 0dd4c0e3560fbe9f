"""Models that think: the per-row router, the thinking budget, template variables, and
reasoning kept out of later prompts (a tiny model with think tokens, both engine paths)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlx_lm import load as mlx_load

from mlxchat.engine.engine import Engine
from mlxchat.engine.generation import StopMatcher, encode_prompt
from mlxchat.engine.text_router import TextRouter, route_step, route_tail
from mlxchat.engine.types import Chunk, Message, Progress, RequestOptions, SamplingParams

THINK, END = 3, 4  # the tiny thinking tokenizer's ids of <think> and </think>


def routed(router: TextRouter, steps: list[tuple[int | None, str]]) -> list[tuple[str, str]]:
    pieces = [p for token, text in steps for p in router.feed(token, text)] + router.flush()
    merged: list[tuple[str, str]] = []
    for channel, text in pieces:
        if merged and merged[-1][0] == channel:
            merged[-1] = (channel, merged[-1][1] + text)
        else:
            merged.append((channel, text))
    return merged


def router(thinking: bool = False) -> TextRouter:
    return TextRouter("<think>", "</think>", thinking, (THINK,), (END,))


def test_router_splits_at_the_tags_and_drops_them() -> None:
    steps = [(THINK, "<think>"), (9, "\nLet me "), (10, "see."), (END, "</think>"), (11, "\n\nHi")]
    assert routed(router(), steps) == [("reasoning", "Let me see."), ("answer", "Hi")]


def test_router_tag_split_across_steps_and_late_text() -> None:
    """A detokenizer may hand a tag's text over in pieces, or a step after its token."""
    r = router(thinking=True)
    steps = [(9, "a b"), (END, "</th"), (11, "ink>"), (12, " answer <"), (13, "x")]
    assert routed(r, steps) == [("reasoning", "a b"), ("answer", "answer <x")]
    assert r.reasoning_tokens == 1


def test_router_counts_reasoning_tokens_and_knows_its_state() -> None:
    r = router(thinking=True)
    for token in (5, 6, 7):
        r.feed(token, "x")
    assert r.thinking and r.reasoning_tokens == 3
    r.feed(END, "</think>")
    r.feed(8, "y")
    assert not r.thinking and r.reasoning_tokens == 3


def test_router_without_think_tokens_passes_everything_as_answer() -> None:
    r = TextRouter()
    assert routed(r, [(1, "<think>no"), (2, "</think>")]) == [("answer", "<think>no</think>")]


def test_stop_strings_apply_to_the_answer_only() -> None:
    r, stopper = router(thinking=True), StopMatcher(["STOP"])
    pieces, hit = route_step(r, stopper, 5, "I could STOP here")
    assert pieces == [("reasoning", "I could STOP here")] and not hit
    pieces, hit = route_step(r, stopper, END, "</think>Yes. STOP no")
    assert pieces == [("answer", "Yes. ")] and hit
    r, stopper = router(), StopMatcher(["STOP"])
    pieces, _ = route_step(r, stopper, 5, "ST")
    assert pieces == [] and route_tail(r, stopper) == [("answer", "ST")]


# ---------------------------------------------------------------------------------------
# The engine on a tiny model that thinks


@pytest.fixture(scope="module", params=[True, False], ids=["batched", "single"])
def engine(request: pytest.FixtureRequest, tiny_thinking: Path) -> Engine:
    engine = Engine(batched=request.param, progress_interval=0.0)
    engine.load_sync(str(tiny_thinking))
    return engine


def test_thinking_budget_forces_the_end_and_the_answer_follows(engine: Engine) -> None:
    params = SamplingParams(max_tokens=30)
    events = list(
        engine.iterate("Tell me about the fox.", params, options=RequestOptions(thinking_budget=8))
    )
    chunks = [e for e in events if isinstance(e, Chunk)]
    reasoning = [c for c in chunks if c.channel == "reasoning"]
    answer = [c for c in chunks if c.channel == "answer"]
    assert len([c for c in reasoning if c.token is not None]) == 8
    assert chunks.index(reasoning[-1]) < chunks.index(answer[0])  # reasoning first
    assert END in [c.token for c in chunks]  # the forced think end
    assert all("<think>" not in c.text and "</think>" not in c.text for c in chunks)
    assert len([c for c in chunks if c.token is not None]) == chunks[-1].stats.generation_tokens
    phases = [e.phase for e in events if isinstance(e, Progress)]
    assert phases.index("thinking") < phases.index("generating")
    result = engine.generate_sync(
        "Tell me about the fox.", params, options=RequestOptions(thinking_budget=8)
    )
    assert result.reasoning == "".join(c.text for c in reasoning)
    assert result.text == "".join(c.text for c in answer) and result.text
    assert "</think>" not in result.text + result.reasoning


def test_a_response_format_leaves_the_thinking_free_and_constrains_the_answer(
    engine: Engine,
) -> None:
    """The think block stays free text; the JSON constraint starts after its end."""
    import json

    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string", "maxLength": 12}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    options = RequestOptions(
        thinking_budget=6,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    )
    result = engine.generate_sync(
        "Tell me about the fox.", SamplingParams(max_tokens=60), options=options
    )
    assert result.reasoning.strip() and not result.reasoning.lstrip().startswith("{")
    assert set(json.loads(result.text)) == {"answer"}


def test_without_a_budget_it_thinks_to_the_end(engine: Engine) -> None:
    result = engine.generate_sync("Tell me about the fox.", SamplingParams(max_tokens=12))
    assert result.reasoning and result.text == ""


def test_enable_thinking_false_reaches_the_template(engine: Engine) -> None:
    options = RequestOptions(template_kwargs={"enable_thinking": False}, thinking_budget=2)
    result = engine.generate_sync(
        "Tell me about the fox.", SamplingParams(max_tokens=12), options=options
    )
    assert result.reasoning == "" and result.text
    assert END not in result.tokens


# ---------------------------------------------------------------------------------------
# Prompts


def test_a_resumed_chat_sends_no_reasoning_back(tiny_thinking: Path, tmp_path: Path) -> None:
    """The saved reasoning comes back with the chat, and the next prompt's tokens are those
    of the conversation without it."""
    from mlxchat.store.history import History
    from mlxchat.ui.chat_state import ChatState

    _, tokenizer = mlx_load(str(tiny_thinking))
    secret = "the capital of France is Paris"
    with History.open(tmp_path / "history.sqlite3") as history:
        chat_id = history.new_conversation()
        history.add_message(chat_id, "user", "Hello")
        history.add_message(chat_id, "assistant", "Hi there.", reasoning=secret)
        conversation = history.get_conversation(chat_id)
        assert conversation is not None
        chat = ChatState(history, "", SamplingParams()).resumed(conversation)
        chat.add_user("And now?")
        messages = chat.messages()
    assert messages[1].reasoning == secret and messages[1].content == "Hi there."
    tokens = encode_prompt(tokenizer, messages, True)
    bare = [
        Message("user", "Hello"),
        Message("assistant", "Hi there."),
        Message("user", "And now?"),
    ]
    assert tokens == encode_prompt(tokenizer, bare, True)
    assert secret not in tokenizer.decode(tokens)
    assert tokenizer.decode(tokens).endswith("<|im_start|>assistant\n<think>\n")


def test_a_template_that_reads_reasoning_content_gets_it(tiny_thinking: Path) -> None:
    _, tokenizer = mlx_load(str(tiny_thinking))
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {% if m.reasoning_content %}"
        "<think>{{ m.reasoning_content }}</think>{% endif %}{{ m['content'] }}\n{% endfor %}"
    )
    chat = [Message("user", "Hi"), Message("assistant", "Hello.", reasoning="greet back")]
    text = tokenizer.decode(encode_prompt(tokenizer, chat, True))
    assert "<think>greet back</think>Hello." in text


def test_gguf_import_keeps_the_think_tokens(
    tiny_thinking: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_gguf import write_float_gguf

    from mlxchat.models import gguf

    monkeypatch.setenv("MLXCHAT_CACHE_DIR", str(tmp_path / "cache"))
    converted = gguf.convert_cached(write_float_gguf(tiny_thinking, tmp_path / "t.gguf", "llama"))
    _, tokenizer = mlx_load(str(converted))
    assert tokenizer.has_thinking
    assert (tokenizer.think_start_id, tokenizer.think_end_id) == (THINK, END)
    prompt = encode_prompt(tokenizer, "Hi", True)
    assert TextRouter.for_prompt(tokenizer, prompt).thinking


def test_a_plain_continuation_is_raw_text(engine: Engine) -> None:
    """Without the chat template a think tag in the text opens no reasoning."""
    params = SamplingParams(max_tokens=6)
    result = engine.generate_sync("The fox <think> jumps", params, chat_template=False)
    assert result.reasoning == "" and result.text
