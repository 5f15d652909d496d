"""Build torchvision models and capture the exact feature maps of selected layers.

Capture uses forward hooks that copy a module's output the moment it is produced: an in-place ReLU
that runs next cannot change the saved map, and a module called several times (torchvision's ResNet
reuses its ReLU) gives one map per call, named like torchvision's FX feature extraction does:
`relu`, `relu_1`, `relu_2`, ...
"""

from __future__ import annotations

import fnmatch
import re
import sys
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torchvision
from torch import nn
from torchvision.models._api import WeightsEnum

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelError(ValueError):
    """A model that cannot be built or run as configured; the message says why and what to do."""


class CheckpointError(ModelError):
    """A state dict whose tensors the model must not take: wrong dtype, NaN or Inf."""


class NonFiniteError(ModelError):
    """A forward pass whose feature maps or logits hold NaN or Inf."""


class InputSizeError(ModelError):
    """A model that cannot run at the configured img_size; the message says which size it needs."""


class DeviceError(RuntimeError):
    """The configured device is not available."""


class LayerSelectionError(ValueError):
    """A layer pattern that selects nothing usable; the message lists the selectable layers."""


@dataclass
class LayerMap:
    name: str  # call id: module name, plus _1, _2, ... for later calls of the same module
    module: str
    kind: str  # module class name, e.g. Conv2d
    array: np.ndarray  # float32, C x H x W (the first max_filters channels only, when capped)
    channels_total: int  # the layer's channels before any cap


@dataclass
class Capture:
    maps: list[LayerMap]
    logits: torch.Tensor
    selectable: list[str] = field(default_factory=list)


@dataclass
class Network:
    name: str
    module: nn.Module  # in eval mode, on the CPU
    construction: dict  # how it was built, for extraction.json (see `build`)


CONSTRUCTIONS = ("auto", "pretrained", "plain")

# Keyword arguments of the plain construction: `init_weights=True` is what GoogLeNet and
# Inception-v3 do when it is left out, minus the FutureWarning they print about it.
_PLAIN_KWARGS = {"googlenet": {"init_weights": True}, "inception_v3": {"init_weights": True}}

# Auxiliary classifier heads that run only in training mode: a checkpoint saved from an
# eval-only copy lacks them, and they never touch a capture.
_TRAINING_ONLY_HEADS = {"googlenet": ("aux1", "aux2"), "inception_v3": ("AuxLogits",)}


def default_weights(name: str):
    """torchvision's DEFAULT weights enum member for model `name` (IMAGENET1K_V1 for AlexNet)."""
    return torchvision.models.get_model_weights(name).DEFAULT


def resolve_construction(construction: str, weights: str) -> str:
    """`pretrained` or `plain` for config keys `construction` and `weights`.

    `auto` is the pretrained construction for `weights: imagenet` and the plain one for `random`
    and for a state-dict path.
    """
    if construction not in CONSTRUCTIONS:
        raise ModelError(
            f"config key 'construction' is {construction!r}; allowed: {', '.join(CONSTRUCTIONS)}"
        )
    if construction == "auto":
        return "pretrained" if weights == "imagenet" else "plain"
    return construction


def build(
    name: str, state_dict: dict | None = None, *, seed: int = 0, construction: str = "plain"
) -> Network:
    """The architecture `name` in eval mode, seeded, with `state_dict` loaded if given.

    `pretrained` is the network torchvision's builder makes for the DEFAULT weights, exactly
    `get_model(name, weights=DEFAULT)` (GoogLeNet and Inception-v3 re-normalize their input,
    `transform_input=True`), with the state dict from our own loader instead of a download;
    `plain` is `get_model(name, weights=None)`. Either way the state dict is checked first:
    its names and shapes must fit, its dtypes must be the model's, its values finite.
    """
    builders = {"pretrained": _pretrained, "plain": _plain}
    if construction not in builders:
        raise ModelError(
            f"construction is pretrained or plain (resolve_construction turns auto into one), "
            f"not {construction!r}"
        )
    torch.manual_seed(seed)
    module, record = builders[construction](name, state_dict)
    for attribute in ("transform_input", "aux_logits"):  # as GoogLeNet and Inception-v3 end up
        if isinstance(getattr(module, attribute, None), bool):
            record[attribute] = getattr(module, attribute)
    return Network(name, module.eval(), record)


