"""The report's IR-drop compensation table: ir-… rows on their own, paired with the plain rows by seed."""
import pytest

from analogdiff.bench import report
from analogdiff.bench.results import split_ir_rows


def _row(section, seed, bpc, energy, overrides=""):
    return {"kind": "accuracy", "section": section, "model": "shakespeare-mdlm", "model_kind": "mdlm",
            "card": "pcm-ibm", "drift_time_s": 86400.0, "seed": seed, "overrides": overrides,
            "bits_per_char": bpc, "energy_per_token_j": energy}


def test_ir_rows_are_split_out_and_paired_by_seed():
    on = '{"tile.ir_compensation":"per-column-affine"}'
    rows = ([_row("drift", s, 3.0 + 0.1 * s, 1e-9) for s in range(3)]
            + [_row("ir-compensated", s, 2.9 + 0.1 * s + 0.01 * s, 1.01e-9, on) for s in range(3)])
    main, ir = split_ir_rows(rows)
    assert [r["section"] for r in main] == ["drift"] * 3 and len(ir) == 3
    text = "\n".join(report._ir_section(ir, main))
    # paired differences −0.10, −0.09, −0.08: mean −0.09, std 0.01, energy +1 %
    assert "| on | 3 | 3.01 ± 0.11 |" in text and "| off | 3 | 3.1 ± 0.1 |" in text   # 2.9, 3.01, 3.12
    assert "-0.09 ± 0.01" in text and "lower" in text and "+1.00%" in text
    lo, hi = -0.09 - 4.303 * 0.01 / 3 ** 0.5, -0.09 + 4.303 * 0.01 / 3 ** 0.5
    assert f"[{lo:+.2f}, {hi:+.2f}]" in text
