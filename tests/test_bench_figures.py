"""Figures: PNG and SVG written, axes labelled with units, the Pareto front the one a hand check gives."""
from analogdiff.bench import figures


def _labels(fig):
    ax = fig.axes[0]
    tops = [c.get_xlabel() for c in ax.child_axes]
    return ax.get_xlabel(), ax.get_ylabel(), tops


def test_accuracy_vs_power_units_and_front(tmp_path):
    pts = [  # (card, energy J/token, bits/char): the front is p0, p2, p3
        {"card": "pcm-ibm", "model_kind": "mdlm", "energy_per_token_j": 1e-6, "bits_per_char": 2.5},
        {"card": "pcm-ibm", "model_kind": "mdlm", "energy_per_token_j": 3e-6, "bits_per_char": 2.6},
        {"card": "rram-wan2022", "model_kind": "mdlm", "energy_per_token_j": 2e-6, "bits_per_char": 2.2},
        {"card": "h100-sxm", "model_kind": "ar", "energy_per_token_j": 1e-3, "bits_per_char": 2.0},
    ]
    fig = figures.accuracy_vs_power(pts, tmp_path / "avp", "bits_per_char", token_rate_per_s=50.0)
    x, y, tops = _labels(fig)
    assert x == "energy per generated token (J)"
    assert "bits/char" in y
    assert tops == ["power at 50 generated tokens/s (W)"]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "Pareto front (3)" in legend
    assert {"pcm-ibm · MDLM", "rram-wan2022 · MDLM", "h100-sxm · AR"} <= set(legend)  # one series per card
    for ext in ("png", "svg"):
        data = (tmp_path / f"avp.{ext}").read_bytes()
        assert len(data) > 1000
    assert (tmp_path / "avp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "avp.svg").read_bytes()[:400]


def test_same_data_same_files(tmp_path):
    pts = [{"card": "a", "energy_per_token_j": 1e-6, "bits_per_char": 2.0},
           {"card": "b", "energy_per_token_j": 2e-6, "bits_per_char": 1.9}]
    figures.accuracy_vs_power(pts, tmp_path / "one", "bits_per_char")
    figures.accuracy_vs_power(pts, tmp_path / "two", "bits_per_char")
    for ext in ("png", "svg"):
        assert (tmp_path / f"one.{ext}").read_bytes() == (tmp_path / f"two.{ext}").read_bytes()


def test_drift_and_breakdown_axes(tmp_path):
    rows = []
    for seed in (0, 1, 2):
        for t in (1.0, 3600.0, 86400.0):
            rows.append({"card": "pcm-ibm", "model": "m", "model_kind": "mdlm", "drift_time_s": t, "seed": seed,
                         "bits_per_char": 2.0 + 0.01 * seed + 1e-6 * t})
    rows.append({"card": "ideal", "model": "m", "model_kind": "mdlm", "drift_time_s": None, "seed": None,
                 "bits_per_char": 1.9})
    fig = figures.accuracy_vs_drift(rows, tmp_path / "drift")
    x, y, _ = _labels(fig)
    assert "time since programming (s" in x and "bits/char" in y
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1 s", "1 min", "1 h", "1 day"]
    fig = figures.energy_breakdown([{"label": "a", "breakdown": {"adc": 1e-7, "dac": 2e-8}},
                                    {"label": "b", "breakdown": {"adc": 3e-7}}], tmp_path / "bars")
    x, y, _ = _labels(fig)
    assert y == "energy per token (J)"
    assert all((tmp_path / f"{s}.{e}").is_file() for s in ("drift", "bars") for e in ("png", "svg"))


def test_breakdown_per_token_scales_sequence_energy():
    row = {"energy_per_sequence_j": 8.0, "energy_per_token_j": 2.0, "breakdown_j.adc": 6.0, "breakdown_j.dac": 2.0}
    assert figures.breakdown_per_token(row) == {"adc": 1.5, "dac": 0.5}
