"""The Ministry's evaluation form (seed 002: fields 1-10) for a trial, as HTML and Markdown.

Fields 1-5 come from the catalog (description, purpose, goals, design, compliance); field 7
(results) gets the evaluation's group totals and a chart of the trial's headline metric, trial
against comparison group, month by month. Fields 6 and 8-10 are the municipality's to write.
"""

import html
from typing import Any

from services.reporting.evaluation import Row
from shared.catalog import Catalog, Trial
from shared.municipalities import municipalities

FIELDS = ["1. Beskrivelse af forsøget", "2. Formålet med forsøget", "3. Konkrete mål/succeskriterier",
          "4. Evalueringsdesign", "5. Opfyldelse af lovens krav", "6. Justeringer af evalueringsdesign",
          "7. Forsøgets resultater", "8. Konklusion på forsøget", "9. Uventede fund", "10. Bemærkninger i øvrigt"]
TO_BE_WRITTEN = "Udfyldes af kommunen på baggrund af forsøgserfaringerne."


def fields(trial: Trial, catalog: Catalog) -> list[str]:
    """The text of fields 1-6 and 8-10 (field 7 is the numbers)."""
    effects = "; ".join(f"{e.effect} {e.rule} ({catalog.rules[e.rule].legal_reference})"
                        + (f": {e.note}" if e.note else "") for e in trial.effects) or "ingen beregnede virkninger"
    where = ", ".join(f"{municipalities()[m]} ({m})" for m in trial.municipalities)
    period = f"{trial.period.start} til {trial.period.end or 'indtil videre'}"
    description = f"{trial.title}. Kommuner: {where}. Periode: {period}. Virkning: {effects}."
    if trial.target_group_description:
        description += f" Målgruppe: {trial.target_group_description}"
    form = trial.form
    missing = "Ikke angivet i forsøgets kilder (seed " + ", ".join(trial.seeds) + ")."
    return [description, (form and form.purpose) or missing, (form and form.goals) or missing,
            (form and form.design) or missing, (form and form.compliance) or missing,
            TO_BE_WRITTEN, "", TO_BE_WRITTEN, TO_BE_WRITTEN, TO_BE_WRITTEN]


def _totals(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.municipality is None and r.metric != "did_estimate" and r.rule is None]


def _value(row: Row) -> str:
    return "undertrykt (< 5 borgere)" if row.suppressed else ("–" if row.value is None else f"{row.value:g}")


def _citizens(row: Row) -> str:
    return "–" if row.n is None else str(row.n)  # a suppressed cell shows neither value nor count


def markdown(trial: Trial, catalog: Catalog, periods: dict[str, Any], rows: list[Row], series: list[Row]) -> str:
    texts = fields(trial, catalog)
    out = [f"# Evalueringsskema: {trial.id} {trial.title}", ""]
    for name, text in zip(FIELDS, texts):
        out += [f"## {name}", ""]
        if name.startswith("7."):
            out += _results_markdown(trial, periods, rows, series)
        else:
            out += [text, ""]
    return "\n".join(out)


def _results_markdown(trial: Trial, periods: dict[str, Any], rows: list[Row], series: list[Row]) -> list[str]:
    lines = [f"Perioder: baseline {periods['baseline'][0]} til {periods['baseline'][1]}, "
             f"forsøg {periods['trial'][0]} til {periods['trial'][1]}.", "",
             "| mål | gruppe | periode | værdi | borgere |", "|---|---|---|---|---|"]
    lines += [f"| {r.metric} | {r.group} | {r.period} | {_value(r)} | {_citizens(r)} |" for r in _totals(rows)]
    lines += ["", f"{trial.headline_metric}, måned for måned:", "", "| måned | forsøgskommuner | sammenligning |", "|---|---|---|"]
    by_month: dict[str, dict[str, Row]] = {}
    for r in series:
        by_month.setdefault(r.period, {})[r.group] = r
    lines += [f"| {month} | {_value(g['trial'])} | {_value(g['comparison'])} |" for month, g in sorted(by_month.items())]
    return [*lines, ""]


def html_page(trial: Trial, catalog: Catalog, periods: dict[str, Any], rows: list[Row], series: list[Row]) -> str:
    texts = fields(trial, catalog)
    parts = [f"<!doctype html><html lang=da><meta charset=utf-8><title>Evalueringsskema {trial.id}</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2em .5em}</style>",
             f"<h1>Evalueringsskema: {html.escape(trial.id)} {html.escape(trial.title)}</h1>"]
    for name, text in zip(FIELDS, texts):
        parts.append(f"<h2>{html.escape(name)}</h2>")
        if name.startswith("7."):
            parts.append(_chart(trial.headline_metric, series))
            parts.append("<table><tr><th>mål<th>gruppe<th>periode<th>værdi<th>borgere")
            parts += [f"<tr><td>{r.metric}<td>{r.group}<td>{r.period}<td>{html.escape(_value(r))}<td>{_citizens(r)}" for r in _totals(rows)]
            parts.append("</table>")
        else:
            parts.append(f"<p>{html.escape(text)}</p>")
    return "\n".join(parts) + "</html>"


def _chart(metric: str, series: list[Row], width: int = 720, height: int = 240) -> str:
    """An inline SVG line chart: trial group against comparison group, month by month."""
    months = sorted({r.period for r in series})
    values = [r.value for r in series if r.value is not None]
    if not months or not values:
        return "<p>Ingen tal at vise (for få borgere, eller ingen data).</p>"
    top = max(values) or 1

    def x(i: int) -> float:
        return 40 + i * (width - 60) / max(len(months) - 1, 1)

    def y(v: float) -> float:
        return height - 30 - v / top * (height - 50)

    lines = []
    for group, colour in (("trial", "#c0392b"), ("comparison", "#2c3e50")):
        points = [(x(i), y(r.value)) for i, m in enumerate(months) for r in series
                  if r.period == m and r.group == group and r.value is not None]
        lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in points)}"><title>{group}</title></polyline>')
    labels = "".join(f'<text x="{x(i):.1f}" y="{height - 10}" font-size="9" text-anchor="middle">{m}</text>'
                     for i, m in enumerate(months) if i % max(1, len(months) // 8) == 0)
    return (f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="{metric}, forsøgskommuner (rød) og sammenligning (blå)">'
            f'<line x1="40" y1="{height - 30}" x2="{width - 20}" y2="{height - 30}" stroke="#999"/>'
            f'<text x="4" y="{y(top):.1f}" font-size="9">{top:g}</text>{"".join(lines)}{labels}</svg>'
            f"<figcaption>{metric}: forsøgskommuner (rød) og sammenligningsgruppe (blå), måned for måned"
            f"</figcaption></figure>")
