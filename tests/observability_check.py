"""Checks of the observability pack (deploy/observability), used by tests/observability.sh.

  observability_check.py static RULES_DIR DASHBOARD
      The dashboard is well-formed provisioning JSON, and every series name with a colon that
      a panel reads is one the recording rules define (so the panels and the alerts share the
      same queries).
  observability_check.py live PROM_URL RULES_DIR DASHBOARD JOB DEADLINE_S [ALERT,...]
      Against a Prometheus scraping a real hydrant: every rule evaluates without error, and
      each of these returns data: every recording rule's expression, every alert expression
      in its `bool` form (each comparison turned into 0/1, so it answers whether or not the
      alert fires), every raw `hydrant_*` selector the rules use (real names, real labels),
      every dashboard panel query and template-variable query. Retries until DEADLINE_S
      passes (a rate needs two scrapes), then prints every query that stayed empty. The
      ALERTs named last must be pending or firing by then (the traffic made them true).

Expressions are read from the files, never listed here. Needs PyYAML.
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")
RECORDED = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]+")
# A raw selector: a hydrant_ metric name (no colon before or after), optional matchers.
RAW_SELECTOR = re.compile(r"(?<![\w:])(hydrant_[a-z0-9_]+)(?![\w:])(\{[^}]*\})?")


def rules(rules_dir: Path) -> list[dict]:
    out = []
    for path in sorted(rules_dir.glob("*.rules.yml")):
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                out.append({"file": path.name, "group": group["name"], **rule})
    return out


def bool_form(expr: str) -> str:
    """`a > 0.8 and b < 1` -> `a > bool 0.8 and b < bool 1` (outside `{...}` and strings)."""
    out, i, depth, quote = [], 0, 0, None
    while i < len(expr):
        c = expr[i]
        if quote:
            out.append(c)
            if c == "\\" and i + 1 < len(expr):
                out.append(expr[i + 1])
                i += 2
                continue
            if c == quote:
                quote = None
            i += 1
            continue
        if c in "\"'`":
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif depth == 0:
            op = next((o for o in COMPARISONS if expr.startswith(o, i)), None)
            if op and not expr.startswith("=~", i) and not expr.startswith("!~", i):
                out.append(op)
                i += len(op)
                if not re.match(r"\s*bool\b", expr[i:]):
                    out.append(" bool")
                continue
        out.append(c)
        i += 1
    return "".join(out)


def self_test() -> list[str]:
    """The rewriting above, on the shapes the alert rules use."""
    cases = {
        'a < 0.8\nand b > 0.1': 'a < bool 0.8\nand b > bool 0.1',
        'x{route="redirect",s!="0"} > 0.25': 'x{route="redirect",s!="0"} > bool 0.25',
        'i == 0': 'i == bool 0',
        '(a < on () group_left () c) or (b < on () group_left () c)':
            '(a < bool on () group_left () c) or (b < bool on () group_left () c)',
        'a >= bool 1': 'a >= bool 1',
        'y{o=~"rejected_.*"} != 2': 'y{o=~"rejected_.*"} != bool 2',
    }
    return [f"bool_form({k!r}) = {bool_form(k)!r}, want {v!r}" for k, v in cases.items() if bool_form(k) != v]


def panels(dashboard: dict) -> list[dict]:
    found = []
    for p in dashboard.get("panels", []):
        found.append(p)
        found.extend(p.get("panels", []))  # collapsed rows nest their panels
    return found


def template_values(dashboard: dict) -> dict[str, str]:
    """Each query variable's all-value (what the dashboard sends with "All" selected)."""
    values = {}
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            values[v["name"]] = v.get("allValue") or ".+"
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    return expr


