"""Pretrained weights from a local checkpoint file, checked by MD5 and fitted to the network:
nothing is downloaded.

A method names the file (``pretrained.file``), its MD5 (``pretrained.md5``), a key prefix to
strip (``strip_prefix``, e.g. ``module.`` of a ``DataParallel`` save or ``model.`` of a
Lightning one) and how the first layer meets a different number of input channels
(``channels``). The file holds a plain state dict, or one under a ``state_dict`` (or
``model``) key. Then:

- the weights ``(out, c_ckpt, *k)`` of the layers that read the image (the first convolution,
  and a residual projection beside it) are adapted to the data's ``c``
  channels: ``repeat`` (default) sums them over the checkpoint's channels when ``c = 1``, which
  is exactly the network fed the grayscale image repeated on every channel, and otherwise
  repeats them cyclically, scaled by ``c_ckpt / c`` so the response to an image repeated on
  every channel is kept; ``average`` takes their mean instead (the response to a grayscale
  image equals the mean response of the three colour channels);
- the output layer is replaced: checkpoint entries of the network's last layer whose shape
  differs (another class count) are left out and that layer keeps its fresh initialisation;
- any other key the checkpoint lacks or has in excess, or any other shape that differs, is an
  error naming the keys.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

CHANNEL_RULES = ("repeat", "average")


def file_md5(path: str | Path, chunk: int = 1 << 20) -> str:
    """The MD5 hex digest of a file, read ``chunk`` bytes at a time."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_checkpoint(path: str | Path, md5: str, strip_prefix: str = "") -> dict[str, torch.Tensor]:
    """The state dict in ``path`` after checking its MD5; ``strip_prefix`` is removed from the
    keys that start with it. Raises ``ValueError`` naming the file for a missing file, another
    MD5 or content that is no state dict."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"pretrained.file {path}: no such file")
    actual = file_md5(path)
    if actual != md5.lower():
        raise ValueError(
            f"pretrained.file {path}: MD5 {actual}, but pretrained.md5 says {md5}; "
            "the file is not the checkpoint the config names"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several kinds for a file it cannot read
        raise ValueError(f"pretrained.file {path}: not a PyTorch checkpoint ({error})") from None
    for key in ("state_dict", "model"):
        if isinstance(blob, dict) and isinstance(blob.get(key), dict):
            blob = blob[key]
    if not isinstance(blob, dict) or not all(isinstance(v, torch.Tensor) for v in blob.values()):
        raise ValueError(f"pretrained.file {path}: holds no state dict of tensors")
    if strip_prefix:
        blob = {k.removeprefix(strip_prefix): v for k, v in blob.items()}
    return blob


def adapt_channels(weight: torch.Tensor, channels: int, rule: str = "repeat") -> torch.Tensor:
    """First-layer weights ``(out, c_ckpt, *k)`` for ``channels`` input channels (module
    docstring: ``repeat`` or ``average``)."""
    if rule not in CHANNEL_RULES:
        raise ValueError(
            f"pretrained.channels: unknown {rule!r}; valid: {', '.join(CHANNEL_RULES)}"
        )
    have = weight.shape[1]
    if channels == have:
        return weight
    if channels == 1:
        return weight.sum(1, keepdim=True) if rule == "repeat" else weight.mean(1, keepdim=True)
    index = torch.arange(channels) % have
    return weight[:, index] * (have / channels)


def load_pretrained(
    model: nn.Module,
    file: str | Path,
    md5: str,
    strip_prefix: str = "",
    channels: str = "repeat",
    head: nn.Module | None = None,
) -> dict:
    """Load the checkpoint into ``model`` as the module docstring says; ``head`` is its output
    layer (left at its initialisation where the class count differs). Returns what was done:
    ``file``, ``md5``, the adapted first layer and the output-layer keys left out."""
    path = file
    state = read_checkpoint(path, md5, strip_prefix)
    own = model.state_dict()
    head_keys = set()
    if head is not None:
        name = next(n for n, m in model.named_modules() if m is head)
        head_keys = {f"{name}.{k}" for k in head.state_dict()}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"pretrained.file {path} does not fit the network: missing {missing[:5]}"
            f"{' …' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
            f"{' …' if len(unexpected) > 5 else ''} (set pretrained.strip_prefix if its keys "
            "carry a prefix)"
        )
    first = next(
        (k for k, v in own.items() if v.ndim >= 3 and k.endswith("weight") and k not in head_keys),
        None,
    )
    # The layers that read the image (the first convolution, and e.g. a residual projection
    # beside it): their input-channel axis goes from the checkpoint's count to the data's.
    image_in = None if first is None else (state[first].shape[1], own[first].shape[1])
    adapted, left_out = [], []
    for key, value in list(state.items()):
        target = own[key].shape
        if value.shape == target:
            continue
        reads_image = (
            image_in is not None
            and value.ndim >= 3
            and (value.shape[1], target[1]) == image_in
            and value.shape[:1] + value.shape[2:] == target[:1] + target[2:]
        )
        if reads_image:
            state[key] = adapt_channels(value, target[1], channels)
            adapted.append(key)
        elif key in head_keys:
            state[key] = own[key]  # the output layer for this class count, freshly initialised
            left_out.append(key)
        else:
            raise ValueError(
                f"pretrained.file {path}: {key} has shape {tuple(value.shape)}, the network "
                f"{tuple(target)}"
            )
    first_layer = None
    if adapted:
        first_layer = f"{', '.join(adapted)}: {image_in[0]} → {image_in[1]} channels ({channels})"
    model.load_state_dict(state)
    log.info(
        "pretrained weights from %s (MD5 %s); first layer %s; output layer %s",
        path,
        md5,
        first_layer or "as stored",
        f"re-initialised ({', '.join(left_out)})" if left_out else "loaded",
    )
    return {
        "file": str(path),
        "md5": md5.lower(),
        "first_layer": first_layer,
        "head_reset": left_out,
    }
