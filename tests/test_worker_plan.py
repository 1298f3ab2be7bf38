"""How ``--ray`` sizes its workers (``deepanon.cluster.plan_workers``): no Ray needed."""

from deepanon.api import MAX_FILES_PER_CALL
from deepanon.cluster import WorkerPlan, plan_workers


def test_cpu_workers_one_per_cpu_with_the_generator_batch_as_files_per_call():
    options = {"batch_size": 2}
    assert plan_workers([{"CPU": 2.0}], options, None, 100) == WorkerPlan(actors=2, cpus=1, gpus=0, files_per_call=2)
    assert plan_workers([{"CPU": 8.0}], options, 3, 100) == WorkerPlan(actors=3, cpus=2, gpus=0, files_per_call=2)
    assert plan_workers([{"CPU": 8.0}], options, None, 5) == WorkerPlan(actors=3, cpus=2, gpus=0, files_per_call=2)
    assert plan_workers([{"CPU": 2.0}], {"compile": True}, None, 100).files_per_call == 8
    assert plan_workers([{"CPU": 2.0}], {"replacement": "blur", "batch_size": 8}, None, 100).files_per_call == 1
    # two workers on two 4-CPU machines: 4 threads each, never more than one machine has
    assert plan_workers([{"CPU": 4.0}, {"CPU": 4.0}], options, 2, 100).cpus == 4
    assert plan_workers([{"CPU": 4.0}, {"CPU": 4.0}], options, 1, 100).cpus == 4


def test_gpu_workers_one_per_gpu_unless_the_cpu_is_asked_for_or_nothing_is_generated():
    nodes = [{"CPU": 16.0}, {"CPU": 8.0, "GPU": 1.0}, {"CPU": 24.0, "GPU": 2.0}]  # a head without a GPU
    assert plan_workers(nodes, {}, None, 1000) == WorkerPlan(actors=3, cpus=8, gpus=1, files_per_call=MAX_FILES_PER_CALL)
    assert plan_workers(nodes, {}, 8, 1000).actors == 3  # never more actors than GPUs
    assert plan_workers(nodes, {"batch_size": 4}, 2, 1000) == WorkerPlan(actors=2, cpus=8, gpus=1, files_per_call=4)
    assert plan_workers(nodes, {}, None, 20) == WorkerPlan(actors=2, cpus=8, gpus=1, files_per_call=16)
    on_cpu = plan_workers(nodes, {"device": "cpu", "precision": "fp32"}, None, 1000)
    assert on_cpu == WorkerPlan(actors=48, cpus=1, gpus=0, files_per_call=1)
    assert plan_workers(nodes, {"replacement": "blur"}, None, 1000) == on_cpu  # covering needs no GPU
