"""Build torchvision models and capture the exact feature maps of selected layers.

Capture uses forward hooks that copy a module's output the moment it is produced: an in-place ReLU
that runs next cannot change the saved map, and a module called several times (torchvision's ResNet
reuses its ReLU) gives one map per call, named like torchvision's FX feature extraction does:
`relu`, `relu_1`, `relu_2`, ...
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

import numpy as np
import torch
import torchvision
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelError(ValueError):
    """A model that cannot be built or run as configured; the message says why and what to do."""


class DeviceError(RuntimeError):
    """The configured device is not available."""


class LayerSelectionError(ValueError):
    """A layer pattern that selects nothing usable; the message lists the selectable layers."""


@dataclass
class LayerMap:
    name: str  # call id: module name, plus _1, _2, ... for later calls of the same module
    module: str
    kind: str  # module class name, e.g. Conv2d
    array: np.ndarray  # float32, C x H x W


@dataclass
class Capture:
    maps: list[LayerMap]
    logits: torch.Tensor
    selectable: list[str] = field(default_factory=list)


def default_weights(name: str):
    """torchvision's DEFAULT weights enum member for model `name` (IMAGENET1K_V1 for AlexNet)."""
    return torchvision.models.get_model_weights(name).DEFAULT


def build_model(name: str, state_dict: dict | None = None, seed: int = 0) -> nn.Module:
    """The architecture `name` in eval mode: seeded random init, then `state_dict` if given."""
    torch.manual_seed(seed)
    model = torchvision.models.get_model(name, weights=None)
    if state_dict is not None:
        state_dict = _renamed_keys(name, state_dict)
        expected = model.state_dict()
        try:
            model.load_state_dict(state_dict, strict=True)
        except RuntimeError as err:
            raise ModelError(_misfit(name, err, expected, state_dict)) from None
    return model.eval()


# torchvision's published DenseNet checkpoints keep the old key names `norm.1`, `conv.2`, ...,
# which torchvision's own loader renames (densenet._load_state_dict); plain load_state_dict
# would refuse them.
_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\."
    r"([12]\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


def _renamed_keys(name: str, state_dict: dict) -> dict:
    """The checkpoint's keys as the model names them (only DenseNet ever needs it)."""
    if not name.startswith("densenet"):
        return state_dict
    renamed = {}
    for key, value in state_dict.items():
        match = _OLD_DENSENET_KEY.match(key)
        renamed[match.group(1) + match.group(2) if match else key] = value
    return renamed


def _misfit(name: str, err: RuntimeError, expected: dict, state_dict: dict) -> str:
    """Why a checkpoint does not load: how many tensor names differ, else PyTorch's first lines."""
    needed = [key for key in expected if not key.endswith("num_batches_tracked")]  # optional
    missing = [key for key in needed if key not in state_dict]
    unknown = [key for key in state_dict if key not in expected]
    if not (missing or unknown):
        first = " ".join(line.strip() for line in str(err).strip().splitlines()[:3])
        return f"the checkpoint does not fit torchvision's {name}: {first[:600]}"
    hint = ""
    if len(missing) > len(needed) // 2:
        hint = " It looks like a checkpoint of another architecture."
    return (
        f"the checkpoint does not fit torchvision's {name}: {len(missing)} of the model's "
        f"{len(needed)} tensors are missing from it ({_some(missing)}) and {len(unknown)} of its "
        f"{len(state_dict)} tensors are unknown to the model ({_some(unknown)}).{hint}"
    )


def _some(keys: list[str], n: int = 3) -> str:
    if not keys:
        return "none"
    return ", ".join(keys[:n]) + (f", ... {len(keys) - n} more" if len(keys) > n else "")


def pick_device(device: str) -> torch.device:
    """`auto` uses a GPU when one is there, else the CPU; `cuda` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("config key 'device' is cuda but no CUDA GPU is visible; use auto or cpu")
    return torch.device(device)


def to_input(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """1 x 3 x H x W tensor normalized with the ImageNet mean and std, from C x H x W in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return ((x - mean) / std).unsqueeze(0).to(device)


