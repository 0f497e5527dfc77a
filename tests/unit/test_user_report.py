"""`python -m calcas report`: a user's own CSV / Parquet outputs in, a page and results.json out."""
from __future__ import annotations

import html.parser
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

import calcas
from calcas.chapters import calibration as calibration_chapter
from calcas.chapters import cleaning
from calcas.records import RecordsError
from calcas.user_report import main, read_outputs, user_report

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CALCAS_CHROMIUM", "/usr/bin/chromium"))


def _outputs(n: int = 800, C: int = 4, *, seed: int = 0, skill: float = 2.0) -> pd.DataFrame:
    """A model's logits on n samples: labels drawn, logits leaning towards them by ``skill``."""
    rng = np.random.default_rng(seed)
    label = np.random.default_rng(99).integers(0, C, n)  # the same labels for every model
    z = rng.normal(size=(n, C)) * 1.5
    z[np.arange(n), label] += skill
    frame = pd.DataFrame({"id": [f"s{i:05d}" for i in range(n)], "pred": z.argmax(1), "label": label})
    return frame.assign(**{f"logit_{j}": z[:, j] for j in range(C)})


def _as(kind: str, frame: pd.DataFrame) -> pd.DataFrame:
    logit_cols = [c for c in frame if c.startswith("logit_")]
    z = frame[logit_cols].to_numpy()
    base = frame[["id", "pred", "label"]]
    if kind == "logit":
        return frame
    p = softmax(z, axis=1)
    if kind == "prob":
        return base.assign(**{f"prob_{j}": p[:, j] for j in range(p.shape[1])})
    return base.assign(confidence=p.max(axis=1))


def _csv(tmp_path: Path, name: str, frame: pd.DataFrame) -> Path:
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("kind", ["logit", "prob", "confidence"])
def test_each_confidence_form_reads_into_the_records_contract(tmp_path, kind):
    frame = _outputs()
    r = read_outputs(_csv(tmp_path, "m", _as(kind, frame)))
    assert r.n == len(frame) and r.manifest["model"] == "m"
    np.testing.assert_array_equal(r.id, frame["id"].to_numpy())
    np.testing.assert_array_equal(r.verified, (frame["pred"] == frame["label"]).to_numpy())
    p = softmax(frame[[c for c in frame if c.startswith("logit_")]].to_numpy(), axis=1)
    if kind == "confidence":
        assert r.source == "confidence"
        np.testing.assert_allclose(r.confidence, p.max(1), rtol=1e-12)
    else:  # log-probabilities have the probabilities' softmax; logits are kept as written
        assert r.source == "logits"
        np.testing.assert_allclose(softmax(r.logits, axis=1), p, rtol=1e-9, atol=1e-15)


def test_one_file_report_is_the_calibration_report_of_the_same_rows(tmp_path):
    path = _csv(tmp_path, "model_a", _as("logit", _outputs()))
    res = user_report([path], tmp_path / "out", n_boot=50, progress=False)
    direct = calibration_chapter.compute([read_outputs(path)], n_boot=50).to_dict()
    assert set(res) == {"inputs", "calibration"}
    ours, ref = res["calibration"]["models"]["model_a"], direct["models"]["model_a"]
    assert ours["method"] == "temperature" and ours["temperature"] == pytest.approx(ref["temperature"], abs=1e-6)
    for split in ("cal", "test"):
        for key in ("ece_before", "ece_after"):
            np.testing.assert_allclose(ours[split][key], ref[split][key], atol=1e-6)
    # the report's verdicts are the chapter's: decided by the intervals that cover
    change, direct_change = ours["test"]["change"], ref["test"]["change"]
    assert change["outcome"] == direct_change["outcome"] and change["estimate"]["interval"] == "ece_difference_interval"
    for end in ("value", "low", "high"):
        assert change["estimate"][end] == pytest.approx(direct_change["estimate"][end], abs=1e-6)
    # the halves are cal_test_split of the ids with seed 0
    cal = calcas.cal_test_split(pd.read_csv(path)["id"].to_numpy(), seed=0)
    assert ours["n_cal"] == int(cal.sum())
    page = (tmp_path / "out" / "index.html").read_text()
    assert "<h2>Calibration</h2>" in page and "<h2>Cascades</h2>" not in page
    # the book's glossary roles stay out of a page Sphinx never sees; the sentence is there
    assert "{term}" not in page and "Spearman correlation of" in page
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == res


