"""The teacher's guide's numbers, rendered from the stored evidence (``docs/results.json``):
the discussion prompts and the common student questions (generated blocks of
``docs/teachers_guide.md``, written by ``scripts/render_docs.py``). No number in these blocks is
typed by hand: when the evidence is recomputed, the guide follows."""
from __future__ import annotations

from ..evaluation.evidence import aggregate_seeds, format_mean_sd, localisation_over_seeds, seed_runs
from ..evaluation.verdict import (
    MAIN,
    PAPER,
    paper_map_lift,
    paper_map_max,
    recommended_family,
    robustness_verdict,
    verdict_sentence,
)

__all__ = ["guide_numbers", "discussion_prompts_markdown", "student_questions_markdown"]

GXI = "TFA-Cos · gradient × input"
INPUT, TWO_GXI = "control · input as map", "two-step · gradient × input"
REPAIR_TFA, REPAIR_TWO = "repair flagged (TFA SmoothGrad × input)", "repair flagged (two-step SmoothGrad × input)"


def _over_seeds(runs: dict):
    runs = seed_runs(runs)
    return aggregate_seeds(list(runs.values())), list(runs)


def guide_numbers(db: dict, config: str = "tutorial") -> dict[str, str]:
    """The formatted numbers the guide quotes (``"0.60 ± 0.03"``), by name, from the stored
    evidence ``db`` (:func:`~tfa_tutorial.evaluation.evidence.load_results`) of ``config``."""
    sc, seeds = _over_seeds(db["shortcut"][config])
    ev = seed_runs(db["evidence"][config])
    ret, _ = _over_seeds({s: r["retrieval"] for s, r in ev.items()})
    loc = localisation_over_seeds(ev)
    fix, _ = _over_seeds(db["fix"][config])
    verdict = robustness_verdict(db)
    rec = recommended_family(db, verdict=verdict)
    f = format_mean_sd
    chance = next(iter(ev.values()))["chance"]
    n = {
        "seeds": ", ".join(seeds), "chance": f"{chance:.2f}", "recommended": rec,
        "acc_shortcut": f(sc["shortcut model"]["clean_acc"], 3), "acc_clean": f(sc["clean model"]["clean_acc"], 3),
        "flip_shortcut": f(sc["shortcut model"]["flip_rate"]), "flip_clean": f(sc["clean model"]["flip_rate"]),
        "auprc_cos": f(ret["Grad-Cos"]), "auprc_dot": f(ret["Grad-Dot"]), "auprc_label": f(ret["label only"]),
        "paper_mass": f(loc[PAPER]["shortcut model"]["mass"]), "paper_clean": f(loc[PAPER]["clean model"]["mass"]),
        "paper_gain": f(loc[PAPER]["gain"], signed=True),
        "gxi_mass": f(loc[GXI]["shortcut model"]["mass"]), "gxi_clean": f(loc[GXI]["clean model"]["mass"]),
        "gxi_gain": f(loc[GXI]["gain"], signed=True), "input_mass": f(loc[INPUT]["shortcut model"]["mass"]),
        "two_gxi_gain": f(loc[TWO_GXI]["gain"], signed=True),
        "rec_gain": f(loc[rec]["gain"], signed=True), "rec_clean": f(loc[rec]["clean model"]["mass"]),
        "fix_none": f(fix["none (shortcut model)"]["flip rate"]), "fix_remove": f(fix["remove flagged"]["flip rate"]),
        "fix_random": f(fix["remove as many random"]["flip rate"]),
        "fix_random_class": f(fix["remove as many random, same class"]["flip rate"]),
        "fix_oracle": f(fix["oracle: remove all patched"]["flip rate"]),
        "fix_repair_tfa": f(fix[REPAIR_TFA]["flip rate"]), "fix_repair_two": f(fix[REPAIR_TWO]["flip rate"]),
        "cover_tfa": f(fix[REPAIR_TFA]["repair mask covers patch"]),
        "cover_two": f(fix[REPAIR_TWO]["repair mask covers patch"]),
        "flag_precision": f(fix["flag precision"]), "flag_recall": f(fix["flag recall"]),
        "flag_chance": f(fix["precision of random flags"]),
        "flagged": f"{fix['flagged']['mean']:.0f}" if not fix["flagged"]["sd"] else f(fix["flagged"], 0),
    }
    if "prevalence" in db and config in db["prevalence"]:
        prev, _ = _over_seeds(db["prevalence"][config])
        n["prevalence"] = "; ".join(f"{p}: {f(v['flip_rate'])}" for p, v in sorted(prev.items(), key=lambda kv: float(kv[0])))
    n.update(_robustness_numbers(verdict))
    return n


