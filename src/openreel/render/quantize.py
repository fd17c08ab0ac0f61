"""Weight-only int8 quantization (torchao) of a pipeline's large components, through diffusers' own
``PipelineQuantizationConfig`` at load time.

Quantizing while loading keeps the load's peak at about the quantized size: diffusers (and
transformers, for the text encoders) quantize each layer as its weights arrive, where quantizing
after ``from_pretrained`` would first hold every weight at full precision. Only ``nn.Linear``
weights become int8 (one scale per output channel); embeddings, norms and convolutions keep the
pipeline's dtype. Activations stay in that dtype too: a Linear dequantizes its weight to compute.

torchao is optional (``pip install 'openreel[quant]'``). The planner asks ``available()`` only;
nothing here imports torch or torchao until a pipeline is loaded quantized.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

EXTRA = "openreel[quant]"
# diffusers 0.42's TorchAoConfig refuses torchao older than this.
MIN_TORCHAO = (0, 15)
# torchao's import logs warnings that are harmless here (CUDA-only kernels that a CPU torch cannot
# load, Enum pytree registrations torch 2.13 deprecates) and diffusers warns about checkpoint
# classes of older torchao versions; none of them is about what openreel does.
_NOISY_LOGGERS = ("torchao", "torch.utils._pytree", "diffusers.quantizers.torchao.torchao_quantizer")


def quiet_backend_logs() -> None:
    """Keep torchao's import-time warnings out of openreel's output (imports nothing)."""
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def available() -> bool:
    """Whether torchao is installed at a version diffusers' TorchAoConfig accepts."""
    if importlib.util.find_spec("torchao") is None:
        return False
    try:
        version = tuple(int(part) for part in metadata.version("torchao").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return False
    return version >= MIN_TORCHAO


def _int8_config() -> Any:
    quiet_backend_logs()
    from torchao.quantization import Int8WeightOnlyConfig

    return Int8WeightOnlyConfig()


def pipeline_config(folder: Path, components: Iterable[str]) -> Any:
    """diffusers' PipelineQuantizationConfig quantizing ``components`` of the pipeline in
    ``folder`` to int8 weight-only. Each component gets its own library's TorchAoConfig
    (transformers for the text encoders, diffusers for the rest), as model_index.json names it:
    the pipeline-wide ``quant_backend`` form refuses torchao because the two libraries'
    TorchAoConfig signatures differ (diffusers 0.42.1, transformers 5)."""
    quiet_backend_logs()
    import diffusers
    import transformers

    index = json.loads((Path(folder) / "model_index.json").read_text(encoding="utf-8"))
    mapping = {}
    for name in components:
        if name not in index:
            continue  # a folder without it (a local pipeline of another make-up)
        library = index[name][0]
        config_class = transformers.TorchAoConfig if library == "transformers" else diffusers.TorchAoConfig
        mapping[name] = config_class(_int8_config())
    return diffusers.PipelineQuantizationConfig(quant_mapping=mapping)


def quantize_components(pipe: Any, components: Iterable[str]) -> None:
    """int8 weight-only quantization of already loaded components, in place: for pipelines a
    family builds component by component (Pyramid Flow's published layout), where no
    ``from_pretrained`` of the whole pipeline takes a quantization config."""
    from torchao.quantization import quantize_

    config = _int8_config()
    for name in components:
        module = getattr(pipe, name, None)
        if module is not None and not holds_torchao(module):
            quantize_(module, config)


def holds_torchao(module: Any) -> bool:
    """Whether any of ``module``'s weights is a torchao tensor (quantized)."""
    import sys

    if "torchao" not in sys.modules:
        return False  # nothing was quantized in this process
    from torchao.utils import TorchAOBaseTensor

    return any(isinstance(parameter, TorchAOBaseTensor) for parameter in module.parameters())
