"""Predictive maintenance of the transformers from the live twin's state and forecast.

- **Loss of life** is the aging of the assimilated hot-spot history (:class:`citytwin.twin.
  thermal.ThermalState`, ``F_AA`` of IEEE C57.91 Clause 5, normal life 180,000 h); **remaining
  life** is what is left of the normal life (less any life already consumed before the twin
  started, ``consumed_h``) at the forecast aging rate ``F_EQA`` of the next hours.
- **Failure-risk ranking**: by the forecast probability of an overload or a hot spot above the
  limit (share of the forecast replications), then by the forecast aging rate.
- **Alerts** when a forecast crosses a limit: ``overload`` (the median replication's loading
  above 100 % of the *effective* rating), ``overload_risk`` (the 95th percentile above it),
  ``hot_spot`` (the 95th percentile above ``hot_spot_c``, 120 °C by default — the hot spot of
  normal-life loading in C57.91's loading-beyond-nameplate limits; 140 °C is long-time emergency).
- **A recommendation per alert**, from the median replication: the kW (and kWh) of EV charging
  at that transformer to shift out of the predicted hours (as much of the excess as its EV
  charging covers), the rest as a load transfer to the nearest transformer of the same feeder
  with that much headroom, and — for feeder relief — the normally-open tie to close towards the
  feeder with the most headroom at the peak (an MV tie moves feeder load; it does not unload
  the MV/LV transformer itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from citytwin.energy.aging import aging_acceleration, hot_spot_steady
from citytwin.energy.engine import COS_PHI

__all__ = ["Limits", "ranking", "alerts"]


@dataclass(frozen=True)
class Limits:
    loading_pct: float = 100.0
    hot_spot_c: float = 120.0


def _p50(a: np.ndarray) -> np.ndarray:
    return np.quantile(a, 0.5, axis=0)


def ranking(asset_ids: list[str], *, thermal: Any, fc: dict[str, np.ndarray], issue_s: float,
            step_s: float, limits: Limits = Limits(),
            consumed_h: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per transformer, ranked by failure risk (``rank`` 1 first); see module
    docstring. ``fc``: the forecast replication arrays (effective loading %, hot spot °C)."""
    L, H = fc["loading"], fc["hot_spot"]
    normal = thermal.params.normal_life_h
    over_p = (L.max(axis=1) > limits.loading_pct).mean(axis=0)
    hot_p = (H.max(axis=1) > limits.hot_spot_c).mean(axis=0)
    f_eqa = aging_acceleration(H).mean(axis=1)  # replications × assets over the horizon
    prior = np.array([(consumed_h or {}).get(a, 0.0) for a in asset_ids])
    used = prior + thermal.aged_h
    rate = np.quantile(f_eqa, 0.5, axis=0)
    with np.errstate(divide="ignore"):
        remaining_y = np.where(rate > 0, (normal - used) / rate / 8760.0, np.inf)
    df = pd.DataFrame({
        "issue_s": float(issue_s), "asset_id": asset_ids, "rating_factor_g": thermal.g,
        "rating_factor_g_sd": thermal.g_sd(), "loss_of_life_h": thermal.aged_h,
        "tracked_h": thermal.tracked_h,
        "max_hot_spot_c": np.where(np.isfinite(thermal.max_hot_spot_c), thermal.max_hot_spot_c,
                                   np.nan),
        "forecast_max_loading_pct_p50": _p50(L.max(axis=1)),
        "forecast_max_hot_spot_c_p95": np.quantile(H.max(axis=1), 0.95, axis=0),
        "forecast_f_eqa_p50": rate, "remaining_life_y": np.maximum(remaining_y, 0.0),
        "overload_probability": over_p, "hot_spot_probability": hot_p,
    })
    df["risk"] = np.maximum(over_p, hot_p)
    df = df.sort_values(["risk", "forecast_f_eqa_p50", "asset_id"], ascending=[False, False, True],
                        kind="stable").reset_index(drop=True)
    df["rank"] = np.arange(1, len(df) + 1)
    return df


def _clock(start: pd.Timestamp, t_s: float) -> str:
    return (start + pd.Timedelta(seconds=float(t_s))).strftime("%H:%M")


def _max_load_factor(limit_c: float, ambient_c: float, params: Any) -> float:
    """The steady load factor whose hot spot is ``limit_c`` at ``ambient_c``."""
    k = np.linspace(0.0, 3.0, 3001)
    h = hot_spot_steady(k, ambient_c, params)
    return float(np.interp(limit_c, h, k)) if h[-1] > limit_c else 3.0


