"""Training checkpoints: the whole state of a run, written atomically, without pickle.

A checkpoint is a directory `checkpoint-<update>/` holding
- `state.safetensors`: every tensor (model and heads, optimizer moments,
  pruner state, torch RNG states);
- `state.json`: everything else (step, sampler position, LR schedule, Python
  and NumPy RNG states, resolved config, pruner scalars), with each tensor
  replaced by a reference `{"__tensor__": key}` into the safetensors file.

It is written to a uniquely named hidden sibling and renamed into place
(data_utils.files.write_directory), so a crash
or a full disk never leaves a half-written checkpoint under the final name and
never touches the previous one. Loading reads only safetensors and JSON.
The id of the run that wrote it is in the safetensors header's metadata
(`run_id`), so that rotation (`keep`) only ever deletes this run's checkpoints.
"""
import json
import math
import os
import re

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from data_utils.errors import UserError
from data_utils.files import remove_directory, write_directory

STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"
REQUIRED_KEYS = ("loop", "config", "model", "optimizer", "lr_schedule", "rng", "rng_per_rank")
_NAME = re.compile(r"^checkpoint-(\d+)$")


def flatten(obj, tensors: dict, prefix: str = "t"):
    """A JSON-able skeleton of `obj`, moving its tensors into `tensors` under unique keys."""
    if isinstance(obj, torch.Tensor):
        key = f"{prefix}.{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {"__dict__": {k: flatten(v, tensors, prefix) for k, v in obj.items()}}
        return {"__items__": [[k, flatten(v, tensors, prefix)] for k, v in obj.items()]}   # int keys (optimizers)
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten(v, tensors, prefix) for v in obj]}
    if isinstance(obj, list):
        return [flatten(v, tensors, prefix) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (int, float, bool, str)):   # numpy arrays and scalars
        return {"__numpy__": obj.tolist(), "dtype": str(obj.dtype)}
    if obj is None or isinstance(obj, (int, float, bool, str)):
        return obj
    raise TypeError(f"cannot checkpoint a value of type {type(obj).__name__}")


def unflatten(skeleton, tensors: dict):
    """Inverse of `flatten`."""
    if isinstance(skeleton, list):
        return [unflatten(v, tensors) for v in skeleton]
    if not isinstance(skeleton, dict):
        return skeleton
    if "__tensor__" in skeleton:
        return tensors[skeleton["__tensor__"]]
    if "__dict__" in skeleton:
        return {k: unflatten(v, tensors) for k, v in skeleton["__dict__"].items()}
    if "__items__" in skeleton:
        return {k: unflatten(v, tensors) for k, v in skeleton["__items__"]}
    if "__tuple__" in skeleton:
        return tuple(unflatten(v, tensors) for v in skeleton["__tuple__"])
    if "__numpy__" in skeleton:
        import numpy as np
        return np.asarray(skeleton["__numpy__"], dtype=skeleton["dtype"])
    raise ValueError(f"unknown checkpoint entry with keys {sorted(skeleton)}")


def save_checkpoint(output_dir: str, step: int, state: dict, keep: int = 0, run_id: str | None = None,
                    protect=()) -> str:
    """Write `state` as `output_dir/checkpoint-<step>/` atomically, marked with `run_id`; keep the newest
    `keep` (0: all) of the checkpoints marked with the same `run_id` (other runs' are never deleted, nor the
    checkpoints in `protect`: the one --model_ckpt names, a user's input)."""
    final = os.path.join(output_dir, f"checkpoint-{step}")
    tensors = {}
    skeleton = flatten(state, tensors)

    def fill(tmp):
        save_file(tensors, os.path.join(tmp, STATE_TENSORS), metadata={"run_id": run_id} if run_id else None)
        with open(os.path.join(tmp, STATE_JSON), "w", encoding="utf-8") as handle:
            json.dump(skeleton, handle)
            handle.flush()
            os.fsync(handle.fileno())

    def failure(reason):
        previous = latest_checkpoint(output_dir)
        return (f"could not write checkpoint {final} ({reason}); "
                f"{'the previous checkpoint ' + previous + ' is intact' if previous else 'no earlier checkpoint'}"
                "; free space or choose another --output_dir, then rerun with --resume")

    # checkpoint-<step> of this run's directory: the run owns it (a resumed run rewrites its own step)
    write_directory(final, fill, existing="replace", failure_hint=failure)
    if keep > 0:
        kept = {os.path.realpath(path) for path in protect if path}
        for old in [path for path in list_checkpoints(output_dir) if checkpoint_run_id(path) == run_id][:-keep]:
            if os.path.realpath(old) not in kept:
                remove_directory(old)         # renamed first: a kill midway leaves scratch, not half a checkpoint
    return final


