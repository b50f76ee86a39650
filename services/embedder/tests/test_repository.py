"""The model repository the embedder serves, and how one dynamic batch is
split back into answers. The served path itself runs in the end-to-end tests
and in test_served_models_answer_from_a_real_tritonserver."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as triton
from google.protobuf import text_format
from PIL import Image
from tritonclient.grpc import model_config_pb2 as mc

from devkit import lfw
from devkit.recipe import inputs
from devkit.stack import wait_triton_ready
from devkit.stackenv import Ports
from embedder import engines, repository, served
from facesearch_common import triton as contract
from facesearch_common.specs import MOBILEFACENET_CASIA as SPEC


def parse(path: Path) -> mc.ModelConfig:
    return text_format.Parse(path.read_text(), mc.ModelConfig())


def test_configs_are_python_backend_models_with_dynamic_batching(tmp_path):
    entries = [
        repository.crop_entry(
            SPEC, "onnxruntime", Path("/w.ckpt"), Path("/y.onnx"), Path("/m.onnx"), instances=2, threads=1
        ),
        repository.photo_entry(Path("/y.onnx"), Path("/p.onnx"), instances=1, threads=0),
    ]
    root = repository.write(tmp_path / "models", entries, max_batch=48, delay_us=1500, gpu=False)
    face = parse(root / SPEC.name / "config.pbtxt")
    assert (face.name, face.backend, face.max_batch_size) == (SPEC.name, "python", 48)
    side = contract.CANVAS_SIDE
    assert [(i.name, list(i.dims), i.data_type) for i in face.input] == [
        (contract.CROPS, [side, side, 3], mc.TYPE_UINT8),
        (contract.SIZES, [2], mc.TYPE_INT32),
    ]
    assert [o.name for o in face.output] == [contract.EMBEDDINGS, contract.SCORES, contract.BOXES, contract.LANDMARKS]
    assert list(face.output[0].dims) == [SPEC.dim]
    assert face.dynamic_batching.max_queue_delay_microseconds == 1500
    assert list(face.dynamic_batching.preferred_batch_size) == [4, 8, 16]  # CPU's sweet spot
    assert (face.instance_group[0].count, face.instance_group[0].kind) == (2, mc.ModelInstanceGroup.KIND_CPU)
    assert {k: v.string_value for k, v in face.parameters.items()} == {
        "kind": "crops",
        "spec": SPEC.name,
        "engine": "onnxruntime",
        "weights": "/w.ckpt",
        "detector": "/y.onnx",
        "onnx": "/m.onnx",
        "threads": "1",
        "precision": "auto",
    }
    detector = parse(root / contract.DETECTOR_MODEL / "config.pbtxt")
    photo = contract.PHOTO_SIDE
    assert list(detector.input[0].dims) == [photo, photo, 3] and detector.instance_group[0].count == 1
    assert detector.parameters["kind"].string_value == "photos"
    assert detector.parameters["onnx"].string_value == "/p.onnx"
    assert [(o.name, list(o.dims)) for o in detector.output] == [
        ("boxes", [contract.MAX_FACES, 4]),
        ("scores", [contract.MAX_FACES]),
        ("landmarks", [contract.MAX_FACES, 5, 2]),
    ]
    model_py = (root / contract.DETECTOR_MODEL / "1" / "model.py").read_text()
    assert "from embedder.backend import TritonPythonModel" in model_py


def test_gpu_instances_and_a_rewrite_drops_models_no_longer_served(tmp_path):
    root = tmp_path / "models"
    photo = repository.photo_entry(Path("/y"), None, 1, 0)
    repository.write(
        root,
        [repository.crop_entry(SPEC, "torch", Path("/w"), Path("/y"), None, 1, 0), photo],
        64,
        2000,
        gpu=False,
    )
    repository.write(
        root,
        [
            repository.crop_entry(SPEC, "torch", Path("/w"), Path("/y"), None, 1, 0, gpu=True),
            photo,
        ],
        64,
        2000,
        gpu=True,
    )
    face = parse(root / SPEC.name / "config.pbtxt")
    assert list(face.dynamic_batching.preferred_batch_size) == []  # the GPU wants big batches
    repository.write(root, [photo], 64, 2000, gpu=True)
    assert sorted(p.name for p in root.iterdir()) == [contract.DETECTOR_MODEL]
    served = parse(root / contract.DETECTOR_MODEL / "config.pbtxt")
    assert served.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU


def test_one_batch_is_split_back_per_request_and_shapes_run_apart():
    calls = []

    def run(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = batch["x"]
        calls.append(x.shape)
        return {"sum": x.reshape(len(x), -1).sum(axis=1) + batch["y"][:, 0], "first": x[:, 0, 0]}

    def request(n: int, side: int, value: int) -> dict[str, np.ndarray]:
        return {"x": np.full((n, side, side), value, np.int64), "y": np.full((n, 1), value, np.int64)}

    small = [request(n, 2, i) for i, n in enumerate((1, 3, 2))]
    large = request(2, 4, 9)
    answers = served.run_batch(run, [small[0], large, small[1], small[2]])
    assert sorted(calls) == [(2, 4, 4), (6, 2, 2)]  # one call per shape
    assert [a["sum"].tolist() for a in answers] == [[0], [153, 153], [5, 5, 5], [10, 10]]
    assert [len(a["first"]) for a in answers] == [1, 2, 3, 2]


@pytest.mark.slow
@pytest.mark.lfw
def test_crop_embedder_built_from_parameters_matches_the_engine(tmp_path):
    onnx = engines.onnx_file(SPEC, lfw.MOBILEFACENET, lfw.YUNET, tmp_path)
    crops = inputs([np.asarray(lfw.crop(lfw.photos(n)[1])) for n in lfw.identities()[:3]])
    expected = engines.build("torch", SPEC, lfw.MOBILEFACENET, lfw.YUNET, "cpu", tmp_path)(crops)
    for engine in ("torch", "onnxruntime"):
        entry = repository.crop_entry(SPEC, engine, lfw.MOBILEFACENET, lfw.YUNET, onnx, 1, 0)
        got = served.build(entry.parameters, "cpu")(crops)
        assert np.abs(got[contract.EMBEDDINGS] - expected[contract.EMBEDDINGS]).max() < 1e-4


@pytest.mark.slow
@pytest.mark.lfw
def test_served_models_answer_from_a_real_tritonserver(tmp_path):
    """embedder.server becomes tritonserver (same pid), serves both models from
    the repository it wrote, and stops with its stubs on SIGTERM."""
    ports = Ports.free()
    env = {
        **os.environ,
        "FACESEARCH_MODEL": SPEC.name,
        "FACESEARCH_WEIGHTS": str(lfw.MOBILEFACENET),
        "FACESEARCH_YUNET_WEIGHTS": str(lfw.YUNET),
        "FACESEARCH_DATA_DIR": str(tmp_path),
        "EMBEDDER_GRPC_PORT": str(ports.embedder_grpc),
        "EMBEDDER_HTTP_PORT": str(ports.embedder_http),
        "EMBEDDER_METRICS_PORT": str(ports.embedder_metrics),
    }
    log = (tmp_path / "embedder.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "embedder.server"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_triton_ready(ports.embedder_http, 120, proc)
        assert proc.poll() is None, (tmp_path / "embedder.log").read_text()[-3000:]
        assert Path(f"/proc/{proc.pid}/exe").resolve().name == "tritonserver"
        client = triton.InferenceServerClient(f"127.0.0.1:{ports.embedder_grpc}")
        crops = inputs([np.asarray(lfw.crop(lfw.photos(n)[1])) for n in lfw.identities()[:5]])
        tensors = []
        for name, kind in ((contract.CROPS, "UINT8"), (contract.SIZES, "INT32")):
            tensors.append(triton.InferInput(name, list(crops[name].shape), kind))
            tensors[-1].set_data_from_numpy(crops[name])
        got = client.infer(SPEC.name, tensors).as_numpy(contract.EMBEDDINGS)
        expected = engines.build("torch", SPEC, lfw.MOBILEFACENET, lfw.YUNET, "cpu", tmp_path)(crops)
        assert np.abs(got - expected[contract.EMBEDDINGS]).max() < 1e-4
        side = contract.PHOTO_SIDE
        images = np.zeros((2, side, side, 3), np.uint8)  # black, and a photo at the top-left corner
        images[1, :250, :250] = np.asarray(Image.open(lfw.photos(lfw.identities()[0])[0]).convert("RGB"))
        tensor = triton.InferInput(contract.DETECTOR_INPUT, list(images.shape), "UINT8")
        tensor.set_data_from_numpy(images)
        scores = client.infer(contract.DETECTOR_MODEL, [tensor]).as_numpy(contract.SCORES)
        assert scores[0].max() == 0 and scores[1, 0] >= contract.DETECTOR_MIN_SCORE
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    time.sleep(1)
    survivors = subprocess.run(
        ["pgrep", "-g", str(proc.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert survivors == [], "stub processes outlived the server"


def test_face_model_instances_default_to_one_single_threaded_per_core():
    from embedder.config import Settings

    cores = len(os.sched_getaffinity(0))
    assert Settings(EMBEDDER_DEVICE="cpu").face_instances() == (cores, 1)
    assert Settings(EMBEDDER_DEVICE="cuda").face_instances() == (1, 0)
    assert Settings(EMBEDDER_DEVICE="cpu", EMBEDDER_INSTANCES=3, EMBEDDER_THREADS=2).face_instances() == (3, 2)


def test_the_queue_delay_is_none_on_the_cpu_and_two_ms_on_cuda_unless_set():
    from embedder.config import Settings

    assert Settings(EMBEDDER_DEVICE="cpu").queue_delay_us() == 0
    assert Settings(EMBEDDER_DEVICE="cuda").queue_delay_us() == 2000
    assert Settings(EMBEDDER_DEVICE="cpu", EMBEDDER_QUEUE_DELAY_US=700).queue_delay_us() == 700


def test_shared_memory_of_killed_servers_is_removed_and_live_ones_kept(tmp_path):
    from embedder import launcher

    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = tmp_path / f"facesearch_{gone.pid}_a1b2"
    live = tmp_path / f"facesearch_{os.getpid()}_c3d4"
    other = tmp_path / "psm_0c798054"
    for path in (dead, live, other):
        path.write_bytes(b"x")
    assert launcher.remove_stale_regions(tmp_path) == [dead]
    assert not dead.exists() and live.exists() and other.exists()


def test_stubs_of_killed_servers_are_stopped_and_live_ones_kept(tmp_path):
    from embedder import launcher

    gone = subprocess.Popen(["true"])
    gone.wait()
    script = tmp_path / "model.py"
    script.write_text("import time\ntime.sleep(60)\n")

    def stub(server: int) -> subprocess.Popen:
        # A stub's command line: its program, the model, the server's region.
        argv = [str(tmp_path / "triton_python_backend_stub"), str(script), f"facesearch_{server}_e5f6", "16777216"]
        return subprocess.Popen(argv, executable=sys.executable)

    orphan, kept = stub(gone.pid), stub(os.getpid())  # Popen returns once they run as stubs
    try:
        stopped = launcher.stop_orphaned_stubs()  # real orphans on this host would be stopped too
        assert orphan.pid in stopped and kept.pid not in stopped
        assert orphan.wait(timeout=10) == -signal.SIGKILL
        assert kept.poll() is None
    finally:
        for process in (orphan, kept):
            process.kill()
            process.wait()
