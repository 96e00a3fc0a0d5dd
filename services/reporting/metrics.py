"""What each evaluation metric means: its Danish and English label, unit, definition and the
events it is computed from. The one source for `GET /metrics-catalog`, the form and the README
table (a test keeps the README in step)."""

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Metric:
    id: str
    label_da: str
    label_en: str
    unit: str  # obligations | hours | share | days | citizens | per 100 months | events
    definition_da: str
    definition_en: str
    events: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# the fold's inputs: where the case is, what it receives, and the events that complete an obligation
OBLIGATION_EVENTS = ("case.opened", "case.moved", "case.closed", "benefit.started", "benefit.ended",
                     "assessment.completed", "conversation.held", "plan.updated", "mentor.contact", "cadence.agreed")
CATALOG = {m.id: m for m in [
    Metric("obligations_required_ordinary", "Pligter efter de almindelige regler",
           "Obligations under the ordinary rules", "pligter",
           "Pligter med frist i perioden efter de almindelige regler (uden forsøg), i de regler forsøget ændrer.",
           "Obligations due in the period under the ordinary rules alone, of the rules the trial changes.",
           OBLIGATION_EVENTS),
    Metric("obligations_required", "Pligter med forsøget", "Obligations with the trials", "pligter",
           "De samme pligter med dette forsøgs egne virkninger: dem, det hverken fritager for eller suspenderer "
           "(også dem, kun et andet forsøg fritager for).",
           "The same obligations under this trial's own effects: those it neither waives nor suspends (those only "
           "another trial waives too).", OBLIGATION_EVENTS),
    Metric("obligations_waived", "Pligter fritaget af forsøget", "Obligations waived by the trial", "pligter",
           "Pligter, som dette forsøgs egne virkninger fritager for eller suspenderer (også når et andet forsøg "
           "gør det samme: se delt med).",
           "Obligations this trial's own effects waive or suspend (also where another trial's do the same: see "
           "shared_with).", OBLIGATION_EVENTS),
    Metric("caseworker_hours_freed", "Frigjorte sagsbehandlertimer", "Caseworker hours freed", "timer",
           "De fritagne pligter gange reglens skønnede minutter pr. pligt, delt med 60.",
           "The waived obligations times the rule's estimated minutes per obligation, over 60.", OBLIGATION_EVENTS),
    Metric("obligations_on_time_share", "Andel pligter overholdt rettidigt", "Share of obligations met on time",
           "andel", "Af pligterne, der kræves med forsøgene: andelen udført senest ved fristen.",
           "Of the obligations required with the trials: the share done by their deadline.", OBLIGATION_EVENTS),
    Metric("ly_spells_ended", "Afsluttede ledighedsydelsesforløb", "Ledighedsydelse spells ended", "forløb",
           "Forløb på ledighedsydelse, der slutter i perioden.", "Ledighedsydelse spells ending in the period.",
           ("benefit.started", "benefit.ended", "case.closed")),
    Metric("ly_avg_spell_days", "Gennemsnitlig varighed af ledighedsydelsesforløb",
           "Mean length of ledighedsydelse spells", "dage",
           "Gennemsnitlig længde (slut − start + 1 dage) af forløbene, der slutter i perioden.",
           "Mean length (end − start + 1 days) of the spells ending in the period.",
           ("benefit.started", "benefit.ended", "case.closed")),
    Metric("ly_over_18m_at_start", "Borgere over 18 måneder på ledighedsydelse ved periodens start",
           "Citizens over 18 months on ledighedsydelse at the start", "borgere",
           "Borgere på ledighedsydelse periodens første dag, hvis forløb begyndte mere end 18 måneder før.",
           "Citizens on ledighedsydelse on the period's first day whose spell began more than 18 months before.",
           ("benefit.started", "benefit.ended", "case.closed")),
    Metric("ly_over_18m_at_end", "Borgere over 18 måneder på ledighedsydelse ved periodens slutning",
           "Citizens over 18 months on ledighedsydelse at the end", "borgere",
           "Borgere på ledighedsydelse periodens sidste dag, hvis forløb begyndte mere end 18 måneder før.",
           "Citizens on ledighedsydelse on the period's last day whose spell began more than 18 months before.",
           ("benefit.started", "benefit.ended", "case.closed")),
    Metric("conversations_held_per_100_months", "Samtaler pr. 100 måneder på ydelse",
           "Conversations per 100 months on benefit", "pr. 100 måneder",
           "Afholdte samtaler i perioden med borgere på en ydelse i kommunen i perioden, "
           "pr. 100 borgermåneder på en ydelse.",
           "Conversations held in the period with citizens on a benefit in the municipality during it, "
           "per 100 citizen-months on any benefit.",
           ("conversation.held", "benefit.started", "benefit.ended")),
    Metric("exits_to_job_share", "Andel afgået til job", "Share exiting to a job", "andel",
           "Af borgerne på en ydelse i perioden: andelen, hvis ydelse eller sag sluttede med job.",
           "Of the citizens on a benefit in the period: the share whose benefit or case ended with a job.",
           ("benefit.started", "benefit.ended", "case.closed")),
    Metric("exits_to_job_share_ressourceforloeb", "Andel afgået til job fra ressourceforløb",
           "Share exiting to a job from ressourceforløb", "andel",
           "Af borgerne i ressourceforløb i perioden: andelen, hvis ressourceforløb sluttede med job.",
           "Of the citizens in ressourceforløb in the period: the share whose ressourceforløb ended with a job.",
           ("benefit.started", "benefit.ended")),
    Metric("permitted_actions", "Handlinger kun forsøget tillader", "Actions only the trial permits", "hændelser",
           "Hændelser i perioden, som kun forsøget tillod (hændelsens permittedby).",
           "Events in the period that only the trial permitted (the event's permittedby).",
           ("any event with permittedby, e.g. offer.started",)),
    Metric("did_estimate", "Forskel-i-forskelle-estimat", "Difference-in-differences estimate", "som målet",
           "(forsøgskommuner: under − før forsøget) − (sammenligningsgruppe: under − før forsøget), "
           "med 95 %-bootstrapinterval.",
           "(trial group: trial − baseline) − (comparison group: trial − baseline), with a 95 % bootstrap interval.",
           ()),
]}


def label(metric: str) -> str:
    return CATALOG[metric].label_da if metric in CATALOG else metric