def test_three_files_give_calibration_cascades_and_cleaning(tmp_path):
    frames = [_outputs(seed=s, skill=k) for s, k in ((1, 0.8), (2, 2.0), (3, 3.0))]
    paths = [_csv(tmp_path, f"m{i}", _as(kind, f)) for i, (f, kind) in enumerate(zip(frames, ("confidence", "prob",
                                                                                             "logit")))]
    res = user_report(paths, tmp_path / "out", costs=[1, 4, 16], n_boot=20, progress=False)
    assert set(res) == {"inputs", "calibration", "cascade", "cleaning", "chain"}  # chain: three files and costs
    assert set(res["cascade"]["pairs"]) == {"m0 → m1", "m1 → m2"}  # each file with the next
    # the costs reach the compute saving: p - k_first / k_second at the fixed K
    pair = res["cascade"]["pairs"]["m0 → m1"]
    cc = pair["at_K"]["CC"]
    assert cc["compute_saved"] == pytest.approx(cc["p_small"] - 1 / 4, abs=1e-6)
    assert res["cleaning"]["experts"] == ["m0", "m1", "m2"]
    direct = cleaning.compute([read_outputs(p) for p in paths], K=res["cleaning"]["K"])
    assert res["cleaning"]["flags"]["method_1"]["flagged"] == direct.flags["method_1"].flagged
    page = (tmp_path / "out" / "index.html").read_text()
    assert page.count('class="calcas-explorer"') == 3 + 1 + 1  # reliability ×3, the two pairs (a drop-down), cleaning
    assert "http://" not in page and "https://" not in page  # nothing to fetch from anywhere
    for script in ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js"):
        assert (tmp_path / "out" / "_static" / "vendored" / script).is_file()


#: Model names a hostile file name gives (a file name cannot hold "/", so no closing tags).
HOSTILE = ["<img src=x onerror=alert(1)>", "<svg onload=alert(2)>", "a & <b onmouseover=alert(3)>b"]


class _Tags(html.parser.HTMLParser):
    """Every start tag of a page with its attributes, and its text."""

    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def hostile_report(tmp_path: Path) -> Path:
    """A three-file report whose model names (from the file names) are markup; returns its folder."""
    paths = [_csv(tmp_path, name, _as(kind, _outputs(seed=i, skill=1 + i)))
             for i, (name, kind) in enumerate(zip(HOSTILE, ("prob", "logit", "confidence")))]
    user_report(paths, tmp_path / "out", n_boot=20, progress=False)
    return tmp_path / "out"


def test_model_names_that_look_like_markup_stay_text(tmp_path):
    """No element or event handler comes from a name: tables, prose, headings and charts show the
    names as characters."""
    page = (hostile_report(tmp_path) / "index.html").read_text()
    parsed = _Tags()
    parsed.feed(page)
    handlers = [(tag, a) for tag, attrs in parsed.tags for a in attrs if a.startswith("on")]
    assert not handlers, handlers
    assert {tag for tag, _ in parsed.tags} <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3",
                                               "p", "div", "table", "thead", "tbody", "tr", "th", "td", "img",
                                               "script", "strong", "em", "code", "ul", "ol", "li", "a", "br"}
    assert all(attrs.get("class") == "figure" for tag, attrs in parsed.tags if tag == "img")
    text = "".join(parsed.text)
    for name in HOSTILE:
        assert text.count(name) >= 3, name  # the heading, the tables and the prose, as written


def _bad(tmp_path, frame: pd.DataFrame, name: str = "bad") -> Path:
    return _csv(tmp_path, name, frame)


BASE = _as("confidence", _outputs(n=60))
PROBS = _as("prob", _outputs(n=60))
LOGITS = _as("logit", _outputs(n=60))


