"""The ingest path's fast paths give the answers of the plain ones: JSON with or without an
accelerator, DataFrame bodies (CSV, Parquet) and JSON rows alike, and concurrent SQLite writers."""

import io
import json
import threading
import types

import numpy as np
import pandas as pd
import pytest

from stalwart.errors import InputError
from stalwart.monitor import Store, ingest
from stalwart.monitor.ingest import batch_columns, parse_body, reference_columns

KINDS = {"x": "numeric", "k": "integer", "c": "categorical", "f": "boolean"}
MODEL = {"id": 1, "task": "classification", "classes": [0, 1], "columns": KINDS}
ROWS = [
    {"x": 0.5, "k": 3, "c": "red", "f": True, "prediction": 1, "row_id": "a"},
    {"x": None, "k": 4, "c": None, "f": False, "prediction": 0, "row_id": "b"},
    {"x": -1.25e-3, "k": None, "c": "7", "f": None, "prediction": 1, "row_id": "c"},
]


def _same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            _same(a[key], b[key])
        elif isinstance(a[key], np.ndarray):
            assert np.array_equal(a[key], b[key], equal_nan=True), key
        else:
            assert list(a[key]) == list(b[key]), key


def _table_body(frame, fmt):
    """``frame`` as a CSV or Parquet body, with its content type."""
    if fmt == "csv":
        return frame.to_csv(index=False).encode(), "text/csv"
    buf = io.BytesIO()
    frame.to_parquet(buf)
    return buf.getvalue(), "application/vnd.apache.parquet"


def _columns(rows):
    cols, n, _, _ = batch_columns(rows, MODEL, "b1", 100)
    cols.pop("timestamp")  # the time of arrival
    return cols, n