def build_model(
    name: str, state_dict: dict | None = None, seed: int = 0, construction: str = "plain"
) -> nn.Module:
    """The module alone of `build(...)`."""
    return build(name, state_dict, seed=seed, construction=construction).module


def _pretrained(name: str, state_dict: dict | None) -> tuple[nn.Module, dict]:
    weights = default_weights(name)
    with _serving(name, weights, state_dict) as served:
        module = torchvision.models.get_model(name, weights=weights)
    return module, {
        "construction": "pretrained",
        "builder": f"torchvision.models.get_model({name!r}, weights={weights})",
        "builder_kwargs": served.kwargs,  # what the builder set for the weights
        "notes": served.notes,
    }


def _plain(name: str, state_dict: dict | None) -> tuple[nn.Module, dict]:
    kwargs = dict(_PLAIN_KWARGS.get(name, {}))
    module = torchvision.models.get_model(name, weights=None, **kwargs)
    notes = [] if state_dict is None else _load_checked(name, module, state_dict)
    call = ", ".join(["weights=None", *(f"{key}={value!r}" for key, value in kwargs.items())])
    return module, {
        "construction": "plain",
        "builder": f"torchvision.models.get_model({name!r}, {call})",
        "builder_kwargs": kwargs,
        "notes": notes,
    }


@dataclass
class _Served:
    kwargs: dict = field(default_factory=dict)  # what the builder set for the weights
    notes: list[str] = field(default_factory=list)


@contextmanager
def _serving(name: str, weights, state_dict: dict | None):
    """While active, torchvision's builder gets `state_dict` for `weights` instead of a download.

    `weights.get_state_dict()` hands over a copy of `state_dict` (any other weights' download is
    refused), and the builder's `model.load_state_dict` of that copy goes through `_load_checked`
    (or loads nothing for random weights). torch.hub's loader never runs: it unpickles freely,
    while our state dict comes from the verified `weights_only=True` loader.
    """
    served, handed = _Served(), _like(state_dict or {}, (state_dict or {}).items())
    original_get = WeightsEnum.get_state_dict
    original_load = nn.Module.load_state_dict
    original_overwrite = torchvision.models._utils._ovewrite_named_param

    def get_state_dict(self, *args, **kwargs):
        if self is not weights:
            raise ModelError(f"building {name} asked to download {self} ({self.url}); refused")
        return handed

    def load_state_dict(module, given, strict=True, assign=False):
        if given is not handed:
            return original_load(module, given, strict, assign)
        if state_dict is not None:
            served.notes += _load_checked(name, module, given)
        return None

    def overwrite(kwargs, param, value):
        original_overwrite(kwargs, param, value)
        served.kwargs[param] = list(value) if isinstance(value, tuple) else value

    builders = [
        module for key, module in list(sys.modules.items())
        if key.startswith("torchvision.models")
        and getattr(module, "_ovewrite_named_param", None) is original_overwrite
    ]  # fmt: skip
    WeightsEnum.get_state_dict = get_state_dict
    nn.Module.load_state_dict = load_state_dict
    for module in builders:
        module._ovewrite_named_param = overwrite
    try:
        yield served
    finally:
        WeightsEnum.get_state_dict = original_get
        nn.Module.load_state_dict = original_load
        for module in builders:
            module._ovewrite_named_param = original_overwrite


