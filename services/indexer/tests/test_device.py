import pytest

from indexer import device as devices


def test_cpu_unless_a_gpu_is_there_and_clear_errors_otherwise():
    assert devices.choose("cpu").name == "cpu"
    assert devices.choose("auto").name == ("cuda:0" if devices.gpus() else "cpu")
    with pytest.raises(ValueError, match="expected auto, cpu or cuda:N"):
        devices.choose("tpu")
    with pytest.raises(ValueError, match=r"faiss sees \d+ CUDA device"):
        devices.choose(f"cuda:{devices.gpus()}")


@pytest.mark.gpu
def test_auto_chooses_the_gpu_where_faiss_sees_one():
    assert devices.gpus() >= 1
    assert isinstance(devices.choose("auto"), devices.Gpu)
