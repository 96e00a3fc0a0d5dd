"""The Ministry's evaluation form (seed 002: fields 1-10) for a trial, as HTML and Markdown, in
Danish for the evaluator who signs it.

Fields 1-5 come from the catalog (description, purpose, goals, design, compliance); field 7
(results) gets the groups, the evaluation's group totals with the metrics' Danish labels and
definitions (`metrics.CATALOG`), the difference-in-differences in words, and a chart of the
trial's headline metric month by month from the start of the baseline. Fields 6 and 8-10 are
the municipality's to write. Numbers in Danish format; a suppressed cell shows neither value nor
count.
"""

import html
import math
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from services.reporting.evaluation import Row
from services.reporting.metrics import CATALOG as METRICS
from services.reporting.metrics import label
from shared.catalog import Catalog, Trial, add_duration
from shared.municipalities import municipalities

FIELDS = ["1. Beskrivelse af forsøget", "2. Formålet med forsøget", "3. Konkrete mål/succeskriterier",
          "4. Evalueringsdesign", "5. Opfyldelse af lovens krav", "6. Justeringer af evalueringsdesign",
          "7. Forsøgets resultater", "8. Konklusion på forsøget", "9. Uventede fund", "10. Bemærkninger i øvrigt"]
TO_BE_WRITTEN = "Udfyldes af kommunen på baggrund af forsøgserfaringerne."
NOT_GIVEN = "Ikke angivet i forsøgets grundlag; udfyldes af kommunen."
GROUPS = {"trial": "Forsøgskommuner", "comparison": "Sammenligningsgruppe"}
PERIODS = {"baseline": "Før forsøget", "trial": "Under forsøget"}
EFFECTS = {"waive": "fritagelse for", "modify": "ændring af", "suspend": "suspension af", "permit": "tilladelse efter"}
SUPPRESSED = "undertrykt"
DEFAULT_RULE = ("Kommuner med data uden for forsøget, hvor intet andet forsøg, der ændrer de samme regler eller "
                "borgernes pligter, kører i de sammenlignede perioder, og som ligner forsøgskommunerne i størrelse, "
                "hvor nogen gør (fra halvdelen af den mindste til det dobbelte af den største, i borgere på ydelse).")
LEGEND = ("0 er et optalt nul; – betyder ingen data (intet at beregne en andel, et gennemsnit eller en rate af); "
          "undertrykt: færre end 5 borgere, eller skjult, så et undertrykt tal ikke kan regnes ud af de andre.")
COLOURS = {"trial": ("#0072b2", ""), "comparison": ("#d55e00", "6 4")}  # blue solid, orange dashed
SOURCE_NOTE = re.compile(r"\s*\((?:seed|seeds)\b[^)]*\)")  # "(seed 002, felt 2)": where the text came from


@dataclass(frozen=True)
class Answer:
    """What the form is made of: one evaluation answer and the headline metric's months."""

    trial: Trial
    catalog: Catalog
    periods: dict[str, tuple[date, date]]
    comparison: list[str]
    basis: dict[str, Any]  # the answer's comparison_basis: chosen_by default|request, and what is wrong
    rows: list[Row]
    months: list[Row]  # the headline metric month by month, over `chart_spans`


def _clean(text: str) -> str:
    return SOURCE_NOTE.sub("", text).strip()


def place(code: str) -> str:
    return f"{municipalities().get(code, code)} ({code})"


def day(d: date) -> str:
    return f"{d.day}.{d.month}.{d.year}"


def number(value: float | int | None, unit: str = "", decimals: int = 1) -> str:
    """Danish format: a thousands point, a decimal comma; shares as percent."""
    if value is None:
        return "–"
    if unit == "andel":
        return number(value * 100, decimals=1) + " %"
    value = round(float(value), decimals) + 0.0  # + 0.0: no "−0"
    text = f"{value:,.0f}" if value.is_integer() else f"{value:,.{decimals}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".").replace("-", "−")


def cell(row: Row | None) -> str:
    if row is None:
        return "–"
    if row.suppressed:
        return SUPPRESSED
    unit = METRICS[row.metric].unit if row.metric in METRICS else ""
    return f"{number(row.value, unit)} ({number(row.n)} borgere)"


