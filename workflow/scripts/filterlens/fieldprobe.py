"""Measure receptive fields on a model (torch): the gradient support of a few units per layer on a
linearized, channel-collapsed copy of the computation (see `receptive` for what and why).

The model itself is not changed: a TorchFunctionMode replaces the functions it calls while the
probe runs, so functional calls inside `forward` (Inception's F.max_pool2d, DenseNet's F.relu)
are linearized as well as modules, and layers keep the call ids `models.capture` gives them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .models import next_call_id
from .receptive import PROBE_SCALES, Field, FieldError, from_supports

# Values only matter where they multiply (they never do: gates and factors become ones) and
# sums grow by at most 2 per residual block, so float32 is safe and twice as fast as float64.
DTYPE = torch.float32
T = torch.Tensor

# Elementwise functions that become identities: a saturating one (ReLU6, sigmoid) would cut paths
# off where values are large, and a linear network's support does not depend on the values.
_IDENTITIES = {
    F.relu, torch.relu, torch.relu_, F.relu6, F.hardtanh, F.silu, F.hardswish, F.hardsigmoid,
    F.gelu, F.leaky_relu, F.elu, F.selu, F.celu, F.mish, F.softplus, torch.sigmoid, torch.tanh,
    T.relu, T.relu_, T.sigmoid, T.sigmoid_, T.tanh, T.tanh_, F.batch_norm, F.layer_norm,
    F.group_norm, F.instance_norm, F.local_response_norm, F.dropout, F.dropout2d,
}  # fmt: skip
# `a += b` arrives as add_: a collapsed map cannot be written in place, so the sum is a new map,
# which Python binds to `a` (torchvision's blocks write `out += identity`).
_SUMS = {torch.add, T.add, T.add_, T.__add__, T.__radd__}
_PRODUCTS = {torch.mul, T.mul, T.mul_, T.__mul__, T.__rmul__}
_POOLS = {F.avg_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d}


class PerChannel(Exception):
    """A function other than those handled here met a merged concatenation: measure again with
    concatenations kept channel by channel."""


class Done(Exception):
    """Every wanted layer has been seen: the rest of the forward pass is not needed."""


class Linearized(TorchFunctionMode):
    """Linear, positive and channel-collapsed. A map whose channels all see the same pixels is
    held as one channel (its source) expanded to the map's shape; convolutions, pools, sums,
    products and identities work on sources only, any other function gets the expanded map.
    With `merge_cat` a concatenation of maps is held as the union of its parts' sources (marked
    mixed): exact for the field of a layer (the union over its channels) as long as only those
    functions read it. Adaptive pools keep the windows they had at the real input size (`pools`,
    recorded by a first run at that size), so that taller probes keep the same grid."""

    def __init__(self, pools: list | None = None, merge_cat: bool = True):
        super().__init__()
        self.record = pools is None
        self.pools = [] if pools is None else pools
        self.calls = 0
        self.merge_cat = merge_cat
        self.uneven = None  # the first adaptive pooling with uneven windows, in words

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _IDENTITIES:
            return _identity(*args, **kwargs)
        if func is F.conv2d:
            return _window_sum(*args, **kwargs)
        if func is F.max_pool2d:
            return _max_pool(*args, **kwargs)
        if func in _POOLS:
            return self._pool(func, *args, **kwargs)
        if func in _SUMS or func in _PRODUCTS:
            if len(args) == 2 and not kwargs:
                return _combine(func in _PRODUCTS, *args)
        if func is torch.cat and self.merge_cat:
            merged = _merged_cat(*args, **kwargs)
            if merged is not None:
                return merged
        if func is F.linear:  # mixes the last axis: its mean, for every output feature
            x, weight = args[0], args[1]
            return _keep_binary(_plain(x).mean(-1, keepdim=True).expand(*x.shape[:-1], len(weight)))
        out = func(*args, **kwargs)
        if _carries_tensor(out) and _any_mixed(args, kwargs):
            raise PerChannel(getattr(func, "__name__", str(func)))
        return _keep_binary(out)

    def _pool(self, func, input, *args, **kwargs):
        one, channels = source(input), input.shape[-3]
        if func is F.avg_pool2d:
            return collapsed(F.avg_pool2d(one, *args, **kwargs), channels, _mixed(input))
        indices = kwargs.pop("return_indices", False) or (len(args) > 1 and args[1])
        output_size = args[0] if args else kwargs["output_size"]
        result = collapsed(self._adaptive(one, output_size), channels, _mixed(input))
        return (result, None) if indices else result

    def _adaptive(self, one, output_size):
        size = tuple(one.shape[-2:])
        out = tuple(o if o is not None else n for o, n in zip(_pair_or_none(output_size), size))
        if self.record:
            self.pools.append((size, out))
            if self.uneven is None and any(o not in (1, n) and n % o for n, o in zip(size, out)):
                self.uneven = f"adaptive pooling from {size[0]}x{size[1]} to {out[0]}x{out[1]}"
            return F.adaptive_avg_pool2d(one, out)
        seen, seen_out = self.pools[self.calls]
        self.calls += 1
        # as at the real size, per axis: identity, global (one output) or windows of in/out
        # (layers after uneven windows are refused before any probe)
        kernel = tuple(1 if o == 1 else n // o for n, o in zip(seen, seen_out))
        if kernel != (1, 1):
            one = F.avg_pool2d(one, kernel, kernel)
        if 1 in seen_out:
            one = F.adaptive_avg_pool2d(one, tuple(1 if o == 1 else None for o in seen_out))
        return one


def source(t):
    """The one-channel map behind `t` (... x C x H x W): its source if collapsed, else the mean of
    its channels, which sees the union of what they see."""
    one = getattr(t, "_source", None)
    return one if one is not None else _keep_binary(t.mean(-3, keepdim=True))


def collapsed(one, channels: int, mixed: bool = False):
    """`one` (... x 1 x H x W) as a map of `channels` channels that see what it sees (mixed: only
    their union does)."""
    _keep_binary(one)
    t = one.expand(*one.shape[:-3], channels, *one.shape[-2:])
    t._source, t._mixed = one, mixed
    return t


def _mixed(t) -> bool:
    return bool(getattr(t, "_mixed", False))


def _plain(t):
    """`t` for a function that reads its channels one by one: refused if it is a merged union."""
    if _mixed(t):
        raise PerChannel("linear")
    return t


def _identity(input, *args, **kwargs):
    if getattr(input, "_source", None) is not None:
        return collapsed(input._source, input.shape[-3], _mixed(input))
    return input  # no in-place function is left to write into it (see _SUMS)


def _window_sum(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """A convolution's footprint (padding, stride, dilation) on the source of its input, for all
    its output channels (a grouped one on a mixed input: their union)."""
    kernel = torch.full((1, 1, *weight.shape[-2:]), 1.0 / weight[0, 0].numel(), dtype=input.dtype,
                        device=input.device)  # fmt: skip
    one = torch.conv2d(source(input), kernel, None, stride, padding, dilation)
    return collapsed(one, weight.shape[0], _mixed(input) and groups > 1)


def _max_pool(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
              return_indices=False):  # fmt: skip
    """Max-pooling as a window sum over the same windows (padding, dilation, ceil_mode)."""
    k, p, d = _pair(kernel_size), _pair(padding), _pair(dilation)
    s = _pair(stride) if stride not in (None, []) else k
    size = input.shape[-2:]
    out = F.max_pool2d(torch.zeros(1, 1, *size), k, s, p, d, ceil_mode).shape[-2:]
    # the right/bottom padding ceil_mode's last window reaches into
    extra = [max(pi, (o - 1) * si + di * (ki - 1) + 1 - n - pi)
             for o, si, di, ki, n, pi in zip(out, s, d, k, size, p)]  # fmt: skip
    one = F.pad(source(input), (p[1], extra[1], p[0], extra[0]))
    ones = torch.ones(1, 1, *k, dtype=input.dtype, device=input.device)
    one = torch.conv2d(one, ones / ones.numel(), None, s, 0, d)[..., : out[0], : out[1]]
    result = collapsed(one, input.shape[-3], _mixed(input))
    return (result, None) if return_indices else result


def _merged_cat(tensors, dim=0):
    """A concatenation of maps along channels, as the union of their sources; None otherwise."""
    if not all(isinstance(t, torch.Tensor) and t.dim() == 4 for t in tensors):
        return None
    if dim not in (1, -3) or len({tuple(t.shape[-2:]) for t in tensors}) != 1:
        return None
    one = sum(source(t) for t in tensors)
    return collapsed(one, sum(t.shape[-3] for t in tensors), mixed=True)


def _combine(product: bool, a, b):
    """a + b or a * b. Sources combine where both operands are collapsed maps (a per-channel
    factor, 1 x 1 in space, counts as one). A per-channel gate (1 x 1 in space, times a map) and
    a learned factor become constant ones: neither moves where a unit looks, and a gate's value,
    a map's own mean, would square the values at every gated block until they overflow."""
    if product:
        a, b = _factor(a, b), _factor(b, a)
    one_a, one_b = _as_source(a), _as_source(b)
    if one_a is None or one_b is None:
        result = (_plain(a) * _plain(b)) if product else (_plain(a) + _plain(b))
        return _keep_binary(result)
    one = one_a * one_b if product else one_a + one_b
    shape = torch.broadcast_shapes(*(t.shape for t in (a, b) if isinstance(t, torch.Tensor)))
    return collapsed(one, shape[-3], _mixed(a) or _mixed(b))