def alerts(asset_ids: list[str], *, setup: Any, thermal: Any, fc: dict[str, np.ndarray],
           issue_s: float, limits: Limits = Limits(), ambient_c: np.ndarray | None = None
           ) -> pd.DataFrame:
    """Alerts of one forecast with their recommendations (see module docstring)."""
    L, H, ev = fc["loading"], fc["hot_spot"], fc["ev_kw"]
    t = fc["time_s"]
    dt_h = setup.dt_s / 3600.0
    G = setup.city.power
    kva = setup.ratings_kva() / np.maximum(thermal.g, 1e-6)  # effective ratings
    feeder = np.array([str(G.nodes[a].get("feeder", "")) for a in asset_ids], dtype=object)
    xy = np.array([[float(G.nodes[a].get("x", 0.0)), float(G.nodes[a].get("y", 0.0))]
                   for a in asset_ids])
    ties = sorted((str(d.get("element_id")), str(G.nodes[u].get("feeder", "")),
                   str(G.nodes[v].get("feeder", ""))) for u, v, d in G.edges(data=True)
                  if d.get("kind") == "tie")
    L50, ev50 = _p50(L), _p50(ev)
    L95, H95 = np.quantile(L, 0.95, axis=0), np.quantile(H, 0.95, axis=0)
    amb = np.asarray(ambient_c, float) if ambient_c is not None else np.full(len(t), 20.0)
    rows: list[dict[str, Any]] = []
    for j, a in enumerate(asset_ids):
        checks = (("overload", L50[:, j] > limits.loading_pct, L50[:, j]),
                  ("overload_risk", L95[:, j] > limits.loading_pct, L95[:, j]),
                  ("hot_spot", H95[:, j] > limits.hot_spot_c, H95[:, j]))
        for kind, hit, value in checks:
            if not hit.any():
                continue
            if kind == "overload_risk" and (L50[:, j] > limits.loading_pct).any():
                continue  # the overload alert says it
            if kind == "hot_spot":
                k_max = np.array([_max_load_factor(limits.hot_spot_c, x, thermal.params)
                                  for x in amb])
                excess_pct = np.maximum(L50[:, j] - 100.0 * k_max, 0.0)
            else:
                excess_pct = np.maximum(L50[:, j] - limits.loading_pct, 0.0)
            excess_kw = excess_pct / 100.0 * kva[j] * COS_PHI
            shift = np.minimum(excess_kw, np.maximum(ev50[:, j], 0.0))
            residual = float((excess_kw - shift).max())
            first = int(np.argmax(hit))
            last = int(len(hit) - 1 - np.argmax(hit[::-1]))
            peak = int(np.argmax(value))
            # load transfer: nearest transformer of the feeder with the headroom at the peak
            head = kva * (1.0 - L50[peak] / 100.0) * COS_PHI
            cand = [k for k in range(len(asset_ids)) if k != j and feeder[k] == feeder[j]
                    and head[k] > 0]
            cand.sort(key=lambda k: (float(np.hypot(*(xy[k] - xy[j]))), asset_ids[k]))
            enough = [k for k in cand if head[k] >= residual]
            to = (enough or sorted(cand, key=lambda k: -head[k]))[:1]
            fh = {f: float(head[feeder == f].sum()) for f in set(feeder.tolist())}
            tie_opts = [(fh.get(fb if fa == feeder[j] else fa, 0.0), tid,
                         fb if fa == feeder[j] else fa) for tid, fa, fb in ties
                        if feeder[j] in (fa, fb) and fa != fb]
            tie_opts.sort(key=lambda x: (-x[0], x[1]))
            tie = tie_opts[0] if tie_opts else None
            t0s, t1s = float(t[first] - setup.dt_s), float(t[last])
            text = [f"{kind} of {a} predicted {_clock(setup.start, t0s)}–"
                    f"{_clock(setup.start, t1s)} (peak {float(value[peak]):.0f} "
                    f"{'°C' if kind == 'hot_spot' else '%'})"]
            if shift.max() > 0:
                text.append(f"shift {shift.max():.0f} kW ({shift.sum() * dt_h:.0f} kWh) of EV "
                            f"charging out of those hours")
            if residual > 0.5 and to:
                text.append(f"transfer {residual:.0f} kW to {asset_ids[to[0]]} "
                            f"({head[to[0]]:.0f} kW free at the peak)")
            if tie is not None:
                text.append(f"feeder relief: close {tie[1]} towards {tie[2]} "
                            f"({tie[0]:.0f} kW free)")
            rows.append({"issue_s": float(issue_s), "asset_id": a, "kind": kind,
                         "first_s": t0s, "until_s": t1s, "lead_h": (t0s - issue_s) / 3600.0,
                         "peak": float(value[peak]), "ev_shift_kw": float(shift.max()),
                         "ev_shift_kwh": float(shift.sum() * dt_h), "residual_kw": residual,
                         "transfer_to": asset_ids[to[0]] if to else None,
                         "tie": tie[1] if tie else None, "recommendation": "; ".join(text)})
    cols = ["issue_s", "asset_id", "kind", "first_s", "until_s", "lead_h", "peak",
            "ev_shift_kw", "ev_shift_kwh", "residual_kw", "transfer_to", "tie", "recommendation"]
    return pd.DataFrame(rows, columns=cols)
