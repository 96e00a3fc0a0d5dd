"""Query parameters an operation does not declare are refused, not ignored, and so is one that
takes a single value given twice: a misspelled filter (`?statuss=overdue`), or the last of two
values, would otherwise get the answer to another question, as if it were the one asked."""

from collections.abc import Iterator

from fastapi import Depends, Request
from fastapi._compat import field_annotation_is_sequence
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
        declared = dict(_query_names(self.dependant))  # name -> whether it takes several values
        accepted = list(declared)
        reason = f"not a parameter of this operation, which takes {', '.join(accepted) or 'none'}"

        async def refuse_undeclared(request: Request) -> None:
            names = list(dict.fromkeys(request.query_params))
            undeclared = [name for name in names if name not in declared]
            if undeclared:  # the first NAMED: an answer of bounded size, however many were sent
                raise RequestValidationError([{"type": "extra_forbidden", "loc": ("query", name), "msg": reason,
                                               "input": request.query_params[name]} for name in undeclared[:NAMED]])
            # a value given twice where one is taken: the last would silently win
            repeated = [name for name in names if not declared[name] and len(request.query_params.getlist(name)) > 1]
            if repeated:
                raise RequestValidationError([{"type": "repeated", "loc": ("query", name), "msg": "given more than "
                                               "once, and it takes one value", "input": request.query_params.getlist(name)}
                                              for name in repeated])

        # last: the request handler FastAPI built solves this list in order
        self.dependant.dependencies.append(
            get_parameterless_sub_dependant(depends=Depends(refuse_undeclared), path=self.path_format))


def _query_names(dependant: Dependant) -> Iterator[tuple[str, bool]]:
    """The query parameters `dependant` and its dependencies declare, as sent (`from`, not `from_`),
    each with whether it takes several values (`?status=due&status=overdue`)."""
    for field in dependant.query_params:
        yield field.alias, field_annotation_is_sequence(field.field_info.annotation)
    for sub in dependant.dependencies:
        yield from _query_names(sub)
