"""``predict --engine ray``: Ray Data with an actor pool writes what ``predict`` writes, and resumes (issue 36)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from .conftest import run_main, toy_texts, write_csv  # noqa: E402

pytestmark = pytest.mark.slow  # a local Ray starts (seconds)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    from cls_app import TextClassifier

    folder = tmp_path_factory.mktemp("ray_model")
    return TextClassifier(kind="char_nb", seed=0).fit(*toy_texts(200, 2)).save(folder / "m")


def plain(model: Path, source: Path, out: Path) -> str:
    from cls_app.inference.files import predict_file
    from cls_app.models.base import load_folder
    from cls_app.models.options import InferenceOptions

    predict_file(load_folder(model, InferenceOptions()), source, out)
    return out.read_text(encoding="utf-8")


def test_ray_writes_what_predict_writes_and_resumes(local_ray, model, tmp_path) -> None:
    """Every row, in order, byte for byte what the plain path writes (an empty text, a quoted line break included);
    stopped after two blocks, the same call goes on from the third block."""
    from cls_app.inference.ray_batch import RaySettings, predict_dataset, progress_paths

    texts, labels = toy_texts(2300, 1)
    texts[5], texts[9] = "", "两行\n的文本"
    source = write_csv(tmp_path / "in.csv", texts, labels)
    expected = plain(model, source, tmp_path / "plain.csv")
    settings = RaySettings(block_rows=500)
    out = tmp_path / "ray.csv"
    seen: list[int] = []

    def stop_after_two(rows: int) -> None:
        seen.append(rows)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_dataset(model, source, out, settings=settings, on_block=stop_after_two)
    partial, record = progress_paths(out)
    assert not out.exists() and partial.is_file() and json.loads(record.read_text("utf-8"))["rows_written"] == 1000
    seen.clear()
    summary = predict_dataset(model, source, out, settings=settings, on_block=seen.append)
    assert summary.resumed_rows == 1000 and seen[0] == 1500  # the first block scored is the third
    assert summary.rows == 2300 and summary.empty_rows == 1
    assert out.read_text(encoding="utf-8") == expected
    assert not partial.exists() and not record.exists()


def test_a_folder_of_files_and_the_command(local_ray, model, tmp_path, capsys) -> None:
    """A folder of JSONL and Parquet files: their rows in file-name order, as predict writes each; the command
    prints what it wrote; a layout mismatch and a missing folder are one-line errors."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "in"
    folder.mkdir()
    a_texts, a_labels = toy_texts(300, 3)
    (folder / "a.jsonl").write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
                                            for i, t in enumerate(a_texts)), encoding="utf-8")
    b_texts, _ = toy_texts(200, 4)
    pq.write_table(pa.table({"id": list(range(300, 500)), "text": b_texts}), folder / "b.parquet")
    out = tmp_path / "out.jsonl"
    rc, printed, err = run_main(capsys, "predict", "--engine", "ray", "--model", str(model), "--input", str(folder),
                                "--output", str(out), "--block-rows", "128")
    assert rc == 0, err
    assert "wrote 500 rows" in printed
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == list(range(500))
    expected = [json.loads(line) for line in plain(model, folder / "a.jsonl", tmp_path / "a.jsonl").splitlines()]
    expected += [json.loads(line) for line in plain(model, folder / "b.parquet", tmp_path / "b.jsonl").splitlines()]
    assert rows == expected

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    write_csv(mixed / "a.csv", a_texts[:10], a_labels[:10])
    (mixed / "b.csv").write_text("body\n好\n", encoding="utf-8")
    rc, _, err = run_main(capsys, "predict", "--engine", "ray", "--model", str(model), "--input", str(mixed),
                          "--output", str(tmp_path / "m.csv"))
    assert rc == 2 and "b.csv: its columns (body) differ from the first file's (text, label)" in err
    rc, _, err = run_main(capsys, "predict", "--engine", "ray", "--model", str(model), "--input",
                          str(tmp_path / "nowhere"), "--output", str(tmp_path / "n.csv"))
    assert rc == 2 and "nowhere: file or folder not found" in err