def fields(trial: Trial, catalog: Catalog) -> list[str]:
    """The text of fields 1-6 and 8-10 (field 7 is the numbers)."""
    effects = "; ".join(f"{EFFECTS.get(e.effect, e.effect)} {catalog.rules[e.rule].title} "
                        f"({catalog.rules[e.rule].legal_reference})" for e in trial.effects) or "ingen"
    where = ", ".join(place(m) for m in trial.municipalities)
    period = f"{day(trial.period.start)} til {day(trial.period.end) if trial.period.end else 'indtil videre'}"
    description = f"{trial.title}. Forsøgskommuner: {where}. Periode: {period}. Forsøget giver {effects}."
    if trial.target_group_description:
        description += f" Målgruppe: {_clean(trial.target_group_description)}"
    form = trial.form
    given = [form and form.purpose, form and form.goals, form and form.design, form and form.compliance]
    return [description, *(_clean(text) if text else NOT_GIVEN for text in given),
            TO_BE_WRITTEN, "", TO_BE_WRITTEN, TO_BE_WRITTEN, TO_BE_WRITTEN]


def _table(rows: list[Row]) -> list[tuple[str, str, list[str]]]:
    """(label, definition, [trial before, trial during, comparison before, comparison during])
    per metric (per rule where given by rule): the groups' totals."""
    totals = {(r.metric, r.rule, r.group, r.period): r for r in rows
              if r.municipality is None and r.metric != "did_estimate"}
    out = []
    for metric, rule in sorted({(m, r) for m, r, _, _ in totals}, key=lambda k: (list(METRICS).index(k[0])
                                                                               if k[0] in METRICS else 99, k[1] or "")):
        name = label(metric) + (f", {rule}" if rule else "")
        definition = METRICS[metric].definition_da if metric in METRICS else ""
        out.append((name, definition, [cell(totals.get((metric, rule, g, p))) for g in GROUPS for p in PERIODS]))
    return out


def did_sentences(rows: list[Row]) -> list[str]:
    """Each difference-in-differences estimate in words: how the metric moved in each group from
    before to during the trial, the difference, and its 95 % interval."""
    totals = {(r.metric, r.group, r.period): r.value for r in rows
              if r.municipality is None and r.rule is None and not r.suppressed}
    out = []
    for r in rows:
        if r.metric != "did_estimate" or r.of not in METRICS:
            continue
        metric = METRICS[r.of]
        changes = [_change(totals.get((r.of, group, "baseline")), totals.get((r.of, group, "trial"))) for group in GROUPS]
        if r.suppressed or r.value is None or r.ci95 is None or None in changes:
            out.append(f"{metric.label_da}: kan ikke beregnes (for få borgere, eller ingen sammenligningsgruppe).")
            continue
        scale, unit = (100, " procentpoint") if metric.unit == "andel" else (1, f" {metric.unit}")
        value, low, high, trial_change, comparison_change = (
            v * scale for v in (r.value, *r.ci95, *changes))  # type: ignore[operator]
        decimals = 1 if max(abs(low), abs(high), abs(value)) >= 1 else 2

        def amount(v: float) -> str:
            return number(abs(v), decimals=decimals) + unit

        def verb(v: float) -> str:
            return "steg" if v > 0 else "faldt"

        trial_words = f"{verb(trial_change)} den {amount(trial_change)}" if trial_change else "var den uændret"
        comparison_words = ("var uændret" if not comparison_change else amount(comparison_change)
                            if trial_change and verb(comparison_change) == verb(trial_change)
                            else f"{verb(comparison_change)} {amount(comparison_change)}")
        difference = (f"{amount(value)} {'mere' if value > 0 else 'mindre'} i forsøgskommunerne end i "
                      f"sammenligningsgruppen" if value else "den samme udvikling i begge grupper")
        certainty = ", som omfatter 0: forskellen er ikke statistisk sikker" if low <= 0 <= high else ""
        out.append(f"{metric.label_da}: fra før til under forsøget {trial_words} i forsøgskommunerne og "
                   f"{comparison_words} i sammenligningsgruppen; forskel-i-forskelle "
                   f"{number(value, decimals=decimals)}{unit}: {difference} (95 %-konfidensinterval fra "
                   f"{number(low, decimals=decimals)} til {number(high, decimals=decimals)}{unit}{certainty}).")
    return out


def _change(before: float | None, during: float | None) -> float | None:
    return None if before is None or during is None else during - before


