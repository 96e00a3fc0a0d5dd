"""HTTP entrypoint of the obligations service. Its fold and projection are not built yet: the
contract's endpoints answer 501 so that clients can be wired against the final paths."""

from fastapi import FastAPI

from shared import problems
from shared.problems import Problem

app = FastAPI(title="Frisag obligations service", version="0.1.0")
problems.install(app)


@app.get("/cases/{case_id}/obligations")
@app.get("/obligations")
def not_yet() -> None:
    raise Problem(501, "not-implemented", "Not implemented yet", "the obligations projection is not built yet")


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
