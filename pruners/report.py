"""Sparsity report of the prunable parameters: what fraction of each is still non-zero.

`sparsity_report(model)` returns a JSON-ready dict:

    {"target_substrings": [...],
     "rows": [{"name", "layer", "module_type", "numel", "zeros", "remaining_ratio"}, ...],
     "overall": {"numel", "zeros", "remaining_ratio"},
     "per_layer": {"0": {...}, "1": {...}, ..., "none": {...}},     # parameters outside numbered layers
     "per_module_type": {"query": {...}, "key": ..., "value": ..., "attention.output": ...,
                         "intermediate": ..., "output": ...}}

remaining_ratio = 1 − zeros/numel. `format_report(report)` renders it as a table,
`dump_json(report, path)` writes it.
"""
import json
from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from pruners.anatomy import PRUNABLE_SUBSTRINGS as DEFAULT_TARGET_SUBSTRINGS
from pruners.anatomy import check_target_substrings, layer_index, module_type, select_parameters


def _summary(numel: int, zeros: int) -> dict:
    return {"numel": numel, "zeros": zeros, "remaining_ratio": 1 - zeros / numel if numel else 1.0}


@torch.no_grad()
def sparsity_report(model: nn.Module, target_substrings: Sequence[str] = DEFAULT_TARGET_SUBSTRINGS) -> dict:
    """Per-parameter, overall, per-layer and per-module-type counts of zeros of the selected parameters."""
    rows = []
    target_substrings = check_target_substrings(target_substrings)     # once: it may be an iterator
    for name, param in select_parameters(model, target_substrings):
        zeros = int(torch.count_nonzero(param == 0))
        layer = layer_index(name)
        rows.append({"name": name, "layer": layer, "module_type": module_type(name), "numel": param.numel(),
                     "zeros": zeros, "remaining_ratio": _summary(param.numel(), zeros)["remaining_ratio"]})

    def aggregate(key) -> dict:
        totals = OrderedDict()
        for row in rows:
            group = key(row)
            numel, zeros = totals.get(group, (0, 0))
            totals[group] = (numel + row["numel"], zeros + row["zeros"])
        return {group: _summary(*counts) for group, counts in totals.items()}

    return {"target_substrings": list(target_substrings), "rows": rows,
            "overall": _summary(sum(r["numel"] for r in rows), sum(r["zeros"] for r in rows)),
            "per_layer": aggregate(lambda row: "none" if row["layer"] is None else str(row["layer"])),
            "per_module_type": aggregate(lambda row: row["module_type"])}


def format_report(report: dict, per_parameter: bool = False) -> str:
    """A printable table: per module type, per layer, overall (and every parameter if asked)."""
    lines = []

    def table(title, groups):
        groups = list(groups)
        width = max([len(title)] + [len(str(group)) for group, _ in groups])
        lines.append(f"{title:<{width}} {'entries':>12} {'zeros':>12} {'remaining':>9}")
        for group, row in groups:
            lines.append(f"{group:<{width}} {row['numel']:>12,} {row['zeros']:>12,} {row['remaining_ratio']:>9.4f}")
        lines.append("")

    if per_parameter:
        table("parameter", [(r["name"], r) for r in report["rows"]])
    table("module type", report["per_module_type"].items())
    table("layer", report["per_layer"].items())
    table("overall", [("all selected parameters", report["overall"])])
    return "\n".join(lines).rstrip()


def dump_json(report: dict, path: str) -> None:
    """Write the report as indented JSON."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
        handle.write("\n")
