"""The status bar shows speculative decoding's acceptance only once something was drafted."""

from __future__ import annotations

from mlxchat.engine.types import Stats

from .helpers import SIZE, ready


async def test_the_share_of_kept_guesses_is_shown_once_there_are_guesses(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        screen.status.set_state("generating")
        screen.status.set_stats(Stats(generation_tokens=20, generation_tps=9.0))
        assert "spec" not in str(screen.status.render())
        drafted = Stats(
            generation_tokens=40, generation_tps=21.0, draft_tokens=50, accepted_tokens=31
        )
        screen.status.set_stats(drafted)
        assert "spec 62 %" in str(screen.status.render())
