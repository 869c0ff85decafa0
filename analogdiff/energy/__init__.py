"""The cost model: energy and latency per generated token on analog in-memory hardware and on GPUs.

    import analogdiff as ad
    report = ad.estimate("llada-8b", "pcm-ibm", decode=ad.Diffusion(steps=256, seq_len=1024))
    sweep = ad.estimate_many("gpt2-small", "pcm-ibm", ad.Autoregressive(1024),
                             overrides={"adc.bits": np.arange(4, 11)})
    cost = ad.estimate_layers(collect_stats(amodel), "pcm-ibm")   # the analog layers of a simulated run

Reads shapes and hardware descriptions, never live modules.
"""
from analogdiff.energy.decode import Autoregressive, Diffusion, Work, schedule_work, work_from_trace
from analogdiff.energy.estimate import estimate, estimate_calibration, estimate_layers, estimate_many
from analogdiff.energy.report import CostReport
from analogdiff.shapes import LinearLayer, ModelShape, list_shapes, load_shape

__all__ = ["estimate", "estimate_many", "estimate_layers", "estimate_calibration", "CostReport", "ModelShape", "LinearLayer",
           "load_shape", "list_shapes", "Diffusion", "Autoregressive", "Work", "schedule_work", "work_from_trace"]
