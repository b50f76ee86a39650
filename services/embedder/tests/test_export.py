"""The exported Triton repository: its ONNX graphs compute what the
in-process crop embedder and face detector compute, and its configs are
valid Triton ModelConfigs for the official image."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from google.protobuf import text_format
from PIL import Image
from torch import nn
from tritonclient.grpc import model_config_pb2

from devkit import lfw
from devkit.recipe import inputs
from embedder import engines, export, graphs, network
from facesearch_common import triton
from facesearch_common.specs import MOBILEFACENET_CASIA as SPEC

pytestmark = pytest.mark.lfw


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    return export.export(SPEC, lfw.MOBILEFACENET, lfw.YUNET, tmp_path_factory.mktemp("repo"), max_batch=32, instances=2)


@pytest.fixture(scope="module")
def exported(repository):
    return repository[0]


def crops(n: int) -> dict[str, np.ndarray]:
    """Real face crops of several sizes, and noise."""
    real = [np.asarray(lfw.crop(lfw.photos(name)[1], side=80 + 8 * i)) for i, name in enumerate(lfw.identities()[:n])]
    noise = list(np.random.default_rng(0).integers(0, 256, (n, 100, 90, 3), dtype=np.uint8))
    return inputs(real + noise)


@pytest.mark.slow
def test_onnx_graph_matches_the_in_process_crop_embedder(exported):
    batch = crops(6)
    net = network.build(SPEC, lfw.MOBILEFACENET, lfw.YUNET)
    with torch.inference_mode():
        expected = [
            t.numpy() for t in net(torch.from_numpy(batch[triton.CROPS]), torch.from_numpy(batch[triton.SIZES]))
        ]
    session = ort.InferenceSession(str(exported / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    for size in (1, 5, 12):  # any batch size
        got = session.run(list(export.OUTPUTS), {name: batch[name][:size] for name in export.INPUTS})
        assert got[0].shape == (size, SPEC.dim) and got[0].dtype == np.float32
        assert np.abs(got[0] - expected[0][:size]).max() < 1e-4  # embeddings
        assert np.abs(got[1] - expected[1][:size]).max() < 1e-4  # face scores
        assert np.abs(got[3] - expected[3][:size]).max() < 1e-2  # landmarks, in pixels
        assert np.allclose(np.linalg.norm(got[0], axis=1), 1, atol=1e-5)
    assert expected[1][:6].min() > 0.5 > expected[1][6:].max()  # faces, then noise


def test_prelu_is_exported_in_a_form_onnx_runtime_fuses(exported):
    channels = nn.PReLU(3)
    channels.weight.data = torch.tensor([-2.0, 0.25, 1.5])  # slopes below 0 and above 1, as trained
    model = nn.Sequential(nn.Conv2d(3, 3, 1), channels, nn.Flatten(), nn.Linear(75, 4), nn.PReLU(4))
    x = torch.randn(2, 3, 5, 5)
    with torch.inference_mode():
        assert torch.allclose(export.exportable(model)(x), model(x), atol=1e-6)
    assert isinstance(model[1], nn.PReLU)  # the model itself is left as it was
    ops = {node.op_type for node in onnx.load(str(exported / "1" / "model.onnx")).graph.node}
    assert "PRelu" not in ops and "Conv" in ops


def test_config_is_a_triton_model_config_for_the_official_image(exported):
    config = text_format.Parse((exported / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert (config.name, config.platform, config.max_batch_size) == (SPEC.name, "onnxruntime_onnx", 32)
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [
        (triton.CROPS, model_config_pb2.TYPE_UINT8, [triton.CANVAS_SIDE, triton.CANVAS_SIDE, 3]),
        (triton.SIZES, model_config_pb2.TYPE_INT32, [2]),
    ]
    assert [(o.name, list(o.dims)) for o in config.output] == [
        (triton.EMBEDDINGS, [SPEC.dim]),
        (triton.SCORES, [1]),
        (triton.BOXES, [4]),
        (triton.LANDMARKS, [5, 2]),
    ]
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    assert (config.instance_group[0].count, config.instance_group[0].kind) == (
        2,
        model_config_pb2.ModelInstanceGroup.KIND_AUTO,
    )
    (tensorrt,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert (tensorrt.name, dict(tensorrt.parameters)) == ("tensorrt", {"precision_mode": "FP16"})


def test_the_face_detector_is_exported_beside_it(repository):
    crops, detector = repository
    assert (crops.name, detector.name) == (SPEC.name, triton.DETECTOR_MODEL)
    config = text_format.Parse((detector / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert (config.platform, config.max_batch_size) == ("onnxruntime_onnx", 32)
    side = triton.PHOTO_SIDE
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [
        (triton.DETECTOR_INPUT, model_config_pb2.TYPE_UINT8, [side, side, 3])
    ]
    assert [o.name for o in config.output] == list(triton.DETECTOR_OUTPUTS)
    session = ort.InferenceSession(str(detector / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    photo = np.zeros((2, side, side, 3), np.uint8)
    photo[1, :250, :250] = np.asarray(Image.open(lfw.photos(lfw.identities()[0])[0]).convert("RGB"))
    boxes, scores, landmarks = session.run(list(triton.DETECTOR_OUTPUTS), {triton.DETECTOR_INPUT: photo})
    assert boxes.shape == (2, triton.MAX_FACES, 4) and landmarks.shape == (2, triton.MAX_FACES, 5, 2)
    assert scores[0].max() == 0 and scores[1, 0] >= triton.DETECTOR_MIN_SCORE


@pytest.mark.slow
def test_the_served_engines_agree_and_the_export_is_cached(tmp_path):
    batch = crops(3)
    by_torch = engines.build("torch", SPEC, lfw.MOBILEFACENET, lfw.YUNET, "cpu", tmp_path)(batch)
    by_ort = engines.build("onnxruntime", SPEC, lfw.MOBILEFACENET, lfw.YUNET, "cpu", tmp_path)(batch)
    assert np.abs(by_torch[triton.EMBEDDINGS] - by_ort[triton.EMBEDDINGS]).max() < 1e-4
    cached = list(tmp_path.glob("*.onnx"))
    assert len(cached) == 1 and not list(tmp_path.glob("*.partial"))
    engines.build("onnxruntime", SPEC, lfw.MOBILEFACENET, lfw.YUNET, "cpu", tmp_path)
    assert list(tmp_path.glob("*.onnx")) == cached
    with pytest.raises(ValueError, match="EMBEDDER_ENGINE"):
        graphs.choose("tensorrt", "cpu", SPEC)
    # auto: the engine measured faster for the model on CPU, torch on CUDA.
    from facesearch_common.specs import FACENET_VGGFACE2

    assert graphs.choose("auto", "cpu", FACENET_VGGFACE2) == "onnxruntime"
    assert graphs.choose("auto", "cpu", SPEC) == "onnxruntime"
    assert graphs.choose("torch", "cpu", FACENET_VGGFACE2) == "torch"
    assert graphs.choose("onnxruntime", "cpu", SPEC) == "onnxruntime"
    assert graphs.choose("auto", "cuda", FACENET_VGGFACE2) == "torch"
