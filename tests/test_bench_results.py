"""The append-only results store: partial lines are never trusted, tables are written atomically and
deterministically."""
import json

from analogdiff.bench.results import ResultStore, aggregate, load_results, rows_to_csv


def _row(i, **kw):
    return {"run_id": f"u{i}-0", "section": "s", "kind": "accuracy", "bits_per_char": 1.0 + i / 8, **kw}


def test_append_reload_and_partial_line(tmp_path):
    st = ResultStore(tmp_path)
    st.add(_row(0))
    st.add(_row(1))
    # a crash while appending the third row: half a line at the end
    with open(tmp_path / "rows.jsonl", "ab") as f:
        f.write(b'{"run_id": "u2-0", "bits_per_ch')
    st2 = ResultStore(tmp_path)
    assert sorted(st2.rows) == ["u0-0", "u1-0"]
    st2.add(_row(3))  # the untrusted tail is cut off before appending
    lines = (tmp_path / "rows.jsonl").read_text().splitlines()
    assert [json.loads(l)["run_id"] for l in lines] == ["u0-0", "u1-0", "u3-0"]
    assert sorted(ResultStore(tmp_path).rows) == ["u0-0", "u1-0", "u3-0"]


def test_tampered_line_is_not_trusted(tmp_path):
    st = ResultStore(tmp_path)
    st.add(_row(0))
    st.add(_row(1))
    text = (tmp_path / "rows.jsonl").read_text().replace('"bits_per_char":1.125', '"bits_per_char":9.0')
    (tmp_path / "rows.jsonl").write_text(text)
    assert sorted(ResultStore(tmp_path).rows) == ["u0-0"]  # checksum mismatch: row 1 and after dropped


def test_tables_in_given_order_and_identical(tmp_path):
    a, b = ResultStore(tmp_path / "a"), ResultStore(tmp_path / "b")
    for i in (0, 1, 2):
        a.add(_row(i, seed=i))
    for i in (2, 0, 1):  # another completion order
        b.add(_row(i, seed=i))
    order = ["u0-0", "u1-0", "u2-0", "missing-0"]
    a.write_tables(order)
    b.write_tables(order)
    for name in ("results.json", "results.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    rows = load_results(tmp_path / "a")
    assert [r["run_id"] for r in rows] == order[:3]
    assert not list((tmp_path / "a").glob("*.tmp")) and not list((tmp_path / "a").glob(".*.tmp"))
    header = (tmp_path / "a" / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["run_id", "section", "kind", "seed"] and "bits_per_char" in header


def test_csv_union_of_columns():
    text = rows_to_csv([{"run_id": "a", "x": 1.5}, {"run_id": "b", "y": None, "z": "q"}])
    assert text.splitlines() == ["run_id,x,y,z", "a,1.5,,", "b,,,q"]


def test_aggregate_mean_and_sample_std():
    rows = [{"card": "c", "v": 1.0}, {"card": "c", "v": 2.0}, {"card": "c", "v": 4.0}, {"card": "d", "v": 3.0}]
    g = {x["card"]: x for x in aggregate(rows, ("card",), ["v"])}
    assert abs(g["c"]["v.mean"] - 7 / 3) < 1e-12
    assert abs(g["c"]["v.std"] - (((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2) ** 0.5) < 1e-12
    assert g["d"]["v.std"] == 0.0 and g["d"]["n"] == 1