def _groups(answer: Answer) -> list[str]:
    chosen = ("Valgt af brugeren, ikke efter standardreglen (" + DEFAULT_RULE[0].lower() + DEFAULT_RULE[1:-1] + ")."
              if answer.basis.get("chosen_by") == "request" else "Valgt efter standardreglen: " + DEFAULT_RULE[0].lower()
              + DEFAULT_RULE[1:])
    lines = [f"Forsøgskommuner: {', '.join(place(m) for m in answer.trial.municipalities)}.",
             "Sammenligningsgruppe: " + (", ".join(place(m) for m in answer.comparison) or "ingen") + ". " + chosen]
    (b0, b1), (t0, t1) = answer.periods["baseline"], answer.periods["trial"]
    lines.append(f"Før forsøget: {day(b0)} til {day(b1)}. Under forsøget: {day(t0)} til {day(t1)}.")
    context = {(r.group, r.period): r.other_trials_active for r in answer.rows
               if r.municipality is None and r.metric != "did_estimate"}
    lines.append("Andre forsøg i gang samtidig (kontekst: deres virkninger tilskrives ikke dette forsøg): " + "; ".join(
        f"{GROUPS[g].lower()} {PERIODS[p].lower()}: {', '.join(context.get((g, p), ())) or 'ingen'}"
        for g in GROUPS for p in PERIODS) + ".")
    return lines + [f"Advarsel: {w}" for w in warnings(answer)] + shared(answer.rows)


def shared(rows: list[Row]) -> list[str]:
    """A line for each group total that counts obligations another trial's effects change too
    (`evaluation.SHARED_RULE`): credited to each trial, so not this trial's effect alone."""
    out = []
    for r in rows:
        if r.municipality is not None or not r.shared_with:
            continue
        others = ", ".join(trial if k is None else f"{trial} ({number(k)} pligter)" for trial, k in r.shared_with)
        name = label(r.metric) + (f", {r.rule}" if r.rule else "")
        out.append(f"Delt med andre forsøg: {name} ({GROUPS[r.group].lower()}, {PERIODS[r.period].lower()}) tæller "
                   f"pligter, som også {others} ændrer for de samme borgere på samme tid; de tilskrives hvert af "
                   f"forsøgene og er ikke dette forsøgs virkning alene.")
    return out


def warnings(answer: Answer) -> list[str]:
    """The answer's warnings (`comparison_basis.warnings`) in Danish: one for each."""
    out = [f"{place(m)} har {', '.join(found)} i gang i de sammenlignede perioder, som ændrer de samme regler eller "
           f"borgernes pligter: kommunens tal er ikke de almindelige reglers alene."
           for m, found in answer.basis.get("contaminated", {}).items()]
    if answer.basis.get("chosen_by") != "request" and not answer.comparison:
        out.append("Ingen kommune med data opfylder standardreglen: der er ingen sammenligningsgruppe og ingen "
                   "forskel-i-forskelle.")
    return out


def markdown(answer: Answer) -> str:
    trial = answer.trial
    out = [f"# Evalueringsskema: {trial.title}", ""]
    for name, text in zip(FIELDS, fields(trial, answer.catalog)):
        out += [f"## {name}", ""]
        if name.startswith("7."):
            out += _results_markdown(answer)
        else:
            out += [text, ""]
    return "\n".join(out)


def _results_markdown(answer: Answer) -> list[str]:
    lines = [*(f"{line}  " for line in _groups(answer)), "",
             "| Mål | Forsøgskommuner, før forsøget | Forsøgskommuner, under forsøget | "
             "Sammenligningsgruppe, før forsøget | Sammenligningsgruppe, under forsøget |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | {' | '.join(values)} |" for name, _, values in _table(answer.rows)]
    lines += ["", LEGEND, "", "Forskel-i-forskelle:", "", *(f"- {s}" for s in did_sentences(answer.rows)), "",
              "Definitioner:", ""]
    lines += [f"- {name}: {definition}" for name, definition, _ in _table(answer.rows) if definition]
    metric = answer.trial.headline_metric
    lines += ["", f"{label(metric)}, måned for måned:", "", "| Måned | Forsøgskommuner | Sammenligningsgruppe |",
              "|---|---|---|"]
    by_month: dict[str, dict[str, Row]] = {}
    for r in answer.months:
        by_month.setdefault(r.period, {})[r.group] = r
    lines += [f"| {month} | {_month_value(g.get('trial'))} | {_month_value(g.get('comparison'))} |"
              for month, g in sorted(by_month.items())]
    return [*lines, ""]


