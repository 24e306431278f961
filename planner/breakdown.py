"""A cost broken down by line item, per million readings: the shape shared by the meter's
run report (``planner.costing``) and the planner's monthly estimate (``planner.model``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

HOURS_PER_MONTH = 730  # AWS's pricing pages use 730 hours a month
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
GB = 1024 ** 3  # billing GB: 2^30 bytes
DAYS_PER_MONTH = 365 / 12

Kind = Literal["usage", "fixed"]


@dataclass(frozen=True)
class Line:
    item: str
    quantity: float
    unit: str
    dollars: float  # for the period the breakdown covers (a run, or a month)
    kind: Kind = "usage"
    note: str = ""


@dataclass(frozen=True)
class Storage:
    """Keeping the readings for their TTL, as a cost per million readings (not part of ingest)."""

    bytes_per_reading: float  # item bytes + DynamoDB's 100 B per item, per reading
    ttl_days: int
    pitr: bool
    per_million: float


@dataclass
class Breakdown:
    readings: float
    lines: list[Line]
    period: str  # "run of 62 s" or "month"
    monthly_readings: float  # the rate fixed costs are amortised at
    storage: Storage | None = None
    notes: list[str] = field(default_factory=list)

    def per_million(self, line: Line) -> float:
        return line.dollars / self.readings * 1e6 if self.readings else 0.0

    def total(self, kind: Kind | None = None) -> float:
        """$ per million readings of the given kind (None: everything but storage)."""
        return sum(self.per_million(ln) for ln in self.lines if kind is None or ln.kind == kind)

    def to_json(self) -> dict[str, Any]:
        return {
            "readings": self.readings,
            "period": self.period,
            "monthlyReadings": round(self.monthly_readings),
            "perMillionReadings": {"usage": round(self.total("usage"), 4), "fixed": round(self.total("fixed"), 4),
                                   "total": round(self.total(), 4)},
            "lines": [{"item": ln.item, "kind": ln.kind, "quantity": round(ln.quantity, 3), "unit": ln.unit,
                       "dollars": round(ln.dollars, 6), "perMillionReadings": round(self.per_million(ln), 4),
                       "note": ln.note} for ln in self.lines],
            "storage": None if self.storage is None else {
                "bytesPerReading": round(self.storage.bytes_per_reading, 1), "ttlDays": self.storage.ttl_days,
                "pointInTimeRecovery": self.storage.pitr,
                "perMillionReadings": round(self.storage.per_million, 4)},
            "notes": self.notes,
        }

    def render(self, title: str = "cost per million readings", show_dollars: bool = False) -> str:
        """A text table; ``show_dollars`` adds the period's dollars before the $/M column."""
        def cells(ln: Line) -> tuple[str, str, str, str]:
            per_m = f"{self.per_million(ln):.4f}"
            return (ln.item, f"{_qty(ln.quantity)} {ln.unit}",
                    f"{ln.dollars:>10,.2f}  {per_m:>8}" if show_dollars else per_m, ln.note)

        rows = [cells(ln) for ln in self.lines if ln.kind == "usage"]
        fixed = [cells(ln) for ln in self.lines if ln.kind == "fixed"]
        width = max([len(r[0]) for r in rows + fixed] + [16])
        qwidth = max([len(r[1]) for r in rows + fixed] + [8])
        head = f"{'$/' + self.period:>10}  $/M readings" if show_dollars else "$/M readings"
        out = [f"{title} ({self.period}, {self.readings:,.0f} readings)",
               f"  {'line item'.ljust(width)}  {'quantity'.ljust(qwidth)}  {head}"]
        out += [f"  {a.ljust(width)}  {b.ljust(qwidth)}  {c:>8}" + (f"  {d}" if d else "") for a, b, c, d in rows]
        def total(label: str, kind: Kind | None) -> str:
            dollars = sum(ln.dollars for ln in self.lines if kind is None or ln.kind == kind)
            value = (f"{dollars:>10,.2f}  {self.total(kind):>8.4f}" if show_dollars else f"{self.total(kind):>8.4f}")
            return f"  {label.ljust(width)}  {''.ljust(qwidth)}  {value}"

        out.append(total("per-use subtotal", "usage"))
        if fixed:
            out.append(f"  fixed monthly costs, amortised over {self.monthly_readings / 1e6:,.1f} M readings a month:")
            out += [f"  {a.ljust(width)}  {b.ljust(qwidth)}  {c:>8}" + (f"  {d}" if d else "") for a, b, c, d in fixed]
            out.append(total("fixed subtotal", "fixed"))
        out.append(total("TOTAL", None))
        if self.storage is not None:
            s = self.storage
            out.append(f"  readings storage over the {s.ttl_days}-day TTL{' with PITR' if s.pitr else ''}: "
                       f"{s.bytes_per_reading:.0f} B per reading -> ${s.per_million:.4f} per M readings (not in TOTAL)")
        out += [f"  note: {n}" for n in self.notes]
        return "\n".join(out)


def _qty(value: float) -> str:
    if 0 < abs(value) < 1:
        return f"{value:.3g}"
    if value >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def storage_cost(bytes_per_reading: float, ttl_days: int, pitr: bool, storage_price: float,
                 pitr_price: float) -> Storage:
    """Each reading is kept ``ttl_days``: GB-months per million readings times the storage (+PITR) price."""
    gb_months = bytes_per_reading * 1e6 / GB * ttl_days / DAYS_PER_MONTH
    return Storage(bytes_per_reading, ttl_days, pitr, gb_months * (storage_price + (pitr_price if pitr else 0.0)))
