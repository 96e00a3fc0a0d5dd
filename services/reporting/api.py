"""HTTP entrypoint of the reporting service. Its evaluation numbers are not built yet: the
contract's endpoints answer 501 so that clients can be wired against the final paths."""

from shared.app import service_app
from shared.problems import Problem

app = service_app("Frisag reporting service", "The trials' evaluation numbers (not built yet).")


@app.get("/trials")
@app.get("/trials/{trial}/evaluation")
def not_yet() -> None:
    raise Problem(501, "not-implemented", "Not implemented yet", "the reporting store is not built yet")