def _month_value(row: Row | None) -> str:
    if row is None:
        return "–"
    return SUPPRESSED if row.suppressed else number(row.value, METRICS[row.metric].unit if row.metric in METRICS else "")


PRINT_CSS = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#111}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #999;padding:.2em .5em;text-align:left}"
             "td.n{text-align:right}.def{font-size:.85em;color:#444}.warning{color:#a00}"
             "@page{size:A4;margin:18mm}"
             "@media print{body{margin:0;max-width:none;font-size:10pt}nav{display:none}"
             "h2{page-break-after:avoid}table,figure{page-break-inside:avoid}}")


def html_page(answer: Answer) -> str:
    trial = answer.trial
    parts = [f"<!doctype html><html lang=da><meta charset=utf-8><title>Evalueringsskema: "
             f"{html.escape(trial.title)}</title><style>{PRINT_CSS}</style>",
             "<nav><a href='?format=markdown'>Hent som Markdown</a> · "
             "<a href='?format=html' download>Hent som HTML</a> · Udskriv eller gem som PDF fra browseren</nav>",
             f"<h1>Evalueringsskema: {html.escape(trial.title)}</h1>"]
    for name, text in zip(FIELDS, fields(trial, answer.catalog)):
        parts.append(f"<h2>{html.escape(name)}</h2>")
        if name.startswith("7."):
            parts += [f"<p{' class=warning' if line.startswith(('Advarsel', 'Delt')) else ''}>{html.escape(line)}</p>"
                      for line in _groups(answer)]
            parts.append(_chart(answer))
            parts.append("<table><tr><th>Mål<th>Forsøgskommuner, før forsøget<th>Forsøgskommuner, under forsøget"
                         "<th>Sammenligningsgruppe, før forsøget<th>Sammenligningsgruppe, under forsøget")
            parts += [f"<tr><td>{html.escape(name)}<div class=def>{html.escape(definition)}</div>"
                      + "".join(f"<td class=n>{html.escape(v)}" for v in values)
                      for name, definition, values in _table(answer.rows)]
            parts.append(f"</table><p class=def>{html.escape(LEGEND)}</p><h3>Forskel-i-forskelle</h3><ul>")
            parts += [f"<li>{html.escape(s)}" for s in did_sentences(answer.rows)]
            parts.append("</ul>")
        else:
            parts.append(f"<p>{html.escape(text)}</p>")
    return "\n".join(parts) + "</html>"


MONTHS_DA = ("jan.", "feb.", "mar.", "apr.", "maj", "jun.", "jul.", "aug.", "sep.", "okt.", "nov.", "dec.")


def chart_spans(trial: Trial, periods: dict[str, tuple[date, date]]) -> list[tuple[date, date]]:
    """The spans the chart's months are asked for: the baseline, the trial's months before the
    period evaluated (when it starts later than the trial), and the period evaluated. Each its
    own series, so that each is protected against the total it is published beside."""
    (b0, b1), (t0, t1) = periods["baseline"], periods["trial"]
    run_in = [(trial.period.start, t0 - timedelta(days=1))] if trial.period.start < t0 else []
    return [(b0, b1), *run_in, (t0, t1)]


def _month_name(month: str) -> str:
    year, number_ = month.split("-")
    return f"{MONTHS_DA[int(number_) - 1]} {year}"


def _ticks(top: float, unit: str) -> tuple[list[float], int]:
    """0 and 3-6 round steps up to at least `top` (in percent for a share), and the decimals
    they need."""
    scale = 100 if unit == "andel" else 1
    if top <= 0:  # nothing but zeros
        return [0.0, 1 / scale], 0
    rough = top * scale / 4
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    count = math.ceil(top * scale / step - 1e-9) or 1
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return [k * step / scale for k in range(count + 1)], decimals


