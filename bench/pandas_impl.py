"""Pipelines A and B in pandas: what a tool that loads data frames does.

``python -m bench.pandas_impl a|b DATA_DIR OUT`` reads the parquet files, computes the same
result as the Dockyard pipeline and the hand-written SQL, and writes it as parquet.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def pipeline_a(data: Path) -> pd.DataFrame:
    clicks = pd.read_parquet(data / "clicks.parquet",
                             columns=["event_id", "user_id", "ts", "ingested_at"])
    # dedupe: the first delivery of each event
    clicks = clicks.sort_values(["event_id", "ingested_at"], kind="stable")
    clicks = clicks.drop_duplicates("event_id", keep="first")
    # sessionize: a gap over 30 minutes starts a new session
    c = clicks.sort_values(["user_id", "ts"], kind="stable")
    prev = c.groupby("user_id", sort=False)["ts"].shift()
    new = prev.isna() | ((c["ts"] - prev) > pd.Timedelta(minutes=30))
    c = c.assign(session_no=new.astype("int64").groupby(c["user_id"], sort=False).cumsum())
    # join users, daily aggregate
    users = pd.read_parquet(data / "users.parquet", columns=["user_id", "country"])
    c = c.merge(users, on="user_id", how="left")
    c["day"] = c["ts"].dt.normalize()
    daily = (c.groupby(["user_id", "country", "day"], dropna=False, sort=False)
              .agg(events=("ts", "size"), sessions=("session_no", "nunique"))
              .reset_index())
    # 7-row rolling sums per user
    daily = daily.sort_values(["user_id", "day"], kind="stable").reset_index(drop=True)
    g = daily.groupby("user_id", sort=False)
    for column in ("events", "sessions"):
        rolled = g[column].rolling(7, min_periods=1).sum()
        daily[f"{column}_7d"] = rolled.reset_index(level=0, drop=True).astype("int64")
    # the expect step's checks
    bad = (daily["user_id"].isna() | daily["day"].isna() | (daily["events"] < 1)
           | (daily["events_7d"] < daily["events"]))
    if bad.any() or daily.duplicated(["user_id", "day"]).any():
        raise SystemExit("check failed")
    daily["day"] = daily["day"].dt.date
    return daily[["user_id", "country", "day", "events", "sessions", "events_7d",
                  "sessions_7d"]]


def pipeline_b(data: Path) -> pd.DataFrame:
    snap = pd.read_parquet(data / "product_snapshots.parquet")
    snap["snapshot_date"] = pd.to_datetime(snap["snapshot_date"])
    snap = snap.sort_values(["product_id", "snapshot_date"], kind="stable")
    prev = snap.groupby("product_id", sort=False)[["price", "name", "category",
                                                    "snapshot_date"]].shift()
    same = ((prev["price"] == snap["price"]) & (prev["name"] == snap["name"])
            & (prev["category"] == snap["category"])
            & (prev["snapshot_date"] == snap["snapshot_date"] - pd.Timedelta(days=1)))
    snap["version"] = (~same).astype("int64").groupby(snap["product_id"], sort=False).cumsum()
    runs = (snap.groupby(["product_id", "version"], sort=False)
                .agg(category=("category", "first"), price=("price", "first"),
                     valid_from=("snapshot_date", "min"), last_seen=("snapshot_date", "max"))
                .reset_index()
                .sort_values(["product_id", "valid_from"], kind="stable"))
    runs["valid_to"] = runs.groupby("product_id", sort=False)["valid_from"].shift(-1)
    deleted = runs["valid_to"].isna() & (runs["last_seen"] < snap["snapshot_date"].max())
    runs.loc[deleted, "valid_to"] = runs.loc[deleted, "last_seen"] + pd.Timedelta(days=1)

    orders = pd.read_parquet(data / "orders.parquet",
                             columns=["order_id", "user_id", "product_id", "ordered_at",
                                      "quantity", "amount"])
    m = orders[["order_id", "product_id", "ordered_at"]].merge(
        runs[["product_id", "category", "price", "valid_from", "valid_to"]], on="product_id")
    hit = (m["ordered_at"] >= m["valid_from"]) & (
        m["valid_to"].isna() | (m["ordered_at"] < m["valid_to"]))
    m = m.loc[hit, ["order_id", "category", "price"]].rename(columns={"price": "unit_price"})
    out = orders.merge(m, on="order_id", how="left")
    out["list_value"] = (out["quantity"] * out["unit_price"]).round(2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("pipeline", choices=["a", "b"])
    ap.add_argument("data", type=Path)
    ap.add_argument("out", type=Path)
    a = ap.parse_args()
    df = pipeline_a(a.data) if a.pipeline == "a" else pipeline_b(a.data)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(a.out, index=False, compression="zstd")


if __name__ == "__main__":
    main()
