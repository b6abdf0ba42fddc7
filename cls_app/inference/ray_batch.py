"""Batch prediction on Ray Data: ``run.py predict --engine ray`` and :func:`predict_dataset`.

The input (one file, or a folder of files, in any format ``predict`` reads) becomes a Ray dataset
of a datasource with one read task per file, each parsing its file with ``predict``'s own streaming
readers (:class:`~cls_app.io.table_stream.TableReader`), so the rows, columns and cells are exactly
``predict``'s, into blocks of :attr:`RaySettings.block_rows` rows. ``map_batches`` scores the blocks
with an actor pool of model replicas (the folder loaded once per actor, :attr:`RaySettings.threads`
threads each, as many actors as the cluster has CPUs for); the driver receives the blocks in input
order (``preserve_order``) and appends them to the output, recording after each block how far it
got. The output appears under its name only when complete, as ``predict``'s does.

**Resuming.** A run that was killed (or failed) leaves ``OUTPUT.partial`` and
``OUTPUT.progress.json``; the same command again checks that the input files, the model and the
options are the same, cuts the partial file back to the last recorded block and goes on from there:
the finished blocks are neither scored nor sent through the pipeline again (their rows are parsed and
skipped by the read task). A different input or model starts over (with a warning).

Without ``address`` a local Ray is started on this machine (and stopped at the end); with one, the
job joins that cluster, whose nodes must see the model folder and the input files under the same
paths (a shared file system) and have this package installed (docs/ray.md).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError, where
from ..fileio import write_json
from ..io.records import ReadOptions, as_text
from ..io.table_stream import RowChunk, TableReader, TableWriter, output_format
from ..models.options import InferenceOptions
from ..settings import setting
from .files import WARN_EMPTY_ROWS, PredictSummary, pair_chunks
from .prediction_log import LogSettings, PredictionLog

log = logging.getLogger(__name__)

__all__ = ["ENGINES", "RaySettings", "input_files", "predict_dataset"]

ENGINES = ("plain", "ray")
"""``predict --engine``: this process (and torchrun), or Ray Data."""

PROGRESS_VERSION = 1


@dataclass(frozen=True)
class RaySettings:
    """How ``predict`` runs (``engine``) and, on Ray, how."""

    engine: str = setting("plain", "plain (default): this process (torchrun / --shard to spread it); ray: Ray Data, "
                          "a model replica per --threads CPUs of the cluster, the output written in input order, a "
                          "killed run resumed by the same command (docs/ray.md)", choices=("plain", "ray"))
    address: str | None = setting(None, "--engine ray: the Ray cluster to join (e.g. ray://head:10001 or auto); "
                                  "default: start a local Ray on this machine for the run")
    actors: int | None = setting(None, "--engine ray: model replicas (default: the cluster's CPUs / --threads)")
    block_rows: int = setting(4096, "--engine ray: rows a block (the unit scored by an actor, written and "
                              "resumed) (default: %(default)s)")

    def check(self) -> RaySettings:
        if self.engine not in ENGINES:
            raise UserError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.actors is not None and self.actors < 1:
            raise UserError(f"--actors must be at least 1, got {self.actors}")
        if self.block_rows < 1:
            raise UserError(f"--block-rows must be at least 1, got {self.block_rows}")
        return self


def input_files(path: str | os.PathLike) -> list[Path]:
    """The files to score: ``path`` itself, or the files of the folder ``path`` (sorted by name, hidden files and
    files whose extension no format claims left out)."""
    from ..io.formats import FORMATS

    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UserError(f"{path}: file or folder not found")
    known = {ext for f in FORMATS.values() for ext in f.extensions}
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() in known)
    if not files:
        raise UserError(f"{path}: the folder holds no file of a format predict reads ({', '.join(sorted(known))})")
    return files


# --------------------------------------------------------------------------- reading (in Ray's read tasks)


def read_blocks(path: Path, read: ReadOptions, block_rows: int, skip: int, file_index: int,
                columns: list[str] | None) -> Iterator[dict[str, Any]]:
    """The rows of ``path`` after the first ``skip``, as blocks (column name -> array): the file's index, the row's
    0-based index and 1-based line, its text (None: empty) and its original cells (pickled: they travel between
    this package's own processes only)."""
    reader = TableReader(path, text_col=read.text_col, encoding=read.encoding, fmt=read.fmt, chunk_rows=block_rows)
    chunks = reader.chunks()
    if read.text_pair_col:
        chunks = pair_chunks(reader, chunks, read.text_pair_col)
    row = 0
    for chunk in chunks:
        if columns is not None and reader.columns != columns and reader.row_kind == "list":
            raise UserError(f"{path}: its columns ({', '.join(reader.columns or [])}) differ from the first file's "
                            f"({', '.join(columns)}); score files of one layout together")
        start = row
        row += len(chunk)
        if row <= skip:
            continue
        lo = max(0, skip - start)
        n = len(chunk) - lo
        yield {"file": np.full(n, file_index, dtype=np.int32), "row": np.arange(start + lo, row, dtype=np.int64),
               "line": np.asarray(chunk.lines[lo:], dtype=np.int64),
               "text": np.asarray(chunk.texts[lo:], dtype=object),
               "cells": np.asarray([pickle.dumps(r, protocol=5) for r in chunk.rows[lo:]], dtype=object)}


def _datasource(files: list[Path], read: ReadOptions, block_rows: int, skip: dict[int, int],
                columns: list[str] | None) -> Any:
    """A Ray datasource with one read task a file still to score (its first ``skip[i]`` rows left out)."""
    import pandas as pd
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    class RowFiles(Datasource):
        def get_name(self) -> str:
            return "RowFiles"

        def estimate_inmemory_data_size(self) -> int | None:
            return sum(files[i].stat().st_size for i in todo) * 2

        def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                           data_context: Any = None) -> list[Any]:
            tasks = []
            for i in todo:
                def read_fn(i: int = i) -> Iterator[Any]:
                    for block in read_blocks(files[i], read, block_rows, skip.get(i, 0), i, columns):
                        yield pd.DataFrame(block)

                meta = BlockMetadata(num_rows=None, size_bytes=files[i].stat().st_size, input_files=(str(files[i]),),
                                     exec_stats=None)
                tasks.append(ReadTask(read_fn, meta, per_task_row_limit=per_task_row_limit))
            return tasks

    done_files = {i for i, n in skip.items() if n < 0}  # -1: the whole file is done
    todo = [i for i in range(len(files)) if i not in done_files]
    return RowFiles()