def _chart(answer: Answer, width: int = 720, height: int = 300) -> str:
    """An inline SVG line chart of the headline metric, month by month from the start of the
    baseline to the end of the period evaluated: each group a line, broken where a month is
    suppressed or has no data; the trial's start marked."""
    metric, series = answer.trial.headline_metric, answer.months
    if not series or not any(r.value is not None for r in series):
        return "<p>Ingen tal at vise (for få borgere, eller ingen data).</p>"
    first, last = min(r.period for r in series), max(r.period for r in series)
    months, month = [], date.fromisoformat(first + "-01")
    while month.strftime("%Y-%m") <= last:
        months.append(month.strftime("%Y-%m"))
        month = add_duration(month, "1m")
    unit = METRICS[metric].unit if metric in METRICS else ""
    ticks, decimals = _ticks(max(r.value for r in series if r.value is not None), unit)
    top = ticks[-1]
    left, right, plot_top, bottom = 64, width - 20, 20, height - 62

    def x(i: float) -> float:
        return left + i * (right - left) / max(len(months) - 1, 1)

    def y(v: float) -> float:
        return bottom - v / top * (bottom - plot_top)

    def label_of(v: float) -> str:
        return number(v * 100, decimals=decimals) + " %" if unit == "andel" else number(v, decimals=decimals)

    lines = []
    for group, (colour, dash) in COLOURS.items():
        by_month = {r.period: r for r in series if r.group == group}
        runs: list[list[tuple[float, float]]] = [[]]
        for i, m in enumerate(months):
            r = by_month.get(m)
            if r is None or r.value is None:  # a gap where a month is suppressed or has no data
                runs.append([])
            else:
                runs[-1].append((x(i), y(r.value)))
        for run in runs:
            if run:
                points = " ".join(f"{a:.1f},{b:.1f}" for a, b in run)
                lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}" '
                             f'points="{points}"><title>{GROUPS[group]}</title></polyline>')
    grid = "".join(f'<line x1="{left}" y1="{y(t):.1f}" x2="{right}" y2="{y(t):.1f}" stroke="#ddd"/>'
                   f'<text class="y" x="{left - 4}" y="{y(t) + 3:.1f}" font-size="9" text-anchor="end">'
                   f'{label_of(t)}</text>' for t in ticks)
    start = answer.trial.period.start
    # a month's point is at its start: the day within it places the trial's start
    at = (start.year - int(first[:4])) * 12 + start.month - int(first[5:]) + (start.day - 1) / 30
    marker = "" if not 0 <= at <= len(months) - 1 else (
        f'<line class="start" x1="{x(at):.1f}" y1="{plot_top}" x2="{x(at):.1f}" y2="{bottom}" stroke="#666" '
        f'stroke-dasharray="2 2"/><text x="{x(at) + 4:.1f}" y="{plot_top + 10}" font-size="10">forsøget begynder '
        f'{day(start)}</text>')
    every = next(k for k in (1, 2, 3, 6, 12, 24) if len(months) / k <= 10)
    labels = "".join(f'<text class="x" x="{x(i):.1f}" y="{bottom + 14}" font-size="9" text-anchor="middle">'
                     f'{_month_name(m)}</text>' for i, m in enumerate(months) if i % every == 0)
    legend = "".join(f'<line x1="{left + 200 * k}" y1="{height - 10}" x2="{left + 200 * k + 24}" y2="{height - 10}" '
                     f'stroke="{c}" stroke-width="2" stroke-dasharray="{d}"/><text class="legend" '
                     f'x="{left + 200 * k + 30}" y="{height - 6}" font-size="10">{GROUPS[g]}</text>'
                     for k, (g, (c, d)) in enumerate(COLOURS.items()))
    y_title = "procent" if unit == "andel" else unit
    return (f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="{html.escape(label(metric))}, måned for måned">{grid}'
            f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#999"/>'
            f'<line x1="{left}" y1="{plot_top}" x2="{left}" y2="{bottom}" stroke="#999"/>'
            f'<text x="12" y="{(bottom + plot_top) / 2:.0f}" font-size="10" '
            f'transform="rotate(-90 12 {(bottom + plot_top) / 2:.0f})" text-anchor="middle">{html.escape(y_title)}</text>'
            f'<text class="xtitle" x="{(left + right) / 2:.0f}" y="{bottom + 30}" font-size="10" '
            f'text-anchor="middle">måned</text>{marker}{"".join(lines)}{labels}{legend}</svg>'
            f"<figcaption>{html.escape(label(metric))}: forsøgskommuner (blå, fuldt optrukket) og "
            f"sammenligningsgruppe (orange, stiplet), måned for måned fra før forsøget; et hul er en "
            f"undertrykt måned eller en måned uden data.</figcaption></figure>")


def render(answer: Answer, fmt: str) -> tuple[str, str]:
    """(body, media type) of the form as Markdown or HTML."""
    if fmt == "markdown":
        return markdown(answer), "text/markdown; charset=utf-8"
    return html_page(answer), "text/html; charset=utf-8"

