"""Wait-k on a remote model (the naive re-encode, one request per target word) against a
scripted word-for-word server on loopback: the policy, the word rule and the events."""

from __future__ import annotations

from servers import lexicon_server

from mlxchat.engine.remote import RemoteEngine
from mlxchat.translate.events import Notice, SegmentDone, TargetWord
from mlxchat.translate.policy import wait_k_delays
from mlxchat.translate.settings import WaitKSettings
from mlxchat.translate.translation import open_translation

SOURCE = ["a", "b", "c", "d"]


def test_blocking_translation_follows_wait_k_and_drops_the_look_ahead() -> None:
    with lexicon_server() as (url, prompts):
        engine = RemoteEngine(api_key="")
        assert engine.load_sync(url).name == f"lexicon @ {url.split('/')[2]}"
        live = open_translation(engine, WaitKSettings(wait_k=2), auto_segment=False)
        events = []
        for i, word in enumerate(SOURCE):
            events += list(live.feed_sync(word, last=i == len(SOURCE) - 1))
        engine.close()
    assert isinstance(events[0], Notice) and "naive re-encode" in events[0].message
    words = [e for e in events if isinstance(e, TargetWord)]
    assert [w.word for w in words] == ["T-a", "T-b", "T-c", "T-d"]  # never the look-ahead
    assert [w.delay for w in words] == wait_k_delays(2, 4, 4) == [2, 3, 4, 4]
    done = events[-1]
    assert isinstance(done, SegmentDone) and done.finish_reason == "stop"
    assert done.translation == " T-a T-b T-c T-d"
    assert "".join(e.text for e in events) == done.translation  # append-only text
    assert len(prompts) == 5  # one request per target word, and the one that ended it
    assert prompts[1].endswith("English: a b c\nFrench: T-a")  # target word 2 after 3 read


async def test_async_translation_streams_the_same_words() -> None:
    with lexicon_server() as (url, _):
        engine = RemoteEngine()
        await engine.load(url)
        live = open_translation(engine, WaitKSettings(wait_k=3), auto_segment=False)
        words: list[tuple[str, int]] = []
        for i, word in enumerate(SOURCE):
            async for event in live.feed(word, last=i == len(SOURCE) - 1):
                if isinstance(event, TargetWord):
                    words.append((event.word, event.delay))
        engine.close()
    assert words == [("T-a", 3), ("T-b", 4), ("T-c", 4), ("T-d", 4)]