def _as_source(t):
    if not isinstance(t, torch.Tensor):
        return t  # a number
    if getattr(t, "_source", None) is not None:
        return t._source
    if t.dim() >= 3 and t.shape[-2:] == (1, 1):  # per channel: its channels' mean stands for it
        return t.mean(-3, keepdim=True)
    return None


def _factor(a, b):
    if not isinstance(a, torch.Tensor):
        return a
    spatial = isinstance(b, torch.Tensor) and b.dim() >= 2 and b.shape[-2:].numel() > 1
    gate = a.dim() >= 2 and a.shape[-2:] == (1, 1) and spatial
    if isinstance(a, nn.Parameter) or gate:
        return torch.ones_like(a, requires_grad=False)
    return a


def _carries_tensor(out) -> bool:
    if isinstance(out, (tuple, list)):
        return any(isinstance(t, torch.Tensor) for t in out)
    return isinstance(out, torch.Tensor)


def _any_mixed(args, kwargs) -> bool:
    values = list(args) + list(kwargs.values())
    flat = [v for value in values for v in (value if isinstance(value, (tuple, list)) else [value])]
    return any(_mixed(v) for v in flat)


def _keep_binary(out):
    """Gradients become 1 where not 0 at every tensor: supports stay exact while magnitudes, which
    shrink by the fan-in at every layer, would underflow in a deep network."""
    for t in out if isinstance(out, (tuple, list)) else (out,):
        if isinstance(t, torch.Tensor) and t.requires_grad and t.is_floating_point():
            t.register_hook(_nonzero)
    return out


