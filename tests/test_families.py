"""Every encoder family (modeling.families) through the toolkit, without the network: a tiny random model of each
family built from its config, with a tokenizer trained here on the sample's text (the `tokenizers` library: BPE
for RoBERTa, Unigram for DeBERTa-v3, WordPiece for the others) saved beside it as a transformers fast tokenizer,
run through prepro -> train (PLATON; GPP with DFD from the PLATON run as teacher) -> structured export ->
AutoModelForSequenceClassification / pipeline equality -> int8 compression; the structured export equals the
masked model for every family; an unsupported family is one line of error."""
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from tests.conftest import run_main
from tests.test_errors import fail

FAMILY_NAMES = ("bert", "roberta", "electra", "distilbert", "deberta-v2")
TASKS = "rte,sst"
# run in a fresh interpreter outside the repository: load DIR with its own modeling code, save the logits
REMOTE_LOAD = """import sys, torch
if any(name.startswith(("modeling", "pruners")) for name in sys.modules) or __import__("importlib").util.find_spec("modeling"):
    sys.exit("the toolkit is importable here")
from transformers import AutoModelForSequenceClassification
model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
with torch.no_grad():
    torch.save(model(**torch.load(sys.argv[2])).logits, sys.argv[3])
print(type(model).__module__)
"""
SPECIALS = {"bpe": ["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
            "unigram": ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"],
            "wordpiece": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]}


def sample_text(glue_dir: str) -> list:
    """Every field of every row of the sample's TSV files: what the tokenizers are trained on."""
    lines = []
    for path in sorted(glob.glob(os.path.join(glue_dir, "*", "*.tsv"))):
        with open(path, encoding="utf-8") as handle:
            lines.extend(field for line in handle for field in line.rstrip("\n").split("\t") if field)
    return lines


