"""The int8-kernel MiniLM file: made once, really int8, close to the shipped model, faster."""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path

import numpy as np
import pytest

from ci.seed.querylog import generate_query_log
from service.embed.factory import model_id_for
from service.embed.minilm import MiniLMEmbedder, minilm_paths
from service.embed.quantize import RECIPE, int8_model
from service.errors import ConfigError
from service.settings import Settings


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source, _ = minilm_paths()
    return int8_model(source, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def queries() -> list[str]:
    return [str(q["q"]) for q in generate_query_log(42)["queries"][:64]]


def test_the_file_is_made_once_under_a_name_of_its_inputs(made: Path) -> None:
    source, _ = minilm_paths()
    assert RECIPE in made.name
    before = made.stat().st_mtime_ns
    again = int8_model(source, made.parent)
    assert again == made
    assert made.stat().st_mtime_ns == before  # found, not made again
    assert [p.name for p in made.parent.iterdir()] == [made.name]  # no temporary left


def test_making_the_file_logs_no_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source, _ = minilm_paths()
    with caplog.at_level(logging.WARNING):
        int8_model(source, tmp_path)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    logging.getLogger().warning("a warning after it")  # the filter went with the call
    assert [r.getMessage() for r in caplog.records] == ["a warning after it"]


def test_the_matrix_products_of_the_weights_run_on_int8_kernels(made: Path) -> None:
    import onnx

    ops = [n.op_type for n in onnx.load(str(made)).graph.node]
    shipped = [n.op_type for n in onnx.load(str(minilm_paths()[0])).graph.node]
    assert "MatMulInteger" not in shipped
    # 6 layers x 6 weight products (q, k, v, attention out, two feed-forward)
    assert ops.count("MatMulInteger") == 36
    # what stays float: the two activation products of each layer's attention
    assert ops.count("MatMul") == 12


def test_vectors_stay_close_to_the_shipped_models(tmp_path: Path, queries: list[str]) -> None:
    int8 = MiniLMEmbedder(kernels="int8", cache_dir=tmp_path).embed_sync(queries)
    shipped = MiniLMEmbedder(kernels="shipped").embed_sync(queries)
    cos = np.sum(int8 * shipped, axis=1)
    # measured 0.986 min, 0.994 median (benchmarks/minilm_kernels.py); a per-tensor
    # recipe gives 0.93 / 0.97 and fails here
    assert float(cos.min()) >= 0.98, float(cos.min())
    assert float(np.median(cos)) >= 0.99, float(np.median(cos))


def test_one_query_embeds_faster_on_int8_kernels(tmp_path: Path, queries: list[str]) -> None:
    models = {
        "int8": MiniLMEmbedder(threads=1, kernels="int8", cache_dir=tmp_path),
        "shipped": MiniLMEmbedder(threads=1, kernels="shipped"),
    }
    for m in models.values():
        m.embed_sync(queries[:4])

    def ms(model: MiniLMEmbedder) -> float:
        start = time.perf_counter()
        for q in queries[:24]:
            model.embed_sync([q])
        return (time.perf_counter() - start) / 24 * 1000

    ratios = []
    for _ in range(5):  # side by side, the median of the pairs: a noisy machine moves both
        ratios.append(ms(models["shipped"]) / ms(models["int8"]))
    # measured 2.9x on this machine's 2 cores
    assert statistics.median(ratios) >= 1.5, ratios


def test_an_unusable_cache_folder_is_named_in_the_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    source, _ = minilm_paths()
    with pytest.raises(ConfigError, match=r"SEARCH_MODEL_CACHE_DIR=.*file/models"):
        int8_model(source, blocker / "models")


def test_the_kernels_are_part_of_the_model_id() -> None:
    int8 = model_id_for(Settings.from_env({"SEARCH_MINILM_KERNELS": "int8"}))
    shipped = model_id_for(Settings.from_env({"SEARCH_MINILM_KERNELS": "shipped"}))
    assert int8 != shipped
    assert model_id_for(Settings.from_env({})) == int8
    assert MiniLMEmbedder(kernels="shipped").model_id == shipped


def test_a_bad_kernels_value_is_named() -> None:
    with pytest.raises(ConfigError, match="SEARCH_MINILM_KERNELS='fp16'"):
        Settings.from_env({"SEARCH_MINILM_KERNELS": "fp16"})
    with pytest.raises(ConfigError, match="SEARCH_MINILM_KERNELS='fp16'"):
        MiniLMEmbedder(kernels="fp16")