@pytest.mark.parametrize("frame, message", [
    (BASE.drop(columns="pred"), r"bad.csv: pred: required column is missing"),
    (BASE.drop(columns="label"), r"label/verified: give the given label or a 0/1 verified column"),
    (BASE.drop(columns="confidence"), r"confidence: give exactly one of .*found none"),
    (PROBS.assign(confidence=0.5), r"confidence: give exactly one of .*found \['confidence', 'prob_\*'\]"),
    (BASE.assign(id=["a"] * 2 + [f"x{i}" for i in range(58)]), r"id: 'a' appears on line 2 and on line 3"),
    (BASE.assign(confidence=np.r_[BASE["confidence"][:6], 1.3, BASE["confidence"][7:]]),
     r"confidence: line 8 \(id 's00006'\) is 1.3, outside \[0, 1\]"),
    (BASE.assign(confidence=np.r_[BASE["confidence"][:4], np.nan, BASE["confidence"][5:]]),
     r"confidence: line 6 \(id 's00004'\) is empty"),
    (BASE.assign(pred=BASE["pred"].astype(object).where(BASE.index != 9, "cat")),
     r"pred: line 11 \(id 's00009'\) is not a number \('cat'\)"),
    (LOGITS.drop(columns="logit_2"), r"logit_2: missing; the class columns must run logit_0"),
    (LOGITS.assign(logit_x=1.0), r"logit_x: expected logit_<class index>"),
    (LOGITS.assign(logit_1=LOGITS["logit_1"].where(LOGITS.index != 3)), r"logit_1: line 5 \(id 's00003'\) is empty"),
    (LOGITS.assign(label=LOGITS["label"].where(LOGITS.index != 2, 4)),
     r"label: line 4 \(id 's00002'\) is 4, outside \[-1, 3\]"),
    (LOGITS.assign(label=LOGITS["label"].astype(float).where(LOGITS.index != 0, 1.5)),
     r"label: line 2 \(id 's00000'\) is 1.5, not a class index"),
    (PROBS.assign(prob_0=PROBS["prob_0"].where(PROBS.index != 5, PROBS["prob_0"] + 0.2)),
     r"prob_\*: line 7 \(id 's00005'\) sums to 1.2, not 1"),
    (BASE.assign(verified=2.0), r"verified: line 2 \(id 's00000'\) is 2, outside \[0, 1\]"),
    (PROBS.rename(columns={"prob_2": "prob_02"}), r"prob_02: expected prob_<class index> with no leading zeros "
                                                  r"\(prob_2\)"),
    (BASE.assign(confidence=np.r_[BASE["confidence"][:3], 1.0000001, BASE["confidence"][4:]]),
     r"confidence: line 5 \(id 's00003'\) is 1.0000001, outside \[0, 1\]"),
    (LOGITS.assign(label=LOGITS["label"].where(LOGITS.index != 0, -1)),
     r"label: line 2 \(id 's00000'\) is -1 \(unknown\), so whether pred is right is unknown: give a verified column"),
    (BASE.assign(confidence=0.7), r"confidence: every row is 0.7; calibration and the reliability diagram need "
                                  r"confidences that vary"),
])
def test_every_bad_file_gets_one_message_naming_the_column_and_the_line(tmp_path, frame, message):
    with pytest.raises(RecordsError, match=message):
        read_outputs(_bad(tmp_path, frame))