def capture(
    model: nn.Module,
    x: torch.Tensor,
    patterns: list[str] | None,
    max_filters: int | None = None,
) -> Capture:
    """Run `model` on `x` once and return the maps of the layers that `patterns` select.

    `patterns` are module names or glob patterns, matched against module names and call ids;
    None selects every Conv2d. An explicit name whose output is not N x C x H x W, or a pattern
    that selects nothing, raises LayerSelectionError listing the selectable layers.
    """
    calls: dict[str, int] = {}
    seen: list[tuple[str, str, str, bool]] = []  # (call id, module, kind, is 4-d)
    kept: list[LayerMap] = []
    wanted = _selector(patterns)

    def hook(module_name: str):
        def record(module, _inputs, output):
            call_id = next_call_id(calls, module_name)
            is_map = isinstance(output, torch.Tensor) and output.dim() == 4 and output.shape[0] == 1
            kind = type(module).__name__
            seen.append((call_id, module_name, kind, is_map))
            if is_map and wanted(call_id, module_name, module):
                data = output[0, :max_filters] if max_filters else output[0]
                array = data.detach().to("cpu", torch.float32, copy=True).numpy()
                kept.append(LayerMap(call_id, module_name, kind, array))

        return record

    handles = [
        module.register_forward_hook(hook(name)) for name, module in model.named_modules() if name
    ]
    try:
        with torch.inference_mode():
            logits = model(x)
    finally:
        for handle in handles:
            handle.remove()
    selectable = [call_id for call_id, _, _, is_map in seen if is_map]
    _check_selection(patterns, seen, selectable, kept)
    return Capture(kept, logits.detach().to("cpu", torch.float32), selectable)


def next_call_id(calls: dict[str, int], module_name: str) -> str:
    """The call id of this call of `module_name`, counting calls in `calls`: the module name for
    the first call, then `_1`, `_2`, ... (as torchvision's FX feature extraction names them)."""
    count = calls.get(module_name, 0)
    calls[module_name] = count + 1
    return module_name if count == 0 else f"{module_name}_{count}"


def _selector(patterns: list[str] | None):
    if patterns is None:
        return lambda call_id, name, module: isinstance(module, nn.Conv2d)
    return lambda call_id, name, module: any(_matches(p, call_id, name) for p in patterns)


def _matches(pattern: str, call_id: str, module_name: str) -> bool:
    return fnmatch.fnmatchcase(call_id, pattern) or fnmatch.fnmatchcase(module_name, pattern)


def _check_selection(patterns, seen, selectable, kept) -> None:
    listing = "selectable layers of this model (output N x C x H x W):\n  " + "\n  ".join(
        selectable
    )
    if patterns is None:
        if not kept:
            raise LayerSelectionError(f"the model has no Conv2d layer; set `layers`. {listing}")
        return
    for pattern in patterns:
        hits = [(cid, is_map) for cid, name, _, is_map in seen if _matches(pattern, cid, name)]
        if not hits:
            raise LayerSelectionError(f"config key 'layers': {pattern!r} matches no layer. {listing}")
        if not any(is_map for _, is_map in hits):
            raise LayerSelectionError(
                f"config key 'layers': {pattern!r} selects only outputs that are not "
                f"N x C x H x W ({', '.join(cid for cid, _ in hits[:5])}). {listing}"
            )
        if not glob_pattern(pattern) and not all(is_map for _, is_map in hits):
            bad = [cid for cid, is_map in hits if not is_map]
            raise LayerSelectionError(
                f"config key 'layers': {', '.join(bad)} does not output N x C x H x W. {listing}"
            )


def glob_pattern(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def top_predictions(logits: torch.Tensor, categories: list[str] | None, k: int = 5) -> list[tuple]:
    """(rank, class index, label, probability) of the k most probable classes."""
    if logits.dim() != 2 or logits.shape[0] != 1:
        return []
    probs = torch.softmax(logits[0].double(), dim=0)
    top = torch.topk(probs, min(k, probs.numel()))
    rows = []
    for rank, (p, idx) in enumerate(zip(top.values.tolist(), top.indices.tolist()), start=1):
        label = categories[idx] if categories and idx < len(categories) else str(idx)
        rows.append((rank, idx, label, round(p, 6)))
    return rows
