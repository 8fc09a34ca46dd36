"""scripts/make_results.py: which runs it trains (--methods, --precision) and its bad-input answer."""
import argparse
import importlib.util
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_script():
    spec = importlib.util.spec_from_file_location("make_results", os.path.join(ROOT, "scripts", "make_results.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def planned_runs(tmp_path, monkeypatch, methods, precision="bf16", seeds=(1, 2), jobs=1, train=None, kd_lrs=(),
                 longer_epochs=()):
    """build_runs with train.py replaced by a recorder (or `train`): [(out_dir, command arguments)] in
    training order."""
    module = load_script()
    canonical = tmp_path / "canonical"
    canonical.mkdir()
    for task in ("rte", "sst"):
        (canonical / f"{task}_train.json").write_text('{"uid": 0}\n' * 40)
    calls = []
    monkeypatch.setattr(module, "run_train", train or (lambda out, common, extra, threads:
                                                       calls.append((out, common + extra))))
    args = argparse.Namespace(tasks="rte,sst", seeds=list(seeds), ratios=[0.1], epochs=2, batch_size=16,
                              learning_rate=5e-4, max_seq_len=64, final_lambda=400.0, soft_score_lrs=[],
                              signed_dfd_seeds=[], no_train=False, jobs=jobs, out=str(tmp_path / "runs"),
                              precision=precision, methods=methods, kd_lrs=list(kd_lrs),
                              longer_epochs=list(longer_epochs))
    module.build_runs(args, str(canonical))
    return calls


def test_methods_trains_the_dense_runs_then_only_the_variants_asked_for(tmp_path, monkeypatch):
    calls = planned_runs(tmp_path, monkeypatch, ["platon+kd", "movement"])
    names = [os.path.relpath(out, tmp_path / "runs") for out, _ in calls]
    assert names == [os.path.join("seed1", "dense"), os.path.join("seed2", "dense"),
                     os.path.join("seed1", "movement_0.1"), os.path.join("seed1", "platon_0.1_kd"),
                     os.path.join("seed2", "movement_0.1"), os.path.join("seed2", "platon_0.1_kd")], \
        f"dense runs first, then the two variants seed by seed in the table's priority order: {names}"
    for _, command in calls:
        assert command[command.index("--precision") + 1] == "bf16", f"--precision reaches train.py: {command}"
    kd = calls[3][1]
    assert kd[kd.index("--kd_teacher") + 1] == os.path.join(str(tmp_path / "runs"), "seed1", "dense", "model"), \
        f"platon+kd distils from its own seed's dense model: {kd}"


def test_no_methods_trains_every_variant(tmp_path, monkeypatch):
    calls = planned_runs(tmp_path, monkeypatch, [], precision="fp32")
    names = {os.path.basename(out) for out, _ in calls}
    assert {"dense", "magnitude_0.1", "platon_0.1_kd", "movement_0.1_kd", "soft_movement", "gpp", "gpp_dfd",
            "gpp_kd"} <= names, f"without --methods the whole table is planned: {sorted(names)}"
    assert len(calls) == 2 * 12, f"12 runs a seed (dense, 8 unstructured, 3 GPP): {len(calls)}"


def test_kd_lrs_trains_platon_kd_at_another_lr_with_the_same_teacher(tmp_path, monkeypatch):
    calls = planned_runs(tmp_path, monkeypatch, ["platon+kd", "platon+kd lr0.001"], seeds=(1,), kd_lrs=[1e-3])
    names = [os.path.basename(out) for out, _ in calls]
    assert names == ["dense", "platon_0.1_kd", "platon_0.1_kd_lr0.001"], \
        f"the lr variant right after platon+kd, in a directory of its own: {names}"
    table_lr, other_lr = calls[1][1], calls[2][1]
    assert other_lr.count("--learning_rate") == 1 and other_lr[other_lr.index("--learning_rate") + 1] == "0.001", \
        f"the variant trains at its own peak lr, given once: {other_lr}"
    assert table_lr[table_lr.index("--learning_rate") + 1] == "0.0005", f"platon+kd keeps the table's lr: {table_lr}"
    assert other_lr[other_lr.index("--kd_teacher") + 1] == table_lr[table_lr.index("--kd_teacher") + 1], \
        f"both distil from the same dense run (trained at the table's lr): {other_lr}"
    assert [a for a in other_lr if a != "0.001"] == [a for a in table_lr if a != "0.0005"], \
        f"nothing else differs between the two runs: {table_lr} vs {other_lr}"


def test_longer_epochs_trains_movement_and_magnitude_longer_with_the_same_thirds(tmp_path, monkeypatch):
    calls = planned_runs(tmp_path, monkeypatch, ["movement", "movement e6", "magnitude e6"], seeds=(1,),
                         longer_epochs=[6])
    names = [os.path.basename(out) for out, _ in calls]
    assert names == ["dense", "movement_0.1", "movement_0.1_e6", "magnitude_0.1_e6"], \
        f"the longer runs in directories of their own, after the table's: {names}"
    assert calls[3][1][calls[3][1].index("--pruner") + 1] == "magnitude", f"magnitude's longer run: {calls[3][1]}"
    table_run, longer = calls[1][1], calls[2][1]
    assert longer.count("--epochs") == 1 and longer[longer.index("--epochs") + 1] == "6", \
        f"the longer run trains its own number of epochs, given once: {longer}"
    # 40 rows a task at batch 16: 3 batches a task, 6 an epoch; 2 epochs = 12 updates, 6 epochs = 36
    warmups = [c[c.index("--warmup_steps") + 1] for c in (table_run, longer)]
    assert warmups == ["4", "12"], f"the pruning schedule's unit is a third of each run's updates: {warmups}"
    strip = {"--epochs", "--warmup_steps"}
    same = [[a for i, a in enumerate(c) if a not in strip and (i == 0 or c[i - 1] not in strip)]
            for c in (table_run, longer)]
    assert same[0] == same[1], f"nothing else differs between the two movement runs: {table_run} vs {longer}"


def test_longer_epochs_also_trains_dense_and_the_distilled_runs_with_the_tables_teacher(tmp_path, monkeypatch):
    variants = ["platon+kd", "dense e6", "movement+kd e6", "platon+kd e6"]
    calls = planned_runs(tmp_path, monkeypatch, variants, seeds=(1,), longer_epochs=[6])
    names = [os.path.basename(out) for out, _ in calls]
    assert names == ["dense", "platon_0.1_kd", "platon_0.1_kd_e6", "movement_0.1_kd_e6", "dense_e6"], \
        f"the longer runs after the table's, PLATON+KD first, each in a directory of its own: {names}"
    table_kd, platon_kd, movement_kd, dense = (c for _, c in calls[1:])
    teacher = os.path.join(str(tmp_path / "runs"), "seed1", "dense", "model")
    for command in (platon_kd, movement_kd):
        assert command[command.index("--kd_teacher") + 1] == teacher, \
            f"the longer distilled runs distil from the table's dense run of their seed: {command}"
        assert command[command.index("--epochs") + 1] == "6" and command.count("--epochs") == 1, \
            f"6 epochs, given once: {command}"
    strip = {"--epochs", "--warmup_steps"}
    same = [[a for i, a in enumerate(c) if a not in strip and (i == 0 or c[i - 1] not in strip)]
            for c in (table_kd, platon_kd)]
    assert same[0] == same[1], f"PLATON+KD with 6 epochs differs from the table's only in its length: {same}"
    assert movement_kd[movement_kd.index("--pruner") + 1] == "movement", f"movement+kd's pruner: {movement_kd}"
    assert dense[dense.index("--pruner") + 1] == "none" and "--kd_teacher" not in dense and \
        dense[dense.index("--epochs") + 1] == "6", f"the longer dense run: no pruner, no teacher, 6 epochs: {dense}"


def test_longer_epochs_trains_movement_at_every_ratio_and_the_others_at_the_lowest(tmp_path, monkeypatch):
    module = load_script()
    assert module.longer_ratios("movement+kd", [0.5, 0.1]) == [0.1, 0.5], "movement ± kd at every ratio"
    assert module.longer_ratios("platon+kd", [0.5, 0.1]) == [0.1], "the others at the lowest ratio"
    calls = []
    monkeypatch.setattr(module, "run_train", lambda out, common, extra, threads: calls.append((out, common + extra)))
    canonical = tmp_path / "canonical"
    canonical.mkdir()
    (canonical / "rte_train.json").write_text('{"uid": 0}\n' * 40)
    args = argparse.Namespace(tasks="rte", seeds=[1], ratios=[0.1, 0.5], epochs=2, batch_size=16, learning_rate=5e-4,
                              max_seq_len=64, final_lambda=400.0, soft_score_lrs=[], signed_dfd_seeds=[],
                              no_train=False, jobs=1, out=str(tmp_path / "runs"), precision="fp32", methods=[],
                              kd_lrs=[], longer_epochs=[6])
    module.build_runs(args, str(canonical))
    longer = sorted(os.path.basename(out) for out, _ in calls if out.endswith("_e6"))
    assert longer == ["dense_e6", "magnitude_0.1_e6", "movement_0.1_e6", "movement_0.1_kd_e6", "movement_0.5_e6",
                      "movement_0.5_kd_e6", "platon_0.1_kd_e6"], f"the longer runs planned: {longer}"
    half = next(command for out, command in calls if out.endswith("movement_0.5_e6"))
    assert half[half.index("--final_threshold") + 1] == "0.5", f"movement 0.5 with 6 epochs prunes to 0.5: {half}"


def test_longer_rows_are_named_and_kept_out_of_the_tables_target(tmp_path):
    module = load_script()
    assert module.row_label("dense e12", None) == "dense (12 epochs)", module.row_label("dense e12", None)
    assert module.row_label("platon+kd e12", 0.1) == "platon 0.1+kd (12 epochs)", \
        module.row_label("platon+kd e12", 0.1)
    assert module.row_label("movement e12", 0.1) == "movement 0.1 (12 epochs)", module.row_label("movement e12", 0.1)
    main_metrics = [("rte", "ACC")]

    def entry(*values):
        return {"values": {("rte", "ACC"): list(values)}, "dirs": [None] * len(values)}
    table = {("dense", None): entry(80.0, 80.0), ("platon+kd", 0.1): entry(70.0, 70.0),
             ("platon+kd e12", 0.1): entry(76.0, 76.0), ("dense e12", None): entry(84.0, 84.0),
             ("movement e12", 0.1): entry(60.0, 60.0), ("movement+kd e12", 0.1): entry(50.0, 50.0),
             ("magnitude e12", 0.1): entry(55.0, 55.0)}
    lines = module.orderings(table, main_metrics, [0.1])
    target = [line for line in lines if line.startswith("- Target")]
    assert len(target) == 1 and "(platon+kd)" in target[0] and "87.5 %" in target[0] and "NOT met" in target[0], \
        f"the target is judged on the table's own regime, not on the longer runs: {target}"
    longer = [line for line in lines if "with 12 epochs (the pruned runs only" in line]
    assert len(longer) == 1 and "platon+kd e12 keeps 95.0 %" in longer[0] and "90.5 % of a dense run" in longer[0], \
        f"the longer distilled run against the table's dense and the longer dense: {longer}"
    helps = [line for line in lines if line.startswith("- logit distillation helps movement at 10 %, both with 12")]
    assert len(helps) == 1 and "does NOT hold" in helps[0], f"movement+kd against movement, both longer: {lines}"
    assert any(line.startswith("- dense with 12 epochs ≥ with the table's: holds") for line in lines), \
        f"the longer dense run against the table's: {lines}"


def test_an_ordering_between_two_majority_class_rows_gives_no_verdict():
    module = load_script()
    main_metrics = [("rte", "ACC")]

    def entry(*values):
        return {"values": {("rte", "ACC"): list(values)}, "dirs": [None] * len(values)}
    table = {("dense", None): entry(80.0, 82.0), ("movement", 0.5): entry(50.0, 50.2),
             ("movement+kd", 0.5): entry(50.4, 50.4), ("platon", 0.5): entry(70.0, 72.0),
             ("platon+kd", 0.5): entry(50.5, 50.5), ("majority class", None): entry(50.0)}
    lines = module.orderings(table, main_metrics, [0.5])
    movement = [line for line in lines if line.startswith("- logit distillation helps movement")]
    assert len(movement) == 1 and "no verdict: both at the majority class" in movement[0], \
        f"50.4 against 50.1 with the majority class at 50 is no ordering: {movement}"
    platon = [line for line in lines if line.startswith("- logit distillation helps platon")]
    assert len(platon) == 1 and "does NOT hold" in platon[0], f"one row off the majority class is judged: {platon}"
    stuck = [line for line in lines if line.startswith("- Runs at the majority class")]
    assert stuck == ["- Runs at the majority class (task average within 1 point of it): movement 0.5, "
                     "movement 0.5+kd, platon 0.5+kd."], f"the rows at the majority class: {stuck}"


def test_bad_longer_epochs_is_a_one_line_error():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_results.py"), "--longer_epochs",
                             "12,x"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2, f"exit status 2 for a bad --longer_epochs: {result.returncode} {result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--longer_epochs" in lines[0] and "'12,x'" in lines[0], \
        f"one line naming the flag and the bad value: {result.stderr!r}"


def test_unknown_method_is_a_one_line_error():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_results.py"), "--methods",
                             "platon+kd,platonn"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2, f"exit status 2 for a bad --methods: {result.returncode} {result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--methods" in lines[0] and "'platonn'" in lines[0] and "platon+kd" in lines[0], \
        f"one line naming the flag, the bad value and the choices: {result.stderr!r}"


def test_runs_wait_only_for_their_own_seeds_dense_run(tmp_path, monkeypatch):
    import threading
    import time
    events, lock = [], threading.Lock()

    def train(out, common, extra, threads):
        name = os.path.relpath(out, tmp_path / "runs")
        with lock:
            events.append(("start", name))
        time.sleep(0.3 if name == os.path.join("seed3", "dense") else 0.02)
        with lock:
            events.append(("end", name))
    planned_runs(tmp_path, monkeypatch, ["platon+kd"], seeds=(1, 2, 3), jobs=2, train=train)
    order = list(events)
    seed3_dense_end = order.index(("end", os.path.join("seed3", "dense")))
    first_variant = order.index(("start", os.path.join("seed1", "platon_0.1_kd")))
    assert first_variant < seed3_dense_end, f"seed 1's variant trains beside seed 3's dense run: {order}"
    for seed in (1, 2, 3):
        assert order.index(("end", os.path.join(f"seed{seed}", "dense"))) < \
            order.index(("start", os.path.join(f"seed{seed}", "platon_0.1_kd"))), \
            f"seed {seed}'s distilled run starts after its teacher is written: {order}"


def fake_pruned_run(directory, masks):
    """A run directory with what mask_agreement reads: a sparsity report and a saved model whose zeros are
    the complement of `masks` ({name: boolean tensor}); an unpruned LayerNorm beside them."""
    import json

    import torch
    from safetensors.torch import save_file
    (directory / "model").mkdir(parents=True)
    weights = {name: torch.where(mask, torch.rand(mask.shape) + 0.5, torch.zeros(mask.shape))
               for name, mask in masks.items()}
    weights["encoder.layer.0.attention.output.LayerNorm.weight"] = torch.ones(8)
    save_file(weights, str(directory / "model" / "model.safetensors"))
    rows = [{"name": name, "remaining_ratio": float(mask.float().mean())} for name, mask in masks.items()]
    rows.append({"name": "encoder.layer.0.attention.self.query.bias", "remaining_ratio": 1.0})
    kept = sum(float(mask.sum()) for mask in masks.values()) / sum(mask.numel() for mask in masks.values())
    (directory / "sparsity_report.json").write_text(json.dumps({"rows": rows, "overall": {"remaining_ratio": kept}}))
    return str(directory)


def test_mask_agreement_is_one_for_equal_masks_and_near_chance_for_independent_ones(tmp_path):
    import torch
    module = load_script()
    generator = torch.Generator().manual_seed(0)
    names = ("encoder.layer.0.attention.self.query.weight", "encoder.layer.0.intermediate.dense.weight")
    shapes = ((64, 64), (256, 64))

    def random_masks(ratio):
        return {name: torch.rand(shape, generator=generator) < ratio for name, shape in zip(names, shapes)}
    same = random_masks(0.1)
    equal = [fake_pruned_run(tmp_path / f"equal{i}", same) for i in range(3)]
    overlap, chance = module.mask_agreement(equal)
    assert abs(overlap - 1.0) < 1e-9, f"identical masks overlap fully: {overlap}"
    assert abs(chance - 0.1) < 0.01, f"chance is about the kept fraction for masks of 10 %: {chance}"
    independent = [fake_pruned_run(tmp_path / f"random{i}", random_masks(0.2)) for i in range(2)]
    overlap, chance = module.mask_agreement(independent)
    assert abs(chance - 0.2) < 0.01, f"chance for two 20 % masks: {chance}"
    assert abs(overlap - chance) < 0.02, f"independent random masks overlap at chance: {overlap} vs {chance}"
    # a 50 % mask against the same mask at 10 %: all of the smaller one is in the larger one
    big = random_masks(0.5)
    small = {name: mask & (torch.rand(mask.shape, generator=generator) < 0.2) for name, mask in big.items()}
    nested = [fake_pruned_run(tmp_path / "big", big), fake_pruned_run(tmp_path / "small", small)]
    overlap, chance = module.mask_agreement(nested)
    kept_big = sum(float(m.sum()) for m in big.values())
    kept_small = sum(float(m.sum()) for m in small.values())
    assert abs(overlap - kept_small / ((kept_big + kept_small) / 2)) < 1e-9, \
        f"overlap = kept by both / the mean number kept: {overlap}"
    assert chance < overlap, f"nested masks agree more than chance: {overlap} vs {chance}"


def test_agreement_section_has_a_row_per_unstructured_entry_with_two_seeds(tmp_path):
    import torch
    module = load_script()
    generator = torch.Generator().manual_seed(1)
    masks = {"encoder.layer.0.attention.self.query.weight": torch.rand(32, 32, generator=generator) < 0.1}
    twice = [fake_pruned_run(tmp_path / f"m{i}", masks) for i in range(2)]
    table = {("movement e12", 0.1): {"dirs": twice}, ("platon+kd lr0.001", 0.1): {"dirs": twice},
             ("magnitude", 0.1): {"dirs": twice[:1]}, ("dense", None): {"dirs": twice}, ("gpp", 0.5): {"dirs": twice}}
    lines = module.agreement_lines(table, list(table))
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| run")]
    assert [row.split(" | ")[0] for row in rows] == ["| movement 0.1 (12 epochs)", "| platon 0.1+kd (lr 0.001)"], \
        f"one row per unstructured entry with two seeds or more, named as in the main table: {rows}"
    assert all("| 100.0 % |" in row for row in rows), f"equal masks overlap fully: {rows}"
    assert module.agreement_lines({("magnitude", 0.1): {"dirs": twice[:1]}}, [("magnitude", 0.1)]) == [], \
        "no section when no entry has two seeds"


def test_the_plot_is_linked_relative_to_the_results_file(tmp_path):
    module = load_script()
    docs = tmp_path / "docs"
    assert module.plot_link(str(docs / "RESULTS.md"), str(docs / "results.png")) == "results.png", \
        "a plot beside the file is linked by its name"
    assert module.plot_link(str(docs / "RESULTS_384_updates.md"), str(docs / "results_384_updates.png")) == \
        "results_384_updates.png", "another name is linked by that name, not by the default's"
    assert module.plot_link(str(tmp_path / "r.md"), str(docs / "p.png")) == "docs/p.png", \
        "a plot in another folder is linked by its path from the file's folder, '/'-separated"



def test_orderings_set_each_difference_against_the_seeds_spread():
    module = load_script()
    main_metrics = [("rte", "ACC")]

    def entry(*values):
        return {"values": {("rte", "ACC"): list(values)}, "dirs": [None] * len(values)}
    table = {("dense", None): entry(84.0, 85.0, 83.0), ("platon", 0.1): entry(81.0, 82.0, 81.5),
             ("platon+kd", 0.1): entry(80.0, 80.5, 81.4), ("magnitude", 0.1): entry(49.0, 50.0, 50.5),
             ("soft_movement", None): entry(84.0, 86.0, 84.6), ("soft_movement+kd", None): entry(84.1, 85.9, 84.8)}
    lines = module.orderings(table, main_metrics, [0.1])

    def line(start):
        found = [text for text in lines if text.startswith(start)]
        assert len(found) == 1, f"one line starting {start!r}: {lines}"
        return found[0]
    # by hand: 81.5 ± 0.5 against 49.83 ± 0.76 (n 3 each): t = 31.67 / √(0.25/3 + 0.5833/3) = 60.08
    platon = line("- PLATON ≥ magnitude at 10 %")
    assert "holds" in platon and "outside the seeds' noise: Welch's t 60.08" in platon, platon
    # 84.93 ± 0.93 against 84.87 ± 1.03: the same within noise, though "holds" on the means
    soft = line("- logit distillation helps soft_movement")
    assert "holds" in soft and "within the seeds' noise: Welch's t 0.08" in soft, soft
    # 80.63 ± 0.71 against 81.5 ± 0.5: t −1.73, p about 0.17
    kd = line("- logit distillation helps platon")
    assert "does NOT hold" in kd and "within the seeds' noise: Welch's t -1.73" in kd, kd
    t, df, p = module.welch([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert abs(t + 3.674) < 1e-3 and abs(df - 4.0) < 1e-9 and abs(p - 0.02131) < 1e-4, \
        f"Welch's t of (1, 2, 3) against (4, 5, 6): t −3.674 on 4 df, p 0.0213 (scipy.stats.ttest_ind), got {t, df, p}"
    assert module.welch([1.0], [2.0, 3.0]) is None, "one value on a side: no test"