def _nonzero(grad):
    # every Jacobian here is non-negative, so the sign is 1 where the gradient is not 0 (and NaN
    # stays NaN, for the overflow check)
    return None if grad is None else grad.sign()


def _pair_or_none(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


def supports(model, size, batch, layers, pick, pools=None, merge_cat=True):
    """Run the linearized model on a `batch` x 3 x `size` input and return, per layer, its map
    size, the units `pick(height, width)` chose (one per batch item) and each unit's support as
    (top, left, bottom, right), ends exclusive. Also the adaptive pools seen (see Linearized)."""
    pixels = torch.ones(batch, 1, *size, dtype=DTYPE, requires_grad=True)
    x = pixels.expand(batch, 3, *size)  # one gradient per pixel, not per color
    outputs, calls, wanted, uneven = {}, {}, set(layers), {}

    def hook(name):
        def record(_module, _inputs, output):
            call_id = next_call_id(calls, name)
            if call_id in wanted and isinstance(output, torch.Tensor) and output.dim() == 4:
                outputs[call_id] = output.shape[-2:], source(output)  # the union of its channels
                if mode.uneven:
                    uneven[call_id] = mode.uneven
                if len(outputs) == len(wanted):
                    raise Done  # (the probes only reach the pools recorded so far)

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    mode = Linearized(pools, merge_cat)
    try:
        with torch.enable_grad(), mode:
            model(x)
    except Done:
        pass
    finally:
        for handle in handles:
            handle.remove()
    missing = [layer for layer in layers if layer not in outputs]
    if missing:
        raise FieldError(
            f"no feature map (N x C x H x W) named {', '.join(missing)} in the model's forward "
            "pass (layer names are call ids, as in layers.tsv)"
        )
    found = {}
    for layer in layers:
        (h, w), one = outputs[layer]
        units = pick(h, w)
        target = sum(one[b, 0, y, x] for b, (y, x) in enumerate(units))
        (grad,) = torch.autograd.grad(target, pixels, retain_graph=True)
        grad = grad[:, 0]
        if not torch.isfinite(grad).all():
            raise FieldError(f"layer {layer}: the probe's values overflowed; its field cannot "
                             "be measured")  # fmt: skip
        seen = grad != 0
        found[layer] = ((h, w), units, [_bounds(seen[b], layer, u) for b, u in enumerate(units)])
    return found, mode.pools, uneven


def _bounds(seen, layer, unit) -> tuple[int, int, int, int]:
    rows = torch.nonzero(seen.any(1)).flatten()
    cols = torch.nonzero(seen.any(0)).flatten()
    if rows.numel() == 0:
        raise FieldError(f"unit {unit} of layer {layer} depends on no input pixel")
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _checked_units(h, w):
    """First, two middle and last units, on the diagonal: the probe units and the grid's ends."""
    cy, cx = (h - 1) // 2, (w - 1) // 2
    return [(0, 0), (cy, cx), (min(cy + 1, h - 1), min(cx + 1, w - 1)), (h - 1, w - 1)]


GLOBAL = "global"  # one unit along an axis that sees the whole extent, at any input size


def measure(model, image_size, layers) -> list[Field]:
    model.eval()
    threads = torch.get_num_threads()
    # one thread: the probe's tensors are small, and on a busy machine threads that wait for each
    # other at every small op make it tens of times slower
    torch.set_num_threads(1)
    try:
        return _measure(model, image_size, layers, merge_cat=True)
    except PerChannel:  # a concatenation is read channel by channel (ShuffleNet's split)
        return _measure(model, image_size, layers, merge_cat=False)
    finally:
        torch.set_num_threads(threads)


def _measure(model, image_size, layers, merge_cat) -> list[Field]:
    found, pools, uneven = supports(model, image_size, 4, layers, _checked_units, None, merge_cat)
    if uneven:
        layer, how = next(iter(uneven.items()))
        raise FieldError(
            f"layer {layer} comes after {how}, whose windows are uneven: its units do not lie on "
            f"one grid. Choose an img_size that this pooling divides, or leave out "
            f"{', '.join(uneven)}"
        )
    grids = {}  # (layer, axis) -> (size, stride, offset), GLOBAL or None (not yet measured)
    for layer, (shape, units, boxes) in found.items():
        for axis in (0, 1):
            grid = _grid(layer, shape, units, boxes, image_size, axis)
            # one unit seeing everything: global pooling, or an input too small to tell (probe)
            grids[layer, axis] = None if grid == GLOBAL else grid
    for scale in PROBE_SCALES:
        for axis in (0, 1):
            todo = [layer for layer in layers if grids[layer, axis] is None]
            if todo:
                size = list(image_size)
                size[axis] *= scale
                probed, *_ = supports(model, tuple(size), 4, todo, _checked_units, pools, merge_cat)
                for layer, (shape, units, boxes) in probed.items():
                    grids[layer, axis] = _grid(layer, shape, units, boxes, size, axis)
    fields = []
    for layer, (shape, units, boxes) in found.items():
        grid = [_settled(layer, grids[layer, axis], image_size, axis) for axis in (0, 1)]
        size, stride, offset = zip(*grid)
        # what any unit sees: from the first unit's top left to the last unit's bottom right
        seen = (*boxes[0][:2], *boxes[-1][2:])
        field = Field(layer, tuple(shape), tuple(image_size), size, stride, offset, seen)
        _check(field, units, boxes)
        fields.append(field)
    return fields


def _grid(layer, shape, units, boxes, size, axis):
    """The grid along `axis` from the two middle units of `units` (see _checked_units) and their
    supports on an input of `size`, inside what the first and last units see; GLOBAL for a single
    unit that sees the whole extent; None when the input is too small to tell."""
    seen = (boxes[0][axis], boxes[-1][axis + 2])
    if shape[axis] == 1:
        return GLOBAL if seen == (0, size[axis]) else None
    first, second = ((u[axis], b[axis], b[axis + 2]) for u, b in zip(units[1:3], boxes[1:3]))
    return from_supports(layer, seen, first, second, axis)


def _settled(layer, grid, image_size, axis):
    n = image_size[axis]
    if grid == GLOBAL:  # after global pooling: the unit sees all of any input
        return n, n, 0
    if grid is None:
        raise FieldError(
            f"layer {layer}: its receptive field along {'yx'[axis]} is wider than "
            f"{PROBE_SCALES[-1]} times the input ({n} px); it cannot be measured"
        )
    return grid


def _check(field: Field, units, boxes) -> None:
    """The grid must give the measured box of every checked unit at the real input size."""
    for unit, measured in zip(units, boxes):
        if field.box(*unit) != measured:
            raise FieldError(
                f"layer {field.layer}: unit {unit} sees input box {measured} (top, left, bottom, "
                f"right) at input size {field.image_size}, but its grid (size {field.size}, "
                f"stride {field.stride}, offset {field.offset}) gives {field.box(*unit)}: its "
                "units do not lie on one grid, so no box can be given for them; leave the layer "
                "out"
            )