def checkpoint_run_id(path: str):
    """The run id a checkpoint directory was written with (None: none recorded); "" if unreadable."""
    try:
        with safe_open(os.path.join(path, STATE_TENSORS), "pt") as handle:
            return (handle.metadata() or {}).get("run_id")
    except Exception:  # noqa: BLE001 - an unreadable checkpoint belongs to no run we could name
        return ""


def list_checkpoints(output_dir: str) -> list:
    """Complete checkpoints in `output_dir`, oldest first."""
    if not os.path.isdir(output_dir):
        return []
    found = []
    for name in os.listdir(output_dir):
        match = _NAME.match(name)
        if match and os.path.isfile(os.path.join(output_dir, name, STATE_JSON)):
            found.append((int(match.group(1)), os.path.join(output_dir, name)))
    return [path for _, path in sorted(found)]


def latest_checkpoint(output_dir: str):
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def load_checkpoint(path: str) -> dict:
    """Read a checkpoint directory; a missing or corrupt one is a UserError naming it."""
    tensors_path, json_path = os.path.join(path, STATE_TENSORS), os.path.join(path, STATE_JSON)
    if not (os.path.isfile(tensors_path) and os.path.isfile(json_path)):
        raise UserError(f"checkpoint {path}: missing {STATE_TENSORS} or {STATE_JSON}; "
                        "point --model_ckpt at a checkpoint-<update> directory written by train.py")
    reading = STATE_JSON
    try:
        with open(json_path, encoding="utf-8") as handle:
            skeleton = json.load(handle)
        reading = STATE_TENSORS
        tensors = load_file(tensors_path)
        reading = f"{STATE_JSON} (a tensor reference)"
        state = unflatten(skeleton, tensors)
    except RecursionError:       # json and unflatten recurse once per level: no state of ours is that deep
        raise UserError(f"checkpoint {json_path}: nested too deeply to be a training state written by train.py; "
                        "resume from an earlier checkpoint-<update> with --model_ckpt") from None
    except Exception as err:  # noqa: BLE001 - any decoding failure means a corrupt user file
        raise UserError(f"checkpoint {path}: corrupt or unreadable {reading} ({type(err).__name__}: "
                        f"{' '.join(str(err).split())[:120]}); resume from an earlier checkpoint-<update> "
                        "with --model_ckpt") from None
    missing = [key for key in REQUIRED_KEYS if key not in state] if isinstance(state, dict) else list(REQUIRED_KEYS)
    if missing:
        raise UserError(f"checkpoint {path}: {STATE_JSON} lacks {', '.join(missing)}; not a training state written by "
                        "train.py: resume from an earlier checkpoint-<update> with --model_ckpt")
    check_layout(state, path)
    return state


# ---- checking a loaded state: what any training state must look like, whatever run resumes it
# (training.run_state checks it against the run: its length, parameters, optimizer and methods)

def refuse(path: str, key: str, problem: str, file: str = STATE_JSON):
    """The one-line refusal of a checkpoint, naming its file and the key at fault."""
    raise UserError(f"checkpoint {os.path.join(path, file)}: {key} {problem}; resume from an earlier "
                    "checkpoint-<update> with --model_ckpt")


