"""Hardware cards: every shipped card round-trips through TOML; every bad input is one clear error."""
import pytest

from analogdiff.config import (ConfigError, dump_hardware, hardware_from_dict, list_hardware, load_hardware,
                               parse_set_options, read_card)

CARDS = ["ideal", "pcm-ibm", "pcm-hermes", "rram-wan2022", "ecram", "h100-sxm", "a100-sxm"]


def test_shipped_cards_are_listed():
    assert set(CARDS) <= set(list_hardware())


@pytest.mark.parametrize("name", CARDS)
def test_card_round_trips_through_toml(name, tmp_path):
    hw = load_hardware(name)
    path = tmp_path / f"{name}.toml"
    path.write_text(dump_hardware(hw))
    back = load_hardware(path)
    assert back == hw
    assert dump_hardware(back) == dump_hardware(hw)


@pytest.mark.parametrize("overrides, field", [
    ({"adc.bits": 0}, "adc.bits"),
    ({"dac.bits": 0}, "dac.bits"),
    ({"device.g_min_us": 30.0}, "device.g_min_us"),           # g_min ≥ g_max (25 µS)
    ({"device.g_min_us": 25.0}, "device.g_min_us"),
    ({"wire.r_row_ohm": -0.1}, "wire.r_row_ohm"),
    ({"dac.e_conv_pj": -1.0}, "dac.e_conv_pj"),
    ({"periphery.e_shift_add_pj": -0.5}, "periphery.e_shift_add_pj"),
    ({"memory.e_sram_pj_per_bit": -1e-3}, "memory.e_sram_pj_per_bit"),
    ({"tile.mean_g_fraction": 1.5}, "tile.mean_g_fraction"),
    ({"tile.input_activity": -0.1}, "tile.input_activity"),
    ({"adc.foo": 1}, "adc.foo"),
    ({"adc.bits": "eight"}, "adc.bits"),
])
def test_bad_override_names_the_field(overrides, field):
    with pytest.raises(ConfigError) as e:
        load_hardware("pcm-ibm", overrides=overrides)
    msg = str(e.value)
    assert msg.startswith(field) and "\n" not in msg


def test_range_error_states_the_allowed_range():
    with pytest.raises(ConfigError, match=r"adc\.bits: 0 is outside the allowed range \[1, 16\]"):
        load_hardware("pcm-ibm", overrides={"adc.bits": 0})


def test_unknown_key_in_a_card_lists_the_allowed_keys(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[gpu]\nmodel = "x"\npeak_tflops_bf16 = 1.0\nwarp_speed = 9\n')
    with pytest.raises(ConfigError, match=r"gpu\.warp_speed: unknown key; allowed: .*bandwidth_efficiency"):
        load_hardware(p)


def test_unknown_card_lists_the_names():
    with pytest.raises(ConfigError) as e:
        load_hardware("pcm-nope")
    msg = str(e.value)
    assert "pcm-nope" in msg and all(n in msg for n in CARDS) and "\n" not in msg


def test_malformed_toml_names_file_and_line(tmp_path):
    p = tmp_path / "broken.toml"
    p.write_text('name = "broken"\n[adc]\nbits = = 8\n')
    with pytest.raises(ConfigError) as e:
        read_card(p)
    msg = str(e.value)
    assert str(p) in msg and "line 3" in msg


def test_none_override_switches_a_component_off():
    hw = load_hardware("pcm-ibm", overrides={"wire": None, "drift": None})
    assert hw.wire is None and hw.drift is None
    assert load_hardware("pcm-ibm").wire is not None


def test_overrides_apply_and_keep_the_rest():
    base = load_hardware("pcm-ibm")
    hw = load_hardware("pcm-ibm", overrides={"adc.bits": 6, "tile.rows": 512})
    assert hw.adc.bits == 6 and hw.tile.rows == 512
    assert hw.dac == base.dac and hw.device == base.device


def test_set_options_parse_like_toml_values():
    assert parse_set_options(["adc.bits=6", "wire=none", "dac.mode=pwm", "dac.bit_serial=true"]) == {
        "adc.bits": 6, "wire": None, "dac.mode": "pwm", "dac.bit_serial": True}
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_set_options(["adc.bits"])


def test_a_card_is_analog_or_gpu_not_both():
    data = {"tile": {"rows": 4, "cols": 4, "t_integrate_ns": 1.0, "tiles_per_chip": 1},
            "gpu": {"model": "x", "peak_tflops_bf16": 1.0, "hbm_bandwidth_tbs": 1.0, "hbm_capacity_gb": 1.0,
                    "power_max_w": 2.0, "power_const_w": 1.0, "e_hbm_pj_per_byte": 1.0,
                    "e_flop_bf16_pj": 1.0, "kernel_launch_us": 1.0,
                    "compute_efficiency": 0.5, "bandwidth_efficiency": 0.5}}
    with pytest.raises(ConfigError, match="either analog"):
        hardware_from_dict(data)
