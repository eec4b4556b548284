"""Fine-tuned top transformer layers of the text encoder, stored in the model pack (issue #17).

A pack may hold ``text_top_layer_<i>.safetensors`` (fp16): the weights of the encoder's layer ``i``
(``model.encoder.layer[i]``, parameter names as in that module's ``state_dict``), fine-tuned with the text heads
over cached lower-layer activations (``modelling.training.text_top``). The encoder still loads by name or path;
these layers replace its own at load time.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

PREFIX = "text_top_layer_"
_NAME = re.compile(rf"^{PREFIX}(\d+)\.safetensors$")


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer layers of a BERT-style ``AutoModel`` (``model.encoder.layer``)."""
    return model.encoder.layer


def top_layer_files(pack_dir: str | Path) -> dict[int, Path]:
    """``{layer index: file}`` of the pack's fine-tuned layers (empty when it has none)."""
    pack = Path(pack_dir)
    found = {int(m.group(1)): p for p in pack.glob(f"{PREFIX}*.safetensors") if (m := _NAME.match(p.name))}
    return dict(sorted(found.items()))


def save_top_layers(layers: dict[int, nn.Module], pack_dir: str | Path) -> list[Path]:
    """Write each layer's weights as fp16 ``text_top_layer_<i>.safetensors`` into ``pack_dir``."""
    out = []
    for i, layer in sorted(layers.items()):
        path = Path(pack_dir) / f"{PREFIX}{i}.safetensors"
        save_file({k: v.detach().to("cpu", torch.float16).contiguous() for k, v in layer.state_dict().items()},
                  str(path))
        out.append(path)
    return out


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
        ref = next(layers[i].parameters())
        state = {k: v.to(ref.device, ref.dtype) for k, v in load_file(str(path)).items()}
        layers[i].load_state_dict(state, strict=True)
        h.update(path.read_bytes())
    encoder.name = f"{encoder.name}+top{''.join(str(i) for i in files)}:{h.hexdigest()[:12]}"
    return list(files)
