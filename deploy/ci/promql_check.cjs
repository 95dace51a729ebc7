// Parses every PromQL expression of the rendered manifests (PrometheusRule rules, Grafana panel
// targets) with Prometheus' own lezer grammar; a syntax error anywhere fails.
// usage: NODE_PATH=<dir>/node_modules node promql_check.cjs MANIFESTS.jsonl
"use strict";
const fs = require("fs");
const { parser } = require("@prometheus-io/lezer-promql");

const exprs = [];
for (const line of fs.readFileSync(process.argv[2], "utf8").split("\n")) {
  if (!line.trim()) continue;
  const doc = JSON.parse(line);
  if (doc.kind === "PrometheusRule") {
    for (const group of doc.spec.groups) {
      for (const rule of group.rules) exprs.push([`${doc.metadata.name}/${rule.alert || rule.record}`, String(rule.expr)]);
    }
  }
  if (doc.kind === "ConfigMap") {
    for (const [key, text] of Object.entries(doc.data || {})) {
      if (!key.endsWith(".json")) continue;
      let board;
      try { board = JSON.parse(text); } catch { continue; }
      for (const panel of board.panels || []) {
        for (const target of panel.targets || []) {
          // Grafana's interval variable is substituted before Prometheus sees the query
          exprs.push([`${key}/${panel.title}`, target.expr.replaceAll("$__rate_interval", "5m")]);
        }
      }
    }
  }
}
let bad = 0;
for (const [where, expr] of exprs) {
  const errors = [];
  parser.parse(expr).iterate({ enter: (n) => { if (n.type.isError) errors.push(n.from); } });
  if (errors.length) {
    bad += 1;
    console.log(`${where}: PromQL syntax error at offset ${errors[0]}: ${expr}`);
  }
}
console.log(`${exprs.length} PromQL expressions, ${bad} with syntax errors`);
process.exit(bad || exprs.length === 0 ? 1 : 0);