def test_empty_and_header_only_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(RecordsError, match=r"empty.csv: the file is empty"):
        read_outputs(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("id,pred,label,confidence\n")
    with pytest.raises(RecordsError, match=r"header.csv: has a header but no rows"):
        read_outputs(tmp_path / "header.csv")
    (tmp_path / "twice.csv").write_text("id,pred,pred,confidence\na,1,1,0.5\n")
    with pytest.raises(RecordsError, match=r"pred: the column appears twice"):
        read_outputs(tmp_path / "twice.csv")
    with pytest.raises(RecordsError, match=r"expected a .csv or .parquet file, got '.txt'"):
        (tmp_path / "x.txt").write_text("id\n")
        read_outputs(tmp_path / "x.txt")


def test_ids_that_do_not_match_across_files_are_named(tmp_path):
    a = _as("confidence", _outputs(n=120))
    b = a.assign(id=[*a["id"][:-1], "stranger"])
    with pytest.raises(RecordsError, match=r"b.csv: id: the files must score the same samples; 1 id\(s\) of a.csv "
                                           r"are not in it \(e.g. \['s00119'\]\); 1 of its ids are not in a.csv "
                                           r"\(e.g. \['stranger'\]\)"):
        user_report([_csv(tmp_path, "a", a), _csv(tmp_path, "b", b)], tmp_path / "out", progress=False)


def test_too_few_rows_and_bad_costs_are_refused(tmp_path):
    path = _csv(tmp_path, "small", _as("confidence", _outputs(n=40)))
    with pytest.raises(ValueError, match=r"n_bins: 15 bins need at least 30 rows in the cal half; small.csv has 40"):
        user_report([path], tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match=r"costs: give one cost per file \(1\), got 2"):
        user_report([path], tmp_path / "out", costs=[1, 2])
    with pytest.raises(ValueError, match=r"costs: every cost must be a positive number"):
        user_report([path, path], tmp_path / "out", costs=[1, -2])


def test_command_line_exit_codes_and_messages(tmp_path):
    good = _csv(tmp_path, "good", _as("confidence", _outputs(n=200)))
    bad = _csv(tmp_path, "bad", BASE.drop(columns="pred"))
    run = [sys.executable, "-m", "calcas", "report"]
    ok = subprocess.run([*run, str(good), "--out", str(tmp_path / "out"), "--n-boot", "20"], capture_output=True,
                        text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().endswith("index.html")
    fail = subprocess.run([*run, str(bad), "--out", str(tmp_path / "out2")], capture_output=True, text=True, cwd=ROOT)
    assert fail.returncode == 2
    assert "calcas report: " in fail.stderr and "pred: required column is missing" in fail.stderr
    assert "Traceback" not in fail.stderr


def test_a_calcas_record_set_is_read_as_it_is(tmp_path):
    r = read_outputs(_csv(tmp_path, "m", _as("logit", _outputs(n=100))))
    calcas.write_records(r, tmp_path / "m.parquet")
    again = read_outputs(tmp_path / "m.parquet", name="again", cost=3.0)
    np.testing.assert_array_equal(again.logits, r.logits)
    assert again.manifest["model"] == "again" and again.manifest["extraction"]["flops_per_sample"] == 3.0


def test_two_runs_write_the_same_results_json(tmp_path):
    """results.json holds numbers and names only (no Python text of a Records object, no creation
    time), so the same files give the same bytes."""
    paths = [_csv(tmp_path, f"m{i}", _as(kind, _outputs(seed=i, skill=1 + i)))
             for i, kind in enumerate(("prob", "logit", "confidence"))]
    written = (tmp_path / "a" / "results.json", tmp_path / "b" / "results.json")
    for out in written:
        user_report(paths, out.parent, n_boot=20, progress=False)
    text = written[0].read_text()
    assert text == written[1].read_text()
    assert "Records(" not in text and "created" not in text and "array(" not in text


# ------------------------------------------------------------------ the output folder

@pytest.fixture
def one_file(tmp_path):
    return [_csv(tmp_path, "m", _as("confidence", _outputs(n=200)))]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def test_a_folder_of_the_users_own_files_is_refused_unless_forced(tmp_path, one_file):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "index.html").write_text("my own page")
    (out / "results.json").write_text('{"mine": 1}')
    with pytest.raises(ValueError, match=r"--out: .*mine holds files calcas report did not write \(index.html, "
                                         r"results.json\); choose a new or empty folder, or pass --force"):
        user_report(one_file, out, n_boot=20, progress=False)
    assert (out / "index.html").read_text() == "my own page" and (out / "results.json").read_text() == '{"mine": 1}'
    user_report(one_file, out, n_boot=20, progress=False, force=True)
    assert (out / "results.json").read_text() != '{"mine": 1}' and (out / ".calcas-report").is_file()
    assert not _leftovers(tmp_path)


def test_a_report_folder_is_replaced_whole_and_a_marked_folder_with_more_is_refused(tmp_path, one_file):
    out = tmp_path / "report"
    user_report(one_file, out, n_boot=20, progress=False)
    user_report(one_file, out, n_boot=30, progress=False, seed=1)  # its own report: no --force needed
    assert json.loads((out / "results.json").read_text())["calibration"]["parameters"]["seed"] == 1
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"holds files calcas report did not write \(\.calcas-report, _static, "
                                         r"index\.html, notes\.txt, results\.json\)"):
        user_report(one_file, out, n_boot=20, progress=False)


@pytest.mark.parametrize("where, message", [
    (lambda t: t / "afile", r"--out: .*afile is a file; give a folder"),
    (lambda t: t / "afile" / "sub", r"--out: .*sub lies under .*afile, which is a file; give a folder"),
    (lambda t: t, r"--out: .* holds the input file .*m\.csv, which the report would replace; choose another"),
])
def test_out_that_cannot_be_a_report_folder_is_named(tmp_path, one_file, where, message):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match=message):
        user_report(one_file, where(tmp_path), n_boot=20, progress=False, force=True)


