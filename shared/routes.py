"""Routes as the Functions host reads them: `host.json`'s route prefix and route templates, parsed once here.

The OpenAPI document (path templates and their parameters), the local host (request matching) and the tests
(route overlap) all read the same parse. The grammar is ASP.NET Core's route templates, which the host uses:
`{name}`, `{name:constraint}`, constraints chained with `:` (a `regex(...)` may itself hold `:`),
`{name?}` optional and `{*name}` catch-all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST_JSON = Path(__file__).resolve().parent.parent / "host.json"
DEFAULT_ROUTE_PREFIX = "api"  # the host's default when host.json sets none


def read_host_json(path: Path = HOST_JSON) -> dict[str, Any]:
    """host.json as a dict; {} when there is none (the host's defaults then apply)."""
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def route_prefix(path: Path = HOST_JSON) -> str:
    """The prefix every HTTP route is served under (`extensions.http.routePrefix`), without slashes."""
    prefix = read_host_json(path).get("extensions", {}).get("http", {}).get("routePrefix", DEFAULT_ROUTE_PREFIX)
    return str(prefix).strip("/")


@dataclass(frozen=True)
class RouteParameter:
    name: str
    constraints: tuple[str, ...]  # as written, e.g. ("guid",) or ("regex(a:b)",)
    optional: bool
    catch_all: bool


# One path segment: its literal text and parameters in order (a segment may mix them, as `v{version}.json`).
Segment = tuple[str | RouteParameter, ...]

_PARAMETER = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True)
class RouteTemplate:
    template: str  # the full template, route prefix included, without leading or trailing slash
    segments: tuple[Segment, ...]

    @classmethod
    def parse(cls, prefix: str, route: str) -> RouteTemplate:
        full = "/".join(part for part in (prefix.strip("/"), route.strip("/")) if part)
        segments: list[Segment] = []
        for text in full.split("/") if full else []:
            parts: list[str | RouteParameter] = []
            position = 0
            for match in _PARAMETER.finditer(text):
                if match.start() > position:
                    parts.append(text[position : match.start()])
                parts.append(_parse_parameter(match.group(1)))
                position = match.end()
            if position < len(text):
                parts.append(text[position:])
            segments.append(tuple(parts))
        return cls(full, tuple(segments))

    @property
    def parameters(self) -> list[RouteParameter]:
        return [part for segment in self.segments for part in segment if isinstance(part, RouteParameter)]

    @property
    def path(self) -> str:
        """The template as an OpenAPI path: `/api/registrations/{registration_id}`."""
        return "/" + "/".join(
            "".join(part if isinstance(part, str) else "{" + part.name + "}" for part in segment)
            for segment in self.segments
        )


def _parse_parameter(text: str) -> RouteParameter:
    catch_all = text.startswith("*")
    text = text.lstrip("*")
    optional = text.endswith("?")
    name, *constraints = _split_constraints(text.rstrip("?"))
    return RouteParameter(name=name, constraints=tuple(constraints), optional=optional, catch_all=catch_all)


def _split_constraints(text: str) -> list[str]:
    # "id:regex(a:b)" must not split inside the parentheses.
    parts, depth, current = [], 0, ""
    for char in text:
        if char == ":" and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    parts.append(current)
    return parts
