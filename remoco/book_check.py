"""Does a re-executed chapter agree with its stored outputs? Execute the book's chapters once, compare them with
the outputs stored in ``notebooks/`` through the tolerance table of :mod:`remoco.tolerances`, and stage the
executed chapters for a book build that does not execute them again.

What is compared, per chapter:

* every **glued value** (``myst_nb.glue``: the numbers and phrases the prose quotes), whatever its cell;
* in every cell tagged :data:`CHECK_TAG`, every output but images: a table of :func:`remoco.book_utils.show_table`
  cell by cell (its caption and headers exactly), printed text and any other text output exactly.

A glued value or table column is a quantity of :data:`remoco.tolerances.QUANTITIES` (by the chapter's patterns in
:data:`remoco.tolerances.CHAPTER_QUANTITIES`): numbers from sampling, training, a tracker or a flow estimator pass
within their tolerance, everything else must print the same. The code of the stored and the executed chapter must
be the same too (a stored chapter older than its code fails).

Command line (``make test`` runs ``execute`` then ``compare``; ``.ci/run`` then ``stage`` and builds the book from
the executed chapters)::

    python -m remoco.book_check execute --out _build/executed [--jobs 2] [--threads N] [--only 03 05]
    python -m remoco.book_check compare --fresh _build/executed [--stored notebooks] [--verbose]
    python -m remoco.book_check stage --fresh _build/executed --out _build/book-src
    python -m remoco.book_check drift A B         # the largest difference per quantity between two executions
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from .book_utils import THREADS_ENV
from .tolerances import QUANTITIES, compare_text, number_value, printed_numbers, quantity_of

__all__ = ["ROOT", "NOTEBOOKS", "CHECK_TAG", "THREADS_ENV", "DRIFT_FILE", "glued_values", "parse_tables", "Comparison",
           "ChapterCheck", "compare_chapter", "compare_folders", "execute_chapters", "stage_book", "drift",
           "drift_note", "main"]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
#: The measured difference between two executions of the book (``drift`` at two thread counts), which the chapters
#: quote in a footnote.
DRIFT_FILE = ROOT / "results" / "chapter_drift.json"
#: The cell tag whose outputs are compared (text exactly; tables and numbers per quantity).
CHECK_TAG = "check-output"
_GLUE_MIME = "application/papermill.record/text/plain"
_SKIPPED_MIME = ("image/png", "image/jpeg", "image/svg+xml", "application/vnd.jupyter.widget-view+json",
                 "application/vnd.jupyter.widget-state+json")


def _read(path):
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}")
    return nbformat.read(path, as_version=4)


def _code_cells(nb) -> list:
    """The code cells, less papermill's injected-parameters cell (present only when parameters were given)."""
    return [c for c in nb.cells if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])]


def _glue(output) -> tuple[str, str] | None:
    """``(name, printed value)`` of a glue output, else None."""
    name = output.get("metadata", {}).get("scrapbook", {}).get("name")
    if name is None or _GLUE_MIME not in output.get("data", {}):
        return None
    text = output["data"][_GLUE_MIME]
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return name, text
    return name, value if isinstance(value, str) else repr(value)


def glued_values(nb) -> dict[str, str]:
    """``{name: printed value}`` of every value glued in the notebook ``nb`` (a string as the prose shows it)."""
    out = {}
    for cell in _code_cells(nb):
        for o in cell.get("outputs", []):
            g = _glue(o)
            if g is not None:
                out[g[0]] = g[1]
    return out


class _Tables(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables, self._cell, self._row = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"caption": "", "header": [], "rows": []})
        elif self.tables and tag == "caption":
            self._cell = []
        elif self.tables and tag == "tr":
            self._row = []
        elif self.tables and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if not self.tables:
            return
        t = self.tables[-1]
        if tag == "caption" and self._cell is not None:
            t["caption"], self._cell = "".join(self._cell).strip(), None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(("".join(self._cell).strip(), tag))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if all(kind == "th" for _, kind in self._row) and not t["header"] and not t["rows"]:
                t["header"] = [text for text, _ in self._row]
            else:
                t["rows"].append([text for text, _ in self._row])
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse_tables(html: str) -> list[dict]:
    """The tables of an HTML output: ``[{"caption", "header": [...], "rows": [[cell text, ...], ...]}]``."""
    p = _Tables()
    p.feed(html)
    p.close()
    return p.tables


@dataclass
class Comparison:
    """One compared item: ``key`` (where), its ``quantity``, the printed ``stored`` and ``fresh`` values."""

    key: str
    quantity: str
    stored: str | None
    fresh: str | None
    ok: bool
    detail: str