class BlockScorer:
    """One model replica of the actor pool: the folder loaded once, then block after block."""

    def __init__(self, folder: str, options: dict, top_k: int, log_text: str | None = None, version: str = "") -> None:
        from ..models.base import load_folder

        self.model = load_folder(Path(folder), InferenceOptions(**options).check())
        self.top_k, self.log_text, self.version = top_k, log_text, version

    def __call__(self, block: Any) -> Any:
        texts = [as_text(t) for t in block["text"].tolist()]
        scored = self.model.score(texts)
        abstention = self.model.abstention(scored)
        values = self.model.task.output_values(scored.probs, self.model.labels, self.top_k, abstention)
        block["values"] = [pickle.dumps(list(v), protocol=5) for v in values]
        block["empty"] = np.isnan(scored.probs[:, 0]) if len(texts) else np.zeros(0, dtype=bool)
        block["abstained"] = np.asarray(abstention.abstained, dtype=bool)
        if self.log_text is not None:  # the block's prediction-log lines, on its first row (the driver appends them)
            from .prediction_log import encode, log_records

            lines = encode(log_records(self.model, texts, scored.probs, scored.ood, abstention, self.log_text,
                                       self.version))
            block["log"] = [lines] + [b""] * (len(texts) - 1) if len(texts) else []
        return block


# --------------------------------------------------------------------------- the progress record


def _identity(files: list[Path], folder: Path, options: InferenceOptions, read: ReadOptions, top_k: int,
              block_rows: int) -> dict:
    """What must be the same for a run to resume another: the inputs (size, time), the model's files, the options."""
    from ..models.folders import model_version

    return {"version": PROGRESS_VERSION,
            "inputs": [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files],
            "model": [str(folder.resolve()), model_version(folder)], "top_k": top_k, "block_rows": block_rows,
            "options": {k: v for k, v in asdict(options).items() if k in ("backend", "precision", "quantize", "script",
                                                                           "abstain")},
            "read": asdict(read)}


