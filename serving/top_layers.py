"""Fine-tuned top transformer layers of the text encoder, stored in the model pack (issue #17).

A pack may hold ``text_top_layer_<i>.safetensors`` (fp16): the weights of the encoder's layer ``i``
(``model.encoder.layer[i]``, parameter names as in that module's ``state_dict``), fine-tuned with the text heads
over cached lower-layer activations (``modelling.training.text_top``). The encoder still loads by name or path;
these layers replace its own at load time.

A pack may instead (or also) hold ``text_branch_layer_<i>.safetensors`` (fp16, ``i`` the top layer): a fine-tuned
copy of the top layer that runs *beside* the encoder's own, on the same input, as ``TextEncoder.branch``. Heads read
its pooled views as ``mean+ft`` / ``max+ft`` next to the plain ones, so a head can blend the pack's own top layer with
the fine-tuned one (``modelling.training.text_branch``): one extra layer per caption, the lower layers shared.
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

PREFIX = "text_top_layer_"
BRANCH_PREFIX = "text_branch_layer_"
_NAME = re.compile(rf"^{PREFIX}(\d+)\.safetensors$")
_BRANCH = re.compile(rf"^{BRANCH_PREFIX}(\d+)\.safetensors$")


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer layers of a BERT-style ``AutoModel`` (``model.encoder.layer``)."""
    return model.encoder.layer


def top_layer_files(pack_dir: str | Path) -> dict[int, Path]:
    """``{layer index: file}`` of the pack's fine-tuned layers (empty when it has none)."""
    pack = Path(pack_dir)
    found = {int(m.group(1)): p for p in pack.glob(f"{PREFIX}*.safetensors") if (m := _NAME.match(p.name))}
    return dict(sorted(found.items()))


def _save_fp16(layer: nn.Module, path: Path) -> Path:
    save_file({k: v.detach().to("cpu", torch.float16).contiguous() for k, v in layer.state_dict().items()},
              str(path))
    return path


def _load_into(layer: nn.Module, path: Path) -> None:
    ref = next(layer.parameters())
    layer.load_state_dict({k: v.to(ref.device, ref.dtype) for k, v in load_file(str(path)).items()}, strict=True)


def save_top_layers(layers: dict[int, nn.Module], pack_dir: str | Path) -> list[Path]:
    """Write each layer's weights as fp16 ``text_top_layer_<i>.safetensors`` into ``pack_dir``."""
    return [_save_fp16(layer, Path(pack_dir) / f"{PREFIX}{i}.safetensors") for i, layer in sorted(layers.items())]


def apply_top_layers(encoder, pack_dir: str | Path) -> list[int]:
    """Load the pack's fine-tuned layers into ``encoder.model`` (strict, in the model's dtype) and mark
    ``encoder.name`` with their digest, so embedding caches keyed by the name tell them apart. Returns the indices."""
    files = top_layer_files(pack_dir)
    if not files:
        return []
    layers = encoder_layers(encoder.model)
    h = hashlib.sha256()
    for i, path in files.items():
        if i >= len(layers):
            raise ValueError(f"{path.name}: the encoder has {len(layers)} layers")
        _load_into(layers[i], path)
        h.update(path.read_bytes())
    encoder.name = f"{encoder.name}+top{''.join(str(i) for i in files)}:{h.hexdigest()[:12]}"
    return list(files)


def branch_file(pack_dir: str | Path) -> tuple[int, Path] | None:
    """``(layer index, file)`` of the pack's fine-tuned branch, or ``None``."""
    found = [(int(m.group(1)), p) for p in Path(pack_dir).glob(f"{BRANCH_PREFIX}*.safetensors")
             if (m := _BRANCH.match(p.name))]
    if len(found) > 1:
        raise ValueError(f"{pack_dir}: more than one {BRANCH_PREFIX}<i>.safetensors")
    return found[0] if found else None


def save_branch(layer: nn.Module, index: int, pack_dir: str | Path) -> Path:
    """Write a fine-tuned copy of the top layer ``index`` as fp16 ``text_branch_layer_<index>.safetensors``."""
    return _save_fp16(layer, Path(pack_dir) / f"{BRANCH_PREFIX}{index}.safetensors")


def apply_branch(encoder, pack_dir: str | Path) -> int | None:
    """Give ``encoder`` the pack's fine-tuned branch (a copy of its top layer with the file's weights, in the
    model's dtype and device) and mark ``encoder.name`` with its digest. Returns the layer index, ``None`` when the
    pack has no branch."""
    found = branch_file(pack_dir)
    if found is None:
        return None
    i, path = found
    layers = encoder_layers(encoder.model)
    if i != len(layers) - 1:
        raise ValueError(f"{path.name}: a branch copies the top layer ({len(layers) - 1}), not layer {i}")
    branch = copy.deepcopy(layers[i])
    _load_into(branch, path)
    encoder.branch = branch.eval().requires_grad_(False)
    encoder.name = f"{encoder.name}+ft{i}:{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"
    return i