def test_an_unwritable_place_is_refused_before_any_computation(tmp_path, one_file, monkeypatch):
    import calcas.user_report as ur

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    computed = []
    monkeypatch.setattr(ur.tempfile, "mkdtemp", denied)
    monkeypatch.setattr(ur, "_report", lambda *a, **k: computed.append(1))
    with pytest.raises(ValueError, match=r"--out: cannot write in .* \(Permission denied\)"):
        user_report(one_file, tmp_path / "out", n_boot=20, progress=False)
    assert not computed


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_or_failed_run_leaves_the_old_report_whole(tmp_path, one_file, monkeypatch, failure):
    """Ctrl-C (or an error) while the page is written: the folder keeps the previous run's
    index.html beside that run's results.json, and nothing half-written is left beside it."""
    import calcas.user_report as ur
    out = tmp_path / "report"
    user_report(one_file, out, n_boot=20, progress=False)
    before = _tree(out)

    def interrupted(folder, *args, **kwargs):
        raise failure("stopped while copying the scripts")

    monkeypatch.setattr(ur.page, "copy_scripts", interrupted)
    with pytest.raises(failure):
        user_report(one_file, out, n_boot=30, progress=False, seed=1)
    assert _tree(out) == before and not _leftovers(tmp_path)
    fresh = tmp_path / "fresh"
    with pytest.raises(failure):
        user_report(one_file, fresh, n_boot=20, progress=False)
    assert not fresh.exists() and not _leftovers(tmp_path)  # a failed first run leaves no empty folder


def test_command_line_force_and_a_refused_out(tmp_path, one_file):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    run = [sys.executable, "-m", "calcas", "report", str(one_file[0]), "--out", str(out), "--n-boot", "20"]
    refused = subprocess.run(run, capture_output=True, text=True, cwd=ROOT)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "holds files calcas report did not write (keep.txt)" in refused.stderr
    forced = subprocess.run([*run, "--force"], capture_output=True, text=True, cwd=ROOT)
    assert forced.returncode == 0, forced.stderr
    assert not (out / "keep.txt").exists() and (out / "index.html").is_file()


# ------------------------------------------------------------------ pred against the largest class

def _thresholded(n: int = 4000, seed: int = 5) -> pd.DataFrame:
    """A perfectly calibrated binary model whose pred is a thresholded decision, prob_1 > 0.3."""
    rng = np.random.default_rng(seed)
    p1 = rng.uniform(size=n)
    label = (rng.uniform(size=n) < p1).astype(int)
    return pd.DataFrame({"id": [f"s{i:05d}" for i in range(n)], "pred": (p1 > 0.3).astype(int), "label": label,
                         "prob_0": 1 - p1, "prob_1": p1})


def test_a_pred_that_is_not_the_largest_class_is_refused_with_its_rows(tmp_path):
    frame = _thresholded()
    off = frame["pred"].to_numpy() != frame[["prob_0", "prob_1"]].to_numpy().argmax(1)
    first = int(np.flatnonzero(off)[0])
    path = _csv(tmp_path, "thresholded", frame)
    message = (rf"thresholded\.csv: pred: {off.sum():,} of 4,000 rows are not the class with the largest prob_\* "
               rf"\(line {first + 2} \(id '{frame['id'][first]}'\): pred 1, largest at class 0; .*\)\. The report "
               r"pairs the largest probability with pred == label.*pass --confidence-of pred")
    with pytest.raises(RecordsError, match=message):
        read_outputs(path)
    parquet = tmp_path / "thresholded.parquet"
    frame.to_parquet(parquet)  # a plain table (no calcas manifest): the same check, rows counted from 1
    with pytest.raises(RecordsError, match=rf"pred: {off.sum():,} of 4,000 rows .*\(row {first + 1} "):
        read_outputs(parquet)
    with pytest.raises(RecordsError, match=r"pred: .* not the class with the largest"):
        user_report([path], tmp_path / "out", n_boot=20, progress=False)
    assert not (tmp_path / "out").exists()


def test_confidence_of_pred_scores_the_probability_of_pred(tmp_path):
    """The issue's case: scored as the probability of pred, the calibrated model's test ECE is
    that of prob[pred] against pred == label (the largest probability paired with pred's
    correctness gave 0.046 there)."""
    frame = _thresholded()
    p = frame[["prob_0", "prob_1"]].to_numpy()
    own = p[np.arange(len(p)), frame["pred"]]
    r = read_outputs(_csv(tmp_path, "thresholded", frame), confidence_of="pred")
    assert r.source == "confidence"
    np.testing.assert_allclose(r.confidence, own, rtol=0, atol=1e-12)
    res = user_report([tmp_path / "thresholded.csv"], tmp_path / "out", n_boot=20, progress=False,
                      confidence_of="pred")
    test = ~calcas.cal_test_split(frame["id"].to_numpy(), seed=0)
    correct = (frame["pred"] == frame["label"]).to_numpy()
    expected = calcas.ece(own[test], correct[test], n_bins=15)
    assert res["calibration"]["models"]["thresholded"]["test"]["ece_before"] == pytest.approx(expected, abs=1e-6)
    largest = calcas.ece(p.max(1)[test], correct[test], n_bins=15)
    assert largest > 2 * expected  # what pairing the largest probability with pred's correctness would show


