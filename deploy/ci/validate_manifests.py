"""Validate rendered manifests (one JSON object per line) against schemas, offline.

Kubernetes kinds: the strict JSON schemas inside the pinned kubernetes-validate package, for each
Kubernetes version given (unknown fields are errors). Custom resources: the JSON schemas vendored in
deploy/schemas/<group>/<kind>_<version>.json. A kind with no schema is an error, so a new resource
type cannot slip through unvalidated.

usage: python validate_manifests.py SCHEMA_DIR MANIFESTS.jsonl K8S_VERSION [K8S_VERSION...]
Run by deploy/check.sh with the tool venv's python (kubernetes-validate and jsonschema installed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate


def crd_schema(schema_dir: Path, doc: dict) -> Path | None:
    group, _, version = doc["apiVersion"].rpartition("/")
    if not group or "." not in group:
        return None
    path = schema_dir / group / f"{doc['kind'].lower()}_{version}.json"
    return path if path.exists() else None


def main(schema_dir: Path, manifests: Path, versions: list[str]) -> int:
    docs = [json.loads(line) for line in manifests.read_text().splitlines() if line.strip()]
    errors: list[str] = []
    counts: dict[str, int] = {}
    for doc in docs:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        counts[doc.get("kind", "?")] = counts.get(doc.get("kind", "?"), 0) + 1
        schema_path = crd_schema(schema_dir, doc)
        if schema_path is not None:
            validator = jsonschema.Draft7Validator(json.loads(schema_path.read_text()))
            for e in validator.iter_errors(doc):
                errors.append(f"{where} ({schema_path.relative_to(schema_dir)}): {e.json_path}: {e.message}")
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                errors.append(
                    f"{where}: no schema for {doc.get('apiVersion')} {doc.get('kind')} (Kubernetes {version})"
                )
                break
            except kubernetes_validate.ValidationError as e:
                path = "/".join(str(p) for p in e.path)
                errors.append(f"{where} (Kubernetes {version}): {path}: {e.message}")
    for e in errors:
        print(e)
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"{len(docs)} manifests ({kinds}) against Kubernetes {', '.join(versions)}: {len(errors)} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]))
