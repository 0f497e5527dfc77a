"""The public reference data layer (calcas.datasets.public, SPEC §6).

The data is never part of the repository: tests read slices of ../shared/data (or $CALCAS_DATA)
at run time and skip when it is absent. Values are checked against the files read
independently with the csv and json modules. The fetcher is tested offline: urlopen is replaced
by a function that serves the local bytes.
"""
import csv
import hashlib
import io
import json
import math
import random
import urllib.error
import urllib.request

import numpy as np
import pytest

from calcas import read_records
from calcas.datasets import public

DATA = public.data_root()
HAVE_DATA = DATA is not None and all((DATA / path).is_file() for path in public.FILES)
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="public reference data not available: "
                                + public.missing_data_message("all"))


def _rows(path, nrows=None):
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = []
        for row in reader:
            if nrows is not None and len(rows) == nrows:
                break
            rows.append(row)
    return header, rows


# ----------------------------------------------------------------------------- registry

def test_registry_lists_every_file_with_a_pinned_origin():
    assert len(public.FILES) == 68
    assert len(public.REDUX_SUBJECTS) == 57
    for path, entry in public.FILES.items():
        assert entry.path == path and len(entry.sha256) == 64
        if path.startswith("plaut-llm/"):
            assert entry.url is None  # rebuilt from main_results/ by fetch()
        else:
            source = public.SOURCES[path.split("/")[0]]
            assert entry.url.startswith(f"https://raw.githubusercontent.com/{source.repo}/{source.commit}/")
    assert public.FILES["mmlu-redux/helm_predictions.csv"].url.endswith("/outputs/multi_expert_helm/all.csv")
    assert public.FILES["imagenetx/ViT.csv"].url.endswith("/model_predictions/base/ViT.csv")
    assert public.FILES["mmlu-redux/questions/mmlu_anatomy.csv"].url.endswith("/mmlu_redux/mmlu_anatomy.csv")


@needs_data
def test_registered_hashes_match_the_shared_files():
    for path, entry in public.FILES.items():
        assert hashlib.sha256((DATA / path).read_bytes()).hexdigest() == entry.sha256, path


# ----------------------------------------------------------------------------- locations

def test_data_root_precedence(tmp_path, monkeypatch):
    env_dir, fake_repo, cache = tmp_path / "env", tmp_path / "repo", tmp_path / "cache"
    monkeypatch.setenv("CALCAS_DATA", str(env_dir))
    assert public.data_root() == env_dir  # the variable wins, even over an existing shared folder
    monkeypatch.delenv("CALCAS_DATA")
    shared = public.REPO_ROOT.parent / "shared" / "data"
    if shared.is_dir():
        assert public.data_root() == shared
    # no shared folder: the cache, but only once it holds a registered file
    monkeypatch.setattr(public, "REPO_ROOT", fake_repo)
    monkeypatch.setenv("CALCAS_CACHE", str(cache))
    assert public.cache_dir() == cache
    assert public.data_root() is None
    (cache / "imagenetx").mkdir(parents=True)
    (cache / "imagenetx" / "imagenet_labels.txt").write_text("x")
    assert public.data_root() == cache
    (fake_repo.parent / "shared" / "data").mkdir(parents=True)
    assert public.data_root() == fake_repo.parent / "shared" / "data"


def test_missing_data_message_says_how_to_get_the_data():
    message = public.missing_data_message("imagenetx")
    assert "\n" not in message
    assert "imagenetx" in message and "CALCAS_DATA" in message
    assert "python -m calcas.datasets.public fetch" in message