def _robustness_numbers(v: dict) -> dict[str, str]:
    """The robustness verdict's sentence and the numbers the guide quotes from it
    (``v``: :func:`~tfa_tutorial.evaluation.verdict.robustness_verdict`)."""
    rows = [r for r in v["rows"] if r["paper gain"] is not None]
    if not rows:
        return {"rob_sentence": verdict_sentence(v), "rob_objections": "none yet", "rob_paper_max": "—",
                "rob_lift": "no objection has been measured yet.", "rob_change": "nothing has been measured yet",
                "rob_conclusion": "not in this setting"}
    lift = paper_map_lift(v["rows"])
    lift_text = ("no objection could be compared with the main protocol." if not lift else
                 f"*{lift['label']}*: the SmoothGrad gradient of its score (the paper's kind of map) gains " + ", ".join(
                     f"{r['paper gain']['mean']:+.2f} with `{r['config']}` (main protocol {lift['main'][r['config']]:+.2f})"
                     for r in lift["rows"]) + ".")
    return {
        "rob_sentence": verdict_sentence(v),
        "rob_objections": "; ".join(dict.fromkeys(r["label"] for r in v["rows"] if r["label"] != MAIN)),
        "rob_paper_max": "—" if paper_map_max(rows) is None else f"{paper_map_max(rows):+.2f}",
        "rob_change": ("the recommendation does not change" if v["winner"] is None else
                       f"one objection changes the recommendation to {v['winner']['best tfa']}"),
        "rob_conclusion": ("not in this setting, nor under these objections" if v["winner"] is None else
                           "not in this setting, but under one of these objections"),
        "rob_lift": lift_text,
    }


def discussion_prompts_markdown(db: dict, config: str = "tutorial", numbers: dict | None = None) -> str:
    """The five discussion prompts of the 90-minute plan, with answers from the stored evidence."""
    n = guide_numbers(db, config) if numbers is None else numbers
    return f"""**Discussion prompts, with answers from the stored evidence** (fast setting, seeds {n['seeds']},
mean ± sd; `docs/results.md`; rendered from `docs/results.json` by `scripts/render_docs.py`):

1. *The shortcut model's clean accuracy is about as good as the clean model's. Is it a good model?*
   No: clean accuracy is {n['acc_shortcut']} against {n['acc_clean']}, but the patch flips {n['flip_shortcut']} of
   the other classes' test images to T-shirt, against {n['flip_clean']} for the clean model. The clean
   test set carries no patch, so it cannot show the shortcut.
2. *Grad-Cos finds the patched training images (AUPRC {n['auprc_cos']}), Grad-Dot does not
   ({n['auprc_dot']}). Why?* The model is confident on patched T-shirts, so their gradients are small;
   Grad-Dot keeps gradient length and is dominated by the images the model gets wrong. The
   label-only control ({n['auprc_label']}) shows how much label agreement alone gives.
3. *The paper's map puts {n['paper_mass']} of its mass on the patch; chance is the patch area, {n['chance']}.
   Does TFA fail?* In our setting, the paper's map does not localise the patch: its gain over the
   clean model is {n['paper_gain']}. A gradient is a sensitivity (what would make the two gradients more
   alike), not an attribution of what already makes them alike. Our setting also differs from the
   paper's (Fashion-MNIST and a small CNN with average pooling, not CIFAR-10 and a ResNet). Notebook 08
   (section 5) measures the obvious objections one at a time — another measure, the logit instead of the
   loss gradient, a parameter subset, SmoothGrad settings, other pairs, max pooling, a ResNet-9, longer
   training: the paper's map never gains more than {n['rob_paper_max']}, and {n['rob_change']}. The
   honest conclusion is "{n['rob_conclusion']}"; CIFAR-10 at the paper's scale is not measured.
4. *Gradient × input of Grad-Cos puts {n['gxi_mass']} on the patch. Does it work?* Check the controls:
   the training image itself, used as a map, scores {n['input_mass']} without knowing anything about the
   model. The gain over the clean model ({n['gxi_gain']}) is what the model contributes. The course's
   recommended map, {n['recommended']}, gains {n['rec_gain']}.
5. *Removing the flagged training images fixes the shortcut (flip rate {n['fix_none']} → {n['fix_remove']};
   random removal {n['fix_random']}). What did the work: the ranking or the maps?* The ranking: removal
   uses only Grad-Cos. Repairing only the pixels a map selects helps less ({n['fix_repair_tfa']} with the TFA
   map, {n['fix_repair_two']} with the two-step map)."""