@dataclass
class Progress:
    """How far the output got: ``files_done`` whole files, then ``rows`` rows of the next; ``bytes`` of output."""

    identity: dict
    files_done: int = 0
    rows: int = 0
    bytes: int = 0
    rows_written: int = 0
    empty_rows: int = 0
    abstained: int = 0

    def skips(self) -> dict[int, int]:
        """Rows to leave out of each file (-1: the whole file)."""
        out = dict.fromkeys(range(self.files_done), -1)
        if self.rows:
            out[self.files_done] = self.rows
        return out

    def save(self, path: Path) -> None:
        write_json(path, asdict(self))

    @classmethod
    def load(cls, path: Path, identity: dict) -> Progress | None:
        """The progress of an earlier run of the same job (None: none, or of another job)."""
        if not path.is_file():
            return None
        try:
            found = cls(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError):
            log.warning("%s: unreadable; starting over", path)
            return None
        if found.identity != json.loads(json.dumps(identity)):
            log.warning("%s: from a run with other inputs, model or options; starting over", path)
            return None
        return found


def progress_paths(output: Path) -> tuple[Path, Path]:
    """The partial output and the progress record of ``output``."""
    return output.with_name(output.name + ".partial"), output.with_name(output.name + ".progress.json")


# --------------------------------------------------------------------------- the driver


def _block_bytes(path: Path, read: ReadOptions, block_rows: int) -> int:
    """Three quarters of the in-memory size of the first block of ``path`` (a block of a file's first rows)."""
    import pandas as pd
    from ray.data.block import BlockAccessor

    first = next(read_blocks(path, read, block_rows, 0, 0, None), None)
    size = BlockAccessor.for_block(pd.DataFrame(first)).size_bytes() if first is not None else 1 << 20
    return max(1024, int(0.75 * size))


def _ray_started(settings: RaySettings, threads: int) -> bool:
    """Connect to ``settings.address`` or start a local Ray (True: this run started it and stops it)."""
    import ray

    if ray.is_initialized():
        return False
    if settings.address:
        ray.init(address=settings.address, logging_level=logging.WARNING, log_to_driver=False)
        return True
    root = str(Path(__file__).resolve().parents[2])  # workers import this package from where the driver does
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=os.cpu_count() or 1, runtime_env={"env_vars": {"PYTHONPATH": path}},
             logging_level=logging.WARNING, log_to_driver=False, include_dashboard=False)
    return True


def _unwrap(exc: BaseException) -> BaseException:
    """The UserError a Ray task raised (Ray wraps it), else ``exc``."""
    seen = exc
    for _ in range(8):
        if isinstance(seen, UserError):
            return UserError(str(seen.args[0]) if seen.args else str(seen))
        cause = getattr(seen, "cause", None) or seen.__cause__
        if cause is None:
            break
        seen = cause
    return exc


