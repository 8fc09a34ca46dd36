"""The encoder families the toolkit supports, keyed by config.model_type (one module each, base.Family).

    family_of(config)            the Family of a config (or a model_type string); a structurally pruned
                                 export ("pruned-bert", ...) belongs to the family it was exported from
    SUPPORTED                    the supported model_types

Adding a family that follows an existing layout is one module here (its Family: anatomy, input names,
stock classification class and head mapping) plus one line in FAMILIES (README: "Adding an encoder family").
"""
from data_utils.errors import UserError
from modeling.families import bert, deberta_v2, distilbert, electra, roberta
from modeling.families.base import INPUT_NAMES, Family, PrunedClasses

FAMILIES = {family.model_type: family for family in (
    bert.FAMILY,
    roberta.FAMILY,
    electra.FAMILY,
    distilbert.FAMILY,
    deberta_v2.FAMILY,
)}
SUPPORTED = tuple(FAMILIES)
PRUNED = {family.pruned.model_type: family for family in FAMILIES.values() if family.pruned is not None}

__all__ = ["FAMILIES", "INPUT_NAMES", "PRUNED", "SUPPORTED", "Family", "PrunedClasses", "family_of",
           "is_pruned_export"]


def family_of(config, source: str = "the model") -> Family:
    """The Family of `config` (a transformers config or a model_type); a one-line UserError naming the model
    type and the supported ones otherwise. `source` names the model in that message (e.g. the flag and path)."""
    model_type = config if isinstance(config, str) or config is None else getattr(config, "model_type", None)
    family = FAMILIES.get(model_type) or PRUNED.get(model_type)
    if family is None:
        raise UserError(f"{source}: model type {model_type!r} is not a supported encoder family; supported: "
                        f"{', '.join(SUPPORTED)}")
    return family


def is_pruned_export(config) -> bool:
    """Whether `config` (or a model_type) is a structurally pruned export's ("pruned-bert", ...)."""
    model_type = config if isinstance(config, str) else getattr(config, "model_type", None)
    return model_type in PRUNED
