"""Hardware description: one frozen dataclass per component, built from TOML cards.

A card is a TOML file whose tables are the components below (``[device]``, ``[adc]``, ...).
A table that is absent is a component that is off (``None``); there are no sentinel numbers.
The same card drives the crossbar error model and the energy estimator. This module is the schema only:
the converters' energy and time laws live in ``analogdiff.energy.converters``.

    hw = load_hardware("pcm-ibm", overrides={"adc.bits": 6, "wire": None})
"""
from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping

from analogdiff import checks
from analogdiff.checks import ConfigError  # noqa: F401  (re-exported: the project's one input-error type)


def _doc(text: str, lo: float | None = None, hi: float | None = None,
         lo_open: bool = False) -> dict:
    """Field metadata: its documentation and allowed range [lo, hi] (lo excluded when lo_open)."""
    return {"doc": text, "lo": lo, "hi": hi, "lo_open": lo_open}


def _f(text: str, default: Any = dataclasses.MISSING, lo=None, hi=None, lo_open=False):
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=_doc(text, lo, hi, lo_open))
    return field(default=default, metadata=_doc(text, lo, hi, lo_open))


class _Component:
    """Mixin: type and range checks driven by field metadata, run after construction."""

    section: typing.ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            value = _coerce(f"{self.section}.{f.name}", value, hints[f.name], f.metadata)
            object.__setattr__(self, f.name, value)
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; subclasses override."""

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) is not None}


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    return getattr(tp, "__name__", str(tp))


def _coerce(name: str, value: Any, tp: Any, meta: Mapping) -> Any:
    """Check ``value`` against annotation ``tp`` and the range in ``meta`` (integers exactly, before any
    float conversion); ints widen to float. Raises ConfigError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(name, value, a, meta)
            except ConfigError as e:
                errors.append(e)
        if len(errors) == 1:
            if type(None) in args:  # an optional choice: say how to switch it off
                raise ConfigError(f"{errors[0]} (or none: off)")
            raise errors[0]
        raise ConfigError(f"{name}: expected {_type_name(tp)}, got {checks.short(value)}")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if not isinstance(value, (str, int, float)) or value not in allowed:
            raise ConfigError(f"{name}: {checks.short(value)} is not one of {', '.join(map(repr, allowed))}")
        return value
    if origin is dict:
        if not isinstance(value, Mapping) or not value:
            raise ConfigError(f"{name}: expected a non-empty table, got {checks.short(value)}")
        _, vt = typing.get_args(tp)
        return {checks.text(f"{name} key", k, 20): _coerce(f"{name}.{k}", v, vt, meta) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, got {checks.short(value)}")
        return value
    lo, hi, lo_open = meta.get("lo"), meta.get("hi"), meta.get("lo_open", False)
    if tp is int:  # exact: no float conversion, so no integer can overflow
        return checks.integer(name, value, (-2 ** 31 if lo is None else int(lo)) + int(lo_open),
                              2 ** 31 if hi is None else int(hi))
    if tp is float:  # every field declares its range (a test checks it); the fallback only keeps numbers finite
        return checks.number(name, value, -1e12 if lo is None else lo, 1e12 if hi is None else hi, lo_open)
    if tp is str:
        return checks.text(name, value, checks.MAX_NAME_CHARS)
    raise TypeError(f"unsupported annotation {tp!r} for {name}")  # a bug in this module


# --------------------------------------------------------------------------- components

@dataclass(frozen=True, kw_only=True)
class Device(_Component):
    """Resistive memory devices: conductance window, programming/read noise, stuck devices."""

    section: typing.ClassVar[str] = "device"
    technology: Literal["ideal", "pcm", "rram", "ecram"] = _f(
        "Device family; informative (the noise models below decide the physics).")
    g_max_us: float = _f("Largest programmable conductance, µS.", lo=1e-06, hi=10000)
    g_min_us: float = _f("Smallest programmable conductance (the 'off' state), µS.", 0.0, lo=0.0, hi=10000)
    read_voltage_v: float = _f("Read voltage across a device at full-scale input, V.", 0.2, lo=1e-06, hi=10.0)
    prog_noise: Literal["pcm-ibm", "pcm-hermes", "rram-wan2022", "gaussian"] | None = _f(
        "Programming-noise model: 'pcm-ibm' = aihwkit PCMLikeNoiseModel polynomial; 'pcm-hermes' = "
        "aihwkit PCMLikeNoiseModelHermes (2 devices) polynomial; 'rram-wan2022' = aihwkit "
        "ReRamWan2022NoiseModel polynomial at 1 s; 'gaussian' = prog_noise_std_us. None = exact.",
        None)
    prog_noise_scale: float = _f("Multiplier on the programming-noise std.", 1.0, lo=0.0, hi=100.0)
    prog_noise_std_us: float | None = _f("Std of 'gaussian' programming noise, µS.", None, lo=0.0, hi=10000)
    read_noise: Literal["pcm-1f", "pcm-hermes-1f", "gaussian"] | None = _f(
        "Read-noise model, drawn fresh at every MVM: 'pcm-1f' = aihwkit PCM 1/f law; 'pcm-hermes-1f' = "
        "aihwkit Hermes 1/f fit (2 devices); 'gaussian' = "
        "read_noise_rel · g_max_us. None = noiseless reads.", None)
    read_noise_scale: float = _f("Multiplier on the read-noise std.", 1.0, lo=0.0, hi=100.0)
    read_noise_rel: float | None = _f("Std of 'gaussian' read noise as a fraction of g_max_us.", None, lo=0.0, hi=10.0)
    t_read_s: float = _f("Duration of one read (1/f noise bandwidth), s.", 250e-9, lo=1e-15, hi=1.0)
    read_noise_exact: bool = _f(
        "Simulation, not hardware: compute each output's read-noise variance Σ x² σ² in float32 (true) "
        "instead of with bfloat16 operands and result (false, the default: per-output std within 0.59 %, "
        "see crossbar/layers.py).", False)
    stuck_on_fraction: float = _f("Fraction of devices stuck at g_max_us.", 0.0, lo=0.0, hi=1.0)
    stuck_off_fraction: float = _f("Fraction of devices stuck at g_min_us.", 0.0, lo=0.0, hi=1.0)

    def validate(self) -> None:
        if self.g_min_us >= self.g_max_us:
            raise ConfigError(f"device.g_min_us: {self.g_min_us:g} must be below device.g_max_us "
                              f"({self.g_max_us:g})")
        if self.stuck_on_fraction + self.stuck_off_fraction > 1.0:
            raise ConfigError("device.stuck_on_fraction + device.stuck_off_fraction: must not exceed 1")
        if self.prog_noise == "gaussian" and self.prog_noise_std_us is None:
            raise ConfigError("device.prog_noise_std_us: required when device.prog_noise = 'gaussian'")
        if self.read_noise == "gaussian" and self.read_noise_rel is None:
            raise ConfigError("device.read_noise_rel: required when device.read_noise = 'gaussian'")


@dataclass(frozen=True, kw_only=True)
class Drift(_Component):
    """Conductance drift g(t) = g0 · (t / t0)^-ν, ν drawn per device."""

    section: typing.ClassVar[str] = "drift"
    model: Literal["pcm-ibm", "pcm-hermes", "rram-wan2022", "constant"] = _f(
        "'pcm-ibm' / 'pcm-hermes': ν mean/std depend on conductance as in aihwkit PCMLikeNoiseModel / "
        "PCMLikeNoiseModelHermes (2 devices); 'rram-wan2022': no mean drift, the spread grows with time "
        "as aihwkit ReRamWan2022NoiseModel's fits at 1 s, 1 day, 2 days (log-time interpolation, held "
        "beyond 2 days); 'constant': ν ~ |N(nu_mean, nu_std)| for every device.")
    t0_s: float = _f("Reference time after programming at which g = g0, s.", 20.0, lo=1e-09, hi=1e+09)
    nu_mean: float | None = _f("Mean drift exponent ν ('constant' model).", None, lo=0.0, hi=10.0)
    nu_std: float | None = _f("Std of the drift exponent ν ('constant' model).", None, lo=0.0, hi=10.0)
    compensation: Literal["global"] | None = _f(
        "'global': outputs rescaled by a reference read at programming vs now (aihwkit "
        "GlobalDriftCompensation). None = uncompensated.", None)

    def validate(self) -> None:
        if self.model == "constant" and (self.nu_mean is None or self.nu_std is None):
            raise ConfigError("drift.nu_mean, drift.nu_std: required when drift.model = 'constant'")


@dataclass(frozen=True, kw_only=True)
class Wire(_Component):
    """Interconnect resistance per crossbar cell (one segment between neighbouring cells)."""

    section: typing.ClassVar[str] = "wire"
    r_row_ohm: float = _f("Row (word-line) wire resistance per cell segment, Ω.", lo=0.0, hi=1e+06)
    r_col_ohm: float = _f("Column (bit-line) wire resistance per cell segment, Ω.", lo=0.0, hi=1e+06)


@dataclass(frozen=True, kw_only=True)
class DAC(_Component):
    """Input digital-to-analog conversion (row drivers)."""

    section: typing.ClassVar[str] = "dac"
    bits: int = _f("Input resolution (sign included), bits.", lo=1, hi=16)
    mode: Literal["amplitude", "pwm"] = _f(
        "'amplitude': input encoded as a voltage level; 'pwm': as a pulse width.", "amplitude")
    bit_serial: bool = _f("Inputs applied one bit per cycle (one conversion per bit).", False)
    input_range: Literal["static", "dynamic"] = _f(
        "'static': clip range calibrated once per layer from data; 'dynamic': abs-max of each input "
        "vector (costs a digital max per vector).", "static")
    range_percentile: float = _f(
        "'static' range: this percentile of |x| over the calibration inputs of the layer (100 = abs-max; "
        "larger inputs clip).", 100.0, lo=50.0, hi=100.0)
    e_conv_pj: float = _f("Energy per conversion (per row per input, or per bit if bit-serial), pJ.",
                          lo=0.0, hi=1e+06)
    t_conv_ns: float = _f(
        "Time to apply one input (amplitude), one bit (bit-serial), or one pulse slot (pwm: the PWM clock "
        "period; an input's window is 2^(bits-1) slots), ns. With accumulate = 'charge' the input pulse: "
        "the time a device conducts per input bit.", lo=0.0, hi=1e+09)
    accumulate: Literal["digital", "charge"] = _f(
        "How bit-serial input cycles combine: 'digital': each cycle is converted and shift-added (ISAAC); "
        "'charge': the cycle of bit k is integrated 2^k times on the column capacitor (2^m − 1 integration "
        "steps for m magnitude bits) and converted once per phase (NeuRRAM, Wan et al. 2022). The cost model "
        "prices both; the crossbar simulator converts every bit plane in both modes.", "digital")
    phase_bits: int = _f(
        "accumulate = 'charge': inputs of more magnitude bits than this run in two phases (ceil(m/2) MSBs, "
        "then the rest), each with its own conversion; NeuRRAM: 3.", 16, lo=1, hi=16)
    t_phase_ns: float = _f("accumulate = 'charge': fixed time per phase (sampling, reset), ns.", 0.0,
                           lo=0.0, hi=1e+09)

    def validate(self) -> None:
        if self.accumulate == "charge" and not self.bit_serial:
            raise ConfigError("dac.accumulate: 'charge' needs dac.bit_serial = true (bits are integrated one "
                              "pulse at a time)")


@dataclass(frozen=True, kw_only=True)
class ADC(_Component):
    """Column readout analog-to-digital conversion."""

    section: typing.ClassVar[str] = "adc"
    bits: int = _f("Output resolution, bits.", lo=1, hi=16)
    output_range: Literal["calibrated", "dynamic"] = _f(
        "'calibrated': range fixed per layer from calibration data; 'dynamic': per-MVM abs-max "
        "(idealized auto-ranging).", "calibrated")
    range_percentile: float = _f(
        "'calibrated' range: this percentile of |tile partial sum| over the calibration inputs, per tile "
        "(100 = abs-max; larger sums clip).", 100.0, lo=50.0, hi=100.0)
    noise_lsb: float = _f("Additive Gaussian noise at the ADC input, std in LSB.", 0.0, lo=0.0, hi=1e+06)
    s_curve: float | None = _f(
        "Strength of an S-shaped (tanh) transfer nonlinearity: y = tanh(a·x)/a on the range-normalized "
        "input x; None = linear.", None, lo=0.0, hi=100.0, lo_open=True)
    cols_per_adc: int = _f("Columns sharing one ADC (time-multiplexed).", 1, lo=1.0, hi=65536)
    energy_model: Literal["survey", "per-step", "table", "walden", "schreier"] = _f(
        "How energy per conversion follows bits: 'survey' (the Murmann ADC-survey fit of energy vs bits, "
        "node_nm and sample rate, as Accelergy's ADC plug-in; the sample rate is one conversion per "
        "conversion time), 'per-step' (e_step_pj per step of time_model: counting, ramp and binary-search "
        "ADCs), 'table' (measured e_conv_pj_by_bits, with a source), 'walden' (walden_fom_fj · 2^bits) or "
        "'schreier' (thermal-noise-limited, from schreier_fom_db).")
    node_nm: float | None = _f("'survey': CMOS technology node of the ADC, nm.", None, lo=1.0, hi=1000.0)
    e_step_pj: float | None = _f("'per-step': energy of one step (one bit of a binary search, one count), pJ.",
                                 None, lo=0.0, hi=1e+06)
    e_conv_pj_by_bits: dict[str, float] | None = _f(
        "Energy per conversion by resolution, pJ, keys are bit counts as strings.", None, lo=0.0, hi=1e+06)
    walden_fom_fj: float | None = _f("Walden figure of merit, fJ per conversion step.", None, lo=0.0, hi=1e+06)
    schreier_fom_db: float | None = _f("Schreier figure of merit (SNDR + 10·log10(BW/P)), dB.", None,
                                       lo=100.0, hi=220.0)
    t_conv_ns: float = _f(
        "Time of one conversion ('fixed'), of one bit cycle ('sar') or of one count step ('ramp'), ns.",
        lo=0.0, hi=1e+09)
    time_model: Literal["fixed", "sar", "binary-search", "ramp"] = _f(
        "How conversion time follows bits: 'fixed' (t_conv_ns at any resolution), 'sar' / 'binary-search' "
        "(one bit per step: bits steps of t_conv_ns) or 'ramp' (counting/integrating: 2^bits steps of "
        "t_conv_ns).", "fixed")

    def validate(self) -> None:
        need = {"table": "e_conv_pj_by_bits", "walden": "walden_fom_fj", "schreier": "schreier_fom_db",
                "survey": "node_nm", "per-step": "e_step_pj"}[self.energy_model]
        if getattr(self, need) is None:
            raise ConfigError(f"adc.{need}: required when adc.energy_model = '{self.energy_model}'")
        if self.energy_model == "per-step" and self.time_model == "fixed":
            raise ConfigError("adc.time_model: 'per-step' energy needs steps: 'sar', 'binary-search' or 'ramp'")
        if self.e_conv_pj_by_bits is not None:
            for key in self.e_conv_pj_by_bits:
                if not (key.isascii() and key.isdigit() and 1 <= int(key) <= 32):
                    raise ConfigError(f"adc.e_conv_pj_by_bits: key {checks.short(key)} must be a bit count "
                                      f"from \"1\" to \"32\"")



@dataclass(frozen=True, kw_only=True)
class Tile(_Component):
    """Crossbar tile geometry, weight mapping and the chip's tile budget."""

    section: typing.ClassVar[str] = "tile"
    rows: int = _f("Rows (inputs) per tile.", lo=1.0, hi=65536)
    cols: int = _f("Columns (outputs) per tile; a differential weight uses one column of pairs.", lo=1.0, hi=65536)
    mapping: Literal["differential", "differential-rows"] = _f(
        "'differential': weight w ∝ g+ − g−, one cell (a device pair) per weight and slice; "
        "'differential-rows': the pair sits on two adjacent physical rows of one column (NeuRRAM: a "
        "256×256 array holds 128×256 signed weights), so rows counts weights and the array has 2·rows "
        "physical rows (word lines). The cost model and the IR-drop check use it; the crossbar simulator lays "
        "every pair on adjacent columns.", "differential")
    bit_slices: int = _f("Device pairs per weight, combined by shift-add.", 1, lo=1, hi=8)
    bits_per_slice: int = _f(
        "With bit_slices > 1: each more significant pair holds this many bits of |w| (2^bits levels); "
        "the least significant pair holds the analog remainder. Unused with one slice.", 2, lo=1, hi=8)
    weight_scale: Literal["per-layer", "per-column"] = _f(
        "Weight-to-conductance scale: one per layer or one per output column.", "per-column")
    t_integrate_ns: float = _f("Array integration (read) time per MVM, ns.", lo=1e-06, hi=1e+09)
    tiles_per_chip: int = _f("Tiles available on the chip (weights stay resident).", lo=1.0, hi=10 ** 9)
    replication: int = _f("Copies of each layer's weights to raise throughput.", 1, lo=1.0, hi=65536)
    read_phases: int = _f(
        "Reads per input cycle, each a full integration window, accumulated before one conversion "
        "(HERMES 4-phase mode: 4; Le Gallo et al. 2023).", 1, lo=1, hi=64)
    mean_g_fraction: float = _f(
        "Cost model default when no activation statistics are given: mean device conductance over both "
        "devices of a differential pair, as a fraction of the window above g_min_us.", 0.125, lo=0.0, hi=1.0)
    input_activity: float = _f(
        "Cost model default when no activation statistics are given: mean |x| / full scale of the inputs "
        "(PWM duty cycle); amplitude and bit-serial activity follow from it for half-normal inputs.", 0.25,
        lo=0.0, hi=1.0)
    ir_compensation: Literal["per-column-affine"] | None = _f(
        "'per-column-affine': a gain and an offset per tile column, fitted by least squares at programming "
        "from the calibration inputs (the programmed conductances' ideal partial sums vs the wire-affected "
        "ones) and applied digitally after the ADC (one multiply-add per column and MVM, priced at "
        "digital.e_mac_pj; crossbar/compensation.py). None = uncompensated.", None)


@dataclass(frozen=True, kw_only=True)
class Periphery(_Component):
    """Per-MVM analog/mixed-signal periphery other than the converters."""

    section: typing.ClassVar[str] = "periphery"
    e_integrator_pj: float = _f("Column integrator / sense amplifier energy per column per integration step "
                                "(one per input cycle, 2^m − 1 per phase with charge accumulation), pJ.",
                                0.0, lo=0.0, hi=1e+06)
    e_sample_hold_pj: float = _f("Sample-and-hold energy per column per input cycle, pJ.", 0.0, lo=0.0, hi=1e+06)
    e_shift_add_pj: float = _f("Shift-and-add per converted output (bit slices/serial bits), pJ.",
                               0.0, lo=0.0, hi=1e+06)
    e_accumulate_pj: float = _f("Digital accumulation of one tile partial sum into a layer output, pJ.",
                                0.0, lo=0.0, hi=1e+06)
    c_wordline_ff: float = _f("Capacitance of one word line (access-transistor gates, drivers, wire), fF; "
                              "every physical row's word line toggles once per input cycle: C·V².", 0.0,
                              lo=0.0, hi=1e+06)
    v_wordline_v: float = _f("Word-line swing charged per toggle, V.", 0.0, lo=0.0, hi=100.0)
    c_bitline_ff: float = _f("Capacitance of one bit line (column wire), fF; charged once per physical column "
                             "per input cycle: C·V².", 0.0, lo=0.0, hi=1e+06)
    v_bitline_v: float = _f("Bit-line swing charged per input cycle, V.", 0.0, lo=0.0, hi=100.0)
    e_local_digital_pj: float = _f(
        "Local digital processing per tile output per MVM (gain/offset correction, scaling, activation in "
        "the tile's own unit), pJ.", 0.0, lo=0.0, hi=1e+06)
    t_local_digital_ns: float = _f(
        "Local digital time per tile output (one output per clock: the tile streams its outputs), ns.",
        0.0, lo=0.0, hi=1e+06)
    p_core_mw: float = _f(
        "Power a tile draws while it computes an MVM beyond the itemised lines (bias currents, clocks, "
        "regulators, leakage under load), mW; charged × the MVM time of every tile used.", 0.0,
        lo=0.0, hi=1e+06)


@dataclass(frozen=True, kw_only=True)
class Digital(_Component):
    """Digital units for everything that is not a weight MVM (attention, norms, sampling)."""

    section: typing.ClassVar[str] = "digital"
    e_mac_pj: float = _f("Activation×activation multiply-accumulate (attention QKᵀ, AV), pJ.", lo=0.0, hi=1e+06)
    e_softmax_pj: float = _f("Softmax per element (exp, sum, divide), pJ.", lo=0.0, hi=1e+06)
    e_norm_pj: float = _f("LayerNorm/RMSNorm per element, pJ.", lo=0.0, hi=1e+06)
    e_elementwise_pj: float = _f("Elementwise op (activation function, residual add) per element, pJ.", lo=0.0,
                                 hi=1e+06)
    e_sample_pj: float = _f("Sampling work per vocabulary entry (Gumbel/argmax), pJ.", lo=0.0, hi=1e+06)
    throughput_gops: float = _f(
        "Sustained digital throughput of one chip, 1e9 element ops/s. A model spread over several chips (see "
        "[system]) runs each block's digital work on that block's chips: the estimator uses "
        "throughput_gops × max(1, chips / n_layers).", lo=1e-06, hi=1e+09)
    activation_bits: int = _f("Bits per activation element stored or moved.", 8, lo=1, hi=32)
    attention_query_tile: int = _f(
        "Queries served by one read of a key/value row from SRAM (the attention unit's query tile): a pass "
        "feeding n positions reads each key and value ceil(n / tile) times. Assumption, default 64: the "
        "query-block size Br of FlashAttention-2 (Dao 2023, arXiv:2307.08691, Br ∈ {64, 128}); 1 = per "
        "(query, key) pair.", 64, lo=1, hi=1_000_000)


@dataclass(frozen=True, kw_only=True)
class Memory(_Component):
    """On-chip buffers and network-on-chip."""

    section: typing.ClassVar[str] = "memory"
    e_sram_pj_per_bit: float = _f("SRAM read or write energy, pJ/bit.", lo=0.0, hi=1e+06)
    e_noc_pj_per_bit_hop: float = _f("Network-on-chip energy, pJ per bit per hop.", lo=0.0, hi=1e+06)
    avg_hops: float = _f("Mean NoC hops between producing and consuming tiles.", 1.0, lo=0.0, hi=10000)
    noc_bandwidth_gbps: float = _f("NoC link bandwidth, Gbit/s.", lo=1e-06, hi=1e+09)


@dataclass(frozen=True, kw_only=True)
class GPU(_Component):
    """A digital accelerator priced by a roofline in time and in energy (see ``analogdiff.energy.gpu``).

    Energy of a kernel = ``power_const_w`` × its time + ``e_flop_*_pj`` × FLOPs + ``e_hbm_pj_per_byte`` ×
    HBM bytes (Choi, Bedard, Fowler & Vuduc, "A roofline model of energy", IPDPS 2013); a kernel whose
    average power would exceed ``power_max_w`` is slowed to that limit.
    """

    section: typing.ClassVar[str] = "gpu"
    model: str = _f("Marketing name, e.g. 'NVIDIA H100 SXM5 80GB'.")
    dtype: Literal["bf16", "fp8"] = _f("Datatype of weights and matmuls.", "bf16")
    peak_tflops_bf16: float = _f("Dense BF16 tensor throughput, TFLOP/s.", lo=1e-06, hi=1e+06)
    peak_tflops_fp8: float | None = _f("Dense FP8 tensor throughput, TFLOP/s; None = unsupported.",
                                       None, lo=1e-06, hi=1e+06)
    hbm_bandwidth_tbs: float = _f("HBM bandwidth, TB/s.", lo=1e-06, hi=10000)
    hbm_capacity_gb: float = _f("HBM capacity, GB.", lo=0.001, hi=1e+07)
    die_area_mm2: float | None = _f("Area of the GPU die, mm² (reported as the estimate's area_mm2; None = "
                                    "not stated).", None, lo=0.0, hi=1e+05, lo_open=True)
    power_max_w: float = _f("Board power limit (TDP), W: no kernel draws more on average.", lo=0.001,
                            hi=1e+06)
    power_const_w: float = _f(
        "Constant power while the GPU runs kernels (leakage, clocks, the busy-but-not-computing baseline; "
        "π0 of the energy roofline), W.", lo=0.0, hi=2000.0)
    e_hbm_pj_per_byte: float = _f(
        "Whole-board energy per byte moved between HBM and the SMs (DRAM, PHY, L2 and on-chip path), pJ/B.",
        lo=0.0, hi=1000.0)
    e_flop_bf16_pj: float = _f("Energy per dense BF16 tensor FLOP, pJ.", lo=0.0, hi=100.0)
    e_flop_fp8_pj: float | None = _f("Energy per dense FP8 tensor FLOP, pJ; None = unsupported.", None,
                                     lo=0.0, hi=100.0)
    kernel_launch_us: float = _f("Floor time of one kernel, µs.", lo=0.0, hi=1e+06)
    compute_efficiency: float = _f("Achievable fraction of peak FLOP/s in large matmuls.", lo=0.0,
                                   hi=1.0, lo_open=True)
    bandwidth_efficiency: float = _f("Achievable fraction of peak HBM bandwidth.", lo=0.0, hi=1.0,
                                     lo_open=True)
    host_us_per_seq_step: float = _f(
        "Host (CPU) time of the serving stack per sequence per forward pass that the GPU waits for at "
        "power_const_w (scheduling, input preparation, sampling, detokenisation not overlapped with the "
        "GPU), µs; 0 = fully overlapped.", 0.0, lo=0.0, hi=1e+06)

    def validate(self) -> None:
        if self.power_const_w >= self.power_max_w:
            raise ConfigError("gpu.power_const_w: must be below gpu.power_max_w")
        if self.dtype == "fp8" and (self.peak_tflops_fp8 is None or self.e_flop_fp8_pj is None):
            raise ConfigError("gpu.dtype: 'fp8' needs gpu.peak_tflops_fp8 and gpu.e_flop_fp8_pj")


@dataclass(frozen=True, kw_only=True)
class System(_Component):
    """The chips an analog model runs on (see ``analogdiff.energy.system``): a model needing more tiles than
    ``tile.tiles_per_chip`` is spread over identical chips joined by chip-to-chip links; on-chip SRAM holds
    the KV cache and the embedding table, and what does not fit is read from DRAM."""

    section: typing.ClassVar[str] = "system"
    node_nm: int = _f("CMOS technology node of the chip, nm (informative: the areas below are at this node).",
                      lo=1, hi=1000)
    chip_area_mm2: float = _f("Silicon area of one chip, mm².", lo=0.0, hi=1e+05, lo_open=True)
    tile_area_mm2: float = _f("Area of one tile (core) with its periphery, mm².", lo=0.0, hi=1e+04,
                              lo_open=True)
    sram_mb_per_chip: float = _f("On-chip SRAM per chip for the KV cache and embeddings, MB (1e6 bytes).",
                                 lo=0.0, hi=1e+05)
    sram_leakage_mw_per_mb: float = _f("SRAM leakage (static) power, mW per MB held.", lo=0.0, hi=1e+04)
    link_pj_per_bit: float = _f("Chip-to-chip link energy, pJ per bit crossing a chip boundary.", lo=0.0,
                                hi=1e+04)
    link_gbps: float = _f("Bandwidth of one chip-to-chip link, Gbit/s.", lo=0.0, hi=1e+07, lo_open=True)
    dram_pj_per_bit: float = _f("DRAM energy per bit read or written (KV cache and embeddings beyond the "
                                "SRAM), pJ/bit.", lo=0.0, hi=1e+04)
    dram_gbps_per_chip: float = _f("DRAM bandwidth available to each chip, Gbit/s.", lo=0.0, hi=1e+07,
                                   lo_open=True)


COMPONENTS: dict[str, type[_Component]] = {
    c.section: c for c in (Device, Drift, Wire, DAC, ADC, Tile, Periphery, Digital, Memory, System, GPU)
}


@dataclass(frozen=True, kw_only=True)
class Hardware:
    """A whole hardware card. Absent components are ``None`` (off)."""

    name: str
    description: str = ""
    device: Device | None = None
    drift: Drift | None = None
    wire: Wire | None = None
    dac: DAC | None = None
    adc: ADC | None = None
    tile: Tile | None = None
    periphery: Periphery | None = None
    digital: Digital | None = None
    memory: Memory | None = None
    system: System | None = None
    gpu: GPU | None = None

    def __post_init__(self) -> None:
        analog = self.tile is not None
        if analog and self.gpu is not None:
            raise ConfigError(f"{self.name}: a card is either analog ([tile]) or a GPU ([gpu]), not both")
        if not analog and self.gpu is None:
            raise ConfigError(f"{self.name}: a card needs a [tile] (analog) or a [gpu] table")
        if analog and self.device is None:
            raise ConfigError(f"{self.name}: an analog card needs a [device] table")
        if self.drift is not None and self.device is None:
            raise ConfigError(f"{self.name}: [drift] needs a [device] table")
        if self.system is not None:
            if not analog:
                raise ConfigError(f"{self.name}: [system] describes analog chips; a GPU card has none")
            cores = self.tile.tiles_per_chip * self.system.tile_area_mm2
            if cores > self.system.chip_area_mm2 * (1 + 1e-9):
                raise ConfigError(f"system.chip_area_mm2: {self.system.chip_area_mm2:g} is less than "
                                  f"tile.tiles_per_chip × system.tile_area_mm2 = {cores:g}")

    @property
    def kind(self) -> Literal["analog", "gpu"]:
        return "analog" if self.tile is not None else "gpu"

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        for section in COMPONENTS:
            comp = getattr(self, section)
            if comp is not None:
                out[section] = comp.to_dict()
        return out


# --------------------------------------------------------------------------- loading

def card_dir():
    """The directory of shipped hardware cards (works from a clone and from an installed wheel)."""
    return resources.files("analogdiff.circuits")


def list_hardware() -> list[str]:
    return sorted(p.name[:-5] for p in card_dir().iterdir() if p.name.endswith(".toml"))


def hardware_from_dict(data: Mapping[str, Any], name: str = "custom") -> Hardware:
    """Build a Hardware from a parsed card (``{section: {key: value}}``)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{name}: a card is a table of components, got {checks.short(data)}")
    data = dict(data)
    kwargs: dict[str, Any] = {"name": checks.text("name", data.pop("name", name)),
                              "description": checks.text("description", data.pop("description", ""), 10_000,
                                                         empty=True)}
    for section, table in data.items():
        if section not in COMPONENTS:
            raise ConfigError(f"{str(section)[:60]}: unknown table; allowed: {', '.join(COMPONENTS)}")
        if table is None:
            continue
        if not isinstance(table, Mapping):
            raise ConfigError(f"{section}: expected a table, got {table!r}")
        cls = COMPONENTS[section]
        names = {f.name for f in dataclasses.fields(cls)}
        for key in table:
            if key not in names:
                raise ConfigError(f"{section}.{str(key)[:60]}: unknown key; allowed: {', '.join(sorted(names))}")
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                   and f.name not in table]
        if missing:
            raise ConfigError(f"{section}.{missing[0]}: required ({cls.__dataclass_fields__[missing[0]].metadata['doc']})")
        kwargs[section] = cls(**table)
    return Hardware(**kwargs)


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Apply dotted overrides (``{"adc.bits": 6, "wire": None}``) to a parsed card, returning a copy."""
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items()}
    for key, value in overrides.items():
        key = checks.text("override", key, 100)
        parts = key.split(".")
        section = parts[0]
        if section not in COMPONENTS:
            raise ConfigError(f"{key}: unknown override; the first part must be one of "
                              f"{', '.join(COMPONENTS)}")
        if len(parts) == 1:
            if value is None:
                out.pop(section, None)
            elif isinstance(value, Mapping):
                out[section] = dict(value)
            else:
                raise ConfigError(f"{key}: a whole component can only be set to None (off) or a table")
            continue
        if len(parts) != 2:
            raise ConfigError(f"{key}: overrides are 'component' or 'component.field'")
        field_name = parts[1]
        if field_name not in {f.name for f in dataclasses.fields(COMPONENTS[section])}:
            allowed = ", ".join(sorted(f.name for f in dataclasses.fields(COMPONENTS[section])))
            raise ConfigError(f"{key}: unknown key; allowed in {section}: {allowed}")
        if section not in out or out[section] is None:
            raise ConfigError(f"{key}: component '{section}' is off in this card; set the whole "
                              f"table to switch it on")
        if not isinstance(out[section], dict):
            raise ConfigError(f"{section}: expected a table in the card, got {checks.short(out[section])}")
        if value is None:
            out[section].pop(field_name, None)
        else:
            out[section][field_name] = value
    return out


