"""The crop embedder's parts: YuNet as a PyTorch module against its ONNX
file, the closed-form alignment against the least-squares fit, the face
choice in a crop with two faces, and a crop with no face."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from devkit import lfw
from devkit.recipe import inputs
from embedder import crops, network, yunet
from facesearch_common import triton
from facesearch_common.specs import MOBILEFACENET_CASIA as SPEC


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The textbook least-squares similarity (SVD), 2x3."""
    src_c, dst_c = src - src.mean(0), dst - dst.mean(0)
    u, s, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    d = np.array([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / src_c.var(0).sum()
    return np.hstack([scale * rotation, (dst.mean(0) - scale * rotation @ src.mean(0))[:, None]])


def test_closed_form_similarity_is_the_least_squares_fit():
    rng = np.random.default_rng(3)
    template = np.asarray(SPEC.template, np.float64)
    for _ in range(5):
        points = rng.uniform(20, 140, (5, 2))
        forward = umeyama(points, template)
        inverse = crops.similarity_inverse(torch.tensor(points[None], dtype=torch.float32), torch.tensor(template))
        expected = np.linalg.inv(np.vstack([forward, [0, 0, 1]]))[:2]
        np.testing.assert_allclose(inverse[0].numpy(), expected, rtol=1e-4, atol=1e-3)


@pytest.mark.lfw
def test_yunet_module_computes_what_its_onnx_file_computes():
    net = yunet.load_onnx(lfw.YUNET)
    image = np.asarray(Image.open(lfw.photos(lfw.identities()[0])[0]).convert("RGB"))
    bgr = np.zeros((256, 256, 3), np.float32)
    bgr[:250, :250] = image[..., ::-1]
    x = torch.from_numpy(bgr).permute(2, 0, 1)[None]
    with torch.inference_mode():
        mine = net(x)
    session = ort.InferenceSession(str(lfw.YUNET), providers=["CPUExecutionProvider"])
    theirs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"input": x.numpy()}), strict=True))
    for name in ("cls", "obj", "bbox", "kps"):
        expected = np.concatenate([theirs[f"{name}_{s}"][0] for s in yunet.STRIDES]).reshape(mine[name][0].shape)
        np.testing.assert_allclose(mine[name][0].numpy(), expected, atol=1e-4)


@pytest.mark.lfw
def test_yunet_decodes_as_opencv_does():
    """The check ../shared/data/README.md gives: cv2.FaceDetectorYN on
    Ahmed_Chalabi_0001.jpg finds box (74.5, 67.6, w 94.7, h 125.2) and the
    landmarks below."""
    net = yunet.load_onnx(lfw.YUNET)
    image = np.asarray(Image.open(lfw.IDENTITIES / "Ahmed_Chalabi" / "Ahmed_Chalabi_0001.jpg").convert("RGB"))
    bgr = np.zeros((256, 256, 3), np.float32)
    bgr[:250, :250] = image[..., ::-1]
    with torch.inference_mode():
        scores, boxes, landmarks = yunet.decode(
            net(torch.from_numpy(bgr).permute(2, 0, 1)[None]), yunet.cell_grid(256, 256)
        )
    best = int(scores[0].argmax())
    x1, y1, x2, y2 = boxes[0, best].tolist()
    np.testing.assert_allclose([x1, y1, x2 - x1, y2 - y1], [74.5, 67.6, 94.7, 125.2], atol=0.1)
    expected = [(103.4, 112.9), (150.2, 112.7), (129.1, 137.4), (108.4, 158.2), (148.1, 157.3)]
    np.testing.assert_allclose(landmarks[0, best].numpy(), expected, atol=0.1)


@pytest.fixture(scope="module")
def embedder():
    if not lfw.available():
        pytest.skip(f"needs real faces and weights under {lfw.SHARED_DATA} (absent here)")
    return network.build(SPEC, lfw.MOBILEFACENET, lfw.YUNET)


def run(embedder, images: list[np.ndarray]) -> list[torch.Tensor]:
    tensors = inputs(images)
    with torch.inference_mode():
        return list(embedder(torch.from_numpy(tensors[triton.CROPS]), torch.from_numpy(tensors[triton.SIZES])))


@pytest.mark.lfw
def test_a_crop_without_a_face_scores_below_the_refusal_line(embedder):
    blank = np.full((100, 100, 3), 128, np.uint8)
    noise = np.random.default_rng(1).integers(0, 256, (110, 90, 3), dtype=np.uint8)
    wall = np.asarray(Image.open(lfw.photos(lfw.identities()[0])[0]).convert("RGB"))[:60, :60]  # the photo's corner
    face = np.asarray(lfw.crop(lfw.photos(lfw.identities()[0])[1]))
    scores = run(embedder, [blank, noise, wall, face])[1][:, 0]
    assert scores[:3].max() < triton.MIN_FACE_SCORE <= scores[3]


@pytest.mark.lfw
def test_a_crop_with_two_faces_takes_the_central_larger_one(embedder):
    subject = lfw.crop(lfw.photos(lfw.identities()[0])[1], side=84)
    bystander = lfw.crop(lfw.photos(lfw.identities()[1])[1], side=44)
    crop = Image.new("RGB", (120, 120), (90, 90, 90))
    crop.paste(bystander, (0, 0))
    crop.paste(subject, (30, 30))
    two = np.asarray(crop)
    vectors, scores, boxes, _ = run(embedder, [two, np.asarray(subject), np.asarray(bystander)])
    assert scores[0, 0] >= triton.MIN_FACE_SCORE
    offset_x, offset_y = triton.crop_offset(120, 120)
    centre = ((boxes[0, :2] + boxes[0, 2:]) / 2).tolist()
    assert 30 + offset_x < centre[0] < 114 + offset_x and 30 + offset_y < centre[1] < 114 + offset_y
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.3
