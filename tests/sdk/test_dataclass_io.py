"""ranker_sdk.dataclass_io: dataclasses to and from mappings, by their field types."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ranker_sdk.dataclass_io import convert, from_dict, to_dict
from ranker_sdk.errors import PackageError
from ranker_sdk.package import PackageConfig

DEFAULT_RANKER_JSON = Path(__file__).resolve().parents[2] / "sdk" / "ranker_sdk" / "default" / "ranker.json"


@dataclass(frozen=True)
class Inner:
    lr: float = 1e-4
    steps: int = 100
    bf16: bool = False


@dataclass(frozen=True)
class Outer:
    name: str
    tags: tuple[str, ...] = ()
    pairs: tuple[tuple[str, int], ...] = ()
    limit: int | None = None
    inner: Inner = field(default_factory=Inner)
    weights: dict[str, float] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    items: list[Inner] = field(default_factory=list)


FULL = {
    "name": "job",
    "tags": ["a", "b"],
    "pairs": [["x", 1], ["y", 2]],
    "limit": 7,
    "inner": {"lr": 0.5, "steps": 3, "bf16": True},
    "weights": {"bm25": 0.25},
    "extra": {"nested": {"free": [1, "form"]}},
    "items": [{"lr": 1.0, "steps": 1, "bf16": False}],
}


def test_round_trip_of_every_supported_type():
    obj = from_dict(Outer, FULL)
    assert obj.pairs == (("x", 1), ("y", 2)) and obj.inner == Inner(0.5, 3, True) and obj.items == [Inner(1.0, 1)]
    assert to_dict(obj) == FULL
    assert list(to_dict(obj)) == [  # field order, so a written file keeps its key order
        "name",
        "tags",
        "pairs",
        "limit",
        "inner",
        "weights",
        "extra",
        "items",
    ]
    assert from_dict(Outer, to_dict(obj)) == obj


def test_defaults_conversions_and_the_single_item_shorthand():
    obj = from_dict(Outer, {"name": 2024, "tags": "solo", "limit": None, "inner": {"lr": "2e-4", "steps": 4.0}})
    assert obj == Outer(name="2024", tags=("solo",), limit=None, inner=Inner(lr=2e-4, steps=4))
    assert type(obj.inner.steps) is int and type(from_dict(Inner, {"lr": 1}).lr) is float


@pytest.mark.parametrize(
    "data,message",
    [
        ({"name": "a", "inner": {"steps": 2.5}}, "Outer: inner.steps: expected int, got 2.5"),
        ({"name": "a", "inner": {"steps": float("inf")}}, "inner.steps: expected int, got inf"),
        ({"name": "a", "inner": {"steps": "many"}}, "inner.steps: expected int, got 'many'"),
        ({"name": "a", "inner": {"bf16": "yes"}}, "inner.bf16: expected true/false, got 'yes'"),
        ({"name": "a", "inner": {"lr": True}}, "inner.lr: expected float, got bool True"),
        ({"name": ["a"]}, r"Outer: name: expected str, got list \['a'\]"),
        ({"name": "a", "tags": 3}, "tags: expected a list, got int 3"),
        ({"name": "a", "pairs": [["x"]]}, r"pairs\[0\]: expected a list of 2 items, got 1"),
        ({"name": "a", "weights": [1]}, "weights: expected a mapping, got list"),
        ({"name": "a", "weights": {"k": "x"}}, "weights.k: expected float, got 'x'"),
        ({"name": "a", "inner": 3}, "inner: expected a mapping of Inner's fields, got int 3"),
        ({"name": "a", "items": [{"lr": []}]}, r"items\[0\].lr: expected float, got list \[\]"),
    ],
)
def test_a_wrong_type_names_the_field_what_it_expects_and_what_came(data, message):
    with pytest.raises(ValueError, match=message):
        from_dict(Outer, data)


def test_unknown_and_missing_keys_name_the_valid_ones():
    with pytest.raises(ValueError, match=r"Outer: inner: unknown key\(s\) \['learning_rate'\]; the valid keys are "):
        from_dict(Outer, {"name": "a", "inner": {"learning_rate": 1}})
    with pytest.raises(ValueError, match=r"cfg.json: missing key\(s\) \['name'\]; the valid keys are \['name', 'tags'"):
        from_dict(Outer, {}, where="cfg.json")
    with pytest.raises(ValueError, match="Outer: expected a mapping of Outer's fields, got list"):
        from_dict(Outer, [])


def test_the_error_class_and_hooks_are_the_callers():
    with pytest.raises(PackageError, match="x.json: limit: expected int"):
        from_dict(Outer, {"name": "a", "limit": "n"}, where="x.json", error=PackageError)
    shorthand = {Inner: lambda v: {"steps": v} if isinstance(v, int) else v}
    assert from_dict(Outer, {"name": "a", "inner": 5}, hooks=shorthand).inner == Inner(steps=5)
    assert convert(tuple[Inner, ...], [5, {"lr": 1}], where="--x", hooks=shorthand) == (Inner(steps=5), Inner(lr=1.0))
    assert to_dict(Outer("a"), hooks={Inner: lambda i: i.steps})["inner"] == 100


def test_an_unsupported_field_type_is_a_programming_error():
    @dataclass(frozen=True)
    class Odd:
        x: int | str = 1

    with pytest.raises(TypeError, match=r"only X \| None unions"):
        from_dict(Odd, {"x": 1})


def test_ranker_json_round_trips_exactly():
    """The bundled default's ranker.json: to_dict(from_dict(d)) == d, key order included."""
    d = json.loads(DEFAULT_RANKER_JSON.read_text(encoding="utf-8"))
    back = PackageConfig.from_dict(d).to_dict()
    assert back == d
    assert json.dumps(back, sort_keys=True) == json.dumps(d, sort_keys=True)
    without_fusion = {k: v for k, v in d.items() if k != "fusion"}
    assert PackageConfig.from_dict(without_fusion).to_dict() == without_fusion  # no "fusion": null appears
