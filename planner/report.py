"""Plans as text, JSON or markdown (the README's cost section is the markdown of two plans)."""
from __future__ import annotations

from typing import Any

from .capacity import Check, checks
from .model import Plan


def _fmt(value: float, unit: str) -> str:
    if unit == "B/s":
        return f"{value / 1024:,.1f} KiB/s"
    if value >= 100 or float(value).is_integer():
        return f"{value:,.0f} {unit}"
    return f"{value:,.2f} {unit}"


def headline(p: Plan) -> str:
    w, b = p.workload, p.breakdown
    return (f"stack {p.stack}: {w.devices:,} devices, one request every {w.interval_s:g} s, {w.readings} readings of "
            f"{w.reading_bytes} B = {b.readings / w.readings / 1e6:,.1f} M requests and {b.readings / 1e6:,.1f} M "
            f"readings a month")


def render_text(p: Plan) -> str:
    b = p.breakdown
    out = [headline(p), b.render("monthly cost", show_dollars=True)]
    out.append(f"  TOTAL ${sum(ln.dollars for ln in b.lines):,.2f} a month, ${b.total():.4f} per million readings "
               f"(plus storage ${b.storage.per_million:.4f}/M)" if b.storage else "")
    out.append(f"capacity checks (peak = {p.workload.peak_factor:g} x average):")
    for c in checks(p):
        out.append(f"  [{'ok  ' if c.ok else 'warn' if c.advisory else 'NO  '}] {c.name}: {_fmt(c.value, c.unit)} of {_fmt(c.limit, c.unit)} "
                   f"({c.use:.0%}) - {c.compares}" + ("" if c.ok else f"; fix: {c.advice}"))
    cal = p.calibration
    out.append(f"per-request figures measured by `make bench-cost` on {cal['measuredAt']} (commit {cal['commit']}), "
               f"{cal['workload']['readings']:,} readings of {cal['workload']['readingBytes']:g} B")
    return "\n".join(line for line in out if line)


def to_json(p: Plan) -> dict[str, Any]:
    return {"stack": p.stack, "workload": p.workload.__dict__, "cost": p.breakdown.to_json(),
            "monthlyDollars": round(sum(ln.dollars for ln in p.breakdown.lines), 2),
            "capacity": [{"name": c.name, "compares": c.compares, "value": round(c.value, 3), "limit": c.limit,
                          "unit": c.unit, "ok": c.ok, "advisory": c.advisory,
                          "advice": c.advice} for c in checks(p)],
            "calibration": {k: p.calibration[k] for k in ("measuredAt", "commit", "workload")}}


def render_markdown(plans: list[Plan]) -> str:
    """One cost table with a $/month and a $/M column per plan, then each plan's capacity checks."""
    items: list[str] = []
    for p in plans:
        for line in p.breakdown.lines:
            if line.item not in items:
                items.append(line.item)
    head = "| line item | " + " | ".join(f"{p.stack} $/month | {p.stack} $/M readings" for p in plans) + " |"
    rule = "|---|" + "---:|---:|" * len(plans)
    rows = [head, rule]
    for item in items:
        cells = []
        for p in plans:
            line = next((ln for ln in p.breakdown.lines if ln.item == item), None)
            cells.append("" if line is None else f"{line.dollars:,.2f} | {p.breakdown.per_million(line):.4f}")
            if line is None:
                cells[-1] = " | "
        kind = next(ln.kind for p in plans for ln in p.breakdown.lines if ln.item == item)
        rows.append(f"| {item}{' (fixed)' if kind == 'fixed' else ''} | " + " | ".join(cells) + " |")
    rows.append("| **total** | " + " | ".join(
        f"**{sum(ln.dollars for ln in p.breakdown.lines):,.2f}** | **{p.breakdown.total():.4f}**" for p in plans) + " |")
    rows.append("| readings storage over the TTL (not in the total) | " + " | ".join(
        f"{p.breakdown.storage.per_million * p.breakdown.readings / 1e6:,.2f} | {p.breakdown.storage.per_million:.4f}"
        if p.breakdown.storage else " | " for p in plans) + " |")
    out = rows + [""]
    for p in plans:
        s = p.breakdown.storage
        if s is not None:
            out.append(f"- {p.stack}: storage = {s.bytes_per_reading:.0f} B per reading (item bytes + 100 B per item) "
                       f"kept {s.ttl_days} days{' with PITR' if s.pitr else ''}.")
    out.append("")
    for p in plans:
        out.append(f"Capacity checks, {headline(p)} (peak = {p.workload.peak_factor:g} x average):")
        out.append("")
        out.append("| check | compares | value | limit | fits | what to change |")
        out.append("|---|---|---:|---:|---|---|")
        for c in checks(p):
            out.append(f"| {c.name} | {c.compares} | {_fmt(c.value, c.unit)} | {_fmt(c.limit, c.unit)} | "
                       f"{'yes' if c.ok else 'warning' if c.advisory else '**no**'} | {c.advice} |")
        out.append("")
    cal = plans[0].calibration if plans else {}
    if cal:
        out.append("Per-request figures: " + "; ".join(
            f"{p.stack} measured {p.calibration['measuredAt']} at commit {p.calibration['commit']} "
            f"({p.calibration['workload']['readings']:,} readings, {p.calibration['workload']['readingsPerRequest']:g} "
            f"per request, {p.calibration['workload']['readingBytes']:g} B each)" for p in plans) + ".")
    return "\n".join(out).rstrip() + "\n"


def failed(checks_: list[Check]) -> list[Check]:
    """Checks that do not fit and are not merely advisory (they decide ``plan``'s exit code)."""
    return [c for c in checks_ if not c.ok and not c.advisory]
