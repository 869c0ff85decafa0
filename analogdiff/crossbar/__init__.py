"""The circuit-level crossbar model (knows nothing about language).

devices     programming noise, drift, read (1/f) noise, stuck devices — pure functions of conductances
mapping     weights → differential conductance pairs, bit slices, tiles
wires       exact IR drop (nodal analysis; effective matrix of a linear array)
converters  DAC and ADC: reference functions and the Dac/Adc a layer holds (their cost laws: energy/converters)
tile        programmed tiles: state at a drift time, MVM
kernels     fused numba per-MVM kernels (DAC; read noise + ADC + shift-add), with NumPy/torch twins
layers      AnalogLinear, analogize, set_drift_time, collect_stats
conv        AnalogConv: Conv1d/Conv2d as matrix products on AnalogLinear tiles (im2col)
report      what analogize maps and leaves digital: mapping_report(amodel)
state       save_programmed / load_programmed: a programmed model to safetensors + JSON and back, bit-identical
aihwkit_backend  the same model through aihwkit's torch tiles, for cross-checks
"""