@dataclass
class ChapterCheck:
    """The outcome of :func:`compare_chapter`: every comparison, and problems that are not a value."""

    chapter: str
    comparisons: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    @property
    def failures(self) -> list:
        return [c for c in self.comparisons if not c.ok]

    @property
    def ok(self) -> bool:
        return not self.problems and not self.failures

    def summary(self) -> str:
        by_kind = {}
        for c in self.comparisons:
            q = "exact" if QUANTITIES[c.quantity].exact else ("not compared" if not QUANTITIES[c.quantity].compared
                                                               else "within tolerance")
            by_kind[q] = by_kind.get(q, 0) + 1
        counts = ", ".join(f"{n} {k}" for k, n in sorted(by_kind.items()))
        return (f"{'ok  ' if self.ok else 'FAIL'} {self.chapter}: {len(self.comparisons)} values ({counts}); "
                f"{len(self.failures)} outside their tolerance, {len(self.problems)} other problems")

    def lines(self, verbose: bool = False) -> list[str]:
        out = [self.summary()]
        out += [f"    problem: {p}" for p in self.problems]
        for c in self.comparisons:
            if not c.ok or (verbose and c.stored != c.fresh):
                out.append(f"    {'FAIL' if not c.ok else 'ok  '} {c.key} [{c.quantity}]: {c.detail}")
        return out


def _compare(check: ChapterCheck, key: str, pattern_key: str, stored, fresh) -> None:
    quantity = quantity_of(check.chapter, pattern_key)
    if stored is None or fresh is None:
        check.comparisons.append(Comparison(key, quantity, stored, fresh, False,
                                            f"only in the {'fresh' if stored is None else 'stored'} chapter"))
        return
    ok, detail = compare_text(stored, fresh, QUANTITIES[quantity])
    check.comparisons.append(Comparison(key, quantity, stored, fresh, ok, detail))


def _joined_streams(outputs) -> list:
    """``outputs`` with each run of consecutive stream outputs of the same stream joined into one: the kernel may
    flush one cell's printed text as one message or as several, depending on timing, and the reader sees one text."""
    joined = []
    for o in outputs:
        prev = joined[-1] if joined else None
        if o.output_type == "stream" and prev is not None and prev.output_type == "stream" and prev.name == o.name:
            joined[-1] = type(o)(output_type="stream", name=o.name, text=prev.text + o.text)
        else:
            joined.append(o)
    return joined


def _checked_items(cell) -> list[tuple[str, str, str]]:
    """``(kind, where, text)`` of a checked cell's outputs (glue and images left out; consecutive printed text of
    one stream joined)."""
    items = []
    shown = _joined_streams([o for o in cell.get("outputs", []) if _glue(o) is None])  # numbered as the reader sees
    for j, o in enumerate(shown):
        if o.output_type == "stream":
            items.append(("text", f"output {j} ({o.name})", o.text))
        elif o.output_type == "error":
            items.append(("text", f"output {j} (error)", f"{o.ename}: {o.evalue}"))
        else:
            data = o.get("data", {})
            for mime in sorted(data):
                if mime in _SKIPPED_MIME or (mime == "text/plain" and "text/html" in data):
                    continue
                text = data[mime] if isinstance(data[mime], str) else json.dumps(data[mime], sort_keys=True)
                kind = "table" if mime == "text/html" and "<table" in text else "text"
                items.append((kind, f"output {j} ({mime})", text))
    return items


def _compare_tables(check: ChapterCheck, where: str, stored_html: str, fresh_html: str) -> None:
    st, ft = parse_tables(stored_html), parse_tables(fresh_html)
    if len(st) != len(ft):
        check.problems.append(f"{where}: {len(st)} tables stored, {len(ft)} fresh")
        return
    for n, (s, f) in enumerate(zip(st, ft)):
        at = f"{where} table {n + 1}"
        _compare(check, f"{at} caption", "glue:", s["caption"], f["caption"])  # "glue:" matches no pattern: exact
        if s["header"] != f["header"] or len(s["rows"]) != len(f["rows"]):
            check.problems.append(f"{at}: columns {s['header']} / {len(s['rows'])} rows stored, "
                                  f"{f['header']} / {len(f['rows'])} rows fresh")
            continue
        for r, (srow, frow) in enumerate(zip(s["rows"], f["rows"])):
            if len(srow) != len(frow):
                check.problems.append(f"{at} row {r + 1}: {len(srow)} cells stored, {len(frow)} fresh")
                continue
            for c, (sv, fv) in enumerate(zip(srow, frow)):
                header = s["header"][c] if c < len(s["header"]) else f"column {c + 1}"
                label = srow[0] if srow else ""
                _compare(check, f"{at} row {r + 1} ({label[:40]}) / {header}", f"column:{header}", sv, fv)


