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
import os
import re
import shutil

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from data_utils.errors import UserError
from data_utils.files import write_directory

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


def save_checkpoint(output_dir: str, step: int, state: dict, keep: int = 0, run_id: str | None = None) -> str:
    """Write `state` as `output_dir/checkpoint-<step>/` atomically, marked with `run_id`; keep the newest
    `keep` (0: all) of the checkpoints marked with the same `run_id` (other runs' are never deleted)."""
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
        for old in [path for path in list_checkpoints(output_dir) if checkpoint_run_id(path) == run_id][:-keep]:
            shutil.rmtree(old, ignore_errors=True)
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
    except Exception as err:  # noqa: BLE001 - any decoding failure means a corrupt user file
        raise UserError(f"checkpoint {path}: corrupt or unreadable {reading} ({type(err).__name__}: "
                        f"{' '.join(str(err).split())[:120]}); resume from an earlier checkpoint-<update> "
                        "with --model_ckpt") from None
    missing = [key for key in REQUIRED_KEYS if key not in state] if isinstance(state, dict) else list(REQUIRED_KEYS)
    if missing:
        raise UserError(f"checkpoint {path}: {STATE_JSON} lacks {', '.join(missing)}; not a training state written by "
                        "train.py: resume from an earlier checkpoint-<update> with --model_ckpt")
    return state


def rng_state() -> dict:
    import random

    import numpy as np
    state = {"python": random.getstate(), "numpy": np.random.get_state(legacy=False),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    import random

    import numpy as np
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
