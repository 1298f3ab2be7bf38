"""How ``--ray`` sizes its workers (``deepanon.cluster.plan_workers``): no Ray needed."""

from deepanon.api import MAX_FILES_PER_CALL
from deepanon.cluster import WorkerPlan, plan_workers


def test_cpu_workers_one_per_cpu_with_the_generator_batch_as_files_per_call():
    options = {"batch_size": 2}
    assert plan_workers({"CPU": 2.0}, options, None, 100) == WorkerPlan(actors=2, cpus=1, gpus=0, files_per_call=2)
    assert plan_workers({"CPU": 8.0}, options, 3, 100) == WorkerPlan(actors=3, cpus=2, gpus=0, files_per_call=2)
    assert plan_workers({"CPU": 8.0}, options, None, 5) == WorkerPlan(actors=3, cpus=2, gpus=0, files_per_call=2)
    assert plan_workers({"CPU": 2.0}, {"compile": True}, None, 100).files_per_call == 8
    assert plan_workers({"CPU": 2.0}, {"replacement": "blur", "batch_size": 8}, None, 100).files_per_call == 1


def test_gpu_workers_one_per_gpu_unless_the_cpu_is_asked_for():
    resources = {"CPU": 32.0, "GPU": 4.0}
    assert plan_workers(resources, {}, None, 1000) == WorkerPlan(actors=4, cpus=8, gpus=1,
                                                                files_per_call=MAX_FILES_PER_CALL)
    assert plan_workers(resources, {}, 8, 1000).actors == 4  # never more actors than GPUs
    assert plan_workers(resources, {"batch_size": 4}, 2, 1000) == WorkerPlan(actors=2, cpus=16, gpus=1, files_per_call=4)
    assert plan_workers(resources, {}, None, 20) == WorkerPlan(actors=2, cpus=16, gpus=1, files_per_call=16)
    on_cpu = plan_workers(resources, {"device": "cpu", "precision": "fp32"}, None, 1000)
    assert on_cpu == WorkerPlan(actors=32, cpus=1, gpus=0, files_per_call=1)