def compare_chapter(stored, fresh, chapter: str | None = None, same_code: bool = True) -> ChapterCheck:
    """Compare the executed chapter ``fresh`` with the ``stored`` one (notebooks or paths); ``chapter``: the
    notebook stem that selects the tolerances (default: the stored path's stem). ``same_code=False`` (for
    :func:`drift` between two versions of a chapter): where the code differs, only the glued values are compared."""
    if chapter is None:
        if not isinstance(stored, (str, Path)):
            raise ValueError("chapter: required when stored is a notebook, not a path")
        chapter = Path(stored).stem
    s_nb = _read(stored) if isinstance(stored, (str, Path)) else stored
    f_nb = _read(fresh) if isinstance(fresh, (str, Path)) else fresh
    check = ChapterCheck(chapter)
    s_cells, f_cells = _code_cells(s_nb), _code_cells(f_nb)
    code_differs = [c.source for c in s_cells] != [c.source for c in f_cells]
    if code_differs and same_code:
        check.problems.append("the stored chapter's code differs from the executed one's: re-run `make notebooks`")
        return check
    for n, cell in enumerate(f_cells):
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        if errors:
            check.problems.append(f"code cell {n + 1} raised {errors[0].ename}: {errors[0].evalue}")
    s_glue, f_glue = glued_values(s_nb), glued_values(f_nb)
    for name in sorted(set(s_glue) | set(f_glue), key=lambda k: (k not in s_glue, k)):
        _compare(check, f"glue {name}", f"glue:{name}", s_glue.get(name), f_glue.get(name))
    if code_differs:
        return check
    for n, (sc, fc) in enumerate(zip(s_cells, f_cells)):
        if CHECK_TAG not in sc.metadata.get("tags", []):
            continue
        s_items, f_items = _checked_items(sc), _checked_items(fc)
        if [(k, w) for k, w, _ in s_items] != [(k, w) for k, w, _ in f_items]:
            check.problems.append(f"code cell {n + 1}: outputs {[w for _, w, _ in s_items]} stored, "
                                  f"{[w for _, w, _ in f_items]} fresh")
            continue
        for (kind, where, s_text), (_, _, f_text) in zip(s_items, f_items):
            at = f"code cell {n + 1} {where}"
            if kind == "table":
                _compare_tables(check, at, s_text, f_text)
            else:
                _compare(check, at, "glue:", s_text, f_text)  # printed text: exact
    return check


def compare_folders(fresh_dir, stored_dir=NOTEBOOKS, only=None, same_code: bool = True) -> list[ChapterCheck]:
    """:func:`compare_chapter` for every chapter of ``stored_dir``; a chapter missing from ``fresh_dir`` fails."""
    fresh_dir, stored_dir = Path(fresh_dir), Path(stored_dir)
    checks = []
    for stored in _chapters(stored_dir, only):
        fresh = fresh_dir / stored.name
        if not fresh.is_file():
            c = ChapterCheck(stored.stem)
            c.problems.append(f"not executed: no {fresh}")
            checks.append(c)
        else:
            checks.append(compare_chapter(stored, fresh, same_code=same_code))
    return checks