def predict_dataset(model: str | os.PathLike, inputs: str | os.PathLike, output: str | os.PathLike,
                    read: ReadOptions | None = None, *, top_k: int = 1, options: InferenceOptions | None = None,
                    settings: RaySettings = RaySettings(), progress: bool = False,
                    on_block: Any = None, log_settings: LogSettings | None = None) -> PredictSummary:
    """Classify every row of ``inputs`` (a file or a folder of files) into ``output`` on Ray Data (module
    docstring); returns what ``predict`` returns. ``on_block(rows_written)`` is called after each block is
    durable (a caller may stop the run there: the next run resumes). ``log_settings``: where to log the predictions
    (the actors make the records, this process appends them; a resumed run logs the rest once)."""
    import warnings

    import ray

    from ..bars import progress_bar
    from ..models.base import load_folder
    from ..tasks import check_top_k

    settings.check()
    options = (options or InferenceOptions()).check()
    folder, out = Path(model), Path(output)
    fmt = output_format(out)
    files = input_files(inputs)
    for f in files:
        if f.resolve() == out.resolve():
            raise UserError(f"{out}: the output would overwrite the input {f}; choose another file")
    clf = load_folder(folder, options)  # the columns the output gets, and a clear error for a bad folder here
    read = read or ReadOptions(text_pair_col=clf.text_pair_col)
    top_k = check_top_k(top_k, clf.labels)
    extra = clf.task.output_columns(clf.labels, top_k)
    first = TableReader(files[0], text_col=read.text_col, encoding=read.encoding, fmt=read.fmt, chunk_rows=1)
    next(first.chunks(), None)
    columns, row_kind = list(first.columns or []), first.row_kind
    if row_kind == "dict" and fmt != "jsonl" and len(files) > 1:
        log.info("%s: rows are JSON objects; the %s header holds the first file's fields", files[0], fmt)
    threads = options.threads or 1
    partial, record = progress_paths(out)
    identity = _identity(files, folder, options, read, top_k, settings.block_rows)
    state = Progress.load(record, identity) if partial.is_file() else None
    if state is not None:
        log.info("%s: resuming after %d rows (%d files whole)", out, state.rows_written, state.files_done)
        with open(partial, "r+b") as fh:
            fh.truncate(state.bytes)
    else:
        state = Progress(identity)
        partial.unlink(missing_ok=True)
    log_to = PredictionLog.for_model(log_settings, clf) if log_settings is not None else None
    started = _ray_started(settings, threads)
    summary = PredictSummary(rows=state.rows_written, empty_rows=state.empty_rows, abstained=state.abstained,
                             resumed_rows=state.rows_written)
    t0 = time.perf_counter()
    bar = progress_bar(enabled=progress, desc="predict (ray)", unit="row", initial=state.rows_written)
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars, ctx.target_max_block_size)
    quiet = logging.getLogger("ray.data"), logging.getLogger("ray.data").level
    quiet[0].setLevel(logging.WARNING)  # its plan and progress lines; warnings and errors still show
    try:
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        # Ray merges a read task's blocks up to this size before any actor sees them (a file would be one block,
        # scored by one replica): a little under the size of one of ours, so that each goes on alone
        ctx.target_max_block_size = _block_bytes(files[0], read, settings.block_rows)
        actors = settings.actors or max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
        ds = ray.data.read_datasource(
            _datasource(files, read, settings.block_rows, state.skips(), columns or None),
            override_num_blocks=max(1, len(files) - state.files_done),
            # no CPU reserved for parsing: the actors hold them all, and remote args unlike theirs keep Ray from
            # fusing a file's read task with the scoring (one file would get one replica)
            num_cpus=0)
        warnings.filterwarnings("ignore", message="The minimum number of concurrent actors")  # one file: one input
        ds = ds.map_batches(BlockScorer, batch_size=None, batch_format="pandas", num_cpus=threads,
                            compute=ray.data.ActorPoolStrategy(size=actors),
                            fn_constructor_kwargs={"folder": str(folder.resolve()), "options": {
                                **{k: v for k, v in asdict(options).items() if k != "abstain"},
                                "threads": threads, "progress": False, "abstain": options.abstain},
                                "top_k": top_k, "log_text": log_to.settings.log_text if log_to else None,
                                "version": log_to.version if log_to else ""})
        with open(partial, "ab") as raw, TableWriter.appending(raw, columns, extra, row_kind, files[0],
                                                                header=state.bytes == 0, name=out) as writer:
            for block in ds.iter_batches(batch_size=None, batch_format="pandas", prefetch_batches=2):
                if not len(block):
                    continue
                _note_empty(block, files, summary)
                rows = RowChunk([pickle.loads(c) for c in block["cells"]],  # our own blocks, never a user's file
                                block["text"].tolist(), block["line"].tolist())
                writer.write(rows, [pickle.loads(v) for v in block["values"]], columns)
                raw.flush()
                os.fsync(raw.fileno())
                summary.rows += len(block)
                summary.abstained += int(block["abstained"].sum())
                last_file, last_row = int(block["file"].iloc[-1]), int(block["row"].iloc[-1]) + 1
                state.files_done, state.rows = last_file, last_row
                state.bytes, state.rows_written = raw.tell(), summary.rows
                state.empty_rows, state.abstained = summary.empty_rows, summary.abstained
                state.save(record)
                if log_to is not None:
                    log_to.write_encoded(b"".join(block["log"]), len(block))
                bar.update(len(block))
                if on_block is not None:
                    on_block(summary.rows)
        os.replace(partial, out)
        record.unlink(missing_ok=True)
    except Exception as exc:  # a Ray task's UserError: one clear line (the partial output stays, to resume)
        raise _unwrap(exc) from None
    finally:
        bar.close()
        if log_to is not None:
            log_to.close()
        ctx.execution_options.preserve_order, ctx.enable_progress_bars, ctx.target_max_block_size = saved
        quiet[0].setLevel(quiet[1])
        if started:
            ray.shutdown()
    summary.seconds = time.perf_counter() - t0
    if summary.empty_rows > WARN_EMPTY_ROWS:
        log.warning("%s: %d rows had an empty text in all (empty predictions)", inputs, summary.empty_rows)
    return summary


def _note_empty(block: Any, files: Sequence[Path], summary: PredictSummary) -> None:
    for i in np.flatnonzero(block["empty"].to_numpy()):
        if summary.empty_rows < WARN_EMPTY_ROWS:
            log.warning("%s: empty text; writing an empty prediction for this row",
                        where(files[int(block["file"].iloc[i])], int(block["line"].iloc[i])))
        summary.empty_rows += 1