def test_ties_and_unknown_preds_pass_the_check(tmp_path):
    frame = _thresholded(n=200)
    frame["pred"] = (frame["prob_1"] > 0.5).astype(int)  # the largest class
    frame.loc[:9, ["prob_0", "prob_1"]] = 0.5  # a tie: either class is a largest one
    frame.loc[:4, "pred"] = 0
    frame.loc[5:9, "pred"] = 1
    frame.loc[10:12, "pred"] = -1  # unknown answers, scored by verified
    frame["verified"] = (frame["pred"] == frame["label"]).astype(float)
    r = read_outputs(_csv(tmp_path, "ties", frame))
    assert r.source == "logits" and r.n == 200


def test_a_record_set_is_checked_alike(tmp_path):
    frame = _thresholded(n=300)
    z = np.log(frame[["prob_0", "prob_1"]].to_numpy())
    r = calcas.make_records(frame["id"].tolist(), frame["pred"].to_numpy(), label=frame["label"].to_numpy(),
                            logits=z, manifest={"model": "m"})
    calcas.write_records(r, tmp_path / "set.parquet")
    with pytest.raises(RecordsError, match=r"set\.parquet: pred: \d+ of 300 rows are not the class with the "
                                           r"largest logit \(row \d+ \(id 's\d+'\)"):
        read_outputs(tmp_path / "set.parquet")
    own = read_outputs(tmp_path / "set.parquet", confidence_of="pred")
    np.testing.assert_allclose(own.confidence, np.exp(z)[np.arange(300), frame["pred"]], atol=1e-6)
    with pytest.raises(ValueError, match=r"confidence_of: expected one of \['argmax', 'pred'\], got 'max'"):
        read_outputs(tmp_path / "set.parquet", confidence_of="max")



def test_text_that_is_not_a_clean_utf8_table_is_named(tmp_path):
    """Latin-1 bytes and a ragged row get one line naming the file; Excel's byte-order mark is accepted."""
    text = BASE.to_csv(index=False)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(text.replace("s00003", "caf\u00e9", 1).encode("latin-1"))
    offset = text.encode("utf-8").index(b"s00003") + 3
    with pytest.raises(RecordsError, match=rf"latin\.csv: not UTF-8 text \(byte 0xe9 at byte {offset:,}\); save "
                                           r"the file as UTF-8"):
        read_outputs(latin)
    lines = text.splitlines()
    lines[3] += ",0.5"
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordsError, match=r"ragged\.csv: line 4 has 5 fields; the header has 4"):
        read_outputs(ragged)
    bom = tmp_path / "excel.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    r = read_outputs(bom)
    assert r.n == len(BASE) and r.id[0] == "s00000"


def test_labels_unknown_with_verified_and_verified_without_labels(tmp_path):
    """Labels -1 (allowed with verified) and class probabilities with verified but no label (as the
    README allows): the report runs; temperature scaling fits on the rows whose label is known,
    and with none known the calibrator is Platt on verified."""
    some = PROBS.assign(verified=(PROBS["pred"] == PROBS["label"]).astype(float))
    some.loc[:5, "label"] = -1
    res = user_report([_csv(tmp_path, "some", some)], tmp_path / "a", n_boot=20, progress=False)
    assert res["calibration"]["models"]["some"]["method"] == "temperature"
    none = PROBS.drop(columns="label").assign(verified=(PROBS["pred"] == PROBS["label"]).astype(float))
    res = user_report([_csv(tmp_path, "none", none)], tmp_path / "b", n_boot=20, progress=False)
    assert res["calibration"]["models"]["none"]["method"] == "platt"


@pytest.mark.parametrize("n_bins", [1, 40])
def test_bin_counts_outside_the_slider_grid_are_accepted(tmp_path, n_bins):
    """--n-bins 1 or 40 used to fail in the explorer after the computation; the slider offers them."""
    path = _csv(tmp_path, "m", _as("prob", _outputs(n=400)))
    res = user_report([path], tmp_path / "out", n_bins=n_bins, n_boot=20, progress=False)
    assert res["calibration"]["parameters"]["n_bins"] == n_bins
    spec = (tmp_path / "out" / "index.html").read_text()
    assert f'"value":{n_bins}' in spec.replace(" ", "")


