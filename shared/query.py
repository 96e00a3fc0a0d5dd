"""Query parameters an operation does not declare are refused, not ignored: a misspelled filter
(`?statuss=overdue`) would otherwise get the answer to another question, as if it were the one
asked."""

from collections.abc import Iterator

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_parameterless_sub_dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


NAMED = 10  # undeclared parameters named in one refusal


class DeclaredQueryOnly(APIRoute):
    """A route that refuses (422, problem+json) each query parameter neither it nor its
    dependencies declare, naming the ones it takes. Checked after its other dependencies (the
    token, the audit), as FastAPI checks the declared parameters' values."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        accepted = list(dict.fromkeys(_query_names(self.dependant)))
        reason = f"not a parameter of this operation, which takes {', '.join(accepted) or 'none'}"

        async def refuse_undeclared(request: Request) -> None:
            undeclared = [name for name in dict.fromkeys(request.query_params) if name not in accepted]
            if undeclared:  # the first NAMED: an answer of bounded size, however many were sent
                raise RequestValidationError([{"type": "extra_forbidden", "loc": ("query", name), "msg": reason,
                                               "input": request.query_params[name]} for name in undeclared[:NAMED]])

        # last: the request handler FastAPI built solves this list in order
        self.dependant.dependencies.append(
            get_parameterless_sub_dependant(depends=Depends(refuse_undeclared), path=self.path_format))


def _query_names(dependant: Dependant) -> Iterator[str]:
    """The query parameters `dependant` and its dependencies declare, as sent (`from`, not `from_`)."""
    for field in dependant.query_params:
        yield field.alias
    for sub in dependant.dependencies:
        yield from _query_names(sub)