def test_converters_without_data_raise_with_the_message(tmp_path, monkeypatch):
    monkeypatch.setenv("CALCAS_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="CALCAS_DATA"):
        public.imagenet_records("ResNet50")
    with pytest.raises(FileNotFoundError, match="calcas.datasets.public fetch"):
        public.plaut_records("arc", "Mistral")
    with pytest.raises(FileNotFoundError, match="CALCAS_DATA"):
        public.write_public_records(tmp_path / "out")
    monkeypatch.delenv("CALCAS_DATA")
    monkeypatch.setattr(public, "data_root", lambda: None)
    with pytest.raises(FileNotFoundError, match="fetch"):
        public.mmlu_redux_table()
    assert public.main(["write", str(tmp_path / "out"), "--root", str(tmp_path)]) == 1


# ----------------------------------------------------------------------------- ImageNet

@needs_data
def test_imagenet_first_rows_match_the_files():
    records = public.imagenet_records("ResNet50", nrows=5)
    _, rows = _rows(DATA / "imagenetx/ResNet50.csv", nrows=5)
    _, labels = _rows(DATA / "imagenetx/filename_label.csv")
    given = {name: int(label) for name, label in labels}
    real = json.loads((DATA / "imagenet-real/real.json").read_text())
    assert records.n == 5 and records.source == "confidence"
    assert records.id.tolist() == [r[0] for r in rows] and records.id[0] == "ILSVRC2012_val_00000293.JPEG"
    assert records.pred.tolist() == [int(r[1]) for r in rows]
    np.testing.assert_allclose(records.confidence, [float(r[2]) for r in rows], rtol=0, atol=1e-15)
    assert records.label.tolist() == [given[r[0]] for r in rows]
    expected_real = [real[int(r[0][15:23]) - 1] for r in rows]
    assert [v.tolist() for v in records.valid_labels] == expected_real
    np.testing.assert_array_equal(records.verified, (records.pred == records.label).astype(float))
    m = records.manifest
    assert m["model"] == "ResNet50" and m["dataset"] == "imagenet-1k-val"
    assert "CC BY-NC 4.0" in m["licence"] and "Apache-2.0" in m["licence"]
    assert m["commit"]["imagenetx"] == public.SOURCES["imagenetx"].commit
    assert m["n_real_empty"] == sum(1 for v in expected_real if not v)


@needs_data
def test_imagenet_joins_on_file_name_not_position(tmp_path):
    rng = random.Random(0)
    header, rows = _rows(DATA / "imagenetx/ViT.csv")
    picked = rng.sample(rows, 300)
    lab_header, labels = _rows(DATA / "imagenetx/filename_label.csv")
    shuffled = labels[:]
    rng.shuffle(shuffled)
    (tmp_path / "imagenetx").mkdir()
    (tmp_path / "imagenet-real").mkdir()
    for name, head, body in (("ViT.csv", header, picked), ("filename_label.csv", lab_header, shuffled)):
        with open(tmp_path / "imagenetx" / name, "w", newline="") as handle:
            csv.writer(handle).writerows([head] + body)
    (tmp_path / "imagenet-real" / "real.json").symlink_to(DATA / "imagenet-real/real.json")
    records = public.imagenet_records("ViT", root=tmp_path)
    given = {name: int(label) for name, label in labels}
    real = json.loads((DATA / "imagenet-real/real.json").read_text())
    assert records.id.tolist() == [r[0] for r in picked]
    assert records.label.tolist() == [given[r[0]] for r in picked]
    assert records.label.tolist() != [int(label) for _, label in shuffled[:300]]
    assert [v.tolist() for v in records.valid_labels] == [real[int(r[0][15:23]) - 1] for r in picked]


@needs_data
def test_imagenet_class_indices_follow_the_real_convention():
    stats = public.check_imagenet_classes()
    assert stats["n_classes"] == 1000 and 0.85 < stats["given_in_real"] < 0.95
    wnids = [line.split(",")[0] for line in (DATA / "imagenetx/imagenet_labels.txt").read_text().splitlines()]
    assert wnids[0] == "n01440764" and wnids[65] == "n01751748"  # tench; sea snake (val image 1)
    records = public.imagenet_records("ResNet50")
    assert records.n == 50000
    assert records.label[records.id.tolist().index("ILSVRC2012_val_00000001.JPEG")] == 65
    rated = np.array([len(v) > 0 for v in records.valid_labels])
    assert records.manifest["n_real_empty"] == int((~rated).sum()) == stats["n_real_empty"]
    acc = float(np.mean(records.pred == records.label))
    real_acc = float(np.mean([p in v for p, v, r in zip(records.pred, records.valid_labels, rated) if r]))
    assert abs(acc - 0.7613) < 0.005  # ResNet-50's published top-1
    assert 0.82 < real_acc < 0.84  # ReaL accuracy of ResNet-50 (Beyer et al.)


@needs_data
def test_imagenet_metaclasses_follow_the_class_order():
    """Each class's metaclass, read by hand from the CSV (one row per class index; ``wnid`` is the
    metaclass's WordNet synset): 100 metaclasses; tench (0) is a fish, sea
    snake (65) a snake, puffer (397) the last animal, abacus (398) a device; classes 0..397 and
    398..999 share no metaclass."""
    metaclass, names = public.imagenet_metaclasses()
    header, rows = _rows(DATA / "imagenetx/imagenet_1k_classes_to_100_metaclasses.csv")
    assert header == ["wnid", "name", "metaclass"] and len(rows) == 1000
    assert metaclass.tolist() == [int(r[2]) for r in rows]
    assert len({r[2] for r in rows}) == len(names) == 100
    labels = [line.split(",", 1)[1] for line in (DATA / "imagenetx/imagenet_labels.txt").read_text().splitlines()]
    assert (labels[0], names[metaclass[0]]) == ("tench", "fish") and (labels[65], names[metaclass[65]]) == (
        "sea snake", "snake")
    assert (labels[397], labels[398], names[metaclass[398]]) == ("puffer", "abacus", "device")
    assert not set(metaclass[public.IMAGENET_ANIMALS].tolist()) & set(metaclass[398:].tolist())


def test_imagenet_metaclasses_bad_file(tmp_path):
    (tmp_path / "imagenetx").mkdir()
    (tmp_path / "imagenetx/imagenet_1k_classes_to_100_metaclasses.csv").write_text("wnid,name,metaclass\nn1,fish,0\n")
    with pytest.raises(ValueError, match="expected 1,000 rows of wnid, name, metaclass; got 1 rows"):
        public.imagenet_metaclasses(root=tmp_path)


def test_imagenet_unknown_model():
    with pytest.raises(ValueError, match="ResNet50"):
        public.imagenet_records("AlexNet", root=".")


# ----------------------------------------------------------------------------- plaut-llm

def test_plaut_model_lists():
    for benchmark in ("mmlu", "arc"):
        models = public.plaut_models(benchmark)
        assert len(models) == 14 and "Llama3-8b" in models and "gpt-4-turbo" in models
    with pytest.raises(ValueError, match="benchmark"):
        public.plaut_models("hellaswag")
    with pytest.raises(ValueError, match="unknown"):
        public.plaut_records("arc", "gpt-5", root=".")


@needs_data
def test_plaut_slice_maps_grades_to_verified():
    path = DATA / "plaut-llm/derived_mmlu_first_prompt.csv"
    header, rows = _rows(path, nrows=200)
    g, m = header.index("Llama3-8b__grade"), header.index("Llama3-8b__msp")
    records = public.plaut_records("mmlu", "Llama3-8b", nrows=200)
    assert records.n == 200 and records.id[0] == "mmlu-00000" and records.id[-1] == "mmlu-00199"
    assert (records.pred == -1).all() and (records.label == -1).all()
    assert records.verified.tolist() == [1.0 if r[g] == "Correct" else 0.0 for r in rows]
    np.testing.assert_allclose(records.confidence, [float(r[m]) for r in rows], rtol=0, atol=0)
    unparseable = [i for i, r in enumerate(rows) if r[g] == "Unparseable"]
    assert unparseable and all(records.verified[i] == 0.0 for i in unparseable)  # Unparseable counts as wrong
    man = records.manifest
    assert man["n_unparseable"] == len(unparseable)
    assert man["n_correct"] == sum(r[g] == "Correct" for r in rows)
    assert man["n_correct"] + man["n_wrong"] + man["n_unparseable"] == 200
    assert man["n_dropped_missing_msp"] == 0 and man["row_aligned_with"] == ["Llama3-8b", "Llama3-70b"]
    gpt = public.plaut_records("arc", "gpt-3.5-turbo", nrows=10)
    _, arc_rows = _rows(DATA / "plaut-llm/derived_arc_first_prompt.csv", nrows=10)
    assert gpt.id.tolist() == [f"arc-{i:05d}" for i in range(10)]
    assert len(gpt.manifest["row_aligned_with"]) == 14


@needs_data
def test_plaut_drops_rows_without_msp(tmp_path):
    header, rows = _rows(DATA / "plaut-llm/derived_arc_first_prompt.csv", nrows=20)
    m = header.index("Mistral__msp")
    rows[3][m] = ""
    rows[11][m] = "nan"
    (tmp_path / "plaut-llm").mkdir()
    with open(tmp_path / "plaut-llm/derived_arc_first_prompt.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([header] + rows)
    records = public.plaut_records("arc", "Mistral", root=tmp_path)
    assert records.n == 18 and records.manifest["n_dropped_missing_msp"] == 2
    assert "arc-00003" not in records.id and "arc-00011" not in records.id and "arc-00004" in records.id


@needs_data
def test_plaut_full_arc_counts():
    for model in public.plaut_models("arc"):
        records = public.plaut_records("arc", model)
        man = records.manifest
        assert records.n == 2590
        assert man["n_correct"] + man["n_wrong"] + man["n_unparseable"] == 2590
        assert records.verified.sum() == man["n_correct"]


# ----------------------------------------------------------------------------- MMLU-Redux

@needs_data
def test_mmlu_redux_table_joins_every_question_once():
    table = public.mmlu_redux_table()
    assert len(table) == 5700 and table["id"].is_unique
    assert table["subject"].value_counts().eq(100).all() and table["subject"].nunique() == 57
    assert table.attrs["join"]["matched"] == 5700 and table.attrs["join"]["identity_order"]
    header, helm = _rows(DATA / "mmlu-redux/helm_predictions.csv")
    counts = table["error_type"].value_counts()
    assert counts.sum() == 5700 and counts["ok"] == sum(r[header.index("error_type")] == "ok" for r in helm)
    assert dict(counts) == {k: sum(r[header.index("error_type")] == k for r in helm) for k in counts.index}
    assert table["answer"].tolist() == [int(r[header.index("groundtruth_answer")]) for r in helm]
    letters = {"A": 0, "B": 1, "C": 2, "D": 3}
    for model in public.REDUX_MODELS:
        j = header.index(model)
        assert table[model].tolist() == [letters.get(r[j].strip(), -1) for r in helm], model
    assert (table["meta_llama-3.1-405b-instruct-turbo"] == -1).sum() > 0  # non-letter answers -> -1
    assert all(len(c) == 4 for c in table["choices"])
    moral = table[table["subject"] == "moral_scenarios"]
    assert moral["question"].str.contains("sister\u2019s head").any()  # the Mac-Roman file, decoded


@needs_data
def test_mmlu_redux_join_does_not_rely_on_row_order(tmp_path):
    header, helm = _rows(DATA / "mmlu-redux/helm_predictions.csv")
    order = list(range(len(helm)))
    random.Random(1).shuffle(order)
    (tmp_path / "mmlu-redux").mkdir()
    with open(tmp_path / "mmlu-redux/helm_predictions.csv", "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header] + [helm[i] for i in order])
    (tmp_path / "mmlu-redux/questions").symlink_to(DATA / "mmlu-redux/questions")
    table = public.mmlu_redux_table(root=tmp_path)
    assert not table.attrs["join"]["identity_order"]
    j = header.index("openai_gpt-4o-2024-05-13")
    letters = {"A": 0, "B": 1, "C": 2, "D": 3}
    assert table["openai_gpt-4o-2024-05-13"].tolist() == [letters.get(r[j], -1) for r in helm]


def test_normalise_error_type():
    assert public.normalise_error_type("OK ") == "ok"
    assert public.normalise_error_type("Wrong Groundtruth") == "wrong_groundtruth"
    assert public.normalise_error_type("bad_question_clarity") == "bad_question_clarity"


# ----------------------------------------------------------------------------- fetching (offline)

def _serve(monkeypatch, table, calls=None):
    def fake_urlopen(url, timeout=None):
        if calls is not None:
            calls.append(url)
        if url not in table:
            raise urllib.error.URLError(f"404 {url}")
        return io.BytesIO(table[url])
    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)


def _origin_chunks(benchmark):
    """The origin's main_results/ files, rebuilt from the shared CSV (inverse of the re-shaping)."""
    header, rows = _rows(DATA / public.FILES[f"plaut-llm/derived_{benchmark}_first_prompt.csv"].path)
    source = public.SOURCES["plaut-llm"]
    served = {}
    for model in public.plaut_models(benchmark):
        g, m = header.index(f"{model}__grade"), header.index(f"{model}__msp")
        lg = header.index(f"{model}__maxlogit") if f"{model}__maxlogit" in header else None
        for k, (norm, raw) in enumerate(public.plaut_origin_paths(benchmark, model)):
            chunk = rows[k * 500:(k + 1) * 500]
            served[source.raw_url(norm)] = ("grade confidence_level\n" + "".join(
                f"{r[g]} {r[m]}\n" for r in chunk)).encode()
            if raw is not None:
                served[source.raw_url(raw)] = ("grade confidence_level\n" + "".join(
                    f"{r[g]} {r[lg]}\n" for r in chunk)).encode()
    return served


@needs_data
def test_fetch_downloads_and_verifies(tmp_path, monkeypatch):
    names = ["imagenetx/filename_label.csv", "mmlu-redux/questions/mmlu_moral_scenarios.csv", "imagenet-real"]
    calls = []
    _serve(monkeypatch, {f.url: (DATA / f.path).read_bytes() for f in public.FILES.values() if f.url}, calls)
    root = public.fetch(names, cache=tmp_path)
    assert root == tmp_path and len(calls) == 3
    for path in ("imagenetx/filename_label.csv", "mmlu-redux/questions/mmlu_moral_scenarios.csv",
                 "imagenet-real/real.json"):
        assert (tmp_path / path).read_bytes() == (DATA / path).read_bytes()
    assert not list(tmp_path.rglob("*.part"))
    public.fetch(names, cache=tmp_path)  # already there and verified: nothing downloaded
    assert len(calls) == 3
    with pytest.raises(ValueError, match="unknown"):
        public.fetch(["imagenetx/AlexNet.csv"], cache=tmp_path)


def test_fetch_rejects_wrong_bytes_and_leaves_no_file(tmp_path, monkeypatch):
    entry = public.FILES["imagenetx/imagenet_labels.txt"]
    _serve(monkeypatch, {entry.url: b"n01440764,tench\n"})
    with pytest.raises(public.ChecksumError, match="SHA-256"):
        public.fetch([entry.path], cache=tmp_path)
    assert not (tmp_path / entry.path).exists() and not list(tmp_path.rglob("*.part"))
    (tmp_path / entry.path).write_text("stale")  # a corrupted cached file is replaced, or removed
    with pytest.raises(public.ChecksumError):
        public.fetch([entry.path], cache=tmp_path)
    assert not (tmp_path / entry.path).exists()
    _serve(monkeypatch, {})
    with pytest.raises(OSError, match="could not download"):
        public.fetch([entry.path], cache=tmp_path)


@needs_data
def test_fetch_rebuilds_the_plaut_csvs_byte_for_byte(tmp_path, monkeypatch):
    served = {**_origin_chunks("arc"), **_origin_chunks("mmlu")}
    calls = []
    _serve(monkeypatch, served, calls)
    public.fetch("plaut-llm", cache=tmp_path)  # raises ChecksumError unless the bytes are identical
    assert len(calls) == len(served) == 6 * 26 + 12 * 26  # the OpenAI models have no raw-logit files
    assert any(url.endswith("/main_results/arc_Llama3-8b-q0to500_no_abst_norm_logits_first_prompt.txt")
               for url in calls)
    assert any(url.endswith("/main_results/mmlu_Yi-34b-q5500to6000_no_abst_raw_logits_first_prompt.txt")
               for url in calls)
    for name in ("derived_arc_first_prompt.csv", "derived_mmlu_first_prompt.csv"):
        assert (tmp_path / "plaut-llm" / name).read_bytes() == (DATA / "plaut-llm" / name).read_bytes()
    records = public.plaut_records("arc", "Solar", root=tmp_path)
    assert records.n == 2590


@needs_data
def test_fetch_command_line(tmp_path, monkeypatch, capsys):
    entry = public.FILES["imagenetx/imagenet_labels.txt"]
    _serve(monkeypatch, {entry.url: (DATA / entry.path).read_bytes()})
    assert public.main(["fetch", "--cache", str(tmp_path), "--only", entry.path]) == 0
    assert (tmp_path / entry.path).is_file()
    assert "CALCAS_DATA" in capsys.readouterr().out


# ----------------------------------------------------------------------------- everything

@needs_data
def test_write_public_records(tmp_path):
    written = public.write_public_records(tmp_path)
    expected = ({f"imagenet_{m}" for m in public.IMAGENET_MODELS} | {"mmlu_Llama3-8b", "mmlu_Llama3-70b"}
                | {f"arc_{m}" for m in public.plaut_models("arc")} | {"mmlu_redux"})
    assert set(written) == expected and all(p.is_file() for p in written.values())
    vit = read_records(written["imagenet_ViT"])
    assert vit.n == 50000 and vit.valid_labels is not None and vit.manifest["n_real_empty"] > 3000
    llama = read_records(written["mmlu_Llama3-70b"])
    assert llama.n == 6000 and math.isclose(llama.verified.mean(), 4520 / 6000)
    import pandas as pd
    redux = pd.read_parquet(written["mmlu_redux"])
    assert len(redux) == 5700 and set(public.REDUX_MODELS) <= set(redux.columns)


@needs_data
def test_with_imagenet_real_attaches_real_by_file_name_for_extracted_records():
    """An extracted record set (ids = class folder / val file name, any order) gets the same ReaL
    lists as the published-predictions converter, which joins the same file names independently."""
    from calcas import make_records
    published = public.imagenet_records("ResNet50", nrows=300)
    take = [5, 0, 299, 17, 123]  # out of order, and through class sub-folders
    ids = [f"n{label:08d}/{published.id[i]}" for i, label in zip(take, published.label[take])]
    extracted = make_records(ids, published.pred[take], label=published.label[take],
                             logits=np.eye(1000, dtype=np.float32)[published.pred[take]], manifest={"model": "x"})
    attached = public.with_imagenet_real(extracted)
    for row, i in enumerate(take):
        assert attached.valid_labels[row].tolist() == published.valid_labels[i].tolist()
    assert attached.manifest["model"] == "x" and "ReaL" in attached.manifest["valid_labels"]
    labels = public.imagenet_real_labels(ids)  # what with_imagenet_real attaches, in the order of the ids
    assert [v.tolist() for v in labels] == [v.tolist() for v in attached.valid_labels]
    assert all(v.dtype == np.int64 for v in labels)
    with pytest.raises(ValueError, match="is not an ImageNet-1k val image name"):
        public.with_imagenet_real(make_records(["cat/img1.png"], [0], label=[0], logits=[[1.0, 0.0]]))


def _no_local_copy(monkeypatch, cache):
    monkeypatch.setenv("CALCAS_CACHE", str(cache))
    monkeypatch.delenv("CALCAS_DATA", raising=False)
    monkeypatch.setattr(public, "REPO_ROOT", cache / "no" / "repo")  # no shared/data beside it


def test_ensure_data_fetches_when_no_copy_is_found(tmp_path, monkeypatch, capsys):
    _no_local_copy(monkeypatch, tmp_path / "cache")
    got = []
    monkeypatch.setattr(public, "fetch", lambda **kw: got.append(kw) or tmp_path / "cache")
    assert public.ensure_data(progress=False) == tmp_path / "cache"
    assert got == [{"timeout": 30.0, "progress": False}]
    monkeypatch.setenv("CALCAS_DATA", str(tmp_path))  # a copy is found: nothing is fetched
    assert public.ensure_data() == tmp_path and len(got) == 1


def test_ensure_data_offline_is_one_line_and_no_data(tmp_path, monkeypatch, capsys):
    _no_local_copy(monkeypatch, tmp_path / "cache")
    _serve(monkeypatch, {})  # every origin unreachable
    assert public.ensure_data(progress=False) is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "origins cannot be reached" in err and public.FETCH_COMMAND in err


def test_ensure_data_never_hides_a_wrong_file(tmp_path, monkeypatch):
    _no_local_copy(monkeypatch, tmp_path / "cache")
    monkeypatch.setattr(public, "fetch", lambda **kw: (_ for _ in ()).throw(public.ChecksumError("SHA-256 differs")))
    with pytest.raises(public.ChecksumError, match="SHA-256"):
        public.ensure_data(progress=False)