def is_count(value) -> bool:
    """A whole number >= 0 (not a bool, which JSON would also give for true/false)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def leaves(obj, key: str = ""):
    """(dotted key, value) of every value below `obj` that is not a dict, list or tuple."""
    if isinstance(obj, (dict, list, tuple)):
        for name, value in obj.items() if isinstance(obj, dict) else enumerate(obj):
            yield from leaves(value, f"{key}.{name}" if key else str(name))
    else:
        yield key, obj


def check_layout(state: dict, path: str) -> None:
    """Refuse a state whose entries are not what train.py writes: the loop's position (update, epoch, next
    batch) not counts, a config that is not flat flag values, a model that is not named tensors, an optimizer
    or LR schedule that is not a state_dict, RNG states their generators refuse, or a non-finite tensor."""
    loop = state["loop"]
    if not isinstance(loop, dict):
        refuse(path, "loop", f"is a {type(loop).__name__}, not a mapping")
    for key in ("global_step", "epoch", "next_batch"):
        if not is_count(loop.get(key)):
            refuse(path, f"loop.{key}", f"is {loop.get(key)!r}, not a count (a whole number >= 0)")
    config = state["config"]
    if not isinstance(config, dict):
        refuse(path, "config", f"is a {type(config).__name__}, not a mapping of flag values")
    for key, value in config.items():
        if value is not None and not isinstance(value, (bool, int, float, str)):
            refuse(path, f"config.{key}", f"is a {type(value).__name__}, not a flag value")
    model = state["model"]
    if not isinstance(model, dict) or not model or \
            not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in model.items()):
        refuse(path, "model", "is not a mapping of parameter names to tensors")
    optimizer = state["optimizer"]
    if not isinstance(optimizer, dict) or not isinstance(optimizer.get("state"), dict) or \
            not isinstance(optimizer.get("param_groups"), list) or \
            not all(isinstance(group, dict) and isinstance(group.get("params"), list)
                    for group in optimizer["param_groups"]):
        refuse(path, "optimizer", "is not an optimizer state_dict (state and param_groups with params)")
    for index, entry in optimizer["state"].items():
        if not is_count(index) or not isinstance(entry, dict):
            refuse(path, f"optimizer.state.{index}", "is not a parameter's state (a mapping under its index)")
    if not isinstance(state["lr_schedule"], dict):
        refuse(path, "lr_schedule", "is not an LR schedule state_dict (a mapping)")
    per_rank = state["rng_per_rank"]
    if not isinstance(per_rank, list) or not per_rank:
        refuse(path, "rng_per_rank", "is not a list of one RNG state per process")
    for key, rng in (("rng", state["rng"]), *((f"rng_per_rank.{i}", s) for i, s in enumerate(per_rank))):
        problem = rng_state_problem(rng)
        if problem:
            refuse(path, key, problem)
    for key, value in leaves(state):
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            refuse(path, key, "holds NaN or infinite values", STATE_TENSORS)
        # the optimizer's and schedule's numbers (learning rates, betas, eps) are used as they are
        if isinstance(value, float) and not math.isfinite(value) and key.startswith(("optimizer.", "lr_schedule.")):
            refuse(path, key, f"is {value}, not a finite number")


def rng_state() -> dict:
    import random

    import numpy as np
    state = {"python": random.getstate(), "numpy": np.random.get_state(legacy=False),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def rng_state_problem(state) -> str | None:
    """What is wrong with an `rng_state()` read back from a checkpoint (None: nothing), found by giving each
    part to a scratch generator of its kind, so that `set_rng_state` cannot fail halfway."""
    import random

    import numpy as np
    if not isinstance(state, dict) or not {"python", "numpy", "torch"} <= set(state):
        return "is not an RNG state (a mapping with python, numpy and torch states)"
    try:
        version, internal, gauss = state["python"]
        random.Random().setstate((version, tuple(internal), gauss))
    except (TypeError, ValueError, OverflowError):
        return "holds a python RNG state that random.setstate refuses"
    try:
        np.random.RandomState().set_state(state["numpy"])
    except (TypeError, ValueError, KeyError, OverflowError):
        return "holds a numpy RNG state that numpy refuses"
    try:
        torch.Generator().set_state(state["torch"])
    except (TypeError, RuntimeError):
        return "holds a torch RNG state that torch refuses (a uint8 tensor of the generator's size)"
    cuda = state.get("cuda", [])
    size = torch.cuda.get_rng_state().numel() if cuda and torch.cuda.is_available() else None
    if not isinstance(cuda, list) or not all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.dim() == 1
                                             and (size is None or t.numel() == size) for t in cuda):
        return "holds CUDA RNG states that are not one uint8 generator state per device"
    return None


def set_rng_state(state: dict) -> None:
    import random

    import numpy as np
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