def read_card(name_or_path: str | Path) -> tuple[dict[str, Any], str]:
    """Parse a card by preset name or path. Returns (data, name)."""
    ref = checks.text("--hardware", str(name_or_path), checks.MAX_PATH_CHARS)
    names = list_hardware()
    if ref in names:
        name, where = ref, f"circuits/{ref}.toml"
        text = (card_dir() / f"{name}.toml").read_text(encoding="utf-8")
    elif ref.endswith(".toml") or "/" in ref or checks.is_file(ref):
        path = Path(ref)
        text, where, name = checks.read_text("hardware card", path), str(path), path.stem[:checks.MAX_NAME_CHARS]
    else:
        raise ConfigError(f"unknown hardware {checks.short(ref)}; available: {', '.join(names)} "
                          f"(or a path to a .toml card)")
    data = checks.parse_toml(where, text)
    return data, data.get("name", name)


def load_hardware(name_or_path: str | Path | Hardware,
                  overrides: Mapping[str, Any] | None = None) -> Hardware:
    """Load a hardware card by preset name (``analogdiff presets``) or TOML path, with dotted overrides."""
    if isinstance(name_or_path, Hardware):
        if not overrides:
            return name_or_path
        data, name = name_or_path.to_dict(), name_or_path.name
    else:
        data, name = read_card(name_or_path)
    if overrides:
        data = apply_overrides(data, overrides)
    return hardware_from_dict(data, name)


def dump_hardware(hw: Hardware) -> str:
    """The card as TOML text (``load_hardware`` of it gives back an equal Hardware)."""
    import tomli_w

    return tomli_w.dumps(hw.to_dict())


def parse_set_options(items: list[str] | None) -> dict[str, Any]:
    """CLI ``--set key=value`` pairs → overrides; values parse as TOML scalars, 'none' means off."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set {checks.short(item)}: expected key=value, e.g. adc.bits=6")
        key, raw = item.split("=", 1)
        key, raw = checks.text("--set key", key.strip(), 100), raw.strip()
        if checks.is_none(raw):
            out[key] = None
            continue
        try:
            out[key] = checks.parse_toml(f"--set {key}", f"v = {raw}")["v"]
        except ConfigError:
            out[key] = raw  # a bare word: a string choice such as pwm
    return out
