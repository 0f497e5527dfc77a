"""calcas.chapters.summary: chapters' facts read back from results.json and counted only where an
interval decides, per data set beside the paper's claims."""
from __future__ import annotations

import json

import pytest

import calcas
from calcas.chapters import calibration, cascading, cleaning, summary
from calcas.chapters.common import Estimate, decide, paper_reference
from calcas.params import write_results
from prose_checks import assert_names_from, assert_prose_numbers_from


def _sets(dataset: str, n: int = 3000) -> list[calcas.Records]:
    sets = calcas.make_synthetic(n, accuracy=(0.6, 0.8, 0.82), confidence_scale=(2.0, 1.4, 1.2), flip_rate=0.05,
                                 names=["small", "large", "large_b"], seed=4)
    return [calcas.make_records(r.id, r.pred, label=r.label, logits=r.logits, is_noisy=r.is_noisy,
                                manifest={**r.manifest, "dataset": dataset}) for r in sets.values()]


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    sets = _sets("imagenet-1k-val")
    toy = _sets("toy")
    write_results(root / "cal", calibration.compute(sets, n_boot=100).to_dict())
    write_results(root / "cas", cascading.compute({"small → large": sets[:2], "large-large: large + large_b": sets[1:]},
                                                  n_boot=200).to_dict())
    write_results(root / "toy", cascading.compute({"small → large": toy[:2]}, n_boot=200).to_dict())
    write_results(root / "clean", cleaning.compute(sets).to_dict())
    (root / "absent").mkdir()
    (root / "placeholder").mkdir()
    (root / "placeholder" / "results.json").write_text(json.dumps({"data": "missing", "message": "no data"}))
    return root


@pytest.fixture(scope="module")
def facts(results_dir):
    return summary.compute(results_dir, ["cal", "cas", "toy", "clean", "absent", "placeholder"], section="05_results")


def test_rows_are_the_chapters_facts(results_dir, facts):
    cal = calibration.CalibrationFacts.from_dict(json.loads((results_dir / "cal" / "results.json").read_text()))
    assert [r.model for r in facts.calibration] == cal.order
    for r in facts.calibration:
        assert r.change == cal.models[r.model].test.change and r.reference == "imagenet"
    assert facts.missing == ["absent", "placeholder"] and facts.chapters == ["cal", "cas", "toy", "clean"]


def test_counts_follow_the_verdicts_only(facts):
    c = facts.ece_change
    for r in facts.calibration:
        group = {"above": c.above, "below": c.below, "within": c.within}[r.change.outcome]
        assert r.model in group
    assert sorted(c.above + c.below + c.within) == sorted(r.model for r in facts.calibration)


def test_a_model_alone_is_never_counted_within_noise(facts):
    for r in facts.cascades:
        groups = [k for k, names in facts.cascade_cal.items() if r.label in names]
        assert len(groups) == 1
        if r.choice_cal != "cascade":
            assert groups == [r.choice_cal]
        elif not r.identical_cal:
            assert groups == [{"above": "beats", "below": "loses", "within": "within"}[r.gain_cal.outcome]]


def test_by_choice_on_designed_rows():
    within = decide(Estimate(0.0, -0.01, 0.01, "paired_difference_interval"))
    above = decide(Estimate(0.02, 0.01, 0.03, "paired_difference_interval"))
    row = summary.CascadeRow("ch", "a → b", "a → b", None, "a", "b", "b", None, False, 8, "cascade", above, 0,
                             "second_alone", within, False, None, None, 100, None, None, None)
    groups = summary._by_choice([row], "cal")
    assert groups["second_alone"] == ["a → b"] and not groups["within"]
    assert summary._by_choice([row], "fixed")["beats"] == ["a → b"]


def test_pairs_named_alike_are_told_apart_by_their_data_set(facts):
    labels = [r.label for r in facts.cascades]
    assert len(set(labels)) == len(labels)
    assert "small → large (ImageNet-1k val)" in labels and "small → large (toy)" in labels  # a reader's name


