"""Property-based fuzzing of the CLI in the test suite (a few hundred examples; ``make fuzz`` runs 10,000).

Property: every generated input either exits 0 with finite, non-negative figures, or exits 2 with exactly one
line naming a field or file, or passes validation and reaches its real work (stubbed) — never a traceback, a
hang, a file outside ``--out`` or a half-written file. See ``tests/fuzz_cli.py`` for the strategies.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

import fuzz_cli

EXAMPLES = {"estimate": 300, "eval": 100, "bench": 100, "tune": 100, "plot": 100, "train": 100}


@pytest.fixture(scope="module", autouse=True)
def _warm():
    import torch

    threads = torch.get_num_threads()
    fuzz_cli.warm_up()  # one torch thread while fuzzing
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("command", list(EXAMPLES))
def test_cli_error_contract_holds_for_generated_inputs(command):
    @settings(max_examples=EXAMPLES[command], deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(fuzz_cli.cases((command,)))
    def check(case):
        argv, files = case
        outcome, detail = fuzz_cli.run_case(argv, files)
        assert outcome not in fuzz_cli.FAILURES, f"{outcome}: {detail}"

    check()
