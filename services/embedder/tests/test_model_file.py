"""Model files (facesearch_common/specs.py: model_file): a built-in model
written as network.onnx plus model.toml (`facesearch model export`) is
wrapped by the crop embedder exactly as the built-in one, in PyTorch and in
the exported ONNX graph the embedder serves; and a model file that cannot be
served says which key is wrong."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from devkit import lfw
from devkit.recipe import inputs
from embedder import engines, export, graphs, network
from facesearch_common import triton
from facesearch_common.specs import MOBILEFACENET_CASIA as SPEC
from facesearch_common.specs import ModelFileError, get_spec, model_file

pytestmark = pytest.mark.lfw


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return export.export_model_file(SPEC, lfw.MOBILEFACENET, tmp_path_factory.mktemp("model"))


def crops() -> dict[str, np.ndarray]:
    return inputs([np.asarray(lfw.crop(lfw.photos(n)[1])) for n in lfw.identities()[:6]])


def test_the_exported_file_describes_the_built_in_model(exported):
    spec = get_spec(str(exported))
    assert spec.name == "mobilefacenet-casia-onnx" and spec.network_file == str(exported.parent / "network.onnx")
    for key in ("height", "width", "dim", "alignment", "template", "channels", "pixel_mean", "pixel_std"):
        assert getattr(spec, key) == getattr(SPEC, key), key
    assert spec.calibration == SPEC.calibration and spec.calibrated


@pytest.mark.slow
def test_a_model_file_embeds_as_the_built_in_model(exported, tmp_path):
    spec = model_file(exported)
    batch = crops()
    tensors = (torch.tensor(batch[triton.CROPS]), torch.tensor(batch[triton.SIZES]))
    embeddings = export.OUTPUTS.index(triton.EMBEDDINGS)
    with torch.inference_mode():
        built_in = network.build(SPEC, lfw.MOBILEFACENET, lfw.YUNET)(*tensors)[embeddings]
        from_file = network.build(spec, Path(spec.network_file), lfw.YUNET)(*tensors)[embeddings]
    assert float((built_in - from_file).abs().max()) < 1e-4
    # And as the embedder serves it: the crop embedder's ONNX graph, on ONNX Runtime.
    served = graphs.onnx_session(engines.onnx_file(spec, Path(spec.network_file), lfw.YUNET, tmp_path))(batch)
    assert np.abs(served[triton.EMBEDDINGS] - built_in.numpy()).max() < 1e-4


def test_its_recipe_is_part_of_the_graphs_name(exported, tmp_path):
    spec = model_file(exported)
    bgr = replace(spec, channels="BGR")
    network_file = Path(spec.network_file)
    assert graphs.crops_path(spec, network_file, lfw.YUNET, tmp_path) != graphs.crops_path(
        bgr, network_file, lfw.YUNET, tmp_path
    )


def broken(exported: Path, tmp_path: Path, old: str, new: str) -> str:
    folder = tmp_path / "broken"
    shutil.copytree(exported.parent, folder, dirs_exist_ok=True)
    text = (folder / "model.toml").read_text()
    assert old in text, old
    (folder / "model.toml").write_text(text.replace(old, new))
    with pytest.raises(ModelFileError) as refused:
        model_file(folder / "model.toml")
    return str(refused.value)


@pytest.mark.parametrize(
    "old,new,says",
    [
        ('sha256 = "', 'sha256 = "0', "network.sha256 does not match"),
        ('file = "network.onnx"', 'file = "missing.onnx"', "network.file 'missing.onnx' is not a file"),
        ('name = "mobilefacenet-casia-onnx"', 'name = "mobilefacenet-casia"', "not a built-in one"),
        ('kind = "landmarks"', 'kind = "eyes"', "alignment.kind must be landmarks or box_margin"),
        ('channels = "RGB"', 'channels = "YUV"', "network.channels must be RGB or BGR"),
        ("input_size = [112, 96]", "input_size = [112]", "input_size must be a list of 2 numbers"),
        ("std = [128.0, 128.0, 128.0]", "std = [128.0, 0.0, 128.0]", "network.std must be positive"),
        ("genuine_sd = 0.1296", "genuine_sd = -1", "[calibration] needs finite"),
        ("[alignment]", "[alignment", "not valid TOML"),
    ],
)
def test_a_broken_model_file_says_what_is_wrong(exported, tmp_path, old, new, says):
    assert says in broken(exported, tmp_path, old, new)


def test_without_a_calibration_it_is_served_uncalibrated(exported, tmp_path):
    folder = tmp_path / "plain"
    shutil.copytree(exported.parent, folder)
    text = (folder / "model.toml").read_text()
    (folder / "model.toml").write_text(text[: text.index("[calibration]")])
    assert not model_file(folder / "model.toml").calibrated
