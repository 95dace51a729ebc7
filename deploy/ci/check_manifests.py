"""Invariants of the chart's rendered manifests (one JSON object per line), stdlib only.

Run by deploy/check.sh for every scenario:
  python3 check_manifests.py MANIFESTS.jsonl --deployments a,b --migrations a,b [--expect ...]

Checks every pod (Deployments, hook Jobs, the helm test Pod) for the hardened shape (non-root,
read-only root filesystem, no privilege escalation, capabilities dropped, seccomp, limits, probes on
long-running containers, secrets only from secretKeyRefs) and, by --expect, the operational parts:
headless gRPC Services behind every GOV_*_ADDR, metrics ports, NetworkPolicies for every component,
monitoring resources with runbook links into docs/operations.md, the streams hook Job or NACK
Streams, the CloudNativePG Cluster and the DSNs wired from it, the helm test Pod.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

TMP = "/tmp"  # noqa: S108 - the path every pod must mount as its only writable place
ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - what the gateway must listen on inside its pod
SECRET_ENV = {
    "GOV_DATABASE_URL",
    "GOV_SIGNING_KEY_PASSPHRASE",
    "GOV_DB_PASSWORD",
    "GOV_TEST_CLIENT_SECRET",
    "GOV_NOTIFICATIONS_CLIENT_SECRET",
    "GOV_NOTIFICATIONS_SMS_HTTP_TOKEN",
    "GOV_SMTP_PASSWORD",
}
# user:password@ in a URL, unless both are $(VAR) references Kubernetes expands from secretKeyRefs
CREDS_IN_URL = re.compile(r"://(?!\$\([A-Z_]+\):\$\([A-Z_]+\)@)[^/\s:@]+:[^/\s@]+@")
VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
ALERTS = {
    "GovDeadLetters",
    "GovOutboxStalled",
    "GovConsumerLagGrowing",
    "GovGrpcErrorRatio",
    "GovHttpErrorRatio",
    "GovServiceNotReady",
    "GovMetricsTargetDown",
}
STREAMS_FILE = "/etc/gov/streams/streams.json"
METRIC = re.compile(r"\b(gov_[a-z0-9_]+)\b")


class Checker:
    def __init__(self, docs: list[dict], args: argparse.Namespace) -> None:
        self.docs = docs
        self.args = args
        self.errors: list[str] = []

    def err(self, where: str, msg: str) -> None:
        self.errors.append(f"{where}: {msg}")

    def of_kind(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d.get("kind") == kind]

    @staticmethod
    def component(d: dict) -> str:
        return d.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/component", "")

    @staticmethod
    def where(d: dict) -> str:
        return f"{d.get('kind')}/{d.get('metadata', {}).get('name')}"

    # ------------------------------------------------------------------------------------ pods

    def pod(self, where: str, pod: dict, long_running: bool) -> None:
        spec = pod["spec"]
        if spec.get("automountServiceAccountToken") is not False:
            self.err(where, "automountServiceAccountToken must be false")
        psc = spec.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True or psc.get("runAsUser") != 10001:
            self.err(where, "pod securityContext must set runAsNonRoot: true and runAsUser: 10001")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            self.err(where, "pod seccompProfile must be RuntimeDefault")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        if "emptyDir" not in volumes.get("tmp", {}):
            self.err(where, "emptyDir volume 'tmp' missing")
        if not spec.get("terminationGracePeriodSeconds"):
            self.err(where, "terminationGracePeriodSeconds missing")
        containers = spec.get("containers", []) + spec.get("initContainers", [])
        if not containers:
            self.err(where, "no containers")
        for c in containers:
            self.container(f"{where}/{c.get('name')}", c, volumes, long_running)

    def container(self, cw: str, c: dict, volumes: dict, long_running: bool) -> None:
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True:
            self.err(cw, "readOnlyRootFilesystem must be true")
        if sc.get("runAsNonRoot") is not True:
            self.err(cw, "runAsNonRoot must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            self.err(cw, "allowPrivilegeEscalation must be false")
        if sc.get("privileged"):
            self.err(cw, "privileged must be false")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            self.err(cw, "capabilities must drop ALL")
        if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            self.err(cw, "container seccompProfile must be RuntimeDefault")
        mounts = c.get("volumeMounts", [])
        if not any(m.get("mountPath") == TMP for m in mounts):
            self.err(cw, f"{TMP} must be mounted")
        for m in mounts:
            if (
                m["mountPath"] != TMP
                and "emptyDir" not in volumes.get(m["name"], {})
                and not m.get("readOnly")
            ):
                self.err(cw, f"{m['mountPath']}: Secret/ConfigMap mounts must be readOnly")
        res = c.get("resources", {})
        for part in ("requests", "limits"):
            if not {"cpu", "memory"} <= res.get(part, {}).keys():
                self.err(cw, f"resources.{part} needs cpu and memory")
        image = str(c.get("image", ""))
        if image.endswith(":latest") or (":" not in image and "@" not in image):
            self.err(cw, f"image must carry a non-latest tag or digest: {image}")
        env_list = c.get("env", [])
        env = {e["name"]: e for e in env_list}
        if len(env) != len(env_list):
            self.err(cw, "duplicate env names")
        defined: set[str] = set()
        for e in env_list:
            for ref in VAR_REF.findall(str(e.get("value", ""))):
                if ref not in defined:
                    self.err(cw, f"{e['name']} references $({ref}) before it is defined")
            defined.add(e["name"])
        for name in SECRET_ENV & env.keys():
            e = env[name]
            if "secretKeyRef" in e.get("valueFrom", {}):
                continue
            refs = VAR_REF.findall(str(e.get("value", "")))
            if not refs or any("secretKeyRef" not in env.get(r, {}).get("valueFrom", {}) for r in refs[:2]):
                self.err(cw, f"{name} must come from a secretKeyRef (or $(VAR) references to them)")
        for name, e in env.items():
            if "value" in e and CREDS_IN_URL.search(str(e["value"])):
                self.err(cw, f"{name} holds credentials in plain text")
        for name in ("OTEL_SERVICE_NAME", "GOV_NATS_URL"):
            if name not in env:
                self.err(cw, f"env {name} missing")
        if long_running:
            self.long_running(cw, c, env)

    def long_running(self, cw: str, c: dict, env: dict) -> None:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            p = c.get(probe)
            if not p or not ({"grpc", "httpGet", "tcpSocket"} & p.keys()):
                self.err(cw, f"{probe} missing")
        ports = {p["name"]: p for p in c.get("ports", [])}
        if "grpc" in ports:
            if "GOV_GRPC_PORT" not in env or "grpc" not in c.get("readinessProbe", {}):
                self.err(cw, "gRPC component needs GOV_GRPC_PORT and a native grpc readiness probe")
            if "GOV_GRPC_MAX_CONNECTION_AGE_SECONDS" not in env:
                self.err(cw, "gRPC component needs GOV_GRPC_MAX_CONNECTION_AGE_SECONDS")
        if "http" in ports:
            if env.get("GOV_HTTP_HOST", {}).get("value") != ANY_ADDRESS or "GOV_HTTP_PORT" not in env:
                self.err(cw, "HTTP component needs GOV_HTTP_HOST=0.0.0.0 and GOV_HTTP_PORT")
            if any("httpGet" not in c.get(p, {}) for p in ("livenessProbe", "readinessProbe")):
                self.err(cw, "HTTP component needs httpGet probes")
        if self.args.expect_metrics:
            port = ports.get("metrics", {}).get("containerPort")
            if port is None or env.get("GOV_METRICS_PORT", {}).get("value") != str(port):
                self.err(cw, "metrics: container port `metrics` and GOV_METRICS_PORT must agree")
        elif "metrics" in ports or "GOV_METRICS_PORT" in env:
            self.err(cw, "metrics disabled but a metrics port or GOV_METRICS_PORT rendered")
        component = c.get("name")
        if "identity" in self.args.deployments and component != "identity" and "GOV_IDENTITY_ADDR" not in env:
            self.err(cw, "GOV_IDENTITY_ADDR missing")
        if f"GOV_{str(component).upper()}_ADDR" in env:
            self.err(
                cw, "a component must not get its own GOV_<NAME>_ADDR (identity would verify via itself)"
            )
        self.addresses(cw, env)

    def addresses(self, cw: str, env: dict) -> None:
        services = {s["metadata"]["name"]: s for s in self.of_kind("Service")}
        for name, e in env.items():
            if not (name.startswith("GOV_") and name.endswith("_ADDR")):
                continue
            value = str(e.get("value", ""))
            m = re.fullmatch(r"(dns:///)?([a-z0-9.-]+):(\d+)", value)
            if not m:
                self.err(cw, f"{name}={value!r} is not [dns:///]host:port")
                continue
            svc = services.get(m.group(2))
            if svc is None:
                self.err(cw, f"{name} points at no rendered Service: {value}")
                continue
            headless = svc["spec"].get("clusterIP") == "None"
            if self.args.expect_headless and not (m.group(1) and headless):
                self.err(cw, f"{name} must be dns:///<headless Service>:<port>, is {value}")
            if not any(str(p["port"]) == m.group(3) for p in svc["spec"]["ports"]):
                self.err(cw, f"{name}: Service {m.group(2)} has no port {m.group(3)}")

    # ------------------------------------------------------------------------------- workloads

    def workloads(self) -> None:
        deployments, migrations = set(), set()
        cnpg = bool(self.of_kind("Cluster"))
        migrate_hook = "post-install,pre-upgrade" if cnpg else "pre-install,pre-upgrade"
        for d in self.of_kind("Deployment"):
            deployments.add(self.component(d))
            if d["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxUnavailable") != 0:
                self.err(self.where(d), "rollingUpdate.maxUnavailable must be 0")
            self.pod(self.where(d), d["spec"]["template"], long_running=True)
        streams_jobs = []
        for d in self.of_kind("Job"):
            w, comp = self.where(d), self.component(d)
            ann = d["metadata"].get("annotations", {})
            args = d["spec"]["template"]["spec"]["containers"][0].get("args", [])
            if comp == "streams":
                streams_jobs.append(d)
                hook = "pre-install,pre-upgrade"
                if args[:4] != ["govkit.streams", "apply", "--file", STREAMS_FILE]:
                    self.err(
                        w,
                        f"streams Job must run 'govkit.streams apply --file {STREAMS_FILE}', has {args}",
                    )
            else:
                migrations.add(comp.removesuffix("-migrate"))
                hook = migrate_hook
                if args[-1:] != ["migrate"]:
                    self.err(w, f"migration Job must run '<module> migrate', has {args}")
            if ann.get("helm.sh/hook") != hook:
                self.err(w, f"must be a {hook} hook, is {ann.get('helm.sh/hook')}")
            if ann.get("helm.sh/hook-delete-policy") != "before-hook-creation,hook-succeeded":
                self.err(w, "hook-delete-policy must be before-hook-creation,hook-succeeded")
            if "helm.sh/hook-weight" not in ann:
                self.err(w, "hook-weight missing")
            self.pod(w, d["spec"]["template"], long_running=False)
        for d in self.of_kind("Pod"):
            if d["metadata"].get("annotations", {}).get("helm.sh/hook") != "test":
                self.err(self.where(d), "a bare Pod must be a helm test hook")
            self.pod(self.where(d), d, long_running=False)
        for d in self.of_kind("Secret"):
            self.err(self.where(d), "the chart must not create Secrets")
        if deployments != self.args.deployments:
            self.err(
                "Deployments", f"expected {sorted(self.args.deployments)}, rendered {sorted(deployments)}"
            )
        if migrations != self.args.migrations:
            self.err(
                "migration Jobs", f"expected {sorted(self.args.migrations)}, rendered {sorted(migrations)}"
            )
        self.streams(streams_jobs)
        self.tests()

    def services(self) -> None:
        for d in self.of_kind("Deployment"):
            comp = self.component(d)
            container = d["spec"]["template"]["spec"]["containers"][0]
            grpc = any(p["name"] == "grpc" for p in container.get("ports", []))
            selecting = [
                s
                for s in self.of_kind("Service")
                if s["spec"].get("selector", {}).get("app.kubernetes.io/component") == comp
            ]
            normal = [s for s in selecting if s["spec"].get("clusterIP") != "None"]
            headless = [s for s in selecting if s["spec"].get("clusterIP") == "None"]
            if len(normal) != 1:
                self.err(self.where(d), f"needs exactly one ClusterIP Service, has {len(normal)}")
            if grpc and self.args.expect_headless and len(headless) != 1:
                self.err(self.where(d), "gRPC component needs one headless Service (clusterIP: None)")
            ports = normal[0]["spec"]["ports"] if normal else []
            if self.args.expect_metrics and normal and not any(p.get("name") == "metrics" for p in ports):
                self.err(self.where(normal[0]), "Service port `metrics` missing")

    # --------------------------------------------------------------------------------- network

    def network(self) -> None:
        policies = self.of_kind("NetworkPolicy")
        if not self.args.expect_network_policy:
            if policies:
                self.err("NetworkPolicy", "rendered although networkPolicy.enabled is false")
            return
        deny = [
            p
            for p in policies
            if set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress")
            and not p["spec"].get("egress")
            and "app.kubernetes.io/component" not in p["spec"]["podSelector"].get("matchLabels", {})
        ]
        if not deny:
            self.err("NetworkPolicy", "no default-deny policy (both directions, no rules) for the release")
        if not any(
            any(port.get("port") == 53 for r in p["spec"].get("egress", []) for port in r.get("ports", []))
            for p in policies
        ):
            self.err("NetworkPolicy", "no DNS egress")
        for d in self.of_kind("Deployment"):
            comp = self.component(d)
            mine = [
                p
                for p in policies
                if p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component") == comp
            ]
            if len(mine) != 1:
                self.err(self.where(d), f"needs one NetworkPolicy of its own, has {len(mine)}")
                continue
            spec = mine[0]["spec"]
            if not spec.get("egress"):
                self.err(self.where(mine[0]), "no egress allowed at all (NATS is needed)")
            if self.args.expect_metrics:
                ports = {port.get("port") for r in spec.get("ingress", []) for port in r.get("ports", [])}
                metrics_port = next(
                    (
                        p["containerPort"]
                        for p in d["spec"]["template"]["spec"]["containers"][0]["ports"]
                        if p["name"] == "metrics"
                    ),
                    None,
                )
                if metrics_port not in ports:
                    self.err(self.where(mine[0]), "metrics port not open to Prometheus")

    # ------------------------------------------------------------------------------ monitoring

    def monitoring(self, docs_anchors: set[str], known_metrics: set[str]) -> None:
        monitors = self.of_kind("ServiceMonitor")
        rules = self.of_kind("PrometheusRule")
        dashboards = [
            c
            for c in self.of_kind("ConfigMap")
            if c["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
        ]
        want = self.args.expect_monitoring
        for kind, found in (
            ("ServiceMonitor", monitors),
            ("PrometheusRule", rules),
            ("Grafana dashboard ConfigMap", dashboards),
        ):
            if want and len(found) != 1:
                self.err(kind, f"expected one, rendered {len(found)}")
            if not want and found:
                self.err(kind, "rendered although switched off")
        for m in monitors:
            if [e.get("port") for e in m["spec"]["endpoints"]] != ["metrics"]:
                self.err(self.where(m), "must scrape the `metrics` port")
        exprs: list[str] = []
        for r in rules:
            alerts = {}
            for g in r["spec"]["groups"]:
                for rule in g["rules"]:
                    if "alert" in rule:
                        alerts[rule["alert"]] = rule
                        exprs.append(str(rule["expr"]))
            if set(alerts) != ALERTS:
                self.err(self.where(r), f"alerts {sorted(alerts)} != {sorted(ALERTS)}")
            for name, rule in alerts.items():
                url = rule.get("annotations", {}).get("runbook_url", "")
                anchor = url.rpartition("#")[2]
                if "#" not in url or anchor not in docs_anchors:
                    self.err(
                        self.where(r),
                        f"{name}: runbook_url {url!r} does not point at a section of docs/operations.md",
                    )
                if not rule.get("labels", {}).get("severity"):
                    self.err(self.where(r), f"{name}: severity label missing")
                if str(rule["expr"]).count("(") != str(rule["expr"]).count(")") or str(rule["expr"]).count(
                    "{"
                ) != str(rule["expr"]).count("}"):
                    self.err(self.where(r), f"{name}: unbalanced expression")
        for cm in dashboards:
            for key, text in cm.get("data", {}).items():
                try:
                    board = json.loads(text)
                except ValueError as exc:
                    self.err(self.where(cm), f"{key}: not JSON: {exc}")
                    continue
                for panel in board.get("panels", []):
                    exprs.extend(t["expr"] for t in panel.get("targets", []))
        for expr in exprs:
            for metric in METRIC.findall(expr):
                base = re.sub(r"_(bucket|count|sum)$", "", metric)
                if metric not in known_metrics and base not in known_metrics:
                    self.err("monitoring", f"unknown series {metric} (not in the agreed metric names)")

    # --------------------------------------------------------------------------------- streams

    def streams(self, jobs: list[dict]) -> None:
        cms = [c for c in self.of_kind("ConfigMap") if "streams.json" in c.get("data", {})]
        nack = self.of_kind("Stream")
        mode = self.args.expect_streams
        if mode == "job":
            if len(jobs) != 1 or len(cms) != 1 or nack:
                self.err(
                    "streams",
                    f"expected the hook Job and its ConfigMap only: {len(jobs)} Jobs, "
                    f"{len(cms)} ConfigMaps, {len(nack)} Streams",
                )
                return
            decl = json.loads(cms[0]["data"]["streams.json"])
            if set(decl) != {"streams"} or not decl["streams"]:
                self.err(self.where(cms[0]), 'streams.json must be {"streams": {NAME: {...}}}')
            cm_ann = cms[0]["metadata"].get("annotations", {})
            job_ann = jobs[0]["metadata"]["annotations"]
            if cm_ann.get("helm.sh/hook") != "pre-install,pre-upgrade" or int(
                cm_ann.get("helm.sh/hook-weight", 0)
            ) >= int(job_ann["helm.sh/hook-weight"]):
                self.err(self.where(cms[0]), "the streams ConfigMap must be a hook created before the Job")
            spec = jobs[0]["spec"]["template"]["spec"]
            if not any(
                v.get("configMap", {}).get("name") == cms[0]["metadata"]["name"]
                for v in spec.get("volumes", [])
            ):
                self.err(self.where(jobs[0]), "does not mount the streams ConfigMap")
        elif mode == "nack":
            if jobs or cms:
                self.err("streams", "NACK mode renders no hook Job or streams ConfigMap")
            if len(nack) != self.args.expect_stream_count:
                self.err(
                    "streams", f"expected {self.args.expect_stream_count} NACK Streams, rendered {len(nack)}"
                )
            for s in nack:
                if not s["spec"].get("subjects") or not s["spec"].get("name"):
                    self.err(self.where(s), "needs name and subjects")
        elif jobs or cms or nack:
            self.err("streams", "rendered although switched off")

    # ------------------------------------------------------------------------------ test, CNPG

    def tests(self) -> None:
        pods = self.of_kind("Pod")
        if self.args.expect_test != bool(pods):
            self.err("helm test", f"expected the test Pod: {self.args.expect_test}, rendered {len(pods)}")
        for p in pods:
            env = {e["name"]: e for e in p["spec"]["containers"][0].get("env", [])}
            if "gateway" in self.args.deployments and "GOV_GATEWAY_URL" not in env:
                self.err(self.where(p), "GOV_GATEWAY_URL missing")
            if (
                self.args.expect_test_credentials
                and not {"GOV_TEST_CLIENT_ID", "GOV_TEST_CLIENT_SECRET"} <= env.keys()
            ):
                self.err(self.where(p), "client credentials from the Secret missing")

    def cnpg(self) -> None:
        clusters = self.of_kind("Cluster")
        if not self.args.expect_cnpg:
            if clusters or self.of_kind("Database"):
                self.err("CloudNativePG", "rendered although switched off")
            return
        if len(clusters) != 1:
            self.err("CloudNativePG", f"expected one Cluster, rendered {len(clusters)}")
            return
        cluster = clusters[0]
        if cluster["spec"].get("instances") != 3:
            self.err(self.where(cluster), "expected 3 instances")
        owners = {cluster["spec"]["bootstrap"]["initdb"]["owner"]}
        owners |= {d["spec"]["owner"] for d in self.of_kind("Database")}
        roles = {r["name"] for r in cluster["spec"].get("managed", {}).get("roles", [])}
        for d in self.of_kind("Deployment"):
            container = d["spec"]["template"]["spec"]["containers"][0]
            env = {e["name"]: e for e in container.get("env", [])}
            if "GOV_DATABASE_URL" not in env:
                continue
            db = str(env["GOV_DATABASE_URL"].get("value", "")).rpartition("/")[2].partition("?")[0]
            if f"{cluster['metadata']['name']}-rw." not in str(env["GOV_DATABASE_URL"].get("value", "")):
                self.err(self.where(d), "GOV_DATABASE_URL must point at the Cluster's -rw Service")
            if db not in owners:
                self.err(self.where(d), f"database {db!r} has no bootstrap or Database resource")
            if db != cluster["spec"]["bootstrap"]["initdb"]["owner"] and db not in roles:
                self.err(self.where(d), f"role {db!r} not managed by the Cluster")


def anchors(markdown: Path) -> set[str]:
    """GitHub-style anchors of the headings."""
    out = set()
    for line in markdown.read_text().splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(slug)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("manifests", type=Path)
    ap.add_argument("--deployments", type=lambda s: set(filter(None, s.split(","))), required=True)
    ap.add_argument("--migrations", type=lambda s: set(filter(None, s.split(","))), required=True)
    ap.add_argument("--docs", type=Path, required=True, help="docs/operations.md (runbook anchors)")
    ap.add_argument("--metric-names", type=Path, required=True, help="file listing the agreed series names")
    ap.add_argument("--expect-headless", action="store_true")
    ap.add_argument("--expect-metrics", action="store_true")
    ap.add_argument("--expect-monitoring", action="store_true")
    ap.add_argument("--expect-network-policy", action="store_true")
    ap.add_argument("--expect-cnpg", action="store_true")
    ap.add_argument("--expect-test", action="store_true")
    ap.add_argument("--expect-test-credentials", action="store_true")
    ap.add_argument("--expect-streams", choices=["job", "nack", "none"], default="job")
    ap.add_argument("--expect-stream-count", type=int, default=6)
    args = ap.parse_args()
    docs = [json.loads(line) for line in args.manifests.read_text().splitlines() if line.strip()]
    known = set(re.findall(r"`(gov_[a-z0-9_]+)", args.metric_names.read_text()))
    checker = Checker(docs, args)
    checker.workloads()
    checker.services()
    checker.network()
    checker.monitoring(anchors(args.docs), known)
    checker.cnpg()
    for e in checker.errors:
        print(e)
    print(
        f"{len(docs)} manifests, {len(checker.of_kind('Deployment'))} Deployments, "
        f"{len(checker.errors)} problems"
    )
    return 1 if checker.errors else 0


if __name__ == "__main__":
    sys.exit(main())
