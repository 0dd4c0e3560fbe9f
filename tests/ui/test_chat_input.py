"""Enter pressed again and again while an answer streams: one notice, nothing lost."""

from __future__ import annotations

from .helpers import SIZE, ready, send, shown, until


async def test_enter_while_answering_says_busy_once(make_app, engine) -> None:
    engine.hold_after(1)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "first", wait=False)
        await until(pilot, lambda: engine.current.held.is_set())
        await send(pilot, "second", wait=False)
        for _ in range(20):  # what a paste without bracketed paste does, line after line
            await pilot.press("enter")
        notices = [n for n in await shown(pilot) if n.startswith("Busy")]
        assert len(notices) == 1, notices
        assert screen.prompt.text == "second"
        assert len(engine.requests) == 1
        engine.release()
        await until(pilot, lambda: not screen.answering)


async def test_up_steps_through_history_over_recalled_slash_commands(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Hello")
        await send(pilot, "/system")
        await send(pilot, "/temp 0.5")
        for expected in ("/temp 0.5", "/system", "Hello", "Hello"):
            await pilot.press("up")
            await pilot.pause()
            assert screen.prompt.text == expected
            assert not screen.completion.is_open, f"the completion list opened over {expected!r}"
        for expected in ("/system", "/temp 0.5", ""):
            await pilot.press("down")
            await pilot.pause()
            assert screen.prompt.text == expected
        await pilot.press("up", "backspace")  # edited: the list opens and takes Up/Down again
        await pilot.pause()
        assert screen.prompt.text == "/temp 0." and screen.completion.is_open is False
        screen.prompt.reset("/te")
        await pilot.pause()
        assert screen.completion.is_open


async def test_a_paste_and_the_enter_after_it_in_one_burst_send_the_pasted_lines(
    make_app, engine
) -> None:
    """A terminal without bracketed paste sends lines and Enter in one read: the paste goes
    in first, then Enter sends it (the Enter used to come first and send nothing)."""
    from textual import events

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        app.post_message(events.Paste("first line\nsecond line"))  # as the driver posts them
        app.post_message(events.Key("enter", "\r"))
        await until(pilot, lambda: len(engine.requests) == 1)
        assert engine.requests[0].messages[-1].content == "first line\nsecond line"
        assert screen.prompt.text == ""
        await until(pilot, lambda: not screen.answering)
