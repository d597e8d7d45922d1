"""The great-circle distance between two points given as latitude and longitude (in degrees).

As dbt_utils.haversine_distance: the haversine formula on a sphere of radius 3961 miles,
`2 * 3961 * asin(sqrt(sin²((lat2 - lat1) / 2) + cos(lat1) * cos(lat2) * sin²((lon2 - lon1) /
2)))`, in miles (`unit: mi`, the default) or kilometres (`unit: km`, miles * 1.60934). The four
columns are numbers in degrees; a NULL in any of them gives NULL. The distance is a DOUBLE,
written to `as` (default `distance`): a new column at the end, or an existing one replaced in
its place.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sqlglot import exp

from builder.plan.types import ParamError
from patterns._columns import with_columns
from patterns.base import BuildContext, Pattern
from patterns.fields import OutputName, PatternParams, column_field
from patterns.sql import col, is_number_type, literal

EARTH_RADIUS_MILES = 3961
KM_PER_MILE = 1.60934


class Params(PatternParams):
    lat1: str = column_field("Latitude of the first point, in degrees.")
    lon1: str = column_field("Longitude of the first point, in degrees.")
    lat2: str = column_field("Latitude of the second point, in degrees.")
    lon2: str = column_field("Longitude of the second point, in degrees.")
    unit: Literal["mi", "km"] = Field("mi", description="Miles (mi) or kilometres (km).")
    as_: OutputName = Field("distance", alias="as",
                            description="Name of the distance column.")


def _radians(e: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this="RADIANS", expressions=[e])


def _half_sin_squared(a: str, b: str) -> exp.Expr:
    half = exp.Div(this=exp.paren(exp.Sub(this=col(b), expression=col(a))),
                   expression=literal(2))
    return exp.Pow(this=exp.Anonymous(this="SIN", expressions=[_radians(half)]),
                   expression=literal(2))


def build(p: Params, ctx: BuildContext) -> exp.Query:
    for name in ("lat1", "lon1", "lat2", "lon2"):
        column = getattr(p, name)
        type_ = ctx.input.type_of(column)
        if not is_number_type(type_):
            raise ParamError(name, f"column '{column}' is {type_}, not a number of degrees. "
                             "Cast it first (cast pattern).")
    cosines = exp.Mul(this=exp.Anonymous(this="COS", expressions=[_radians(col(p.lat1))]),
                      expression=exp.Anonymous(this="COS", expressions=[_radians(col(p.lat2))]))
    inner = exp.Add(this=_half_sin_squared(p.lat1, p.lat2),
                    expression=exp.Mul(this=cosines, expression=_half_sin_squared(p.lon1, p.lon2)))
    arc = exp.Anonymous(this="ASIN", expressions=[exp.Sqrt(this=inner)])
    miles = exp.Mul(this=literal(2 * EARTH_RADIUS_MILES), expression=arc)
    distance = miles if p.unit == "mi" else exp.Mul(this=miles, expression=literal(KM_PER_MILE))
    assert p.as_ is not None
    return with_columns(ctx, {p.as_: exp.cast(distance, exp.DataType.build("DOUBLE"))}, "as")


PATTERN = Pattern(
    name="haversine_distance", category="Columns & rows", arity=1, params=Params, build=build,
    doc=__doc__, example={"lat1": "store_lat", "lon1": "store_lon", "lat2": "customer_lat",
                          "lon2": "customer_lon", "unit": "km", "as": "distance_km"},
    keywords=("distance", "geo", "latitude", "longitude", "kilometers", "miles", "gps"),
)