def test_the_human_audit_tests_the_cleaning_claim_it_bears_on():
    """MMLU-Redux's verdict (precision at the most experts disagreeing minus at one) is the paper's
    MMLU cleaning claim tested: it is tallied, and the claim is no longer listed as untested."""
    from calcas.chapters.common import Estimate, Verdict
    claim = "precision_falls_with_detection_rate"
    audit = ("mmlu", "MMLU-Redux (experts disagreeing)",
             Verdict("above", Estimate(0.19, 0.12, 0.26, "proportion_difference_interval")))
    tallies, _, untested = summary._claims([], [], [], [audit])
    tally = next(t for t in tallies if (t.dataset, t.claim) == ("mmlu", claim))
    assert tally.agree == ["MMLU-Redux (experts disagreeing)"] and tally.agreement == "as the paper"
    assert tally.tested == summary.AUDIT_TESTED  # not the method-1 comparison no audit runs
    assert ("mmlu", claim) not in {(u.dataset, u.claim) for u in untested}
    _, _, without_audit = summary._claims([], [], [], [])
    assert without_audit == []  # nothing read on MMLU: nothing said about it
    assert summary.KINDS["06_mmlu_redux"] == "redux"


def test_claims_are_those_of_each_data_set(facts):
    claims = {(t.dataset, t.claim) for t in facts.claims}
    assert ("imagenet", summary.CALIBRATION_CLAIM) in claims and ("imagenet", "cc_above_random") in claims
    assert all(t.dataset == "imagenet" for t in facts.claims)  # toy has none
    assert facts.datasets_without_claims == ["toy"]
    for t in facts.claims:
        expected = ("not measured" if not (t.agree or t.disagree or t.cannot_tell) else
                    "cannot tell" if not (t.agree or t.disagree) else "as the paper" if not t.disagree else
                    "unlike the paper" if not t.agree else "in part as the paper")
        assert t.agreement == expected


def _paper_claims(key: str) -> set[str]:
    """Every claim paper_reference.json gives the paper for the data set ``key``."""
    ref = paper_reference()["datasets"][key]
    out = {summary.CALIBRATION_CLAIM} if "calibration" in ref else set()
    for kind in ("cascading", "cleaning"):
        out |= set((ref.get(kind) or {}).get("claims", []))
    if (ref.get("cascading") or {}).get("large_large"):
        out.add(summary.LARGE_LARGE_CLAIM)
    return out


def test_every_claim_of_a_data_set_is_tallied_or_said_untested(facts):
    tested = {t.claim for t in facts.claims if t.dataset == "imagenet"}
    untested = {u.claim: u.reason for u in facts.untested if u.dataset == "imagenet"}
    assert not tested & set(untested) and tested | set(untested) == _paper_claims("imagenet")
    assert "no difference" in untested["uc_close_to_cc"]  # the paper's "UC and CC are very close"
    text = summary.prose(facts)["paper"]
    assert "Not tested here: on ImageNet-1k val, that UC and CC are very close" in text
    table = summary.tables(facts)["claims"]
    assert table.loc[("ImageNet-1k val", paper_reference()["claims"]["uc_close_to_cc"]), "here"] == "not tested"


def test_a_data_set_with_one_chapter_says_the_others_are_not_tested(results_dir):
    only = summary.compute(results_dir, ["cal"], section="05_results")
    reasons = {u.claim: u.reason for u in only.untested}
    assert set(reasons) == _paper_claims("imagenet") - {summary.CALIBRATION_CLAIM}
    no_cascading = "no cascading chapter on this data set among this summary's chapters"
    assert reasons["cc_above_random"] == reasons[summary.LARGE_LARGE_CLAIM] == no_cascading
    assert reasons["ours_above_cl"] == "no cleaning chapter on this data set among this summary's chapters"
    small_only = summary.compute(results_dir, ["cal", "toy"], section="05_results")
    assert {u.claim for u in small_only.untested} == set(reasons)  # toy's pair is not on ImageNet


def test_round_trip_and_prose(facts, tmp_path):
    written = json.loads(write_results(tmp_path, facts.to_dict()).read_text())
    again = summary.SummaryFacts.from_dict(written)
    assert again.to_dict() == written
    text = summary.prose(again)
    assert set(text) == {"calibration", "cascades", "cleaning", "paper"}
    for t in text.values():
        assert_prose_numbers_from(t, written)
        assert_names_from(t, written, ["MMLU", "ARC-Challenge", "EVA02-L-448 (m38m)", "mnist1d", "GSM8K"])
    assert "The paper makes no claim about toy" in text["paper"]
    assert "Not on this machine: absent and placeholder" in text["paper"]
    assert list(summary.tables(again)["claims"].columns) == ["agree", "disagree", "cannot tell", "not measured", "here"]


def test_a_results_file_of_another_kind_is_refused(tmp_path):
    write_results(tmp_path / "lab", {"section": "08_lab"})
    with pytest.raises(ValueError, match=r"chapters: .*lab/results.json is a '08_lab' chapter; expected one of"):
        summary.compute(tmp_path, ["lab"], section="05_results")
