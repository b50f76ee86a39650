import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch

from devkit import lfw
from embedder import engines, graphs, network, weights
from facesearch_common import triton
from facesearch_common.specs import FACENET_VGGFACE2, MOBILEFACENET_CASIA, sha256_of


def test_missing_weights_say_what_to_do(tmp_path):
    with pytest.raises(weights.WeightsError, match=r"FACESEARCH_WEIGHTS=.*does not exist"):
        weights.resolve(FACENET_VGGFACE2, tmp_path / "nope.pt", tmp_path)
    offline = dataclasses.replace(FACENET_VGGFACE2, weights_url="")
    with pytest.raises(
        weights.WeightsError, match=r"set FACESEARCH_WEIGHTS to the path of 20180402-114759-vggface2\.pt"
    ):
        weights.resolve(offline, None, tmp_path)


def test_wrong_weights_are_refused_by_sha256(tmp_path):
    bogus = tmp_path / "20180402-114759-vggface2.pt"
    bogus.write_bytes(b"not the weights")
    with pytest.raises(weights.WeightsError, match="wrong or corrupted weights file"):
        weights.resolve(FACENET_VGGFACE2, bogus, tmp_path)
    # The cache is checked too.
    with pytest.raises(weights.WeightsError, match="wrong or corrupted"):
        weights.resolve(FACENET_VGGFACE2, None, tmp_path)


def test_facenet_builds_from_a_weights_file(tmp_path):
    """The InceptionResnetV1 path end to end, with stand-in weights (the real
    ones cannot be fetched here): file -> state dict -> 512-d unit vectors."""
    from facenet_pytorch import InceptionResnetV1

    path = tmp_path / "facenet.pt"
    state = InceptionResnetV1(pretrained=None, classify=True, num_classes=8).state_dict()
    torch.save(state, path)  # facenet-pytorch's files carry the logits layer too
    spec = dataclasses.replace(FACENET_VGGFACE2, weights_sha256=sha256_of(path))
    net = network.build_face_network(spec, weights.resolve(spec, path, tmp_path))
    faces = torch.randint(0, 256, (2, spec.height, spec.width, 3), dtype=torch.uint8)
    with torch.inference_mode():
        out = net(faces)
    assert out.shape == (2, 512)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))


def test_embedder_refuses_to_start_without_weights(tmp_path):
    env = {
        "FACESEARCH_MODEL": "facenet-vggface2",
        "FACESEARCH_WEIGHTS": str(tmp_path / "missing.pt"),
        "FACESEARCH_DATA_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "embedder.server"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2
    assert "FACESEARCH_WEIGHTS=" in done.stderr and "does not exist" in done.stderr


@pytest.mark.lfw
def test_mobilefacenet_checkpoint_loads_strictly_and_embeds_unit_vectors():
    net = network.build_face_network(
        MOBILEFACENET_CASIA, weights.resolve(MOBILEFACENET_CASIA, lfw.MOBILEFACENET, lfw.MOBILEFACENET.parent)
    )
    assert sum(p.numel() for p in net.parameters()) > 900_000
    faces = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 112, 96, 3), dtype=np.uint8))
    with torch.inference_mode():
        out = net(faces)
    assert out.shape == (3, 128)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))


def test_precision_is_fp16_on_cuda_fp32_on_cpu_unless_chosen():
    assert graphs.precision("auto", "cpu") == "fp32"
    assert graphs.precision("auto", "cuda:0") == "fp16"
    assert graphs.precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="EMBEDDER_PRECISION must be auto or one of fp32, fp16, bf16, got 'int8'"):
        graphs.precision("int8", "cuda")
    with pytest.raises(ValueError, match="precision must be one of"):
        network.build_face_network(MOBILEFACENET_CASIA, lfw.MOBILEFACENET, precision="fp64")


def real_crops(identities: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The crop embedder's inputs for every lfw-dev photo of the first
    `identities` identities, cut as a client would, and each one's identity."""
    from devkit.recipe import inputs

    names = lfw.identities()[:identities]
    crops = [(i, np.asarray(lfw.crop(p))) for i, n in enumerate(names) for p in lfw.photos(n)]
    return inputs([c for _, c in crops]), np.array([i for i, _ in crops])


def embeddings(device: str, precision: str, crops: dict[str, np.ndarray]) -> np.ndarray:
    engine = engines.torch_engine(MOBILEFACENET_CASIA, lfw.MOBILEFACENET, lfw.YUNET, device, precision)
    return engine(crops)[triton.EMBEDDINGS]


def nearest(embeddings: np.ndarray) -> np.ndarray:
    scores = embeddings @ embeddings.T
    np.fill_diagonal(scores, -np.inf)
    return scores.argmax(axis=1)


@pytest.mark.slow
@pytest.mark.lfw
def test_bf16_backbone_returns_float32_unit_vectors_close_to_fp32():
    crops, _ = real_crops(4)
    exact, half = embeddings("cpu", "fp32", crops), embeddings("cpu", "bf16", crops)
    assert half.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(half, axis=1), 1, atol=1e-5)
    assert (half * exact).sum(axis=1).min() > 0.999
    assert (half != exact).any()  # it did run in bf16


@pytest.mark.gpu
@pytest.mark.lfw
def test_fp16_on_the_gpu_keeps_every_face_nearest_neighbour():
    """What EMBEDDER_PRECISION=auto (fp16 on CUDA) rests on: on real faces,
    each face's nearest neighbour is the one fp32 finds."""
    crops, labels = real_crops(40)
    exact, half = embeddings("cpu", "fp32", crops), embeddings("cuda:0", "fp16", crops)
    assert (half * exact).sum(axis=1).min() > 0.9999
    assert (nearest(half) == nearest(exact)).all()
    assert np.mean(labels[nearest(half)] == labels) == np.mean(labels[nearest(exact)] == labels)