def _load_checked(name: str, module: nn.Module, state_dict: dict) -> list[str]:
    """Load `state_dict` into `module` after checking it; return notes on what was filled in."""
    expected = module.state_dict()
    state, notes = _with_training_only_heads(name, _renamed_keys(name, state_dict), expected)
    _check_fit(name, state, expected)
    _check_tensors(name, state, expected)
    try:
        nn.Module.load_state_dict(module, state, strict=True)
    except (RuntimeError, ValueError) as err:  # MNASNet raises ValueError for a missing version
        raise ModelError(_misfit(name, err, expected, state)) from None
    return notes


def _with_training_only_heads(name: str, state: dict, expected: dict) -> tuple[dict, list[str]]:
    """`state` plus the model's own tensors of auxiliary heads it lacks entirely (eval mode
    never runs them)."""
    filled, notes = _like(state, state.items()), []
    for head in _TRAINING_ONLY_HEADS.get(name, ()):
        prefix = head + "."
        if any(key.startswith(prefix) for key in state):
            continue
        own = {key: value for key, value in expected.items() if key.startswith(prefix)}
        if own:
            filled.update(own)
            notes.append(
                f"the checkpoint has no auxiliary head {head}; it runs only in training, so the "
                "model's own initialization stays there"
            )
    return filled, notes


def _check_fit(name: str, state: dict, expected: dict) -> None:
    needed = [key for key in expected if not key.endswith("num_batches_tracked")]  # optional
    if any(key not in state for key in needed) or any(key not in expected for key in state):
        raise ModelError(_misfit(name, None, expected, state))


def _check_tensors(name: str, state: dict, expected: dict) -> None:
    """Refuse what load_state_dict would take silently: other dtypes (it casts), NaN and Inf."""
    for key, value in state.items():
        own = expected[key]
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"the checkpoint's {key!r} is a {type(value).__name__}, not a tensor; "
                f"it is not a state dict of torchvision's {name}. Try another checkpoint."
            )
        if value.dtype != own.dtype:
            raise CheckpointError(
                f"the checkpoint's tensor {key!r} is {_dtype(value)} where torchvision's {name} "
                f"holds {_dtype(own)}; loading would convert it silently, so it is refused. "
                "Save the checkpoint with the model's own dtypes, or try another checkpoint."
            )
    for key, value in state.items():
        if value.is_floating_point() or value.is_complex():
            bad = _non_finite(value)
            if bad:
                raise CheckpointError(
                    f"the checkpoint's tensor {key!r} holds {bad} of {value.numel()} values: the "
                    "weights are broken. Try another checkpoint (or download it again)."
                )


def _dtype(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def _non_finite(values) -> str:
    """'' when all values are finite, else e.g. '3 NaN and 1 Inf'."""
    if isinstance(values, np.ndarray):
        values = torch.from_numpy(values)
    if bool(torch.isfinite(values).all()):
        return ""
    nan = int(torch.isnan(values).sum())
    return f"{nan} NaN and {int(torch.isinf(values).sum())} Inf"


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
    renamed = []
    for key, value in state_dict.items():
        match = _OLD_DENSENET_KEY.match(key)
        renamed.append((match.group(1) + match.group(2) if match else key, value))
    return _like(state_dict, renamed)


def _like(state_dict: dict, items) -> OrderedDict:
    """A state dict of `items` that keeps `state_dict`'s `_metadata`: modules read their saved
    version from it (MNASNet refuses to load without)."""
    copy = OrderedDict(items)
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is not None:
        copy._metadata = metadata
    return copy


def _misfit(name: str, err: RuntimeError | None, expected: dict, state_dict: dict) -> str:
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


def to_input(
    rgb: np.ndarray,
    device: torch.device,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> torch.Tensor:
    """1 x 3 x H x W tensor normalized with `mean` and `std`, from C x H x W in [0, 1].

    The same arithmetic as torchvision's `Normalize`, so a weights' own `transforms()` and this
    give equal tensors; pass the weights' mean and std (`preprocess.weights_transform`).
    """
    x = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))
    mean_ = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_ = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return ((x - mean_) / std_).unsqueeze(0).to(device)


