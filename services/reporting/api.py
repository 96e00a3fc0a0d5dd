"""HTTP entrypoint of the reporting service. Its evaluation numbers are not built yet: the
contract's endpoints answer 501 so that clients can be wired against the final paths."""

from fastapi import FastAPI

from shared import problems
from shared.problems import Problem

app = FastAPI(title="Frisag reporting service", version="0.1.0")
problems.install(app)


@app.get("/trials")
@app.get("/trials/{trial}/evaluation")
def not_yet() -> None:
    raise Problem(501, "not-implemented", "Not implemented yet", "the reporting store is not built yet")


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