def static(rules_dir: Path, dashboard_path: Path) -> list[str]:
    errors = []
    recorded = {r["record"] for r in rules(rules_dir) if "record" in r}
    d = json.loads(dashboard_path.read_text())
    for key in ("uid", "title", "panels", "templating", "schemaVersion"):
        if key not in d:
            errors.append(f"dashboard: no {key!r}")
    if d.get("id") is not None:
        errors.append("dashboard: 'id' must be null for provisioning")
    names = [v.get("name") for v in d.get("templating", {}).get("list", [])]
    if "datasource" not in names:
        errors.append("dashboard: no 'datasource' variable")
    ids = [p.get("id") for p in panels(d)]
    if len(ids) != len(set(ids)) or None in ids:
        errors.append(f"dashboard: panel ids missing or repeated: {ids}")
    queries = 0
    for p in panels(d):
        if p.get("type") == "row":
            continue
        title = p.get("title", "?")
        if "gridPos" not in p:
            errors.append(f"panel {title!r}: no gridPos")
        if p.get("datasource", {}).get("uid") != "${datasource}":
            errors.append(f"panel {title!r}: datasource is not ${{datasource}}")
        targets = p.get("targets") or []
        if not targets:
            errors.append(f"panel {title!r}: no targets")
        for t in targets:
            expr = t.get("expr", "")
            queries += 1
            names_used = set(RECORDED.findall(expr))
            if not names_used:
                errors.append(f"panel {title!r}: {expr!r} reads no recording rule")
            for n in sorted(names_used - recorded):
                errors.append(f"panel {title!r}: {n} is not a recording rule")
            if t.get("datasource", {}).get("uid") != "${datasource}":
                errors.append(f"panel {title!r}: a target's datasource is not ${{datasource}}")
    print(f"dashboard: {len(panels(d))} panels, {queries} queries, {len(recorded)} recording rules")
    return errors


def query(prom: str, expr: str) -> list:
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body}")
    return body["data"]["result"]


def rule_groups(prom: str) -> list:
    with urllib.request.urlopen(f"{prom}/api/v1/rules", timeout=10) as r:
        return json.load(r)["data"]["groups"]


def active_alerts(groups: list) -> set[str]:
    return {a["labels"]["alertname"] for g in groups for rule in g["rules"] for a in rule.get("alerts", [])}


def live(prom: str, rules_dir: Path, dashboard_path: Path, job: str, deadline_s: float,
         expect_active: set[str]) -> list[str]:
    checks: dict[str, str] = {}  # what -> expression
    all_rules = rules(rules_dir)
    for r in all_rules:
        if "record" in r:
            checks[f"recording rule {r['record']} (expression)"] = r["expr"]
            checks[f"recording rule {r['record']} (recorded series)"] = r["record"]
        else:
            checks[f"alert {r['alert']} (bool form)"] = bool_form(r["expr"])
    selectors = sorted({m.group(0) for r in all_rules for m in RAW_SELECTOR.finditer(r["expr"])})
    for s in selectors:
        checks[f"raw selector {s}"] = s
    d = json.loads(dashboard_path.read_text())
    values = template_values(d)
    values["job"] = job
    for p in panels(d):
        for t in p.get("targets") or []:
            checks[f"panel {p.get('title')!r} {t.get('refId')}"] = substitute(t["expr"], values)
    for v in d.get("templating", {}).get("list", []):
        q = v.get("query", "")
        q = q.get("query", "") if isinstance(q, dict) else str(q)
        m = re.match(r"label_values\((.+),\s*\w+\)\s*$", q)
        if v.get("type") == "query" and m:
            checks[f"variable ${v['name']}"] = m.group(1)
    print(f"live: {len(checks)} queries ({len(selectors)} raw selectors)")

    end = time.monotonic() + deadline_s
    empty: dict[str, str] = dict(checks)
    attempt = 0
    groups = rule_groups(prom)
    while attempt < 200:
        attempt += 1
        for what, expr in list(empty.items()):
            if query(prom, expr):
                del empty[what]
        groups = rule_groups(prom)
        done = not empty and expect_active <= active_alerts(groups)
        if done or time.monotonic() >= end:
            break
        time.sleep(1)
    errors = [f"no data: {what}: {expr}" for what, expr in empty.items()]
    for name in sorted(expect_active - active_alerts(groups)):
        errors.append(f"alert {name} is neither pending nor firing, though the traffic made it true")
    loaded = 0
    for g in groups:
        for rule in g["rules"]:
            loaded += 1
            if rule.get("health") != "ok":
                errors.append(f"rule {rule['name']}: health {rule.get('health')}: {rule.get('lastError')}")
    if loaded != len(all_rules):
        errors.append(f"Prometheus loaded {loaded} rules, the files hold {len(all_rules)}")
    firing = sorted(active_alerts(groups))
    print(f"live: {len(checks) - len(empty)}/{len(checks)} queries returned data after {attempt} round(s); "
          f"{loaded} rules loaded; pending or firing now: {', '.join(firing) or 'none'}")
    return errors


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "static":
        errors = self_test() + static(Path(argv[1]), Path(argv[2]))
    elif len(argv) in (6, 7) and argv[0] == "live":
        expect = set(filter(None, argv[6].split(","))) if len(argv) == 7 else set()
        errors = live(argv[1].rstrip("/"), Path(argv[2]), Path(argv[3]), argv[4], float(argv[5]), expect)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for e in errors:
        print(f"FAIL {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
