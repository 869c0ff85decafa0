"""analogdiff — diffusion language models on simulated analog in-memory hardware.

Public API (imported lazily so that ``import analogdiff`` stays fast)::

    import analogdiff as ad
    hw = ad.load_hardware("pcm-ibm", overrides={"adc.bits": 6})
    report = ad.estimate("llada-8b", hw, decode=ad.Diffusion(steps=256, seq_len=1024))
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # hardware description
    "load_hardware": "analogdiff.config",
    "dump_hardware": "analogdiff.config",
    "list_hardware": "analogdiff.config",
    "Hardware": "analogdiff.config",
    "ConfigError": "analogdiff.config",
    # language models
    "load_model": "analogdiff.lm",
    "generate": "analogdiff.lm",
    "evaluate": "analogdiff.lm",
    "train": "analogdiff.lm",
    # crossbar
    "analogize": "analogdiff.crossbar.layers",
    "set_drift_time": "analogdiff.crossbar.layers",
    "collect_stats": "analogdiff.crossbar.layers",
    "AnalogLinear": "analogdiff.crossbar.layers",
    "mapping_report": "analogdiff.crossbar.report",
    "save_programmed": "analogdiff.crossbar.state",
    "load_programmed": "analogdiff.crossbar.state",
    # one experiment (program → drift → measure → price the run's own trace)
    "Experiment": "analogdiff.bench.experiment",
    "Score": "analogdiff.bench.experiment",
    "Generate": "analogdiff.bench.experiment",
    "run_experiment": "analogdiff.bench.experiment",
    "Trace": "analogdiff.trace",
    # energy
    "estimate": "analogdiff.energy",
    "estimate_many": "analogdiff.energy",
    "estimate_layers": "analogdiff.energy",
    "estimate_calibration": "analogdiff.energy",
    "CostReport": "analogdiff.energy",
    "ModelShape": "analogdiff.shapes",
    "load_shape": "analogdiff.shapes",
    "list_shapes": "analogdiff.shapes",
    "Diffusion": "analogdiff.energy",
    "Autoregressive": "analogdiff.energy",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'analogdiff' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