def test_json_rows_are_stored_as_the_schema_says():
    cols, n = _columns(parse_body(json.dumps(ROWS).encode(), "application/json", "rows")[0])
    assert n == 3
    assert np.array_equal(cols["inputs"]["x"], [0.5, np.nan, -1.25e-3], equal_nan=True)
    assert np.array_equal(cols["inputs"]["k"], [3.0, 4.0, np.nan], equal_nan=True)
    assert cols["inputs"]["c"] == ["red", None, "7"]
    assert cols["inputs"]["f"] == [True, False, None]
    assert cols["prediction"] == [1, 0, 1] and cols["row_id"] == ["a", "b", "c"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_dataframe_body_stores_what_the_same_json_rows_store(fmt):
    body, kind = _table_body(pd.DataFrame(ROWS), fmt)
    from_json = _columns(parse_body(json.dumps(ROWS).encode(), "application/json", "rows")[0])
    _same(*[c for c, _ in (from_json, _columns(parse_body(body, kind, "rows")[0]))])


def test_a_dataframe_with_text_in_a_numeric_column_is_refused_by_row():
    frame = pd.DataFrame([{**ROWS[0]}, {**ROWS[0], "x": "lots", "row_id": "z"}])
    with pytest.raises(InputError, match=r"column 'x' is numeric but row 1 holds 'lots'"):
        batch_columns(frame, MODEL, "b1", 100)


def test_rows_with_keys_in_another_order_are_transposed_by_name():
    reordered = [dict(reversed(list(r.items()))) if i == 1 else r for i, r in enumerate(ROWS)]
    _same(_columns(ROWS)[0], _columns(reordered)[0])


class _StrictLoader(types.SimpleNamespace):
    """Stands in for orjson: refuses NaN and non-UTF-8 bodies, as orjson does."""


def _strict_loader(calls):
    class JSONDecodeError(ValueError):
        pass

    def loads(body):
        calls.append(body)
        if b"NaN" in body or not body.isascii():
            raise JSONDecodeError("refused")
        return json.loads(body)
    return _StrictLoader(loads=loads, JSONDecodeError=JSONDecodeError)


def test_what_an_accelerator_refuses_the_standard_library_decides(monkeypatch):
    calls = []
    monkeypatch.setattr(ingest, "_orjson", _strict_loader(calls))
    rows, _ = parse_body(b'[{"x": NaN, "prediction": 1}]', "application/json", "rows")
    assert len(calls) == 1 and np.isnan(rows[0]["x"])  # standard JSON would refuse it; Python's takes it
    rows, extra = parse_body(json.dumps({"batch_id": "b", "rows": ROWS}).encode("utf-16"), "application/json", "rows")
    assert rows == ROWS and extra == {"batch_id": "b"}
    with pytest.raises(InputError, match="not valid JSON"):
        parse_body(b'{"rows": [NaN', "application/json", "rows")
    assert parse_body(json.dumps(ROWS).encode(), "application/json", "rows")[0] == ROWS
    assert len(calls) == 4


def test_orjson_when_installed_parses_as_the_standard_library_does(monkeypatch):
    orjson = pytest.importorskip("orjson")
    body = json.dumps({"rows": ROWS + [{"x": 1e308, "k": -(2 ** 62), "c": "é\u2603", "f": True, "prediction": 0}]}
                      ).encode()
    assert orjson.loads(body) == json.loads(body)
    fast = parse_body(body, "application/json", "rows")
    monkeypatch.setattr(ingest, "_orjson", None)
    assert parse_body(body, "application/json", "rows") == fast


def test_concurrent_sqlite_ingest_threads_store_every_batch_once(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    project = store.authenticate(store.create_key("p", "admin")).project_id
    model = store.add_model(project, "m", "classification", [0, 1], KINDS, {"window_rows": 100})
    cols, n, first, last = batch_columns(ROWS, model, "b", 100)
    answers, errors = [], []

    def send(t):
        try:
            for i in range(25):
                # every batch twice from two threads: one stores it, the other sees a retry
                answers.append((f"b{i}-{t // 2}", store.add_batch(model["id"], f"b{i}-{t // 2}", cols, n, first, last,
                                                                  "same")))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.batch_count(model["id"]) == (75, 225)
    stored = [key for key, new in answers if new]
    assert len(answers) == 150 and sorted(stored) == sorted({key for key, _ in answers})
    store.close()


def test_batches_wake_the_worker_once_a_window_of_rows_has_arrived(tmp_path, monkeypatch):
    import time
    import warnings

    from stalwart.monitor import Settings, create_app
    from stalwart.monitor import app as app_module

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    passes = []
    monkeypatch.setattr(app_module, "analyze", lambda store, *a: passes.append(1) or {"windows": {}})
    monkeypatch.setattr(app_module, "deliver_pending", lambda *a, **k: None)
    # no pass on the clock during the test: only batches wake the worker
    app = create_app(Settings(db=f"sqlite:///{tmp_path / 'm.db'}", worker_interval_s=600, analysis_process=False))
    store = app.state.store
    key = store.create_key("p", "admin")
    headers = {"Authorization": f"Bearer {key}"}
    rows = [dict(r, row_id=None) for r in ROWS[:2]]  # 2 rows a batch

    def wait_for(n):
        for _ in range(50):  # bounded: a woken worker passes at once
            if len(passes) >= n:
                break
            time.sleep(0.02)
        return len(passes)

    with TestClient(app) as client:
        client.post("/v1/projects/p/models", headers=headers,
                    json={"name": "m", "columns": KINDS, "classes": [0, 1], "window_rows": 10}).raise_for_status()
        for i in range(4):  # 8 rows: less than a window
            r = client.post(f"/v1/projects/p/models/m/batches?batch_id=a{i}", headers=headers, json=rows)
            assert r.status_code == 201, r.text
        assert wait_for(1) == 0
        client.post("/v1/projects/p/models/m/batches?batch_id=a4", headers=headers, json=rows)  # 10 rows
        assert wait_for(1) == 1
        for i in range(5, 9):  # 8 more rows, and a retry that stores nothing
            client.post(f"/v1/projects/p/models/m/batches?batch_id=a{i}", headers=headers, json=rows)
        client.post("/v1/projects/p/models/m/batches?batch_id=a8", headers=headers, json=rows)
        assert wait_for(2) == 1
        client.post("/v1/projects/p/models/m/batches?batch_id=a9", headers=headers, json=rows)
        assert wait_for(2) == 2
    store.close()


def test_mixed_values_take_the_value_by_value_path_and_are_normalised_alike():
    rows = [
        {"x": 1, "k": "2.5", "c": 7, "f": True, "prediction": "1", "timestamp": 5},
        {"x": float("inf"), "k": "nan", "c": None, "f": "yes", "prediction": 0.0, "timestamp": "1970-01-01T00:00:10Z"},
        {"x": -2.5, "k": None, "c": "blue", "f": None, "prediction": True, "timestamp": 7.5},
    ]
    model = {**MODEL, "classes": [0, 1, True]}
    cols, n, first, last = batch_columns(rows, model, "b1", 100)
    assert n == 3 and (first, last) == (5.0, 10.0)
    assert np.array_equal(cols["inputs"]["x"], [1.0, np.nan, -2.5], equal_nan=True)  # infinity: missing
    assert np.array_equal(cols["inputs"]["k"], [2.5, np.nan, np.nan], equal_nan=True)
    assert cols["inputs"]["c"] == ["7", None, "blue"] and cols["inputs"]["f"] == [True, True, None]
    assert cols["prediction"] == [1, 0, True] and cols["timestamp"].tolist() == [5.0, 10.0, 7.5]
    assert cols["row_id"] == ["b1:0", "b1:1", "b1:2"]


@pytest.mark.parametrize(("change", "message"), [
    ({"k": None, "zz": 1}, r"unknown column\(s\) \['zz'\]"),  # as many keys as the first row, not the same
    ({"k": None, "row_id": "r"}, "row 1 lacks 'k'"),
    ({"x": [1.0]}, "column 'x' is numeric but row 1 holds \\[1.0\\]"),
    ({"x": {"v": 1}}, "column 'x' is numeric but row 1 holds"),
    ({"k": 10 ** 400}, "column 'k' is integer but row 1 holds"),
    ({"c": ["red"]}, "column 'c' row 1 holds a list"),
    ({"f": "maybe"}, "column 'f' is boolean but row 1 holds 'maybe'"),
    ({"prediction": 7}, "prediction 7 of row 1 is not one of the model's classes"),
    ({"prediction": None}, "prediction of row 1 is missing"),
    ({"row_id": "a"}, "repeats a row_id"),
    ({"row_id": "r" * 201}, "longer than 200 characters"),
    ({"timestamp": float("inf")}, "timestamp inf of row 1"),
    ({"timestamp": "yesterday"}, "timestamp 'yesterday' of row 1"),
])
def test_a_bad_value_among_good_rows_is_refused_by_column_and_row(change, message):
    good = [{"x": 0.5, "k": 3, "c": "red", "f": True, "prediction": 1, "row_id": "a", "timestamp": 1.0},
            {"x": 1.5, "k": 4, "c": "blue", "f": False, "prediction": 0, "row_id": "b", "timestamp": 2.0}]
    rows = [good[0], {**{k: v for k, v in good[1].items() if k not in change or change[k] is not None}, **{
        k: v for k, v in change.items() if v is not None or k == "prediction"}}]
    if change.get("k", 0) is None:  # the key is dropped, not nulled
        rows[1].pop("k", None)
    with pytest.raises(InputError, match=message):
        batch_columns(rows, MODEL, "b1", 100)


def test_batches_are_checked_and_stored_by_a_few_threads_of_their_own(tmp_path):
    import time
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    from stalwart.monitor import Settings, create_app
    from stalwart.monitor.app import INGEST_THREADS

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    app = create_app(Settings(db=f"sqlite:///{tmp_path / 'm.db'}", worker=False))
    store = app.state.store
    key = store.create_key("p", "admin")
    headers = {"Authorization": f"Bearer {key}"}
    add, lock, busy, seen = store.add_batch, threading.Lock(), [0], []

    def slow_add(*args):  # holds each batch a moment, so that requests in flight pile up
        with lock:
            busy[0] += 1
            seen.append((threading.current_thread().name, busy[0]))
        time.sleep(0.02)
        try:
            return add(*args)
        finally:
            with lock:
                busy[0] -= 1
    store.add_batch = slow_add
    with TestClient(app) as client:
        client.post("/v1/projects/p/models", headers=headers,
                    json={"name": "m", "columns": KINDS, "classes": [0, 1]}).raise_for_status()

        def send(i):
            return client.post(f"/v1/projects/p/models/m/batches?batch_id=c{i}", headers=headers,
                               json=[dict(r, row_id=None) for r in ROWS]).status_code
        with ThreadPoolExecutor(8) as clients:
            assert list(clients.map(send, range(24))) == [201] * 24
    assert store.batch_count(store.model(store.project_id("p"), "m")["id"]) == (24, 72)
    names = {name for name, _ in seen}
    assert all(name.startswith("stalwart-ingest") for name in names) and len(names) <= INGEST_THREADS
    assert max(n for _, n in seen) == INGEST_THREADS  # eight requests in flight, two stored at a time
    assert not [t for t in threading.enumerate() if t.name.startswith("stalwart-ingest")]  # gone with the app
    store.close()


# -- a boolean in a numeric column -----------------------------------------------------------------

BOOL_MESSAGE = "column '{}' is {} but row {} holds {}, a boolean; send a number"


@pytest.mark.parametrize("path", ["floats", "mixed"])
@pytest.mark.parametrize(("column", "kind"), [("x", "numeric"), ("k", "integer")])
def test_a_boolean_in_a_numeric_column_is_refused_on_the_fast_and_the_value_by_value_path(path, column, kind):
    """numpy takes true as 1.0: the one-call conversion of the numeric columns (numbers only) and
    the value-by-value pass (a column of mixed types that numpy cannot convert: here text that is
    no number, after the boolean) refuse it alike, by column and row: the first bad value."""
    rows = [{"x": 0.5, "k": 3, "c": "red", "f": True, "prediction": 1} for _ in range(40)]
    rows[7][column] = False
    if path == "mixed":
        rows[1][column], rows[2][column], rows[20][column] = "1.5", None, "lots"
    message = BOOL_MESSAGE.format(column, kind, 7, "false")
    with pytest.raises(InputError, match=message):
        batch_columns(rows, MODEL, "b1", 100)
    # one numeric column alone takes _numbers' own conversion, which refuses it too
    alone = {**MODEL, "columns": {column: kind}}
    with pytest.raises(InputError, match=message):
        batch_columns([{column: r[column], "prediction": 1} for r in rows], alone, "b1", 100)


def test_a_boolean_among_many_zeros_and_ones_is_found_and_numbers_that_are_0_or_1_are_kept():
    # more than 32 values of 0 or 1 in a column: its types are looked at all at once, not one by one
    rows = [{"x": float(i % 2), "k": i % 2, "c": "red", "f": True, "prediction": 1} for i in range(100)]
    cols, n, _, _ = batch_columns(rows, MODEL, "b1", 100)
    assert cols["inputs"]["x"].tolist() == [0.0, 1.0] * 50 and cols["inputs"]["k"].tolist() == [0.0, 1.0] * 50
    rows[93]["k"] = True
    with pytest.raises(InputError, match=BOOL_MESSAGE.format("k", "integer", 93, "true")):
        batch_columns(rows, MODEL, "b1", 100)


@pytest.mark.parametrize("cells", [("true", "false"), ("true", "")])
def test_a_csv_column_of_booleans_in_a_numeric_column_is_refused(cells):
    # all booleans: a bool column; booleans and an empty cell: an object column of True and NaN
    body = f"x,k,c,f,prediction\n{cells[0]},1,red,true,1\n{cells[1]},2,blue,false,0\n".encode()
    with pytest.raises(InputError, match=BOOL_MESSAGE.format("x", "numeric", 0, "true")):
        batch_columns(parse_body(body, "text/csv", "rows")[0], MODEL, "b1", 100)


def test_a_boolean_score_is_refused():
    rows = [{**ROWS[0], "score": 0.25}, {**ROWS[1], "score": True}]
    with pytest.raises(InputError, match=BOOL_MESSAGE.format("score", "numeric", 1, "true")):
        batch_columns(rows, MODEL, "b1", 100)


# -- class probabilities as a table --------------------------------------------------------------

def test_probability_columns_are_named_after_the_classes_as_their_text():
    assert ingest.probability_columns([0, 1]) == ["probability_0", "probability_1"]
    assert ingest.probability_columns(["no", "yes"]) == ["probability_no", "probability_yes"]
    assert ingest.probability_columns([False, True]) == ["probability_False", "probability_True"]
    assert ingest.probability_columns(None) == []


def _probability_rows(classes):
    """JSON rows with a 'probabilities' list (a row without: null), and the same rows with one
    probability_<class> column per class (a row without: null in every one)."""
    k = len(classes)
    lists = [[0.7] + [0.3 / (k - 1)] * (k - 1), None, [0, 1] + [0] * (k - 2), [1 / 3, 0.6, 1 / 15][:k]]
    if k == 2:
        lists[3] = [0.123456789012345, 0.876543210987655]
    rows = [{"x": 0.5 + i, "k": i, "c": "red", "f": True, "prediction": classes[i % k], "row_id": f"r{i}",
             "timestamp": 1.0 + i, "probabilities": p} for i, p in enumerate(lists)]
    names = ingest.probability_columns(classes)
    table = [{**{key: v for key, v in r.items() if key != "probabilities"},
              **{c: None if r["probabilities"] is None else r["probabilities"][j] for j, c in enumerate(names)}}
             for r in rows]
    return rows, table, lists


def _bodies(rows, table):
    """The same rows as JSON lists, JSON columns, CSV columns, Parquet columns and a Parquet list column."""
    out = {"json": (json.dumps(rows).encode(), "application/json"),
           "json columns": (json.dumps(table).encode(), "application/json"),
           "csv": _table_body(pd.DataFrame(table), "csv"),
           "parquet": _table_body(pd.DataFrame(table), "parquet"),
           "parquet list": _table_body(pd.DataFrame(rows), "parquet")}
    return out


@pytest.mark.parametrize("classes", [[0, 1], ["no", "maybe", "yes"], [False, True]])
def test_probabilities_sent_as_a_list_or_as_columns_are_stored_byte_for_byte_alike(classes):
    from stalwart.monitor.store import encode_columns

    rows, table, lists = _probability_rows(classes)
    model = {**MODEL, "classes": classes}
    stored = {}
    for name, (body, kind) in _bodies(rows, table).items():
        cols, n, _, _ = batch_columns(parse_body(body, kind, "rows")[0], model, "b1", 100)
        stored[name] = encode_columns(cols)
        # a list of floats per row, in the order of the classes, None for the row without
        assert cols["probabilities"] == [None if p is None else [float(v) for v in p] for p in lists], name
        assert all(type(v) is float for p in cols["probabilities"] if p is not None for v in p)
        reference = {key: v for key, v in reference_columns(parse_body(body, kind, "rows")[0], model, 100)[0].items()}
        stored[name + " reference"] = encode_columns(reference)
    for name, blob in stored.items():
        assert blob == stored["json reference" if name.endswith("reference") else "json"], name


@pytest.mark.parametrize(("change", "message"), [
    # a partial set of columns: the missing ones named, and the fix
    (lambda t: [{k: v for k, v in r.items() if k != "probability_1"} for r in t],
     r"has probability column\(s\) \['probability_0'\] but lacks \['probability_1'\]; send one column per class"),
    # a row with some classes' probabilities but not all
    (lambda t: [{**r, "probability_1": None} if r["row_id"] == "r2" else r for r in t],
     r"row 2 has no value in \['probability_1'\] but has one for the other classes"),
    (lambda t: [{**r, "probability_0": "most"} if r["row_id"] == "r3" else r for r in t],
     r"column 'probability_0' row 3 holds 'most'; a probability is a finite number"),
    (lambda t: [{**r, "probability_1": float("inf")} if r["row_id"] == "r3" else r for r in t],
     r"column 'probability_1' row 3 holds inf; a probability is a finite number"),
    (lambda t: [{**r, "probability_1": True} if r["row_id"] == "r0" else r for r in t],
     r"column 'probability_1' row 0 holds true; a probability is a finite number"),
    (lambda t: [{**r, "probability_1": [0.5]} if r["row_id"] == "r0" else r for r in t],
     r"column 'probability_1' row 0 holds \[0.5\]"),
    (lambda t: [{**r, "probability_1": 10 ** 400} if r["row_id"] == "r0" else r for r in t],
     r"column 'probability_1' row 0 holds 1000"),
    # both ways at once
    (lambda t: [{**r, "probabilities": [0.5, 0.5]} for r in t], r"both a 'probabilities' column and"),
    # a class's column not written as the model's classes are: the names it takes are said
    (lambda t: [{("probability_true" if k == "probability_1" else k): v for k, v in r.items()} for r in t],
     r"unknown column\(s\) \['probability_true'\].*named after the model's classes: "
     r"\['probability_0', 'probability_1'\]"),
])
def test_a_bad_probability_column_is_refused_by_column_and_row(change, message):
    _, table, _ = _probability_rows([0, 1])
    with pytest.raises(InputError, match=message):
        batch_columns(change(table), MODEL, "b1", 100)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_infinity_or_a_partial_row_in_a_table_is_refused_by_row(fmt):
    _, table, _ = _probability_rows([0, 1])
    for cell, message in ((float("inf"), r"column 'probability_0' row 2 holds inf"),
                          (None, r"row 2 has no value in \['probability_0'\]")):
        frame = pd.DataFrame([{**r, "probability_0": cell} if r["row_id"] == "r2" else r for r in table])
        body, kind = _table_body(frame, fmt)
        with pytest.raises(InputError, match=message):
            reference_columns(parse_body(body, kind, "rows")[0], MODEL, 100)


def test_a_csv_probabilities_column_of_text_says_to_send_one_column_per_class():
    body = b'x,k,c,f,prediction,probabilities\n0.5,3,red,true,1,"[0.2, 0.8]"\n'
    with pytest.raises(InputError, match=r"row 0 must be a list of 2 finite numbers.*send one column per class "
                                         r"instead: \['probability_0', 'probability_1'\]"):
        batch_columns(parse_body(body, "text/csv", "rows")[0], MODEL, "b1", 100)


def test_a_model_whose_input_column_has_a_probability_columns_name_takes_it_as_an_input():
    # registered before such names were refused: the column stays an input, lists still work
    model = {**MODEL, "columns": {**KINDS, "probability_1": "numeric"}}
    rows = [{**r, "probability_1": 0.5, "probabilities": [0.25, 0.75]} for r in ROWS]
    cols, _, _, _ = batch_columns(rows, model, "b1", 100)
    assert cols["inputs"]["probability_1"].tolist() == [0.5] * 3 and cols["probabilities"] == [[0.25, 0.75]] * 3
    with pytest.raises(InputError, match=r"cannot come as columns \['probability_0', 'probability_1'\]"):
        batch_columns([{**r, "probability_0": 0.5, "probability_1": 0.5} for r in ROWS], model, "b1", 100)


@pytest.mark.parametrize(("bad", "shown"), [
    ([0.5, True], r"\[0.5, True\]"), ([0.5, float("nan")], r"\[0.5, nan\]"), ([0.5, float("inf")], r"\[0.5, inf\]"),
    ([0.5], r"\[0.5\]"), ([0.2, 0.3, 0.5], r"\[0.2, 0.3, 0.5\]"), ([0.5, "0.5"], r"\[0.5, '0.5'\]"),
    ([0.5, 10 ** 400], r"\[0.5, 1000"), ([0.5, [0.5]], r"\[0.5, \[0.5\]\]"), ({"0": 0.5}, r"\{'0': 0.5\}"),
])
@pytest.mark.parametrize("with_null", [False, True])
def test_a_bad_probabilities_list_is_refused_by_row_among_good_ones(bad, shown, with_null):
    # the good rows take the one-call conversion, a bad one the row-by-row check, which names it
    rows = [{**ROWS[0], "row_id": f"r{i}", "probabilities": [0.25, 0.75]} for i in range(5)]
    if with_null:
        rows[0]["probabilities"] = None
    cols, _, _, _ = batch_columns(rows, MODEL, "b1", 100)
    assert cols["probabilities"] == [None if with_null else [0.25, 0.75]] + [[0.25, 0.75]] * 4
    rows[3]["probabilities"] = bad
    with pytest.raises(InputError, match=r"probabilities of row 3 must be a list of 2 finite numbers \(one per "
                                         rf"class, in the order \[0, 1\]\); got {shown}"):
        batch_columns(rows, MODEL, "b1", 100)