@pytest.mark.parametrize("option, value, message", [
    ("--seed", "-1", "argument --seed: expected an integer >= 0, got -1"),
    ("--n-boot", "0", "argument --n-boot: expected an integer >= 1, got 0"),
    ("--n-bins", "x", "argument --n-bins: expected an integer >= 1, got 'x'"),
])
def test_command_line_options_are_named_in_their_messages(tmp_path, one_file, option, value, message):
    run = subprocess.run([sys.executable, "-m", "calcas", "report", str(one_file[0]), "--out", str(tmp_path / "o"),
                          option, value], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("call", [
    lambda: calcas.ece_bootstrap(np.full(10, 0.5), np.ones(10, bool), seed=1.5),
    lambda: calcas.ece_interval(np.full(10, 0.5), np.ones(10, bool), n_bins=2, seed=-1),
    lambda: calcas.cal_test_split(["a", "b", "c", "d"], seed=True),
])
def test_a_seed_that_is_not_a_whole_number_is_named(call):
    with pytest.raises(ValueError, match=r"seed: expected an integer >= 0, got "):
        call()


def test_cleaning_left_out_names_an_unknown_label(tmp_path):
    frames = [_as("prob", _outputs(n=300, seed=s, skill=k)) for s, k in ((1, 1.0), (2, 2.0), (3, 3.0))]
    for f in frames:
        f["verified"] = (f["pred"] == f["label"]).astype(float)
        f.loc[7, "label"] = -1
    paths = [_csv(tmp_path, f"m{i}", f) for i, f in enumerate(frames)]
    res = user_report(paths, tmp_path / "out", n_boot=20, progress=False)
    assert res["cleaning"] is None
    page = (tmp_path / "out" / "index.html").read_text()
    assert "Left out: 1 label(s) are unknown (-1), e.g. id &#x27;s00007&#x27; in m0.csv" in page


# ------------------------------------------------------------------ the certified chain

def _chain_files(tmp_path: Path, n: int = 800) -> list[Path]:
    """Three files of rising skill; the second and third list their rows in other orders (the
    chain aligns them by id)."""
    frames = [_as(kind, _outputs(n=n, seed=s, skill=k))
              for s, k, kind in ((1, 2.5, "confidence"), (2, 3.0, "prob"), (3, 3.5, "logit"))]
    shuffled = [f.iloc[np.random.default_rng(10 + i).permutation(n) if i else np.arange(n)]
                for i, f in enumerate(frames)]
    return [_csv(tmp_path, f"m{i}", f) for i, f in enumerate(shuffled)]


def _chain_directly(paths: Sequence[Path], costs: Sequence[float], *, max_drop: float, delta: float, seed: int = 0):
    """What the chain section should show, computed here from the files: rows in sorted-id order,
    30% of a seeded permutation fit each file's calibrator, select_cascade certifies on the rest."""
    sets = calcas.align(*[read_outputs(p) for p in paths])
    n = sets[0].n
    fit_rows = np.sort(np.random.default_rng(seed).permutation(n)[:round(0.3 * n)])
    fit = np.isin(np.arange(n), fit_rows)
    conf = [calcas.calibrate_records(r, fit).calibrated for r in sets]
    return calcas.select_cascade(conf, [r.verified for r in sets], costs, max_drop=max_drop, delta=delta,
                                 method="threshold", fit_rows=fit_rows, seed=seed), fit_rows


def test_three_files_with_costs_certify_the_chain(tmp_path):
    paths, costs = _chain_files(tmp_path), [1.0, 4.0, 16.0]
    res = user_report(paths, tmp_path / "out", costs=costs, n_boot=20, progress=False, max_drop=0.05)
    chain = res["chain"]
    direct, fit_rows = _chain_directly(paths, costs, max_drop=0.05, delta=0.1)
    names = ["m0", "m1", "m2"]
    assert chain["message"] is None and chain["order"] == names
    assert chain["models"] == [names[int(j)] for j in direct.stages_.split("+")]
    assert len(chain["models"]) >= 2  # these rows certify a cheaper configuration than m2 alone
    assert chain["cost_share"] == pytest.approx(direct.cost_share_, abs=1e-6)
    assert chain["saving"] == pytest.approx(1 - direct.cost_share_, abs=1e-6)
    assert chain["threshold"] == pytest.approx(direct.threshold_, abs=1e-6)
    assert chain["expected_cost"] == pytest.approx(direct.expected_cost_, abs=1e-6)
    assert (chain["n_fit"], chain["n_certify"]) == (len(fit_rows), 800 - len(fit_rows)) == (240, 560)
    assert (chain["max_drop"], chain["delta"]) == (0.05, 0.1)
    page = (tmp_path / "out" / "index.html").read_text()
    section = page[page.index("<h2>Certified chain</h2>"):]
    assert f"Certified: {' → '.join(chain['models'])}." in section
    assert f"λ = {direct.threshold_:.4g}" in section and f"a saving of {1 - direct.cost_share_:.1%}" in section
    assert "loses at most 0.05 of m2&#x27;s accuracy with probability &gt;= 0.9" in section
    assert "240 (30%) fit each file&#x27;s calibrator and the other 560 (70%) certify" in section
    assert 'class="calcas-table"' in section and 'data-label="cost share"' in section


def test_max_drop_and_delta_reach_the_chain_from_the_command_line(tmp_path, capsys):
    paths = _chain_files(tmp_path, n=400)
    out = tmp_path / "out"
    code = main([*map(str, paths), "--out", str(out), "--costs", "1", "3", "9", "--n-boot", "20",
                 "--max-drop", "0.08", "--delta", "0.2", "--seed", "3"])
    assert code == 0, capsys.readouterr().err
    chain = json.loads((out / "results.json").read_text())["chain"]
    assert (chain["max_drop"], chain["delta"], chain["n_fit"], chain["n_certify"]) == (0.08, 0.2, 120, 280)
    direct, _ = _chain_directly(paths, [1.0, 3.0, 9.0], max_drop=0.08, delta=0.2, seed=3)
    assert chain["cost_share"] == pytest.approx(direct.cost_share_, abs=1e-6)
    # the defaults: max_drop 0.02, delta 0.1
    assert main([*map(str, paths), "--out", str(out), "--costs", "1", "3", "9", "--n-boot", "20"]) == 0
    chain = json.loads((out / "results.json").read_text())["chain"]
    assert (chain["max_drop"], chain["delta"]) == (0.02, 0.1)


@pytest.mark.parametrize("options, message", [
    (["--max-drop", "1.5"], "calcas report: max_drop: must be >= 0 and < 1 (a share of accuracy), got 1.5"),
    (["--max-drop", "-0.1"], "calcas report: max_drop: must be >= 0 and < 1"),
    (["--delta", "0"], "calcas report: delta: must be in (0, 1), got 0.0"),
    (["--delta", "1"], "calcas report: delta: must be in (0, 1), got 1.0"),
])
def test_a_bad_max_drop_or_delta_is_refused_before_any_computation(tmp_path, capsys, one_file, options, message):
    assert main([str(one_file[0]), "--out", str(tmp_path / "out"), *options]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_delta_too_small_to_certify_shows_its_message_in_the_report(tmp_path):
    paths, costs = _chain_files(tmp_path, n=200), [1.0, 4.0, 16.0]
    with pytest.raises(ValueError, match=r"^delta: ") as raised:
        _chain_directly(paths, costs, max_drop=0.05, delta=0.01)
    res = user_report(paths, tmp_path / "out", costs=costs, n_boot=20, progress=False, max_drop=0.05, delta=0.01)
    chain = res["chain"]
    assert chain["message"] == str(raised.value) and "models" not in chain and "cost_share" not in chain
    assert (chain["n_fit"], chain["n_certify"], chain["delta"]) == (60, 140, 0.01)
    page = (tmp_path / "out" / "index.html").read_text()
    section = page[page.index("<h2>Certified chain</h2>"):]
    assert "Nothing could be certified: delta: 0.01 split over 3 sub-chains" in section


def test_two_files_or_no_costs_give_no_chain(tmp_path):
    paths = _chain_files(tmp_path, n=300)
    res = user_report(paths[:2], tmp_path / "two", costs=[1, 4], n_boot=20, progress=False)
    assert "chain" not in res and "cascade" in res
    assert "Certified chain" not in (tmp_path / "two" / "index.html").read_text()
    res = user_report(paths, tmp_path / "three", n_boot=20, progress=False)
    assert "chain" not in res and "Certified chain" not in (tmp_path / "three" / "index.html").read_text()