def capture(
    model: nn.Module,
    x: torch.Tensor,
    patterns: list[str] | None,
    max_filters: int | None = None,
    *,
    name: str | None = None,
) -> Capture:
    """Run `model` (torchvision's `name`) on `x` once and return the maps `patterns` select.

    `patterns` are module names or glob patterns, matched against module names and call ids;
    None selects every Conv2d. An explicit name whose output is not N x C x H x W, or a pattern
    that selects nothing, raises LayerSelectionError listing the selectable layers. A forward
    pass that fails raises ModelError (InputSizeError when the image size is the cause, saying
    which size the model needs), and NaN or Inf in a kept map or in the logits NonFiniteError.
    """
    name = name or type(model).__name__
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
                kept.append(LayerMap(call_id, module_name, kind, array, int(output.shape[1])))

        return record

    handles = [
        module.register_forward_hook(hook(key)) for key, module in model.named_modules() if key
    ]
    try:
        with torch.inference_mode():
            logits = model(x)
    except _FORWARD_ERRORS as err:
        raise forward_error(name, [x.shape[-1], x.shape[-2]], err) from None
    finally:
        for handle in handles:
            handle.remove()
    selectable = [call_id for call_id, _, _, is_map in seen if is_map]
    _check_selection(patterns, seen, selectable, kept)
    logits = logits.detach().to("cpu", torch.float32)
    _check_finite(name, kept, logits)
    return Capture(kept, logits, selectable)


# What a forward pass raises for an input it cannot take (torchvision's ViT uses torch._assert).
_FORWARD_ERRORS = (RuntimeError, AssertionError, ValueError, IndexError)
_EXACT_SIZE = re.compile(r"Wrong image (?:height|width)! Expected (\d+) but got (\d+)")
_ABOUT_SIZE = re.compile(r"size|too small|shape|dimension|Expected .* but got", re.IGNORECASE)


def forward_error(name: str, img_size: list[int], err: Exception) -> ModelError:
    """A failed forward pass of `name` at `img_size` ([width, height]) as a ModelError that says
    what to do: the size the model needs where torchvision states it, else a larger img_size
    where the error is about sizes, else the error itself."""
    first = (str(err).strip().splitlines() or [type(err).__name__])[0][:400]
    size = f"{img_size[0]}x{img_size[1]}"
    if isinstance(err, torch.OutOfMemoryError):
        return ModelError(
            f"{name} ran out of memory on an image of img_size {size}; use a smaller img_size "
            "or device: cpu"
        )
    exact = _EXACT_SIZE.search(first)
    if exact:
        need = int(exact.group(1))
        return InputSizeError(
            f"{name} takes images of exactly {need}x{need} pixels, not img_size {size} "
            f"({first}); set img_size: {need}"
        )
    if not _ABOUT_SIZE.search(first):
        return ModelError(f"{name} failed on an image of img_size {size}: {first}")
    min_height, min_width = default_weights(name).meta.get("min_size", (1, 1))
    if img_size[0] < min_width or img_size[1] < min_height:
        fix = f"use an img_size of at least {min_width}x{min_height} (torchvision's min_size)"
    else:
        fix = "use a larger img_size"
    return InputSizeError(f"{name} cannot run on an image of img_size {size} ({first}): {fix}")


def _check_finite(name: str, kept: list[LayerMap], logits: torch.Tensor) -> None:
    """Refuse NaN or Inf before it reaches a file: the first bad layer in network order, named."""
    fix = "the weights are broken for this input; try another checkpoint (or weights: random)"
    for layer in kept:
        bad = _non_finite(layer.array)
        if bad:
            raise NonFiniteError(
                f"{name}: layer {layer.name!r} output holds {bad} of {layer.array.size} values "
                f"(the first selected layer that does): {fix}"
            )
    bad = _non_finite(logits)
    if bad:
        raise NonFiniteError(f"{name}: the model's output (logits) holds {bad} values: {fix}")


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
