"""Progress of the admin command line's long operations (services/progress.py): a bar with rate
and ETA redrawn in place on a terminal, a plain line every so often otherwise; against a hand-run
clock and hand-computed lines."""

import io

from services.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_not_on_a_terminal_a_plain_line_every_period_with_rate_and_eta():
    clock, out = Clock(), io.StringIO()
    progress = Progress(1000, "events", out, every=10.0, clock=clock)
    clock.now += 9.9
    progress.advance(99)
    assert out.getvalue() == ""  # the period not yet over
    clock.now += 0.1  # 10 s in: 100 events, 10 a second, 900 left: 90 s
    progress.advance(1)
    assert out.getvalue() == "100/1000 events (10%), 10 events/s, ETA 1:30\n"
    clock.now += 5.0
    progress.advance(400)
    assert out.getvalue().count("\n") == 1  # 5 s since the last line
    clock.now += 5.0  # 20 s in: 1000 events, 50 a second, none left
    progress.advance(500)
    progress.finish()
    assert out.getvalue().splitlines()[1:] == ["1000/1000 events (100%), 50 events/s, ETA 0:00"]
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_on_a_terminal_a_bar_redrawn_in_place_and_a_newline_at_the_end():
    clock, out = Clock(), Terminal()
    progress = Progress(400, "cases", out, clock=clock)
    clock.now += 2.0
    progress.advance(100)  # 50 a second, 300 left: 6 s
    assert out.getvalue() == "\r[#####---------------]  25% 100/400 cases, 50 cases/s, ETA 0:06\x1b[K"
    clock.now += 3600 * 2
    progress.advance(0)  # 2 hours on: 100 in 7202 s, 300 left at 0.0139/s: 6:00:06
    assert out.getvalue().endswith("\r[#####---------------]  25% 100/400 cases, 0 cases/s, ETA 6:00:06\x1b[K")
    clock.now += 2.0
    progress.advance(300)
    progress.finish()
    assert out.getvalue().endswith("\r[####################] 100% 400/400 cases, 0 cases/s, ETA 0:00\x1b[K\n")


def test_without_a_total_only_the_count_and_the_rate():
    clock, out = Clock(), io.StringIO()
    progress = Progress(None, "events", out, every=1.0, clock=clock)
    clock.now += 5.0
    progress.advance(10)
    assert out.getvalue() == "10 events, 2 events/s\n"
