"""The trial page's chart (services/web/chart.py): an SVG drawn on the server, whose lines break
where a month is suppressed or has no data. Coordinates hand-computed from the plot's edges:
x from 64 to 700 over the months, y from 240 (0) up to 20 (the top tick)."""

import re

from services.web.chart import line_chart

MONTHS = ["2018-05", "2018-06", "2018-07", "2018-08"]


def polylines(svg: str, group: str) -> list[str]:
    return re.findall(rf'<polyline class="{group}"[^>]* points="([^"]*)"', svg)


def test_a_suppressed_month_breaks_the_line():
    svg = line_chart(MONTHS, {"trial": [1, None, 3, 4], "comparison": [2, 2, 2, 2]}, "borgere", "2018-07", "Borgere")
    # 4 months: x = 64, 276, 488, 700; ticks 0-4 by 1: y(1) = 240 - 220/4 = 185, y(3) = 75, y(4) = 20
    assert polylines(svg, "trial") == ["64.0,185.0", "488.0,75.0 700.0,20.0"]
    assert polylines(svg, "comparison") == ["64.0,130.0 276.0,130.0 488.0,130.0 700.0,130.0"]
    # every published month a dot, so that a month alone between two gaps shows
    assert len(re.findall(r'<circle class="trial"', svg)) == 3


def test_the_chart_starts_from_zero_marks_the_trials_start_and_says_what_it_shows():
    svg = line_chart(MONTHS, {"trial": [0.25, 0.5, None, None], "comparison": [None] * 4}, "andel", "2018-07",
                     "Andel afgået til job")
    assert svg.startswith("<svg") and 'role="img"' in svg and "<title" in svg and "Andel afgået til job" in svg
    assert polylines(svg, "comparison") == []  # nothing published: no line at all
    # shares in percent; 0.5 on top: rough step 12.5 % -> 20 %, ticks 0-60 %: y(25 %) = 240 - 220 * 25/60
    assert polylines(svg, "trial") == [f"64.0,{240 - 220 * 25 / 60:.1f} 276.0,{240 - 220 * 50 / 60:.1f}"]
    assert [t for t in re.findall(r'<text class="tick-y"[^>]*>([^<]*)<', svg)] == ["0 %", "20 %", "40 %", "60 %"]
    assert re.search(r'<line class="start" x1="488.0"', svg) and "forsøget begynder" in svg
    assert re.findall(r'<text class="tick-x"[^>]*>([^<]*)<', svg)[0] == "maj 2018"


def test_all_zeros_or_all_gaps_still_draw_an_axis():
    svg = line_chart(MONTHS, {"trial": [0, 0, 0, 0], "comparison": [None] * 4}, "borgere", "2018-07", "Borgere")
    assert polylines(svg, "trial") == ["64.0,240.0 276.0,240.0 488.0,240.0 700.0,240.0"]
    svg = line_chart(MONTHS, {"trial": [None] * 4, "comparison": [None] * 4}, "borgere", "2018-07", "Borgere")
    assert "<polyline" not in svg and 'class="tick-y"' in svg


def test_a_long_series_is_labelled_every_few_years_at_most_eight_times():
    # T1 from July 2017 to December 2026 and its baseline: 226 months, a label every 3 years
    months = [f"{2008 + (5 + i) // 12}-{(5 + i) % 12 + 1:02d}" for i in range(226)]
    assert months[0] == "2008-06" and months[-1] == "2027-03"
    svg = line_chart(months, {"trial": [1.0] * 226, "comparison": [None] * 226}, "andel", "2017-07", "Andel")
    assert re.findall(r'<text class="tick-x"[^>]*>([^<]*)<', svg) == [f"juni {y}" for y in range(2008, 2028, 3)]
    for n, every in ((8, 1), (9, 2), (96, 12), (97, 24)):
        labels = re.findall(r'class="tick-x"', line_chart(months[:n], {"trial": [1.0] * n, "comparison": [None] * n},
                                                          "andel", "2017-07", "Andel"))
        assert len(labels) == -(-n // every), n


def test_a_what_ifs_negative_months_go_below_a_zero_line_with_its_own_legend_and_title():
    # "without T11": more obligations required, so fewer freed than 0. Range -3..2: rough step 5/4 -> 2,
    # ticks -4..2; y(v) = 240 - (v + 4) * 220/6: y(-3) = 203.3, y(0) = 93.3, y(2) = 20
    svg = line_chart(MONTHS[:2], {"freed": [-3, 2]}, "pligter", "2018-06", "Sparede pligter i Aalborg",
                     "fremskrevet herfra", "graf-851")
    assert polylines(svg, "freed") == ["64.0,203.3 700.0,20.0"]
    assert re.findall(r'<text class="tick-y"[^>]*>([^<]*)<', svg) == ["−4", "−2", "0", "2"]
    assert '<line x1="64" y1="93.3" x2="700" y2="93.3" stroke="#454545"/>' in svg  # the zero line
    assert 'aria-labelledby="graf-851-titel"' in svg and '<title id="graf-851-titel">' in svg
    assert "fremskrevet herfra" in svg and "forsøget begynder" not in svg
    assert "Sparede pligter</text>" in svg and "Forsøgskommuner" not in svg  # a legend of what is drawn