def _chapters(folder: Path, only=None) -> list[Path]:
    paths = sorted(Path(folder).glob("[0-9]*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.stem.startswith(o) for o in only)]
        if not paths:
            raise ValueError(f"only: no chapter of {folder} starts with any of {list(only)}")
    return paths


def _expected_seconds(path: Path) -> float:
    try:
        return float(json.loads(path.read_text())["metadata"]["papermill"]["duration"])
    except (KeyError, TypeError, ValueError):
        return 0.0


def execute_chapters(out, notebooks=NOTEBOOKS, jobs: int = 1, threads: int | None = None, only=None,
                     parameters: dict | None = None) -> dict:
    """Execute each chapter of ``notebooks`` once with papermill into ``out`` (same names), ``jobs`` at a time
    (the longest first, by the stored execution time). ``threads``: each chapter's torch/OpenCV thread count
    (the environment variable :data:`THREADS_ENV`; None: that variable if it is set, else the cores divided among
    the jobs when ``jobs > 1``, else each chapter's own default).
    Every chapter runs with ``REMOCO_PROGRESS=off`` (no widget state in the outputs). Writes and returns
    ``{chapter: {"seconds", "returncode"}}`` (``out/timings.json``); a chapter that fails is reported, and the
    others still run."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1 or None, got {threads}")
    out, notebooks = Path(out), Path(notebooks)
    out.mkdir(parents=True, exist_ok=True)
    queue = sorted(_chapters(notebooks, only), key=_expected_seconds, reverse=True)
    env = dict(os.environ, REMOCO_PROGRESS="off", PYDEVD_DISABLE_FILE_VALIDATION="1")
    if threads is not None:
        env[THREADS_ENV] = str(threads)
    elif jobs > 1 and not os.environ.get(THREADS_ENV):
        env[THREADS_ENV] = str(max(1, (os.cpu_count() or 1) // jobs))
    running, results = {}, {}
    start = time.time()
    while queue or running:
        while queue and len(running) < jobs:
            nb = queue.pop(0)
            cmd = [sys.executable, "-m", "papermill", str(nb), str(out / nb.name), "--cwd", str(notebooks),
                   "-k", "python3", "--no-progress-bar", "--log-level", "ERROR"]
            for key, value in (parameters or {}).items():
                cmd += ["-p", key, str(value)]
            log = open(out / f"{nb.stem}.log", "w")
            running[nb.stem] = (subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), time.time(),
                                log)
            print(f"started  {nb.stem}", flush=True)
        time.sleep(0.5)
        for stem, (proc, t0, log) in list(running.items()):
            if proc.poll() is None:
                continue
            log.close()
            results[stem] = {"seconds": round(time.time() - t0, 1), "returncode": proc.returncode,
                             "threads": env.get(THREADS_ENV, "chapter default")}
            del running[stem]
            state = "done    " if proc.returncode == 0 else f"FAILED ({out / (stem + '.log')})"
            print(f"{state} {stem} in {results[stem]['seconds']:.0f} s", flush=True)
    (out / "timings.json").write_text(json.dumps(dict(sorted(results.items())), indent=1) + "\n")
    print(f"executed {len(results)} chapters in {time.time() - start:.0f} s ({jobs} at a time)", flush=True)
    return results


def stage_book(fresh_dir, out, root=ROOT) -> Path:
    """A source folder for a book build that does not execute: the book's pages, table of contents and
    configuration from ``root`` with execution switched off, and the executed chapters of ``fresh_dir`` in place of
    ``notebooks/``. Returns ``out``; build it with ``jupyter-book build OUT --toc OUT/book/_toc.yml --config
    OUT/_config.yml --path-output .``."""
    import yaml

    fresh_dir, out, root = Path(fresh_dir), Path(out), Path(root)
    chapters = _chapters(root / "notebooks")
    missing = [p.name for p in chapters if not (fresh_dir / p.name).is_file()]
    if missing:
        raise FileNotFoundError(f"fresh_dir {fresh_dir} lacks the executed chapters {missing}")
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(root / "book", out / "book")
    (out / "notebooks").mkdir(parents=True)
    for p in chapters:
        shutil.copy2(fresh_dir / p.name, out / "notebooks" / p.name)
    cfg = yaml.safe_load((root / "_config.yml").read_text())
    cfg.setdefault("execute", {})["execute_notebooks"] = "off"
    (out / "_config.yml").write_text("# staged by remoco.book_check: the chapters were executed and checked already\n"
                                     + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    return out


def drift(a_dir, b_dir, only=None) -> dict:
    """How far apart two executions of the book are: ``{chapter: {quantity: {"values", "max_abs", "max_rel",
    "where"}}}`` over every glued value and checked table cell whose printed numbers differ (``values``: how many
    numbers differ; an exact quantity listed here is a bug; wall times are left out). Where a chapter's code differs
    between the two, only its glued values are compared. Chapters without any difference map to ``{}``."""
    out: dict = {}
    for check in compare_folders(b_dir, a_dir, only, same_code=False):
        chapter = out.setdefault(check.chapter, {})
        for c in check.comparisons:
            if c.stored is None or c.fresh is None or c.stored == c.fresh or not QUANTITIES[c.quantity].compared:
                continue
            for s, f in zip(printed_numbers(c.stored), printed_numbers(c.fresh)):
                if s == f:
                    continue
                sv, fv = number_value(s), number_value(f)
                d = abs(fv - sv)
                q = chapter.setdefault(c.quantity, {"values": 0, "max_abs": 0.0, "max_rel": 0.0, "where": ""})
                q["values"] += 1
                if d > q["max_abs"]:
                    q.update(max_abs=round(d, 6), where=f"{c.key}: {s} vs {f}")
                q["max_rel"] = max(q["max_rel"], round(d / max(abs(sv), 1e-12), 6))
    return out


def drift_note(chapter: str, path=DRIFT_FILE) -> str:
    """A footnote's sentence: how far ``chapter``'s printed numbers moved between the pairs of executions measured
    in ``path`` (``{"measurements": [{"a", "b", "chapters"}, ...]}``, written by ``python -m remoco.book_check
    drift A B --json PATH --label-a ... --label-b ... [--append]``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no measured drift at {path} (python -m remoco.book_check drift ... --json {path})")
    measurements = [m for m in json.loads(path.read_text())["measurements"] if chapter in m["chapters"]]
    if not measurements:
        raise ValueError(f"chapter {chapter!r} was not measured in {path}")
    sentences = ["Numbers that come out of sampling a video, a point tracker or OpenCV's optical flow can differ in "
                 "their last digits between machines and thread counts (float reduction order)."]
    for m in measurements:
        moved = m["chapters"][chapter]
        if not moved:
            sentences.append(f"Between {m['a']} and {m['b']}, this chapter printed every number the same.")
            continue
        parts = []
        for quantity, q in sorted(moved.items(), key=lambda kv: -kv[1]["values"]):
            what = QUANTITIES[quantity].what if quantity in QUANTITIES else quantity
            parts.append(f"{what}: {q['values']} {'number' if q['values'] == 1 else 'numbers'}, by at most "
                         f"{q['max_abs']:g} ({100 * q['max_rel']:.1f} %)")
        n = sum(q["values"] for q in moved.values())
        sentences.append(f"Between {m['a']} and {m['b']}, {n} printed {'number' if n == 1 else 'numbers'} "
                         "differed — " + "; ".join(parts) + ".")
    sentences.append("The tests accept each number within the tolerance of its quantity (see *Reproducing this "
                     "book*).")
    return " ".join(sentences)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m remoco.book_check", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("execute", help="execute every chapter once into a folder")
    ex.add_argument("--out", required=True)
    ex.add_argument("--notebooks", default=str(NOTEBOOKS))
    ex.add_argument("--jobs", type=int, default=1)
    ex.add_argument("--threads", type=int, default=None)
    ex.add_argument("--only", nargs="+", default=None, help="chapters whose name starts with these")
    cp = sub.add_parser("compare", help="compare executed chapters with the stored ones")
    cp.add_argument("--fresh", required=True)
    cp.add_argument("--stored", default=str(NOTEBOOKS))
    cp.add_argument("--only", nargs="+", default=None)
    cp.add_argument("--verbose", action="store_true", help="also list the values that differ within tolerance")
    st = sub.add_parser("stage", help="a book source folder with the executed chapters, execution off")
    st.add_argument("--fresh", required=True)
    st.add_argument("--out", required=True)
    dr = sub.add_parser("drift", help="largest differences per quantity between two executions")
    dr.add_argument("a")
    dr.add_argument("b")
    dr.add_argument("--only", nargs="+", default=None, help="chapters whose name starts with these")
    dr.add_argument("--json", default=None, help="also write them to this file (the chapters' footnotes read it)")
    dr.add_argument("--append", action="store_true", help="add to the measurements already in --json")
    dr.add_argument("--label-a", default="A", help="how execution A ran, e.g. 'an execution at 1 thread'")
    dr.add_argument("--label-b", default="B")
    args = ap.parse_args(argv)
    if args.cmd == "execute":
        res = execute_chapters(args.out, args.notebooks, args.jobs, args.threads, args.only)
        return 0 if all(r["returncode"] == 0 for r in res.values()) else 1
    if args.cmd == "compare":
        checks = compare_folders(args.fresh, args.stored, args.only)
        for c in checks:
            print("\n".join(c.lines(args.verbose)))
        n = sum(len(c.comparisons) for c in checks)
        bad = [c.chapter for c in checks if not c.ok]
        print(f"{len(checks)} chapters, {n} values compared: " + (f"FAILED {bad}" if bad else "all as stored"))
        return 1 if bad else 0
    if args.cmd == "stage":
        print(stage_book(args.fresh, args.out))
        return 0
    res = {"a": args.label_a, "b": args.label_b, "chapters": drift(args.a, args.b, args.only)}
    print(json.dumps(res, indent=1))
    if args.json:
        path = Path(args.json)
        old = json.loads(path.read_text())["measurements"] if args.append and path.is_file() else []
        path.write_text(json.dumps({"measurements": old + [res]}, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
