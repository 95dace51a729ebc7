"""Compare two OpenAPI documents path by path and schema by schema (a check for REST refactors).

    python -m gateway.rest.openapi_diff dump before.json     # the current app's /openapi.json
    python -m gateway.rest.openapi_diff compare before.json after.json

Key order and the order of `required` lists are ignored; every other difference is listed.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def dump(path: str) -> None:
    from gateway.app import create_app  # only here: comparing needs no app
    from gateway.settings import GatewaySettings
    from govkit import config

    document = create_app(config.load(GatewaySettings)).openapi()
    with open(path, "w", encoding="utf-8") as out:
        json.dump(document, out, indent=1, sort_keys=True, ensure_ascii=False)


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: sorted(v) if k == "required" and isinstance(v, list) else _normal(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _short(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)[:200]


def differences(before: Any, after: Any, where: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for key in sorted(set(before) | set(after)):
            if key not in before:
                out.append(f"+ {where}/{key}: {_short(after[key])}")
            elif key not in after:
                out.append(f"- {where}/{key}: {_short(before[key])}")
            else:
                out.extend(differences(before[key], after[key], f"{where}/{key}"))
        return out
    return [] if before == after else [f"~ {where}: {_short(before)} -> {_short(after)}"]


def compare(before_path: str, after_path: str) -> list[str]:
    with open(before_path, encoding="utf-8") as a, open(after_path, encoding="utf-8") as b:
        before, after = _normal(json.load(a)), _normal(json.load(b))
    # Paths first, then component schemas, then the rest, so the summary reads route by route.
    out = differences(before.get("paths", {}), after.get("paths", {}), "paths")
    out += differences(before.get("components", {}), after.get("components", {}), "components")
    rest = {k: v for k, v in before.items() if k not in ("paths", "components")}
    out += differences(rest, {k: v for k, v in after.items() if k not in ("paths", "components")})
    return out


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "dump":
        dump(argv[1])
        return 0
    if len(argv) == 3 and argv[0] == "compare":
        found = compare(argv[1], argv[2])
        print("\n".join(found) if found else "no differences")
        return 1 if found else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