def train_tokenizer(family: str, text: list, directory: str):
    """A fast tokenizer of the family's kind trained on `text`, saved into `directory`; returns it."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast, DebertaV2TokenizerFast, RobertaTokenizerFast

    if family == "roberta":
        specials = SPECIALS["bpe"]
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(text, trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
        wrapped = RobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                       cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    elif family == "deberta-v2":
        specials = SPECIALS["unigram"]
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.Lowercase()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        tok.train_from_iterator(text, trainers.UnigramTrainer(vocab_size=400, special_tokens=specials,
                                                              unk_token="[UNK]"))
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
        wrapped = DebertaV2TokenizerFast(tokenizer_object=tok, bos_token="[CLS]", eos_token="[SEP]",
                                         cls_token="[CLS]", sep_token="[SEP]", unk_token="[UNK]", pad_token="[PAD]",
                                         mask_token="[MASK]")
    else:
        specials = SPECIALS["wordpiece"]
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        tok.train_from_iterator(text, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials))
        tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
        from transformers import DistilBertTokenizerFast, ElectraTokenizerFast
        cls = {"bert": BertTokenizerFast, "electra": ElectraTokenizerFast, "distilbert": DistilBertTokenizerFast}
        wrapped = cls[family](tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                              cls_token="[CLS]", mask_token="[MASK]")
    assert [tok.token_to_id(s) for s in specials] == list(range(len(specials))), "special tokens come first"
    wrapped.save_pretrained(directory)
    return wrapped


def tiny_config(family: str, vocab_size: int):
    """A 2-layer, 4-head model of the family (the real checkpoints' settings where the family has its own)."""
    from transformers import BertConfig, DebertaV2Config, DistilBertConfig, ElectraConfig, RobertaConfig

    common = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=48, max_position_embeddings=130)
    if family == "bert":
        return BertConfig(**common)
    if family == "roberta":        # roberta-base: one token type, positions after the padding index
        return RobertaConfig(**common, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    if family == "electra":        # a smaller embedding than the hidden size: embeddings_project
        return ElectraConfig(**common, embedding_size=16)
    if family == "distilbert":
        return DistilBertConfig(vocab_size=vocab_size, dim=32, n_layers=2, n_heads=4, hidden_dim=48,
                                max_position_embeddings=130)
    # deberta-v3-base's settings: no token types, relative attention only, shared position projections
    return DebertaV2Config(**common, type_vocab_size=0, relative_attention=True, position_biased_input=False,
                           pos_att_type=["p2c", "c2p"], max_relative_positions=-1, position_buckets=16,
                           norm_rel_ebd="layer_norm", share_att_key=True)


@pytest.fixture(scope="module", params=FAMILY_NAMES)
def family_model(request, sample_glue, tmp_path_factory):
    """(family, model directory with its trained tokenizer, canonical data preprocessed with it)."""
    import prepro
    from transformers import AutoModel

    family = request.param
    directory = str(tmp_path_factory.mktemp(f"tiny-{family}"))
    tokenizer = train_tokenizer(family, sample_text(sample_glue), directory)
    torch.manual_seed(0)
    AutoModel.from_config(tiny_config(family, len(tokenizer))).save_pretrained(directory)
    canonical = str(tmp_path_factory.mktemp(f"canonical-{family}"))
    assert prepro.main(["--data_dir", sample_glue, "--model", directory, "--max_seq_len", "64", "--tasks", TASKS,
                        "--output_dir", canonical]) == 0, f"prepro with the {family} tokenizer"
    return family, directory, canonical


def train_args(canonical, model_dir, output_dir, *extra):
    return ["--data_dir", canonical, "--init_checkpoint", model_dir, "--train_datasets", "rte",
            "--test_datasets", "rte", "--epochs", "2", "--batch_size", "8", "--max_seq_len", "64",
            "--learning_rate", "1e-3", "--log_per_updates", "0", "--seed", "5", "--output_dir", str(output_dir),
            *extra]


def first_rows(canonical, n=8):
    """A collated batch of the first rte dev rows of the canonical data."""
    from data_utils.batcher import collate, load_canonical
    from data_utils.task_def import load_task_defs

    task = load_task_defs()["rte"]
    rows = load_canonical(os.path.join(canonical, "rte_dev.json"), "rte_dev", task)
    return collate(rows.examples[:n], task)


def test_prepro_encodes_pairs_as_the_family_tokenizer_does(family_model):
    from transformers import AutoTokenizer

    family, model_dir, canonical = family_model
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with open(os.path.join(canonical, "rte_dev.json"), encoding="utf-8") as handle:
        row = json.loads(handle.readline())
    ids = row["token_id"]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id, \
        f"{family}: a pair starts with the family's CLS ({tokenizer.cls_token}) and ends with its SEP: {ids[:3]}"
    separators = [i for i, token in enumerate(ids) if token == tokenizer.sep_token_id]
    if family == "roberta":
        assert separators[1] == separators[0] + 1 and set(row["type_id"]) == {0}, \
            f"roberta pairs are <s> A </s></s> B </s> with type ids all 0: {separators} {set(row['type_id'])}"
    else:
        assert len(separators) == 2 and row["type_id"][separators[0] + 1] == 1, \
            f"{family}: [CLS] A [SEP] B [SEP] with type 1 from B on: {separators}"


def test_train_platon_gpp_dfd_export_and_int8(family_model, tmp_path):
    """PLATON run -> its hf/rte equals the toolkit; movement pruning; GPP+DFD+KD from the PLATON model -> the
    structured export equals the masked model and loads from a directory without the repository; int8 compression
    reloads within tolerance."""
    import train
    from transformers import AutoModelForSequenceClassification, pipeline

    from data_utils.task_def import load_task_defs
    from modeling.families import family_of
    from modeling.model import load_model
    from mt_dnn import compress
    from mt_dnn import export as export_cli

    family, model_dir, canonical = family_model
    platon = tmp_path / "platon"
    assert run_main(train.main, train_args(canonical, model_dir, platon, "--pruner", "platon",
                                           "--initial_threshold", "1", "--final_threshold", "0.5",
                                           "--warmup_steps", "4", "--initial_warmup", "1", "--final_warmup", "1",
                                           "--deltaT", "2")) == 0, f"{family}: PLATON run"
    report = json.loads((platon / "sparsity_report.json").read_text())
    assert report["overall"]["remaining_ratio"] == pytest.approx(0.5, abs=0.01), \
        f"{family}: PLATON prunes the family's matrices to 50 %: {report['overall']}"
    task_defs = load_task_defs()
    model = load_model(str(platon / "model"), task_defs)
    batch = first_rows(canonical)
    triple = [batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")]
    with torch.no_grad():
        ours = model(*triple, task="rte").logits
        hf = AutoModelForSequenceClassification.from_pretrained(str(platon / "model" / "hf" / "rte")).eval()
        theirs = hf(**family_of(model.encoder.config).encoder_inputs(*triple)).logits
    assert type(hf).__name__ == family_of(family).classification_class, f"{family}: the stock class"
    assert torch.equal(ours, theirs), f"{family}: hf/rte gives the toolkit's logits exactly: {(ours - theirs).abs().max()}"
    classify = pipeline("text-classification", model=str(platon / "model" / "hf" / "rte"))
    assert classify("A cat sat.", top_k=None)[0]["label"] in task_defs["rte"].labels, f"{family}: pipeline labels"

    movement = tmp_path / "movement"
    assert run_main(train.main, train_args(canonical, model_dir, movement, "--pruner", "movement", "--epochs", "1",
                                           "--final_threshold", "0.5", "--warmup_steps", "2", "--initial_warmup",
                                           "0", "--final_warmup", "1", "--deltaT", "1")) == 0, f"{family}: movement"
    rows = json.loads((movement / "sparsity_report.json").read_text())["rows"]
    weights = {row["name"]: row["remaining_ratio"] for row in rows if row["name"].endswith(".weight")}
    assert len(weights) == 12 and all(ratio == pytest.approx(0.5, abs=0.02) for ratio in weights.values()), \
        f"{family}: movement keeps half of each of the family's 6 matrices a layer: {weights}"

    gpp = tmp_path / "gpp"
    assert run_main(train.main, train_args(canonical, model_dir, gpp, "--pruner", "gpp", "--epochs", "3",
                                           "--prepruning_finetune_epochs", "1", "--prune_epochs", "1",
                                           "--target_sparsity", "0.5", "--do_distill", "--teacher_model_path",
                                           str(platon / "model"), "--logit_distill")) == 0, \
        f"{family}: GPP with DFD and logit distillation"
    export = json.loads((gpp / "model_pruned" / "structured_export.json").read_text())
    assert export["max_abs_difference"] < 1e-5, f"{family}: export equals the masked model: {export}"
    assert export["encoder_layer_parameters_after"] < 0.6 * export["encoder_layer_parameters_before"], \
        f"{family}: half the heads and neurons are gone: {export}"
    alone = tmp_path / "alone"             # the hf copy with its modeling code, away from the repository
    shutil.copytree(gpp / "model_pruned" / "hf" / "rte", alone)
    smaller = load_model(str(gpp / "model_pruned"), task_defs)
    with torch.no_grad():
        expected = smaller(*triple, task="rte").logits
    torch.save(family_of(family).encoder_inputs(*triple), tmp_path / "inputs.pt")
    remote = subprocess.run(               # a fresh interpreter that cannot import the toolkit
        [sys.executable, "-c", REMOTE_LOAD, str(alone), str(tmp_path / "inputs.pt"), str(tmp_path / "logits.pt")],
        cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, capture_output=True, text=True)
    assert remote.returncode == 0, f"{family}: trust_remote_code load failed: {remote.stderr[-800:]}"
    assert remote.stdout.startswith("transformers_modules."), f"{family}: the directory's own code: {remote.stdout}"
    difference = (torch.load(tmp_path / "logits.pt") - expected).abs().max()
    assert difference == 0, f"{family}: the export's hf/rte (trust_remote_code) gives its logits: {difference}"

    exported = tmp_path / "exported"       # the export command on the saved masked model gives the same export
    assert run_main(export_cli.main, ["--checkpoint", str(gpp / "model"), "--output_dir", str(exported)]) == 0, \
        f"{family}: mt_dnn.export"
    again = json.loads((exported / "structured_export.json").read_text())
    assert again["layer_heads"] == export["layer_heads"] and again["max_abs_difference"] < 1e-5, \
        f"{family}: mt_dnn.export {again} vs the run's {export}"

    out = tmp_path / "int8"
    compress.compress_model(str(gpp / "model"), str(out), task_defs, quantize="int8", tolerance=1.0)
    reloaded = compress.load_compressed(str(out), task_defs)
    with torch.no_grad():
        masked = load_model(str(gpp / "model"), task_defs)(*triple, task="rte").logits
        served = reloaded(*triple, task="rte").logits
    assert (masked - served).abs().max() < 0.5, f"{family}: int8 stays close: {(masked - served).abs().max()}"


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_structured_export_equals_masked_model(family):
    """Random indicators (a whole layer's heads removed): the smaller export and the weights with the pruned units
    folded in as zeros both compute what the masked model computes."""
    from transformers import AutoModel

    from data_utils.task_def import load_task_defs
    from modeling import structured
    from modeling.families import family_of
    from modeling.model import MTDNNModel
    from pruners.anatomy import encoder_shape
    from pruners.structured_mask import StructuredMask

    torch.manual_seed(1)
    model = MTDNNModel(AutoModel.from_config(tiny_config(family, 120)), {"rte": load_task_defs()["rte"]}).eval()
    anatomy = family_of(family).anatomy
    shape = encoder_shape(model.encoder, anatomy)
    heads, ffn = (torch.rand(shape.layers, shape.heads) > 0.5).float(), (torch.rand(shape.layers, shape.intermediate) > 0.5).float()
    heads[1] = 0
    ids = torch.randint(5, 120, (3, 12))
    triple = (ids, torch.zeros_like(ids), torch.ones_like(ids))
    mask = StructuredMask(model.encoder, head=heads, ffn=ffn, anatomy=anatomy)
    with torch.no_grad():
        masked = model(*triple, task="rte").logits
        smaller = MTDNNModel(structured.export_pruned_encoder(model.encoder, heads, ffn), {})
        smaller.heads = model.heads
        exported = smaller.eval()(*triple, task="rte").logits
        mask.fold_into_weights()
        mask.remove()
        folded = model(*triple, task="rte").logits
    assert structured.count_parameters(smaller.encoder) < structured.count_parameters(model.encoder), \
        f"{family}: the export is physically smaller"
    assert (masked - exported).abs().max() < 1e-5, f"{family}: export vs mask {(masked - exported).abs().max()}"
    assert (masked - folded).abs().max() < 1e-5, f"{family}: folded vs mask {(masked - folded).abs().max()}"


def test_unsupported_family_is_one_line(tmp_path, capsys, canonical_dir):
    """A model_type outside the registry: one line naming it and the supported families."""
    import train
    from transformers import AlbertConfig, AlbertModel

    AlbertModel(AlbertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                             intermediate_size=48, embedding_size=16)).save_pretrained(tmp_path / "albert")
    capsys.readouterr()                  # the progress bar of that save is not the command's output
    fail(train.main, train_args(canonical_dir, tmp_path / "albert", tmp_path / "out"), capsys,
         "'albert' is not a supported encoder family", "bert, roberta, electra, distilbert, deberta-v2")


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_mtdnn_pt_checkpoint_of_each_family_loads(family, tmp_path):
    """An MT-DNN `.pt` ({'state': 'bert.'-prefixed weights, 'config': the encoder's config plus MT-DNN's options})
    loads as its family's encoder: by the config's model_type, or by MT-DNN's encoder_type without one."""
    from transformers import AutoModel

    from modeling.model import MTDNN_ENCODER_TYPES, load_encoder
    torch.manual_seed(0)
    source = AutoModel.from_config(tiny_config(family, 96))
    state = {f"bert.{key}": value for key, value in source.state_dict().items()}
    config = {**source.config.to_dict(), "encoder_type": 1, "learning_rate": 5e-5}     # MT-DNN's options ride along
    by_type = {n: family for n, family in MTDNN_ENCODER_TYPES.items()}
    variants = {"model_type": config}
    if family in by_type.values():          # MT-DNN's older checkpoints: no model_type, only its encoder_type
        variants["encoder_type"] = {**{k: v for k, v in config.items() if k != "model_type"},
                                    "encoder_type": next(n for n, f in by_type.items() if f == family)}
    for name, saved in variants.items():
        torch.save({"state": state, "config": saved}, tmp_path / f"{name}.pt")
        encoder = load_encoder(str(tmp_path / f"{name}.pt"), 0.25)
        assert encoder.config.model_type == source.config.model_type, f"{family} by {name}: the family is kept"
        for key, value in source.state_dict().items():
            assert torch.equal(encoder.state_dict()[key], value), f"{family} by {name}: {key} is the file's"
        dropout = {k: getattr(encoder.config, k) for k in __import__("modeling.families", fromlist=["family_of"])
                   .family_of(family).dropout_keys}
        assert set(dropout.values()) == {0.25}, f"{family} by {name}: the dropout flag sets {dropout}"


def test_mtdnn_pt_checkpoint_of_an_unsupported_encoder_type_is_one_line(tmp_path, capsys, canonical_dir):
    import train

    torch.save({"state": {}, "config": {"encoder_type": 3, "hidden_size": 32}}, tmp_path / "xlnet.pt")
    fail(train.main, train_args(canonical_dir, tmp_path / "xlnet.pt", tmp_path / "out"), capsys,
         "'MT-DNN encoder_type 3' is not a supported encoder family", "bert, roberta, electra")


def test_evaluate_predict_and_onnx_runtime_agree(family_model, tmp_path, capsys):
    """A saved model of the family: mt_dnn.evaluate through torch and through its ONNX export give the same
    metrics, and mt_dnn.predict labels raw text with the family's tokenizer."""
    from data_utils.task_def import load_task_defs
    from modeling.model import MTDNNModel, load_encoder, save_model
    from modeling.pretrained import load_tokenizer
    from mt_dnn import compress, onnx_export
    from mt_dnn import evaluate as evaluate_cli
    from mt_dnn import predict as predict_cli

    family, model_dir, canonical = family_model
    tasks = load_task_defs()
    torch.manual_seed(2)
    model = MTDNNModel(load_encoder(model_dir), {"rte": tasks["rte"], "sst": tasks["sst"]}).eval()
    tokenizer = load_tokenizer(model_dir)
    saved, exported = str(tmp_path / "saved"), str(tmp_path / "onnx")
    save_model(model, tokenizer, saved)
    onnx_export.export_model(model, tokenizer, exported, ["rte", "sst"], compress.check_inputs(model, tokenizer))
    metrics = {}
    for name, directory, engine in (("torch", saved, "torch"), ("onnx", exported, "onnxruntime")):
        out = tmp_path / f"eval-{name}"
        code = run_main(evaluate_cli.main, ["--model", directory, "--data_dir", canonical, "--datasets", "rte,sst",
                                            "--output_dir", str(out), "--engine", engine])
        assert code == 0, f"{family}: evaluate through {engine}: {capsys.readouterr().err[-400:]}"
        metrics[name] = json.loads((out / "evaluation_dev.json").read_text())["metrics"]
    assert metrics["onnx"] == metrics["torch"], f"{family}: ONNX Runtime scores what torch scores: {metrics}"
    source, table = tmp_path / "lines.txt", tmp_path / "labels.tsv"
    source.write_text("a gripping film\nflat and dull\n", encoding="utf-8")
    code = run_main(predict_cli.main, ["--model", saved, "--task", "sst", "--input", str(source),
                                       "--output", str(table)])
    assert code == 0, f"{family}: predict: {capsys.readouterr().err[-400:]}"
    rows = [line.split("\t") for line in table.read_text().splitlines()[1:]]
    assert len(rows) == 2 and all(row[1] in tasks["sst"].labels for row in rows), f"{family}: predict rows {rows}"


def test_export_refusals_and_anatomy_errors(tmp_path, capsys):
    """mt_dnn.export refuses, before writing, a DeBERTa whose relative-position projections are its own
    (share_att_key false); the pruner library names the anatomy it looked for, and refuses a non-Anatomy."""
    from transformers import AutoModel, DistilBertConfig

    from data_utils.task_def import load_task_defs
    from modeling.families import family_of
    from modeling.model import MTDNNModel, save_model
    from mt_dnn import export as export_cli
    from pruners.anatomy import BERT, encoder_shape, find_encoder
    from pruners.structured_mask import StructuredMask

    config = tiny_config("deberta-v2", 120)
    config.share_att_key = False
    model = MTDNNModel(AutoModel.from_config(config), {"rte": load_task_defs()["rte"]})
    anatomy = family_of(config).anatomy
    shape = encoder_shape(model.encoder, anatomy)
    checkpoint = tmp_path / "model"
    save_model(model, None, str(checkpoint))
    StructuredMask(model.encoder, head=torch.ones(shape.layers, shape.heads), anatomy=anatomy).save(str(checkpoint))
    capsys.readouterr()
    fail(export_cli.main, ["--checkpoint", checkpoint, "--output_dir", tmp_path / "out"], capsys,
         f"--checkpoint {checkpoint}: model type 'deberta-v2' with share_att_key false")
    assert not (tmp_path / "out").exists(), "nothing is written before the refusal"

    distilbert = AutoModel.from_config(DistilBertConfig(vocab_size=50, dim=32, n_layers=1, n_heads=4, hidden_dim=48))
    with pytest.raises(ValueError, match=r"no BERT-family encoder of the bert layout \(with \.encoder\.layer\[i\]"):
        find_encoder(distilbert, BERT)
    with pytest.raises(TypeError, match="anatomy must be a pruners.anatomy.Anatomy, not a str"):
        StructuredMask(distilbert, head=torch.ones(1, 4), anatomy="distilbert")
    assert find_encoder(distilbert, family_of("distilbert").anatomy) is distilbert, "found with its own anatomy"


def test_roberta_rows_fit_the_positions_after_padding():
    """RoBERTa's position ids start after pad_token_id: 130 positions take rows of 128 tokens, and a longer row
    is refused in one line instead of an index error inside the embedding."""
    from data_utils.batcher import TaskDataset, check_fits_model
    from data_utils.errors import UserError
    from data_utils.task_def import load_task_defs
    from modeling.families import family_of

    config = tiny_config("roberta", 120)
    longest = family_of(config).max_positions(config)
    assert longest == 128, f"130 positions less pad_token_id 1 + 1: {longest}"
    assert family_of("bert").max_positions(tiny_config("bert", 120)) == 130, "BERT uses its whole table"
    task = load_task_defs()["rte"]
    row = {"uid": "0", "label": 0, "token_id": [0] * 129, "type_id": [0] * 129}
    rows = TaskDataset(name="rte_dev", task=task, path="rte_dev.json", examples=[row])
    with pytest.raises(UserError, match="rows of 129 tokens, but --init_checkpoint M embeds at most 128 positions"):
        check_fits_model([rows], config, "M", max_positions=longest)


def test_pruning_callback_prunes_the_family_in_a_trainer(tmp_path):
    """PruningCallback in a stock transformers.Trainer on DistilBertForSequenceClassification (the layout furthest
    from BERT's; a Trainer run takes 20 s, so one family), with its family's target substrings."""
    family = "distilbert"
    from transformers import AutoModelForSequenceClassification

    from modeling.families import family_of
    from pruners import PlatonPruner, sparsity_report
    from pruners.trainer_callback import PruningCallback
    from tests.test_trainer_callback import PLATON, TARGET, make_trainer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_config(family, 100))
    substrings = family_of(family).anatomy.prunable_substrings
    make_trainer(tmp_path, [PruningCallback(PlatonPruner, target_substrings=substrings, **PLATON)], model).train()
    report = sparsity_report(model, substrings)
    assert report["overall"]["remaining_ratio"] == pytest.approx(TARGET, abs=0.01), f"{family}: {report['overall']}"
    assert len(report["per_module_type"]) == 6, f"{family}: its six kinds of matrices: {report['per_module_type']}"


@pytest.mark.parametrize("family_model", ["deberta-v2"], indirect=True)
def test_torchrun_gpp_ranks_agree(family_model, tmp_path):
    """torchrun, 2 CPU processes, GPP on DeBERTa-v3's layout (its own task heads, relative attention): both ranks
    end with the same weights and indicators, and the export is written once."""
    from tests.conftest import ROOT

    family, model_dir, canonical = family_model
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               os.path.join(ROOT, "train.py"), *train_args(canonical, model_dir, out, "--batch_size", "4", "--pruner",
                                                             "gpp", "--prepruning_finetune_epochs", "0",
                                                             "--prune_epochs", "1", "--target_sparsity", "0.5")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1"))
    assert result.returncode == 0, f"{family}: torchrun GPP failed: {result.stderr[-1500:]}"
    checksums = json.loads((out / "rank_checksums.json").read_text())
    assert len(checksums) == 2 and checksums[0] == checksums[1] and "gpp_indicators" in checksums[0], \
        f"{family}: ranks agree on weights and indicators: {checksums}"
    export = json.loads((out / "model_pruned" / "structured_export.json").read_text())
    assert export["max_abs_difference"] < 1e-5, f"{family}: the export under torchrun equals the masked model"