def student_questions_markdown(db: dict, config: str = "tutorial", numbers: dict | None = None) -> str:
    """The guide's common student questions, with numbers from the stored evidence only."""
    n = guide_numbers(db, config) if numbers is None else numbers
    prevalence = (f" Over the stored prevalence sweep (flip rate by share of T-shirts patched, mean ± sd over "
                  f"seeds: {n['prevalence']}) the shortcut grows with the number of patched images." if "prevalence" in n else "")
    return f"""All numbers below are the stored evidence (fast setting, seeds {n['seeds']}, mean ± sd; `docs/results.md`),
rendered from `docs/results.json`; a notebook's own run prints its own numbers, which differ within
the spread over seeds.

**"Grad-Cos finds the patched training images, so why doesn't the TFA map light up the patch?"**
In our reconstruction it does not. The paper's SmoothGrad map puts {n['paper_mass']} of its positive mass
on the patch, and the same pipeline on the clean model puts {n['paper_clean']} there. Chance is the patch
area, {n['chance']}. Grad-Cos retrieval still works (shortcut-detection AUPRC {n['auprc_cos']}). A gradient is a
*sensitivity*: it shows which pixel changes would turn the training gradient further towards the
test gradient. It does not show which pixels already make the two gradients alike. The patch is
saturated and the model is confident on it, so small changes there barely matter (notebook 04).

**"Isn't the negative result just an artefact of your small setting?"** We measured the obvious
objections, one change at a time, with the same protocol and controls (notebook 08, section 5;
`docs/results.md`, "Robustness"): {n['rob_objections']}. {n['rob_sentence']} The objection that helps the
paper's kind of map most is {n['rob_lift']}

**"Why is Grad-Dot so much worse than Grad-Cos?"** The model classifies patched T-shirts very
confidently, so their gradients are tiny (notebook 03 prints the gradient norms). Grad-Dot keeps
the gradient length, so images the model still gets wrong dominate its top list. The
shortcut-detection AUPRC is {n['auprc_cos']} for Grad-Cos and {n['auprc_dot']} for Grad-Dot.

**"Gradient × input puts {n['gxi_mass']} of its mass on the patch. So it works?"** Look at the controls
first. The input itself, used as a map, scores {n['input_mass']}, because the white patch is the brightest
region. The same method on the clean model scores {n['gxi_clean']}. The honest number is the gain over the
clean model: {n['gxi_gain']} for TFA gradient × input against {n['two_gxi_gain']} for the two-step baseline with
the same method, and {n['rec_gain']} for the recommended map ({n['recommended']}), whose clean-model control
scores {n['rec_clean']}.

**"The shortcut model is as accurate on clean test images. Isn't it fine?"** Clean accuracy hides
the shortcut: {n['acc_shortcut']} with the shortcut against {n['acc_clean']} without it, while the flip rate is
{n['flip_shortcut']} against {n['flip_clean']}. Exercise 02.2 shows it directly: a black image with only the white
square is called T-shirt/top by the shortcut model.

**"Why explain the predicted label and not the true one?"** They answer different questions. The
predicted label asks why the model said this; the true label asks what argued against the right
answer (the harmful training images are the opponents of the true label). Exercise 05.1 measures
both on one flipped coat.

**"How many patched images does it take?"**{prevalence} The tutorial stops at half of the
T-shirts: with quanda's preset almost no unpatched T-shirt is left to learn the garment from.

**"Grad-Cos flags the right images, so why does repairing them work worse than removing them?"**
Because the repair is only as good as its map. In notebook 06's protocol {n['flagged']} training images
are flagged, with precision {n['flag_precision']} (random flags: {n['flag_chance']}) and recall {n['flag_recall']}.
Removing them cuts the flip rate from {n['fix_none']} to {n['fix_remove']}, close to the oracle that removes
every patched image ({n['fix_oracle']}). Repairing the same images leaves {n['fix_repair_tfa']} with the TFA map
and {n['fix_repair_two']} with the two-step map: their repair masks cover only {n['cover_tfa']} and {n['cover_two']} of
the patch pixels, so the pixels that are left still sit in the same corner of hundreds of
T-shirts. Notebook 06 also repairs with the recommended map and prints its coverage.

**"Removing the flagged images fixed it. Isn't that just less data?"** Notebook 06 tests this with
two controls: removing as many random images leaves a flip rate of {n['fix_random']}, and as many random
T-shirts {n['fix_random_class']}, against {n['fix_remove']} for the flags. The flags work because they reach almost
all patched images, not because of the amount of data removed.

**"Notebook 07 finds the patch neuron. So neural features explain the shortcut?"** Only in part:
the neuron's top-activating training images carry the patch, but its 7×7 map localises the patch
only modestly, the sensitivity test does not tell it apart from a core neuron, and the patch
neuron is among the top drivers of only a minority of flipped predictions (notebook 07's claims
give this run's numbers). TFA's proponents answer the per-image question more directly.

**"Does the one-step test show that TFA is faithful?"** Not clearly. The advantages over random
pixels are tiny next to the test loss, and their signs at small k change from seed to seed
(`docs/results.md`, faithfulness section); notebook 06 plots them so that up means "more faithful
than random" in both panels.

**"My numbers differ from the guide."** The guide quotes the mean ± sd over the stored seeds;
a notebook runs one seed in fast mode (12k images, 3 epochs). Thread count and hardware also move
the last digits. Every notebook checks its claims on the numbers it measured itself.

**"The explorer is slow."** The first use builds a gradient index (then cached). After that, a
new test image takes about a second, and display changes only redraw; notebook 05 section 4
measures both on your machine. The sliders for n and σ apply when you release them.

**"The checker says ✗ but I think I'm right."** Read the hint: it names the usual mistake, such
as the order of a pair, the wrong end of a ranking, or a share of all images where a share of one
class is meant. Make sure you used the inputs the task names; checkers compare with a reference
computed on exactly those inputs. Then open the collapsed *Solution*."""
