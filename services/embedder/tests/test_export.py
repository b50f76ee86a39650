"""The exported Triton repository: its ONNX model computes the in-process
model's embeddings, and its config is a valid Triton ModelConfig."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from devkit import lfw
from embedder import export, network
from facesearch_common.specs import MOBILEFACENET_CASIA as SPEC

pytestmark = pytest.mark.lfw


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export.export(SPEC, lfw.MOBILEFACENET, tmp_path_factory.mktemp("repo"), max_batch=32, instances=2)


def faces(n: int) -> np.ndarray:
    """Real faces (LFW centres at the model's size) and noise."""
    real = [
        np.asarray(lfw.centre(lfw.photos(name)[0]).resize((SPEC.width, SPEC.height))) for name in lfw.identities()[:n]
    ]
    noise = np.random.default_rng(0).integers(0, 256, (n, SPEC.height, SPEC.width, 3), dtype=np.uint8)
    return np.concatenate([np.stack(real), noise])


def test_onnx_embeddings_match_the_in_process_model(exported):
    batch = faces(6)
    with torch.inference_mode():
        expected = network.build(SPEC, lfw.MOBILEFACENET)(torch.from_numpy(batch)).numpy()
    session = ort.InferenceSession(str(exported / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    for size in (1, 5, 12):  # any batch size
        got = session.run([export.OUTPUT], {export.INPUT: batch[:size]})[0]
        assert got.shape == (size, SPEC.dim) and got.dtype == np.float32
        assert np.abs(got - expected[:size]).max() < 1e-4
        assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)


def test_config_is_a_triton_model_config(exported):
    config = text_format.Parse((exported / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert (config.name, config.platform, config.max_batch_size) == (SPEC.name, "onnxruntime_onnx", 32)
    assert config.input[0].data_type == model_config_pb2.TYPE_UINT8
    assert list(config.input[0].dims) == [SPEC.height, SPEC.width, 3]
    assert list(config.output[0].dims) == [SPEC.dim]
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    assert (config.instance_group[0].count, config.instance_group[0].kind) == (
        2,
        model_config_pb2.ModelInstanceGroup.KIND_AUTO,
    )


def test_the_served_engines_agree_and_the_export_is_cached(tmp_path):
    from embedder import engines

    batch = faces(4)
    by_torch = engines.build("torch", SPEC, lfw.MOBILEFACENET, "cpu", tmp_path)(batch)
    by_ort = engines.build("onnxruntime", SPEC, lfw.MOBILEFACENET, "cpu", tmp_path)(batch)
    assert np.abs(by_torch - by_ort).max() < 1e-4
    cached = list(tmp_path.glob("*.onnx"))
    assert len(cached) == 1 and not list(tmp_path.glob("*.partial"))
    engines.build("onnxruntime", SPEC, lfw.MOBILEFACENET, "cpu", tmp_path)
    assert list(tmp_path.glob("*.onnx")) == cached
    with pytest.raises(ValueError, match="EMBEDDER_ENGINE"):
        engines.choose("tensorrt", "cpu", SPEC)
    # auto: the engine measured faster for the model on CPU, torch on CUDA.
    from facesearch_common.specs import FACENET_VGGFACE2

    assert engines.choose("auto", "cpu", FACENET_VGGFACE2) == "onnxruntime"
    assert engines.choose("auto", "cpu", SPEC) == "torch"
    assert engines.choose("torch", "cpu", FACENET_VGGFACE2) == "torch"
    assert engines.choose("onnxruntime", "cpu", SPEC) == "onnxruntime"
    assert engines.choose("auto", "cuda", FACENET_VGGFACE2) == "torch"
